//! Last pooling: each direction's state after it has read the whole sequence.
//!
//! ```text
//! f_d = h_{d,T}     =>  ∂L/∂h_{d,T} = ∂L/∂f_d, on the final state only
//! ```

use super::{PoolWork, Pooling};
use crate::rnn::batch::Batch;

/// `f_d = h_{d,T}`: PyTorch's `h_n`, `cat(h_n[-2], h_n[-1])` for two directions.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Last;

impl Last {
    pub fn new() -> Self {
        Last
    }
}

impl Pooling for Last {
    fn step(
        &self,
        work: &mut PoolWork,
        batch: &Batch,
        d: usize,
        t: usize,
        s: &[f32],
        s_size: usize,
        h: usize,
    ) {
        let width = work.width;
        // the rows whose last step this is: those running now but not at step t + 1
        let ending = if t + 1 < batch.steps() {
            batch.active(t + 1)
        } else {
            0
        };
        for r in ending..batch.active(t) {
            work.features[r * width + d * h..][..h].copy_from_slice(&s[r * s_size..][..h]);
        }
    }

    fn reaches_steps(&self) -> bool {
        false
    }

    fn begin_backward(&self, work: &mut PoolWork, df: &[f32], dirs: usize, h: usize) {
        if dirs < 2 {
            work.blocks.clear(); // one direction's gradient on its final states is `df` itself
            return;
        }
        // each direction's part of the gradient on the features reaches its final states
        work.blocks.resize_with(dirs, Vec::new);
        let width = dirs * h;
        for (d, out) in work.blocks.iter_mut().enumerate() {
            out.clear();
            for row in df.chunks_exact(width) {
                out.extend_from_slice(&row[d * h..][..h]);
            }
        }
    }

    fn d_last<'a>(&self, work: &'a PoolWork, df: &'a [f32], d: usize) -> Option<&'a [f32]> {
        Some(work.blocks.get(d).map_or(df, Vec::as_slice))
    }

    fn add_to_step(
        &self,
        _: &PoolWork,
        _: &Batch,
        _: &[f32],
        _: usize,
        _: usize,
        _: &mut [f32],
        _: usize,
        _: usize,
    ) {
        // the gradient reaches the final states only (see `d_last`)
    }

    fn fold(&self, acc: &mut [f32], x: &[f32]) {
        acc.copy_from_slice(x);
    }
}
