//! The next-token (step) head: a prediction at every step, from the top layer's output there.
//!
//! ```text
//! f_t = dropout([h_{L,0,t}, h_{L,1,t}])      (D·H)
//! y_t = W_fc f_t + b_fc,   one a token       (a language model's target at step t: token t + 1)
//! ```
//!
//! For all tokens at once, `Y = F·W_fcᵀ + b_fc` is one product over the batch's packed
//! positions. Backward, `df_t = W_fcᵀ dy_t` reaches the top layer's output at every step, as
//! the gradient from a next layer would.

use std::ops::Range;

use super::{HeadModule, HeadWork};
use crate::rnn::arch::Architecture;
use crate::rnn::batch::Batch;
use crate::rnn::dropout;
use crate::rnn::layer::{Above, FromNextLayer};
use crate::rnn::linear::Linear;
use crate::rnn::params::Layout;
use crate::rng::Rng;

/// Dropout `p` on the top layer's outputs, and `fc` at every step.
#[derive(Clone, Debug)]
pub(crate) struct StepHead {
    fc: Linear,
    dropout: f32,
    /// `D` directions of `H` units.
    dirs: usize,
    hidden: usize,
}

impl StepHead {
    /// `arch`'s head, its `fc` added to `layout`.
    pub fn new(arch: &Architecture, layout: &mut Layout) -> Self {
        StepHead {
            fc: Linear::new(layout, arch.features(), arch.classes),
            dropout: arch.dropout,
            dirs: arch.directions(),
            hidden: arch.hidden,
        }
    }
}

impl HeadModule for StepHead {
    fn span(&self) -> Range<usize> {
        self.fc.span()
    }

    fn init(&self, params: &mut [f32], rng: &mut Rng) {
        self.fc.init(params, rng);
    }

    fn reads_every_step(&self) -> bool {
        true
    }

    fn targets<'b>(&self, batch: &'b Batch) -> &'b [u32] {
        batch.step_targets()
    }

    fn predictions(&self, batch: &Batch) -> usize {
        batch.token_count()
    }

    fn forward(
        &self,
        params: &[f32],
        _batch: &Batch,
        top: &mut [f32],
        work: &mut HeadWork,
        rng: Option<&mut Rng>,
        logits: &mut Vec<f32>,
    ) {
        work.mask.clear();
        if let Some(rng) = rng {
            // dropout on the top layer's outputs, the features of every step
            dropout::draw(&mut work.mask, top.len(), self.dropout, rng);
            dropout::apply(top, &work.mask);
        }
        self.fc.forward(params, top, logits);
    }

    fn backward(
        &self,
        params: &[f32],
        top: &[f32],
        dlogits: &[f32],
        grad: &mut [f32],
        work: &mut HeadWork,
    ) {
        self.fc.backward(params, top, dlogits, grad, &mut work.df);
        if !work.mask.is_empty() {
            dropout::apply(&mut work.df, &work.mask);
        }
    }

    fn reaches_steps(&self) -> bool {
        true
    }

    fn d_last<'a>(&self, _: &'a HeadWork, _: usize) -> Option<&'a [f32]> {
        None
    }

    fn add_to_step(
        &self,
        work: &HeadWork,
        batch: &Batch,
        positions: &[u32],
        d: usize,
        t: usize,
        ds: &mut [f32],
        s_size: usize,
    ) {
        // every step's output gets its gradient as a lower layer's does
        let from = FromNextLayer {
            d_out: &work.df,
            batch,
            positions,
            dirs: self.dirs,
            hidden: self.hidden,
        };
        from.add(d, t, ds, s_size);
    }

    fn running(&self, params: &[f32], outputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
        // the prediction after each token is the step's own
        outputs
            .iter()
            .map(|f| self.fc.probabilities(params, f))
            .collect()
    }
}
