//! `rnn lm`: train a language model on plain text and save it as a model file.
//!
//! The command reads the text, builds the model, and hands both to the library's trainer for
//! texts (`rnn::train::text`), which owns the windows, validation, early stopping and the
//! run's state. What stays here is what a command line adds: flags, files, the progress
//! display, and writing the model and the checkpoint as the run goes.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use serde_json::json;

use rnn::checkpoint::{self, RunFiles};
use rnn::data::Tokens;
use rnn::lm::bits;
use rnn::lm::corpus::{self, DEFAULT_VALID_FRACTION};
use rnn::lm::recipe::{self, MODEL_DEFAULTS, PreparedText, TextRecipe, TextStart};
use rnn::metrics::Score;
use rnn::model::{Initializer, ModelConfig};
use rnn::optim::OptimizerKind;
use rnn::rnn::CellKind;
use rnn::train::text::TextConfig;
use rnn::train::{LrSchedule, TrainReport};

use super::outputs::{self, RunOutputs, file_name};
use super::progress::Progress;
use super::{at_least_one, dropout_probability, json_number, positive_number};

/// Train a language model on plain text: it learns to predict the next character (or word),
/// and `rnn generate` then writes text with it.
///
/// The text is read as `--batch` streams side by side, in windows of `--bptt` steps, the state
/// carried from one window to the next (truncated backpropagation through time, as char-rnn).
/// The last part of the text (--valid-fraction) picks the best epoch and stops the run when it
/// no longer improves; the model file holds the best epoch's weights.
#[derive(Args, Debug)]
pub struct LmArgs {
    /// The training text: one or more UTF-8 files, read one after the other (`-` is standard
    /// input).
    #[arg(long, num_args = 1.., required = true)]
    train: Vec<PathBuf>,
    /// A validation text [default: the last --valid-fraction of the training text].
    #[arg(long)]
    valid: Option<PathBuf>,
    /// Without --valid, the share of the text, at its end, held out for validation; 0 holds
    /// out nothing (then every epoch runs and the last is kept).
    #[arg(long, default_value_t = DEFAULT_VALID_FRACTION, value_parser = fraction, allow_negative_numbers = true, conflicts_with = "valid")]
    valid_fraction: f64,
    /// Where to save the model (.safetensors, loadable by PyTorch).
    #[arg(long)]
    model: PathBuf,
    /// The recurrent cell: rnn (Elman, tanh), gru or lstm.
    #[arg(long, default_value_t = MODEL_DEFAULTS.cell, conflicts_with = "resume")]
    cell: CellKind,
    /// How text becomes tokens: char (every character, white space and case kept), word or
    /// wordpunct (lowercased words; generated text has them joined by spaces).
    #[arg(long, default_value_t = Tokens::Char, conflicts_with = "resume")]
    tokens: Tokens,
    /// Hidden units (H) of every layer.
    #[arg(long, default_value_t = MODEL_DEFAULTS.hidden, value_parser = at_least_one, conflicts_with = "resume")]
    hidden: usize,
    /// Stacked recurrent layers (L).
    #[arg(long, default_value_t = MODEL_DEFAULTS.layers, value_parser = at_least_one, conflicts_with = "resume")]
    layers: usize,
    /// A learnt embedding of E floats a token in front of the first layer; 0 for none (one-hot
    /// input, as char-rnn).
    #[arg(long, default_value_t = 0, conflicts_with = "resume")]
    embed: usize,
    /// Start the embedding of every vocabulary token found in this file of word vectors, in
    /// the `.vec` text format of fastText and GloVe; --embed is their dimension by default.
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    pretrained: Option<PathBuf>,
    /// Keep the embedding as it starts (with --pretrained, the vectors): only the rest of the
    /// network learns.
    #[arg(long, conflicts_with = "resume")]
    freeze_embed: bool,
    /// Dropout probability in training, between layers and before the output layer.
    #[arg(long, default_value_t = 0.0, value_parser = dropout_probability, allow_negative_numbers = true, conflicts_with = "resume")]
    dropout: f32,
    /// Tokens seen fewer times in the training text become <unk>.
    #[arg(long, default_value_t = 1, value_parser = at_least_one, conflicts_with = "resume")]
    min_count: usize,
    /// Keep only the N most frequent tokens; the others become <unk>.
    #[arg(long, value_parser = at_least_one, conflicts_with = "resume")]
    max_vocab: Option<usize>,
    /// Steps a window (T): how far back a gradient reaches.
    #[arg(long, default_value_t = TextConfig::default().bptt, value_parser = at_least_one, conflicts_with = "resume")]
    bptt: usize,
    /// Streams read side by side (B): the text is cut into this many parts.
    #[arg(long, default_value_t = TextRecipe::default().batch, value_parser = at_least_one, conflicts_with = "resume")]
    batch: usize,
    /// Passes over the text, at most: --patience may stop the run sooner.
    #[arg(long, default_value_t = TextRecipe::default().epochs)]
    epochs: usize,
    /// Stop after the window in which training has taken this many seconds, and score that
    /// epoch as the last.
    #[arg(long, value_parser = seconds)]
    max_seconds: Option<f64>,
    /// Stop after this many epochs in a row without a lower validation loss; 0 never stops
    /// early.
    #[arg(long, default_value_t = TextRecipe::default().patience, conflicts_with = "resume")]
    patience: usize,
    /// Update rule: adam, sgd, or adagrad (min-char-rnn's).
    #[arg(long, default_value_t = OptimizerKind::Adam, conflicts_with = "resume")]
    optimizer: OptimizerKind,
    /// Learning rate [default: 0.002 for adam, 0.02 for sgd, 0.1 for adagrad].
    #[arg(long, value_parser = positive_number, allow_negative_numbers = true, conflicts_with = "resume")]
    lr: Option<f32>,
    /// How the learning rate changes: constant, or plateau (halved after 2 epochs without a
    /// lower validation loss).
    #[arg(long, default_value_t = LrSchedule::Constant, conflicts_with = "resume")]
    schedule: LrSchedule,
    /// Gradients are clipped element-wise to [-clip, clip].
    #[arg(long, default_value_t = TextRecipe::default().clip, value_parser = positive_number, allow_negative_numbers = true, conflicts_with = "resume")]
    clip: f32,
    /// How the weights start: pytorch or numpy (every weight N(0, 1)/1000, every bias 0).
    #[arg(long, default_value_t = Initializer::PyTorch, conflicts_with = "resume")]
    initializer: Initializer,
    /// Seed of the initial weights and the dropout.
    #[arg(long, default_value_t = 0, conflicts_with = "resume")]
    seed: u64,
    /// Continue the run whose checkpoint this is (MODEL.ckpt), with its settings; give the
    /// same text. --epochs may raise the limit.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Keep the checkpoint (MODEL.ckpt) after the run ends.
    #[arg(long)]
    keep_checkpoint: bool,
    /// Threads that share each window's streams [default: one per core].
    #[arg(long, value_parser = super::thread_count)]
    threads: Option<usize>,
    #[command(flatten)]
    output: RunOutputs,
}

/// Parses a fraction in `[0, 1)` (`--valid-fraction`).
fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..1.0).contains(&f) => Ok(f),
        Ok(_) => Err("must be at least 0 and less than 1".into()),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// Parses a number of seconds (`--max-seconds`).
fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        Ok(_) => Err("must be a number of seconds, 0 or more".into()),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

/// The recipe that `args` give for a new run (see [`TextRecipe`]).
fn recipe_of(args: &LmArgs) -> TextRecipe {
    TextRecipe {
        model: ModelConfig {
            cell: args.cell,
            hidden: args.hidden,
            layers: args.layers,
            embed: (args.embed > 0).then_some(args.embed),
            dropout: args.dropout,
            tokens: args.tokens,
            min_count: args.min_count,
            max_vocab: args.max_vocab,
            initializer: args.initializer,
            seed: args.seed,
            ..MODEL_DEFAULTS
        },
        valid_fraction: args.valid_fraction,
        bptt: args.bptt,
        batch: args.batch,
        epochs: args.epochs,
        patience: args.patience,
        optimizer: args.optimizer,
        lr: args.lr,
        schedule: args.schedule,
        clip: args.clip,
        threads: args.threads.unwrap_or(0),
        max_seconds: args.max_seconds,
    }
}

pub fn run(mut args: LmArgs) -> Result<()> {
    let files = RunFiles::beside(&args.model, args.keep_checkpoint);
    let inputs: Vec<&Path> = args
        .train
        .iter()
        .chain(&args.valid)
        .map(PathBuf::as_path)
        .collect();
    let written = args.output.written();
    outputs::prepare_run(&files, &inputs, written, args.epochs, args.output.quiet)?;
    let checkpoint = args.resume.as_deref().map(checkpoint::load).transpose()?;
    let resumed_after = checkpoint.as_ref().map(|c| c.state.epoch);
    let start = match (checkpoint, &args.resume) {
        (Some(checkpoint), Some(path)) => TextStart::Resume {
            checkpoint: Box::new(checkpoint),
            path: path.clone(),
            epochs: args.epochs,
            threads: args.threads,
        },
        _ => TextStart::New,
    };
    if let Some(path) = &args.pretrained
        && args.embed == 0
    {
        args.embed = rnn::data::vectors::dimension(path)?;
    }
    let recipe = recipe_of(&args);
    let notes = start.notes(&recipe, args.valid.is_some())?;
    let whole = corpus::read_texts(&args.train)?;
    let names: Vec<String> = args.train.iter().map(|p| p.display().to_string()).collect();
    let names = names.join(", ");
    let valid_text = args.valid.as_deref().map(corpus::read_text).transpose()?;
    let valid = valid_text.as_deref();
    let mut run = recipe::prepare_run(start, &recipe, notes, &whole, valid, Some(&names))?;
    drop((whole, valid_text));
    let vectors = args.pretrained.as_deref();
    let found = run.start_embedding(vectors, args.freeze_embed)?;
    super::tell_vectors(found, &run.model.vocab, vectors, args.output.quiet);
    let signals = super::StopAtSignals::start();
    if !args.output.quiet {
        print_banner(&run, &names)?;
    }
    let (config, text) = (run.config.clone(), run.text);
    let train_tokens = run.texts(None).train.len();
    let tokens_per_epoch = train_tokens.saturating_sub(1) / config.batch * config.batch;
    let progress = Progress::for_text(config.epochs, tokens_per_epoch, args.output.quiet);
    let stop = Some(&super::STOP);
    let (result, seconds) = progress.show(&[], |on_event| run.run(Some(files), stop, on_event));
    drop(signals);
    let report = result?;
    let title = || {
        let (arch, optimizer) = (run.model.network.arch(), config.optimizer.name());
        let (lr, bptt, batch) = (config.lr, text.bptt, config.batch);
        let train = file_name(&args.train[0]);
        format!("{train}: {arch}, {optimizer} lr = {lr}, bptt {bptt}, batch {batch}")
    };
    let history = || outputs::write_history(&report.history, &[], written.0, written.1, title);
    super::end_history::<LmArgs>("lm", &report, &args.model, history)?;
    let valid = run
        .model
        .evaluate_text(run.texts(None).valid, config.batch, text.bptt)?;
    print_summary(
        &args,
        &report,
        (seconds, resumed_after),
        valid,
        run.model.vocab.len(),
    )
}

fn print_banner(run: &PreparedText, names: &str) -> Result<()> {
    let texts = run.texts(None);
    writeln!(
        std::io::stdout().lock(),
        "Training the language model ({}; V = {} tokens) on {} tokens of {names}{}, in {} \
         streams of windows of {} steps.",
        run.model.network.arch(),
        run.model.vocab.len(),
        texts.train.len(),
        if texts.valid.is_empty() {
            String::new()
        } else {
            format!(", validating on {}", texts.valid.len())
        },
        run.config.batch,
        run.text.bptt,
    )?;
    Ok(())
}

fn print_summary(
    args: &LmArgs,
    report: &TrainReport,
    (seconds, resumed_after): (f64, Option<usize>),
    valid: Option<Score>,
    vocab: usize,
) -> Result<()> {
    let epochs = report.history.last().map_or(0, |m| m.epoch);
    let mut out = std::io::stdout().lock();
    if !args.output.quiet {
        let run = (seconds, resumed_after);
        super::write_trained(&mut out, report, run, ("lower validation loss", "text"))?;
        if let Some(v) = valid {
            writeln!(
                out,
                "Validation: loss {:.4} nats a token, {:.3} bits a token, perplexity {:.2} (of \
                 {vocab} tokens), next-token accuracy {:.1}%.",
                v.loss,
                bits(v.loss),
                v.loss.exp(),
                100.0 * v.accuracy
            )?;
        }
        writeln!(out, "Saved the model to {}", args.model.display())?;
        args.output.tell_written(&mut out)?;
    }
    if args.output.json {
        let mut summary = json!({
            "epochs": epochs,
            "resumed_after": resumed_after,
            "best_epoch": report.best_epoch,
            "stopped_early": report.stopped_early,
            "seconds": seconds,
            "train_seconds": report.train_seconds,
            "train_tokens": report.train_tokens,
            "train_tokens_per_s": report.tokens_per_second(),
            "vocab": vocab,
            "warnings": report.warnings.iter().map(|w| w.describe(&[])).collect::<Vec<_>>(),
        });
        if let Some(last) = report.history.last() {
            summary["train_loss"] = json!(json_number(last.train.loss));
        }
        if let Some(v) = valid {
            summary["valid_loss"] = json!(json_number(v.loss));
            summary["valid_bpc"] = json!(json_number(bits(v.loss)));
            summary["valid_acc"] = json!(json_number(v.accuracy));
        }
        writeln!(out, "{summary}")?;
    }
    Ok(())
}
