//! Heads: what the output layer reads, and so how many predictions a sequence gets.
//!
//! ```text
//! sequence:  f = dropout(pool_t(h_{L,·,t})),  y = W_fc f + b_fc          one prediction a row
//! step:      f_t = dropout(h_{L,·,t}),        y_t = W_fc f_t + b_fc      one prediction a token
//! ```
//!
//! A head takes the top layer's outputs (step by step as they appear, and every position's once
//! the stack is done) and leaves the logits; backward, it takes the gradient on the logits and
//! hands the top layer the gradient on its outputs, as an [`Above`]. Softmax and the loss are
//! not its business ([`super::loss`]). Each head is a type of its own file, implementing
//! [`HeadModule`]; the table below names them, and a new one is a new file and a row.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use super::arch::{Architecture, kinds};
use super::batch::Batch;
use super::layer::Above;
use super::params::Layout;
use super::pool::PoolWork;
use crate::rng::Rng;

kinds! {
    /// What the output layer reads, and so how many predictions a sequence gets.
    pub enum Head, called "head";
    pub(crate) fn build(arch: &Architecture, layout: &mut Layout) -> Arc<dyn HeadModule> {
        Arc::new
    }
    /// One prediction a sequence, from its pooled features: a classifier.
    #[default]
    Sequence = "sequence", sequence::SequenceHead;
    /// One prediction a step, from the top layer's output at that step (its features are the
    /// step's `D·H` outputs; the pooling is not used): a language model predicts the next
    /// token at every step.
    Step = "step", step::StepHead;
}

/// What a head keeps between its forward and backward passes; reused from batch to batch.
#[derive(Clone, Debug, Default)]
pub(crate) struct HeadWork {
    /// The pooled features and what pooling keeps for its backward pass.
    pub pool: PoolWork,
    /// The dropout mask of the features (empty when none was applied).
    pub mask: Vec<f32>,
    /// The gradient on the features.
    pub df: Vec<f32>,
}

/// A head, forward and backward. `top` is the top layer's output at every position (N × D·H,
/// forward packed order), when [`HeadModule::reads_every_step`] asked for it, and empty
/// otherwise.
pub(crate) trait HeadModule: Send + Sync + fmt::Debug {
    /// Where its parameters lie in the flat buffer.
    fn span(&self) -> Range<usize>;

    /// Draws its parameters, in PyTorch's order.
    fn init(&self, params: &mut [f32], rng: &mut Rng);

    /// Whether it reads the top layer's output at every position.
    fn reads_every_step(&self) -> bool;

    /// The target of each of its predictions in `batch`: a row's or a token's.
    fn targets<'b>(&self, batch: &'b Batch) -> &'b [u32];

    /// How many predictions it makes for `batch`.
    fn predictions(&self, batch: &Batch) -> usize;

    /// Starts a batch.
    fn begin(&self, _work: &mut HeadWork, _batch: &Batch) {}

    /// Takes in step `t` of the top layer's direction `d`: `s` holds the states of the rows
    /// still running (n×S, `s_size` = S).
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        _work: &mut HeadWork,
        _batch: &Batch,
        _d: usize,
        _t: usize,
        _s: &[f32],
        _s_size: usize,
    ) {
    }

    /// Ends the batch: the logits of every prediction into `logits`, its dropout drawn from
    /// `rng` when given.
    fn forward(
        &self,
        params: &[f32],
        batch: &Batch,
        top: &mut [f32],
        work: &mut HeadWork,
        rng: Option<&mut Rng>,
        logits: &mut Vec<f32>,
    );

    /// From `dlogits`, the gradient on the logits: **adds** its parameters' gradients to
    /// `grad` (laid out as [`HeadModule::span`]) and leaves in `work` what
    /// [`HeadModule::add_to_step`] and [`HeadModule::d_last`] hand the top layer.
    fn backward(
        &self,
        params: &[f32],
        top: &[f32],
        dlogits: &[f32],
        grad: &mut [f32],
        work: &mut HeadWork,
    );

    /// Whether any gradient reaches the top layer's outputs at its steps.
    fn reaches_steps(&self) -> bool;

    /// The gradient on the top layer's direction `d`'s final states (rows × H), if any reaches
    /// them directly.
    fn d_last<'a>(&self, work: &'a HeadWork, d: usize) -> Option<&'a [f32]>;

    /// Adds the gradient on the top layer's direction `d`'s outputs at its step `t` to `ds`
    /// (n×S); `positions` maps a backward direction's packed positions to forward ones.
    #[allow(clippy::too_many_arguments)]
    fn add_to_step(
        &self,
        work: &HeadWork,
        batch: &Batch,
        positions: &[u32],
        d: usize,
        t: usize,
        ds: &mut [f32],
        s_size: usize,
    );

    /// The class probabilities of a single sequence after each of its tokens, as if it ended
    /// there, from the top layer's output after every token (of a network reading forwards).
    fn running(&self, params: &[f32], outputs: &[Vec<f32>]) -> Vec<Vec<f32>>;
}

/// The gradient on the top layer's outputs, from the head.
pub(super) struct FromHead<'a> {
    pub head: &'a dyn HeadModule,
    pub work: &'a HeadWork,
    pub batch: &'a Batch,
    pub positions: &'a [u32],
}

impl Above for FromHead<'_> {
    fn d_last(&self, d: usize) -> Option<&[f32]> {
        self.head.d_last(self.work, d)
    }

    fn reaches_steps(&self) -> bool {
        self.head.reaches_steps()
    }

    fn add(&self, d: usize, t: usize, ds: &mut [f32], s_size: usize) {
        let (work, batch, positions) = (self.work, self.batch, self.positions);
        self.head
            .add_to_step(work, batch, positions, d, t, ds, s_size);
    }
}
