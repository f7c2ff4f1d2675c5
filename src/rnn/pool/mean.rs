//! Mean pooling over each sequence's own tokens.
//!
//! ```text
//! f_d = (1/T) Σ_t h_{d,t}     =>  ∂L/∂h_{d,t} += ∂L/∂f_d / T   at every step
//! ```

use super::{PoolWork, Pooling};
use crate::rnn::batch::Batch;

/// `f_d = (1/T) Σ_t h_{d,t}`: the sums are taken step by step, divided once at the end.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Mean;

impl Mean {
    pub fn new() -> Self {
        Mean
    }
}

impl Pooling for Mean {
    fn step(
        &self,
        work: &mut PoolWork,
        _: &Batch,
        d: usize,
        _: usize,
        s: &[f32],
        s_size: usize,
        h: usize,
    ) {
        let width = work.width;
        for (r, state) in s.chunks_exact(s_size).enumerate() {
            let f = &mut work.features[r * width + d * h..][..h];
            for (fi, &x) in f.iter_mut().zip(&state[..h]) {
                *fi += x;
            }
        }
    }

    /// Divides the sums by the lengths.
    fn finish(&self, work: &mut PoolWork, batch: &Batch) {
        if batch.rows() == 0 {
            return;
        }
        let width = work.features.len() / batch.rows();
        for (f, &len) in work.features.chunks_exact_mut(width).zip(batch.lengths()) {
            if len > 0 {
                let scale = 1.0 / len as f32;
                for x in f {
                    *x *= scale;
                }
            }
        }
    }

    fn add_to_step(
        &self,
        _: &PoolWork,
        batch: &Batch,
        df: &[f32],
        d: usize,
        _: usize,
        ds: &mut [f32],
        s_size: usize,
        h: usize,
    ) {
        let width = df.len() / batch.rows().max(1);
        // forward: f = (1/T) Σ_t h_t  =>  dh_t += df / T
        for (r, (row, &len)) in ds.chunks_exact_mut(s_size).zip(batch.lengths()).enumerate() {
            let scale = 1.0 / len as f32;
            for (g, &x) in row[..h].iter_mut().zip(&df[r * width + d * h..][..h]) {
                *g += x * scale;
            }
        }
    }

    fn fold(&self, acc: &mut [f32], x: &[f32]) {
        for (a, &x) in acc.iter_mut().zip(x) {
            *a += x;
        }
    }

    fn features(&self, acc: &[f32], steps: usize) -> Vec<f32> {
        let scale = 1.0 / steps as f32;
        acc.iter().map(|&a| a * scale).collect()
    }
}
