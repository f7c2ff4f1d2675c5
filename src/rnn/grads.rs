//! The gradient of a batch, kept in proportion to the batch rather than to the vocabulary.
//!
//! A one-hot input reaches only one column of the input weights (`Wxh` for the Elman cell), so
//! a batch's gradient of those weights is zero except in the columns of its own tokens. These
//! are kept as a short list of columns, one for each distinct token of the batch; every other
//! parameter gets its gradient in full ([`Gradients::rest`]). With a vocabulary of 60,000 words
//! and a batch that holds a few thousand of them, this saves the memory of a second copy of
//! the input weights, and the time of clearing, clipping and updating it at every step.
//!
//! Invariant: outside a backward pass and an optimiser step, every float here is zero. The
//! optimiser's step resets what it reads ([`crate::optim::Optimizer::step`]), and
//! [`Gradients::clear`] then forgets which tokens had columns.

use std::ops::Range;

use super::Network;

/// The gradient of a batch's loss with respect to every parameter of a [`Network`].
#[derive(Clone, Debug)]
pub struct Gradients {
    /// Floats in one column of the input weights.
    column: usize,
    /// Where the other parameters start in the parameter buffer.
    input_len: usize,
    /// The tokens that have a column, in the order they were first met.
    tokens: Vec<u32>,
    /// `slot[token]`: one more than the token's position in `tokens`, or 0 for none.
    slot: Vec<u32>,
    /// One column per entry of `tokens`, back to back.
    columns: Vec<f32>,
    /// The gradient of every parameter after the input weights, in the same layout.
    rest: Vec<f32>,
}

impl Gradients {
    /// An all-zero gradient for `net`.
    pub fn new(net: &Network) -> Self {
        let (input_len, column) = net.input_weights();
        Gradients {
            column,
            input_len,
            tokens: Vec::new(),
            slot: vec![0; net.vocab()],
            columns: Vec::new(),
            rest: vec![0.0; net.params().len() - input_len],
        }
    }

    /// Replaces every token of `x` by the index of its column here (adding zero columns for
    /// tokens met for the first time), into `local`.
    pub(crate) fn localize(&mut self, x: &[u32], local: &mut Vec<u32>) {
        local.clear();
        for &token in x {
            let slot = &mut self.slot[token as usize];
            if *slot == 0 {
                self.tokens.push(token);
                *slot = self.tokens.len() as u32;
            }
            local.push(*slot - 1);
        }
        let len = self.tokens.len() * self.column;
        if len > self.columns.capacity() {
            self.columns.reserve_exact(len - self.columns.len());
        }
        self.columns.resize(len, 0.0);
    }

    /// The input-weight columns and the rest, to be written by a backward pass.
    pub(crate) fn parts(&mut self) -> (&mut [f32], &mut [f32]) {
        (&mut self.columns, &mut self.rest)
    }

    /// The tokens that have a column, in order.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The gradient of every parameter after the input weights.
    pub fn rest(&self) -> &[f32] {
        &self.rest
    }

    /// Calls `f` with every part of the gradient and the range of the parameters it belongs
    /// to: each column, then the rest. The order is fixed, so a step is reproducible.
    pub fn for_each_part(&mut self, mut f: impl FnMut(Range<usize>, &mut [f32])) {
        let column = self.column;
        for (&token, g) in self
            .tokens
            .iter()
            .zip(self.columns.chunks_exact_mut(column.max(1)))
        {
            let start = token as usize * column;
            f(start..start + column, g);
        }
        let end = self.input_len + self.rest.len();
        f(self.input_len..end, &mut self.rest);
    }

    /// Forgets which tokens have columns. Call it after an optimiser step (which leaves every
    /// float zero); use [`Gradients::zero`] otherwise.
    pub fn clear(&mut self) {
        debug_assert!(self.columns.iter().chain(&self.rest).all(|&g| g == 0.0));
        for &token in &self.tokens {
            self.slot[token as usize] = 0;
        }
        self.tokens.clear();
    }

    /// Sets every float to zero and forgets the tokens.
    pub fn zero(&mut self) {
        self.columns.fill(0.0);
        self.rest.fill(0.0);
        self.clear();
    }

    /// Adds `other` (the gradient of another part of the same batch) to this one and zeroes
    /// it. Columns are matched by token.
    pub fn absorb(&mut self, other: &mut Gradients) {
        let column = self.column;
        let mut local = Vec::with_capacity(other.tokens.len());
        self.localize(&other.tokens, &mut local);
        for (&i, g) in local.iter().zip(other.columns.chunks_exact(column.max(1))) {
            let dst = &mut self.columns[i as usize * column..][..column];
            crate::kernels::add_into(dst, g);
        }
        crate::kernels::add_into(&mut self.rest, &other.rest);
        other.zero();
    }

    /// The whole gradient laid out like the parameters (zeros in the columns of the tokens
    /// the batch did not have): what a dense backward pass would give.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut dense = vec![0.0; self.input_len + self.rest.len()];
        for (&token, g) in self
            .tokens
            .iter()
            .zip(self.columns.chunks_exact(self.column.max(1)))
        {
            dense[token as usize * self.column..][..self.column].copy_from_slice(g);
        }
        dense[self.input_len..].copy_from_slice(&self.rest);
        dense
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::rnn::{Batch, CellKind, InputInit, Workspace};

    fn network() -> Network {
        let mut rng = Rng::new(1);
        let mut net = Network::new(CellKind::Rnn, 10, 4, 3, InputInit::LikeRnn, &mut rng).unwrap();
        for w in net.params_mut() {
            *w = rng.symmetric(0.5) as f32;
        }
        net
    }

    #[test]
    fn only_the_batch_tokens_have_columns_and_the_dense_view_places_them() {
        let net = network();
        let batch = Batch::new(&[&[1, 7, 1], &[3]], &[0, 2]);
        let mut ws = Workspace::default();
        let mut grads = Gradients::new(&net);
        net.forward(&batch, &mut ws);
        net.backward(&batch, &mut ws, &mut grads);
        // In the order the steps meet them: step 0 has tokens 1 and 3, step 1 token 7.
        assert_eq!(grads.tokens(), [1, 3, 7]);
        let dense = grads.to_dense();
        let (input_len, h) = net.input_weights();
        assert_eq!((input_len, h), (40, 4));
        for token in 0..10 {
            let column = &dense[token * h..][..h];
            let seen = [1, 3, 7].contains(&token);
            assert_eq!(column.iter().any(|&g| g != 0.0), seen, "column {token}");
        }
        assert_eq!(&dense[40..], grads.rest());
        let mut parts = Vec::new();
        grads.for_each_part(|range, g| parts.push((range, g.len())));
        assert_eq!(
            parts,
            [
                (4..8, 4),
                (12..16, 4),
                (28..32, 4),
                (40..dense.len(), dense.len() - 40)
            ]
        );
    }

    #[test]
    fn absorbing_adds_by_token_and_zeroes_the_other() {
        let net = network();
        let mut ws = Workspace::default();
        let whole = Batch::new(&[&[1, 2], &[2, 5]], &[0, 1]);
        let (first, second) = (Batch::new(&[&[1, 2]], &[0]), Batch::new(&[&[2, 5]], &[1]));
        let mut together = Gradients::new(&net);
        net.forward(&whole, &mut ws);
        net.backward(&whole, &mut ws, &mut together);
        // Two halves, each weighted by one over the whole batch, then merged.
        let (mut a, mut b) = (Gradients::new(&net), Gradients::new(&net));
        net.forward(&first, &mut ws);
        net.backward_weighted(&first, &mut ws, &mut a, 0.5);
        net.forward(&second, &mut ws);
        net.backward_weighted(&second, &mut ws, &mut b, 0.5);
        a.absorb(&mut b);
        for (x, y) in a.to_dense().iter().zip(together.to_dense()) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
        assert!(b.tokens().is_empty() && b.to_dense().iter().all(|&g| g == 0.0));
        a.zero();
        assert!(a.tokens().is_empty() && a.to_dense().iter().all(|&g| g == 0.0));
    }
}
