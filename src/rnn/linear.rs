//! The output layer, PyTorch's `fc = nn.Linear(F, C)`: logits from feature vectors.
//!
//! ```text
//! y = W f + b                 (C logits from F features; row by row Y = F·Wᵀ + b)
//! ```
//!
//! Backward, given `dy` (the loss's gradient on the logits, see [`super::loss`]): `dW += dyᵀ F`,
//! `db += Σ dy`, `df = dy · W`.

use std::ops::Range;

use super::params::Layout;
use super::softmax::softmax_in_place;
use crate::kernels::{add_into, matmul_nn, matmul_nt, matmul_tn};
use crate::rng::Rng;

/// `fc.weight` `W` (C × F, row by row) and `fc.bias` `b` (C), from `at` in the parameters.
#[derive(Clone, Copy, Debug)]
pub(super) struct Linear {
    at: usize,
    inputs: usize,
    outputs: usize,
}

impl Linear {
    /// Adds `fc.weight` and `fc.bias` to `layout`, for `inputs` features and `outputs` logits.
    pub fn new(layout: &mut Layout, inputs: usize, outputs: usize) -> Self {
        let at = layout.push("fc.weight", &[outputs, inputs], false);
        layout.push("fc.bias", &[outputs], false);
        Linear {
            at,
            inputs,
            outputs,
        }
    }

    /// Where its parameters lie: `W`, then `b`.
    pub fn span(&self) -> Range<usize> {
        self.at..self.at + self.outputs * self.inputs + self.outputs
    }

    /// PyTorch's `nn.Linear` initialisation: `W`, then `b`, uniform in `[-1/√F, 1/√F]`.
    pub fn init(&self, params: &mut [f32], rng: &mut Rng) {
        let a = (self.inputs as f64).sqrt().recip();
        for w in &mut params[self.span()] {
            *w = rng.symmetric(a) as f32;
        }
    }

    /// `(W, b)`.
    fn parts<'a>(&self, params: &'a [f32]) -> (&'a [f32], &'a [f32]) {
        params[self.span()].split_at(self.outputs * self.inputs)
    }

    /// The logits of every row of `x` (rows × F) into `logits` (rows × C).
    pub fn forward(&self, params: &[f32], x: &[f32], logits: &mut Vec<f32>) {
        let (w, b) = self.parts(params);
        let (c, width) = (self.outputs, self.inputs);
        let rows = x.len() / width.max(1);
        // y = W f + b, row by row: Y = F · Wᵀ + b
        logits.clear();
        for _ in 0..rows {
            logits.extend_from_slice(b);
        }
        matmul_nt(logits, x, w, rows, width, c);
    }

    /// Given `dy` (rows × C), **adds** `dW += dyᵀ X` and `db += Σ dy` to `grad` (laid out as
    /// [`Linear::span`]) and writes `dx = dy · W` (rows × F).
    pub fn backward(
        &self,
        params: &[f32],
        x: &[f32],
        dy: &[f32],
        grad: &mut [f32],
        dx: &mut Vec<f32>,
    ) {
        let (w, _) = self.parts(params);
        let (c, width) = (self.outputs, self.inputs);
        let rows = dy.len() / c;
        let (dw, db) = grad.split_at_mut(c * width);
        // forward: y = W f + b  =>  db += dy, dW += dy fᵀ, df = Wᵀ dy (row by row DF = DY · W)
        for dy in dy.chunks_exact(c) {
            add_into(db, dy);
        }
        matmul_tn(dw, dy, x, rows, c, width);
        dx.clear();
        dx.resize(rows * width, 0.0);
        matmul_nn(dx, dy, w, rows, c, width);
    }

    /// `softmax(W f + b)` of one feature vector.
    pub fn probabilities(&self, params: &[f32], f: &[f32]) -> Vec<f32> {
        let (w, b) = self.parts(params);
        let mut y = b.to_vec();
        matmul_nt(&mut y, f, w, 1, f.len(), self.outputs);
        softmax_in_place(&mut y);
        y
    }
}
