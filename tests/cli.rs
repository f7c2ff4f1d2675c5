//! The binary, driven as a user drives it: what it prints, what it writes, and how it fails.

mod common;
use common::rnn;

use std::path::Path;
use std::process::Output;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn no_arguments_runs_the_demo_into_runs_demo() {
    let dir = tempfile::tempdir().unwrap();
    let out = rnn(&[], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("1000 epochs"), "{text}");
    // The summary's accuracy table: the default seed learns train and test perfectly.
    assert!(
        text.contains("train   ") && text.matches("100.0%").count() >= 2,
        "{text}"
    );
    let csv = std::fs::read_to_string(dir.path().join("runs/demo/metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1001, "header and one row per epoch");
    assert!(dir.path().join("runs/demo/curves.png").is_file());
}

#[test]
fn json_is_the_last_line_and_files_go_to_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = rnn(
        &[
            "demo", "--epochs", "7", "--hidden", "8", "--seed", "5", "--out", "o", "--json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let last = text.lines().last().unwrap();
    let json: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(json["epochs"], 7);
    assert_eq!(json["seed"], 5);
    assert_eq!(json["lr"], 0.02);
    for key in [
        "seconds",
        "train_loss",
        "train_acc",
        "test_loss",
        "test_acc",
    ] {
        let v = json[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {last}"));
        assert!(v >= 0.0, "{key} = {v}");
    }
    assert!(json["train_acc"].as_f64().unwrap() <= 1.0);
    // Not a terminal, so progress comes as plain lines, the last epoch among them.
    assert!(text.contains("epoch 7/7  train loss"), "{text}");
    let csv = std::fs::read_to_string(dir.path().join("o/metrics.csv")).unwrap();
    assert_eq!(
        csv.lines().next(),
        Some("epoch,lr,train_loss,train_acc,test_loss,test_acc")
    );
    assert_eq!(csv.lines().count(), 8);
    let png = std::fs::read(dir.path().join("o/curves.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn bad_flags_get_a_clear_message_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (vec!["demo", "--hidden", "0"], "--hidden"),
        (vec!["demo", "--epochs", "0"], "--epochs"),
        (vec!["demo", "--lr", "-1"], "--lr"),
        (vec!["demo", "--lr", "NaN"], "--lr"),
        (vec!["demo", "--clip", "x"], "--clip"),
        (vec!["demo", "--seed", "-3"], "--seed"),
        (vec!["demo", "--bogus"], "--bogus"),
    ] {
        let out = rnn(&args, dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn an_output_folder_that_cannot_be_made_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let out = rnn(&["demo", "--epochs", "1", "--out", "file/sub"], dir.path());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: file/sub:"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_diverging_run_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = rnn(&["demo", "--lr", "1e38", "--out", "o"], dir.path());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("diverged in epoch 1") && err.contains("smaller learning rate"),
        "{err}"
    );
    assert!(!dir.path().join("o/metrics.csv").exists());
}

/// Absurd sizes from flags are one line each, before anything is built: `--hidden 2^64-1`
/// panicked on a size that wrapped around, and `--layers 10^9` aborted on an allocation
/// (red team, issue 28, items 4 and 7).
#[test]
fn absurd_sizes_are_refused_with_a_sentence_before_anything_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let train = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample/train.tsv");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--hidden", "18446744073709551615"],
            "has more than 2^64 parameters",
        ),
        (
            &["--hidden", "1099511627776"],
            "has more than 2^64 parameters",
        ),
        (
            &["--layers", "1000000000", "--hidden", "4"],
            "of memory, and this machine has",
        ),
        (
            &["--layers", "18446744073709551615", "--hidden", "4"],
            "has more than 2^64 parameters",
        ),
    ];
    for (flags, says) in cases {
        let mut args = vec![
            "train",
            "--train",
            train.to_str().unwrap(),
            "--model",
            "m.safetensors",
        ];
        args.extend(flags);
        let out = rnn(&args, dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {err}");
        assert!(
            err.contains(says) && !err.contains("panicked"),
            "{flags:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{flags:?}: {err}");
    }
}

/// `--metrics` (or `--plot`) given the model's path once left the CSV where the model was, with
/// exit 0 (red team, issue 28, item 6): two outputs on one path are refused before any work.
#[test]
fn two_outputs_on_one_path_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let train = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample/train.tsv");
    let text = dir.path().join("corpus.txt");
    std::fs::write(&text, "abc abd abe ".repeat(200)).unwrap();
    let (train, text) = (train.to_str().unwrap(), text.to_str().unwrap());
    let runs: [&[&str]; 3] = [
        &[
            "train",
            "--train",
            train,
            "--model",
            "m.safetensors",
            "--metrics",
            "m.safetensors",
        ],
        &[
            "train",
            "--train",
            train,
            "--model",
            "m.safetensors",
            "--plot",
            "m.safetensors.ckpt",
        ],
        &[
            "lm",
            "--train",
            text,
            "--model",
            "m.safetensors",
            "--metrics",
            "m.safetensors",
        ],
    ];
    for args in runs {
        let out = rnn(args, dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("two outputs would be written to this one file"),
            "{err}"
        );
        assert!(
            !dir.path().join("m.safetensors").exists(),
            "{args:?}: nothing is written"
        );
    }
}

/// One epoch is "1 epoch" (issue 27, item 8: it said "Trained for 1 epochs").
#[test]
fn one_epoch_is_said_in_the_singular() {
    let dir = tempfile::tempdir().unwrap();
    let train = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample/train.tsv");
    let args = [
        "train",
        "--train",
        train.to_str().unwrap(),
        "--model",
        "m.safetensors",
    ];
    let one = rnn(&[&args[..], &["--epochs", "1"]].concat(), dir.path());
    assert!(
        stdout(&one).contains("Trained for 1 epoch in "),
        "{}",
        stdout(&one)
    );
    let two = rnn(&[&args[..], &["--epochs", "2"]].concat(), dir.path());
    assert!(
        stdout(&two).contains("Trained for 2 epochs in "),
        "{}",
        stdout(&two)
    );
}

/// An output in a folder where no file can be made (`/proc`) was found out only when the first
/// file was written, after the data had been read (issue 27, item 3): every output is now
/// tried before any data is read. The data named here does not exist, so an error about the
/// data would mean it was read first.
#[test]
fn an_output_where_no_file_can_be_made_is_refused_before_the_data_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let runs: [(&[&str], &str); 4] = [
        (
            &[
                "train",
                "--train",
                "missing.tsv",
                "--model",
                "/proc/x.safetensors",
            ],
            "/proc/x.safetensors",
        ),
        (
            &[
                "train",
                "--train",
                "missing.tsv",
                "--model",
                "m.safetensors",
                "--metrics",
                "/proc/m.csv",
            ],
            "/proc/m.csv",
        ),
        (
            &[
                "lm",
                "--train",
                "missing.txt",
                "--model",
                "/proc/x.safetensors",
            ],
            "/proc/x.safetensors",
        ),
        (
            &[
                "explain",
                "--model",
                "missing.safetensors",
                "--plot",
                "/proc/flow.png",
                "a text",
            ],
            "/proc/flow.png",
        ),
    ];
    for (args, output) in runs {
        let out = rnn(args, dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(
            err.trim(),
            format!(
                "error: {output}: cannot write a file in /proc: No such file or directory (os \
                 error 2)"
            ),
            "{args:?}"
        );
        assert_eq!(stdout(&out), "", "{args:?}: nothing was started");
    }
}
