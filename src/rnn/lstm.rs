//! The long short-term memory cell, PyTorch's `nn.LSTM`, with its equations and gate order
//! (i, f, g, o):
//!
//! ```text
//! i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)      input gate
//! f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)      forget gate
//! g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)   candidate
//! o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)      output gate
//! c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
//! h_t = o_t ⊙ tanh(c_t)
//! ```
//!
//! The state of a sequence is `[h_t, c_t]` (2H floats). The memory `c` is carried forward by a
//! sum, not through a matrix and a `tanh`: where `f ≈ 1` the gradient reaches `c_{t-1}`
//! undiminished (`∂c_t/∂c_{t-1} = f_t`), which is why an LSTM learns from tokens far back.
//!
//! | parameter | shape | PyTorch name        | holds                          |
//! |-----------|-------|---------------------|--------------------------------|
//! | `W_i`     | 4H×I  | `rnn.weight_ih_l0`  | `W_ii; W_if; W_ig; W_io` (the layer's) |
//! | `b_i`     | 4H    | `rnn.bias_ih_l0`    | `b_ii; b_if; b_ig; b_io` (the layer's) |
//! | `W_h`     | 4H×H  | `rnn.weight_hh_l0`  | `W_hi; W_hf; W_hg; W_ho`       |
//! | `b_h`     | 4H    | `rnn.bias_hh_l0`    | `b_hi; b_hf; b_hg; b_ho`       |
//!
//! The layer hands the cell `pre_t = W_i x_t + b_i` (4H a sequence); the cell holds `W_h` and
//! `b_h`. Both biases are kept, as PyTorch keeps them (they always appear summed, so their
//! gradients are equal).
//!
//! **Backward**, one step, from `dh = ∂L/∂h_t` and `dc = ∂L/∂c_t` (element by element):
//!
//! ```text
//! dc  += dh ⊙ o ⊙ (1 - tanh²(c_t))        the path through h_t = o ⊙ tanh(c_t)
//! da_i = dc ⊙ g ⊙ i ⊙ (1 - i)             da_f = dc ⊙ c_{t-1} ⊙ f ⊙ (1 - f)
//! da_g = dc ⊙ i ⊙ (1 - g²)                da_o = dh ⊙ tanh(c_t) ⊙ o ⊙ (1 - o)
//! dc_{t-1} = dc ⊙ f                       dh_{t-1} = W_hᵀ [da_i, da_f, da_g, da_o]
//! ```
//!
//! and over a batch, with `da = [da_i, da_f, da_g, da_o]`: `db_h += da`, `dW_h += da · h_{t-1}ᵀ`;
//! `da` is also `∂L/∂pre_t`, which the layer turns into `dW_i` and `db_i`.

use super::cell::{Cell, Recurrent};
use super::gates::{Stacked, with_scratch};
use super::grads::CellGradient;
use crate::kernels::{
    add_into, lstm_backward, lstm_backward_first, lstm_memory, sigmoid_in_place, tanh_in_place,
};

/// An LSTM cell with `hidden` units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lstm {
    shape: Stacked,
}

impl Lstm {
    /// A cell with `hidden` units.
    pub fn new(hidden: usize) -> Self {
        Lstm {
            shape: Stacked { hidden, gates: 4 },
        }
    }
}

impl Cell for Lstm {
    fn hidden(&self) -> usize {
        self.shape.hidden
    }

    fn gates(&self) -> usize {
        4
    }

    /// `[h_t, c_t]`.
    fn state_size(&self) -> usize {
        2 * self.shape.hidden
    }

    /// Per sequence and step: the four gates after their activations, and `tanh(c_t)`.
    fn cache_size(&self) -> usize {
        5 * self.shape.hidden
    }

    /// `[da_i, da_f, da_g, da_o]`.
    fn pre_size(&self) -> usize {
        4 * self.shape.hidden
    }

    fn tensors(&self) -> Vec<(&'static str, Vec<usize>)> {
        self.shape.tensors()
    }

    /// The cache of the step is laid out as two blocks: `n×4H` gates, `n×H` `tanh(c_t)`.
    fn forward_step(
        &self,
        p: &[f32],
        w_hh: Recurrent<'_>,
        pre: &[f32],
        s_prev: Option<&[f32]>,
        s: &mut [f32],
        cache: &mut [f32],
    ) {
        let h = self.shape.hidden;
        let n = pre.len() / (4 * h);
        let (_, bh) = self.shape.split(p);
        let (gates, tanh_c) = cache[..5 * h * n].split_at_mut(4 * h * n);
        // a = pre + b_h (+ W_h h_{t-1} below), with pre = W_i x + b_i
        for (row, gi) in gates.chunks_exact_mut(4 * h).zip(pre.chunks_exact(4 * h)) {
            for ((a, &g), &b) in row.iter_mut().zip(gi).zip(bh) {
                *a = g + b;
            }
        }
        if let Some(s_prev) = s_prev {
            // the product needs the `h` halves of the state rows contiguous
            with_scratch(n * h, |h_prev| {
                for (dst, src) in h_prev.chunks_exact_mut(h).zip(s_prev.chunks_exact(2 * h)) {
                    dst.copy_from_slice(&src[..h]);
                }
                w_hh.add_product(gates, h_prev, n);
            });
        }
        for row in gates.chunks_exact_mut(4 * h) {
            sigmoid_in_place(&mut row[..2 * h]); // i, f
            tanh_in_place(&mut row[2 * h..3 * h]); // g
            sigmoid_in_place(&mut row[3 * h..]); // o
        }
        // c = f ⊙ c_{t-1} + i ⊙ g, kept in the state; tanh(c) in the cache
        for (r, (state, row)) in s
            .chunks_exact_mut(2 * h)
            .zip(gates.chunks_exact(4 * h))
            .enumerate()
        {
            let (i, f, g) = (&row[..h], &row[h..2 * h], &row[2 * h..3 * h]);
            let c = &mut state[h..];
            match s_prev {
                Some(prev) => lstm_memory(c, f, &prev[r * 2 * h + h..][..h], i, g),
                None => {
                    for j in 0..h {
                        c[j] = i[j] * g[j];
                    }
                }
            }
        }
        for (t, state) in tanh_c.chunks_exact_mut(h).zip(s.chunks_exact(2 * h)) {
            t.copy_from_slice(&state[h..]);
        }
        tanh_in_place(tanh_c);
        // h = o ⊙ tanh(c)
        for ((state, row), t) in s
            .chunks_exact_mut(2 * h)
            .zip(gates.chunks_exact(4 * h))
            .zip(tanh_c.chunks_exact(h))
        {
            for ((hi, &oi), &ti) in state[..h].iter_mut().zip(&row[3 * h..]).zip(t) {
                *hi = oi * ti;
            }
        }
    }

    fn backward_step(
        &self,
        _p: &[f32],
        w_hh: Recurrent<'_>,
        s_prev: Option<&[f32]>,
        _s: &[f32],
        cache: &[f32],
        ds: &mut [f32],
        dpre: &mut [f32],
    ) {
        let h = self.shape.hidden;
        let n = ds.len() / (2 * h);
        let (gates, tanh_c) = cache[..5 * h * n].split_at(4 * h * n);
        // the gates' gradients and dc_{t-1}, row by row (see [`lstm_backward`] for the math)
        for (r, ((state_grad, d), (row, t))) in ds
            .chunks_exact_mut(2 * h)
            .zip(dpre.chunks_exact_mut(4 * h))
            .zip(gates.chunks_exact(4 * h).zip(tanh_c.chunks_exact(h)))
            .enumerate()
        {
            match s_prev {
                Some(sp) => lstm_backward(state_grad, row, t, &sp[r * 2 * h + h..][..h], d),
                None => lstm_backward_first(state_grad, row, t, &[], d),
            }
        }
        // dh_{t-1} = W_hᵀ da; row by row DH = DA · W_h, computed contiguous, then spread into
        // the state rows
        if s_prev.is_some() {
            with_scratch(n * h, |dh_prev| {
                w_hh.add_product_back(dh_prev, dpre, n);
                for (state_grad, src) in ds.chunks_exact_mut(2 * h).zip(dh_prev.chunks_exact(h)) {
                    state_grad[..h].copy_from_slice(src);
                }
            });
        }
    }

    fn backward_weights(&self, _p: &[f32], g: &mut CellGradient<'_>, h_prev: &[f32], dpre: &[f32]) {
        let h = self.shape.hidden;
        let dbh = &mut g.tensors()[4 * h * h..][..4 * h];
        for d in dpre.chunks_exact(4 * h) {
            // b_h appears summed with b_i, so its gradient is da, as b_i's is
            add_into(dbh, d);
        }
        // dW_h += Σ_t da_t · h_{t-1}ᵀ = DAᵀ·H_prev over the tokens after the first step.
        // dW_h comes first.
        let tokens = h_prev.len() / h;
        g.add_product(0, &dpre[dpre.len() - tokens * 4 * h..], h_prev, 4 * h, h);
    }

    fn clone_box(&self) -> Box<dyn Cell> {
        Box::new(*self)
    }
}
