//! The files a training command writes: their folders made, each checked before any work, and
//! none of them one of the inputs. (The model and the checkpoint are written as the run goes by
//! the library's [`rnn::checkpoint::Saver`].)

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use rnn::checkpoint::{RunFiles, checkpoint_path};
use rnn::fsutil::check_output;

/// What a training run writes besides the model, and how much it prints: the flags `rnn train`
/// and `rnn lm` share.
#[derive(clap::Args, Clone, Debug)]
pub struct RunOutputs {
    /// Write the metrics of every epoch to this CSV file.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// Draw the loss and accuracy curves into this PNG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Print one JSON object with the results as the last line.
    #[arg(long)]
    pub json: bool,
    /// No progress and no summary (errors, warnings, and the JSON line if asked, still
    /// appear).
    #[arg(long)]
    pub quiet: bool,
}

impl RunOutputs {
    /// The metrics file and the plot, if asked for.
    pub fn written(&self) -> (Option<&Path>, Option<&Path>) {
        (self.metrics.as_deref(), self.plot.as_deref())
    }

    /// Says which of the metrics file and the plot were written.
    pub fn tell_written(&self, out: &mut impl Write) -> std::io::Result<()> {
        for path in [&self.metrics, &self.plot].into_iter().flatten() {
            writeln!(out, "Wrote {}", path.display())?;
        }
        Ok(())
    }
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
    for (i, a) in outputs.iter().enumerate() {
        if let Some(b) = outputs[i + 1..].iter().find(|b| same_file(a, b)) {
            bail!(
                "{}: two outputs would be written to this one file ({} and {}); give each its \
                 own path",
                a.display(),
                describe(a, model),
                describe(b, model)
            );
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

/// The checks of [`prepare`] for a training run that writes `files`, reads `inputs` and
/// writes the CSV file `metrics` and the chart `plot` if given; a chart of 0 epochs is refused
/// before any work too.
pub fn prepare_run(
    files: &RunFiles,
    inputs: &[&Path],
    (metrics, plot): (Option<&Path>, Option<&Path>),
    epochs: usize,
    quiet: bool,
) -> Result<()> {
    let model = files
        .model
        .as_deref()
        .expect("a command's run has a model file");
    let outputs = [Some(model), Some(files.checkpoint.as_path()), metrics, plot];
    let outputs: Vec<&Path> = outputs.into_iter().flatten().collect();
    prepare(&outputs, inputs, model, quiet)?;
    rnn::checkpoint::check_free(model)?;
    if let Some(path) = plot {
        rnn::plot::check_path(path)?;
    }
    if let (Some(path), 0) = (plot, epochs) {
        bail!(
            "{}: there is nothing to plot after 0 epochs",
            path.display()
        );
    }
    Ok(())
}

/// What an output is, in words: the model, its checkpoint, or an output (for messages).
fn describe(output: &Path, model: &Path) -> &'static str {
    if output == model {
        "the model"
    } else if output == checkpoint_path(model) {
        "its checkpoint"
    } else {
        "another output"
    }
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

/// Writes a run's history where asked: every epoch's metrics to the CSV file `metrics`, and
/// the loss and accuracy curves, titled `title()`, to the PNG file `plot`.
pub fn write_history(
    history: &[rnn::metrics::EpochMetrics],
    labels: &[String],
    metrics: Option<&Path>,
    plot: Option<&Path>,
    title: impl FnOnce() -> String,
) -> Result<()> {
    if let Some(path) = metrics {
        rnn::metrics::write_csv(history, labels, path)?;
    }
    if let Some(path) = plot {
        rnn::plot::plot_curves(history, &title(), path)?;
    }
    Ok(())
}
