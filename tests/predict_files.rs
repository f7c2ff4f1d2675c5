//! `rnn predict` on the files `rnn train` and `rnn eval` read (issue 27): a TSV or CSV file
//! gives one answer a data row, for the text column alone (the header is no text, the label
//! is no part of it), while standard input and other files stay one text a line.

use std::fs;
use std::path::Path;

mod common;

use common::{rnn_with_stdin as rnn, seed_setup_with_cell};
use rnn::data::sample::{TEST, TRAIN};

/// The stdout of a run that must succeed without a word on stderr.
fn ok(args: &[&str], dir: &Path, input: &[u8]) -> String {
    let out = rnn(args, dir, input);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {err}");
    assert!(err.is_empty(), "{args:?}: {err}");
    String::from_utf8(out.stdout).unwrap()
}

/// The stderr of a run that must fail with exit code 1, and print nothing on stdout.
fn fails(args: &[&str], dir: &Path, input: &[u8]) -> String {
    let out = rnn(args, dir, input);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{args:?}");
    err
}

/// A folder with the sample's training rows as `train.tsv` and a barely trained model of the
/// seed's network, `m.safetensors`: its answers differ from text to text, which is all the
/// tests need.
fn trained() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut train = String::from("text\tlabel\n");
    for (text, label) in TRAIN {
        train.push_str(&format!("{text}\t{label}\n"));
    }
    fs::write(dir.path().join("train.tsv"), train).unwrap();
    let mut args = vec!["train", "--train", "train.tsv", "--model", "m.safetensors"];
    args.extend(["--epochs", "3", "--hidden", "8", "--quiet"]);
    args.extend(seed_setup_with_cell("rnn"));
    ok(&args, dir.path(), b"");
    dir
}

/// `rnn predict --probs` of `texts` given one a line on standard input: the reference every
/// file is compared with.
fn predicted_alone(dir: &Path, texts: &[&str]) -> Vec<String> {
    let input = texts.join("\n") + "\n";
    let out = ok(
        &["predict", "--model", "m.safetensors", "--probs"],
        dir,
        input.as_bytes(),
    );
    out.lines().map(str::to_string).collect()
}

/// `rnn predict --probs` of `file` (and more flags), a line an answer.
fn predicted(dir: &Path, file: &str, flags: &[&str]) -> Vec<String> {
    let mut args = vec!["predict", "--model", "m.safetensors", "--probs", file];
    args.extend(flags);
    ok(&args, dir, b"").lines().map(str::to_string).collect()
}

#[test]
fn a_tsv_with_a_header_and_labels_gives_one_answer_a_row_for_its_texts_alone() {
    // Before issue 27 the header was a text, and every row's label part of its text: 26
    // answers for 25 rows, none of them for the text alone.
    let dir = trained();
    let d = dir.path();
    let texts: Vec<&str> = TEST.iter().map(|(t, _)| *t).collect();
    let alone = predicted_alone(d, &texts);
    assert_eq!(alone.len(), 25);
    let distinct: std::collections::BTreeSet<&String> = alone.iter().collect();
    assert!(distinct.len() > 1, "the texts' answers differ: {alone:?}");

    let mut tsv = String::from("id\ttext\tlabel\n");
    for (i, (text, label)) in TEST.iter().enumerate() {
        tsv.push_str(&format!("{i}\t{text}\t{label}\n"));
        if i == 3 {
            tsv.push('\n'); // a blank line is no row
        }
    }
    fs::write(d.join("test.tsv"), &tsv).unwrap();
    assert_eq!(predicted(d, "test.tsv", &[]), alone);

    // The same rows as CSV, the label first, with quoting; and with no label column at all.
    let mut csv = String::from("label,text\r\n");
    let mut unlabelled = String::from("text\n");
    for (text, label) in TEST {
        csv.push_str(&format!("{label},\"{text}\"\r\n"));
        unlabelled.push_str(&format!("{text}\n"));
    }
    fs::write(d.join("test.csv"), &csv).unwrap();
    assert_eq!(predicted(d, "test.csv", &[]), alone);
    fs::write(d.join("texts.tsv"), &unlabelled).unwrap();
    assert_eq!(predicted(d, "texts.tsv", &[]), alone);

    // --format overrides the extension, and reads standard input as TSV too.
    fs::write(d.join("test.data"), &tsv).unwrap();
    assert_eq!(predicted(d, "test.data", &["--format", "tsv"]), alone);
    let args = [
        "predict",
        "--model",
        "m.safetensors",
        "--probs",
        "--format",
        "tsv",
    ];
    let piped = ok(&args, d, tsv.as_bytes());
    assert_eq!(piped.lines().collect::<Vec<_>>(), alone);
    // ... and reads a TSV file as one text a line when asked to: the header is a text then.
    let lines = predicted(d, "texts.tsv", &["--format", "fasttext"]);
    assert_eq!(lines.len(), 26);
    assert_eq!(lines[1..], alone[..]);
}

#[test]
fn the_text_column_is_the_models_unless_text_col_names_another() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut train = String::from("review\tsentiment\n");
    for (text, label) in TRAIN {
        train.push_str(&format!("{text}\t{label}\n"));
    }
    fs::write(d.join("train.tsv"), &train).unwrap();
    let mut args = vec!["train", "--train", "train.tsv", "--model", "m.safetensors"];
    args.extend(["--text-col", "review", "--label-col", "sentiment"]);
    args.extend(["--epochs", "3", "--hidden", "8", "--quiet"]);
    args.extend(seed_setup_with_cell("rnn"));
    ok(&args, d, b"");
    let texts: Vec<&str> = TRAIN.iter().map(|(t, _)| *t).collect();
    let alone = predicted_alone(d, &texts);
    // The model was trained on the column "review": predict reads it without a flag.
    assert_eq!(predicted(d, "train.tsv", &[]), alone);

    // Another file's column is named with --text-col; the label column is not needed.
    let mut other = String::from("body\tsource\n");
    for text in &texts {
        other.push_str(&format!("{text}\tweb\n"));
    }
    fs::write(d.join("other.tsv"), &other).unwrap();
    assert_eq!(predicted(d, "other.tsv", &["--text-col", "body"]), alone);
    let err = fails(
        &["predict", "--model", "m.safetensors", "other.tsv"],
        d,
        b"",
    );
    assert_eq!(
        err,
        "error: other.tsv line 1: the header has no \"review\" column (it has: body, source); \
         pick one with --text-col\n"
    );
}

#[test]
fn standard_input_and_text_files_stay_one_text_a_line() {
    // The README's examples: `printf '...' | rnn predict --model M` and a file of texts, with a
    // fastText label and a blank line, each a line of input and a line of output.
    let dir = trained();
    let d = dir.path();
    let texts = [
        "the food was not bad",
        "",
        "it was great at first but awful now",
    ];
    let alone = predicted_alone(d, &texts);
    assert_eq!(alone.len(), 3);
    fs::write(
        d.join("texts.txt"),
        "the food was not bad\n\n__label__negative it was great at first but awful now\n",
    )
    .unwrap();
    assert_eq!(predicted(d, "texts.txt", &[]), alone);
    // A comma or a tab in a line is part of the text.
    let out = ok(
        &["predict", "--model", "m.safetensors"],
        d,
        b"text,label\ngood\tpositive\n",
    );
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn malformed_files_get_messages_that_say_what_to_do() {
    // Issue 27: each of these was a bare "line 1: no __label__ ...", "the header has no
    // "text" column (it has: <the whole first row>)" or "expected 2 fields, found 3".
    let dir = trained();
    let d = dir.path();
    let tsv = "text\tlabel\nit was good\tpositive\nit was bad\tnegative\n";
    fs::write(d.join("data.txt"), tsv).unwrap();
    let err = fails(
        &["train", "--train", "data.txt", "--model", "o.safetensors"],
        d,
        b"",
    );
    assert_eq!(
        err,
        "error: data.txt line 1: no __label__ at the start of the line: the file is read in \
         fastText's format (`__label__NAME text` a line) because its name does not end in .tsv \
         or .csv; the line has tabs: for a TSV file, use --format tsv\n"
    );
    assert!(!d.join("o.safetensors").exists());
    // The advice works.
    let args = ["eval", "--model", "m.safetensors", "--data", "data.txt"];
    let err = fails(&args, d, b"");
    assert!(err.contains("use --format tsv"), "{err}");
    ok(&[&args[..], &["--format", "tsv"]].concat(), d, b"");

    // Standard input is fastText's format unless told otherwise.
    let args = ["eval", "--model", "m.safetensors", "--data", "-"];
    assert_eq!(
        fails(&args, d, b"text,label\nit was good,positive\n"),
        "error: stdin line 1: no __label__ at the start of the line: standard input is read in \
         fastText's format (`__label__NAME text` a line) by default; the line has commas: for a \
         CSV file, use --format csv\n"
    );

    // A TSV file without a header, in eval and in predict.
    fs::write(
        d.join("headless.tsv"),
        "it was good\tpositive\nit was bad\tnegative\n",
    )
    .unwrap();
    let err = fails(
        &["eval", "--model", "m.safetensors", "--data", "headless.tsv"],
        d,
        b"",
    );
    assert_eq!(
        err,
        "error: headless.tsv line 1: the first row, \"it was good\\tpositive\", looks like data, \
         not a header naming the columns; add the line \"text<TAB>label\" at the top (or, if it \
         is the header, pick the columns with --text-col and --label-col)\n"
    );
    let err = fails(
        &["predict", "--model", "m.safetensors", "headless.tsv"],
        d,
        b"",
    );
    assert!(
        err.contains("looks like data") && err.ends_with("pick the columns with --text-col)\n"),
        "{err}"
    );

    // An unquoted comma in a CSV text.
    fs::write(
        d.join("comma.csv"),
        "text,label\nit was good, really,positive\n",
    )
    .unwrap();
    let err = fails(
        &["eval", "--model", "m.safetensors", "--data", "comma.csv"],
        d,
        b"",
    );
    assert_eq!(
        err,
        "error: comma.csv line 2: expected 2 fields, found 3; a field that holds a comma must \
         be in double quotes (\"good, really\"), or the file written as TSV\n"
    );
}
