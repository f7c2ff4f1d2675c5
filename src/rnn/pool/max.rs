//! Max pooling, unit by unit, over each sequence's own tokens.
//!
//! ```text
//! f_{d,j} = max_t h_{d,t,j}     =>  ∂L/∂h_{d,t*,j} += ∂L/∂f_{d,j}   at the argmax t* only
//! ```
//!
//! The first step that holds the maximum is its argmax.

use super::{PoolWork, Pooling};
use crate::rnn::batch::Batch;
use crate::kernels::max_step;

/// `f_{d,j} = max_t h_{d,t,j}`, remembering the step of every maximum for the backward pass.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Max;

impl Max {
    pub fn new() -> Self {
        Max
    }
}

impl Pooling for Max {
    fn begin(&self, work: &mut PoolWork, rows: usize, width: usize) {
        work.width = width;
        work.features.clear();
        work.features.resize(rows * width, 0.0);
        work.argmax.clear();
        work.argmax.resize(rows * width, 0);
    }

    fn step(
        &self,
        work: &mut PoolWork,
        _: &Batch,
        d: usize,
        t: usize,
        s: &[f32],
        s_size: usize,
        h: usize,
    ) {
        let width = work.width;
        for (r, state) in s.chunks_exact(s_size).enumerate() {
            let at = r * width + d * h;
            let f = &mut work.features[at..][..h];
            let arg = &mut work.argmax[at..][..h];
            max_step(f, arg, &state[..h], t as u32);
        }
    }

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
    ) {
        let width = df.len() / batch.rows().max(1);
        // forward: f_j = h_{t*, j}  =>  dh_{t*, j} += df_j, at the argmax only
        for (r, row) in ds.chunks_exact_mut(s_size).enumerate() {
            let at = r * width + d * h;
            let (arg, grad) = (&work.argmax[at..][..h], &df[at..][..h]);
            for ((g, &a), &x) in row[..h].iter_mut().zip(arg).zip(grad) {
                if a as usize == t {
                    *g += x;
                }
            }
        }
    }

    fn fold(&self, acc: &mut [f32], x: &[f32]) {
        for (a, &x) in acc.iter_mut().zip(x) {
            if x > *a {
                *a = x;
            }
        }
    }
}
