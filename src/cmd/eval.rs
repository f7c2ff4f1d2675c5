//! `rnn eval`: score a model on labelled data: loss, accuracy, per-class precision, recall and
//! F1, and the confusion matrix.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use rnn::data::files::{self, Columns, Format, ReadOptions};
use rnn::lm::bits;
use rnn::model::{Evaluation, Model, Task};

use super::{json_number, percent};

/// Score a model on a labelled TSV, CSV or fastText file; or a language model on a text: its
/// loss, bits a token and perplexity.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The model file.
    #[arg(long)]
    model: PathBuf,
    /// Labelled data, in the same forms `rnn train` reads; for a language model, a UTF-8
    /// text (read as 32 streams side by side, in windows of 100 tokens).
    #[arg(long)]
    data: PathBuf,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// The header name of the text column [default: the one the model was trained on, or
    /// "text"].
    #[arg(long)]
    text_col: Option<String>,
    /// The header name of the label column [default: the one the model was trained on, or
    /// "label"].
    #[arg(long)]
    label_col: Option<String>,
    /// The longest row a data file may have, in bytes (a CSV record over several lines counts
    /// whole); a longer one is an error naming its line.
    #[arg(long, default_value_t = rnn::data::records::DEFAULT_MAX_BYTES, value_parser = super::at_least_one)]
    max_row_bytes: usize,
    /// The data's format, whatever the file's extension says (with `-`, standard input, the
    /// default is fasttext).
    #[arg(long, value_parser = clap::value_parser!(Format))]
    format: Option<Format>,
}

/// The streams and window a language model reads an evaluated text in.
const TEXT_STREAMS: usize = 32;
const TEXT_WINDOW: usize = 100;

pub fn run(args: EvalArgs) -> Result<()> {
    let model = Model::load(&args.model)?;
    let Task::Classifier { labels, columns } = &model.task else {
        return eval_text(&model, &args);
    };
    let reading = ReadOptions {
        columns: Columns {
            text: args
                .text_col
                .clone()
                .unwrap_or_else(|| columns.text.clone()),
            label: args
                .label_col
                .clone()
                .unwrap_or_else(|| columns.label.clone()),
        },
        max_row_bytes: args.max_row_bytes,
        format: args.format,
        shard: None,
    };
    let rows = files::read_rows(&args.data, &reading)?;
    let examples = model.examples(&rows, &args.data)?;
    let eval = model.evaluate(&examples)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        return print_json(&mut out, &eval, labels);
    }
    writeln!(
        out,
        "{}: {} examples, loss {:.4}, accuracy {}",
        args.data.display(),
        eval.n,
        eval.loss,
        percent(eval.accuracy)
    )?;
    print_report(&mut out, &eval, labels)
}

/// The evaluation as one JSON object: n, loss, accuracy, every class's scores, the confusion
/// matrix.
fn print_json(out: &mut impl Write, eval: &Evaluation, labels: &[String]) -> Result<()> {
    let classes: Vec<_> = labels
        .iter()
        .enumerate()
        .map(|(c, label)| {
            let s = eval.confusion.class_score(c);
            json!({
                "label": label,
                "precision": json_number(s.precision),
                "recall": json_number(s.recall),
                "f1": json_number(s.f1),
                "support": s.support,
            })
        })
        .collect();
    let matrix: Vec<&[usize]> = eval.confusion.rows().collect();
    let summary = json!({
        "n": eval.n,
        "loss": json_number(eval.loss),
        "accuracy": json_number(eval.accuracy),
        "classes": classes,
        "confusion": { "labels": labels, "matrix": matrix },
    });
    writeln!(out, "{summary}")?;
    Ok(())
}

/// Every class's precision, recall, F1 and support, their macro average, and the confusion
/// matrix, as tables.
fn print_report(out: &mut impl Write, eval: &Evaluation, labels: &[String]) -> Result<()> {
    let scores: Vec<_> = (0..labels.len())
        .map(|c| eval.confusion.class_score(c))
        .collect();
    let width = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .max(9);
    writeln!(out)?;
    writeln!(
        out,
        "{:<width$}  precision  recall      f1  support",
        "label"
    )?;
    for (label, s) in labels.iter().zip(&scores) {
        writeln!(
            out,
            "{label:<width$}  {:>9.3}  {:>6.3}  {:>6.3}  {:>7}",
            s.precision, s.recall, s.f1, s.support
        )?;
    }
    let macro_avg = |f: fn(&rnn::metrics::ClassScore) -> f32| {
        scores.iter().map(f).sum::<f32>() / scores.len() as f32
    };
    writeln!(
        out,
        "{:<width$}  {:>9.3}  {:>6.3}  {:>6.3}  {:>7}",
        "macro avg",
        macro_avg(|s| s.precision),
        macro_avg(|s| s.recall),
        macro_avg(|s| s.f1),
        eval.n
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "confusion matrix (rows: true label, columns: predicted)"
    )?;
    let cell = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    write!(out, "{:<width$}", "")?;
    for label in labels {
        write!(out, "  {label:>cell$}")?;
    }
    writeln!(out)?;
    for (label, row) in labels.iter().zip(eval.confusion.rows()) {
        write!(out, "{label:<width$}")?;
        for n in row {
            write!(out, "  {n:>cell$}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// `rnn eval` of a language model: the loss of predicting every token of the text from those
/// before it.
fn eval_text(model: &Model, args: &EvalArgs) -> Result<()> {
    let text = rnn::lm::corpus::read_text(&args.data)?;
    let ids = model.encode(&text);
    let Some(score) = model.evaluate_text(&ids, TEXT_STREAMS, TEXT_WINDOW)? else {
        anyhow::bail!(
            "{}: the text has {} tokens; scoring needs at least two",
            args.data.display(),
            ids.len()
        );
    };
    let unknown = model
        .vocab
        .unk()
        .map_or(0, |unk| ids.iter().filter(|&&t| t == unk).count());
    let mut out = std::io::stdout().lock();
    if args.json {
        let summary = json!({
            "tokens": ids.len(),
            "unknown_tokens": unknown,
            "loss": json_number(score.loss),
            "bits_per_token": json_number(bits(score.loss)),
            "perplexity": json_number(score.loss.exp()),
            "accuracy": json_number(score.accuracy),
        });
        writeln!(out, "{summary}")?;
        return Ok(());
    }
    let unit = if model.join().is_empty() {
        "character"
    } else {
        "word"
    };
    writeln!(
        out,
        "{} tokens ({unknown} unknown to the model)\nloss        {:.4} nats a {unit}\nbits        {:.4} a {unit}\nperplexity  {:.3}\naccuracy    {} of next {unit}s",
        ids.len(),
        score.loss,
        bits(score.loss),
        score.loss.exp(),
        percent(score.accuracy)
    )?;
    Ok(())
}
