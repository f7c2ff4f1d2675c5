//! Pooling over time: the top layer's outputs at every step become one feature vector a
//! sequence, `D·H` wide (one block of `H` a direction).
//!
//! ```text
//! last:  f_d = h_d after the direction's last step     (its state after reading the whole sequence)
//! mean:  f_d = (1/T) Σ_t h_{d,t}                        ∂L/∂h_{d,t} += ∂L/∂f_d / T   at every step
//! max:   f_{d,j} = max_t h_{d,t,j}                     ∂L/∂h_{d,t*,j} += ∂L/∂f_{d,j} at the argmax t*
//! ```
//!
//! over each sequence's own `T` tokens, so padding never enters, in either direction. A
//! sequence with no tokens has features 0 (its state is the initial one). Pooling is the same
//! whichever way a direction reads, so it works on each direction's own steps and never needs
//! to know the order.
//!
//! Pooling runs one step at a time, as the states appear ([`Pooling::step`]), so it works the
//! same whether the forward pass keeps every state (training) or only the latest (prediction).

use super::arch::Pool;
use super::batch::Batch;

/// The features of a batch, built step by step, and what their backward pass needs.
#[derive(Clone, Debug, Default)]
pub(super) struct Pooling {
    /// rows × D·H.
    pub features: Vec<f32>,
    /// For max pooling, the step at which each feature took its value (rows × D·H).
    argmax: Vec<u32>,
    /// `D·H`.
    width: usize,
}

impl Pooling {
    /// Starts a batch of `rows` sequences with `width` (`D·H`) features each.
    pub fn begin(&mut self, pool: Pool, rows: usize, width: usize) {
        self.width = width;
        self.features.clear();
        self.features.resize(rows * width, 0.0);
        if pool == Pool::Max {
            self.argmax.clear();
            self.argmax.resize(rows * width, 0);
        }
    }

    /// Takes in step `t` (0-based, in the direction's own order) of direction `d`: `s` holds
    /// the states of the rows still running (n×S), of which the first `h` floats a row are the
    /// output.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        pool: Pool,
        batch: &Batch,
        d: usize,
        t: usize,
        s: &[f32],
        s_size: usize,
        h: usize,
    ) {
        let width = self.width;
        match pool {
            Pool::Last => {
                // the rows whose last step this is: those running now but not at step t + 1
                let ending = if t + 1 < batch.steps() {
                    batch.active(t + 1)
                } else {
                    0
                };
                for r in ending..batch.active(t) {
                    self.features[r * width + d * h..][..h].copy_from_slice(&s[r * s_size..][..h]);
                }
            }
            Pool::Mean => {
                for (r, state) in s.chunks_exact(s_size).enumerate() {
                    let f = &mut self.features[r * width + d * h..][..h];
                    for (fi, &x) in f.iter_mut().zip(&state[..h]) {
                        *fi += x;
                    }
                }
            }
            Pool::Max => {
                for (r, state) in s.chunks_exact(s_size).enumerate() {
                    let at = r * width + d * h;
                    let f = &mut self.features[at..][..h];
                    let arg = &mut self.argmax[at..][..h];
                    for ((fi, ai), &x) in f.iter_mut().zip(arg).zip(&state[..h]) {
                        if t == 0 || x > *fi {
                            *fi = x;
                            *ai = t as u32;
                        }
                    }
                }
            }
        }
    }

    /// Ends the batch: the mean divides its sums by the lengths.
    pub fn finish(&mut self, pool: Pool, batch: &Batch) {
        if pool != Pool::Mean || batch.rows() == 0 {
            return;
        }
        let width = self.features.len() / batch.rows();
        for (f, &len) in self.features.chunks_exact_mut(width).zip(batch.lengths()) {
            if len > 0 {
                let scale = 1.0 / len as f32;
                for x in f {
                    *x *= scale;
                }
            }
        }
    }

    /// Direction `d`'s block of every row of `df` (rows × D·H), the gradient on the features,
    /// as rows × H into `out`: for `last` pooling, the gradient on that direction's final
    /// states.
    pub fn direction_block(df: &[f32], rows: usize, d: usize, h: usize, out: &mut Vec<f32>) {
        let width = df.len() / rows.max(1);
        out.clear();
        for row in df.chunks_exact(width.max(1)) {
            out.extend_from_slice(&row[d * h..][..h]);
        }
    }

    /// Adds the gradient that reaches direction `d`'s step `t` from the features to `ds`
    /// (`∂L/∂s_t` of the rows still running, n×S), given `df`, the gradient on the features.
    #[allow(clippy::too_many_arguments)]
    pub fn add_to_step(
        &self,
        pool: Pool,
        batch: &Batch,
        df: &[f32],
        d: usize,
        t: usize,
        ds: &mut [f32],
        s_size: usize,
        h: usize,
    ) {
        if pool == Pool::Last {
            return; // the gradient reaches the final states only (see `d_last`)
        }
        let width = df.len() / batch.rows().max(1);
        match pool {
            Pool::Last => {}
            Pool::Mean => {
                // forward: f = (1/T) Σ_t h_t  =>  dh_t += df / T
                for (r, (row, &len)) in ds.chunks_exact_mut(s_size).zip(batch.lengths()).enumerate()
                {
                    let scale = 1.0 / len as f32;
                    for (g, &x) in row[..h].iter_mut().zip(&df[r * width + d * h..][..h]) {
                        *g += x * scale;
                    }
                }
            }
            Pool::Max => {
                // forward: f_j = h_{t*, j}  =>  dh_{t*, j} += df_j, at the argmax only
                for (r, row) in ds.chunks_exact_mut(s_size).enumerate() {
                    let at = r * width + d * h;
                    let (arg, grad) = (&self.argmax[at..][..h], &df[at..][..h]);
                    for ((g, &a), &x) in row[..h].iter_mut().zip(arg).zip(grad) {
                        if a as usize == t {
                            *g += x;
                        }
                    }
                }
            }
        }
    }
}

/// The features of a single sequence after each of its steps, as if it ended there: `states`
/// holds the top layer's output (D·H, one direction's block after the other) after every token
/// of a network that reads forwards only, so that the output at step `t` depends on the first
/// `t` tokens alone. The arithmetic is [`Pooling`]'s, so the last entry is the features of the
/// whole sequence to the bit.
pub(super) fn running(pool: Pool, states: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let mut acc: Vec<f32> = Vec::new();
    let mut out = Vec::with_capacity(states.len());
    for (t, h) in states.iter().enumerate() {
        if t == 0 {
            acc.clone_from(h);
        } else {
            for (a, &x) in acc.iter_mut().zip(h) {
                *a = match pool {
                    Pool::Last => x,
                    Pool::Mean => *a + x,
                    Pool::Max => {
                        if x > *a {
                            x
                        } else {
                            *a
                        }
                    }
                };
            }
        }
        let scale = 1.0 / (t + 1) as f32;
        out.push(match pool {
            Pool::Mean => acc.iter().map(|&a| a * scale).collect(),
            Pool::Last | Pool::Max => acc.clone(),
        });
    }
    out
}
