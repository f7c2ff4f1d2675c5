//! The classification head: a linear layer on the pooled features, softmax and cross-entropy.
//!
//! ```text
//! y = W f + b                 (C logits; PyTorch's fc = nn.Linear(D·H, C))
//! p = softmax(y),   L = -ln p_target
//! ```
//!
//! Backward, with `dy = p - onehot(target)`: `dW = dy fᵀ`, `db = dy`, `df = Wᵀ dy`. For a batch
//! the loss is the mean over its sequences, so every `dy` is divided by the batch size.

use super::softmax::{argmax, cross_entropy, softmax_in_place};
use crate::kernels::{add_into, matmul_nn, matmul_nt, matmul_tn};
use crate::metrics::Tally;

/// The head's parameters: `W` (C × F, row by row) and `b` (C).
#[derive(Clone, Copy, Debug)]
pub(super) struct Fc<'a> {
    pub w: &'a [f32],
    pub b: &'a [f32],
}

impl Fc<'_> {
    /// `C`.
    fn classes(&self) -> usize {
        self.b.len()
    }

    /// The logits and probabilities of every row of `features` (rows × F), and the loss and
    /// accuracy against `targets` when there are targets (otherwise only the count).
    pub fn forward(
        &self,
        features: &[f32],
        targets: &[u32],
        logits: &mut Vec<f32>,
        probs: &mut Vec<f32>,
    ) -> Tally {
        let c = self.classes();
        let width = self.w.len() / c;
        let rows = features.len() / width.max(1);
        // y = W f + b, row by row: Y = F · Wᵀ + b
        logits.clear();
        for _ in 0..rows {
            logits.extend_from_slice(self.b);
        }
        matmul_nt(logits, features, self.w, rows, width, c);
        probs.clone_from(logits);
        let mut tally = Tally::default();
        for (r, p) in probs.chunks_exact_mut(c).enumerate() {
            let norm = softmax_in_place(p);
            if let Some(&target) = targets.get(r) {
                let loss = cross_entropy(logits[r * c + target as usize], norm);
                let correct = argmax(p) == target as usize;
                tally.add(f64::from(loss), usize::from(correct), 1);
            } else {
                tally.add(0.0, 0, 1);
            }
        }
        tally
    }

    /// Backprop through softmax, cross-entropy and the linear layer for the loss
    /// `weight · Σ_rows w_target L`: `dy = (p - onehot(target)) · weight · w_target` into
    /// `dlogits`, **adds** `dW += dyᵀ F` and `db += Σ dy`, and writes `df = dy · W` (rows × F).
    /// The class weights `w` are 1 when `class_weights` is `None`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        features: &[f32],
        probs: &[f32],
        targets: &[u32],
        weight: f32,
        class_weights: Option<&[f32]>,
        dw: &mut [f32],
        db: &mut [f32],
        dlogits: &mut Vec<f32>,
        df: &mut Vec<f32>,
    ) {
        let c = self.classes();
        let width = self.w.len() / c;
        let rows = targets.len();
        assert_eq!(
            probs.len(),
            rows * c,
            "backward needs a target for every row"
        );
        // forward: p = softmax(y), L = -ln p_target  =>  dy = p - onehot(target)
        dlogits.clear();
        dlogits.extend_from_slice(probs);
        for (dy, &target) in dlogits.chunks_exact_mut(c).zip(targets) {
            dy[target as usize] -= 1.0;
            let weight = class_weights.map_or(weight, |w| weight * w[target as usize]);
            for v in dy.iter_mut() {
                *v *= weight;
            }
        }
        // forward: y = W f + b  =>  db += dy, dW += dy fᵀ, df = Wᵀ dy (row by row DF = DY · W)
        for dy in dlogits.chunks_exact(c) {
            add_into(db, dy);
        }
        matmul_tn(dw, dlogits, features, rows, c, width);
        df.clear();
        df.resize(rows * width, 0.0);
        matmul_nn(df, dlogits, self.w, rows, c, width);
    }

    /// `softmax(W f + b)` of one feature vector.
    pub fn probabilities(&self, f: &[f32]) -> Vec<f32> {
        let mut y = self.b.to_vec();
        matmul_nt(&mut y, f, self.w, 1, f.len(), self.classes());
        softmax_in_place(&mut y);
        y
    }
}
