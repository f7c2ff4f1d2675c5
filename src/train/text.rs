//! Training a language model on one long text: truncated backpropagation through time, as
//! char-rnn does it.
//!
//! ```text
//! text   w_0 w_1 ... w_{n-1}                       (token ids)
//! stream s = 0..B:  inputs w_{sL} .. w_{sL+L-1},  targets w_{sL+1} .. w_{sL+L}   (L = ⌊(n-1)/B⌋)
//! window k:  steps kT .. min((k+1)T, L) of every stream, one batch of B rows
//! ```
//!
//! The text is cut into `B` streams of equal length (`--batch`), read side by side; an epoch
//! walks them in windows of `T` steps (`--bptt`). Every window starts from the states the one
//! before ended in ([`Carry`]), so the network reads each stream from its start, but the
//! gradient stops at the window's start: the loss of window `k` is the mean over its `B·T`
//! predictions, and its gradient reaches back at most `T` steps. The states start from zero at
//! the start of every epoch.
//!
//! The epoch's bookkeeping (the learning rate's schedule, the best epoch by validation loss,
//! early stopping, divergence, the events) is the classifier's ([`Run`]); only the batches
//! differ. The streams of a window are shared among the threads, each thread
//! carrying the states of its own streams.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use rayon::prelude::*;

use super::run::{Run, thread_pool};
use super::{
    DROPOUT_STREAM, Event, Monitor, RunState, TrainConfig, TrainReport, Verdict, stop_requested,
};
use crate::error::{Error, Result, Setting};
use crate::metrics::{EpochMetrics, Score, Tally};
use crate::rng::Rng;
use crate::rnn::{Batch, Carry, Gradients, Head, Network, Workspace, loss};

/// The texts of a run, as token ids.
#[derive(Clone, Copy, Debug, Default)]
pub struct Texts<'a> {
    pub train: &'a [u32],
    /// Scored after every epoch: picks the best epoch, decides early stopping. May be empty.
    pub valid: &'a [u32],
    /// When this becomes true, the run stops after the window it is in and scores the epoch so
    /// far as its last, or (set at the end of an epoch) before the next one starts (see
    /// [`super::Data::stop`]).
    pub stop: Option<&'a AtomicBool>,
}

/// What only training on a text needs besides [`TrainConfig`] (whose `batch` is the number of
/// streams).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TextConfig {
    /// `T`, steps a window: how far back a gradient reaches.
    pub bptt: usize,
    /// Stop after the window in which training has taken this many seconds in all, then score
    /// the epoch so far as the last. None: run every epoch.
    pub max_seconds: Option<f64>,
}

impl Default for TextConfig {
    fn default() -> Self {
        TextConfig {
            bptt: 50,
            max_seconds: None,
        }
    }
}

/// A text cut into streams read side by side.
#[derive(Clone, Copy, Debug)]
pub struct Streams<'a> {
    text: &'a [u32],
    /// `B`.
    count: usize,
    /// `L`, the inputs of a stream (each with its target, the next token).
    len: usize,
}

impl<'a> Streams<'a> {
    /// `text` cut into `count` streams of `⌊(n-1)/count⌋` inputs (the rest is dropped), or
    /// `None` when that is 0.
    pub fn new(text: &'a [u32], count: usize) -> Option<Self> {
        let len = text.len().saturating_sub(1) / count.max(1);
        (len > 0 && count > 0).then_some(Streams { text, count, len })
    }

    /// The number of windows of `bptt` steps.
    pub fn windows(&self, bptt: usize) -> usize {
        self.len.div_ceil(bptt)
    }

    /// The inputs and targets of stream `s` in window `k`.
    fn window(&self, s: usize, k: usize, bptt: usize) -> (&'a [u32], &'a [u32]) {
        let start = s * self.len + k * bptt;
        let end = s * self.len + self.len.min((k + 1) * bptt);
        (&self.text[start..end], &self.text[start + 1..end + 1])
    }

    /// The tokens predicted in an epoch: `B·L`.
    pub fn predictions(&self) -> usize {
        self.count * self.len
    }
}

/// Trains `net`, which must predict at every step, on `texts.train` (see the module's
/// documentation), scoring `texts.valid` after every epoch when it has at least two tokens;
/// the network ends with the best epoch's weights (by validation loss). A fresh run starts
/// from `RunState::start`, a resumed one from an epoch's state.
///
/// # Errors
/// [`Error::Config`] for settings out of range, a network without a step head, tokens outside
/// its vocabulary, or a training text shorter than one window; [`Error::Diverged`] as
/// [`super::train`].
pub fn train_text(
    net: &mut Network,
    texts: Texts<'_>,
    config: &TrainConfig,
    text: &TextConfig,
    state: Option<RunState>,
    mut on_event: impl FnMut(Event<'_>) + Send,
) -> Result<TrainReport> {
    config.validate()?;
    if net.arch().head != Head::Step || net.arch().bidirectional {
        return Err(Error::Config(
            "a language model predicts at every step and reads forwards only".into(),
        ));
    }
    let streams = check_text(texts, config, text)?;
    for (what, tokens) in [("training", texts.train), ("validation", texts.valid)] {
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= net.vocab()) {
            return Err(Error::Config(format!(
                "the {what} text holds token {t}, outside the vocabulary of {}",
                net.vocab()
            )));
        }
    }
    let pool = thread_pool(net, config.threads())?;
    let state = state.unwrap_or_else(|| RunState::start(net, config, Monitor::by_loss()));
    pool.install(|| {
        run_epochs(
            net,
            texts,
            streams,
            config,
            text,
            state,
            &pool,
            &mut on_event,
        )
    })
}

/// Checks the text settings, and that the training text fills at least one window of every
/// stream; returns its streams.
///
/// # Errors
/// [`Error::Config`] naming the setting out of range, or the text's length and what one
/// window needs.
pub fn check_text<'a>(
    texts: Texts<'a>,
    config: &TrainConfig,
    text: &TextConfig,
) -> Result<Streams<'a>> {
    if text.bptt == 0 {
        return Err(Error::Config(format!(
            "{} must be at least 1",
            Setting::Bptt
        )));
    }
    if let Some(s) = text.max_seconds
        && !(s.is_finite() && s >= 0.0)
    {
        return Err(Error::Config(format!(
            "the time limit must be a number of seconds, not {s}"
        )));
    }
    Streams::new(texts.train, config.batch)
        .filter(|s| s.len >= text.bptt)
        .ok_or_else(|| {
            Error::Config(format!(
                "the training text has {} tokens: fewer than one window of {} streams of {} \
                 steps needs ({}); use a smaller {} or {}",
                texts.train.len(),
                config.batch,
                text.bptt,
                config.batch * text.bptt + 1,
                Setting::Batch,
                Setting::Bptt
            ))
        })
}

/// What one thread keeps from window to window: its streams' states, and the buffers of a
/// forward and backward pass.
struct Worker {
    ws: Workspace,
    grads: Gradients,
    batch: Batch,
    carry: Carry,
    tally: Tally,
}

impl Worker {
    fn new(net: &Network) -> Self {
        Worker {
            ws: Workspace::default(),
            grads: Gradients::new(net),
            batch: Batch::default(),
            carry: Carry::default(),
            tally: Tally::default(),
        }
    }

    /// Fills the batch with window `k` of the streams `p, p + parts, ...`.
    fn fill(&mut self, streams: &Streams<'_>, p: usize, parts: usize, k: usize, bptt: usize) {
        let (inputs, targets): (Vec<&[u32]>, Vec<&[u32]>) = (p..streams.count)
            .step_by(parts)
            .map(|s| streams.window(s, k, bptt))
            .unzip();
        self.batch.refill_with_step_targets(&inputs, &targets);
    }
}

#[allow(clippy::too_many_arguments)]
fn run_epochs(
    net: &mut Network,
    texts: Texts<'_>,
    streams: Streams<'_>,
    config: &TrainConfig,
    text: &TextConfig,
    state: RunState,
    pool: &rayon::ThreadPool,
    on_event: &mut (impl FnMut(Event<'_>) + Send),
) -> Result<TrainReport> {
    let (valid, stop) = (texts.valid, texts.stop);
    let parts = pool.current_num_threads().min(streams.count);
    let mut run = Run::new(net, config.clone(), state)?;
    let mut workers: Vec<Worker> = (0..parts).map(|_| Worker::new(net)).collect();
    let dropout = net.arch().dropout > 0.0;
    let (bptt, windows) = (text.bptt, streams.windows(text.bptt));
    let mut out_of_time = false;
    while let Some(epoch) = run.next_epoch(stop) {
        let start = Instant::now();
        let lr = run.lr();
        for w in &mut workers {
            w.carry.clear();
        }
        let mut tally = Tally::default();
        for k in 0..windows {
            let net_ref: &Network = net;
            let step = run.state.step;
            // the mean over every prediction of the window, whichever thread makes it
            let weight = 1.0 / (streams.count * streams.window(0, k, bptt).0.len()) as f32;
            let work = |(p, worker): (usize, &mut Worker)| {
                worker.fill(&streams, p, parts, k, bptt);
                let mut masks = dropout.then(|| {
                    Rng::with_substream(config.seed, DROPOUT_STREAM, (step << 16) | p as u64)
                });
                net_ref.forward_carried(
                    &worker.batch,
                    &mut worker.ws,
                    &mut worker.carry,
                    masks.as_mut(),
                );
                worker.tally = loss::tally(&worker.ws, net_ref.targets(&worker.batch));
                net_ref.backward_weighted(&worker.batch, &mut worker.ws, &mut worker.grads, weight);
            };
            if parts == 1 {
                work((0, &mut workers[0]));
            } else {
                pool.install(|| workers.par_iter_mut().enumerate().for_each(work));
            }
            let (first, others) = workers.split_at_mut(1);
            let main = &mut first[0];
            let mut window = main.tally;
            for other in others.iter_mut() {
                let t = other.tally;
                window.add(t.loss_sum, t.correct, t.count);
                main.grads.absorb(&mut other.grads);
            }
            let loss = (window.loss_sum / window.count as f64) as f32;
            run.update(net, &mut main.grads, loss)?;
            tally.add(window.loss_sum, window.correct, window.count);
            run.state.train_tokens += window.count;
            // the tokens predicted so far in the epoch
            on_event(Event::Step {
                epoch,
                done: tally.count,
                total: streams.predictions(),
            });
            let spent = run.state.train_seconds + start.elapsed().as_secs_f64();
            if text.max_seconds.is_some_and(|limit| spent >= limit) {
                out_of_time = true;
                break;
            }
            if stop_requested(stop) {
                run.interrupt();
                break;
            }
        }
        run.state.train_seconds += start.elapsed().as_secs_f64();
        let valid_score = Streams::new(valid, config.batch.min(valid.len().saturating_sub(1)))
            .map(|v| evaluate_streams(net, &v, bptt));
        let metrics = EpochMetrics {
            epoch,
            train: tally.score(),
            valid: valid_score,
            test: None,
            lr,
            valid_classes: Vec::new(),
        };
        if run.end_epoch(net, metrics, on_event) == Verdict::Stop
            || out_of_time
            || run.interrupted()
        {
            break;
        }
    }
    run.tell_interrupted(net, on_event);
    Ok(run.finish(net))
}

/// The mean loss (nats a token) and next-token accuracy of `net` on `tokens`, read as up to
/// `streams` streams side by side in windows of `bptt` steps, the state carried from one to
/// the next: what training reports as the validation score. Groups of [`EVAL_ROWS`] streams
/// run in parallel on the current rayon pool, each group as one batch, and their sums are
/// added in order, so the result does not depend on the number of threads. A text of fewer
/// than two tokens scores `None`.
pub fn evaluate_text(net: &Network, tokens: &[u32], streams: usize, bptt: usize) -> Option<Score> {
    let streams = Streams::new(tokens, streams.min(tokens.len().saturating_sub(1)))?;
    Some(evaluate_streams(net, &streams, bptt.max(1)))
}

/// Streams evaluated side by side in one batch.
pub const EVAL_ROWS: usize = 8;

fn evaluate_streams(net: &Network, streams: &Streams<'_>, bptt: usize) -> Score {
    let windows = streams.windows(bptt);
    let groups: Vec<usize> = (0..streams.count).step_by(EVAL_ROWS).collect();
    let tallies: Vec<Tally> = groups
        .into_par_iter()
        .map(|first| {
            let rows = first..streams.count.min(first + EVAL_ROWS);
            let (mut ws, mut carry, mut batch) =
                (Workspace::default(), Carry::default(), Batch::default());
            let mut tally = Tally::default();
            for k in 0..windows {
                let (inputs, targets): (Vec<&[u32]>, Vec<&[u32]>) =
                    rows.clone().map(|s| streams.window(s, k, bptt)).unzip();
                batch.refill_with_step_targets(&inputs, &targets);
                net.forward_only_carried(&batch, &mut ws, &mut carry);
                let t = loss::tally(&ws, net.targets(&batch));
                tally.add(t.loss_sum, t.correct, t.count);
            }
            tally
        })
        .collect();
    let mut total = Tally::default();
    for t in tallies {
        total.add(t.loss_sum, t.correct, t.count);
    }
    total.score()
}
