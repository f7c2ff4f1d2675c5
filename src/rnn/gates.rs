//! What the gated cells (GRU, LSTM) share: PyTorch's recurrent tensors with the gates stacked,
//! and per-thread scratch space for the steps.
//!
//! A cell with `G` gates (3 for a GRU, 4 for an LSTM) and `H` units has
//!
//! | tensor      | shape  | stored     |
//! |-------------|--------|------------|
//! | `weight_hh` | G·H×H  | row by row |
//! | `bias_hh`   | G·H    |            |
//!
//! with the gates' blocks of `H` rows in PyTorch's order. The input side (`weight_ih`,
//! `bias_ih`) belongs to the layer, which hands the cell `pre_t = W_ih x_t + b_ih`.

use std::cell::RefCell;

use crate::kernels::AlignedVec;

/// The parameter shape of a gated cell: `gates` blocks of `hidden` units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stacked {
    pub hidden: usize,
    pub gates: usize,
}

impl Stacked {
    /// `G·H`, the rows of every tensor.
    pub fn rows(&self) -> usize {
        self.gates * self.hidden
    }

    /// PyTorch's names (without prefix and suffix) and shapes.
    pub fn tensors(&self) -> Vec<(&'static str, Vec<usize>)> {
        let (h, g) = (self.hidden, self.rows());
        vec![("weight_hh", vec![g, h]), ("bias_hh", vec![g])]
    }

    /// Splits the cell's parameters `p` into `W_h` (row by row) and `b_h`.
    pub fn split<'a>(&self, p: &'a [f32]) -> (&'a [f32], &'a [f32]) {
        let g = self.rows();
        let (wh, bh) = p.split_at(g * self.hidden);
        (wh, &bh[..g])
    }
}

thread_local! {
    /// Scratch space of the steps, forward and backward, reused from step to step on each thread.
    static SCRATCH: RefCell<AlignedVec> = const { RefCell::new(AlignedVec::new()) };
}

/// Runs `f` on a zeroed scratch buffer of `len` floats, owned by the calling thread (calls do
/// not nest).
pub(super) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with_borrow_mut(|buf| {
        buf.clear();
        buf.resize(len, 0.0);
        f(buf)
    })
}
