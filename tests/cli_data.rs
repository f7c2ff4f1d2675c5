//! `rnn train`, `eval`, `predict` and `explain` on data files, driven as a user drives them:
//! the values they print and write, and how every kind of bad input fails (exit code, one clear
//! line on stderr naming the file and line or the flag, no panic, nothing written).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;
use common::rnn;
use common::rnn_with_stdin;

use common::{SEED_NET, SEED_TRAINING, seed_setup_with_cell};
use rnn::data::sample::{TEST, TRAIN};
use safetensors::SafeTensors;
use safetensors::tensor::TensorView;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Running the binary

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the binary and checks that it succeeded without a word on stderr about a panic.
fn ok(args: &[&str], cwd: &Path) -> Output {
    let out = rnn(args, cwd);
    let err = stderr(&out);
    assert!(out.status.success(), "{args:?} failed: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    out
}

/// The last line of stdout, as JSON.
fn last_json(out: &Output) -> Value {
    let text = stdout(out);
    let last = text.lines().last().expect("some output");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {last}"))
}

fn f64_of(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// Every name in `dir` (hidden ones too), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs a command that must fail with exit `code`: stderr starts with `error: ` and holds every
/// one of `needles`; a runtime error (code 1) is that one line (clap's flag errors, code 2, add
/// a usage hint); nobody panicked; nothing was written into `dir` (no model, no temporary
/// file). Returns the output.
fn fails(dir: &Path, args: &[&str], code: i32, needles: &[&str]) -> Output {
    let before = listing(dir);
    let out = rnn(args, dir);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(first.starts_with("error: "), "{args:?}: {err}");
    if code == 1 {
        assert_eq!(err.lines().count(), 1, "{args:?}: one line expected: {err}");
    }
    for needle in needles {
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
    }
    let after = listing(dir);
    assert_eq!(after, before, "{args:?} wrote files");
    assert!(
        !after.iter().any(|n| n.starts_with(".tmp-")),
        "{args:?} left a temporary file: {after:?}"
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Data

const NEGATIVE: &str = "negative";
const POSITIVE: &str = "positive";
/// A sentence whose words are all known, and its words.
const SENTENCE: &str = "it was good at first but bad now";
const SENTENCE_WORDS: [&str; 8] = ["it", "was", "good", "at", "first", "but", "bad", "now"];

fn tsv(rows: &[(&str, &str)]) -> String {
    let mut s = String::from("text\tlabel\n");
    for (text, label) in rows {
        s.push_str(&format!("{text}\t{label}\n"));
    }
    s
}

/// A temporary folder with the sample as `train.tsv` (50 rows) and `test.tsv` (25 rows).
fn sample_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("train.tsv"), tsv(TRAIN)).unwrap();
    fs::write(dir.path().join("test.tsv"), tsv(TEST)).unwrap();
    dir
}

/// `rnn train` on `train.tsv`, testing on `test.tsv`, into `model`: to be given more flags.
fn train_and_test(model: &str) -> Vec<&str> {
    let mut args = vec!["train", "--train", "train.tsv", "--test", "test.tsv"];
    args.extend(["--model", model]);
    args
}

/// Trains `name` on `train.tsv` well enough to be worth asking (a few hundredths of a second):
/// the seed's network and training, as the tests that ask it were written for.
fn train_good_model(dir: &Path, name: &str) -> Value {
    let mut args = train_and_test(name);
    args.extend([
        "--epochs", "100", "--hidden", "8", "--lr", "0.05", "--quiet", "--json",
    ]);
    args.extend(SEED_NET);
    args.extend(SEED_TRAINING);
    last_json(&ok(&args, dir))
}

/// A quick, barely trained model of the seed's network.
fn train_quick_model(dir: &Path, name: &str) {
    let mut args = vec!["train", "--train", "train.tsv", "--model", name];
    args.extend(["--epochs", "2", "--hidden", "8", "--quiet"]);
    args.extend(SEED_NET);
    ok(&args, dir);
}

// ---------------------------------------------------------------------------------------------
// Model files, read back with the safetensors crate

/// What a model file holds: its metadata and its tensors (shape and bytes), in sorted maps.
#[derive(Debug, PartialEq)]
struct Contents {
    meta: BTreeMap<String, String>,
    tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)>,
}

fn contents(path: &Path) -> Contents {
    let bytes = fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let tensors = file
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, (view.shape().to_vec(), view.data().to_vec())))
        .collect();
    Contents { meta, tensors }
}

fn vocab_of(path: &Path) -> Vec<String> {
    serde_json::from_str(&contents(path).meta["vocab"]).unwrap()
}

/// Writes to `bad` the model `good` with one more token in its `vocab` metadata than its
/// tensors have columns.
fn write_with_extra_token(good: &Path, bad: &Path) {
    let bytes = fs::read(good).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    let mut vocab: Vec<String> = serde_json::from_str(&meta["vocab"]).unwrap();
    vocab.push("extra".into());
    meta.insert("vocab".into(), serde_json::to_string(&vocab).unwrap());
    let views: Vec<(String, TensorView<'_>)> = file.tensors();
    fs::write(bad, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
}

// ---------------------------------------------------------------------------------------------
// train

#[test]
fn train_writes_the_model_metrics_and_plot_and_a_json_summary() {
    let dir = sample_dir();
    let mut args = train_and_test("m.safetensors");
    args.extend([
        "--epochs",
        "3",
        "--hidden",
        "8",
        "--valid-split",
        "0",
        "--json",
    ]);
    args.extend(["--metrics", "m.csv", "--plot", "m.png"]);
    args.extend(SEED_NET);
    args.extend(SEED_TRAINING);
    let out = ok(&args, dir.path());
    let json = last_json(&out);
    assert_eq!(json["epochs"], 3, "{json}");
    assert!(f64_of(&json, "seconds") >= 0.0, "{json}");
    assert!(f64_of(&json, "train_tokens_per_s") > 0.0, "{json}");
    for key in ["train_loss", "test_loss"] {
        let loss = f64_of(&json, key);
        assert!(loss.is_finite() && loss > 0.0, "{key}: {json}");
    }
    for key in ["train_acc", "test_acc"] {
        let acc = f64_of(&json, key);
        assert!((0.0..=1.0).contains(&acc), "{key}: {json}");
    }
    // The banner names the sizes: 50 training examples, 25 test examples, 2 labels, H = 8.
    let text = stdout(&out);
    assert!(
        text.contains("H = 8; V = 24 tokens, C = 2 labels) on 50 examples")
            && text.contains("testing on 25"),
        "{text}"
    );

    let csv = fs::read_to_string(dir.path().join("m.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "epoch,lr,train_loss,train_acc,test_loss,test_acc");
    assert_eq!(lines.len(), 4, "header and 3 rows: {csv}");
    for (i, line) in lines[1..].iter().enumerate() {
        assert!(line.starts_with(&format!("{},0.02,", i + 1)), "{csv}");
    }
    // The test scores after the last epoch are the final weights' test scores.
    let last: Vec<f64> = lines[3].split(',').map(|x| x.parse().unwrap()).collect();
    assert_eq!(last[4], f64_of(&json, "test_loss"), "{csv} / {json}");
    assert_eq!(last[5], f64_of(&json, "test_acc"), "{csv} / {json}");

    let png = fs::read(dir.path().join("m.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let model = contents(&dir.path().join("m.safetensors"));
    assert_eq!(model.meta["labels"], r#"["negative","positive"]"#);
    assert_eq!(model.tensors["rnn.weight_hh_l0"].0, [8, 8]);

    assert_eq!(
        listing(dir.path()),
        ["m.csv", "m.png", "m.safetensors", "test.tsv", "train.tsv"],
        "no other (temporary) files"
    );
}

#[test]
fn tsv_csv_and_fasttext_files_of_the_same_rows_train_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows: Vec<(&str, &str)> = TRAIN.to_vec();
    rows.push(("it was good, really", POSITIVE));
    rows.push(("he said \"bad\"", NEGATIVE));

    fs::write(dir.path().join("a.tsv"), tsv(&rows)).unwrap();
    // Columns in another order, an extra column, every text quoted (commas, doubled quotes).
    let mut csv = String::from("label,id,text\n");
    for (i, (text, label)) in rows.iter().enumerate() {
        csv.push_str(&format!("{label},{i},\"{}\"\n", text.replace('"', "\"\"")));
    }
    fs::write(dir.path().join("b.csv"), csv).unwrap();
    let mut fasttext = String::new();
    for (text, label) in &rows {
        fasttext.push_str(&format!("__label__{label} {text}\n"));
    }
    fs::write(dir.path().join("c.txt"), fasttext).unwrap();
    // Custom header names, picked with --text-col and --label-col.
    let mut custom = String::from("review,extra,sentiment\n");
    for (text, label) in &rows {
        custom.push_str(&format!("\"{}\",x,{label}\n", text.replace('"', "\"\"")));
    }
    fs::write(dir.path().join("d.csv"), custom).unwrap();

    let mut common = vec!["--epochs", "4", "--hidden", "8", "--seed", "3", "--quiet"];
    common.extend(SEED_NET);
    let mut summaries = Vec::new();
    for (data, extra) in [
        ("a.tsv", &[][..]),
        ("b.csv", &[][..]),
        ("c.txt", &[][..]),
        (
            "d.csv",
            &["--text-col", "review", "--label-col", "sentiment"][..],
        ),
    ] {
        let model = format!("{data}.safetensors");
        let mut args = vec!["train", "--train", data, "--model", &model, "--json"];
        // every file gives the same rows; a held-out part would depend on nothing else either,
        // but the vocabulary is then built from fewer of them
        args.extend(["--valid-split", "0"]);
        args.extend(&common);
        args.extend(extra);
        summaries.push(last_json(&ok(&args, dir.path())));
    }
    let reference = contents(&dir.path().join("a.tsv.safetensors"));
    let vocab: Vec<String> = serde_json::from_str(&reference.meta["vocab"]).unwrap();
    assert!(
        vocab.iter().any(|t| t == "good,") && vocab.iter().any(|t| t == "\"bad\""),
        "{vocab:?}"
    );
    for data in ["b.csv", "c.txt", "d.csv"] {
        let mut other = contents(&dir.path().join(format!("{data}.safetensors")));
        if data == "d.csv" {
            // the model remembers the other columns, for eval
            assert_eq!(other.meta.remove("text_col").as_deref(), Some("review"));
            assert_eq!(other.meta.remove("label_col").as_deref(), Some("sentiment"));
        }
        assert!(
            other == reference,
            "{data} trained another model than a.tsv"
        );
    }
    for s in &summaries[1..] {
        assert_eq!(s["train_loss"], summaries[0]["train_loss"], "{s}");
        assert_eq!(s["train_acc"], summaries[0]["train_acc"], "{s}");
    }

    // eval reads the custom columns too: all 52 rows.
    let out = ok(
        &[
            "eval",
            "--model",
            "d.csv.safetensors",
            "--data",
            "d.csv",
            "--json",
            "--text-col",
            "review",
            "--label-col",
            "sentiment",
        ],
        dir.path(),
    );
    let eval = last_json(&out);
    assert_eq!(eval["n"], 52, "{eval}");
    assert_eq!(eval["accuracy"], summaries[0]["train_acc"], "{eval}");
}

#[test]
fn the_same_seed_trains_the_same_weights_and_another_seed_other_weights() {
    let dir = sample_dir();
    let train = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--train",
            "train.tsv",
            "--model",
            name,
            "--epochs",
            "3",
            "--hidden",
            "8",
            "--quiet",
            // the held-out rows, and so the vocabulary, depend on the seed too
            "--valid-split",
            "0",
        ];
        args.extend(extra);
        ok(&args, dir.path());
        contents(&dir.path().join(name))
    };
    let a = train("a.safetensors", &["--seed", "7"]);
    let b = train("b.safetensors", &["--seed", "7"]);
    let c = train("c.safetensors", &["--seed", "8"]);
    assert!(a == b, "same seed, different models");
    assert_eq!(a.meta, c.meta);
    assert_ne!(a.tensors, c.tensors, "another seed, same weights");
    let d = train("d.safetensors", &["--no-shuffle"]);
    let e = train("e.safetensors", &["--no-shuffle"]);
    assert!(d == e, "--no-shuffle twice, different models");
}

#[test]

fn the_same_seed_writes_byte_identical_model_files() {
    let dir = sample_dir();
    for (name, extra) in [
        ("a.safetensors", &["--seed", "7"][..]),
        ("b.safetensors", &["--seed", "7"][..]),
        ("c.safetensors", &["--seed", "8"][..]),
        ("d.safetensors", &["--no-shuffle"][..]),
        ("e.safetensors", &["--no-shuffle"][..]),
    ] {
        let mut args = vec![
            "train",
            "--train",
            "train.tsv",
            "--model",
            name,
            "--epochs",
            "3",
            "--hidden",
            "8",
            "--quiet",
        ];
        args.extend(extra);
        ok(&args, dir.path());
    }
    let bytes = |name: &str| fs::read(dir.path().join(name)).unwrap();
    assert!(
        bytes("a.safetensors") == bytes("b.safetensors"),
        "same seed"
    );
    assert!(
        bytes("a.safetensors") != bytes("c.safetensors"),
        "other seed"
    );
    assert!(
        bytes("d.safetensors") == bytes("e.safetensors"),
        "no shuffle"
    );
}

#[test]
fn zero_epochs_writes_the_initial_model_which_eval_reads() {
    let dir = sample_dir();
    let out = ok(
        &[
            "train",
            "--train",
            "train.tsv",
            "--model",
            "m0.safetensors",
            "--epochs",
            "0",
            "--hidden",
            "8",
            "--valid-split",
            "0",
            "--json",
        ],
        dir.path(),
    );
    let json = last_json(&out);
    assert_eq!(json["epochs"], 0, "{json}");
    let acc = f64_of(&json, "train_acc");
    assert!((0.0..=1.0).contains(&acc), "{json}");
    let out = ok(
        &[
            "eval",
            "--model",
            "m0.safetensors",
            "--data",
            "train.tsv",
            "--json",
        ],
        dir.path(),
    );
    let eval = last_json(&out);
    assert_eq!(eval["n"], 50);
    assert_eq!(eval["accuracy"], json["train_acc"], "{eval} / {json}");
    assert_eq!(eval["loss"], json["train_loss"], "{eval} / {json}");
    // 0 epochs from seed 0 and 0 epochs from seed 1 are different initial weights.
    ok(
        &[
            "train",
            "--train",
            "train.tsv",
            "--model",
            "m1.safetensors",
            "--epochs",
            "0",
            "--hidden",
            "8",
            "--seed",
            "1",
            "--quiet",
        ],
        dir.path(),
    );
    assert_ne!(
        contents(&dir.path().join("m0.safetensors")).tensors,
        contents(&dir.path().join("m1.safetensors")).tensors
    );
}

#[test]
fn init_continues_training_from_a_model() {
    let dir = sample_dir();
    train_quick_model(dir.path(), "a.safetensors");
    let a = contents(&dir.path().join("a.safetensors"));
    // 0 more epochs: the same model.
    ok(
        &[
            "train",
            "--train",
            "train.tsv",
            "--init",
            "a.safetensors",
            "--model",
            "same.safetensors",
            "--epochs",
            "0",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(contents(&dir.path().join("same.safetensors")) == a);
    // 2 more epochs: same vocabulary, labels and sizes, other weights.
    let out = ok(
        &[
            "train",
            "--train",
            "train.tsv",
            "--test",
            "test.tsv",
            "--init",
            "a.safetensors",
            "--model",
            "b.safetensors",
            "--epochs",
            "2",
            "--json",
        ],
        dir.path(),
    );
    assert!(stdout(&out).contains("H = 8"), "{}", stdout(&out));
    let json = last_json(&out);
    assert!(f64_of(&json, "test_loss").is_finite(), "{json}");
    let b = contents(&dir.path().join("b.safetensors"));
    assert_eq!(a.meta, b.meta);
    for (name, (shape, data)) in &a.tensors {
        assert_eq!(&b.tensors[name].0, shape, "{name}");
        if name != "rnn.bias_hh_l0" {
            assert_ne!(&b.tensors[name].1, data, "{name} did not change");
        }
    }
}

#[test]
fn init_rejects_a_label_the_model_does_not_know_and_flags_that_the_model_fixes() {
    let dir = sample_dir();
    train_quick_model(dir.path(), "a.safetensors");
    fs::write(
        dir.path().join("new.tsv"),
        "text\tlabel\nit was good\tpositive\n\nit was meh\tneutral\n",
    )
    .unwrap();
    fails(
        dir.path(),
        &[
            "train",
            "--train",
            "new.tsv",
            "--init",
            "a.safetensors",
            "--model",
            "b.safetensors",
            "--epochs",
            "1",
        ],
        1,
        &["new.tsv line 4", "\"neutral\"", "negative, positive"],
    );
    for flag in [
        ["--hidden", "8"],
        ["--tokens", "char"],
        ["--min-count", "2"],
    ] {
        fails(
            dir.path(),
            &[
                "train",
                "--train",
                "train.tsv",
                "--init",
                "a.safetensors",
                "--model",
                "b.safetensors",
                flag[0],
                flag[1],
            ],
            2,
            &["--init", flag[0]],
        );
    }
}

#[test]
fn char_tokens_read_every_character_spaces_included() {
    let dir = sample_dir();
    ok(
        &[
            "train",
            "--train",
            "train.tsv",
            "--model",
            "c.safetensors",
            "--epochs",
            "2",
            "--hidden",
            "8",
            "--tokens",
            "char",
            "--quiet",
        ],
        dir.path(),
    );
    assert_eq!(
        contents(&dir.path().join("c.safetensors")).meta["tokens"],
        "char"
    );
    let out = ok(
        &["explain", "--model", "c.safetensors", "--json", "it was"],
        dir.path(),
    );
    let json = last_json(&out);
    assert_eq!(
        json["tokens"],
        serde_json::json!(["i", "t", " ", "w", "a", "s"])
    );
    assert_eq!(json["probs"].as_array().unwrap().len(), 6);
    // The table shows the space as a visible character.
    let out = ok(
        &["explain", "--model", "c.safetensors", "it was"],
        dir.path(),
    );
    let table = stdout(&out);
    let first_column: Vec<&str> = table
        .lines()
        .skip(1)
        .take(6)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(first_column, ["i", "t", "␣", "w", "a", "s"], "{table}");
}

#[test]
fn batches_and_adam_train() {
    let dir = sample_dir();
    let out = ok(
        &[
            "train",
            "--train",
            "train.tsv",
            "--test",
            "test.tsv",
            "--model",
            "m.safetensors",
            "--epochs",
            "3",
            "--hidden",
            "8",
            "--batch",
            "4",
            "--optimizer",
            "adam",
            "--json",
            "--quiet",
        ],
        dir.path(),
    );
    let json = last_json(&out);
    assert_eq!(json["epochs"], 3);
    for key in ["train_loss", "test_loss"] {
        let loss = f64_of(&json, key);
        assert!(loss.is_finite() && loss > 0.0, "{key}: {json}");
    }
    for key in ["train_acc", "test_acc"] {
        assert!((0.0..=1.0).contains(&f64_of(&json, key)), "{json}");
    }
    assert!(dir.path().join("m.safetensors").is_file());
}

#[test]
fn max_len_cuts_every_text() {
    let dir = sample_dir();
    ok(
        &[
            "train",
            "--train",
            "train.tsv",
            "--model",
            "m.safetensors",
            "--epochs",
            "2",
            "--hidden",
            "8",
            "--max-len",
            "3",
            "--quiet",
        ],
        dir.path(),
    );
    assert_eq!(
        contents(&dir.path().join("m.safetensors")).meta["max_len"],
        "3"
    );
    for (text, tokens) in [
        (SENTENCE, &SENTENCE_WORDS[..3]),
        ("it was", &["it", "was"][..]),
    ] {
        let out = ok(
            &["explain", "--model", "m.safetensors", "--json", text],
            dir.path(),
        );
        let json = last_json(&out);
        assert_eq!(json["tokens"], serde_json::json!(tokens), "{text}");
        assert_eq!(json["probs"].as_array().unwrap().len(), tokens.len());
    }
}

// ---------------------------------------------------------------------------------------------
// eval

#[test]
fn eval_prints_scores_a_per_class_table_and_a_confusion_matrix() {
    let dir = sample_dir();
    let trained = train_good_model(dir.path(), "m.safetensors");
    let out = ok(
        &[
            "eval",
            "--model",
            "m.safetensors",
            "--data",
            "test.tsv",
            "--json",
        ],
        dir.path(),
    );
    let json = last_json(&out);
    assert_eq!(json["n"], 25, "{json}");
    // Same model, same data: the same numbers as train's final test scores.
    assert_eq!(json["accuracy"], trained["test_acc"], "{json} / {trained}");
    assert_eq!(json["loss"], trained["test_loss"], "{json} / {trained}");
    let classes = json["classes"].as_array().unwrap();
    let labels: Vec<&str> = classes
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, [NEGATIVE, POSITIVE]);
    let expected_support = |label: &str| TEST.iter().filter(|(_, l)| *l == label).count() as u64;
    for c in classes {
        assert_eq!(
            c["support"].as_u64(),
            Some(expected_support(c["label"].as_str().unwrap())),
            "{c}"
        );
        for key in ["precision", "recall", "f1"] {
            assert!((0.0..=1.0).contains(&f64_of(c, key)), "{c}");
        }
    }
    assert_eq!(json["confusion"]["labels"], serde_json::json!(labels));
    let matrix: Vec<Vec<u64>> = json["confusion"]["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_u64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(matrix.len(), 2);
    assert!(matrix.iter().all(|row| row.len() == 2));
    assert_eq!(matrix.iter().flatten().sum::<u64>(), 25);
    for (row, c) in matrix.iter().zip(classes) {
        assert_eq!(row.iter().sum::<u64>(), c["support"].as_u64().unwrap());
    }
    let diagonal = (matrix[0][0] + matrix[1][1]) as f64;
    assert!((diagonal / 25.0 - f64_of(&json, "accuracy")).abs() < 1e-6);

    // The same in tables.
    let out = ok(
        &["eval", "--model", "m.safetensors", "--data", "test.tsv"],
        dir.path(),
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let head = lines[0]
        .strip_prefix("test.tsv: 25 examples, loss ")
        .unwrap_or_else(|| panic!("{text}"));
    let (loss, accuracy) = head.split_once(", accuracy ").unwrap();
    let loss: f64 = loss.parse().unwrap();
    let percent: f64 = accuracy.strip_suffix('%').unwrap().parse().unwrap();
    assert!(
        (loss - f64_of(&json, "loss")).abs() <= 5e-5 + 1e-9,
        "{text}"
    );
    assert!(
        (percent - 100.0 * f64_of(&json, "accuracy")).abs() <= 0.05 + 1e-9,
        "{text}"
    );

    let header = lines
        .iter()
        .position(|l| l.starts_with("label") && l.contains("precision"))
        .unwrap_or_else(|| panic!("no per-class table: {text}"));
    for (i, c) in classes.iter().enumerate() {
        let cells: Vec<&str> = lines[header + 1 + i].split_whitespace().collect();
        assert_eq!(cells[0], c["label"].as_str().unwrap(), "{text}");
        assert_eq!(
            cells[4].parse::<u64>().ok(),
            c["support"].as_u64(),
            "{text}"
        );
    }
    let macro_row: Vec<&str> = lines[header + 3].split_whitespace().collect();
    assert_eq!(&macro_row[..2], ["macro", "avg"], "{text}");
    assert_eq!(macro_row[5], "25", "{text}");

    let at = lines
        .iter()
        .position(|l| l.starts_with("confusion matrix"))
        .unwrap_or_else(|| panic!("no confusion matrix: {text}"));
    let column_labels: Vec<&str> = lines[at + 1].split_whitespace().collect();
    assert_eq!(column_labels, [NEGATIVE, POSITIVE], "{text}");
    let mut total = 0;
    for (i, label) in [NEGATIVE, POSITIVE].iter().enumerate() {
        let cells: Vec<&str> = lines[at + 2 + i].split_whitespace().collect();
        assert_eq!(cells[0], *label, "{text}");
        let counts: Vec<u64> = cells[1..].iter().map(|n| n.parse().unwrap()).collect();
        assert_eq!(counts, matrix[i], "{text}");
        total += counts.iter().sum::<u64>();
    }
    assert_eq!(total, 25, "{text}");
}

// ---------------------------------------------------------------------------------------------
// predict

/// `label<TAB>probability<TAB>label<TAB>probability...` as pairs.
fn pairs(line: &str) -> Vec<(String, f64)> {
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(fields.len() % 2, 0, "{line:?}");
    fields
        .chunks(2)
        .map(|p| (p[0].to_string(), p[1].parse().unwrap()))
        .collect()
}

#[test]
fn predict_labels_every_line_in_order() {
    let dir = sample_dir();
    train_good_model(dir.path(), "m.safetensors");
    let texts: Vec<&str> = TEST.iter().map(|(t, _)| *t).collect();
    let input = texts.join("\n") + "\n";

    let out = rnn_with_stdin(
        &["predict", "--model", "m.safetensors"],
        dir.path(),
        input.as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), texts.len(), "{text}");
    let mut right = 0;
    for (line, (_, truth)) in lines.iter().zip(TEST) {
        let p = pairs(line);
        assert_eq!(p.len(), 1, "{line:?}");
        let (label, prob) = &p[0];
        assert!(label == NEGATIVE || label == POSITIVE, "{line:?}");
        assert!((0.5..=1.0).contains(prob), "{line:?}");
        right += usize::from(label == truth);
    }
    // In order: the right answers are as many as eval counts.
    let eval = last_json(&ok(
        &[
            "eval",
            "--model",
            "m.safetensors",
            "--data",
            "test.tsv",
            "--json",
        ],
        dir.path(),
    ));
    assert!(
        (right as f64 / 25.0 - f64_of(&eval, "accuracy")).abs() < 1e-6,
        "{right} right, {eval}"
    );

    // The same from a file and from `-`.
    fs::write(dir.path().join("texts.txt"), &input).unwrap();
    let from_file = ok(
        &["predict", "--model", "m.safetensors", "texts.txt"],
        dir.path(),
    );
    assert_eq!(stdout(&from_file), text);
    let from_dash = rnn_with_stdin(
        &["predict", "--model", "m.safetensors", "-"],
        dir.path(),
        input.as_bytes(),
    );
    assert!(from_dash.status.success(), "{}", stderr(&from_dash));
    assert_eq!(stdout(&from_dash), text);

    // A fastText label in front of a text changes nothing.
    let out = rnn_with_stdin(
        &["predict", "--model", "m.safetensors"],
        dir.path(),
        b"__label__negative it was bad\nit was bad\n",
    );
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], lines[1]);
}

#[test]
fn predict_top_k_and_probs() {
    let dir = sample_dir();
    train_good_model(dir.path(), "m.safetensors");
    let input = "it was good\nit was bad\nthis is not at all bad\nzorg blub\n";
    let run = |extra: &[&str]| {
        let mut args = vec!["predict", "--model", "m.safetensors"];
        args.extend(extra);
        let out = rnn_with_stdin(&args, dir.path(), input.as_bytes());
        assert!(out.status.success(), "{extra:?}: {}", stderr(&out));
        stdout(&out)
    };
    let top1 = run(&[]);
    let top2 = run(&["-k", "2"]);
    let top2_long = run(&["--top", "2"]);
    assert_eq!(top2, top2_long);
    let probs = run(&["--probs"]);
    let (top1, top2, probs): (Vec<&str>, Vec<&str>, Vec<&str>) = (
        top1.lines().collect(),
        top2.lines().collect(),
        probs.lines().collect(),
    );
    assert_eq!((top1.len(), top2.len(), probs.len()), (4, 4, 4));
    for i in 0..4 {
        let one = pairs(top1[i]);
        let two = pairs(top2[i]);
        assert_eq!(two.len(), 2, "{}", top2[i]);
        assert_eq!(two[0], one[0], "the first of -k 2 is the -k 1 answer");
        assert_ne!(two[0].0, two[1].0);
        assert!(two[0].1 >= two[1].1, "{}", top2[i]);
        assert!((two[0].1 + two[1].1 - 1.0).abs() < 2e-6, "{}", top2[i]);

        let json: Value = serde_json::from_str(probs[i]).unwrap();
        let map = json["probs"].as_object().unwrap();
        assert_eq!(map.len(), 2, "{json}");
        let sum: f64 = map.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-5, "{json}");
        let argmax = map
            .iter()
            .max_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap()))
            .unwrap()
            .0;
        assert_eq!(json["label"].as_str(), Some(argmax.as_str()), "{json}");
        assert_eq!(argmax, &one[0].0, "{json}");
        assert!(
            (map[argmax].as_f64().unwrap() - one[0].1).abs() < 1e-6,
            "{json}"
        );
    }
    // fastText's predict-prob format: `__label__NAME p` pairs separated by spaces
    let fasttext = run(&["--fasttext", "-k", "2"]);
    for (line, tabbed) in fasttext.lines().zip(&top2) {
        let words: Vec<&str> = line.split(' ').collect();
        let two = pairs(tabbed);
        assert_eq!(
            words,
            [
                format!("__label__{}", two[0].0),
                format!("{:.6}", two[0].1),
                format!("__label__{}", two[1].0),
                format!("{:.6}", two[1].1)
            ],
            "{line}"
        );
    }
}

#[test]
fn predict_agrees_with_the_last_step_of_explain() {
    let dir = sample_dir();
    train_good_model(dir.path(), "m.safetensors");
    for text in [
        SENTENCE,
        "it was bad at first but good now",
        "the food",
        "zorg good",
    ] {
        let out = rnn_with_stdin(
            &["predict", "--model", "m.safetensors", "--probs"],
            dir.path(),
            format!("{text}\n").as_bytes(),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let predicted = last_json(&out);
        let explained = last_json(&ok(
            &["explain", "--model", "m.safetensors", "--json", text],
            dir.path(),
        ));
        let labels = explained["labels"].as_array().unwrap();
        let last = explained["probs"].as_array().unwrap().last().unwrap();
        for (label, p) in labels.iter().zip(last.as_array().unwrap()) {
            let from_predict = predicted["probs"][label.as_str().unwrap()]
                .as_f64()
                .unwrap();
            assert!(
                (from_predict - p.as_f64().unwrap()).abs() <= 1e-6,
                "{text}: {predicted} / {explained}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// explain

#[test]
fn explain_shows_the_probabilities_after_every_token() {
    let dir = sample_dir();
    train_good_model(dir.path(), "m.safetensors");
    let json = last_json(&ok(
        &["explain", "--model", "m.safetensors", "--json", SENTENCE],
        dir.path(),
    ));
    assert_eq!(json["tokens"], serde_json::json!(SENTENCE_WORDS));
    assert_eq!(json["labels"], serde_json::json!([NEGATIVE, POSITIVE]));
    let probs: Vec<Vec<f64>> = json["probs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(probs.len(), SENTENCE_WORDS.len());
    for row in &probs {
        assert_eq!(row.len(), 2);
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{row:?}");
    }

    // The words may come as separate arguments; the table lists the tokens in order.
    let mut args = vec!["explain", "--model", "m.safetensors"];
    args.extend(SENTENCE_WORDS);
    let text = stdout(&ok(&args, dir.path()));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), SENTENCE_WORDS.len() + 2, "{text}");
    assert!(lines[0].starts_with("token"), "{text}");
    for (i, word) in SENTENCE_WORDS.iter().enumerate() {
        let cells: Vec<&str> = lines[1 + i].split_whitespace().collect();
        assert_eq!(cells[0], *word, "{text}");
        for (c, p) in probs[i].iter().enumerate() {
            let shown: f64 = cells[1 + c].parse().unwrap();
            assert!((shown - p).abs() <= 5e-4 + 1e-9, "{text}");
        }
    }
    let last = probs.last().unwrap();
    let winner = usize::from(last[1] > last[0]);
    let expected = format!(
        "prediction: {} ({:.3})",
        [NEGATIVE, POSITIVE][winner],
        last[winner]
    );
    assert_eq!(lines.last().copied(), Some(expected.as_str()), "{text}");

    // An unknown word is <unk>.
    let json = last_json(&ok(
        &[
            "explain",
            "--model",
            "m.safetensors",
            "--json",
            "it was zorg",
        ],
        dir.path(),
    ));
    assert_eq!(json["tokens"], serde_json::json!(["it", "was", "<unk>"]));
    let text = stdout(&ok(
        &["explain", "--model", "m.safetensors", "it was zorg"],
        dir.path(),
    ));
    assert!(text.lines().nth(3).unwrap().starts_with("<unk>"), "{text}");
}

/// Decodes a PNG: its width, height and RGB(A) pixels as bytes of `channels` each.
fn decode_png(path: &Path) -> (u32, u32, usize, Vec<u8>) {
    let decoder = png::Decoder::new(fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    pixels.truncate(info.buffer_size());
    (info.width, info.height, info.color_type.samples(), pixels)
}

#[test]
fn explain_plot_draws_the_flow_of_a_text_for_the_chosen_label() {
    let dir = sample_dir();
    train_good_model(dir.path(), "m.safetensors");
    for (label, file) in [(None, "predicted.png"), (Some(NEGATIVE), "negative.png")] {
        let mut args = vec!["explain", "--model", "m.safetensors", "--plot", file];
        if let Some(label) = label {
            args.extend(["--label", label]);
        }
        args.push(SENTENCE);
        // the table is printed as without --plot, and stderr says where the picture went
        let out = ok(&args, dir.path());
        let text = stdout(&out);
        assert_eq!(text.lines().count(), SENTENCE_WORDS.len() + 2, "{text}");
        assert_eq!(stderr(&out), format!("Wrote {file}\n"));
        // with --json, stdout stays one JSON object
        args.insert(1, "--json");
        let out = ok(&args, dir.path());
        assert_eq!(stdout(&out).lines().count(), 1);
        assert_eq!(last_json(&out)["tokens"].as_array().unwrap().len(), 8);
        assert_eq!(stderr(&out), format!("Wrote {file}\n"));

        let (width, height, channels, pixels) = decode_png(&dir.path().join(file));
        assert_eq!((width, height), rnn::plot::flow_size(SENTENCE_WORDS.len()));
        // not blank: a good share of the pixels is drawn, in many colours (the heatmap)
        let colours: std::collections::HashSet<&[u8]> = pixels.chunks(channels).collect();
        let drawn = pixels
            .chunks(channels)
            .filter(|p| p[..3] != [255, 255, 255])
            .count();
        let share = drawn as f64 / (width * height) as f64;
        assert!(share > 0.15, "{file}: only {share:.3} of the pixels drawn");
        assert!(colours.len() > 100, "{file}: {} colours", colours.len());
    }
    // the plot for another label differs only in the gradient panel, so the files differ
    let predicted = fs::read(dir.path().join("predicted.png")).unwrap();
    let negative = fs::read(dir.path().join("negative.png")).unwrap();
    let json = last_json(&ok(
        &["explain", "--model", "m.safetensors", "--json", SENTENCE],
        dir.path(),
    ));
    let last = json["probs"].as_array().unwrap().last().unwrap().clone();
    let predicted_negative = last[0].as_f64() > last[1].as_f64();
    assert_eq!(predicted == negative, predicted_negative);
}

#[test]
fn explain_plot_rejects_an_unknown_label_a_bad_path_and_a_label_without_plot() {
    let dir = sample_dir();
    train_quick_model(dir.path(), "m.safetensors");
    let base = ["explain", "--model", "m.safetensors"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = base.to_vec();
        args.extend(extra);
        args.push("it was good");
        args
    };
    fails(
        dir.path(),
        &with(&["--plot", "p.png", "--label", "neutral"]),
        1,
        &["\"neutral\"", "not one the model knows", NEGATIVE, POSITIVE],
    );
    fails(dir.path(), &with(&["--plot", "nodir/p.png"]), 1, &["nodir"]);
    fails(dir.path(), &with(&["--label", NEGATIVE]), 2, &["--plot"]);
    fails(
        dir.path(),
        &[
            "explain",
            "--model",
            "m.safetensors",
            "--plot",
            "p.png",
            "   ",
        ],
        1,
        &["no tokens"],
    );
}

#[test]
fn every_architecture_trains_and_every_command_reads_it() {
    let dir = sample_dir();
    for (name, flags, meta) in [
        (
            "bilstm",
            "--cell lstm --layers 2 --bidirectional --embed 6 --pool max --dropout 0.1 --tokens word",
            [
                ("layers", "2"),
                ("bidirectional", "true"),
                ("pool", "max"),
                ("embed", "6"),
            ],
        ),
        (
            "gru2",
            "--cell gru --layers 2 --pool mean --bidirectional false --embed 0 --dropout 0 --tokens word",
            [
                ("layers", "2"),
                ("bidirectional", "false"),
                ("pool", "mean"),
                ("cell", "gru"),
            ],
        ),
        (
            "birnn",
            "--cell rnn --bidirectional --embed 0 --pool last --dropout 0 --tokens word",
            [
                ("layers", "1"),
                ("bidirectional", "true"),
                ("pool", "last"),
                ("cell", "rnn"),
            ],
        ),
    ] {
        let model = format!("{name}.safetensors");
        let mut args = vec!["train", "--train", "train.tsv", "--test", "test.tsv"];
        args.extend(["--model", &model, "--epochs", "40", "--hidden", "8"]);
        args.extend(["--valid-split", "0", "--min-count", "1"]);
        args.extend([
            "--optimizer",
            "adam",
            "--lr",
            "0.02",
            "--batch",
            "4",
            "--json",
        ]);
        args.extend(flags.split(' '));
        let json = last_json(&ok(&args, dir.path()));
        assert!(f64_of(&json, "train_acc") >= 0.9, "{name}: {json}");
        let file = contents(&dir.path().join(&model));
        assert_eq!(file.meta["format_version"], "2");
        for (key, value) in meta {
            assert_eq!(file.meta[key], value, "{name}: {key}");
        }

        let eval = last_json(&ok(
            &["eval", "--model", &model, "--data", "test.tsv", "--json"],
            dir.path(),
        ));
        assert_eq!(eval["accuracy"], json["test_acc"], "{name}");
        let out = rnn_with_stdin(
            &["predict", "--model", &model, "--probs"],
            dir.path(),
            format!("{SENTENCE}\n").as_bytes(),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let predicted: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        // explain: a row a token, and after the last one the prediction for the whole text
        let explained = last_json(&ok(
            &["explain", "--model", &model, "--json", SENTENCE],
            dir.path(),
        ));
        assert_eq!(explained["tokens"], serde_json::json!(SENTENCE_WORDS));
        let probs = explained["probs"].as_array().unwrap();
        assert_eq!(probs.len(), SENTENCE_WORDS.len());
        let labels = explained["labels"].as_array().unwrap();
        for (label, p) in labels.iter().zip(probs.last().unwrap().as_array().unwrap()) {
            let whole = f64_of(&predicted["probs"], label.as_str().unwrap());
            assert!(
                (whole - p.as_f64().unwrap()).abs() < 1e-6,
                "{name}: {label}"
            );
        }
        let table = stdout(&ok(&["explain", "--model", &model, SENTENCE], dir.path()));
        assert!(table.contains("now"), "{name}: {table}");
        ok(
            &["explain", "--model", &model, "--plot", "flow.png", SENTENCE],
            dir.path(),
        );
        let (width, height, _, _) = decode_png(&dir.path().join("flow.png"));
        assert_eq!((width, height), rnn::plot::flow_size(SENTENCE_WORDS.len()));
    }
}

#[test]
fn gru_and_lstm_train_and_every_command_reads_them() {
    let dir = sample_dir();
    for cell in ["gru", "lstm"] {
        let model = format!("{cell}.safetensors");
        let mut args = vec![
            "train",
            "--train",
            "train.tsv",
            "--test",
            "test.tsv",
            "--model",
            &model,
        ];
        args.extend([
            "--epochs",
            "60",
            "--hidden",
            "8",
            "--lr",
            "0.1",
            "--valid-split",
            "0",
        ]);
        args.extend(["--json"]);
        args.extend(seed_setup_with_cell(cell));
        let out = ok(&args, dir.path());
        assert!(
            stdout(&out).starts_with(&format!("Training the network ({cell}, H = 8;")),
            "{}",
            stdout(&out)
        );
        let json = last_json(&out);
        assert!(f64_of(&json, "train_acc") >= 0.9, "{cell}: {json}");
        assert_eq!(contents(&dir.path().join(&model)).meta["cell"], cell);

        let eval = last_json(&ok(
            &["eval", "--model", &model, "--data", "test.tsv", "--json"],
            dir.path(),
        ));
        assert_eq!(
            eval["accuracy"], json["test_acc"],
            "{cell}: {eval} / {json}"
        );
        let out = rnn_with_stdin(
            &["predict", "--model", &model],
            dir.path(),
            b"it was good\nit was bad\n",
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let predicted = stdout(&out);
        assert_eq!(predicted.lines().count(), 2, "{predicted}");
        let explained = last_json(&ok(
            &["explain", "--model", &model, "--json", SENTENCE],
            dir.path(),
        ));
        assert_eq!(explained["tokens"], serde_json::json!(SENTENCE_WORDS));
        ok(
            &["explain", "--model", &model, "--plot", "flow.png", SENTENCE],
            dir.path(),
        );
        let (width, height, _, _) = decode_png(&dir.path().join("flow.png"));
        assert_eq!((width, height), rnn::plot::flow_size(SENTENCE_WORDS.len()));
    }
    // the cell comes from the model when training continues from one
    fails(
        dir.path(),
        &[
            "train",
            "--cell",
            "gru",
            "--init",
            "gru.safetensors",
            "--train",
            "train.tsv",
            "--model",
            "o.safetensors",
        ],
        2,
        &["--cell", "--init"],
    );
}

// ---------------------------------------------------------------------------------------------
// Bad data files

/// Train arguments with `data` as training file and `o.safetensors` as output.
fn train_args(data: &str) -> Vec<&str> {
    vec![
        "train",
        "--train",
        data,
        "--model",
        "o.safetensors",
        "--epochs",
        "1",
        "--hidden",
        "8",
    ]
}

#[test]
fn a_missing_train_file_is_named() {
    let dir = sample_dir();
    fails(
        dir.path(),
        &train_args("missing.tsv"),
        1,
        &["missing.tsv", "No such file"],
    );
    let mut args = train_args("train.tsv");
    args.extend(["--test", "missing-test.tsv"]);
    fails(dir.path(), &args, 1, &["missing-test.tsv", "No such file"]);
}

#[test]

fn io_errors_print_their_cause_once() {
    let dir = sample_dir();
    let err = stderr(&fails(
        dir.path(),
        &train_args("missing.tsv"),
        1,
        &["missing.tsv"],
    ));
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    let err = stderr(&fails(
        dir.path(),
        &["eval", "--model", "nope.safetensors", "--data", "test.tsv"],
        1,
        &["nope.safetensors"],
    ));
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    let mut args = train_args("train.tsv");
    args[4] = "test.tsv/o.safetensors";
    let err = stderr(&fails(dir.path(), &args, 1, &["test.tsv/o.safetensors"]));
    assert_eq!(err.matches("File exists").count(), 1, "{err}");
}

#[test]
fn malformed_data_files_name_the_file_and_line() {
    let dir = sample_dir();
    let cases: [(&str, &[u8], &[&str]); 8] = [
        ("empty.tsv", b"", &["empty.tsv", "no examples"]),
        ("blank.tsv", b"\n  \n", &["blank.tsv", "no examples"]),
        (
            "header.tsv",
            b"text\tlabel\n",
            &["header.tsv", "no examples"],
        ),
        (
            "notext.tsv",
            b"review\tlabel\nit was good\tpositive\n",
            &["notext.tsv line 1", "no \"text\" column", "--text-col"],
        ),
        (
            "nolabel.csv",
            b"text,sentiment\nit was good,positive\n",
            &["nolabel.csv line 1", "no \"label\" column", "--label-col"],
        ),
        (
            "short.tsv",
            b"text\tlabel\nit was good\tpositive\n\nit was bad\n",
            &["short.tsv line 4", "expected 2 fields, found 1"],
        ),
        (
            "utf8.tsv",
            b"text\tlabel\nit was good\tpositive\nit was \xff bad\tnegative\n",
            &["utf8.tsv line 3: invalid UTF-8"],
        ),
        (
            "nolabel.txt",
            b"__label__positive it was good\nit was bad\n",
            &["nolabel.txt line 2", "no __label__"],
        ),
    ];
    train_quick_model(dir.path(), "m.safetensors");
    train_and_eval_refuse(dir.path(), &cases);
}

/// Writes each `(name, data, needles)` file into `dir` and checks that `train` refuses it, and
/// `eval` of `dir`'s `m.safetensors` too, with the same message.
fn train_and_eval_refuse(dir: &Path, cases: &[(&str, &[u8], &[&str])]) {
    for &(name, data, needles) in cases {
        fs::write(dir.join(name), data).unwrap();
        fails(dir, &train_args(name), 1, needles);
        let eval = ["eval", "--model", "m.safetensors", "--data", name];
        fails(dir, &eval, 1, needles);
    }
}

#[test]
fn a_test_label_that_training_never_saw_is_named_with_its_line() {
    let dir = sample_dir();
    fs::write(
        dir.path().join("new.tsv"),
        "text\tlabel\nit was good\tpositive\nit was meh\tneutral\n",
    )
    .unwrap();
    let mut args = train_args("train.tsv");
    args.extend(["--test", "new.tsv"]);
    fails(
        dir.path(),
        &args,
        1,
        &["new.tsv line 3", "\"neutral\"", "negative, positive"],
    );
    train_quick_model(dir.path(), "m.safetensors");
    fails(
        dir.path(),
        &["eval", "--model", "m.safetensors", "--data", "new.tsv"],
        1,
        &["new.tsv line 3", "\"neutral\""],
    );
}

#[test]
fn training_data_with_a_single_label_is_rejected() {
    let dir = sample_dir();
    fs::write(
        dir.path().join("one.tsv"),
        "text\tlabel\nit was good\tpositive\nit was great\tpositive\n",
    )
    .unwrap();
    fails(
        dir.path(),
        &train_args("one.tsv"),
        1,
        &["one.tsv", "at least two labels", "\"positive\""],
    );
}

// ---------------------------------------------------------------------------------------------
// Bad model files

/// Every command that reads a model, given `model`.
fn commands_reading(model: &str) -> Vec<Vec<&str>> {
    vec![
        vec!["eval", "--model", model, "--data", "test.tsv"],
        vec!["predict", "--model", model, "texts.txt"],
        vec!["explain", "--model", model, "it was good"],
        vec![
            "train",
            "--train",
            "train.tsv",
            "--init",
            model,
            "--model",
            "o.safetensors",
            "--epochs",
            "1",
        ],
    ]
}

#[test]
fn truncated_and_foreign_model_files_are_rejected() {
    let dir = sample_dir();
    fs::write(dir.path().join("texts.txt"), "it was good\n").unwrap();
    train_quick_model(dir.path(), "good.safetensors");
    let good = fs::read(dir.path().join("good.safetensors")).unwrap();
    fs::write(dir.path().join("cut.safetensors"), &good[..good.len() - 10]).unwrap();
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend([0u8; 64]);
    fs::write(dir.path().join("png.safetensors"), png).unwrap();
    // Random bytes from a fixed linear congruential generator.
    let mut x: u64 = 12345;
    let noise: Vec<u8> = (0..3000)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect();
    fs::write(dir.path().join("noise.safetensors"), noise).unwrap();
    fs::write(dir.path().join("tiny.safetensors"), b"abc").unwrap();
    for model in [
        "cut.safetensors",
        "png.safetensors",
        "noise.safetensors",
        "tiny.safetensors",
    ] {
        for args in commands_reading(model) {
            fails(
                dir.path(),
                &args,
                1,
                &[&format!("{model}: not a valid safetensors file")],
            );
        }
    }
    for args in commands_reading("nope.safetensors") {
        fails(dir.path(), &args, 1, &["nope.safetensors", "No such file"]);
    }
    fs::write(dir.path().join("empty.safetensors"), b"").unwrap();
    for args in commands_reading("empty.safetensors") {
        fails(
            dir.path(),
            &args,
            1,
            &["empty.safetensors: not a valid safetensors file"],
        );
    }
    fs::create_dir(dir.path().join("folder.safetensors")).unwrap();
    for args in commands_reading("folder.safetensors") {
        fails(
            dir.path(),
            &args,
            1,
            &["folder.safetensors: not a regular file"],
        );
    }
}

#[test]
fn a_model_whose_shapes_do_not_match_its_vocabulary_is_rejected() {
    let dir = sample_dir();
    fs::write(dir.path().join("texts.txt"), "it was good\n").unwrap();
    train_quick_model(dir.path(), "good.safetensors");
    let v = vocab_of(&dir.path().join("good.safetensors")).len();
    write_with_extra_token(
        &dir.path().join("good.safetensors"),
        &dir.path().join("bad.safetensors"),
    );
    assert_eq!(vocab_of(&dir.path().join("bad.safetensors")).len(), v + 1);
    let shapes = format!(
        "bad.safetensors: tensor rnn.weight_ih_l0 has shape [8, {v}], expected [8, {}]",
        v + 1
    );
    for args in commands_reading("bad.safetensors") {
        fails(dir.path(), &args, 1, &[&shapes]);
    }
}

// ---------------------------------------------------------------------------------------------
// Bad flags and outputs

#[test]
fn bad_train_flags_are_clap_errors_naming_the_flag() {
    let dir = sample_dir();
    for (flag, value) in [
        ("--hidden", "0"),
        ("--lr", "-1"),
        ("--lr", "nan"),
        ("--lr", "inf"),
        ("--clip", "0"),
        ("--clip", "-1"),
        ("--batch", "0"),
        ("--epochs", "x"),
        ("--max-len", "0"),
        ("--min-count", "0"),
        ("--optimizer", "rmsprop"),
        ("--tokens", "bytes"),
        ("--cell", "transformer"),
        ("--layers", "0"),
        ("--pool", "attention"),
        ("--dropout", "1"),
        ("--dropout", "-0.1"),
        ("--dropout", "x"),
    ] {
        let mut args = vec!["train", "--train", "train.tsv", "--model", "o.safetensors"];
        args.extend([flag, value]);
        fails(dir.path(), &args, 2, &[flag, value]);
    }
    train_quick_model(dir.path(), "m.safetensors");
    fails(
        dir.path(),
        &["predict", "--model", "m.safetensors", "-k", "0"],
        2,
        &["--top"],
    );
    fails(
        dir.path(),
        &["predict", "--model", "m.safetensors", "-k", "2", "--probs"],
        2,
        &["--probs"],
    );
    fails(
        dir.path(),
        &["explain", "--model", "m.safetensors"],
        2,
        &["<TEXT>"],
    );
}

#[test]
fn outputs_in_a_missing_folder_are_created_and_an_impossible_one_fails_before_training() {
    let dir = sample_dir();
    let mut args = train_args("train.tsv");
    args[4] = "runs/a/o.safetensors";
    args.extend(["--metrics", "runs/b/m.csv", "--quiet"]);
    ok(&args, dir.path());
    assert!(dir.path().join("runs/a/o.safetensors").is_file());
    assert!(dir.path().join("runs/b/m.csv").is_file());
    // a folder inside a file cannot be made: named before any work
    for (flag, path) in [
        ("--model", "test.tsv/o.safetensors"),
        ("--metrics", "test.tsv/m.csv"),
        ("--plot", "test.tsv/m.png"),
    ] {
        let mut args = train_args("train.tsv");
        args.extend(["--test", "test.tsv"]);
        if flag == "--model" {
            args[4] = path;
        } else {
            args.extend([flag, path]);
        }
        // Many epochs: were they run before the check, the banner would show on stdout.
        args[6] = "1000";
        let out = fails(dir.path(), &args, 1, &[path, "cannot create its folder"]);
        assert_eq!(stdout(&out), "", "{flag}: work started before the check");
        assert!(!dir.path().join("o.safetensors").exists(), "{flag}");
    }
}

#[test]

fn a_failing_metrics_or_plot_output_leaves_no_model_behind() {
    let dir = sample_dir();
    // --plot after 0 epochs: the error comes after the model and the metrics were saved.
    let mut args = train_args("train.tsv");
    args[6] = "0";
    args.extend(["--plot", "p.png", "--metrics", "m.csv"]);
    fails(dir.path(), &args, 1, &["p.png", "0 epochs"]);
    // --metrics naming a folder: the error comes after the model was saved.
    fs::create_dir(dir.path().join("folder")).unwrap();
    let mut args = train_args("train.tsv");
    args.extend(["--metrics", "folder"]);
    fails(dir.path(), &args, 1, &["folder"]);
}

#[test]
fn predict_on_a_missing_file_names_it() {
    let dir = sample_dir();
    train_quick_model(dir.path(), "m.safetensors");
    let err = stderr(&fails(
        dir.path(),
        &["predict", "--model", "m.safetensors", "missing.txt"],
        1,
        &["missing.txt", "No such file"],
    ));
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    // Invalid UTF-8 on standard input names the line, after the lines before it.
    let out = rnn_with_stdin(
        &["predict", "--model", "m.safetensors"],
        dir.path(),
        b"it was good\nit was \xff\n",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err, "error: stdin line 2: invalid UTF-8\n");
}

#[test]
fn a_long_text_read_both_ways_is_explained_after_evenly_spaced_tokens_only() {
    // The default network reads both ways: each prefix is read again, so a text of 1,000
    // tokens is explained after 129 of them (prefixes of 65,536 tokens in all), not 1,000.
    let dir = sample_dir();
    ok(
        &[
            "train",
            "--train",
            "train.tsv",
            "--model",
            "bi.safetensors",
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--quiet",
        ],
        dir.path(),
    );
    let words: Vec<&str> = ["it", "was", "good", "but", "bad"]
        .iter()
        .copied()
        .cycle()
        .take(1000)
        .collect();
    let text = words.join(" ");
    let json = last_json(&ok(
        &["explain", "--model", "bi.safetensors", "--json", &text],
        dir.path(),
    ));
    let probs = json["probs"].as_array().unwrap();
    assert_eq!(probs.len(), 1000, "a row a token");
    let ends: Vec<usize> = (1..=1000).filter(|&e| !probs[e - 1].is_null()).collect();
    assert_eq!(ends.len(), 129);
    assert_eq!(ends.last(), Some(&1000));
    // Those evaluated are the prediction for the text up to there, as `rnn predict` gives it.
    let prefixes: Vec<String> = [ends[0], ends[64], 1000]
        .iter()
        .map(|&e| words[..e].join(" "))
        .collect();
    let out = rnn_with_stdin(
        &["predict", "--model", "bi.safetensors", "--probs"],
        dir.path(),
        format!("{}\n", prefixes.join("\n")).as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let predicted: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (e, predicted) in [ends[0], ends[64], 1000].iter().zip(&predicted) {
        let row = probs[e - 1].as_array().unwrap();
        for (label, p) in [NEGATIVE, POSITIVE].iter().zip(row) {
            let whole = f64_of(&predicted["probs"], label);
            assert!(
                (whole - p.as_f64().unwrap()).abs() < 1e-6,
                "prefix {e}: {label}"
            );
        }
    }
    // The table shows every token, numbers only where a prefix ends, and says so.
    let table = stdout(&ok(
        &["explain", "--model", "bi.safetensors", &text],
        dir.path(),
    ));
    let rows: Vec<&str> = table.lines().skip(1).take(1000).collect();
    assert_eq!(rows.iter().filter(|r| r.contains('.')).count(), 129);
    assert_eq!(
        rows[0].trim_end(),
        "it",
        "no prefix ends after the first token"
    );
    assert!(
        table.trim_end().ends_with(
            "(probabilities after 129 of the 1000 tokens, evenly spaced, and the last: the \
             network reads both ways, so each is the text read again up to there)"
        ),
        "{}",
        &table[table.len() - 300..]
    );
}

#[test]
fn explaining_a_text_without_words_is_an_error() {
    let dir = sample_dir();
    train_quick_model(dir.path(), "m.safetensors");
    for text in ["   ", " \t "] {
        fails(
            dir.path(),
            &["explain", "--model", "m.safetensors", text],
            1,
            &["no tokens"],
        );
    }
}

#[test]

fn explaining_a_text_without_words_is_an_error_in_json_too() {
    let dir = sample_dir();
    train_quick_model(dir.path(), "m.safetensors");
    fails(
        dir.path(),
        &["explain", "--model", "m.safetensors", "--json", "   "],
        1,
        &["no tokens"],
    );
}

#[test]
fn a_diverging_run_stops_and_saves_the_last_good_model() {
    let dir = sample_dir();
    let out = rnn(
        &[
            "train",
            "--train",
            "train.tsv",
            "--model",
            "m.safetensors",
            "--lr",
            "1e38",
            "--epochs",
            "3",
            "--quiet",
        ],
        dir.path(),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("diverged in epoch 1") && err.contains("smaller learning rate"),
        "{err}"
    );
    assert!(
        err.contains("m.safetensors keeps the initial model") && !err.contains("panicked"),
        "{err}"
    );
    // it diverged before any checkpoint was written: the message names none (it named a
    // .ckpt that did not exist: red team, issue 28, item 10)
    assert!(
        !err.contains(".ckpt") && !dir.path().join("m.safetensors.ckpt").exists(),
        "{err}"
    );
    // The model file holds the last good model, here the initial one: it loads, its weights
    // are finite, and they are those of an untrained run with the same seed.
    let model = rnn::model::Model::load(&dir.path().join("m.safetensors")).unwrap();
    assert!(model.network.params().iter().all(|w| w.is_finite()));
    ok(
        &[
            "train",
            "--train",
            "train.tsv",
            "--model",
            "zero.safetensors",
            "--epochs",
            "0",
        ],
        dir.path(),
    );
    let initial = rnn::model::Model::load(&dir.path().join("zero.safetensors")).unwrap();
    assert_eq!(model.network.params(), initial.network.params());
}

// ---------------------------------------------------------------------------------------------
// Validation, early stopping, the best epoch, class weights, warnings, resume

/// `rnn train --train train.tsv --model x.safetensors` with `flags` fails as a flag error
/// (exit 2) that holds every one of `needles` (see [`fails`]).
fn train_fails(dir: &Path, flags: &[&str], needles: &[&str]) {
    let mut args = vec!["train", "--train", "train.tsv", "--model", "x.safetensors"];
    args.extend(flags);
    fails(dir, &args, 2, needles);
}

/// `rnn train` on the sample with `flags`, its JSON summary.
fn train_json(dir: &Path, model: &str, flags: &[&str]) -> (Value, String, String) {
    let mut args = vec!["train", "--train", "train.tsv", "--model", model, "--json"];
    args.extend(flags);
    let out = ok(&args, dir);
    (last_json(&out), stdout(&out), stderr(&out))
}

#[test]
fn a_held_out_part_picks_the_best_epoch_and_patience_stops_the_run() {
    let dir = sample_dir();
    let mut flags = vec![
        "--epochs", "40", "--hidden", "8", "--lr", "0.05", "--batch", "4",
    ];
    flags.extend(SEED_NET);
    // 50 rows would hold nothing out by default: ask for the share
    let held = ["--valid-split", "0.1"];
    let every_epoch = [&flags[..], &held, &["--patience", "0"]].concat();
    let (json, text, _) = train_json(dir.path(), "m.safetensors", &every_epoch);
    // 10% of each label's 25 rows (3 rounded) is held out: 6 of 50
    assert!(
        text.contains("on 44 examples") && text.contains("validating on 6 (held out"),
        "{text}"
    );
    let best = json["best_epoch"].as_u64().unwrap() as usize;
    assert!(
        text.contains(&format!("Kept the weights of epoch {best}")),
        "{text}"
    );

    // --patience ends the run a fixed number of epochs after the best one
    let mut stop = [&flags[..], &held].concat();
    stop.extend(["--patience", "2", "--metrics", "p.csv"]);
    let (json, text, _) = train_json(dir.path(), "p.safetensors", &stop);
    let (best, epochs) = (
        json["best_epoch"].as_u64().unwrap(),
        json["epochs"].as_u64().unwrap(),
    );
    if json["stopped_early"] == true {
        assert_eq!(epochs, best + 2, "{json}");
        assert!(text.contains("(stopped early"), "{text}");
    }
    let csv = fs::read_to_string(dir.path().join("p.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert_eq!(
        header,
        "epoch,lr,train_loss,train_acc,valid_loss,valid_acc,valid_f1_negative,valid_f1_positive"
    );
    assert_eq!(csv.lines().count() as u64, epochs + 1);
    // the model file holds the best epoch's weights: its validation score is the best one
    let best_row: Vec<f64> = csv
        .lines()
        .nth(best as usize)
        .unwrap()
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(best_row[5], f64_of(&json, "valid_acc"), "{csv} / {json}");

    // a validation file instead; --valid-split 0 trains on everything and keeps the last epoch
    let (json, text, _) = train_json(
        dir.path(),
        "v.safetensors",
        &[&flags[..], &["--valid", "test.tsv"]].concat(),
    );
    assert!(
        text.contains("on 50 examples") && text.contains("validating on 25 (test.tsv)"),
        "{text}"
    );
    assert!(json["best_epoch"].is_u64(), "{json}");
    let (json, text, _) = train_json(
        dir.path(),
        "n.safetensors",
        &[&flags[..], &["--valid-split", "0"]].concat(),
    );
    assert!(
        !text.contains("validating") && json["best_epoch"].is_null(),
        "{text}"
    );
    train_fails(
        dir.path(),
        &["--valid", "test.tsv", "--valid-split", "0.2"],
        &["--valid-split"],
    );
    for bad in ["1", "-0.1", "x"] {
        train_fails(dir.path(), &["--valid-split", bad], &["--valid-split"]);
    }
    train_fails(dir.path(), &["--patience", "-1"], &["--patience"]);
}

#[test]
fn a_plateau_halves_the_learning_rate() {
    let dir = sample_dir();
    let flags = [
        "--epochs",
        "30",
        "--hidden",
        "8",
        "--lr",
        "0.05",
        "--schedule",
        "plateau",
        "--metrics",
        "m.csv",
        "--valid-split",
        "0.1",
    ];
    train_json(dir.path(), "m.safetensors", &flags);
    let csv = fs::read_to_string(dir.path().join("m.csv")).unwrap();
    let rates: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(rates[0], 0.05);
    // each epoch's rate is the last one's, or half of it (to the f32 printed)
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b;
    assert!(
        rates
            .windows(2)
            .all(|w| same(w[1], w[0]) || same(w[1], w[0] / 2.0)),
        "{rates:?}"
    );
    assert!(
        rates.last().unwrap() < &0.05,
        "no plateau in 30 epochs? {rates:?}"
    );
    train_fails(dir.path(), &["--schedule", "cosine"], &["--schedule"]);
}

#[test]
fn balanced_class_weights_make_a_rare_class_heard() {
    let dir = tempfile::tempdir().unwrap();
    // 40 "common" rows and 4 "rare" ones, told apart by one word
    let mut rows: Vec<(String, &str)> = (0..40)
        .map(|i| (format!("plain text number {}", i % 7), "common"))
        .collect();
    rows.extend((0..4).map(|i| (format!("special text number {i}"), "rare")));
    let refs: Vec<(&str, &str)> = rows.iter().map(|(t, l)| (t.as_str(), *l)).collect();
    fs::write(dir.path().join("train.tsv"), tsv(&refs)).unwrap();
    let mut flags = vec!["--epochs", "10", "--hidden", "8", "--valid-split", "0"];
    flags.extend(seed_setup_with_cell("rnn"));
    let (plain, _, err) = train_json(dir.path(), "p.safetensors", &flags);
    assert!(
        err.contains("warning: the trained model predicts \"common\" for every training example"),
        "{err}"
    );
    assert_eq!(plain["warnings"].as_array().unwrap().len(), 1, "{plain}");
    let (weighted, _, err) = train_json(
        dir.path(),
        "w.safetensors",
        &[&flags[..], &["--class-weight", "balanced"]].concat(),
    );
    assert!(
        weighted["warnings"].as_array().unwrap().is_empty(),
        "{weighted} {err}"
    );
    assert!(
        f64_of(&weighted, "train_acc") > f64_of(&plain, "train_acc"),
        "{plain} / {weighted}"
    );
}

#[test]
fn a_rising_loss_and_overfitting_are_warned_about() {
    let dir = sample_dir();
    let mut flags = vec!["--epochs", "12", "--lr", "2", "--valid-split", "0"];
    flags.extend(seed_setup_with_cell("rnn"));
    let (json, _, err) = train_json(dir.path(), "r.safetensors", &flags);
    assert!(
        err.contains("warning: the training loss has risen for 3 epochs in a row"),
        "{err}"
    );
    assert!(
        err.contains("the learning rate (2) may be too high"),
        "{err}"
    );
    assert!(!json["warnings"].as_array().unwrap().is_empty());
    let mut flags = vec!["--epochs", "60", "--hidden", "8", "--lr", "0.1"];
    flags.extend(seed_setup_with_cell("gru"));
    flags.extend(["--valid-split", "0.1"]);
    let (_, _, err) = train_json(dir.path(), "o.safetensors", &flags);
    assert!(
        err.contains(
            "warning: the validation loss has risen for 3 epochs while the training loss fell"
        ),
        "{err}"
    );
}

#[test]
fn a_resumed_run_ends_in_the_same_model_file_as_an_uninterrupted_one() {
    let dir = sample_dir();
    let flags = [
        "--optimizer",
        "adam",
        "--lr",
        "0.02",
        "--batch",
        "4",
        "--layers",
        "2",
        "--dropout",
        "0.2",
        "--hidden",
        "8",
        "--seed",
        "3",
        "--threads",
        "2",
        "--patience",
        "9",
        "--schedule",
        "plateau",
        "--class-weight",
        "balanced",
        "--quiet",
    ];
    let run = |model: &str, extra: &[&str]| {
        let mut args = vec!["train", "--train", "train.tsv", "--model", model];
        args.extend(flags);
        args.extend(extra);
        ok(&args, dir.path());
    };
    run("whole.safetensors", &["--epochs", "6"]);
    assert!(
        !dir.path().join("whole.safetensors.ckpt").exists(),
        "the checkpoint goes at the end"
    );
    // stopped after epoch 2 (its checkpoint kept), then resumed to epoch 6
    run("parts.safetensors", &["--epochs", "2", "--keep-checkpoint"]);
    assert!(dir.path().join("parts.safetensors.ckpt").exists());
    // a checkpoint is a model file too
    ok(
        &[
            "eval",
            "--model",
            "parts.safetensors.ckpt",
            "--data",
            "test.tsv",
        ],
        dir.path(),
    );
    // the run's settings come from the checkpoint: no architecture flag with --resume
    let resume = [
        "train",
        "--train",
        "train.tsv",
        "--model",
        "parts.safetensors",
        "--resume",
        "parts.safetensors.ckpt",
    ];
    fails(
        dir.path(),
        &[&resume[..], &["--hidden", "9"]].concat(),
        2,
        &["--resume"],
    );
    ok(
        &[&resume[..], &["--epochs", "6", "--quiet"]].concat(),
        dir.path(),
    );
    let (whole, parts) = (
        fs::read(dir.path().join("whole.safetensors")).unwrap(),
        fs::read(dir.path().join("parts.safetensors")).unwrap(),
    );
    assert!(
        whole == parts,
        "the resumed run's model differs from the uninterrupted run's"
    );
    assert!(!dir.path().join("parts.safetensors.ckpt").exists());
    fails(
        dir.path(),
        &[
            "train",
            "--train",
            "train.tsv",
            "--model",
            "x.safetensors",
            "--resume",
            "whole.safetensors",
        ],
        1,
        &["not a checkpoint"],
    );
}

#[test]
fn empty_texts_are_examples_and_max_vocab_keeps_the_most_frequent_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let rows = [
        ("a a a b", "x"),
        ("", "y"),
        ("b c", "x"),
        ("a", "y"),
        ("c c d", "x"),
    ];
    fs::write(dir.path().join("train.tsv"), tsv(&rows)).unwrap();
    let (json, text, _) = train_json(
        dir.path(),
        "m.safetensors",
        &[
            "--epochs",
            "2",
            "--hidden",
            "4",
            "--valid-split",
            "0",
            "--max-vocab",
            "2",
        ],
    );
    assert!(text.contains("on 5 examples"), "{text}");
    assert!(json["train_acc"].is_number());
    // a (4), c (4) are kept; b (2) and d (1) become <unk>
    assert_eq!(
        contents(&dir.path().join("m.safetensors")).meta["vocab"],
        r#"["<unk>","a","c"]"#
    );
}

#[test]
fn on_the_demos_sentences_the_defaults_reach_100_percent() {
    // 50 training sentences: no validation set is held out and the batch is 1 by default,
    // so that the network gets enough updates; the test sentences are the demo's held-out 25
    let dir = sample_dir();
    for seed in ["0", "1", "2"] {
        let mut args = train_and_test("d.safetensors");
        args.extend(["--seed", seed, "--json", "--quiet"]);
        let json = last_json(&ok(&args, dir.path()));
        assert_eq!(json["test_acc"], 1.0, "seed {seed}: {json}");
        assert!(json["valid_acc"].is_null(), "{json}");
    }
}

// ---------------------------------------------------------------------------------------------
// Hardening: malformed quotes, endless lines, paths that are not files, late write failures

#[test]
fn csv_quotes_are_read_strictly_and_labels_stay_one_line() {
    let dir = sample_dir();
    train_quick_model(dir.path(), "m.safetensors");
    let cases: [(&str, &[u8], &[&str]); 4] = [
        (
            // an unclosed quote in the label column once swallowed the rest of the file
            "label_quote.csv",
            b"text,label\ngood,pos\nfine,\"pos\nawful,neg\nbad,neg\ngreat,pos\n",
            &[
                "label_quote.csv line 3",
                "the quote that opens a field here is never closed",
            ],
        ),
        (
            // and in the text column named a line one too low, without the quote
            "text_quote.csv",
            b"text,label\ngood,pos\n\"fine,pos\nawful,neg\n",
            &[
                "text_quote.csv line 3",
                "the quote that opens a field here is never closed",
            ],
        ),
        (
            "after_quote.csv",
            b"text,label\n\"c, d\"x,pos\nbad,neg\n",
            &[
                "after_quote.csv line 2",
                "text after the closing quote of a quoted field ('x')",
            ],
        ),
        (
            "label_newline.csv",
            b"text,label\ngood,\"pos\nitive\"\nbad,neg\n",
            &[
                "label_newline.csv line 2",
                "a label with a line break or a tab",
            ],
        ),
    ];
    train_and_eval_refuse(dir.path(), &cases);
}

#[test]
fn rows_longer_than_the_cap_are_errors_naming_the_line_and_the_flag() {
    let dir = sample_dir();
    train_quick_model(dir.path(), "m.safetensors");
    let long = format!("text\tlabel\ngood\tpos\n{}\tneg\n", "x ".repeat(600));
    fs::write(dir.path().join("long.tsv"), &long).unwrap();
    let mut args = train_args("long.tsv");
    args.extend(["--max-row-bytes", "1000"]);
    fails(
        dir.path(),
        &args,
        1,
        &[
            "long.tsv line 3: a row longer than 1000 bytes",
            "--max-row-bytes",
        ],
    );
    // under a higher cap the same file trains
    let mut args = train_args("long.tsv");
    args.extend(["--max-row-bytes", "2000", "--quiet"]);
    ok(&args, dir.path());
    // input without a line break (here endless: a device is refused as a file, so it comes
    // through standard input) fails at the cap, in train, eval and predict
    for args in [
        vec![
            "train",
            "--train",
            "-",
            "--format",
            "tsv",
            "--model",
            "o.safetensors",
        ],
        vec![
            "eval",
            "--model",
            "m.safetensors",
            "--data",
            "-",
            "--format",
            "tsv",
        ],
        vec!["predict", "--model", "m.safetensors", "-"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_rnn"))
            .args(&args)
            .current_dir(dir.path())
            .stdin(fs::File::open("/dev/zero").unwrap())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).starts_with("error: stdin line 1: a ")
                && stderr(&out).contains(" longer than 1048576 bytes"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = rnn_with_stdin(
        &[
            "predict",
            "--model",
            "m.safetensors",
            "--max-row-bytes",
            "100",
        ],
        dir.path(),
        format!("it was good\n{}\n", "y".repeat(200)).as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out).lines().count(),
        1,
        "the line before is answered"
    );
    assert!(
        stderr(&out).starts_with("error: stdin line 2: a line longer than 100 bytes"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_directory_given_as_data_is_named() {
    let dir = sample_dir();
    train_quick_model(dir.path(), "m.safetensors");
    fs::create_dir(dir.path().join("texts")).unwrap();
    fails(
        dir.path(),
        &["predict", "--model", "m.safetensors", "texts"],
        1,
        &["texts: a directory, not a file of texts"],
    );
    fails(
        dir.path(),
        &train_args("texts"),
        1,
        &["texts: a directory, not a data file"],
    );
}

#[test]
fn a_metrics_file_that_cannot_be_written_at_the_end_does_not_cost_the_model() {
    // The output folder is checked before training; here it is replaced by a file while the
    // run goes on, so that writing the metrics fails at the end. The model must be saved all
    // the same: the same bytes as the same run without --metrics.
    let dir = sample_dir();
    let mut reference = train_args("train.tsv");
    reference[4] = "reference.safetensors";
    reference[6] = "400";
    let flags = ["--quiet", "--valid-split", "0", "--batch", "1"];
    reference.extend(flags);
    ok(&reference, dir.path());
    fs::create_dir(dir.path().join("out")).unwrap();
    let mut args = train_args("train.tsv");
    args[6] = "400";
    args.extend(flags);
    args.extend(["--metrics", "out/m.csv"]);
    let child = Command::new(env!("CARGO_BIN_EXE_rnn"))
        .args(&args)
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // the run has started once its checkpoint or model appears
    let started = std::time::Instant::now();
    while !dir.path().join("o.safetensors").exists()
        && !dir.path().join("o.safetensors.ckpt").exists()
    {
        assert!(started.elapsed().as_secs() < 60, "the run never saved");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    fs::remove_dir(dir.path().join("out")).unwrap();
    fs::write(dir.path().join("out"), "a file now").unwrap();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the run ended before the swap? {err}"
    );
    assert!(err.contains("out/m.csv"), "{err}");
    assert_eq!(
        fs::read(dir.path().join("o.safetensors")).unwrap(),
        fs::read(dir.path().join("reference.safetensors")).unwrap(),
        "the trained model is saved before the metrics"
    );
}

#[test]
fn a_run_stopped_by_a_signal_while_it_saves_leaves_no_temporary_file() {
    // A model of 20,000 words as one-hot input: 20 MB, so that a save takes long enough to be
    // interrupted. SIGTERM and SIGINT at staggered moments, from before the first save to after
    // the last; every time, no `.tmp-` file may be left, and the model file, if any, loads.
    let dir = tempfile::tempdir().unwrap();
    let mut data = String::from("text\tlabel\n");
    for i in 0..20_000 {
        data.push_str(&format!("w{i} w{}\t{}\n", i + 1, ["a", "b"][i % 2]));
    }
    fs::write(dir.path().join("big.tsv"), data).unwrap();
    let args = [
        "train",
        "--train",
        "big.tsv",
        "--model",
        "m.safetensors",
        "--epochs",
        "3",
        "--embed",
        "0",
        "--min-count",
        "1",
        "--bidirectional",
        "false",
        "--quiet",
    ];
    for (i, signal) in ["TERM", "INT"].iter().cycle().take(16).enumerate() {
        let child = Command::new(env!("CARGO_BIN_EXE_rnn"))
            .args(args)
            .current_dir(dir.path())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(40 * i as u64));
        let killed = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        let mut child = child;
        let status = child.wait().unwrap();
        let left = listing(dir.path());
        assert!(
            !left
                .iter()
                .any(|n| n.starts_with(".tmp-") || n.ends_with(".lock")),
            "try {i} (SIG{signal}, {killed:?}, {status:?}) left {left:?}"
        );
        if dir.path().join("m.safetensors").exists() {
            ok(
                &["eval", "--model", "m.safetensors", "--data", "big.tsv"],
                dir.path(),
            );
        }
    }
}

#[test]
fn sizes_the_machine_cannot_hold_are_refused_before_any_work() {
    let dir = sample_dir();
    // 100,000 threads once took 11 minutes to start, then aborted
    let mut args = train_args("train.tsv");
    args.extend(["--threads", "100000"]);
    fails(
        dir.path(),
        &args,
        2,
        &["--threads", "100000 threads on a machine with"],
    );
    fails(
        dir.path(),
        &["serve", "--model", "m.safetensors", "--threads", "100000"],
        2,
        &["--threads", "at most"],
    );
    // a hidden size whose weights cannot fit once aborted on a failed allocation
    let mut args = train_args("train.tsv");
    args[8] = "1000000";
    fails(
        dir.path(),
        &args,
        1,
        &["H = 1000000", "TB of memory, and this machine has"],
    );
}

#[test]
fn an_output_that_names_an_input_is_refused_before_it_overwrites_it() {
    let dir = sample_dir();
    let before = fs::read(dir.path().join("train.tsv")).unwrap();
    let mut args = train_args("train.tsv");
    args[4] = "train.tsv";
    fails(
        dir.path(),
        &args,
        1,
        &["train.tsv: this is the data being read; writing the model there would overwrite it"],
    );
    let mut args = train_args("train.tsv");
    args.extend(["--test", "test.tsv", "--metrics", "./test.tsv"]);
    fails(
        dir.path(),
        &args,
        1,
        &["./test.tsv: this is the data being read"],
    );
    assert_eq!(fs::read(dir.path().join("train.tsv")).unwrap(), before);
}

#[test]
fn explain_says_when_it_shows_only_some_of_the_labels() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<(String, String)> = (0..8)
        .map(|i| (format!("word{i} thing"), format!("label{i}")))
        .collect();
    let refs: Vec<(&str, &str)> = rows.iter().map(|(t, l)| (t.as_str(), l.as_str())).collect();
    fs::write(dir.path().join("train.tsv"), tsv(&refs)).unwrap();
    train_quick_model(dir.path(), "m.safetensors");
    let out = ok(
        &["explain", "--model", "m.safetensors", "word3 thing"],
        dir.path(),
    );
    let text = stdout(&out);
    let header = text.lines().next().unwrap();
    assert_eq!(
        header.matches("label").count(),
        6 + 1,
        "6 columns and p(...): {header}"
    );
    assert!(
        text.ends_with("(the 6 labels most likely at the end, of 8; --json has them all)\n"),
        "{text}"
    );
    let json = last_json(&ok(
        &[
            "explain",
            "--model",
            "m.safetensors",
            "--json",
            "word3 thing",
        ],
        dir.path(),
    ));
    assert_eq!(json["labels"].as_array().unwrap().len(), 8);
}

#[test]
fn eval_reads_the_columns_the_model_was_trained_on() {
    let dir = sample_dir();
    let mut data = String::from("id,review,sentiment\n");
    for (i, (text, label)) in TRAIN.iter().enumerate() {
        data.push_str(&format!("{i},{text},{label}\n"));
    }
    fs::write(dir.path().join("reviews.csv"), &data).unwrap();
    let mut args = train_args("reviews.csv");
    args.extend([
        "--text-col",
        "review",
        "--label-col",
        "sentiment",
        "--quiet",
    ]);
    ok(&args, dir.path());
    let meta = contents(&dir.path().join("o.safetensors")).meta;
    assert_eq!(meta["text_col"], "review");
    assert_eq!(meta["label_col"], "sentiment");
    // no flags needed to evaluate on the same kind of file
    let out = ok(
        &["eval", "--model", "o.safetensors", "--data", "reviews.csv"],
        dir.path(),
    );
    assert!(stdout(&out).contains("50 examples"), "{}", stdout(&out));
    // flags still win, and a model of the default columns stores none
    fails(
        dir.path(),
        &[
            "eval",
            "--model",
            "o.safetensors",
            "--data",
            "reviews.csv",
            "--text-col",
            "text",
        ],
        1,
        &["no \"text\" column"],
    );
    train_quick_model(dir.path(), "plain.safetensors");
    let meta = contents(&dir.path().join("plain.safetensors")).meta;
    assert!(!meta.contains_key("text_col") && !meta.contains_key("label_col"));
}

#[test]
fn training_data_can_come_from_standard_input() {
    let dir = sample_dir();
    let tsv_data = fs::read(dir.path().join("train.tsv")).unwrap();
    let mut fasttext = String::new();
    for (text, label) in TRAIN {
        fasttext.push_str(&format!("__label__{label} {text}\n"));
    }
    let common = ["--epochs", "2", "--hidden", "8", "--quiet", "--json"];
    let mut from_file = vec![
        "train",
        "--train",
        "train.tsv",
        "--model",
        "file.safetensors",
    ];
    from_file.extend(common);
    ok(&from_file, dir.path());
    for (name, input, extra) in [
        (
            "tsv.safetensors",
            tsv_data.as_slice(),
            vec!["--format", "tsv"],
        ),
        ("ft.safetensors", fasttext.as_bytes(), vec![]),
    ] {
        let mut args = vec!["train", "--train", "-", "--model", name];
        args.extend(common);
        args.extend(extra);
        let out = rnn_with_stdin(&args, dir.path(), input);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        // the same rows give the same model as from the file
        assert_eq!(
            contents(&dir.path().join(name)),
            contents(&dir.path().join("file.safetensors")),
            "{name}"
        );
    }
    // a malformed line on stdin is named as such
    let out = rnn_with_stdin(
        &["train", "--train", "-", "--model", "x.safetensors"],
        dir.path(),
        b"__label__a fine\nno label here\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("stdin line 2: no __label__"),
        "{}",
        stderr(&out)
    );
}

/// Runs `args` in `dir`, which must end on its own within 10 s (a command that opens a FIFO
/// waits for a writer for ever), with exit 1 and `error` as its whole stderr.
fn fails_without_waiting(dir: &Path, args: &[&str], error: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rnn"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed().as_secs() >= 10 {
            child.kill().unwrap();
            panic!("{args:?} waited on a FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
    assert_eq!(stderr(&out), error, "{args:?}");
}

#[test]
fn a_fifo_given_as_the_model_or_the_data_is_refused_without_waiting_for_a_writer() {
    let dir = sample_dir();
    for fifo in ["fifo.safetensors", "fifo.tsv", "fifo.txt"] {
        let made = Command::new("mkfifo")
            .arg(dir.path().join(fifo))
            .status()
            .unwrap();
        assert!(made.success());
    }
    fails_without_waiting(
        dir.path(),
        &["predict", "--model", "fifo.safetensors"],
        "error: fifo.safetensors: not a regular file\n",
    );
    ok(
        &train_and_test("m.safetensors")
            .into_iter()
            .chain(["--epochs", "1", "--quiet"])
            .collect::<Vec<_>>(),
        dir.path(),
    );
    let not_regular = |name: &str| {
        format!(
            "error: {name}: not a regular file (a FIFO or a device); give a file, or `-` for \
             standard input\n"
        )
    };
    let cases: [&[&str]; 4] = [
        &["train", "--train", "fifo.tsv", "--model", "n.safetensors"],
        &["eval", "--model", "m.safetensors", "--data", "fifo.tsv"],
        &["predict", "--model", "m.safetensors", "fifo.txt"],
        &["lm", "--train", "fifo.txt", "--model", "l.safetensors"],
    ];
    for args in cases {
        let fifo = args.iter().find(|a| a.starts_with("fifo")).unwrap();
        fails_without_waiting(dir.path(), args, &not_regular(fifo));
    }
}

#[test]
fn a_second_run_to_the_same_model_is_refused_while_the_first_writes_it() {
    // Two runs given one --model overwrote each other's files, and the first to end removed
    // the other's checkpoint. The first run claims the files (m.safetensors.lock) until it ends.
    let dir = sample_dir();
    let first = Command::new(env!("CARGO_BIN_EXE_rnn"))
        .args(train_and_test("m.safetensors"))
        .args(["--epochs", "100000", "--patience", "0", "--quiet"])
        .current_dir(dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = dir.path().join("m.safetensors.lock");
    let started = std::time::Instant::now();
    while !lock.exists() {
        assert!(
            started.elapsed().as_secs() < 60,
            "the first run never claimed its files"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = rnn(&train_and_test("m.safetensors"), dir.path());
    let err = stderr(&second);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert_eq!(
        err.trim_end(),
        format!(
            "error: m.safetensors: another run (process {}) is writing this model; wait for it \
             to end, or choose another path (if no run is writing it, remove m.safetensors.lock)",
            first.id()
        )
    );
    // the first run is stopped as a user would (Ctrl-C): its files are its own, and its claim
    // is given back
    let mut first = first;
    Command::new("kill")
        .args(["-INT", &first.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(first.wait().unwrap().code(), Some(130));
    assert!(!lock.exists(), "the claim is given back when the run stops");
    ok(
        &["eval", "--model", "m.safetensors", "--data", "test.tsv"],
        dir.path(),
    );
    // and the files are free for the next run
    ok(&train_and_test("m.safetensors"), dir.path());
}

#[test]
fn a_chart_in_a_format_that_cannot_be_written_is_refused_before_any_work() {
    // it was reported after training, when the chart was drawn
    let dir = sample_dir();
    fs::write(
        dir.path().join("t.txt"),
        "the cat sat on the mat. ".repeat(50),
    )
    .unwrap();
    let says = |path: &str, given: &str| {
        format!(
            "error: cannot draw {path}: the image format follows the extension: .png, .jpg or \
             .bmp, {given}\n"
        )
    };
    let train = train_and_test("m.safetensors");
    let cases: [(Vec<&str>, &str, &str); 3] = [
        (
            [&train[..], &["--plot", "c.gif"]].concat(),
            "c.gif",
            "not .gif",
        ),
        (
            [&train[..], &["--plot", "curves"]].concat(),
            "curves",
            "and this path has none",
        ),
        (
            vec![
                "lm",
                "--train",
                "t.txt",
                "--model",
                "l.safetensors",
                "--plot",
                "c.GIF",
            ],
            "c.GIF",
            "not .gif",
        ),
    ];
    for (args, path, given) in &cases {
        let out = fails(dir.path(), args, 1, &[]);
        assert_eq!(stderr(&out), says(path, given), "{args:?}");
    }
    ok(
        &[&train[..], &["--epochs", "1", "--plot", "c.PNG"]].concat(),
        dir.path(),
    );
    let explain = [
        "explain",
        "--model",
        "m.safetensors",
        "--plot",
        "f.gif",
        "good",
    ];
    let out = fails(dir.path(), &explain, 1, &[]);
    assert_eq!(stderr(&out), says("f.gif", "not .gif"));
}

#[test]
fn pretrained_vectors_start_the_embedding_of_the_words_they_hold() {
    let dir = sample_dir();
    fs::write(
        dir.path().join("v.vec"),
        "3 4\nfood 1 2 3 4\ngood 0.5 0.5 0.5 0.5\nzebra 0 0 0 0\n",
    )
    .unwrap();
    let mut args = train_and_test("m.safetensors");
    args.extend(["--pretrained", "v.vec", "--epochs", "0"]);
    let out = ok(&args, dir.path());
    assert!(
        stderr(&out).starts_with("Pretrained vectors for 2 of "),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("from v.vec (3 words).\n"),
        "{}",
        stderr(&out)
    );
    // the embedding is as wide as the vectors, and their words' rows are the vectors
    let parts = common::read_parts(&dir.path().join("m.safetensors"));
    let vocab: Vec<String> = serde_json::from_str(&parts.meta["vocab"]).unwrap();
    let table = parts
        .tensors
        .iter()
        .find(|t| t.0 == "embedding.weight")
        .unwrap();
    assert_eq!(table.2, [vocab.len(), 4]);
    let row = |word: &str| -> Vec<f32> {
        let i = vocab.iter().position(|w| w == word).unwrap();
        table.3[16 * i..16 * (i + 1)]
            .chunks(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    assert_eq!(row("food"), [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(row("good"), [0.5; 4]);
    assert_ne!(row("the"), [0.0; 4], "drawn at random as usual");
    // and it trains from there
    let mut args = train_and_test("m.safetensors");
    args.extend(["--pretrained", "v.vec", "--epochs", "2", "--quiet"]);
    ok(&args, dir.path());

    // a width that does not fit, and malformed files, are errors naming the file and the line
    let mut args = train_and_test("n.safetensors");
    args.extend(["--pretrained", "v.vec", "--embed", "8"]);
    let out = fails(dir.path(), &args, 1, &[]);
    assert_eq!(
        stderr(&out),
        "error: --embed 8 does not fit v.vec, whose vectors have 4 numbers: give --embed 4, or \
         leave --embed out\n"
    );
    for (text, says) in [
        (
            "3 4\nfood 1 2 3 4\ngood 1 2 3\n",
            "error: bad.vec line 3: 3 numbers after the word, where the vectors have 4\n",
        ),
        (
            "food 1 2 3 4\ngood 1 two 3 4\n",
            "error: bad.vec line 2: \"two\" is not a number (a vector has 4 numbers after its \
             word)\n",
        ),
    ] {
        fs::write(dir.path().join("bad.vec"), text).unwrap();
        let mut args = train_and_test("n.safetensors");
        args.extend(["--pretrained", "bad.vec"]);
        let out = fails(dir.path(), &args, 1, &[]);
        assert_eq!(stderr(&out), says);
    }
}

#[test]
fn a_frozen_embedding_stays_as_it_started_while_the_rest_learns() {
    let dir = sample_dir();
    fs::write(
        dir.path().join("v.vec"),
        "food 1 2 3 4\ngood 0.5 0.5 0.5 0.5\n",
    )
    .unwrap();
    let tensors = |model: &str| -> BTreeMap<String, Vec<u8>> {
        common::read_parts(&dir.path().join(model))
            .tensors
            .into_iter()
            .map(|t| (t.0, t.3))
            .collect()
    };
    let run = |model: &str, extra: &[&str]| {
        let mut args = train_and_test(model);
        args.extend(["--pretrained", "v.vec", "--quiet", "--seed", "2"]);
        args.extend(extra);
        ok(&args, dir.path());
        tensors(model)
    };
    let start = run("start.safetensors", &["--epochs", "0"]);
    let frozen = run("frozen.safetensors", &["--epochs", "3", "--freeze-embed"]);
    let free = run("free.safetensors", &["--epochs", "3"]);
    assert_eq!(frozen["embedding.weight"], start["embedding.weight"]);
    assert_ne!(free["embedding.weight"], start["embedding.weight"]);
    for name in ["fc.weight", "rnn.weight_hh_l0"] {
        assert_ne!(frozen[name], start[name], "{name} learns");
    }
    // without an embedding there is nothing to freeze
    let mut args = train_and_test("n.safetensors");
    args.extend(["--embed", "0", "--freeze-embed"]);
    let out = fails(dir.path(), &args, 1, &[]);
    assert_eq!(
        stderr(&out),
        "error: --freeze-embed needs an embedding, and this network reads one-hot words \
         (--embed 0)\n"
    );
}
