//! The training loop: shuffle, batch, forward, backward, clip, update; metrics every epoch.
//!
//! With a batch size of 1 this is exactly the seed's per-example stochastic gradient descent:
//! every example is run forward, its gradient computed by backpropagation through time, clipped
//! element-wise, and the weights updated before the next example.

use std::ops::Range;
use std::time::Instant;

use crate::data::Example;
use crate::error::{Error, Result};
use crate::metrics::{EpochMetrics, Score, Tally};
use crate::optim::{self, OptimizerKind};
use crate::rng::Rng;
use crate::rnn::{Batch, Network, Workspace};

/// The random stream used to initialise weights, for a given seed (see [`Rng::with_stream`]).
pub const INIT_STREAM: u64 = 0;
/// The random stream used to shuffle the examples every epoch.
pub const SHUFFLE_STREAM: u64 = 1;

/// How to train. `Default` gives the seed's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training data. 0 trains nothing (the metrics history is empty).
    pub epochs: usize,
    /// The update rule. Default SGD.
    pub optimizer: OptimizerKind,
    /// Learning rate of the update. Default 0.02 (the seed's, for SGD).
    pub lr: f32,
    /// Gradients are clipped element-wise to `[-clip, clip]` before each update. Default 1.
    pub clip: f32,
    /// Sequences per update; the gradient is the mean over the batch. Default 1.
    pub batch: usize,
    /// Seeds the shuffling (and, through [`INIT_STREAM`], the caller's initialisation).
    pub seed: u64,
    /// Visit the examples in a new random order every epoch (default), or in the given order.
    pub shuffle: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 1000,
            optimizer: OptimizerKind::Sgd,
            lr: 0.02,
            clip: 1.0,
            batch: 1,
            seed: 0,
            shuffle: true,
        }
    }
}

impl TrainConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first setting out of range.
    pub fn validate(&self) -> Result<()> {
        optim::check_positive("the learning rate", self.lr)?;
        optim::check_positive("the clipping limit", self.clip)?;
        if self.batch == 0 {
            return Err(Error::Config("the batch size must be at least 1".into()));
        }
        Ok(())
    }
}

/// What training reports as it goes, for progress bars and logs.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A batch was trained: `done` of the epoch's `total` examples are through.
    Step {
        epoch: usize,
        done: usize,
        total: usize,
    },
    /// An epoch ended, with its metrics and the network as it is now (to save a checkpoint).
    Epoch {
        metrics: &'a EpochMetrics,
        network: &'a Network,
    },
}

/// What a training run did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainReport {
    /// The metrics of every epoch.
    pub history: Vec<EpochMetrics>,
    /// Seconds spent in training steps (forward, backward, update), without evaluation.
    pub train_seconds: f64,
    /// Tokens run through training steps (every epoch counted).
    pub train_tokens: usize,
}

impl TrainReport {
    /// Training throughput in tokens a second.
    pub fn tokens_per_second(&self) -> f64 {
        if self.train_seconds > 0.0 {
            self.train_tokens as f64 / self.train_seconds
        } else {
            0.0
        }
    }
}

/// Sequences per forward pass when only evaluating (no updates, so any size gives the same
/// result; this one amortises the per-step overhead).
const EVAL_BATCH: usize = 256;

/// The mean loss and accuracy of `net` on `examples`.
pub fn evaluate(net: &Network, examples: &[Example], ws: &mut Workspace) -> Score {
    let mut tally = Tally::default();
    for chunk in examples.chunks(EVAL_BATCH) {
        let batch = batch_of(chunk.iter());
        let t = net.forward(&batch, ws);
        tally.add(t.loss_sum, t.correct, t.count);
    }
    tally.score()
}

fn batch_of<'a>(examples: impl Iterator<Item = &'a Example> + Clone) -> Batch {
    let sequences: Vec<&[u32]> = examples.clone().map(|e| e.tokens.as_slice()).collect();
    let targets: Vec<u32> = examples.map(|e| e.label).collect();
    Batch::new(&sequences, &targets)
}

/// Trains `net` on `train`, scoring `test` (if not empty) after every epoch. `on_event` hears
/// of every batch and every epoch.
///
/// # Errors
/// [`Error::Config`] for settings out of range or examples that do not fit the network;
/// [`Error::Diverged`] if the loss becomes NaN or infinite, in which case `net` is restored to
/// its parameters at the end of the last complete epoch.
pub fn train(
    net: &mut Network,
    train: &[Example],
    test: &[Example],
    config: &TrainConfig,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<TrainReport> {
    config.validate()?;
    check_examples(net, train)?;
    check_examples(net, test)?;
    let mut optimizer = config.optimizer.build(net.params().len(), config.lr);
    let mut rng = Rng::with_stream(config.seed, SHUFFLE_STREAM);
    let mut ws = Workspace::default();
    let mut grads = vec![0.0; net.params().len()];
    let mut touched = Touched::new(net);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut last_good = net.params().to_vec();
    let mut report = TrainReport::default();

    for epoch in 1..=config.epochs {
        let start = Instant::now();
        if config.shuffle {
            rng.shuffle(&mut order);
        }
        let mut tally = Tally::default();
        for (i, indices) in order.chunks(config.batch).enumerate() {
            let batch = batch_of(indices.iter().map(|&k| &train[k]));
            let t = net.forward(&batch, &mut ws);
            let loss = (t.loss_sum / t.count as f64) as f32;
            if !loss.is_finite() {
                net.params_mut().copy_from_slice(&last_good);
                return Err(Error::Diverged {
                    epoch,
                    loss,
                    last_good: epoch - 1,
                    lr: optimizer.learning_rate(),
                });
            }
            tally.add(t.loss_sum, t.correct, t.count);
            report.train_tokens += batch.token_count();
            // `grads` is zero here, and backward writes only inside `ranges`.
            net.backward(&batch, &mut ws, &mut grads);
            let ranges = touched.ranges(&batch);
            for r in ranges {
                optim::clip(&mut grads[r.clone()], config.clip);
            }
            optimizer.step(net.params_mut(), &grads, ranges);
            for r in ranges {
                grads[r.clone()].fill(0.0);
            }
            let done = (i * config.batch + indices.len()).min(train.len());
            on_event(Event::Step {
                epoch,
                done,
                total: train.len(),
            });
        }
        report.train_seconds += start.elapsed().as_secs_f64();
        let metrics = EpochMetrics {
            epoch,
            train: tally.score(),
            test: (!test.is_empty()).then(|| evaluate(net, test, &mut ws)),
        };
        on_event(Event::Epoch {
            metrics: &metrics,
            network: net,
        });
        report.history.push(metrics);
        last_good.copy_from_slice(net.params());
    }
    Ok(report)
}

/// The index ranges of the parameters that a batch's gradient can touch: every tensor in full,
/// except the column-major input weights `Wxh`, of which only the columns of the batch's
/// tokens (a one-hot input reaches no other column). Clipping, the update and the zeroing of
/// the gradient visit only these, so a step costs in proportion to the batch, not to `V`.
struct Touched {
    /// Every tensor but the input weights, as ranges.
    dense: Vec<Range<usize>>,
    /// Where the input weights start, and the length of one column (`H`).
    input: Option<(usize, usize)>,
    /// `stamp[token]`: the number of the last batch that contained `token`.
    stamp: Vec<u32>,
    batch_number: u32,
    ranges: Vec<Range<usize>>,
}

impl Touched {
    fn new(net: &Network) -> Self {
        let mut dense: Vec<Range<usize>> = Vec::new();
        let mut input = None;
        for t in net.layout().tensors() {
            if t.column_major {
                input = Some((t.offset, t.shape[0]));
            } else {
                match dense.last_mut() {
                    Some(last) if last.end == t.offset => last.end = t.range().end,
                    _ => dense.push(t.range()),
                }
            }
        }
        Touched {
            dense,
            input,
            stamp: vec![0; net.vocab()],
            batch_number: 0,
            ranges: Vec::new(),
        }
    }

    /// The ranges for `batch` (valid until the next call).
    fn ranges(&mut self, batch: &Batch) -> &[Range<usize>] {
        self.ranges.clone_from(&self.dense);
        let Some((offset, h)) = self.input else {
            return &self.ranges;
        };
        self.batch_number = self.batch_number.wrapping_add(1);
        if self.batch_number == 0 {
            // after 2³² batches the stamps wrap around: start them afresh
            self.stamp.fill(0);
            self.batch_number = 1;
        }
        for t in 0..batch.steps() {
            for &token in batch.step_tokens(t) {
                let stamp = &mut self.stamp[token as usize];
                if *stamp != self.batch_number {
                    *stamp = self.batch_number;
                    let start = offset + token as usize * h;
                    self.ranges.push(start..start + h);
                }
            }
        }
        &self.ranges
    }
}

/// Checks that every token and label indexes into the network.
fn check_examples(net: &Network, examples: &[Example]) -> Result<()> {
    for (i, e) in examples.iter().enumerate() {
        if let Some(&t) = e.tokens.iter().find(|&&t| t as usize >= net.vocab()) {
            return Err(Error::Config(format!(
                "example {i}: token {t} is outside the vocabulary of {} tokens",
                net.vocab()
            )));
        }
        if e.label as usize >= net.classes() {
            return Err(Error::Config(format!(
                "example {i}: label {} is outside the {} classes",
                e.label,
                net.classes()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::CellKind;

    #[test]
    fn a_batch_gradient_is_zero_outside_its_touched_ranges() {
        let mut rng = Rng::new(1);
        let mut net = Network::new(CellKind::Rnn, 10, 4, 3, &mut rng).unwrap();
        for w in net.params_mut() {
            *w = rng.symmetric(0.5) as f32;
        }
        let batch = Batch::new(&[&[1, 7, 1], &[3]], &[0, 2]);
        let mut ws = Workspace::default();
        let mut grads = vec![0.0; net.params().len()];
        net.forward(&batch, &mut ws);
        net.backward(&batch, &mut ws, &mut grads);
        let mut touched = Touched::new(&net);
        let ranges = touched.ranges(&batch).to_vec();
        let inside = |i: usize| ranges.iter().any(|r| r.contains(&i));
        for (i, g) in grads.iter().enumerate() {
            assert!(
                inside(i) || *g == 0.0,
                "gradient {g} at {i} is outside {ranges:?}"
            );
        }
        // Wxh's columns of tokens 1, 3 and 7 (each H = 4 long, column-major at offset 0) in the
        // order the steps meet them, once each, and the rest of the buffer after Wxh.
        let columns: Vec<_> = ranges.iter().filter(|r| r.end <= 40).cloned().collect();
        assert_eq!(columns, [4..8, 12..16, 28..32]);
        assert!(ranges.contains(&(40..net.params().len())));
        assert!(
            grads[4..8].iter().any(|&g| g != 0.0),
            "the column of token 1 has a gradient"
        );
    }
}
