//! `rnn train --autotune SECONDS` through the binary: the search keeps its best model, prints
//! the command line that trains that model again byte for byte, gives the same model for the
//! same seed, keeps the flags given, and refuses what it cannot do in one line.

mod common;
use common::{fails, succeeds as ok};

use std::fs;
use std::path::Path;

use serde_json::Value;

/// A directory with the sample sentences (50 training rows: `rnn train` alone would hold out
/// none), and `rnn train --autotune 0.3` on them into `model` with a small embedding and
/// `more`.
fn search<'a>(dir: &Path, model: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    common::copy_sample(dir);
    let mut args = vec!["train", "--train", "train.tsv", "--test", "test.tsv"];
    args.extend(["--model", model, "--embed", "8", "--autotune", "0.3"]);
    args.extend(["--seed", "3", "--threads", "2"]);
    [&args[..], more].concat()
}

/// The JSON summary, the last line of `out`.
fn summary(out: &str) -> Value {
    serde_json::from_str(out.lines().last().unwrap()).unwrap()
}

#[test]
fn the_search_keeps_its_best_model_and_prints_the_command_that_trains_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(
        &search(dir.path(), "m.safetensors", &["--json"]),
        dir.path(),
    );
    let trials: Vec<&str> = out.lines().filter(|l| l.starts_with("  trial")).collect();
    assert!(trials.len() >= 3, "{out}");
    assert!(trials[0].contains("trial  0: the flags given: "), "{out}");
    let found = summary(&out)["autotune"].clone();
    assert_eq!(found["trials"], trials.len());
    // rnn train alone would hold out none of 50 rows: the search holds out 10% and says so
    let flags: Vec<String> = serde_json::from_value(found["flags"].clone()).unwrap();
    assert!(
        flags.windows(2).any(|w| w == ["--valid-split", "0.1"]),
        "{flags:?}"
    );
    let best = found["best_trial"].as_u64().unwrap() as usize;
    assert!(trials[best].ends_with("best so far"), "{out}");
    // the printed command, run as it is (to another model file), writes the same bytes
    let command = found["command"].as_str().unwrap();
    assert!(!command.contains("--autotune"), "{command}");
    assert!(
        out.contains(&format!("Its command line:\n  {command}\n")),
        "{out}"
    );
    let words: Vec<&str> = command.split(' ').collect();
    assert_eq!(words[0], "rnn");
    let again: Vec<&str> = words[1..]
        .iter()
        .map(|w| {
            if *w == "m.safetensors" {
                "again.safetensors"
            } else {
                w
            }
        })
        .collect();
    ok(&again, dir.path());
    let (a, b) = (
        dir.path().join("m.safetensors"),
        dir.path().join("again.safetensors"),
    );
    assert_eq!(fs::read(a).unwrap(), fs::read(b).unwrap(), "{command}");
}

/// The flags the search may not move when they are given (those of `fixed` below, and the wide
/// path's, which `--ngrams 0` turns off).
const GIVEN: [&str; 6] = [
    "--hidden",
    "--cell",
    "--ngrams",
    "--buckets",
    "--wide-lr",
    "--epochs",
];

#[test]
fn the_same_seed_searches_alike_and_the_flags_given_stay() {
    let dir = tempfile::tempdir().unwrap();
    let fixed = ["--hidden", "8", "--cell", "gru", "--ngrams", "0"];
    let fixed = [&fixed[..], &["--epochs", "20"]].concat();
    let first = ok(&search(dir.path(), "a.safetensors", &fixed), dir.path());
    let second = ok(&search(dir.path(), "b.safetensors", &fixed), dir.path());
    let a = fs::read(dir.path().join("a.safetensors")).unwrap();
    assert_eq!(a, fs::read(dir.path().join("b.safetensors")).unwrap());
    let trials = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with("  trial"))
            // the same trials, in the same order, with the same scores (not the same times)
            .map(|l| l.rsplit_once(" epochs").unwrap().0.to_string())
            .collect()
    };
    assert_eq!(trials(&first), trials(&second));
    assert!(trials(&first).len() >= 3, "{first}");
    for line in trials(&first) {
        for flag in GIVEN {
            assert!(!line.contains(flag), "{flag} was given: {line}");
        }
    }
}

#[test]
fn with_validation_rows_of_its_own_the_search_holds_out_none() {
    let dir = tempfile::tempdir().unwrap();
    let args = search(
        dir.path(),
        "m.safetensors",
        &["--valid", "test.tsv", "--json"],
    );
    let out = ok(&args, dir.path());
    let found = summary(&out)["autotune"].clone();
    let command = found["command"].as_str().unwrap();
    assert!(command.contains("--valid test.tsv"), "{command}");
    assert!(!command.contains("--valid-split"), "{command}");
    assert!(found["nominal_seconds"].as_f64().unwrap() > 0.0, "{found}");
    // 25 validation rows, every trial scored on them
    assert_eq!(
        summary(&out)["valid_acc"]
            .as_f64()
            .map(|a| (a * 25.0).round() / 25.0 == a),
        Some(true)
    );
}

#[test]
fn every_wrong_use_of_autotune_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let base = search(dir.path(), "m.safetensors", &[]);
    let with = |value: &'static str, more: &[&'static str]| -> Vec<&str> {
        let mut args = base.clone();
        let at = args.iter().position(|a| *a == "--autotune").unwrap();
        args[at + 1] = value;
        args.extend(more);
        args
    };
    for bad in ["0", "-1", "soon", "inf"] {
        let err = fails(&with(bad, &[]), dir.path());
        assert!(err.contains("--autotune"), "{bad}: {err}");
    }
    let err = fails(&with("1", &["--resume", "m.safetensors.ckpt"]), dir.path());
    assert!(err.contains("cannot be used with"), "{err}");
    let err = fails(&with("1", &["--valid-split", "0"]), dir.path());
    assert!(err.contains("validation rows"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let err = fails(&with("1", &["--epochs", "0"]), dir.path());
    assert!(err.contains("--epochs 1 or more"), "{err}");
    assert!(!dir.path().join("m.safetensors").exists());
}

#[test]
fn an_interrupted_search_keeps_the_best_model_of_the_trials_that_ended() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = search(dir.path(), "m.safetensors", &[]);
    let at = args.iter().position(|a| *a == "--autotune").unwrap();
    args[at + 1] = "100000"; // it runs until it is stopped
    let out = common::interrupted_at(&args, dir.path(), |line| line.starts_with("  trial  1:"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("error: interrupted: m.safetensors holds the best model of the"),
        "{stderr}"
    );
    assert!(
        stdout.contains("Saved the model to m.safetensors"),
        "{stdout}"
    );
    // the model is whole, and one of the trials that ended
    let best = stdout
        .lines()
        .filter(|l| l.ends_with("best so far"))
        .count();
    assert!(best >= 1, "{stdout}");
    ok(
        &["eval", "--model", "m.safetensors", "--data", "test.tsv"],
        dir.path(),
    );
}
