//! The interface between the unroll over time (in [`super::unroll`]) and one recurrent cell.
//!
//! A cell is **one time step of one direction of one layer**, for a batch of `n` sequences at
//! once: it maps the state `s_{t-1}` (n×S) and the step's input to `s_t` (n×S), and back again
//! for gradients. Its input arrives already projected: `pre_t = W_ih x_t + b_ih` (n×G·H), which
//! the layer computes for every token at once, by a column look-up when `x_t` is one-hot or by
//! one matrix product when it is dense (see [`super::layer`]). So a cell owns only the
//! recurrent side, PyTorch's `weight_hh` and `bias_hh`, and neither knows nor cares what its
//! input is, which layer it sits in, or which way it reads. Everything else (the loop over time,
//! sequences of different lengths, directions, layers, pooling, the loss) is written once and
//! serves every cell, so a new cell is one new file that implements this trait.
//!
//! Dimensions: `n` sequences in the step, `H` hidden units, `G` gates (1 for the plain cell),
//! `S` state floats a sequence (`H`, or more for a cell with a memory, like an LSTM), `K` cache
//! floats a sequence a step (intermediate values the backward step needs), and `P` floats of
//! pre-activation gradient a sequence a step, of which the first `G·H` are `∂L/∂pre_t`.

use std::fmt;

use super::grads::CellGradient;

/// One recurrent step, forward and backward, for a batch of sequences.
///
/// Parameters arrive as the cell's own part of the flat buffer (`p`, laid out as
/// [`Cell::tensors`] says) and gradients through a [`CellGradient`] with the same layout. The
/// network draws them as PyTorch does, uniform in `[-1/√H, 1/√H]`
/// ([`super::Network::new`]).
///
/// Backward runs in two parts. [`Cell::backward_step`], once a step from the last to the
/// first, carries the state gradient back and keeps the step's *pre-activation* gradients.
/// [`Cell::backward_weights`], once a batch, turns the pre-activation gradients of all steps
/// into parameter gradients. Every weight gradient is a sum over steps (`dWhh = Σ_t da_t ·
/// h_{t-1}ᵀ`), so computing it once, as one matrix product over all tokens, replaces one small
/// product a step with one large one.
pub trait Cell: Send + Sync + fmt::Debug {
    /// `H`, the number of hidden units (the size of the output `h_t`).
    fn hidden(&self) -> usize;

    /// `G`: the input projection `pre_t` is `G·H` floats a sequence.
    fn gates(&self) -> usize;

    /// `S`, floats of state a sequence; the first `H` of them are `h_t`.
    fn state_size(&self) -> usize {
        self.hidden()
    }

    /// `K`, floats a sequence a step that [`Cell::forward_step`] leaves for the backward step.
    fn cache_size(&self) -> usize {
        0
    }

    /// `P`, floats a sequence a step of pre-activation gradient; at least `G·H`.
    fn pre_size(&self) -> usize {
        self.gates() * self.hidden()
    }

    /// The cell's parameter tensors from offset 0, as PyTorch's names without their prefix and
    /// layer suffix (`weight_hh` becomes `rnn.weight_hh_l0`) and PyTorch's shapes.
    fn tensors(&self) -> Vec<(&'static str, Vec<usize>)>;

    /// Tensors PyTorch keeps that this cell folds into the layer's input bias, as
    /// `(name, shape)` without prefix and suffix: a model file writes them as zeros and adds
    /// them to `bias_ih` on loading, so files from PyTorch load too. Default: none.
    fn folded_tensors(&self) -> Vec<(&'static str, Vec<usize>)> {
        Vec::new()
    }

    /// One step forward for `n` sequences: from `s_prev` (n×S) and the projected input `pre`
    /// (n×G·H) to `s` (n×S), leaving what the backward step needs in `cache` (n×K). At the
    /// first step `s_prev` is `None` when the initial state is zero, and products with it can
    /// be skipped (a language model's window that carries on from the one before starts from
    /// `Some` state).
    fn forward_step(
        &self,
        p: &[f32],
        pre: &[f32],
        s_prev: Option<&[f32]>,
        s: &mut [f32],
        cache: &mut [f32],
    );

    /// One step backward. On entry `ds` (n×S) holds `∂L/∂s_t`; on return it holds `∂L/∂s_{t-1}`,
    /// and `dpre` (n×P) holds the step's pre-activation gradients, the first `G·H` of each row
    /// being `∂L/∂pre_t`. At the first step (`s_prev` is `None`) nothing comes before, and `ds`
    /// need not be carried back.
    fn backward_step(
        &self,
        p: &[f32],
        s_prev: Option<&[f32]>,
        s: &[f32],
        cache: &[f32],
        ds: &mut [f32],
        dpre: &mut [f32],
    );

    /// **Adds** the gradients of the cell's parameters for a whole batch, from the
    /// pre-activation gradients of every token (`dpre`, N×P, all steps packed) and the hidden
    /// state before every token *after the first step's*: `h_prev` is (N − N₀)×H, where the
    /// first N₀ tokens, read from the zero initial state, contribute nothing to the recurrent
    /// weights (N₀ = 0 when the first step started from a carried state). So `h_prev` pairs
    /// with the *last* rows of `dpre`. A weight gradient that is one product over all tokens goes to
    /// [`CellGradient::add_product`], which may keep it as its factors until the update.
    fn backward_weights(&self, p: &[f32], g: &mut CellGradient<'_>, h_prev: &[f32], dpre: &[f32]);

    /// A boxed copy (so that a network holding `Box<dyn Cell>`s can be cloned).
    fn clone_box(&self) -> Box<dyn Cell>;
}

impl Clone for Box<dyn Cell> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}
