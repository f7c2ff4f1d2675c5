//! The subcommands, one file each, and what they share: flag parsers and output helpers.

pub mod demo;
pub mod eval;
pub mod explain;
pub mod generate;
pub mod lm;
pub mod outputs;
pub mod predict;
pub mod progress;
pub mod serve;
pub mod train;

/// Parses a whole number that must be at least 1 (`--hidden`, `--epochs`).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

pub use rnn::train::{cores, max_threads};

/// Parses `--threads`: at least 1, at most [`max_threads`].
pub fn thread_count(s: &str) -> Result<usize, String> {
    let n = at_least_one(s)?;
    let max = max_threads();
    if n > max {
        let cores = cores();
        return Err(format!(
            "{n} threads on a machine with {cores} cores: at most {max} (4 per core, or 16)"
        ));
    }
    Ok(n)
}

/// Parses a positive, finite number (`--lr`, `--clip`).
pub fn positive_number(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        Ok(_) => Err("must be a positive number".into()),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// Parses `--subwords MIN-MAX` (or `N` for `N-N`): `1 ≤ MIN ≤ MAX ≤` [`rnn::rnn::MAX_SUBWORD`].
pub fn subword_range(s: &str) -> Result<(usize, usize), String> {
    let (min, max) =
        rnn::rnn::parse_subwords(s).ok_or_else(|| format!("{s:?} is not MIN-MAX, e.g. 3-6"))?;
    rnn::rnn::check_lengths(min, max)?;
    Ok((min, max))
}

/// Parses a dropout probability: at least 0 and less than 1 (`--dropout`).
pub fn dropout_probability(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(p) if (0.0..1.0).contains(&p) => Ok(p),
        Ok(_) => Err("must be at least 0 and less than 1".into()),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// Prints the summary table: loss and accuracy of each named set.
pub fn write_scores(
    out: &mut impl std::io::Write,
    scores: &[(&str, rnn::metrics::Score)],
) -> std::io::Result<()> {
    writeln!(out, "           loss  accuracy")?;
    for (name, s) in scores {
        writeln!(
            out,
            "  {name:<5} {:>8.4}  {:>8}",
            s.loss,
            percent(s.accuracy)
        )?;
    }
    Ok(())
}

/// A percentage with one decimal, for accuracies given as fractions.
pub fn percent(fraction: f32) -> String {
    format!("{:.1}%", 100.0 * fraction)
}

/// Says how many of `vocab`'s words had a vector in the file `vectors` (`--pretrained`), as
/// `found` (if any) holds them, unless `quiet`.
pub fn tell_vectors(
    found: Option<rnn::data::vectors::Found>,
    vocab: &rnn::data::Vocab,
    vectors: Option<&std::path::Path>,
    quiet: bool,
) {
    let (Some(found), Some(path), false) = (found, vectors, quiet) else {
        return;
    };
    let known = vocab.len() - usize::from(vocab.unk().is_some());
    eprintln!(
        "Pretrained vectors for {} of {known} words ({:.1}%), from {} ({} words).",
        found.rows.len(),
        100.0 * found.coverage(vocab),
        path.display(),
        found.words
    );
}

/// An `f32` as the shortest decimal that reads back as the same `f32` (`0.02`, not the
/// `0.019999999552965164` that widening it to `f64` would print).
pub fn json_number(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::NAN)
}

/// Writes how a run ended to `out`: [`trained_line`], saying that patience stopped it early
/// for want of `progress` ("better validation score"), and which epoch's weights were kept,
/// the best on `validation` ("set").
pub fn write_trained(
    out: &mut impl std::io::Write,
    report: &rnn::train::TrainReport,
    (seconds, resumed_after): (f64, Option<usize>),
    (progress, validation): (&str, &str),
) -> std::io::Result<()> {
    let stopped = if report.stopped_early {
        format!(" (stopped early: no {progress})")
    } else {
        String::new()
    };
    let line = trained_line(report, seconds, resumed_after, &stopped);
    writeln!(out, "{line}")?;
    if let Some(best) = report.best_epoch {
        writeln!(
            out,
            "Kept the weights of epoch {best}, the best on the validation {validation}."
        )?;
    }
    Ok(())
}

/// The summary's first line: how many epochs this process trained, how long it took, and for
/// a run resumed after epoch `resumed_after`, which epochs those were and what the whole run
/// has done (its epochs, and its seconds and tokens/s of training steps, which a checkpoint
/// carries). `stopped` is said after the epochs (an early stop).
pub fn trained_line(
    report: &rnn::train::TrainReport,
    seconds: f64,
    resumed_after: Option<usize>,
    stopped: &str,
) -> String {
    let epochs = report.history.last().map_or(0, |m| m.epoch);
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let rate = report.tokens_per_second();
    match resumed_after {
        None => format!(
            "Trained for {epochs} epoch{}{stopped} in {seconds:.2} s ({rate:.0} tokens/s in \
             training steps).",
            plural(epochs)
        ),
        Some(from) if epochs <= from => format!(
            "Trained no epoch in {seconds:.2} s: the run resumed had ended its epochs \
             ({from}){stopped}."
        ),
        Some(from) => {
            let here = match epochs - from {
                1 => format!("epoch {epochs} (1 epoch)"),
                n => format!("epochs {} to {epochs} ({n} epochs)", from + 1),
            };
            format!(
                "Trained {here}{stopped} in {seconds:.2} s, resuming the run after epoch {from}; \
                 the run has trained {epochs} epochs in all, {:.2} s in training steps ({rate:.0} \
                 tokens/s).",
                report.train_seconds
            )
        }
    }
}

/// Set by the first interruption (Ctrl-C, SIGTERM, SIGHUP) of a training run that
/// [`StopAtSignals`]: the run stops after its current batch, writes its files and says how
/// to resume it.
pub static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a training run is under way that stops at an interruption (by [`STOP`]) rather
/// than exiting at once.
static TRAINING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// While it lives, an interruption stops the training run after its current batch (see
/// [`STOP`]) rather than exiting at once: from the banner to the end of the run.
pub struct StopAtSignals;

impl StopAtSignals {
    pub fn start() -> Self {
        TRAINING.store(true, std::sync::atomic::Ordering::SeqCst);
        StopAtSignals
    }
}

impl Drop for StopAtSignals {
    fn drop(&mut self) {
        TRAINING.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What the handler of an interruption does: `true` when a training run is under way and this
/// is the first interruption, which asks it to stop ([`STOP`]); `false` when the process
/// should exit now.
pub fn stop_the_run() -> bool {
    use std::sync::atomic::Ordering;
    TRAINING.load(Ordering::SeqCst) && !STOP.swap(true, Ordering::SeqCst)
}

/// The error of a run that an interruption stopped, once it has said so and how to resume:
/// the process exits with status 130, as a shell's Ctrl-C does.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// At the end of a run of `rnn train` or `rnn lm` (whose flags are `A`, the command `name`):
/// writes the metrics and the chart (`write_history`); for a run that was interrupted, reports
/// it as [`report_interruption`] does and returns the [`Interrupted`] error, for the exit
/// status.
pub fn end_history<A: clap::Args>(
    name: &'static str,
    report: &rnn::train::TrainReport,
    model: &std::path::Path,
    write_history: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if report.interrupted {
        let command = A::augment_args(clap::Command::new(name));
        return Err(report_interruption(command, report, model, write_history));
    }
    write_history()
}

/// After a run of `rnn train` or `rnn lm` was interrupted: the metrics and the chart of its
/// complete epochs written (`write_history`), then on standard error where it stopped, what
/// the model file and the checkpoint hold, and the command that resumes it. Returns the
/// [`Interrupted`] error, for the exit status.
fn report_interruption(
    command: clap::Command,
    report: &rnn::train::TrainReport,
    model: &std::path::Path,
    write_history: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Error {
    let epochs = report.history.last().map_or(0, |m| m.epoch);
    let written = if report.history.is_empty() {
        Ok(())
    } else {
        write_history()
    };
    let checkpoint = rnn::checkpoint::checkpoint_path(model);
    let mut lines = Vec::new();
    if epochs == 0 || !checkpoint.is_file() {
        lines.push(format!(
            "Interrupted before the end of the first epoch: there is nothing to resume, and \
             {} holds the model it started from.",
            model.display()
        ));
    } else {
        let kept = match report.best_epoch {
            Some(best) => format!("the best model so far (epoch {best})"),
            None => format!("the model after epoch {epochs}"),
        };
        lines.push(format!(
            "Interrupted after epoch {epochs}: {} holds {kept}, and {} the run after epoch \
             {epochs}.",
            model.display(),
            checkpoint.display()
        ));
        lines.push("To go on with the run:".to_string());
        lines.push(format!("  {}", resume_command(command, &checkpoint)));
    }
    for line in lines {
        eprintln!("{line}");
    }
    match written {
        Ok(()) => anyhow::Error::new(Interrupted),
        Err(e) => e,
    }
}

/// This process's command line with `--resume CHECKPOINT` in place of the flags that may not
/// be given with it (those that `command`, the subcommand's flags, says conflict with
/// `--resume`, and an earlier `--resume`), quoted for a POSIX shell.
pub fn resume_command(command: clap::Command, checkpoint: &std::path::Path) -> String {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut kept: Vec<String> = args.iter().take(2).cloned().collect();
    kept.extend(without_resume_conflicts(
        command,
        &args[2.min(args.len())..],
    ));
    kept.push("--resume".into());
    kept.push(checkpoint.display().to_string());
    kept.iter()
        .map(|a| shell_quoted(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `args` (a subcommand's flags and values) without the flags that conflict with `--resume`
/// in `command`, nor `--resume` itself, each with its values.
fn without_resume_conflicts(mut command: clap::Command, args: &[String]) -> Vec<String> {
    command.build();
    let mut kept = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let token = &args[i];
        i += 1;
        let Some(flag) = token.strip_prefix("--").filter(|f| !f.is_empty()) else {
            kept.push(token.clone());
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((name, _)) => (name, true),
            None => (flag, false),
        };
        let Some(arg) = command.get_arguments().find(|a| a.get_long() == Some(name)) else {
            kept.push(token.clone());
            continue;
        };
        // the values that follow the flag
        let range = arg.get_num_args().unwrap_or_default();
        let takes = if inline || !arg.get_action().takes_values() {
            0
        } else {
            range.max_values()
        };
        let mut values = 0;
        while values < takes
            && i + values < args.len()
            && (values < range.min_values()
                || !args[i + values].starts_with('-')
                || args[i + values] == "-")
        {
            values += 1;
        }
        let drop = arg.get_id() == "resume"
            || command
                .get_arg_conflicts_with(arg)
                .iter()
                .any(|other| other.get_id() == "resume");
        if !drop {
            kept.push(token.clone());
            kept.extend(args[i..i + values].iter().cloned());
        }
        i += values;
    }
    kept
}

/// `arg` as a POSIX shell reads it back: as it is when it holds only safe characters, and
/// otherwise in single quotes.
fn shell_quoted(arg: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c);
    if !arg.is_empty() && arg.chars().all(safe) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(args: &[&str]) -> Vec<String> {
        let command = <train::TrainArgs as clap::Args>::augment_args(clap::Command::new("train"));
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        without_resume_conflicts(command, &args)
    }

    #[test]
    fn the_resume_command_leaves_out_the_flags_a_checkpoint_settles() {
        assert_eq!(
            strip(&[
                "--train",
                "t.tsv",
                "--hidden",
                "8",
                "--bidirectional",
                "--cell=gru",
                "--bidirectional",
                "false",
                "--epochs",
                "9",
                "--resume",
                "old.ckpt",
                "--no-shuffle",
                "--seed",
                "-3",
                "--quiet"
            ]),
            ["--train", "t.tsv", "--epochs", "9", "--quiet"]
        );
    }

    #[test]
    fn arguments_are_quoted_for_the_shell_when_they_need_it() {
        assert_eq!(shell_quoted("runs/m.safetensors"), "runs/m.safetensors");
        assert_eq!(shell_quoted("my data.tsv"), "'my data.tsv'");
        assert_eq!(shell_quoted("it's"), r"'it'\''s'");
        assert_eq!(shell_quoted(""), "''");
    }
}
