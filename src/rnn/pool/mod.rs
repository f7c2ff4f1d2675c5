//! Pooling over time: the top layer's outputs at every step become one feature vector a
//! sequence, `D·H` wide (one block of `H` a direction).
//!
//! ```text
//! last:  f_d = h_d after the direction's last step     (its state after reading the whole sequence)
//! mean:  f_d = (1/T) Σ_t h_{d,t}                        ∂L/∂h_{d,t} += ∂L/∂f_d / T   at every step
//! max:   f_{d,j} = max_t h_{d,t,j}                     ∂L/∂h_{d,t*,j} += ∂L/∂f_{d,j} at the argmax t*
//! ```
//!
//! over each sequence's own `T` tokens, so padding never enters, in either direction. A
//! sequence with no tokens has features 0 (its state is the initial one). Pooling is the same
//! whichever way a direction reads, so it works on each direction's own steps and never needs
//! to know the order.
//!
//! Pooling runs one step at a time, as the states appear ([`Pooling::step`]), so it works the
//! same whether the forward pass keeps every state (training) or only the latest (prediction).
//! Each pooling is a type of its own file, implementing [`Pooling`]; the table below names
//! them, and a new one is a new file and a row.

use std::fmt;
use std::sync::Arc;

use super::arch::kinds;
use super::batch::Batch;

kinds! {
    /// How the top layer's outputs over time become one feature vector a sequence.
    pub enum Pool, called "pooling";
    pub(crate) fn build() -> Arc<dyn Pooling> { Arc::new }
    /// Each direction's state after it has read the whole sequence: for one direction `h_T`,
    /// for two PyTorch's `cat(h_n[-2], h_n[-1])` (the forward direction after the last token,
    /// the backward direction after the first).
    #[default]
    Last = "last", last::Last;
    /// The mean over the sequence's own tokens of the outputs at every position.
    Mean = "mean", mean::Mean;
    /// The maximum, unit by unit, over the sequence's own tokens.
    Max = "max", max::Max;
}

/// The features of a batch, built step by step, and what their backward pass needs; reused
/// from batch to batch.
#[derive(Clone, Debug, Default)]
pub(crate) struct PoolWork {
    /// rows × D·H.
    pub features: Vec<f32>,
    /// `D·H`.
    pub width: usize,
    /// For max pooling, the step at which each feature took its value (rows × D·H).
    pub argmax: Vec<u32>,
    /// For last pooling of two directions, each one's block of the features' gradient (rows
    /// × H): the gradient on its final states.
    pub blocks: Vec<Vec<f32>>,
}

/// One way of pooling over time, forward and backward, step by step. `d` is a direction, `t`
/// its step (0-based, in its own order), `s` the states of the rows running at that step (n×S,
/// the first `h` floats a row being the output), `df` the gradient on the features (rows ×
/// D·H).
pub(crate) trait Pooling: Send + Sync + fmt::Debug {
    /// Starts a batch of `rows` sequences with `width` (`D·H`) features each, all 0.
    fn begin(&self, work: &mut PoolWork, rows: usize, width: usize) {
        work.width = width;
        work.features.clear();
        work.features.resize(rows * width, 0.0);
    }

    /// Takes in step `t` of direction `d`.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        work: &mut PoolWork,
        batch: &Batch,
        d: usize,
        t: usize,
        s: &[f32],
        s_size: usize,
        h: usize,
    );

    /// Ends the batch.
    fn finish(&self, _work: &mut PoolWork, _batch: &Batch) {}

    /// Whether any gradient reaches the outputs of the steps (see [`Pooling::add_to_step`]).
    fn reaches_steps(&self) -> bool {
        true
    }

    /// Readies the backward pass once `df` is known (`dirs` directions of `h` units).
    fn begin_backward(&self, _work: &mut PoolWork, _df: &[f32], _dirs: usize, _h: usize) {}

    /// The gradient on direction `d`'s final states (rows × H), if any reaches them directly.
    fn d_last<'a>(&self, _work: &'a PoolWork, _df: &'a [f32], _d: usize) -> Option<&'a [f32]> {
        None
    }

    /// Adds the gradient that reaches direction `d`'s step `t` from the features to `ds`
    /// (`∂L/∂s_t` of the rows still running, n×S).
    #[allow(clippy::too_many_arguments)]
    fn add_to_step(
        &self,
        work: &PoolWork,
        batch: &Batch,
        df: &[f32],
        d: usize,
        t: usize,
        ds: &mut [f32],
        s_size: usize,
        h: usize,
    );

    /// The running pool `acc` of the outputs before `x` taking `x` in (a single sequence's, for
    /// [`running`]).
    fn fold(&self, acc: &mut [f32], x: &[f32]);

    /// The features of a single sequence cut after `steps` steps, from its running pool.
    fn features(&self, acc: &[f32], _steps: usize) -> Vec<f32> {
        acc.to_vec()
    }
}

/// The features of a single sequence after each of its steps, as if it ended there: `states`
/// holds the top layer's output (D·H, one direction's block after the other) after every token
/// of a network that reads forwards only, so that the output at step `t` depends on the first
/// `t` tokens alone. The arithmetic is the pooling's, so the last entry is the features of the
/// whole sequence to the bit.
pub(crate) fn running(pool: &dyn Pooling, states: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let mut acc: Vec<f32> = Vec::new();
    let mut out = Vec::with_capacity(states.len());
    for (t, h) in states.iter().enumerate() {
        if t == 0 {
            acc.clone_from(h);
        } else {
            pool.fold(&mut acc, h);
        }
        out.push(pool.features(&acc, t + 1));
    }
    out
}
