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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backward_pass_matches_finite_differences() {
        // y = W x + b is linear, so a central difference is exact but for rounding
        let mut layout = Layout::default();
        layout.push("before", &[2], false);
        let fc = Linear::new(&mut layout, 3, 4);
        assert_eq!(fc.span(), 2..18);
        let mut rng = Rng::new(3);
        let mut draw =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.symmetric(1.0) as f32).collect() };
        let (mut params, mut x, r) = (draw(layout.len()), draw(2 * 3), draw(2 * 4));
        // the loss Σ r ⊙ y, whose gradient on the logits is r
        let loss = |params: &[f32], x: &[f32]| {
            let mut y = Vec::new();
            fc.forward(params, x, &mut y);
            y.iter().zip(&r).map(|(a, b)| a * b).sum::<f32>()
        };
        let (mut grad, mut dx) = (vec![0.0; 16], Vec::new());
        fc.backward(&params, &x, &r, &mut grad, &mut dx);
        let eps = 1e-2;
        for (i, &g) in grad.iter().enumerate() {
            let saved = params[2 + i];
            params[2 + i] = saved + eps;
            let plus = loss(&params, &x);
            params[2 + i] = saved - eps;
            let minus = loss(&params, &x);
            params[2 + i] = saved;
            let numeric = (plus - minus) / (2.0 * eps);
            assert!(
                (g - numeric).abs() < 1e-3,
                "parameter {i}: {g} against {numeric}"
            );
        }
        for i in 0..x.len() {
            let saved = x[i];
            x[i] = saved + eps;
            let plus = loss(&params, &x);
            x[i] = saved - eps;
            let minus = loss(&params, &x);
            x[i] = saved;
            let numeric = (plus - minus) / (2.0 * eps);
            assert!(
                (dx[i] - numeric).abs() < 1e-3,
                "input {i}: {} against {numeric}",
                dx[i]
            );
        }
        // and the bias's gradient is the sum of the rows of dy: db_0 = r_00 + r_10
        assert!((grad[12] - (r[0] + r[4])).abs() < 1e-6);
    }
}
