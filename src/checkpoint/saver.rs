//! What a training run writes as it goes, for the command line and the Python package alike:
//! the model file (the initial model, then the best so far) and the checkpoint that `--resume`
//! continues from, and at the end the trained model, the checkpoint removed unless it is kept.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{RunLock, save};
use crate::error::{Error, Result, Setting};
use crate::model_file::{self, ContentsRef, Rest};
use crate::train::{Event, RunState, TrainConfig, TrainReport};

/// The checkpoint's path for a model: `MODEL.ckpt`, beside it.
pub fn checkpoint_path(model: &Path) -> PathBuf {
    let mut name = model.file_name().unwrap_or_default().to_os_string();
    name.push(".ckpt");
    model.with_file_name(name)
}

/// Where a run writes: its model file, if it has one (the Python package keeps the model in
/// memory), and its checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFiles {
    pub model: Option<PathBuf>,
    pub checkpoint: PathBuf,
    /// Keep the checkpoint once the run has ended, to continue it later; otherwise it is
    /// removed once the model is saved.
    pub keep_checkpoint: bool,
}

impl RunFiles {
    /// A model file with its checkpoint beside it ([`checkpoint_path`]), as `rnn train` and
    /// `rnn lm` write them.
    pub fn beside(model: &Path, keep_checkpoint: bool) -> Self {
        RunFiles {
            model: Some(model.to_path_buf()),
            checkpoint: checkpoint_path(model),
            keep_checkpoint,
        }
    }
}

/// How often a run writes its model and checkpoint at the end of an epoch. The model file
/// always holds a usable model (the initial one, then the best so far), and the checkpoint
/// lets `--resume` continue, so a run that is stopped loses at most this much work; unless
/// writing takes longer than a tenth of it (a large model: the checkpoint holds its weights
/// three times, with Adam's moments), when the interval is ten times the last write, so that
/// writing costs at most a tenth of the run.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

/// The interval between writes is at least this many times the last write's duration.
const WRITE_SHARE: u32 = 10;

/// What a training run writes as it goes: at the end of an epoch (at most every
/// `CHECKPOINT_EVERY`, and after the last), the best model so far to the model file and the
/// run's state to the checkpoint. A write that fails does not stop the run; [`Saver::finish`]
/// reports it when the run ends.
pub struct Saver {
    files: RunFiles,
    /// The run's claim on its files, given back when the saver is dropped.
    _lock: RunLock,
    config: TrainConfig,
    /// What the caller keeps in the checkpoint beside the run's state (how it made its data).
    notes: serde_json::Value,
    last: Instant,
    /// The time between writes: [`CHECKPOINT_EVERY`], or more after a slow write.
    every: Duration,
    /// What the model file holds, in words.
    saved: String,
    /// Whether the checkpoint has been written.
    checkpointed: bool,
    /// The epoch whose end was not written (it came too soon after the last write) and the
    /// network's weights then: what an interrupted run writes, so that its checkpoint is of
    /// its last complete epoch.
    unwritten: Option<(usize, Vec<f32>)>,
    error: Option<Error>,
}

impl Saver {
    /// A saver for a run of `config` that writes `files`, if any, keeping `notes` in its
    /// checkpoints; a new run gives its `initial` model, which is written first, so that from
    /// then on the model file always holds a usable model.
    ///
    /// The files are claimed for this run first ([`RunLock`]): two runs cannot write one
    /// model.
    ///
    /// # Errors
    /// [`Error::Io`] if another run that still runs writes these files, or the initial model
    /// cannot be written.
    pub fn start(
        files: Option<RunFiles>,
        config: &TrainConfig,
        notes: &impl serde::Serialize,
        initial: Option<ContentsRef<'_>>,
    ) -> Result<Option<Self>> {
        let Some(files) = files else {
            return Ok(None);
        };
        let lock = RunLock::take(files.model.as_deref().unwrap_or(&files.checkpoint))?;
        if let (Some(path), Some(initial)) = (&files.model, initial) {
            model_file::save(initial, path)?;
        }
        Ok(Some(Saver {
            files,
            _lock: lock,
            config: config.clone(),
            notes: serde_json::to_value(notes).expect("plain data"),
            last: Instant::now(),
            every: CHECKPOINT_EVERY,
            saved: "the initial model".into(),
            checkpointed: false,
            unwritten: None,
            error: None,
        }))
    }

    /// At the end of epoch `epoch`, with the network's `current` contents and the run's
    /// `state`: writes both files if it is time.
    pub fn at_epoch(&mut self, current: ContentsRef<'_>, state: &RunState, epoch: usize) {
        if self.last.elapsed() < self.every && epoch != self.config.epochs {
            // kept, in case the run is interrupted before the next write
            let (at, params) = self.unwritten.get_or_insert_with(|| (0, Vec::new()));
            *at = epoch;
            params.clear();
            params.extend_from_slice(current.params);
            return;
        }
        self.write(current, state, epoch);
    }

    /// After the run was interrupted, with its `state` as at the end of its last complete
    /// epoch (see [`crate::train::Event::Interrupted`]): writes that epoch's model and
    /// checkpoint, if they were not written then, so that `--resume` goes on from it. `current`
    /// is the network as it is (its weights are not written: those of the epoch's end are).
    /// Nothing is written when no epoch ended.
    pub fn at_interrupt(&mut self, current: ContentsRef<'_>, state: &RunState) {
        match self.unwritten.take() {
            Some((epoch, params)) if epoch == state.epoch && epoch > 0 => {
                let at_end = ContentsRef {
                    params: &params,
                    ..current
                };
                self.write(at_end, state, epoch);
            }
            _ => {}
        }
    }

    /// Writes the model file (the best epoch so far, or `current`) and the checkpoint of
    /// `current` and `state`, at the end of epoch `epoch`.
    fn write(&mut self, current: ContentsRef<'_>, state: &RunState, epoch: usize) {
        let start = Instant::now();
        self.unwritten = None;
        // the model file: the best epoch so far, or the latest
        let best = ContentsRef {
            params: if state.best_params.is_empty() {
                current.params
            } else {
                &state.best_params
            },
            ..current
        };
        let written = match &self.files.model {
            Some(path) => model_file::save(best, path),
            None => Ok(()),
        }
        .and_then(|()| {
            save(
                &self.files.checkpoint,
                current,
                &self.config,
                state,
                &self.notes,
            )
        });
        match written {
            Ok(()) => {
                self.checkpointed = true;
                self.saved = state.monitor.best.map_or_else(
                    || format!("the model after epoch {epoch}"),
                    |(e, _)| format!("the best model so far (epoch {e})"),
                )
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self.last = Instant::now();
        self.every = CHECKPOINT_EVERY.max(start.elapsed() * WRITE_SHARE);
    }

    /// The run's result, with a failed write or a divergence told: a diverged run with a
    /// model file names what that file keeps and how to go on.
    ///
    /// # Errors
    /// The first write that failed; [`Error::DivergedSaved`] for a run with a model file that
    /// diverged; any other error of the run as it was.
    pub fn finish<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        match (result, &self.files.model) {
            (
                Err(Error::Diverged {
                    epoch, loss, lr, ..
                }),
                Some(model),
            ) => Err(Error::DivergedSaved {
                epoch,
                loss,
                lr,
                model: model.clone(),
                kept: self.saved.clone(),
                checkpoint: self.checkpointed.then(|| self.files.checkpoint.clone()),
            }),
            (other, _) => other,
        }
    }

    /// After a run that ended well: the `trained` model saved to the model file (if any) and
    /// the checkpoint removed, unless it is kept.
    ///
    /// # Errors
    /// [`Error::Io`] if the model cannot be written or the checkpoint removed.
    pub fn close(self, trained: ContentsRef<'_>) -> Result<()> {
        if let Some(path) = &self.files.model {
            model_file::save(trained, path)?;
        }
        let checkpoint = &self.files.checkpoint;
        if !self.files.keep_checkpoint && checkpoint.exists() {
            std::fs::remove_file(checkpoint).map_err(|e| Error::io(checkpoint, e))?;
        }
        Ok(())
    }
}

/// The event handler of a run that `saver` (if any) writes the files of: `on_event`, and at
/// the end of every epoch the model (`rest` around the network being trained) and the
/// checkpoint written, if it is time (see [`Saver::at_epoch`]).
pub fn writing<'s>(
    saver: &'s mut Option<Saver>,
    rest: Rest<'s>,
    mut on_event: impl FnMut(Event<'_>) + Send + 's,
) -> impl FnMut(Event<'_>) + Send + 's {
    move |event| {
        match (saver.as_mut(), event) {
            (
                Some(saver),
                Event::Epoch {
                    network,
                    state,
                    metrics,
                },
            ) => saver.at_epoch(rest.around(network, network.params()), state, metrics.epoch),
            (Some(saver), Event::Interrupted { network, state }) => {
                saver.at_interrupt(rest.around(network, network.params()), state)
            }
            _ => {}
        }
        on_event(event);
    }
}

/// The end of a run that `saver` (if any) wrote the files of: its `result` as
/// [`Saver::finish`] tells it, and after a run that ended well the `trained` model saved
/// ([`Saver::close`]). An interrupted run leaves its files as they are: the model file with
/// the best model of its complete epochs, and the checkpoint, if one was written, of its last
/// complete epoch (kept, to be resumed).
///
/// # Errors
/// As [`Saver::finish`] and [`Saver::close`].
pub fn end(
    saver: Option<Saver>,
    result: Result<TrainReport>,
    trained: ContentsRef<'_>,
) -> Result<TrainReport> {
    let Some(mut saver) = saver else {
        return result;
    };
    let report = saver.finish(result)?;
    if !report.interrupted {
        saver.close(trained)?;
    }
    Ok(report)
}

/// Checks that a resumed run is given a validation file when it was started with one, and none
/// when it was not (`what` names the data: "data", "text").
///
/// # Errors
/// [`Error::Config`] saying how the run was started.
pub fn check_validation_file(started_with: bool, given: bool, what: &str) -> Result<()> {
    if started_with == given {
        return Ok(());
    }
    Err(Error::Config(format!(
        "the run was started {} {}: give the same {what} to resume it",
        if started_with { "with" } else { "without" },
        Setting::Valid
    )))
}
