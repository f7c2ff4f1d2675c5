//! `rnn train --autotune SECONDS`: the library's search ([`rnn::autotune`]) with a line for
//! every trial, the best model saved where `--model` says, and the command line that trains
//! the same model again.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use rnn::autotune::{self, Knob, Search, Trial, TuneData, TuneEvent, Tuned};
use rnn::recipe::EmbeddingStart;

use super::{
    TrainArgs, check_wide_flags, embed_of_vectors, file_name, outputs, paths, print_summary,
    read_rows, recipe_of,
};

/// Runs the search that `args` ask for, within `seconds` (nominal).
pub fn run(mut args: TrainArgs, seconds: f64) -> Result<()> {
    let inputs = paths(&[Some(&args.train), args.valid.as_ref(), args.test.as_ref()]);
    let written = args.output.written();
    let outputs: Vec<&Path> = [Some(args.model.as_path()), written.0, written.1]
        .into_iter()
        .flatten()
        .collect();
    outputs::prepare(&outputs, &inputs, &args.model, args.output.quiet)?;
    if let Some(plot) = written.1 {
        rnn::plot::check_path(plot)?;
    }
    if args.epochs == Some(0) {
        anyhow::bail!("--autotune compares trained models: give --epochs 1 or more");
    }
    args.embed = embed_of_vectors(&args)?;
    let recipe = recipe_of(&args, args.class_weight);
    check_wide_flags(&args, &recipe)?;
    let data = read_data(&args)?;
    let search = Search {
        seconds,
        fixed: fixed_knobs(&args),
    };
    let quiet = args.output.quiet;
    if !quiet {
        writeln!(
            std::io::stdout().lock(),
            "Searching the settings for {seconds} s (nominal), each trial scored on the \
             validation rows:"
        )?;
    }
    let signals = super::super::StopAtSignals::start();
    let started = Instant::now();
    let tuned = autotune::tune(data, &recipe, &search, Some(&super::super::STOP), |event| {
        if let (TuneEvent::End(trial), false) = (event, quiet) {
            // a closed pipe stops the lines, not the search (the model is still saved)
            let _ = writeln!(std::io::stdout().lock(), "{}", trial_line(trial));
        }
    })?;
    drop(signals);
    let searched = started.elapsed().as_secs_f64();
    tuned.run.model.save(&args.model)?;
    let labels = tuned.run.model.labels();
    let title = || {
        let (arch, train) = (tuned.run.model.network.arch(), file_name(&args.train));
        format!("{train}: {arch}, tuned by --autotune {seconds}")
    };
    outputs::write_history(&tuned.report.history, labels, written.0, written.1, title)?;
    let command = best_command(std::env::args().collect(), &tuned);
    if !quiet {
        print_search(&tuned, searched, &command)?;
    }
    let best = &tuned.trials[tuned.best];
    let extra = json!({ "autotune": {
        "trials": tuned.trials.len(),
        "best_trial": best.number,
        "flags": tuned.flags(),
        "command": command,
        "seconds": searched,
        "nominal_seconds": tuned.nominal_seconds,
    }});
    print_summary(
        &tuned.run,
        &args,
        &tuned.report,
        (best.seconds, None),
        extra,
    )?;
    if tuned.interrupted {
        anyhow::bail!(
            "interrupted: {} holds the best model of the {} trials run",
            args.model.display(),
            tuned.trials.len()
        );
    }
    Ok(())
}

/// The search's last line: how many trials, in how long, the best, and its command line.
fn print_search(tuned: &Tuned, seconds: f64, command: &str) -> Result<()> {
    let best = &tuned.trials[tuned.best];
    writeln!(
        std::io::stdout().lock(),
        "Searched {} trials in {seconds:.1} s ({:.1} s nominal); the best is trial {}, {:.2}% \
         on the validation rows. Its command line:\n  {command}",
        tuned.trials.len(),
        tuned.nominal_seconds,
        best.number,
        100.0 * best.valid_accuracy,
    )?;
    Ok(())
}

/// The rows that `args` name, read, and how each trial's embedding starts.
fn read_data(args: &TrainArgs) -> Result<TuneData<'_>> {
    let columns = args.columns();
    let reading = args.reading(columns.clone());
    let read = |path| read_rows(path, &reading);
    Ok(TuneData {
        train: read(&args.train)?,
        valid: args.valid.as_deref().map(read).transpose()?,
        test: args.test.as_deref().map(read).transpose()?,
        columns,
        embedding: EmbeddingStart {
            vectors: args.pretrained.as_deref(),
            freeze: args.freeze_embed,
        },
    })
}

/// The knobs whose flags are given: the search keeps them.
fn fixed_knobs(args: &TrainArgs) -> Vec<Knob> {
    let given = [
        (Knob::Cell, args.cell.is_some()),
        (
            Knob::Embed,
            args.embed.is_some() || args.pretrained.is_some(),
        ),
        (Knob::Hidden, args.hidden.is_some()),
        (Knob::Pool, args.pool.is_some()),
        (Knob::Dropout, args.dropout.is_some()),
        (Knob::Lr, args.lr.is_some()),
        (Knob::Epochs, args.epochs.is_some()),
        (Knob::Ngrams, args.ngrams.is_some()),
        (Knob::Buckets, args.buckets.is_some()),
        (Knob::WideLr, args.wide_lr.is_some()),
    ];
    given.into_iter().filter(|g| g.1).map(|g| g.0).collect()
}

/// A trial as a line: its number, its changed flags, its validation score, its epochs and time.
fn trial_line(t: &Trial) -> String {
    let flags: Vec<String> = t
        .changed
        .iter()
        .map(|k| format!("{} {}", k.flag(), k.value(&t.recipe)))
        .collect();
    let flags = match (t.number, flags.is_empty()) {
        (0, _) => "the flags given".to_string(),
        (_, true) => "(no change)".to_string(),
        _ => flags.join(" "),
    };
    let cut = if t.epoch_limit < t.recipe.epochs {
        format!(" of at most {}", t.epoch_limit)
    } else {
        String::new()
    };
    if t.interrupted {
        return format!(
            "  trial {:>2}: {flags}: interrupted after {} epochs",
            t.number, t.epochs
        );
    }
    let against = match t.against_best {
        Some((gained, lost)) => format!(
            ", rows +{gained} -{lost} against the best (p {}, needs {})",
            significant(autotune::sign_test(gained, lost)),
            significant(autotune::level(t.number))
        ),
        None => String::new(),
    };
    format!(
        "  trial {:>2}: {flags}: {:.2}% (loss {:.4}), {} epochs{cut}, {:.1} s{against}{}",
        t.number,
        100.0 * t.valid_accuracy,
        t.valid_loss,
        t.epochs,
        t.seconds,
        if t.best { "  best so far" } else { "" }
    )
}

/// The command line that trains the best trial's model: `argv` (the command as given) without
/// `--autotune`, with the best trial's flags added, or replacing the same flags given.
fn best_command(argv: Vec<String>, tuned: &Tuned) -> String {
    let mut args: Vec<String> = Vec::new();
    let mut rest = argv.into_iter().skip(1);
    while let Some(arg) = rest.next() {
        if arg == "--autotune" {
            rest.next();
        } else if !arg.starts_with("--autotune=") {
            args.push(arg);
        }
    }
    let flags = tuned.flags();
    for pair in flags.chunks(2) {
        let (flag, value) = (&pair[0], &pair[1]);
        let inline = format!("{flag}=");
        if let Some(i) = args.iter().position(|a| a == flag) {
            args[i + 1] = value.clone();
        } else if let Some(i) = args.iter().position(|a| a.starts_with(&inline)) {
            args[i] = format!("{inline}{value}");
        } else {
            args.extend([flag.clone(), value.clone()]);
        }
    }
    std::iter::once("rnn".to_string())
        .chain(args.iter().map(|a| shell_word(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `s` as one word of a POSIX shell: as it is when it is plain, else in single quotes.
fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A probability `p` to two significant digits: 0.095, 0.0024, 1; under 0.001 as 5.0e-76.
fn significant(p: f64) -> String {
    if p >= 0.995 {
        "1".into()
    } else if p < 0.001 {
        format!("{p:.1e}")
    } else {
        let decimals = -p.log10().floor() as usize + 1;
        format!("{p:.decimals$}")
    }
}

#[cfg(test)]
mod tests {
    use super::{shell_word, significant};

    #[test]
    fn shell_words_are_quoted_only_when_they_must_be() {
        assert_eq!(shell_word("data/train.tsv"), "data/train.tsv");
        assert_eq!(shell_word("my data.tsv"), "'my data.tsv'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn probabilities_print_with_two_significant_digits() {
        let printed = [0.0625, 0.05, 1.0 / 60.0, 0.0024, 0.95, 0.999, 5.045e-76].map(significant);
        assert_eq!(
            printed,
            ["0.062", "0.050", "0.017", "0.0024", "0.95", "1", "5.0e-76"]
        );
    }
}
