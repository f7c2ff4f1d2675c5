//! The files a training command writes: their folders made, each checked before any work, and
//! none of them one of the inputs; the model and the checkpoint written as the run goes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use rnn::checkpoint;
use rnn::error::Error;
use rnn::fsutil::check_output;
use rnn::model_file::ContentsRef;
use rnn::train::{RunState, TrainConfig};

/// The checkpoint's path for a model: `MODEL.ckpt`, beside it.
pub fn checkpoint_path(model: &Path) -> PathBuf {
    let mut name = model.file_name().unwrap_or_default().to_os_string();
    name.push(".ckpt");
    model.with_file_name(name)
}

/// Creates the folders of `outputs` (as `rnn demo` does) and fails before any work if one
/// could not be written, or if it is one of `inputs` (which writing it would overwrite).
/// `model` is the output that is the model (named so in the message).
pub fn prepare(outputs: &[&Path], inputs: &[&Path], model: &Path, quiet: bool) -> Result<()> {
    for path in outputs {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.is_dir()
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create its folder", path.display()))?;
            if !quiet {
                eprintln!("Created the folder {}", dir.display());
            }
        }
        // the checkpoint is only written later, and removed at the end
        if *path != checkpoint_path(model) {
            check_output(path)?;
        }
    }
    for output in outputs {
        for input in inputs {
            if same_file(input, output) {
                bail!(
                    "{}: this is the data being read; writing the {} there would overwrite it",
                    output.display(),
                    if *output == model { "model" } else { "output" }
                );
            }
        }
    }
    Ok(())
}

/// Whether `a` and `b` name the same file: the same path, or the same existing file by another
/// path (a link, `./x` and `x`).
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if a == b {
        return true;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// The last part of a path, for titles.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// How often a run writes its model and checkpoint at the end of an epoch. The model file
/// always holds a usable model (the initial one, then the best so far), and the checkpoint
/// lets `--resume` continue, so a run that is stopped loses at most this much work.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

/// What a training command writes as its run goes: at the end of an epoch (at most every
/// [`CHECKPOINT_EVERY`], and after the last), the best model so far to the model file and the
/// run's state to the checkpoint. A write that fails does not stop the run; the command reports
/// it when the run ends ([`Saver::finish`]).
pub struct Saver<'a> {
    pub model: &'a Path,
    pub checkpoint: &'a Path,
    pub config: &'a TrainConfig,
    /// What the command keeps in the checkpoint beside the run's state.
    pub notes: serde_json::Value,
    last: Instant,
    /// What the model file holds, in words.
    saved: String,
    error: Option<Error>,
}

impl<'a> Saver<'a> {
    /// A saver for a run whose model file holds the initial model.
    pub fn new(
        model: &'a Path,
        checkpoint: &'a Path,
        config: &'a TrainConfig,
        notes: serde_json::Value,
    ) -> Self {
        Saver {
            model,
            checkpoint,
            config,
            notes,
            last: Instant::now(),
            saved: "the initial model".into(),
            error: None,
        }
    }

    /// At the end of epoch `epoch`, with the network's `current` contents and the run's
    /// `state`: writes both files if it is time.
    pub fn at_epoch(&mut self, current: ContentsRef<'_>, state: &RunState, epoch: usize) {
        if self.last.elapsed() < CHECKPOINT_EVERY && epoch != self.config.epochs {
            return;
        }
        // the model file: the best epoch so far, or the latest
        let best = ContentsRef {
            params: if state.best_params.is_empty() {
                current.params
            } else {
                &state.best_params
            },
            ..current
        };
        let written = rnn::model_file::save(best, self.model).and_then(|()| {
            checkpoint::save(self.checkpoint, current, self.config, state, &self.notes)
        });
        match written {
            Ok(()) => {
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
    }

    /// The run's result, with a failed write, or a divergence, told as the command tells them:
    /// a diverged run names what the model file keeps and how to go on.
    pub fn finish<T>(self, result: rnn::error::Result<T>) -> Result<T> {
        if let Some(e) = self.error {
            return Err(e.into());
        }
        match result {
            Ok(report) => Ok(report),
            Err(Error::Diverged {
                epoch, loss, lr, ..
            }) => bail!(
                "training diverged in epoch {epoch}: the loss became {loss}. {} keeps {}, and {} \
                 lets --resume go on from there. Try a smaller learning rate (it was {lr:?}).",
                self.model.display(),
                self.saved,
                self.checkpoint.display()
            ),
            Err(e) => Err(e.into()),
        }
    }
}
