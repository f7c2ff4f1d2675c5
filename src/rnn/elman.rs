//! The Elman cell, the seed's recurrent step, PyTorch's `nn.RNN` with `tanh`:
//!
//! ```text
//! h_t = tanh(Wxh · x_t + bh + Whh · h_{t-1})
//!       └── pre_t ───────┘
//! ```
//!
//! The layer hands the cell `pre_t = Wxh · x_t + bh` (when `x_t` is one-hot, column `x_t` of
//! `Wxh` plus the bias; see [`super::layer`]), so the cell itself holds one tensor:
//!
//! | parameter | shape | PyTorch name        | maps                      |
//! |-----------|-------|---------------------|---------------------------|
//! | `Whh`     | H×H   | `rnn.weight_hh_l0`  | previous hidden -> hidden |
//!
//! PyTorch has a second bias, `bias_hh_l0`, which is always added to `bias_ih_l0`; one bias
//! is the same model, so the layer keeps one and the model file writes the other as zeros.

use super::cell::{Cell, Recurrent};
use super::grads::CellGradient;
use crate::kernels::{tanh_backward, tanh_in_place};

/// The Elman (tanh) cell with `hidden` units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elman {
    hidden: usize,
}

impl Elman {
    /// A cell with `hidden` units.
    pub fn new(hidden: usize) -> Self {
        Elman { hidden }
    }
}

impl Cell for Elman {
    fn hidden(&self) -> usize {
        self.hidden
    }

    fn gates(&self) -> usize {
        1
    }

    fn tensors(&self) -> Vec<(&'static str, Vec<usize>)> {
        vec![("weight_hh", vec![self.hidden, self.hidden])] // Whh
    }

    /// `h_t` depends only on `bias_ih + bias_hh`, so one bias is kept.
    fn folded_tensors(&self) -> Vec<(&'static str, Vec<usize>)> {
        vec![("bias_hh", vec![self.hidden])]
    }

    fn forward_step(
        &self,
        _p: &[f32],
        w_hh: Recurrent<'_>,
        pre: &[f32],
        s_prev: Option<&[f32]>,
        s: &mut [f32],
        _cache: &mut [f32],
    ) {
        let n = pre.len() / self.hidden;
        // a = pre = Wxh·x + bh
        s.copy_from_slice(pre);
        // a += Whh·h_{t-1}, for every sequence: A += H_prev · Whhᵀ (nothing when h_{t-1} = h_0 = 0)
        if let Some(s_prev) = s_prev {
            w_hh.add_product(s, s_prev, n);
        }
        // h_t = tanh(a)
        tanh_in_place(s);
    }

    fn backward_step(
        &self,
        _p: &[f32],
        w_hh: Recurrent<'_>,
        s_prev: Option<&[f32]>,
        s: &[f32],
        _cache: &[f32],
        ds: &mut [f32],
        da: &mut [f32],
    ) {
        let n = ds.len() / self.hidden;
        // forward: h_t = tanh(a)  =>  da = (1 - h_t²) ⊙ dh_t
        tanh_backward(da, ds, s);
        // forward: a = ... + Whh·h_{t-1}  =>  dh_{t-1} = Whhᵀ·da; row by row, DH_prev = DA · Whh
        // (the transpose matters)
        if s_prev.is_some() {
            ds.fill(0.0);
            w_hh.add_product_back(ds, da, n);
        }
    }

    fn backward_weights(&self, _p: &[f32], g: &mut CellGradient<'_>, h_prev: &[f32], da: &[f32]) {
        let h = self.hidden;
        // forward: a += Whh·h_{t-1}  =>  dWhh += Σ_t da_t·h_{t-1}ᵀ = DAᵀ·H_prev: one product
        // over all tokens but the first step's, whose h_{t-1} = h_0 = 0.
        let n = h_prev.len() / h;
        g.add_product(0, &da[da.len() - n * h..], h_prev, h, h);
    }

    fn clone_box(&self) -> Box<dyn Cell> {
        Box::new(*self)
    }
}
