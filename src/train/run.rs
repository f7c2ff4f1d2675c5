//! One training run, step by step: what every trainer shares, whatever its batches are.
//!
//! A trainer (the classifier's [`super::train`], the language model's [`super::text`], a rank
//! of a data-parallel run, [`super::ranks`]) makes the gradients of its batches; a [`Run`]
//! does the rest, the same way for all three:
//!
//! ```text
//! while let Some(epoch) = run.next_epoch(stop):     the learning rate of the schedule set
//!     for every batch:
//!         gradient of the batch                     (the trainer's)
//!         run.update(net, grads, loss)              divergence check, clip, update, count
//!     run.end_epoch(net, metrics)                   monitor: best epoch, schedule, early stop,
//!                                                   warnings, the epoch's event, last good copy
//! run.finish(net)                                   the best epoch's weights, the report
//! ```
//!
//! The learning rate of an epoch is `lr · lr_scale`, the configured rate times the scale the
//! monitor's schedule has reached ([`Run::lr`]), computed here and nowhere else.

use crate::error::{Error, Result};
use crate::metrics::EpochMetrics;
use crate::optim::Optimizer;
use crate::rnn::{Gradients, Network};

use super::{Event, RunState, TrainConfig, TrainReport, Verdict, stop_requested};
use std::sync::atomic::AtomicBool;

/// A run's state between its steps: the settings, the optimiser, the run's state (what a
/// checkpoint holds), the last good weights, and how the run ended.
pub struct Run {
    config: TrainConfig,
    optimizer: Box<dyn Optimizer>,
    pub(crate) state: RunState,
    /// A copy of the weights at the end of the last complete epoch (with
    /// [`TrainConfig::keep_last_good`]), restored when the loss diverges.
    last_good: Vec<f32>,
    stopped_early: bool,
    interrupted: bool,
    /// The state's counters (steps, tokens, seconds) at the end of the last complete epoch,
    /// which the batches of an epoch cut short move on.
    at_epoch_end: (u64, usize, f64),
}

impl Run {
    /// A run of `net` with `config` from `state` (a fresh [`RunState::start`], or an epoch's
    /// state to resume from), its optimiser restored from the state.
    ///
    /// # Errors
    /// [`Error::Config`] for settings out of range, or a state that is not of this network or
    /// optimiser.
    pub fn new(net: &Network, config: TrainConfig, state: RunState) -> Result<Self> {
        config.validate()?;
        state.check().map_err(Error::Config)?;
        if !(state.best_params.is_empty() || state.best_params.len() == net.params().len()) {
            return Err(Error::Config(
                "the run's state is not of this network".into(),
            ));
        }
        let mut optimizer = config.optimizer.build(net.params().len(), config.lr);
        optimizer.restore(&state.optimizer)?;
        let last_good = if config.keep_last_good {
            net.params().to_vec()
        } else {
            Vec::new()
        };
        let at_epoch_end = (state.step, state.train_tokens, state.train_seconds);
        let mut run = Run {
            config,
            optimizer,
            state,
            last_good,
            stopped_early: false,
            interrupted: false,
            at_epoch_end,
        };
        run.optimizer.set_learning_rate(run.lr());
        Ok(run)
    }

    /// The run's settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The run's state at the end of the last epoch (for a checkpoint).
    pub fn state(&self) -> &RunState {
        &self.state
    }

    /// The learning rate now: the configured rate times the schedule's scale.
    pub fn lr(&self) -> f32 {
        self.config.lr * self.state.monitor.lr_scale
    }

    /// The epoch to run next (from 1), with the schedule's learning rate set; `None` when every
    /// epoch has run, or when `stop` is set (the run is then interrupted).
    pub fn next_epoch(&mut self, stop: Option<&AtomicBool>) -> Option<usize> {
        let epoch = self.state.epoch + 1;
        if epoch > self.config.epochs || self.stopped_early {
            return None;
        }
        if stop_requested(stop) {
            self.interrupted = true;
            return None;
        }
        self.optimizer.set_learning_rate(self.lr());
        Some(epoch)
    }

    /// Marks the run as stopped from outside (see [`super::Data::stop`]).
    pub fn interrupt(&mut self) {
        self.interrupted = true;
    }

    /// Whether the run was stopped from outside.
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// The update of one batch, whose mean loss (over every rank, in a data-parallel run) is
    /// `loss` and whose gradient is in `grads`: clipped, applied, and cleared for the next
    /// batch; the step counted.
    ///
    /// # Errors
    /// [`Error::Diverged`] if `loss` is NaN or infinite: nothing is applied, and `net` goes
    /// back to the best epoch's weights, or to the last good ones (see [`Run::diverged`]).
    pub fn update(&mut self, net: &mut Network, grads: &mut Gradients, loss: f32) -> Result<()> {
        if !loss.is_finite() {
            return Err(self.diverged(net, loss));
        }
        if self.config.freeze_embed
            && let Some(embedding) = net.layout().get("embedding.weight")
        {
            // the words' vectors; subword n-grams' rows, after them, still learn
            grads.zero_table(embedding.range().start, net.vocab());
        }
        let scale = self.state.monitor.lr_scale;
        let wide_lr = self.config.wide_lr.map(|lr| lr * scale);
        self.optimizer
            .step_with_wide_rate(net.params_mut(), grads, self.config.clip, wide_lr);
        self.state.step += 1;
        Ok(())
    }

    /// What a run does when the loss of a batch of the coming epoch is `loss`, NaN or infinite:
    /// the network goes back to the best epoch's weights, or to those at the end of the last
    /// complete epoch (when kept), and the error says which.
    pub fn diverged(&self, net: &mut Network, loss: f32) -> Error {
        let epoch = self.state.epoch + 1;
        let state = &self.state;
        let kept = if !state.best_params.is_empty() {
            net.params_mut().copy_from_slice(&state.best_params);
            state.monitor.best.map_or(0, |(e, _)| e)
        } else {
            if self.config.keep_last_good {
                net.params_mut().copy_from_slice(&self.last_good);
            }
            epoch - 1
        };
        Error::Diverged {
            epoch,
            loss,
            last_good: kept,
            lr: self.lr(),
        }
    }

    /// The end of an epoch, whose `metrics` are given: the monitor's verdict, the best weights
    /// kept, the state brought up to date, the warnings and the epoch told to `on_event`, and
    /// the last good weights copied. After [`Verdict::Stop`] no epoch follows.
    pub fn end_epoch(
        &mut self,
        net: &Network,
        metrics: EpochMetrics,
        on_event: &mut impl FnMut(Event<'_>),
    ) -> Verdict {
        let (epoch, lr) = (metrics.epoch, metrics.lr);
        let state = &mut self.state;
        state.history.push(metrics);
        let (verdict, warnings) = state.monitor.after_epoch(
            &state.history,
            self.config.patience,
            self.config.schedule,
            lr,
        );
        if verdict == Verdict::Best {
            state.best_params.clear();
            state.best_params.extend_from_slice(net.params());
        }
        state.epoch = epoch;
        self.optimizer.save_into(&mut state.optimizer);
        self.at_epoch_end = (state.step, state.train_tokens, state.train_seconds);
        for warning in warnings {
            on_event(Event::Warning(&warning));
            state.warnings.push(warning);
        }
        on_event(Event::Epoch {
            metrics: state.history.last().expect("just pushed"),
            network: net,
            state,
        });
        if self.config.keep_last_good {
            self.last_good.copy_from_slice(net.params());
        }
        self.stopped_early |= verdict == Verdict::Stop;
        // the next epoch's rate, for a trainer driven from outside (a rank)
        self.optimizer.set_learning_rate(self.lr());
        verdict
    }

    /// If the run was interrupted, tells `on_event` so ([`Event::Interrupted`]) with its
    /// state as at the end of its last complete epoch: the steps, tokens and seconds of an
    /// epoch cut short are not counted in it. (The rest of the state moves only at the end of
    /// an epoch.) A trainer calls it once, after its last epoch.
    pub fn tell_interrupted(&mut self, net: &Network, on_event: &mut impl FnMut(Event<'_>)) {
        if !self.interrupted {
            return;
        }
        let state = &mut self.state;
        let now = (state.step, state.train_tokens, state.train_seconds);
        (state.step, state.train_tokens, state.train_seconds) = self.at_epoch_end;
        on_event(Event::Interrupted {
            network: net,
            state,
        });
        (state.step, state.train_tokens, state.train_seconds) = now;
    }

    /// Ends the run: `net` takes the best epoch's weights, when a validation set picked one,
    /// and the report tells what the run did.
    pub fn finish(self, net: &mut Network) -> TrainReport {
        let best_epoch = self.state.monitor.best.map(|(e, _)| e);
        if best_epoch.is_some() {
            net.params_mut().copy_from_slice(&self.state.best_params);
        }
        TrainReport {
            history: self.state.history,
            train_seconds: self.state.train_seconds,
            train_tokens: self.state.train_tokens,
            best_epoch,
            stopped_early: self.stopped_early,
            interrupted: self.interrupted,
            warnings: self.state.warnings,
        }
    }
}

/// The thread pool of a run of `net` with `threads` threads, once the memory check has passed
/// for what training holds: the parameters, Adam's two moments, the best epoch's copy, and a
/// gradient a thread.
///
/// # Errors
/// [`Error::Config`] when that does not fit in memory, or the threads cannot start.
pub fn thread_pool(net: &Network, threads: usize) -> Result<rayon::ThreadPool> {
    let copies = 4 + threads as u64;
    let bytes = (net.params().len() as u64).checked_mul(4 * copies);
    crate::memory::check(
        bytes,
        &format!(
            "training a network of {} parameters with {threads} threads",
            net.params().len()
        ),
    )?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Config(format!("cannot start {threads} threads: {e}")))
}
