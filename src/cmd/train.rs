//! `rnn train`: train a classifier on a data file and save it as a model file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use rnn::data::Tokens;
use rnn::data::files::{self, Columns};
use rnn::error::Error;
use rnn::fsutil::check_output;
use rnn::metrics::{self, Score};
use rnn::model::{Model, ModelConfig};
use rnn::model_file::{self, ContentsRef};
use rnn::optim::OptimizerKind;
use rnn::plot;
use rnn::rnn::{CellKind, Pool};
use rnn::train::{Event, TrainConfig};

use super::progress::Progress;
use super::{at_least_one, dropout_probability, json_number, positive_number, write_scores};

/// Train a classifier on a TSV, CSV or fastText file and save it as a .safetensors model.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training data: .tsv or .csv with a header (text and label columns), or fastText lines.
    #[arg(long)]
    train: PathBuf,
    /// Test data in the same form, scored after every epoch.
    #[arg(long)]
    test: Option<PathBuf>,
    /// Where to save the model (.safetensors, loadable by PyTorch).
    #[arg(long)]
    model: PathBuf,
    /// The recurrent cell: rnn (Elman, tanh), gru or lstm, as PyTorch's nn.RNN, nn.GRU and
    /// nn.LSTM. Default rnn.
    #[arg(long, conflicts_with = "init")]
    cell: Option<CellKind>,
    /// How text becomes tokens: word (lowercased, split on white space) or char.
    #[arg(long, conflicts_with = "init")]
    tokens: Option<Tokens>,
    /// Hidden units (H) of every layer and direction. Default 64.
    #[arg(long, value_parser = at_least_one, conflicts_with = "init")]
    hidden: Option<usize>,
    /// Stacked recurrent layers (L); each reads the outputs of the one below. Default 1.
    #[arg(long, value_parser = at_least_one, conflicts_with = "init")]
    layers: Option<usize>,
    /// Every layer reads the text both ways, forwards and backwards, and its output at each
    /// token is both directions' states side by side (2·H).
    #[arg(long, conflicts_with = "init")]
    bidirectional: bool,
    /// A learnt embedding of E floats a token in front of the first layer, as
    /// nn.Embedding(V, E); without it the input is one-hot and the first layer's input weights
    /// are the table of token vectors.
    #[arg(long, value_parser = at_least_one, conflicts_with = "init")]
    embed: Option<usize>,
    /// How the top layer's outputs over the text become the features the output layer reads:
    /// last (each direction's final state, PyTorch's h_n), mean or max (over the text's
    /// tokens). Default last.
    #[arg(long, conflicts_with = "init")]
    pool: Option<Pool>,
    /// Dropout probability in training, between layers and before the output layer
    /// (inverted dropout, as PyTorch's; nothing is dropped outside training). Default 0.
    #[arg(long, value_parser = dropout_probability, allow_negative_numbers = true, conflicts_with = "init")]
    dropout: Option<f32>,
    /// Tokens seen fewer times in training become <unk>. Default 1.
    #[arg(long, value_parser = at_least_one, conflicts_with = "init")]
    min_count: Option<usize>,
    /// Passes over the training data (0 saves the initial model).
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Sequences per update; the gradient is the batch mean.
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    batch: usize,
    /// Update rule.
    #[arg(long, default_value = "sgd")]
    optimizer: OptimizerKind,
    /// Learning rate [default: 0.02 for sgd, 0.001 for adam].
    #[arg(long, value_parser = positive_number, allow_negative_numbers = true)]
    lr: Option<f32>,
    /// Gradients are clipped element-wise to [-clip, clip].
    #[arg(long, default_value_t = 1.0, value_parser = positive_number, allow_negative_numbers = true)]
    clip: f32,
    /// The input weights (one vector per token) start uniform in [-A, A]: 1 is as large as an
    /// embedding in PyTorch's usual Embedding -> RNN; 1/sqrt(H) is nn.RNN's own default.
    #[arg(long, default_value_t = 1.0, value_parser = positive_number, conflicts_with = "init")]
    input_init: f32,
    /// Keep only the first N tokens of every text (stored in the model).
    #[arg(long, value_parser = at_least_one)]
    max_len: Option<usize>,
    /// Seed of the initial weights and of the shuffling.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    seed: u64,
    /// Start from this model's weights, vocabulary, labels and token rule.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Threads that share each batch [default: one per core]. The same seed and number of
    /// threads give the same model.
    #[arg(long, value_parser = at_least_one)]
    threads: Option<usize>,
    /// Visit the examples in file order instead of shuffling every epoch.
    #[arg(long)]
    no_shuffle: bool,
    /// Write the metrics of every epoch to this CSV file.
    #[arg(long)]
    metrics: Option<PathBuf>,
    /// Draw the loss and accuracy curves into this PNG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Print one JSON object with the results as the last line.
    #[arg(long)]
    json: bool,
    /// No progress and no summary (errors, and the JSON line if asked, still appear).
    #[arg(long)]
    quiet: bool,
    /// The header name of the text column.
    #[arg(long, default_value = "text")]
    text_col: String,
    /// The header name of the label column.
    #[arg(long, default_value = "label")]
    label_col: String,
}

/// How often a run saves its model at the end of an epoch. The model file always holds a good
/// model (the initial one, then the latest saved), so a run that is stopped or diverges loses
/// at most this much work, and no second copy of the weights is kept in memory.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

pub fn run(args: TrainArgs) -> Result<()> {
    // Fail before any work if an output could not be written.
    for path in [Some(&args.model), args.metrics.as_ref(), args.plot.as_ref()]
        .into_iter()
        .flatten()
    {
        check_output(path)?;
    }
    if let (Some(path), 0) = (&args.plot, args.epochs) {
        anyhow::bail!(
            "{}: there is nothing to plot after 0 epochs",
            path.display()
        );
    }
    let columns = Columns {
        text: args.text_col.clone(),
        label: args.label_col.clone(),
    };
    let rows = files::read_rows(&args.train, &columns)?;
    let mut model = match &args.init {
        Some(init) => {
            let mut model = Model::load(init)?;
            if args.max_len.is_some() {
                model.max_len = args.max_len;
            }
            model
        }
        None => {
            let config = ModelConfig {
                cell: args.cell.unwrap_or_default(),
                hidden: args.hidden.unwrap_or(64),
                layers: args.layers.unwrap_or(1),
                bidirectional: args.bidirectional,
                embed: args.embed,
                pool: args.pool.unwrap_or_default(),
                dropout: args.dropout.unwrap_or(0.0),
                tokens: args.tokens.unwrap_or_default(),
                min_count: args.min_count.unwrap_or(1),
                max_len: args.max_len,
                input_init: args.input_init,
                seed: args.seed,
            };
            let pairs = rows.iter().map(|r| (r.text.as_str(), r.label.as_str()));
            Model::for_data(pairs, &config).with_context(|| format!("{}", args.train.display()))?
        }
    };
    let train = model.examples(&rows, &args.train)?;
    drop(rows); // the texts are encoded: free them before training
    let test = match &args.test {
        Some(path) => model.examples(&files::read_rows(path, &columns)?, path)?,
        None => Vec::new(),
    };
    let config = TrainConfig {
        epochs: args.epochs,
        optimizer: args.optimizer,
        lr: args.lr.unwrap_or(args.optimizer.default_lr()),
        clip: args.clip,
        batch: args.batch,
        seed: args.seed,
        shuffle: !args.no_shuffle,
        // the model file keeps the last good model instead (see CHECKPOINT_EVERY)
        keep_last_good: false,
        threads: args.threads.unwrap_or(0),
    };
    config.validate()?;
    let show = !args.quiet;
    let mut out = std::io::stdout().lock();
    if show {
        let tokens: usize = train.iter().map(|e| e.tokens.len()).sum();
        writeln!(
            out,
            "Training the network ({}; V = {} tokens, C = {} labels) on {} examples ({tokens} tokens){}.",
            model.network.arch(),
            model.vocab.len(),
            model.labels.len(),
            train.len(),
            if test.is_empty() {
                String::new()
            } else {
                format!(", testing on {}", test.len())
            },
        )?;
    }
    drop(out);

    // The initial model first: from here on the model file always holds a usable model.
    model.save(&args.model)?;
    let mut saved_after = 0; // the epoch whose model the file holds
    let mut progress = Progress::new(args.epochs, train.len(), args.quiet);
    let mut last_save = Instant::now();
    let mut checkpoint_error = None;
    let started = Instant::now();
    let result = {
        let (vocab, labels, tokens, max_len) =
            (&model.vocab, &model.labels, model.tokens, model.max_len);
        let path = &args.model;
        rnn::train::train(&mut model.network, &train, &test, &config, |event| {
            if let Event::Epoch { network, metrics } = event
                && last_save.elapsed() >= CHECKPOINT_EVERY
            {
                let contents = ContentsRef {
                    network,
                    vocab,
                    labels,
                    tokens,
                    max_len,
                };
                match model_file::save(contents, path) {
                    Ok(()) => saved_after = metrics.epoch,
                    Err(e) => {
                        checkpoint_error.get_or_insert(e);
                    }
                }
                last_save = Instant::now();
            }
            progress.on_event(event);
        })
    };
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    if let Some(e) = checkpoint_error {
        return Err(e.into());
    }
    let report = match result {
        Ok(report) => report,
        Err(Error::Diverged {
            epoch, loss, lr, ..
        }) => {
            // The model file holds the last model saved; the network in memory is not good.
            let kept = match saved_after {
                0 => "the initial model".to_string(),
                n => format!("the model after epoch {n}"),
            };
            anyhow::bail!(
                "training diverged in epoch {epoch}: the loss became {loss}. {} keeps {kept}. \
                 Try a smaller learning rate (it was {lr:?}).",
                args.model.display()
            );
        }
        Err(e) => return Err(e.into()),
    };
    // The trained model first: a metrics file or chart that cannot be written must not cost
    // the training.
    model.save(&args.model)?;
    if let Some(path) = &args.metrics {
        metrics::write_csv(&report.history, path)?;
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "{}: {}, {} lr = {}, batch {}",
            file_name(&args.train),
            model.network.arch(),
            config.optimizer.name(),
            config.lr,
            config.batch
        );
        plot::plot_curves(&report.history, &title, path)?;
    }

    // Final scores with the final weights (the history's train scores are running means).
    let final_train = model.evaluate(&train);
    let final_test = (!test.is_empty()).then(|| model.evaluate(&test));
    let score = |e: &rnn::model::Evaluation| Score {
        loss: e.loss,
        accuracy: e.accuracy,
    };
    let mut out = std::io::stdout().lock();
    if show {
        writeln!(
            out,
            "Trained for {} epochs in {seconds:.2} s ({:.0} tokens/s in training steps).",
            args.epochs,
            report.tokens_per_second()
        )?;
        let mut rows = vec![("train", score(&final_train))];
        rows.extend(final_test.as_ref().map(|e| ("test", score(e))));
        write_scores(&mut out, &rows)?;
        writeln!(out, "Saved the model to {}", args.model.display())?;
        for path in [&args.metrics, &args.plot].into_iter().flatten() {
            writeln!(out, "Wrote {}", path.display())?;
        }
    }
    if args.json {
        let mut summary = json!({
            "epochs": args.epochs,
            "seconds": seconds,
            "train_tokens_per_s": report.tokens_per_second(),
            "train_loss": json_number(final_train.loss),
            "train_acc": json_number(final_train.accuracy),
        });
        if let Some(t) = &final_test {
            summary["test_loss"] = json!(json_number(t.loss));
            summary["test_acc"] = json!(json_number(t.accuracy));
        }
        writeln!(out, "{summary}")?;
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
