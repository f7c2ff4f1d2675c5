//! The training loop: shuffle, batch, forward, backward, clip, update; scores every epoch; the
//! best epoch kept and early stopping on a validation set; warnings a user needs.
//!
//! With a batch size of 1 this is exactly the seed's per-example stochastic gradient descent:
//! every example is run forward, its gradient computed by backpropagation through time, clipped
//! element-wise, and the weights updated before the next example.
//!
//! A run's state from one epoch to the next is a [`RunState`]: the epoch count, the optimiser's
//! moments, the shuffling stream and order, the best epoch and its weights, the history. An
//! epoch's event hands it out, so that a caller can write a checkpoint, and [`resume`] takes it
//! back: a run stopped and resumed ends where the uninterrupted run would, to the bit.

pub mod monitor;
pub mod ranks;
pub mod run;
pub mod text;

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::data::{Example, UNSEEN};
use crate::error::{Error, Result};
use crate::metrics::{Confusion, EpochMetrics, Score, Tally};
use crate::optim::{self, OptimizerKind, OptimizerState};
use crate::rng::Rng;
use rayon::prelude::*;

use crate::rnn::{Batch, Gradients, Network, TokenGrams, Workspace, argmax, loss};
pub use monitor::{LrSchedule, Monitor, Verdict, Warning};
pub use run::Run;

/// The random stream used to initialise weights, for a given seed (see [`Rng::with_stream`]).
pub const INIT_STREAM: u64 = 0;
/// The random stream used to shuffle the examples every epoch.
pub const SHUFFLE_STREAM: u64 = 1;
/// The random stream of the dropout masks: one substream a batch and thread (see
/// [`Rng::with_substream`]), so that a batch's masks do not depend on what ran before it.
pub const DROPOUT_STREAM: u64 = 2;

/// How to train. `Default` gives `rnn train`'s defaults; [`TrainConfig::seed`] the seed's
/// per-example SGD.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// Passes over the training data, at most (early stopping may end the run sooner). 0
    /// trains nothing (the metrics history is empty). Default 20 (the seed's: 1000).
    pub epochs: usize,
    /// The update rule. Default Adam (the seed's: SGD).
    pub optimizer: OptimizerKind,
    /// Learning rate of the update (the highest it reaches, see `schedule`). Default the
    /// optimiser's ([`OptimizerKind::default_lr`]: 0.001 for Adam; the seed's 0.02 for SGD).
    pub lr: f32,
    /// Gradients are clipped element-wise to `[-clip, clip]` before each update. Default 1.
    pub clip: f32,
    /// Sequences per update; the gradient is the mean over the batch. Default 32 (the seed's:
    /// 1; `rnn train` uses [`default_batch`] for small sets).
    pub batch: usize,
    /// Seeds the shuffling and the dropout (and, through [`INIT_STREAM`], the caller's
    /// initialisation).
    pub seed: u64,
    /// Visit the examples in a new random order every epoch (default), or in the given order.
    pub shuffle: bool,
    /// Keep a copy of the parameters at the end of every epoch, and restore it if the loss
    /// becomes NaN or infinite (default). Without it, a diverged network is left as it was
    /// when the loss went bad, and the copy's memory (one more set of weights) is saved.
    pub keep_last_good: bool,
    /// Threads that share each batch (0: one per core). Results are the same for the same
    /// seed, number of threads and machine.
    pub threads: usize,
    /// With a validation set: stop after this many epochs in a row without a better
    /// validation score. Default 5 (the seed's: none, every epoch runs). Either way, with a
    /// validation set the best epoch's weights are the ones a run ends with.
    pub patience: Option<usize>,
    /// How the learning rate changes. Default constant.
    pub schedule: LrSchedule,
    /// A weight for every class's loss (its mean over the training examples should be 1, as
    /// [`balanced_class_weights`] gives), or none (all 1).
    pub class_weights: Option<Vec<f32>>,
    /// Keep the embedding as it starts (pretrained vectors): its gradient is dropped before
    /// every update, so that only the rest of the network learns. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub freeze_embed: bool,
    /// The learning rate of the wide path's table (see [`crate::rnn::Ngrams`]), scaled by the
    /// schedule as `lr` is; `None`: `lr`. A linear model over sparse n-grams learns at rates
    /// far above a recurrent network's (fastText's is 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wide_lr: Option<f32>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 20,
            optimizer: OptimizerKind::Adam,
            lr: OptimizerKind::Adam.default_lr(),
            batch: 32,
            patience: Some(5),
            ..TrainConfig::seed()
        }
    }
}

impl TrainConfig {
    /// The seed's settings: per-example SGD at 0.02 with gradients clipped to ±1, for 1000
    /// epochs, with nothing held out and nothing stopped early (what `rnn demo` runs).
    pub fn seed() -> Self {
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
            patience: None,
            schedule: LrSchedule::Constant,
            class_weights: None,
            freeze_embed: false,
            wide_lr: None,
        }
    }

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
        if self.threads > max_threads() {
            return Err(Error::Config(format!(
                "{} threads on a machine with {} cores: at most {} (4 per core, or 16)",
                self.threads,
                cores(),
                max_threads()
            )));
        }
        if self.patience == Some(0) {
            return Err(Error::Config(
                "the patience must be at least 1 epoch".into(),
            ));
        }
        if let LrSchedule::Plateau { patience, factor } = self.schedule
            && (patience == 0 || !(factor > 0.0 && factor < 1.0))
        {
            return Err(Error::Config(format!(
                "a plateau schedule needs a patience of at least 1 and a factor in (0, 1), \
                 not {patience} and {factor}"
            )));
        }
        if let Some(w) = &self.class_weights
            && let Some(bad) = w.iter().find(|w| !(w.is_finite() && **w >= 0.0))
        {
            return Err(Error::Config(format!(
                "a class weight must be a finite number of at least 0, not {bad}"
            )));
        }
        Ok(())
    }
}

/// The cores this process may run on (1 where that cannot be told).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The most threads a run may ask for: 4 per core, and at least 16 (more only waste memory
/// and time on switching; a larger number is a mistake, or a crafted file).
pub fn max_threads() -> usize {
    (4 * cores()).max(16)
}

/// The batch size used by default for `examples` training examples: 32, or fewer for a small
/// set, so that an epoch has at least 32 updates (`⌊N/32⌋`, at least 1). A set of 50
/// sentences then trains example by example, as the seed does.
pub fn default_batch(examples: usize) -> usize {
    (examples / 32).clamp(1, 32)
}

/// The examples of a run: what it trains on, what picks its best epoch, what is only reported.
#[derive(Clone, Copy, Debug, Default)]
pub struct Data<'a> {
    pub train: &'a [Example],
    /// Scored after every epoch; picks the best epoch and decides early stopping. May be empty.
    pub valid: &'a [Example],
    /// Scored after every epoch and only reported. May be empty.
    pub test: &'a [Example],
    /// When this becomes true (set by another thread, or by the event handler: a Ctrl-C, a
    /// caller's deadline), the run stops after the batch it is in (or, set at the end of an
    /// epoch, before the next one starts), as if early-stopped, and reports that it was
    /// [`TrainReport::interrupted`]. A part of an epoch is not scored.
    pub stop: Option<&'a AtomicBool>,
}

/// Whether `stop` is set (see [`Data::stop`]).
pub(crate) fn stop_requested(stop: Option<&AtomicBool>) -> bool {
    stop.is_some_and(|s| s.load(Ordering::Relaxed))
}

/// `N / (C · n_c)` for every class `c` with `n_c` of the `N` examples (scikit-learn's
/// "balanced"): the classes weigh the same in the loss, and the mean weight over the examples
/// is 1, so the learning rate means what it meant. A class without examples gets 0.
pub fn balanced_class_weights(examples: &[Example], classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; classes];
    for e in examples {
        counts[e.label as usize] += 1;
    }
    balanced_weights(&counts)
}

/// [`balanced_class_weights`] from the number of examples of every class (for processes that
/// each count a part of the data and add their counts up).
pub fn balanced_weights(counts: &[usize]) -> Vec<f32> {
    let n = counts.iter().sum::<usize>() as f64;
    let classes = counts.len() as f64;
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                (n / (classes * c as f64)) as f32
            }
        })
        .collect()
}

/// What training reports as it goes, for progress bars, logs and checkpoints.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A batch was trained: `done` of the epoch's `total` examples are through (for a language
    /// model, tokens predicted: see [`text`]).
    Step {
        epoch: usize,
        done: usize,
        total: usize,
    },
    /// An epoch ended: its metrics, the network as it is now, and the run's state (to write a
    /// checkpoint that [`resume`] can continue from).
    Epoch {
        metrics: &'a EpochMetrics,
        network: &'a Network,
        state: &'a RunState,
    },
    /// Something a user should know about the run (said once).
    Warning(&'a Warning),
    /// The run was stopped from outside ([`Data::stop`]): its state as at the end of its last
    /// complete epoch (what a checkpoint continues from; the batches of an epoch cut short
    /// are not in it), told once, before the run ends. `network` is the network as it is now.
    Interrupted {
        network: &'a Network,
        state: &'a RunState,
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
    /// The epoch whose weights the network ends with, when a validation set picked it.
    pub best_epoch: Option<usize>,
    /// Whether the run stopped before its last epoch for want of progress.
    pub stopped_early: bool,
    /// Whether the run was stopped from outside ([`Data::stop`]) before its end: the network
    /// holds the best epoch's weights if a validation set picked one, and otherwise those it
    /// had when it stopped.
    pub interrupted: bool,
    /// Every warning given.
    pub warnings: Vec<Warning>,
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

/// Everything a run carries from one epoch to the next but the network's weights and the
/// configuration: what a checkpoint must hold for [`resume`] to continue the run exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct RunState {
    /// Epochs completed.
    pub epoch: usize,
    /// Batches trained so far (they number the dropout's substreams).
    pub step: u64,
    /// The order of the training examples; every epoch shuffles the previous one.
    pub order: Vec<u32>,
    /// Where the shuffling stream stands.
    pub shuffle_position: u128,
    pub optimizer: OptimizerState,
    pub monitor: Monitor,
    /// The best epoch's parameters (empty until a validation set has picked one).
    pub best_params: Vec<f32>,
    /// The metrics of every epoch so far.
    pub history: Vec<EpochMetrics>,
    /// Seconds and tokens of training steps so far.
    pub train_seconds: f64,
    pub train_tokens: usize,
    /// Every warning given so far.
    pub warnings: Vec<Warning>,
}

impl RunState {
    /// The state of a run that has not started.
    fn new(net: &Network, train: &[Example], config: &TrainConfig) -> Self {
        RunState {
            order: (0..train.len() as u32).collect(),
            ..RunState::start(net, config, Monitor::new())
        }
    }

    /// The state of a run that has not started and shuffles nothing, watched by `monitor`.
    pub fn start(net: &Network, config: &TrainConfig, monitor: Monitor) -> Self {
        RunState {
            epoch: 0,
            step: 0,
            order: Vec::new(),
            shuffle_position: 0,
            optimizer: config.optimizer.build(net.params().len(), config.lr).save(),
            monitor,
            best_params: Vec::new(),
            history: Vec::new(),
            train_seconds: 0.0,
            train_tokens: 0,
            warnings: Vec::new(),
        }
    }

    /// Checks a state read back from a file: the epoch count agrees with the history, the best
    /// epoch is one of them, and every number is in range (a schedule's scale in `(0, 1]`,
    /// seconds finite). A state from a file is not trusted: a crafted one must be an error,
    /// never a panic or a run that silently trains otherwise.
    ///
    /// # Errors
    /// A sentence naming the field out of range.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.epoch != self.history.len() {
            return Err(format!(
                "epoch {} with the metrics of {} epochs",
                self.epoch,
                self.history.len()
            ));
        }
        if let Some((best, _)) = self.monitor.best
            && (best == 0 || best > self.epoch)
        {
            return Err(format!("best epoch {best} of {} epochs", self.epoch));
        }
        let scale = self.monitor.lr_scale;
        if !(scale > 0.0 && scale <= 1.0) {
            return Err(format!(
                "lr_scale {scale}: the schedule's scale of the learning rate is in (0, 1]"
            ));
        }
        if !(self.train_seconds.is_finite() && self.train_seconds >= 0.0) {
            return Err(format!("train_seconds {}", self.train_seconds));
        }
        if let Some(bad) = self.best_params.iter().find(|x| !x.is_finite()) {
            return Err(format!("the best epoch's weights hold {bad}"));
        }
        Ok(())
    }

    /// Checks that the state's order of the training examples is an order of `n` examples:
    /// each of `0..n` once.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first index out of place.
    fn check_order(&self, n: usize) -> Result<()> {
        let wrong = |what: String| {
            Err(Error::Config(format!(
                "the run's state is not of this training set: {what}"
            )))
        };
        if self.order.len() != n {
            return wrong(format!("it orders {} examples, not {n}", self.order.len()));
        }
        let mut seen = vec![false; n];
        for &i in &self.order {
            match seen.get_mut(i as usize) {
                Some(s) if !*s => *s = true,
                Some(_) => return wrong(format!("example {i} is in its order twice")),
                None => return wrong(format!("its order holds example {i} of {n}")),
            }
        }
        Ok(())
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
    evaluate_classes(net, examples).0
}

/// The mean loss and accuracy of `net` on `examples`, and the confusion matrix of its
/// predictions (see [`evaluate`]).
pub fn evaluate_classes(net: &Network, examples: &[Example]) -> (Score, Confusion) {
    let (tally, confusion) = tally_classes(net, examples);
    (tally.score(), confusion)
}

/// The loss and accuracy sums of `net` on `examples`, and the confusion matrix (see
/// [`evaluate_classes`]).
pub(crate) fn tally_classes(net: &Network, examples: &[Example]) -> (Tally, Confusion) {
    let classes = net.classes();
    let parts: Vec<(Tally, Vec<(usize, usize)>)> = examples
        .par_chunks(EVAL_BATCH)
        .map_init(Workspace::default, |ws, chunk| {
            let batch = batch_of(chunk.iter());
            net.forward_only(&batch, ws);
            let tally = loss::tally(ws, net.targets(&batch));
            let pairs = batch
                .targets()
                .iter()
                .enumerate()
                .map(|(r, &truth)| (truth as usize, argmax(ws.probabilities(r, classes))))
                .collect();
            (tally, pairs)
        })
        .collect();
    let mut tally = Tally::default();
    let mut confusion = Confusion::new(classes);
    for (t, pairs) in parts {
        tally.add(t.loss_sum, t.correct, t.count);
        for (truth, predicted) in pairs {
            confusion.add(truth, predicted);
        }
    }
    (tally, confusion)
}

fn batch_of<'a>(examples: impl Iterator<Item = &'a Example> + Clone) -> Batch {
    let sequences: Vec<&[u32]> = examples.clone().map(|e| e.tokens.as_slice()).collect();
    let targets: Vec<u32> = examples.clone().map(|e| e.label).collect();
    let mut batch = Batch::new(&sequences, &targets);
    attach_grams(&mut batch, examples);
    batch
}

/// Gives `batch` (refilled with `examples`) their tokens' subword n-grams, if they have some
/// (see [`crate::rnn::Subwords`]).
fn attach_grams<'a>(batch: &mut Batch, examples: impl Iterator<Item = &'a Example>) {
    let grams: Vec<&TokenGrams> = examples.map(|e| &e.grams).collect();
    if grams.iter().any(|g| !g.is_empty()) {
        batch.attach_grams(&grams);
    }
}

/// Trains `net` on `data.train`, scoring `data.valid` and `data.test` (when not empty) after
/// every epoch. With a validation set the network ends with the best epoch's weights (see
/// [`monitor`]), and `config.patience` can stop the run early. `on_event` hears of every batch,
/// every epoch and every warning.
///
/// # Errors
/// [`Error::Config`] for settings out of range or examples that do not fit the network;
/// [`Error::Diverged`] if the loss becomes NaN or infinite, in which case `net` is restored to
/// the best epoch's parameters, or (with [`TrainConfig::keep_last_good`]) to those at the end
/// of the last complete epoch.
pub fn train(
    net: &mut Network,
    data: Data<'_>,
    config: &TrainConfig,
    on_event: impl FnMut(Event<'_>) + Send,
) -> Result<TrainReport> {
    let state = RunState::new(net, data.train, config);
    resume(net, data, config, state, on_event)
}

/// Continues a run from `state`, as handed out by an epoch's [`Event::Epoch`], with `net`
/// holding the weights it had then: the same data and configuration give the same end as the
/// uninterrupted run. A fresh state ([`train`]) starts one.
///
/// # Errors
/// As [`train`], and [`Error::Config`] if the state does not fit the data, the network or the
/// optimiser.
pub fn resume(
    net: &mut Network,
    data: Data<'_>,
    config: &TrainConfig,
    state: RunState,
    on_event: impl FnMut(Event<'_>) + Send,
) -> Result<TrainReport> {
    config.validate()?;
    for set in [data.train, data.valid, data.test] {
        check_examples(net, set)?;
    }
    if let Some(w) = &config.class_weights
        && w.len() != net.classes()
    {
        return Err(Error::Config(format!(
            "{} class weights for {} classes",
            w.len(),
            net.classes()
        )));
    }
    state.check_order(data.train.len())?;
    let pool = run::thread_pool(net, config.threads())?;
    // The loop runs on one of the pool's threads (this one waits): the pool's other threads
    // then share its batches and evaluations, and while they wait for the next job they spin
    // on cores of their own, not on the loop's (one thread per core, not one more).
    pool.install(|| run_epochs(net, data, config, state, &pool, on_event))
}

/// The epochs of [`resume`], on a thread of `pool`.
fn run_epochs<'a>(
    net: &mut Network,
    data: Data<'a>,
    config: &TrainConfig,
    state: RunState,
    pool: &rayon::ThreadPool,
    mut on_event: impl FnMut(Event<'_>) + Send,
) -> Result<TrainReport> {
    let train = data.train;
    let threads = pool.current_num_threads();
    let mut run = Run::new(net, config.clone(), state)?;
    let mut rng = Rng::with_stream(config.seed, SHUFFLE_STREAM);
    rng.set_position(run.state.shuffle_position);
    let mut workers: Vec<Worker> = (0..threads).map(|_| Worker::new(net)).collect();
    let mut batches = Batches::default();
    let mut order: Vec<usize> = run.state.order.iter().map(|&i| i as usize).collect();

    while let Some(epoch) = run.next_epoch(data.stop) {
        let start = Instant::now();
        let lr = run.lr();
        if config.shuffle {
            rng.shuffle(&mut order);
        }
        batches.refill(&order, train, config, &mut rng);
        let mut tally = Tally::default();
        let mut done = 0;
        for span in &batches.spans {
            let indices = &batches.indices[span.clone()];
            let chosen: Vec<&Example> = indices.iter().map(|&k| &train[k]).collect();
            let weight = 1.0 / indices.len() as f32;
            let step = run.state.step;
            let t = batch_gradient(net, &chosen, weight, &mut workers, pool, config, step, 0);
            let loss = (t.loss_sum / t.count as f64) as f32;
            run.update(net, &mut workers[0].grads, loss)?;
            tally.add(t.loss_sum, t.correct, t.count);
            run.state.train_tokens += indices
                .iter()
                .map(|&k| train[k].tokens.len())
                .sum::<usize>();
            done += indices.len();
            on_event(Event::Step {
                epoch,
                done,
                total: train.len(),
            });
            if stop_requested(data.stop) {
                run.interrupt();
                break;
            }
        }
        run.state.train_seconds += start.elapsed().as_secs_f64();
        if run.interrupted() {
            break;
        }
        let (valid, valid_classes) = if data.valid.is_empty() {
            (None, Vec::new())
        } else {
            let (score, confusion) = pool.install(|| evaluate_classes(net, data.valid));
            let classes = (0..net.classes())
                .map(|c| confusion.class_score(c))
                .collect();
            (Some(score), classes)
        };
        let metrics = EpochMetrics {
            epoch,
            train: tally.score(),
            valid,
            test: (!data.test.is_empty()).then(|| pool.install(|| evaluate(net, data.test))),
            lr,
            valid_classes,
        };
        run.state.order.clear();
        run.state.order.extend(order.iter().map(|&i| i as u32));
        run.state.shuffle_position = rng.position();
        run.end_epoch(net, metrics, &mut on_event);
    }
    run.tell_interrupted(net, &mut on_event);
    // (with the weights the run ends with)
    let mut report = run.finish(net);
    if let Some(warning) = one_class_warning(net, &data, pool) {
        on_event(Event::Warning(&warning));
        report.warnings.push(warning);
    }
    Ok(report)
}

/// A warning when the trained network predicts one class for every validation example (or
/// training example, without a validation set) though there are several: it has learnt
/// nothing but the majority.
fn one_class_warning(net: &Network, data: &Data<'_>, pool: &rayon::ThreadPool) -> Option<Warning> {
    let validation = !data.valid.is_empty();
    let set = if validation { data.valid } else { data.train };
    let (_, confusion) = pool.install(|| evaluate_classes(net, set));
    let predicted: Vec<usize> = (0..net.classes())
        .filter(|&p| (0..net.classes()).any(|t| confusion.count(t, p) > 0))
        .collect();
    let truths = (0..net.classes())
        .filter(|&t| (0..net.classes()).any(|p| confusion.count(t, p) > 0))
        .count();
    match predicted.as_slice() {
        [only] if truths > 1 => Some(Warning::OneClass {
            class: *only,
            validation,
        }),
        _ => None,
    }
}

/// What one thread keeps from batch to batch.
pub(crate) struct Worker {
    ws: Workspace,
    pub(crate) grads: Gradients,
    batch: Batch,
    tally: Tally,
    /// The labels of its part of the batch (kept to reuse their memory).
    targets: Vec<u32>,
}

impl Worker {
    pub(crate) fn new(net: &Network) -> Self {
        Worker {
            ws: Workspace::default(),
            grads: Gradients::new(net),
            batch: Batch::default(),
            tally: Tally::default(),
            targets: Vec::new(),
        }
    }

    /// Forward and backward over `examples`, adding `weight` times the gradient of their summed
    /// loss to this worker's gradient, and their loss to its tally; `masks` is the dropout's
    /// stream.
    fn run<'e>(
        &mut self,
        net: &Network,
        examples: impl Iterator<Item = &'e Example> + Clone,
        weight: f32,
        class_weights: Option<&[f32]>,
        masks: Option<&mut Rng>,
    ) {
        let sequences: Vec<&[u32]> = examples.clone().map(|e| e.tokens.as_slice()).collect();
        self.targets.clear();
        self.targets.extend(examples.clone().map(|e| e.label));
        self.batch.refill(&sequences, &self.targets);
        attach_grams(&mut self.batch, examples);
        net.forward(&self.batch, &mut self.ws, masks);
        let t = loss::tally(&self.ws, net.targets(&self.batch));
        self.tally.add(t.loss_sum, t.correct, t.count);
        match class_weights {
            None => net.backward_weighted(&self.batch, &mut self.ws, &mut self.grads, weight),
            Some(w) => {
                net.backward_class_weighted(&self.batch, &mut self.ws, &mut self.grads, weight, w)
            }
        }
    }
}

/// The gradient of a batch, `weight` times the sum of its examples' losses, computed in parts
/// by `workers` on `pool` (part `p` is examples `p, p + parts, ...`) and summed into the first
/// worker's gradient; returns the batch's tally. `weight` is one over the whole batch, which
/// holds more than `examples` when other processes hold the rest of it; `salt` tells their
/// dropout masks apart (0 for a run in one process).
#[allow(clippy::too_many_arguments)]
pub(crate) fn batch_gradient(
    net: &Network,
    examples: &[&Example],
    weight: f32,
    workers: &mut [Worker],
    pool: &rayon::ThreadPool,
    config: &TrainConfig,
    step: u64,
    salt: u64,
) -> Tally {
    let parts = workers.len().min(examples.len()).max(1);
    let dropout = net.arch().dropout > 0.0;
    let class_weights = config.class_weights.as_deref();
    let run = |(p, worker): (usize, &mut Worker)| {
        let part = examples.iter().skip(p).step_by(parts).copied();
        // the masks of this batch's part p
        let mut masks = dropout.then(|| {
            Rng::with_substream(
                config.seed,
                DROPOUT_STREAM,
                (step << 16) | (salt << 8) | p as u64,
            )
        });
        worker.run(net, part, weight, class_weights, masks.as_mut());
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
    std::mem::take(&mut main.tally)
}

/// Sequences per bucket, in batches: examples are sorted by length within windows of this
/// many batches, so that a batch holds sequences of similar lengths.
const BUCKET_BATCHES: usize = 32;

/// The epoch's batches: `indices` into `train`, and the `spans` of it that are the batches, in
/// the order they are trained. Both are refilled every epoch, reusing their memory.
#[derive(Default)]
struct Batches {
    indices: Vec<usize>,
    spans: Vec<Range<usize>>,
}

impl Batches {
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
        let outside = |&&t: &&u32| t & UNSEEN == 0 && t as usize >= net.vocab();
        if let Some(&t) = e.tokens.iter().find(outside) {
            return Err(Error::Config(format!(
                "example {i}: token {t} is outside the vocabulary of {} tokens",
                net.vocab()
            )));
        }
        let buckets = net.arch().subwords.map(|s| s.buckets);
        if buckets.is_none() && !e.grams.is_empty() {
            return Err(Error::Config(format!(
                "example {i} has subword n-grams, and the network has no subword vectors"
            )));
        }
        if let Some(&g) = e
            .grams
            .all()
            .iter()
            .find(|&&g| g as usize >= buckets.unwrap_or(0))
        {
            return Err(Error::Config(format!(
                "example {i}: subword n-gram {g} is outside the {} buckets",
                buckets.unwrap_or(0)
            )));
        }
        if !e.grams.is_empty() && e.grams.len() < e.tokens.len() {
            return Err(Error::Config(format!(
                "example {i}: n-grams for {} of its {} tokens",
                e.grams.len(),
                e.tokens.len()
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
