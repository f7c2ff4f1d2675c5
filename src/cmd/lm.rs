//! `rnn lm`: train a language model on plain text and save it as a model file.
//!
//! The command reads the text, builds the model, and hands both to the library's trainer for
//! texts (`rnn::train::text`), which owns the windows, validation, early stopping and the
//! run's state. What stays here is what a command line adds: flags, files, the progress
//! display, and writing the model and the checkpoint as the run goes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::json;

use rnn::checkpoint::{self, Saver, checkpoint_path};
use rnn::data::Tokens;
use rnn::error::Error;
use rnn::lm::corpus::{self, DEFAULT_VALID_FRACTION};
use rnn::lm::recipe::{MODEL_DEFAULTS, TextRecipe, default_lr, training_end};
use rnn::lm::{LanguageModel, bits};
use rnn::metrics::{self, Score};
use rnn::model::{Initializer, ModelConfig};
use rnn::optim::OptimizerKind;
use rnn::plot;
use rnn::rnn::CellKind;
use rnn::train::text::{TextConfig, Texts};
use rnn::train::{Event, LrSchedule, TrainConfig, TrainReport};

use super::outputs::{self, file_name};
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
    /// Write the metrics of every epoch to this CSV file.
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// Draw the loss and accuracy curves into this PNG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Print one JSON object with the results as the last line.
    #[arg(long)]
    json: bool,
    /// No progress and no summary.
    #[arg(long)]
    quiet: bool,
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

/// What the command keeps in a checkpoint beside the library's run state.
#[derive(serde::Serialize, serde::Deserialize)]
struct Notes {
    text: TextConfig,
    valid_fraction: f64,
    validation_file: bool,
}

pub fn run(args: LmArgs) -> Result<()> {
    let ckpt_path = checkpoint_path(&args.model);
    let inputs: Vec<&Path> = args
        .train
        .iter()
        .chain(&args.valid)
        .map(PathBuf::as_path)
        .collect();
    let outputs: Vec<&Path> = [
        Some(&args.model),
        Some(&ckpt_path),
        args.metrics.as_ref(),
        args.plot.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(PathBuf::as_path)
    .collect();
    outputs::prepare(&outputs, &inputs, &args.model, args.quiet)?;
    if let (Some(path), 0) = (&args.plot, args.epochs) {
        bail!(
            "{}: there is nothing to plot after 0 epochs",
            path.display()
        );
    }
    let resumed = args
        .resume
        .as_ref()
        .map(|p| checkpoint::load(p))
        .transpose()?;
    let notes = match &resumed {
        Some(ckpt) => serde_json::from_value(ckpt.notes.clone())
            .context("the checkpoint was not written by rnn lm")?,
        None => Notes {
            text: TextConfig {
                bptt: args.bptt,
                max_seconds: None,
            },
            valid_fraction: args.valid_fraction,
            validation_file: args.valid.is_some(),
        },
    };
    if resumed.is_some() {
        checkpoint::check_validation_file(notes.validation_file, args.valid.is_some(), "text")?;
    }
    let text = TextConfig {
        max_seconds: args.max_seconds,
        ..notes.text
    };
    let whole = corpus::read_texts(&args.train)?;
    let names = args
        .train
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let valid_text = args.valid.as_deref().map(corpus::read_text).transpose()?;
    let mut model = match &resumed {
        Some(ckpt) => LanguageModel::from_contents(ckpt.contents.clone())
            .map_err(|m| Error::model(args.resume.as_deref().expect("resumed"), m))?,
        None => {
            // the vocabulary comes from the training part alone
            let cut = match valid_text {
                Some(_) => whole.len(),
                None => {
                    let chars = args.tokens.eq(&Tokens::Char).then(|| whole.chars().count());
                    training_end(&whole, args.valid_fraction, chars)
                }
            };
            let config = ModelConfig {
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
            };
            LanguageModel::for_text(&whole[..cut], &config).with_context(|| names.clone())?
        }
    };
    let ids = model.encode(&whole);
    drop(whole);
    if ids.is_empty() {
        bail!("{names}: the text is empty");
    }
    let valid_ids;
    let (train_ids, valid_ids) = match &valid_text {
        Some(v) => {
            valid_ids = model.encode(v);
            (&ids[..], &valid_ids[..])
        }
        None => corpus::split_valid(&ids, notes.valid_fraction),
    };
    let config = match &resumed {
        Some(ckpt) => TrainConfig {
            epochs: args.epochs,
            threads: args.threads.unwrap_or(ckpt.config.threads),
            ..ckpt.config.clone()
        },
        None => TrainConfig {
            epochs: args.epochs,
            optimizer: args.optimizer,
            lr: args.lr.unwrap_or(default_lr(args.optimizer)),
            clip: args.clip,
            batch: args.batch,
            seed: args.seed,
            shuffle: false,
            keep_last_good: false,
            threads: args.threads.unwrap_or(0),
            patience: (args.patience > 0).then_some(args.patience),
            schedule: args.schedule,
            class_weights: None,
        },
    };
    config.validate()?;
    if !args.quiet {
        writeln!(
            std::io::stdout().lock(),
            "Training the language model ({}; V = {} tokens) on {} tokens of {names}{}, in {} \
             streams of windows of {} steps.",
            model.network.arch(),
            model.vocab.len(),
            train_ids.len(),
            if valid_ids.is_empty() {
                String::new()
            } else {
                format!(", validating on {}", valid_ids.len())
            },
            config.batch,
            text.bptt,
        )?;
    }
    let texts = Texts {
        train: train_ids,
        valid: valid_ids,
        stop: None,
    };
    rnn::train::text::check_text(texts, &config, &text).with_context(|| names.clone())?;
    if resumed.is_none() {
        model.save(&args.model)?;
    }
    let mut saver = Saver::new(
        &args.model,
        &ckpt_path,
        &config,
        serde_json::to_value(&notes).expect("plain data"),
    );
    let tokens_per_epoch = train_ids.len().saturating_sub(1) / config.batch * config.batch;
    let mut progress = Progress::for_text(config.epochs, tokens_per_epoch, args.quiet);
    let started = Instant::now();
    let result = {
        let LanguageModel {
            network: training,
            vocab,
            tokens,
        } = &mut model;
        let (vocab, tokens) = (&*vocab, *tokens);
        let on_event = |event: Event<'_>| {
            match event {
                Event::Warning(warning) => {
                    let text = warning.describe(&[]);
                    progress.suspend(|| eprintln!("warning: {text}"));
                }
                Event::Epoch {
                    network,
                    state,
                    metrics,
                } => {
                    let current = rnn::lm::contents(network, network.params(), vocab, tokens);
                    saver.at_epoch(current, state, metrics.epoch);
                }
                Event::Step { .. } => {}
            }
            progress.on_event(event);
        };
        let state = resumed.map(|c| c.state);
        rnn::train::text::train_text(training, texts, &config, &text, state, on_event)
    };
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    let report = saver.finish(result)?;
    model.save(&args.model)?;
    if !args.keep_checkpoint && ckpt_path.exists() {
        std::fs::remove_file(&ckpt_path).map_err(|e| Error::io(&ckpt_path, e))?;
    }
    if let Some(path) = &args.metrics {
        metrics::write_csv(&report.history, &[], path)?;
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "{}: {}, {} lr = {}, bptt {}, batch {}",
            file_name(&args.train[0]),
            model.network.arch(),
            config.optimizer.name(),
            config.lr,
            text.bptt,
            config.batch
        );
        plot::plot_curves(&report.history, &title, path)?;
    }
    let valid = model.evaluate(valid_ids, config.batch, text.bptt);
    print_summary(&args, &report, seconds, valid, model.vocab.len())
}

fn print_summary(
    args: &LmArgs,
    report: &TrainReport,
    seconds: f64,
    valid: Option<Score>,
    vocab: usize,
) -> Result<()> {
    let epochs = report.history.last().map_or(0, |m| m.epoch);
    let mut out = std::io::stdout().lock();
    if !args.quiet {
        let stopped = if report.stopped_early {
            " (stopped early: no lower validation loss)"
        } else {
            ""
        };
        writeln!(
            out,
            "Trained for {epochs} epochs{stopped} in {seconds:.2} s ({:.0} tokens/s in training \
             steps).",
            report.tokens_per_second()
        )?;
        if let Some(best) = report.best_epoch {
            writeln!(
                out,
                "Kept the weights of epoch {best}, the best on the validation text."
            )?;
        }
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
        for path in [&args.metrics, &args.plot].into_iter().flatten() {
            writeln!(out, "Wrote {}", path.display())?;
        }
    }
    if args.json {
        let mut summary = json!({
            "epochs": epochs,
            "best_epoch": report.best_epoch,
            "stopped_early": report.stopped_early,
            "seconds": seconds,
            "train_seconds": report.train_seconds,
            "train_tokens": report.train_tokens,
            "train_tokens_per_s": report.tokens_per_second(),
            "vocab": vocab,
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
