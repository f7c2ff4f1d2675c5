//! The Elman cell, the seed's recurrent step, PyTorch's `nn.RNN` with `tanh`:
//!
//! ```text
//! h_t = tanh(Wxh · x_t + Whh · h_{t-1} + bh)
//! ```
//!
//! `x_t` is the one-hot vector of token `x_t`, so `Wxh · x_t` is column `x_t` of `Wxh`: the
//! product is a look-up, and `Wxh` is stored column by column so that the column is contiguous.
//!
//! | parameter | shape | PyTorch name        | maps                      |
//! |-----------|-------|---------------------|---------------------------|
//! | `Wxh`     | H×V   | `rnn.weight_ih_l0`  | input token -> hidden     |
//! | `Whh`     | H×H   | `rnn.weight_hh_l0`  | previous hidden -> hidden |
//! | `bh`      | H     | `rnn.bias_ih_l0`    | hidden bias               |
//!
//! PyTorch has a second bias, `bias_hh_l0`, which is always added to `bias_ih_l0`; one bias
//! is the same model, so the cell keeps one and the model file writes the other as zeros.

use super::cell::{Cell, CellKind};
use super::grads::CellGradient;
use super::params::Layout;
use crate::kernels::{add_into, matmul_nn, matmul_nt, tanh_backward, tanh_in_place};
use crate::rng::Rng;

/// The Elman (tanh) cell for `vocab` tokens and `hidden` units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elman {
    vocab: usize,
    hidden: usize,
}

/// Where the three tensors start in the cell's part of the buffer.
struct Offsets {
    wxh: usize,
    whh: usize,
    bh: usize,
    end: usize,
}

impl Elman {
    /// A cell for `vocab` input tokens and `hidden` units.
    pub fn new(vocab: usize, hidden: usize) -> Self {
        Elman { vocab, hidden }
    }

    fn offsets(&self) -> Offsets {
        let (v, h) = (self.vocab, self.hidden);
        Offsets {
            wxh: 0,
            whh: h * v,
            bh: h * v + h * h,
            end: h * v + h * h + h,
        }
    }
}

impl Cell for Elman {
    fn kind(&self) -> CellKind {
        CellKind::Rnn
    }

    fn vocab(&self) -> usize {
        self.vocab
    }

    fn hidden(&self) -> usize {
        self.hidden
    }

    fn layout(&self) -> Layout {
        let (v, h) = (self.vocab, self.hidden);
        let mut layout = Layout::default();
        layout.push("rnn.weight_ih_l0", &[h, v], true); // Wxh, column by column
        layout.push("rnn.weight_hh_l0", &[h, h], false); // Whh
        layout.push("rnn.bias_ih_l0", &[h], false); // bh
        layout
    }

    /// `h_t` depends only on `bias_ih + bias_hh`, so one bias is kept.
    fn folded_tensors(&self) -> Vec<(&'static str, Vec<usize>, &'static str)> {
        vec![("rnn.bias_hh_l0", vec![self.hidden], "rnn.bias_ih_l0")]
    }

    /// `Whh` and `bh` uniform in `[-1/√H, 1/√H]`, as PyTorch initialises `nn.RNN`; `Wxh` in
    /// `[-input, input]`.
    fn init(&self, p: &mut [f32], input: f32, rng: &mut Rng) {
        let a = 1.0 / (self.hidden as f64).sqrt();
        let o = self.offsets();
        for w in &mut p[o.wxh..o.whh] {
            *w = rng.symmetric(f64::from(input)) as f32;
        }
        for w in &mut p[o.whh..o.end] {
            *w = rng.symmetric(a) as f32;
        }
    }

    fn forward_step(
        &self,
        p: &[f32],
        x: &[u32],
        s_prev: Option<&[f32]>,
        s: &mut [f32],
        _cache: &mut [f32],
    ) {
        let (h, n, o) = (self.hidden, x.len(), self.offsets());
        let (wxh, whh, bh) = (&p[o.wxh..o.whh], &p[o.whh..o.bh], &p[o.bh..o.end]);
        // a = bh + Wxh·onehot(x): the bias plus column x of Wxh
        for (a, &token) in s.chunks_exact_mut(h).zip(x) {
            let column = &wxh[token as usize * h..][..h];
            for ((ai, &bi), &wi) in a.iter_mut().zip(bh).zip(column) {
                *ai = bi + wi;
            }
        }
        // a += Whh·h_{t-1}, for every sequence: A += H_prev · Whhᵀ (nothing when h_{t-1} = h_0 = 0)
        if let Some(s_prev) = s_prev {
            matmul_nt(s, s_prev, whh, n, h, h);
        }
        // h_t = tanh(a)
        tanh_in_place(s);
    }

    fn backward_step(
        &self,
        p: &[f32],
        _x: &[u32],
        s_prev: Option<&[f32]>,
        s: &[f32],
        _cache: &[f32],
        ds: &mut [f32],
        da: &mut [f32],
    ) {
        let (h, n, o) = (self.hidden, ds.len() / self.hidden, self.offsets());
        let whh = &p[o.whh..o.bh];
        // forward: h_t = tanh(a)  =>  da = (1 - h_t²) ⊙ dh_t
        tanh_backward(da, ds, s);
        // forward: a = ... + Whh·h_{t-1}  =>  dh_{t-1} = Whhᵀ·da; row by row, DH_prev = DA · Whh
        // (the transpose matters)
        if s_prev.is_some() {
            ds.fill(0.0);
            matmul_nn(ds, da, whh, n, h, h);
        }
    }

    fn backward_weights(
        &self,
        _p: &[f32],
        g: &mut CellGradient<'_>,
        x: &[u32],
        h_prev: &[f32],
        da: &[f32],
    ) {
        let h = self.hidden;
        let dbh = &mut g.rest[h * h..][..h];
        for (da_row, &column) in da.chunks_exact(h).zip(x) {
            // forward: a = bh + column x of Wxh + ...  =>  dbh += da, column x of dWxh += da
            add_into(dbh, da_row);
            add_into(&mut g.columns[column as usize * h..][..h], da_row);
        }
        // forward: a += Whh·h_{t-1}  =>  dWhh += Σ_t da_t·h_{t-1}ᵀ = DAᵀ·H_prev: one product
        // over all tokens but the first step's, whose h_{t-1} = h_0 = 0. dWhh comes first
        // in `g.rest`.
        let n = h_prev.len() / h;
        g.add_product(0, &da[da.len() - n * h..], h_prev, h, h);
    }

    fn clone_box(&self) -> Box<dyn Cell> {
        Box::new(*self)
    }
}
