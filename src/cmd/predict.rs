//! `rnn predict`: label the texts of a file or a pipe, as they arrive.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use serde_json::{Map, json};

use rnn::data::files::{Format, Texts};
use rnn::model::{Kind, Model, Prediction};

/// Predict the label of every text of a file or of standard input.
///
/// Reads what `rnn train` and `rnn eval` read, without needing the labels: a `.tsv` or `.csv`
/// file with a header row gives the texts of its text column (a label column is ignored, and
/// may be absent), one answer a row; any other file, and standard input, is one text a line
/// (the `__label__` tokens of fastText's format removed first), one answer a line, blank lines
/// included. `--format` overrides the extension.
///
/// Prints `label<TAB>probability` a text.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// The model file.
    #[arg(long)]
    model: PathBuf,
    /// The texts: a .tsv or .csv file with a header, or one text a line (any other extension);
    /// `-` or nothing for standard input, one text a line.
    input: Option<PathBuf>,
    /// Print the K most likely labels, each followed by its probability.
    #[arg(short = 'k', long = "top", default_value_t = 1, value_parser = super::at_least_one)]
    k: usize,
    /// Print one JSON object a line: {"label": ..., "probs": {label: probability, ...}}.
    #[arg(long, conflicts_with = "k")]
    probs: bool,
    /// Print as fastText's `predict-prob` does: `__label__NAME probability` pairs separated by
    /// spaces (with -k, the K most likely).
    #[arg(long, conflicts_with = "probs")]
    fasttext: bool,
    /// The header name of the text column of a TSV or CSV file [default: the one the model was
    /// trained on, or "text"].
    #[arg(long)]
    text_col: Option<String>,
    /// The input's format, whatever the file's extension says: tsv or csv (with a header row),
    /// or fasttext (one text a line) [default: by the extension; for standard input, one text
    /// a line].
    #[arg(long, value_parser = clap::value_parser!(Format))]
    format: Option<Format>,
    /// The longest line (or CSV record) read, in bytes; a longer one is an error naming its
    /// line.
    #[arg(long, default_value_t = rnn::data::records::DEFAULT_MAX_BYTES, value_parser = super::at_least_one)]
    max_row_bytes: usize,
}

/// Texts predicted together at most (in parallel batches); from stdin, fewer when no more
/// input is waiting, so that a pipe gets each answer as soon as its line arrives.
const MAX_BATCH: usize = 1024;

pub fn run(args: PredictArgs) -> Result<()> {
    let model = Model::load_as(&args.model, Kind::Classifier)?;
    // From a file, whole batches are read before predicting; from stdin (perhaps a person
    // typing, or a program waiting for each answer), whatever has arrived is predicted at once.
    let (reader, name, from_file): (Box<dyn Read>, PathBuf, bool) = match &args.input {
        None => (Box::new(std::io::stdin()), "stdin".into(), false),
        Some(p) if p == Path::new("-") => (Box::new(std::io::stdin()), "stdin".into(), false),
        Some(p) => {
            let file = rnn::fsutil::open_regular(p, "a file of texts")?;
            (Box::new(file), p.clone(), true)
        }
    };
    let format = match (args.format, from_file) {
        (Some(format), _) => format,
        (None, true) => Format::of(&name),
        (None, false) => Format::FastText,
    };
    // a classifier's (load_as checked the kind), which always has its columns
    let trained = model.columns().cloned().unwrap_or_default();
    let text_col = args.text_col.as_deref().unwrap_or(&trained.text);
    let mut texts = Texts::new(reader, format, &name, text_col, args.max_row_bytes)?;
    let mut out = std::io::stdout().lock();
    let mut batch: Vec<String> = Vec::new();
    loop {
        // Read one text (waiting for it), then every further one already buffered. A text
        // that cannot be read ends the run, after the texts before it are answered.
        batch.clear();
        let mut failure = None;
        while let Some(text) = texts.next() {
            match text {
                Ok((_, text)) => batch.push(text),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
            if batch.len() == MAX_BATCH || (!from_file && !texts.waiting()) {
                break;
            }
        }
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        for p in model.predict(&refs)? {
            let line = if args.fasttext {
                fasttext_line(&model, &p, args.k)
            } else {
                format_prediction(&model, &p, args.k, args.probs)
            };
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        if batch.is_empty() {
            return Ok(());
        }
    }
}

fn format_prediction(model: &Model, p: &Prediction, k: usize, probs: bool) -> String {
    if probs {
        let map: Map<String, serde_json::Value> = model
            .labels()
            .iter()
            .zip(&p.probs)
            .map(|(l, &x)| (l.clone(), json!(super::json_number(x))))
            .collect();
        return json!({ "label": model.labels()[p.label], "probs": map }).to_string();
    }
    p.top(k)
        .iter()
        .map(|&(c, x)| format!("{}\t{x:.6}", model.labels()[c]))
        .collect::<Vec<_>>()
        .join("\t")
}

/// A prediction as fastText's `predict-prob` prints it: `__label__NAME p` for the `k` most
/// likely labels, separated by spaces.
fn fasttext_line(model: &Model, p: &Prediction, k: usize) -> String {
    p.top(k)
        .iter()
        .map(|&(c, x)| format!("__label__{} {x:.6}", model.labels()[c]))
        .collect::<Vec<_>>()
        .join(" ")
}
