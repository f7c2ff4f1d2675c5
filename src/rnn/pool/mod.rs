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
//! Each pooling is a type of its own file, implementing [`Pooling`]; the table below names
//! them, and a new one is a new file and a row.

use std::fmt;
use std::sync::Arc;

use super::arch::kinds;
use super::batch::Batch;

kinds! {
    /// How the top layer's outputs over time become one feature vector a sequence.
    pub enum Pool, called "pooling";
    pub(crate) fn build() -> Arc<dyn Pooling> { Arc::new }
    /// Each direction's state after it has read the whole sequence: for one direction `h_T`,
    /// for two PyTorch's `cat(h_n[-2], h_n[-1])` (the forward direction after the last token,
    /// the backward direction after the first).
    #[default]
    Last = "last", last::Last;
    /// The mean over the sequence's own tokens of the outputs at every position.
    Mean = "mean", mean::Mean;
    /// The maximum, unit by unit, over the sequence's own tokens.
    Max = "max", max::Max;
}

/// The features of a batch, built step by step, and what their backward pass needs; reused
/// from batch to batch.
#[derive(Clone, Debug, Default)]
pub(crate) struct PoolWork {
    /// rows × D·H.
    pub features: Vec<f32>,
    /// `D·H`.
    pub width: usize,
    /// For max pooling, the step at which each feature took its value (rows × D·H).
    pub argmax: Vec<u32>,
    /// For last pooling of two directions, each one's block of the features' gradient (rows
    /// × H): the gradient on its final states.
    pub blocks: Vec<Vec<f32>>,
}

/// One way of pooling over time, forward and backward, step by step. `d` is a direction, `t`
/// its step (0-based, in its own order), `s` the states of the rows running at that step (n×S,
/// the first `h` floats a row being the output), `df` the gradient on the features (rows ×
/// D·H).
pub(crate) trait Pooling: Send + Sync + fmt::Debug {
    /// Starts a batch of `rows` sequences with `width` (`D·H`) features each, all 0.
    fn begin(&self, work: &mut PoolWork, rows: usize, width: usize) {
        work.width = width;
        work.features.clear();
        work.features.resize(rows * width, 0.0);
    }

    /// Takes in step `t` of direction `d`.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        work: &mut PoolWork,
        batch: &Batch,
        d: usize,
        t: usize,
        s: &[f32],
        s_size: usize,
        h: usize,
    );

    /// Ends the batch.
    fn finish(&self, _work: &mut PoolWork, _batch: &Batch) {}

    /// Whether any gradient reaches the outputs of the steps (see [`Pooling::add_to_step`]).
    fn reaches_steps(&self) -> bool {
        true
    }

    /// Readies the backward pass once `df` is known (`dirs` directions of `h` units).
    fn begin_backward(&self, _work: &mut PoolWork, _df: &[f32], _dirs: usize, _h: usize) {}

    /// The gradient on direction `d`'s final states (rows × H), if any reaches them directly.
    fn d_last<'a>(&self, _work: &'a PoolWork, _df: &'a [f32], _d: usize) -> Option<&'a [f32]> {
        None
    }

    /// Adds the gradient that reaches direction `d`'s step `t` from the features to `ds`
    /// (`∂L/∂s_t` of the rows still running, n×S).
    #[allow(clippy::too_many_arguments)]
    fn add_to_step(
        &self,
        work: &PoolWork,
        batch: &Batch,
        df: &[f32],
        d: usize,
        t: usize,
        ds: &mut [f32],
        s_size: usize,
        h: usize,
    );

    /// The running pool `acc` of the outputs before `x` taking `x` in (a single sequence's, for
    /// [`running`]).
    fn fold(&self, acc: &mut [f32], x: &[f32]);

    /// The features of a single sequence cut after `steps` steps, from its running pool.
    fn features(&self, acc: &[f32], _steps: usize) -> Vec<f32> {
        acc.to_vec()
    }
}

/// The features of a single sequence after each of its steps, as if it ended there: `states`
/// holds the top layer's output (D·H, one direction's block after the other) after every token
/// of a network that reads forwards only, so that the output at step `t` depends on the first
/// `t` tokens alone. The arithmetic is the pooling's, so the last entry is the features of the
/// whole sequence to the bit.
pub(crate) fn running(pool: &dyn Pooling, states: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let mut acc: Vec<f32> = Vec::new();
    let mut out = Vec::with_capacity(states.len());
    for (t, h) in states.iter().enumerate() {
        if t == 0 {
            acc.clone_from(h);
        } else {
            pool.fold(&mut acc, h);
        }
        out.push(pool.features(&acc, t + 1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    const H: usize = 3;
    /// An LSTM's state: `h` then `c`, of which only `h` is pooled.
    const S: usize = 2 * H;

    /// The features of a batch whose one direction's states at step `t` are `states[t]`.
    fn pooled(pool: &dyn Pooling, batch: &Batch, states: &[Vec<f32>]) -> PoolWork {
        let mut work = PoolWork::default();
        pool.begin(&mut work, batch.rows(), H);
        for (t, s) in states.iter().enumerate() {
            pool.step(&mut work, batch, 0, t, s, S, H);
        }
        pool.finish(&mut work, batch);
        work
    }

    #[test]
    fn every_pooling_passes_back_the_gradient_of_finite_differences() {
        // rows of 3, 2, 2 and 1 tokens: they end at different steps
        let batch = Batch::new(&[&[0, 0, 0], &[0, 0], &[0, 0], &[0]], &[]);
        let mut rng = Rng::new(4);
        let mut states: Vec<Vec<f32>> = (0..batch.steps())
            .map(|t| {
                (0..batch.active(t) * S)
                    .map(|_| rng.symmetric(1.0) as f32)
                    .collect()
            })
            .collect();
        // the loss Σ r ⊙ f, whose gradient on the features is r
        let r: Vec<f32> = (0..batch.rows() * H)
            .map(|_| rng.symmetric(1.0) as f32)
            .collect();
        for kind in Pool::ALL {
            let pool = kind.build();
            let mut work = pooled(&*pool, &batch, &states);
            pool.begin_backward(&mut work, &r, 1, H);
            for t in 0..batch.steps() {
                let n = batch.active(t);
                let mut ds = vec![0.0; n * S];
                pool.add_to_step(&work, &batch, &r, 0, t, &mut ds, S, H);
                if let Some(d_last) = pool.d_last(&work, &r, 0) {
                    for row in 0..n {
                        if batch.lengths()[row] == t + 1 {
                            for j in 0..H {
                                ds[row * S + j] += d_last[row * H + j];
                            }
                        }
                    }
                }
                for i in 0..n * S {
                    let eps = 1e-3;
                    let saved = states[t][i];
                    let mut loss = |x: f32| {
                        states[t][i] = x;
                        let f = pooled(&*pool, &batch, &states).features;
                        f.iter().zip(&r).map(|(a, b)| a * b).sum::<f32>()
                    };
                    let numeric = (loss(saved + eps) - loss(saved - eps)) / (2.0 * eps);
                    states[t][i] = saved;
                    assert!(
                        (ds[i] - numeric).abs() < 1e-3,
                        "{kind}: step {t}, state float {i}: {} against {numeric}",
                        ds[i]
                    );
                }
            }
        }
    }

    #[test]
    fn the_running_features_end_in_the_whole_sequences_to_the_bit() {
        let mut rng = Rng::new(5);
        let steps: Vec<Vec<f32>> = (0..4)
            .map(|_| (0..H).map(|_| rng.symmetric(1.0) as f32).collect())
            .collect();
        let batch = Batch::new(&[&[0, 0, 0, 0]], &[]);
        for kind in Pool::ALL {
            let pool = kind.build();
            let running = running(&*pool, &steps);
            let states: Vec<Vec<f32>> =
                steps.iter().map(|h| [&h[..], &[0.0; H]].concat()).collect();
            assert_eq!(running.len(), 4);
            assert_eq!(
                running[3],
                pooled(&*pool, &batch, &states).features,
                "{kind}"
            );
        }
        // mean after two steps: their average
        let mean = running(&*Pool::Mean.build(), &steps);
        assert!((mean[1][0] - (steps[0][0] + steps[1][0]) / 2.0).abs() < 1e-6);
    }
}
