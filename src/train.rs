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
use rayon::prelude::*;

use crate::rnn::{Batch, Gradients, Network, Workspace};

/// The random stream used to initialise weights, for a given seed (see [`Rng::with_stream`]).
pub const INIT_STREAM: u64 = 0;
/// The random stream used to shuffle the examples every epoch.
pub const SHUFFLE_STREAM: u64 = 1;
/// The random stream of the dropout masks: one substream a batch and thread (see
/// [`Rng::with_substream`]), so that a batch's masks do not depend on what ran before it.
pub const DROPOUT_STREAM: u64 = 2;

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
    /// Keep a copy of the parameters at the end of every epoch, and restore it if the loss
    /// becomes NaN or infinite (default). Without it, a diverged network is left as it was
    /// when the loss went bad, and the copy's memory (one more set of weights) is saved; the
    /// command line does that and keeps its last good model in the model file instead.
    pub keep_last_good: bool,
    /// Threads that share each batch (0: one per core). Results are the same for the same
    /// seed, number of threads and machine.
    pub threads: usize,
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
            keep_last_good: true,
            threads: 0,
        }
    }
}

impl TrainConfig {
    /// The number of threads to use: [`TrainConfig::threads`], or one per core for 0.
    pub fn threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }

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
/// result; this one keeps the matrix products large).
const EVAL_BATCH: usize = 64;

/// The mean loss and accuracy of `net` on `examples`.
///
/// Batches run in parallel on the current rayon pool; their sums are added in order, so the
/// result does not depend on the number of threads.
pub fn evaluate(net: &Network, examples: &[Example]) -> Score {
    let parts: Vec<Tally> = examples
        .par_chunks(EVAL_BATCH)
        .map_init(Workspace::default, |ws, chunk| {
            net.forward_only(&batch_of(chunk.iter()), ws)
        })
        .collect();
    let mut tally = Tally::default();
    for t in parts {
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
/// its parameters at the end of the last complete epoch (with [`TrainConfig::keep_last_good`]).
pub fn train(
    net: &mut Network,
    train: &[Example],
    test: &[Example],
    config: &TrainConfig,
    on_event: impl FnMut(Event<'_>) + Send,
) -> Result<TrainReport> {
    config.validate()?;
    check_examples(net, train)?;
    check_examples(net, test)?;
    let threads = config.threads();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Config(format!("cannot start {threads} threads: {e}")))?;
    // The loop runs on one of the pool's threads (this one waits): the pool's other threads
    // then share its batches and evaluations, and while they wait for the next job they spin
    // on cores of their own, not on the loop's (one thread per core, not one more).
    pool.install(|| run_epochs(net, train, test, config, &pool, on_event))
}

/// The epochs of [`train`], on a thread of `pool`.
fn run_epochs<'a>(
    net: &mut Network,
    train: &'a [Example],
    test: &[Example],
    config: &TrainConfig,
    pool: &rayon::ThreadPool,
    mut on_event: impl FnMut(Event<'_>) + Send,
) -> Result<TrainReport> {
    let threads = pool.current_num_threads();
    let mut optimizer = config.optimizer.build(net.params().len(), config.lr);
    let mut rng = Rng::with_stream(config.seed, SHUFFLE_STREAM);
    let mut workers: Vec<Worker<'a>> = (0..threads).map(|_| Worker::new(net)).collect();
    let mut schedule = Schedule::default();
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut last_good = if config.keep_last_good {
        net.params().to_vec()
    } else {
        Vec::new()
    };
    let mut report = TrainReport::default();
    let dropout = net.arch().dropout > 0.0;
    let mut step: u64 = 0;

    for epoch in 1..=config.epochs {
        let start = Instant::now();
        if config.shuffle {
            rng.shuffle(&mut order);
        }
        schedule.refill(&order, train, config, &mut rng);
        let mut tally = Tally::default();
        let mut done = 0;
        for span in &schedule.spans {
            let indices = &schedule.indices[span.clone()];
            // Split the batch among the workers, each computing its part's gradient (weighted
            // by one over the whole batch, so that the parts add up to the batch mean).
            let parts = threads.min(indices.len());
            let weight = 1.0 / indices.len() as f32;
            let net_ref: &Network = net;
            let run = |(p, worker): (usize, &mut Worker<'a>)| {
                let part = indices.iter().skip(p).step_by(parts).map(|&k| &train[k]);
                // the masks of this batch's part p
                let mut masks = dropout.then(|| {
                    Rng::with_substream(config.seed, DROPOUT_STREAM, (step << 16) | p as u64)
                });
                worker.run(net_ref, part, weight, masks.as_mut());
            };
            if parts == 1 {
                run((0, &mut workers[0]));
            } else {
                pool.install(|| workers[..parts].par_iter_mut().enumerate().for_each(run));
            }
            let (first, others) = workers.split_at_mut(1);
            let main = &mut first[0];
            for other in &mut others[..parts - 1] {
                let t = std::mem::take(&mut other.tally);
                main.tally.add(t.loss_sum, t.correct, t.count);
                main.grads.absorb(&mut other.grads);
            }
            let t = std::mem::take(&mut main.tally);
            let loss = (t.loss_sum / t.count as f64) as f32;
            if !loss.is_finite() {
                if config.keep_last_good {
                    net.params_mut().copy_from_slice(&last_good);
                }
                return Err(Error::Diverged {
                    epoch,
                    loss,
                    last_good: epoch - 1,
                    lr: optimizer.learning_rate(),
                });
            }
            tally.add(t.loss_sum, t.correct, t.count);
            report.train_tokens += indices
                .iter()
                .map(|&k| train[k].tokens.len())
                .sum::<usize>();
            // clip, update, and reset the gradient for the next batch
            optimizer.step(net.params_mut(), &mut main.grads, config.clip);
            step += 1;
            done += indices.len();
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
            test: (!test.is_empty()).then(|| pool.install(|| evaluate(net, test))),
        };
        on_event(Event::Epoch {
            metrics: &metrics,
            network: net,
        });
        report.history.push(metrics);
        if config.keep_last_good {
            last_good.copy_from_slice(net.params());
        }
    }
    Ok(report)
}

/// What one thread keeps from batch to batch.
struct Worker<'a> {
    ws: Workspace,
    grads: Gradients,
    batch: Batch,
    tally: Tally,
    /// The sequences and labels of its part of the batch (kept to reuse their memory).
    sequences: Vec<&'a [u32]>,
    targets: Vec<u32>,
}

impl<'a> Worker<'a> {
    fn new(net: &Network) -> Self {
        Worker {
            ws: Workspace::default(),
            grads: Gradients::new(net),
            batch: Batch::default(),
            tally: Tally::default(),
            sequences: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// Forward and backward over `examples`, adding `weight` times the gradient of their summed
    /// loss to this worker's gradient, and their loss to its tally; `masks` is the dropout's
    /// stream.
    fn run(
        &mut self,
        net: &Network,
        examples: impl Iterator<Item = &'a Example>,
        weight: f32,
        masks: Option<&mut Rng>,
    ) {
        self.sequences.clear();
        self.targets.clear();
        for e in examples {
            self.sequences.push(&e.tokens);
            self.targets.push(e.label);
        }
        self.batch.refill(&self.sequences, &self.targets);
        let t = net.forward(&self.batch, &mut self.ws, masks);
        self.tally.add(t.loss_sum, t.correct, t.count);
        net.backward_weighted(&self.batch, &mut self.ws, &mut self.grads, weight);
    }
}

/// Sequences per bucket, in batches: examples are sorted by length within windows of this
/// many batches, so that a batch holds sequences of similar lengths.
const BUCKET_BATCHES: usize = 32;

/// The epoch's batches: `indices` into `train`, and the `spans` of it that are the batches, in
/// the order they are trained. Both are refilled every epoch, reusing their memory.
#[derive(Default)]
struct Schedule {
    indices: Vec<usize>,
    spans: Vec<Range<usize>>,
}

impl Schedule {
    /// The batches of an epoch from its `order`.
    ///
    /// With a batch size of 1, or without shuffling, the batches are `order` cut in pieces.
    /// With larger shuffled batches, the order is cut into windows of [`BUCKET_BATCHES`]
    /// batches, each window sorted by length and cut into batches, and the batches are
    /// shuffled: a batch then holds sequences of similar lengths, so few of its rows sit idle
    /// while its longest sequence runs, and the order stays random and fixed by the seed.
    fn refill(&mut self, order: &[usize], train: &[Example], config: &TrainConfig, rng: &mut Rng) {
        self.indices.clear();
        self.indices.extend_from_slice(order);
        let bucketed = config.batch > 1 && config.shuffle;
        if bucketed {
            for window in self.indices.chunks_mut(config.batch * BUCKET_BATCHES) {
                window.sort_by_key(|&k| train[k].tokens.len());
            }
        }
        self.spans.clear();
        self.spans.extend(
            (0..order.len())
                .step_by(config.batch)
                .map(|start| start..order.len().min(start + config.batch)),
        );
        if bucketed {
            rng.shuffle(&mut self.spans);
        }
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
