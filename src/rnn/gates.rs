//! What the gated cells (GRU, LSTM) share: PyTorch's four tensors with the gates stacked, their
//! initialisation, and per-thread scratch space for the steps.
//!
//! A cell with `G` gates (3 for a GRU, 4 for an LSTM) and `H` units has
//!
//! | tensor              | shape  | stored                                     |
//! |---------------------|--------|--------------------------------------------|
//! | `rnn.weight_ih_l0`  | G·H×V  | column by column: a token's column is `G·H` floats |
//! | `rnn.weight_hh_l0`  | G·H×H  | row by row                                  |
//! | `rnn.bias_ih_l0`    | G·H    |                                             |
//! | `rnn.bias_hh_l0`    | G·H    |                                             |
//!
//! with the gates' blocks of `H` rows in PyTorch's order.

use std::cell::RefCell;

use super::params::Layout;
use crate::kernels::AlignedVec;
use crate::rng::Rng;

/// The parameter shape of a gated cell: `gates` blocks of `hidden` units over `vocab` tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stacked {
    pub vocab: usize,
    pub hidden: usize,
    pub gates: usize,
}

/// The four tensors of a gated cell, as slices of its part of the parameter buffer.
pub(super) struct Tensors<'a> {
    /// `W_i`, column by column.
    pub wi: &'a [f32],
    /// `W_h`, row by row.
    pub wh: &'a [f32],
    pub bi: &'a [f32],
    pub bh: &'a [f32],
}

impl Stacked {
    /// `G·H`, the rows of every tensor.
    pub fn rows(&self) -> usize {
        self.gates * self.hidden
    }

    /// The layout, with PyTorch's names and shapes.
    pub fn layout(&self) -> Layout {
        let (v, h, g) = (self.vocab, self.hidden, self.rows());
        let mut layout = Layout::default();
        layout.push("rnn.weight_ih_l0", &[g, v], true);
        layout.push("rnn.weight_hh_l0", &[g, h], false);
        layout.push("rnn.bias_ih_l0", &[g], false);
        layout.push("rnn.bias_hh_l0", &[g], false);
        layout
    }

    /// Splits the cell's parameters `p` into its four tensors.
    pub fn tensors<'a>(&self, p: &'a [f32]) -> Tensors<'a> {
        let g = self.rows();
        let (wi, rest) = p.split_at(g * self.vocab);
        let (wh, rest) = rest.split_at(g * self.hidden);
        let (bi, bh) = rest[..2 * g].split_at(g);
        Tensors { wi, wh, bi, bh }
    }

    /// Everything but the input weights uniform in `[-1/√H, 1/√H]`, as PyTorch initialises
    /// `nn.GRU` and `nn.LSTM`; the input weights in `[-input, input]`.
    pub fn init(&self, p: &mut [f32], input: f32, rng: &mut Rng) {
        let a = 1.0 / (self.hidden as f64).sqrt();
        let (wi, rest) = p.split_at_mut(self.rows() * self.vocab);
        for w in wi {
            *w = rng.symmetric(f64::from(input)) as f32;
        }
        for w in &mut rest[..self.rows() * (self.hidden + 2)] {
            *w = rng.symmetric(a) as f32;
        }
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
