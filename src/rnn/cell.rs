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
use crate::kernels::{
    AlignedVec, matmul_nn, matmul_nt, matmul_packed, pack, packed_len, packing_moves,
};

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
    ///
    /// `w_hh` gives the product with the recurrent weights, which every cell keeps as the
    /// first tensor of its parameters (see [`Recurrent`]).
    #[allow(clippy::too_many_arguments)]
    fn forward_step(
        &self,
        p: &[f32],
        w_hh: Recurrent<'_>,
        pre: &[f32],
        s_prev: Option<&[f32]>,
        s: &mut [f32],
        cache: &mut [f32],
    );

    /// One step backward. On entry `ds` (n×S) holds `∂L/∂s_t`; on return it holds `∂L/∂s_{t-1}`,
    /// and `dpre` (n×P) holds the step's pre-activation gradients, the first `G·H` of each row
    /// being `∂L/∂pre_t`. At the first step (`s_prev` is `None`) nothing comes before, and `ds`
    /// need not be carried back. `w_hh` gives the product with the recurrent weights, as in
    /// [`Cell::forward_step`].
    #[allow(clippy::too_many_arguments)]
    fn backward_step(
        &self,
        p: &[f32],
        w_hh: Recurrent<'_>,
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

/// A cell's recurrent weights `W_hh` (G·H × H), which every cell keeps as the first tensor of
/// its parameters, for the products of its steps: forward `A += H_prev · W_hhᵀ`, backward
/// `DH_prev += DA · W_hh`.
///
/// A matrix product reads its right-hand side fastest laid out for it, and a general product
/// copies it so at every call: at every step, for the same weights. So for a pass of many
/// steps the unroll lays the weights out once ([`Recurrent::lay_out`]: `W_hhᵀ` for the forward
/// pass, `W_hh` for the backward one, in [`crate::kernels::pack`]'s layout) and every step's
/// product reads them in place; for a few steps (a text being generated) or a few rows the
/// products read `W_hh` as it is (see `unroll::LAY_OUT_FROM`).
#[derive(Clone, Copy, Debug)]
pub struct Recurrent<'a> {
    /// `W_hh`: G·H × H.
    w: &'a [f32],
    /// `W_hhᵀ` (H × G·H), packed, when laid out for the forward pass.
    forward: Option<&'a [f32]>,
    /// `W_hh` (G·H × H), packed, when laid out for the backward pass.
    backward: Option<&'a [f32]>,
    hidden: usize,
}

/// The product a layout of [`Recurrent`] serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// `A += H_prev · W_hhᵀ`.
    Forward,
    /// `DH_prev += DA · W_hh`.
    Backward,
}

impl<'a> Recurrent<'a> {
    /// The recurrent weights of `cell`, from the start of its parameters `p`.
    pub fn of(cell: &dyn Cell, p: &'a [f32]) -> Self {
        let hidden = cell.hidden();
        Recurrent {
            w: &p[..cell.gates() * hidden * hidden],
            forward: None,
            backward: None,
            hidden,
        }
    }

    /// `W_hh`: G·H × H.
    pub fn weights(&self) -> &'a [f32] {
        self.w
    }

    /// The same weights, laid out in `buf` (resized) for the products of `pass`, which then
    /// read them there; unchanged where the layout is how `W_hh` lies (see
    /// [`crate::kernels::packing_moves`]).
    pub fn lay_out(self, buf: &'a mut AlignedVec, pass: Pass) -> Self {
        let (h, gh) = (self.hidden, self.w.len() / self.hidden);
        let (k, m, transposed) = match pass {
            Pass::Forward => (h, gh, true),
            Pass::Backward => (gh, h, false),
        };
        if !packing_moves(transposed) {
            return self;
        }
        buf.resize(packed_len(k, m), 0.0);
        pack(buf, self.w, k, m, transposed);
        let packed = Some(&buf[..]);
        match pass {
            Pass::Forward => Recurrent {
                forward: packed,
                ..self
            },
            Pass::Backward => Recurrent {
                backward: packed,
                ..self
            },
        }
    }

    /// `out (n × G·H) += h_prev (n × H) · W_hhᵀ`.
    pub fn add_product(&self, out: &mut [f32], h_prev: &[f32], n: usize) {
        let (h, gh) = (self.hidden, self.w.len() / self.hidden);
        match self.forward {
            Some(packed) => matmul_packed(out, h_prev, packed, n, h, gh),
            None => matmul_nt(out, h_prev, self.w, n, h, gh),
        }
    }

    /// `out (n × H) += d (n × G·H) · W_hh`: the gradient that the step's pre-activations
    /// pass back to the state before it.
    pub fn add_product_back(&self, out: &mut [f32], d: &[f32], n: usize) {
        let (h, gh) = (self.hidden, self.w.len() / self.hidden);
        match self.backward {
            Some(packed) => matmul_packed(out, d, packed, n, gh, h),
            None => matmul_nn(out, d, self.w, n, gh, h),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::Lstm;

    #[test]
    fn the_products_are_the_same_with_the_weights_laid_out() {
        let (h, n) = (20, 3);
        let cell = Lstm::new(h);
        let p: Vec<f32> = (0..4 * h * h + 4 * h)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let h_prev: Vec<f32> = (0..n * h).map(|i| (i as f32 * 0.1).sin()).collect();
        let d: Vec<f32> = (0..n * 4 * h).map(|i| (i as f32 * 0.3).cos()).collect();
        let w_hh = Recurrent::of(&cell, &p);
        assert_eq!(w_hh.weights(), &p[..4 * h * h]);
        let (mut forward, mut backward) = (AlignedVec::new(), AlignedVec::new());
        let laid_out = w_hh
            .lay_out(&mut forward, Pass::Forward)
            .lay_out(&mut backward, Pass::Backward);
        let (mut plain, mut fast) = (vec![0.5; n * 4 * h], vec![0.5; n * 4 * h]);
        w_hh.add_product(&mut plain, &h_prev, n);
        laid_out.add_product(&mut fast, &h_prev, n);
        close(&plain, &fast);
        // and it is a product: row 0, gate unit 0 (W_hh's row 0)
        let want: f32 = 0.5 + (0..h).map(|j| h_prev[j] * p[j]).sum::<f32>();
        assert!((plain[0] - want).abs() < 1e-5);
        let (mut plain, mut fast) = (vec![0.25; n * h], vec![0.25; n * h]);
        w_hh.add_product_back(&mut plain, &d, n);
        laid_out.add_product_back(&mut fast, &d, n);
        close(&plain, &fast);
        // row 0, unit 0: W_hh's column 0
        let want: f32 = 0.25 + (0..4 * h).map(|g| d[g] * p[g * h]).sum::<f32>();
        assert!((plain[0] - want).abs() < 1e-4);
    }

    fn close(a: &[f32], b: &[f32]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }
}
