//! `rnn predict`: label texts, one a line, from a file or a pipe, as they arrive.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Map, json};

use rnn::data::records::{Line, read_line, too_long};
use rnn::model::{Model, Prediction};

/// Predict the label of every line of a file or of standard input.
///
/// Prints `label<TAB>probability` a line. Lines in fastText's format have their `__label__`
/// tokens removed first, so a labelled file can be predicted as it is.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// The model file.
    #[arg(long)]
    model: PathBuf,
    /// Text file, one text a line; `-` or nothing for standard input.
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
    /// The longest line read, in bytes; a longer one is an error naming its line.
    #[arg(long, default_value_t = rnn::data::records::DEFAULT_MAX_BYTES, value_parser = super::at_least_one)]
    max_row_bytes: usize,
}

/// Lines predicted together at most (in parallel batches); from stdin, fewer when no more
/// input is waiting, so that a pipe gets each answer as soon as its line arrives.
const MAX_BATCH: usize = 1024;

pub fn run(args: PredictArgs) -> Result<()> {
    let model = Model::load(&args.model)?;
    // From a file, whole batches are read before predicting; from stdin (perhaps a person
    // typing, or a program waiting for each answer), whatever has arrived is predicted at once.
    let (reader, name, from_file): (Box<dyn Read>, String, bool) = match &args.input {
        None => (Box::new(std::io::stdin()), "stdin".into(), false),
        Some(p) if p == Path::new("-") => (Box::new(std::io::stdin()), "stdin".into(), false),
        Some(p) => {
            let file = File::open(p).with_context(|| p.display().to_string())?;
            if file.metadata().is_ok_and(|m| m.is_dir()) {
                bail!("{}: a directory, not a file of texts", p.display());
            }
            (Box::new(file), p.display().to_string(), true)
        }
    };
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut out = std::io::stdout().lock();
    let mut texts: Vec<String> = Vec::new();
    let mut line_number = 0;
    let mut bytes = Vec::new();
    loop {
        // Read one line (waiting for it), then every further line already buffered. A line
        // that cannot be read ends the run, after the lines before it are answered.
        texts.clear();
        let mut failure = None;
        loop {
            line_number += 1;
            match read_line(&mut reader, &mut bytes, args.max_row_bytes)
                .with_context(|| name.clone())?
            {
                Line::End => break,
                Line::Read => {}
                Line::TooLong => {
                    let cap = too_long(args.max_row_bytes);
                    failure = Some(format!("{name} line {line_number}: a line {cap}"));
                    break;
                }
            }
            let Ok(line) = std::str::from_utf8(&bytes) else {
                failure = Some(format!("{name} line {line_number}: invalid UTF-8"));
                break;
            };
            texts.push(strip_labels(line.trim_end_matches(['\n', '\r'])).to_string());
            let waiting = reader.buffer().contains(&b'\n');
            if texts.len() == MAX_BATCH || (!from_file && !waiting) {
                break;
            }
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        for p in model.predict(&refs) {
            let line = if args.fasttext {
                fasttext_line(&model, &p, args.k)
            } else {
                format_prediction(&model, &p, args.k, args.probs)
            };
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        if let Some(message) = failure {
            bail!(message);
        }
        if texts.is_empty() {
            return Ok(());
        }
    }
}

/// The text of a fastText line: without the `__label__…` tokens it starts with.
fn strip_labels(line: &str) -> &str {
    let mut rest = line.trim_start();
    while rest.starts_with("__label__") {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest
}

fn format_prediction(model: &Model, p: &Prediction, k: usize, probs: bool) -> String {
    if probs {
        let map: Map<String, serde_json::Value> = model
            .labels
            .iter()
            .zip(&p.probs)
            .map(|(l, &x)| (l.clone(), json!(super::json_number(x))))
            .collect();
        return json!({ "label": model.labels[p.label], "probs": map }).to_string();
    }
    p.top(k)
        .iter()
        .map(|&(c, x)| format!("{}\t{x:.6}", model.labels[c]))
        .collect::<Vec<_>>()
        .join("\t")
}

/// A prediction as fastText's `predict-prob` prints it: `__label__NAME p` for the `k` most
/// likely labels, separated by spaces.
fn fasttext_line(model: &Model, p: &Prediction, k: usize) -> String {
    p.top(k)
        .iter()
        .map(|&(c, x)| format!("__label__{} {x:.6}", model.labels[c]))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::strip_labels;

    #[test]
    fn fasttext_labels_are_stripped() {
        assert_eq!(strip_labels("__label__pos  very good"), "very good");
        assert_eq!(
            strip_labels("__label__a __label__b x __label__c"),
            "x __label__c"
        );
        assert_eq!(strip_labels("  plain text "), "plain text ");
        assert_eq!(strip_labels("__label__only"), "");
    }
}
