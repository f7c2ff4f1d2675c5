//! `rnn explain`: how the prediction evolves while the network reads a text, token by token.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use serde_json::json;

use rnn::model::{Explanation, Kind, Model};
use rnn::rnn::argmax;

/// Show the class probabilities after every token of a text, as if it stopped there.
///
/// After each token, the prediction is the model's prediction for the text up to and including
/// that token. A network that reads forwards only gets all of them in one pass; a
/// bidirectional one reads every such prefix again, both ways. So that its time does not grow
/// with the square of the length, the prefixes it reads hold at most 65,536 tokens together:
/// every prefix of a text of up to 361 tokens; of a longer one, as many as fit, ending at evenly
/// spaced tokens and at the last. The other tokens are shown without probabilities (null in
/// --json), and a line under the table says how many were evaluated.
///
/// The table shows at most 6 labels, those most likely after the last token, and says so when
/// there are more; `--json` has them all.
///
/// For a language model (`rnn lm`): the probability it gave each token of the text from the
/// ones before, and the tokens it expected next.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The model file.
    #[arg(long)]
    model: PathBuf,
    /// The text (several words may be given as separate arguments).
    #[arg(required = true)]
    text: Vec<String>,
    /// Print one JSON object: {"tokens": [...], "labels": [...], "probs": [[...], ...]}, one
    /// list of probabilities a token (null after a token where no evaluated prefix ends).
    #[arg(long)]
    json: bool,
    /// Also draw the hidden states, the probabilities and the gradient reaching each token
    /// into this PNG file, and say so on stderr (stdout keeps the table or the JSON). The
    /// states are the top layer's (for a bidirectional model the forward direction's units,
    /// then the backward direction's, which has read the text from its end back to the token);
    /// the gradient is the loss's with respect to them.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// With --plot: the label whose loss the gradient is for [default: the predicted one].
    #[arg(long, requires = "plot")]
    label: Option<String>,
}

/// At most this many label columns; with more labels, the ones most likely at the end.
const MAX_COLUMNS: usize = 6;
/// The width of the bar that shows the finally predicted label's probability.
const BAR: usize = 20;

pub fn run(args: ExplainArgs) -> Result<()> {
    if let Some(path) = &args.plot {
        rnn::fsutil::check_output(path)?;
        rnn::plot::check_path(path)?;
    }
    let text = args.text.join(" ");
    let model = Model::load(&args.model)?;
    match model.kind() {
        Kind::Classifier => {}
        Kind::LanguageModel if args.plot.is_some() => {
            anyhow::bail!("--plot draws a classifier's hidden states; this is a language model")
        }
        Kind::LanguageModel => return explain_text(&model, &text, args.json),
    }
    let explanation = match &args.plot {
        Some(path) => plot_flow(&model, &text, &args, path)?,
        None => model.explain(&text),
    };
    let Some(last) = explanation.probs.last() else {
        anyhow::bail!("the text has no tokens to read");
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let probs: Vec<Option<Vec<f64>>> = explanation
            .after_each_token()
            .into_iter()
            .map(|p| Some(p?.iter().map(|&x| super::json_number(x)).collect()))
            .collect();
        let mut summary = json!({
            "tokens": explanation.tokens,
            "labels": model.labels(),
            "probs": probs,
        });
        if let Some(wide) = &explanation.wide {
            let numbers = |v: &[f32]| v.iter().map(|&x| super::json_number(x)).collect::<Vec<_>>();
            summary["logits"] = json!(numbers(&wide.logits));
            summary["ngram_logits"] = json!(numbers(&wide.ngrams));
        }
        writeln!(out, "{summary}")?;
        return Ok(());
    }
    print_table(&mut out, model.labels(), &explanation, last)
}

/// `explain --plot`: the hidden states, probabilities and gradient norms of `text` drawn to
/// `path` (see [`rnn::plot::plot_flow`]); returns the explanation.
fn plot_flow(model: &Model, text: &str, args: &ExplainArgs, path: &Path) -> Result<Explanation> {
    let (explanation, target, flow) = model.flow(text, args.label.as_deref())?;
    let title = format!(
        "{} reading {} tokens; gradient of the loss for \"{}\"",
        args.model.file_name().unwrap_or_default().to_string_lossy(),
        explanation.tokens.len(),
        model.labels()[target]
    );
    rnn::plot::plot_flow(
        &explanation.tokens,
        model.labels(),
        target,
        &flow,
        &title,
        path,
    )?;
    eprintln!("Wrote {}", path.display());
    Ok(explanation)
}

/// The table of the probabilities after every token, for the labels most likely at the end
/// (`last`), with a bar for the predicted one.
fn print_table(
    out: &mut impl Write,
    labels: &[String],
    explanation: &Explanation,
    last: &[f32],
) -> Result<()> {
    let winner = argmax(last);
    let mut columns: Vec<usize> = (0..labels.len()).collect();
    columns.sort_by(|&a, &b| last[b].total_cmp(&last[a]));
    columns.truncate(MAX_COLUMNS);
    columns.sort_unstable();

    let token_width = explanation
        .tokens
        .iter()
        .map(|t| shown(t).chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let widths: Vec<usize> = columns
        .iter()
        .map(|&c| labels[c].chars().count().max(6))
        .collect();
    write!(out, "{:<token_width$}", "token")?;
    for (&c, w) in columns.iter().zip(&widths) {
        write!(out, "  {:>w$}", labels[c])?;
    }
    writeln!(out, "  p({})", labels[winner])?;
    for (token, probs) in explanation
        .tokens
        .iter()
        .zip(explanation.after_each_token())
    {
        write!(out, "{:<token_width$}", shown(token))?;
        let Some(probs) = probs else {
            // no prefix ends here: nothing to show, rather than a number made up
            writeln!(out)?;
            continue;
        };
        for (&c, w) in columns.iter().zip(&widths) {
            write!(out, "  {:>w$.3}", probs[c])?;
        }
        let filled = (probs[winner] * BAR as f32).round() as usize;
        writeln!(
            out,
            "  {}{}",
            "█".repeat(filled),
            "·".repeat(BAR - filled.min(BAR))
        )?;
    }
    writeln!(out, "prediction: {} ({:.3})", labels[winner], last[winner])?;
    if let Some(wide) = &explanation.wide {
        // how much of the winner's lead over the runner-up the n-grams gave
        let runner_up = (0..labels.len())
            .filter(|&c| c != winner)
            .max_by(|&a, &b| wide.logits[a].total_cmp(&wide.logits[b]));
        if let Some(second) = runner_up {
            let lead = wide.logits[winner] - wide.logits[second];
            let from_ngrams = wide.ngrams[winner] - wide.ngrams[second];
            writeln!(
                out,
                "n-grams: {from_ngrams:+.3} of its lead of {lead:.3} over {} in score (the \
                 recurrent network: {:+.3})",
                labels[second],
                lead - from_ngrams
            )?;
        }
    }
    if !explanation.is_complete() {
        writeln!(
            out,
            "(probabilities after {} of the {} tokens, evenly spaced, and the last: the \
             network reads both ways, so each is the text read again up to there)",
            explanation.ends.len(),
            explanation.tokens.len()
        )?;
    }
    if labels.len() > MAX_COLUMNS {
        writeln!(
            out,
            "(the {MAX_COLUMNS} labels most likely at the end, of {}; --json has them all)",
            labels.len()
        )?;
    }
    Ok(())
}

/// A token as printed: white space made visible (character models read spaces too).
fn shown(token: &str) -> String {
    token
        .chars()
        .map(|c| match c {
            ' ' => '␣',
            '\t' => '→',
            c if c.is_control() => '�',
            c => c,
        })
        .collect()
}

/// The likeliest next tokens shown for a language model.
const NEXT: usize = 3;

/// `rnn explain` of a language model: each token, the probability the model gave it, and the
/// tokens it expected after it.
fn explain_text(model: &Model, text: &str, json: bool) -> Result<()> {
    let steps = model.next_tokens(text, NEXT)?;
    if steps.is_empty() {
        anyhow::bail!("the text has no tokens");
    }
    let shown = |id: u32| format!("{:?}", model.token(id));
    let mut out = std::io::stdout().lock();
    if json {
        let value = json!({
            "tokens": steps.iter().map(|s| model.token(s.token)).collect::<Vec<_>>(),
            "p": steps.iter().map(|s| s.p.map(super::json_number)).collect::<Vec<_>>(),
            "next": steps.iter().map(|s| s.next.iter().map(|&(t, p)| json!([model.token(t), super::json_number(p)])).collect::<Vec<_>>()).collect::<Vec<_>>(),
        });
        writeln!(out, "{value}")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<10} {:>7}  {:<BAR$}  expected next",
        "token", "p", ""
    )?;
    for s in &steps {
        let (p, bar) = match s.p {
            Some(p) => (
                format!("{:.3}", p),
                "#".repeat((p * BAR as f32).round() as usize),
            ),
            None => ("".to_string(), String::new()),
        };
        let next: Vec<String> = s
            .next
            .iter()
            .map(|&(t, p)| format!("{} {:.2}", shown(t), p))
            .collect();
        writeln!(
            out,
            "{:<10} {p:>7}  {bar:<BAR$}  {}",
            shown(s.token),
            next.join("  ")
        )?;
    }
    Ok(())
}
