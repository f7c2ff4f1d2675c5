//! The classifier's head: pooling over time, dropout, and the output layer, one prediction a
//! sequence.
//!
//! ```text
//! f = dropout(pool_t(h_{L,·,t}))        (D·H: last | mean | max, see [`crate::rnn::pool`])
//! y = W_fc f + b_fc                     (C logits)
//! ```
//!
//! Backward: `df = W_fcᵀ dy` (see [`Linear`]), through the dropout's mask, then through the
//! pooling to the top layer's steps or final states.

use std::ops::Range;
use std::sync::Arc;

use super::{HeadModule, HeadWork};
use crate::rnn::arch::Architecture;
use crate::rnn::batch::Batch;
use crate::rnn::dropout;
use crate::rnn::linear::Linear;
use crate::rnn::params::Layout;
use crate::rnn::pool::{self, Pooling};
use crate::rng::Rng;

/// Pooling, dropout `p` on the features, and `fc`.
#[derive(Clone, Debug)]
pub(crate) struct SequenceHead {
    pooling: Arc<dyn Pooling>,
    fc: Linear,
    dropout: f32,
    /// `D` directions of `H` units.
    dirs: usize,
    hidden: usize,
}

impl SequenceHead {
    /// `arch`'s head, its `fc` added to `layout`.
    pub fn new(arch: &Architecture, layout: &mut Layout) -> Self {
        SequenceHead {
            pooling: arch.pool.build(),
            fc: Linear::new(layout, arch.features(), arch.classes),
            dropout: arch.dropout,
            dirs: arch.directions(),
            hidden: arch.hidden,
        }
    }
}

impl HeadModule for SequenceHead {
    fn span(&self) -> Range<usize> {
        self.fc.span()
    }

    fn init(&self, params: &mut [f32], rng: &mut Rng) {
        self.fc.init(params, rng);
    }

    fn reads_every_step(&self) -> bool {
        false
    }

    fn targets<'b>(&self, batch: &'b Batch) -> &'b [u32] {
        batch.targets()
    }

    fn predictions(&self, batch: &Batch) -> usize {
        batch.rows()
    }

    fn begin(&self, work: &mut HeadWork, batch: &Batch) {
        let width = self.dirs * self.hidden;
        self.pooling.begin(&mut work.pool, batch.rows(), width);
    }

    fn step(
        &self,
        work: &mut HeadWork,
        batch: &Batch,
        d: usize,
        t: usize,
        s: &[f32],
        s_size: usize,
    ) {
        let pool = &mut work.pool;
        self.pooling.step(pool, batch, d, t, s, s_size, self.hidden);
    }

    fn forward(
        &self,
        params: &[f32],
        batch: &Batch,
        _top: &mut [f32],
        work: &mut HeadWork,
        rng: Option<&mut Rng>,
        logits: &mut Vec<f32>,
    ) {
        self.pooling.finish(&mut work.pool, batch);
        let features = &mut work.pool.features;
        work.mask.clear();
        if let Some(rng) = rng {
            // dropout before the output layer
            dropout::draw(&mut work.mask, features.len(), self.dropout, rng);
            dropout::apply(features, &work.mask);
        }
        self.fc.forward(params, features, logits);
    }

    fn backward(
        &self,
        params: &[f32],
        _top: &[f32],
        dlogits: &[f32],
        grad: &mut [f32],
        work: &mut HeadWork,
    ) {
        let features = &work.pool.features;
        self.fc.backward(params, features, dlogits, grad, &mut work.df);
        if !work.mask.is_empty() {
            dropout::apply(&mut work.df, &work.mask);
        }
        let pool = &mut work.pool;
        self.pooling
            .begin_backward(pool, &work.df, self.dirs, self.hidden);
    }

    fn reaches_steps(&self) -> bool {
        self.pooling.reaches_steps()
    }

    fn d_last<'a>(&self, work: &'a HeadWork, d: usize) -> Option<&'a [f32]> {
        self.pooling.d_last(&work.pool, &work.df, d)
    }

    fn add_to_step(
        &self,
        work: &HeadWork,
        batch: &Batch,
        _positions: &[u32],
        d: usize,
        t: usize,
        ds: &mut [f32],
        s_size: usize,
    ) {
        let (pool, df, h) = (&work.pool, &work.df, self.hidden);
        self.pooling.add_to_step(pool, batch, df, d, t, ds, s_size, h);
    }

    fn running(&self, params: &[f32], outputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
        pool::running(&*self.pooling, outputs)
            .iter()
            .map(|f| self.fc.probabilities(params, f))
            .collect()
    }
}
