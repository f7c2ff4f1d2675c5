//! `rnn train`: train a classifier on a data file and save it as a model file.
//!
//! The command reads the data, builds the model, and hands both to the library's trainer
//! (`rnn::train`), which owns validation, early stopping, the schedule and the run's state.
//! What stays here is what a command line adds: flags, files, the progress display, and
//! writing the model and the checkpoint as the run goes.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use serde_json::json;

use rnn::checkpoint::{self, RunFiles, checkpoint_path};
use rnn::data::files::{self, Columns, Format, ReadOptions};
use rnn::data::{Tokens, vectors};
use rnn::metrics::Score;
use rnn::model::{Initializer, Kind, Model, ModelConfig};
use rnn::optim::OptimizerKind;
use rnn::recipe::{self, ClassWeight, DataNotes, Prepared, Recipe, Rows, Start};
use rnn::rnn::{CellKind, DEFAULT_BUCKETS, DEFAULT_SUBWORD_BUCKETS, Ngrams, Pool, Subwords};
use rnn::train::{self, LrSchedule, TrainConfig};

mod autotune;

use super::outputs::{self, RunOutputs, file_name};
use super::progress::Progress;
use super::{
    at_least_one, dropout_probability, json_number, positive_number, subword_range, write_scores,
};

/// Train a classifier on a TSV, CSV or fastText file and save it as a .safetensors model.
///
/// Part of the training file (--valid-split) is held out to pick the best epoch and to stop
/// when it no longer improves (--patience); the model file holds the best epoch's weights.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training data: .tsv or .csv with a header (text and label columns), or fastText lines.
    #[arg(long)]
    train: PathBuf,
    /// Validation data in the same form: scored after every epoch, it picks the best epoch
    /// and decides early stopping [default: a part of --train, see --valid-split].
    #[arg(long)]
    valid: Option<PathBuf>,
    /// Without --valid, the share of every label's training rows held out for validation,
    /// drawn by the seed; 0 holds out nothing (then every epoch runs and the last is kept)
    /// [default: 0.1, or 0 when that would hold out fewer than 50 rows].
    #[arg(long, value_parser = fraction, allow_negative_numbers = true, conflicts_with = "valid")]
    valid_split: Option<f64>,
    /// Test data in the same form, scored after every epoch and only reported.
    #[arg(long)]
    test: Option<PathBuf>,
    /// Where to save the model (.safetensors, loadable by PyTorch).
    #[arg(long)]
    model: PathBuf,
    /// The recurrent cell: rnn (Elman, tanh), gru or lstm, as PyTorch's nn.RNN, nn.GRU and
    /// nn.LSTM [default: lstm].
    #[arg(long, conflicts_with_all = ["init", "resume"])]
    cell: Option<CellKind>,
    /// How text becomes tokens: wordpunct (lowercased words, punctuation split off), word
    /// (lowercased, split on white space only) or char [default: wordpunct].
    #[arg(long, conflicts_with_all = ["init", "resume"])]
    tokens: Option<Tokens>,
    /// Hidden units (H) of every layer and direction [default: 64].
    #[arg(long, value_parser = at_least_one, conflicts_with_all = ["init", "resume"])]
    hidden: Option<usize>,
    /// Stacked recurrent layers (L); each reads the outputs of the one below [default: 1].
    #[arg(long, value_parser = at_least_one, conflicts_with_all = ["init", "resume"])]
    layers: Option<usize>,
    /// Whether every layer reads the text both ways, forwards and backwards, its output at each
    /// token both directions' states side by side (2·H): `--bidirectional` or
    /// `--bidirectional true`, `--bidirectional false` [default: true].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", conflicts_with_all = ["init", "resume"])]
    bidirectional: Option<bool>,
    /// A learnt embedding of E floats a token in front of the first layer, as
    /// nn.Embedding(V, E); 0 for none: the input is then one-hot and the first layer's input
    /// weights are the table of token vectors [default: 64].
    #[arg(long, conflicts_with_all = ["init", "resume"])]
    embed: Option<usize>,
    /// Start the embedding of every vocabulary word found in this file of word vectors, in
    /// the `.vec` text format of fastText and GloVe (a header line "WORDS DIMENSION" or none);
    /// the others start at random as usual. --embed is the vectors' dimension by default.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["init", "resume"])]
    pretrained: Option<PathBuf>,
    /// Keep the embedding as it starts (with --pretrained, the vectors): only the rest of the
    /// network learns.
    #[arg(long, conflicts_with = "resume")]
    freeze_embed: bool,
    /// How the top layer's outputs over the text become the features the output layer reads:
    /// last (each direction's final state, PyTorch's h_n), mean or max (over the text's
    /// tokens) [default: max].
    #[arg(long, conflicts_with_all = ["init", "resume"])]
    pool: Option<Pool>,
    /// Also read a hashed bag of the text's n-grams of 1 to N tokens (word n-grams, or
    /// character n-grams with --tokens char): a linear model beside the recurrent network,
    /// whose scores add to its own, trained with it (fastText's -wordNgrams); 0 for none
    /// [default: 2, or 4 with --tokens char].
    #[arg(long, conflicts_with_all = ["init", "resume"])]
    ngrams: Option<usize>,
    /// Rows of the n-grams' hashed table, C floats each (fastText's -bucket) [default:
    /// 262144].
    #[arg(long, value_parser = at_least_one, conflicts_with_all = ["init", "resume"])]
    buckets: Option<usize>,
    /// The learning rate of the n-grams' table, the highest the schedule reaches (a linear
    /// model over sparse n-grams learns at rates far above a recurrent network's)
    /// [default: 0.1, fastText's].
    #[arg(long, value_parser = positive_number, allow_negative_numbers = true)]
    wide_lr: Option<f32>,
    /// Subword vectors: every word's embedding is its own vector plus the mean of those of its
    /// character n-grams of MIN to MAX characters (of the word in brackets, "<word>"), hashed,
    /// so that a word unseen in training still has a vector of its own (after fastText's
    /// -minn/-maxn), e.g. 3-6 [default: none].
    #[arg(long, value_name = "MIN-MAX", value_parser = subword_range, conflicts_with_all = ["init", "resume"])]
    subwords: Option<(usize, usize)>,
    /// Rows of the subword n-grams' hashed table, E floats each [default: 65536].
    #[arg(long, value_parser = at_least_one, requires = "subwords", conflicts_with_all = ["init", "resume"])]
    subword_buckets: Option<usize>,
    /// Dropout probability in training, between layers and before the output layer
    /// (inverted dropout, as PyTorch's; nothing is dropped outside training) [default: 0.3].
    #[arg(long, value_parser = dropout_probability, allow_negative_numbers = true, conflicts_with_all = ["init", "resume"])]
    dropout: Option<f32>,
    /// Tokens seen fewer times in training become <unk> [default: 2, so that <unk> is learnt].
    #[arg(long, value_parser = at_least_one, conflicts_with_all = ["init", "resume"])]
    min_count: Option<usize>,
    /// Keep only the N most frequent training tokens; the others become <unk>.
    #[arg(long, value_parser = at_least_one, conflicts_with_all = ["init", "resume"])]
    max_vocab: Option<usize>,
    /// Passes over the training data, at most: --patience may stop the run sooner (0 saves the
    /// initial model) [default: 20].
    #[arg(long)]
    epochs: Option<usize>,
    /// Stop after this many epochs in a row without progress: a lower validation loss, or an
    /// accuracy a quarter of a point above the best's; 0 never stops early [default: 5].
    #[arg(long, allow_negative_numbers = true, conflicts_with = "resume")]
    patience: Option<usize>,
    /// Sequences per update; the gradient is the batch mean [default: 32, or fewer for a set of
    /// under 1,024 examples, so that an epoch has at least 32 updates].
    #[arg(long, value_parser = at_least_one)]
    batch: Option<usize>,
    /// Update rule.
    #[arg(long, default_value_t = TrainConfig::default().optimizer)]
    optimizer: OptimizerKind,
    /// Learning rate, the highest the schedule reaches [default: 0.02 for sgd, 0.001 for adam].
    #[arg(long, value_parser = positive_number, allow_negative_numbers = true)]
    lr: Option<f32>,
    /// How the learning rate changes: constant, or plateau (halved after 2 epochs without a
    /// better validation score).
    #[arg(long, default_value_t = TrainConfig::default().schedule)]
    schedule: LrSchedule,
    /// Weigh each class's loss: none, or balanced (every class weighs as much as the others
    /// together, however few its examples; for imbalanced sets).
    #[arg(long, default_value = "none")]
    class_weight: ClassWeight,
    /// Gradients are clipped element-wise to [-clip, clip].
    #[arg(long, default_value_t = TrainConfig::default().clip, value_parser = positive_number, allow_negative_numbers = true)]
    clip: f32,
    /// How the weights start: pytorch (PyTorch's initialisation, with --input-init), or numpy
    /// (the seed's numpy original: every weight N(0, 1)/1000, every bias 0).
    #[arg(long, default_value_t = ModelConfig::default().initializer, conflicts_with_all = ["init", "resume"])]
    initializer: Initializer,
    /// The one-hot input weights (one vector per token) start uniform in [-A, A]: 1 is as
    /// large as an embedding in PyTorch's usual Embedding -> RNN; 1/sqrt(H) is nn.RNN's own
    /// default.
    #[arg(long, default_value_t = ModelConfig::default().input_init, value_parser = positive_number, conflicts_with_all = ["init", "resume"])]
    input_init: f32,
    /// Keep only the first N tokens of every text (stored in the model).
    #[arg(long, value_parser = at_least_one, conflicts_with = "resume")]
    max_len: Option<usize>,
    /// Seed of the initial weights, the validation split, the shuffling and the dropout.
    #[arg(
        long,
        default_value_t = 0,
        allow_negative_numbers = true,
        conflicts_with = "resume"
    )]
    seed: u64,
    /// Start from this model's weights, vocabulary, labels and token rule.
    #[arg(long, conflicts_with = "resume")]
    init: Option<PathBuf>,
    /// Continue the run whose checkpoint this is (MODEL.ckpt), with its settings; give the
    /// same data. --epochs may raise the limit.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Keep the checkpoint (MODEL.ckpt) after the run ends, to continue it later with
    /// --resume; otherwise it is removed once the model is saved.
    #[arg(long)]
    keep_checkpoint: bool,
    /// Search the settings that matter (n-grams, buckets, the wide path's rate, embedding,
    /// hidden size, cell, pooling, dropout, learning rate, epochs) for about SECONDS, scoring
    /// each trial on the validation rows, and keep the best model; it prints the best flags as
    /// a command line. Flags given stay fixed. The budget is counted in nominal seconds of the
    /// work done, so the same data, flags, seed and threads give the same model anywhere.
    #[arg(long, value_name = "SECONDS", value_parser = positive_seconds, allow_negative_numbers = true, conflicts_with_all = ["init", "resume", "keep_checkpoint"])]
    autotune: Option<f64>,
    /// Threads that share each batch [default: one per core; at most 4 per core, or 16]. The
    /// same seed and number of threads give the same model.
    #[arg(long, value_parser = super::thread_count)]
    threads: Option<usize>,
    /// Visit the examples in file order instead of shuffling every epoch.
    #[arg(long, conflicts_with = "resume")]
    no_shuffle: bool,
    #[command(flatten)]
    output: RunOutputs,
    /// The header name of the text column.
    #[arg(long, default_value = "text")]
    text_col: String,
    /// The header name of the label column.
    #[arg(long, default_value = "label")]
    label_col: String,
    /// The longest row a data file may have, in bytes (a CSV record over several lines counts
    /// whole); a longer one is an error naming its line.
    #[arg(long, default_value_t = rnn::data::records::DEFAULT_MAX_BYTES, value_parser = super::at_least_one)]
    max_row_bytes: usize,
    /// The data's format, whatever the file's extension says (with `-`, standard input, the
    /// default is fasttext).
    #[arg(long, value_parser = clap::value_parser!(Format))]
    format: Option<Format>,
}

impl TrainArgs {
    /// The columns that `--text-col` and `--label-col` name.
    fn columns(&self) -> Columns {
        Columns {
            text: self.text_col.clone(),
            label: self.label_col.clone(),
        }
    }

    /// How a data file of `columns` is read, as the flags say.
    fn reading(&self, columns: Columns) -> ReadOptions {
        ReadOptions {
            columns,
            max_row_bytes: self.max_row_bytes,
            format: self.format,
            shard: None,
        }
    }
}

/// The recipe that `args` give for a new run (see [`recipe`]), weighing classes as `class_weight`.
fn recipe_of(args: &TrainArgs, class_weight: ClassWeight) -> Recipe {
    let defaults = Recipe::default();
    let model = ModelConfig::default();
    Recipe {
        model: ModelConfig {
            cell: args.cell.unwrap_or(model.cell),
            hidden: args.hidden.unwrap_or(model.hidden),
            layers: args.layers.unwrap_or(model.layers),
            bidirectional: args.bidirectional.unwrap_or(model.bidirectional),
            embed: args.embed.map_or(model.embed, |e| (e > 0).then_some(e)),
            pool: args.pool.unwrap_or(model.pool),
            ngrams: ngrams_of(
                args.ngrams,
                args.buckets,
                rnn::model::default_ngrams(args.tokens.unwrap_or(model.tokens)),
            ),
            subwords: args.subwords.map(|(min, max)| Subwords {
                min,
                max,
                buckets: args.subword_buckets.unwrap_or(DEFAULT_SUBWORD_BUCKETS),
            }),
            dropout: args.dropout.unwrap_or(model.dropout),
            tokens: args.tokens.unwrap_or(model.tokens),
            min_count: args.min_count.unwrap_or(model.min_count),
            max_vocab: args.max_vocab.or(model.max_vocab),
            max_len: args.max_len.or(model.max_len),
            initializer: args.initializer,
            input_init: args.input_init,
            seed: args.seed,
        },
        valid_split: args.valid_split,
        epochs: args.epochs.unwrap_or(defaults.epochs),
        optimizer: args.optimizer,
        lr: args.lr,
        clip: args.clip,
        batch: args.batch,
        patience: args.patience.unwrap_or(defaults.patience),
        schedule: args.schedule,
        class_weight,
        shuffle: !args.no_shuffle,
        threads: args.threads.unwrap_or(0),
        wide_lr: args.wide_lr,
    }
}

/// The wide path that `--ngrams` and `--buckets` ask for, or the default's.
fn ngrams_of(n: Option<usize>, buckets: Option<usize>, default: Option<Ngrams>) -> Option<Ngrams> {
    let n = n.unwrap_or(default.map_or(0, |d| d.n));
    let buckets = buckets.or(default.map(|d| d.buckets));
    (n > 0).then(|| Ngrams {
        n,
        buckets: buckets.unwrap_or(DEFAULT_BUCKETS),
    })
}

/// Parses a positive number of seconds (`--autotune`).
fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        Ok(_) => Err("must be a positive number of seconds".into()),
        Err(_) => Err(format!("{s:?} is not a number of seconds")),
    }
}

/// Parses a fraction in `[0, 1)` (`--valid-split`).
fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..1.0).contains(&f) => Ok(f),
        Ok(_) => Err("must be at least 0 and less than 1".into()),
        Err(_) => Err(format!("{s:?} is not a number")),
    }
}

pub fn run(mut args: TrainArgs) -> Result<()> {
    if let Some(seconds) = args.autotune {
        return autotune::run(args, seconds);
    }
    let files = RunFiles::beside(&args.model, args.keep_checkpoint);
    let inputs = paths(&[Some(&args.train), args.valid.as_ref(), args.test.as_ref()]);
    let written = args.output.written();
    let epochs = args.epochs.unwrap_or(Recipe::default().epochs);
    outputs::prepare_run(&files, &inputs, written, epochs, args.output.quiet)?;
    args.embed = embed_of_vectors(&args)?;
    let checkpoint = args.resume.as_deref().map(checkpoint::load).transpose()?;
    let resumed_after = checkpoint.as_ref().map(|c| c.state.epoch);
    let start = match (checkpoint, &args.init) {
        (Some(checkpoint), _) => Start::Resume {
            checkpoint: Box::new(checkpoint),
            epochs,
            threads: args.threads,
        },
        (None, Some(init)) => Start::Init(Box::new(Model::load_as(init, Kind::Classifier)?)),
        (None, None) => Start::New,
    };
    let recipe = recipe_of(&args, args.class_weight);
    check_wide_flags(&args, &recipe)?;
    let notes = start.notes(DataNotes::new(
        &recipe,
        &args.columns(),
        args.valid.is_some(),
    ))?;
    let reading = args.reading(notes.columns());
    let read = |path| read_rows(path, &reading);
    let train = read(&args.train)?;
    let valid = args.valid.as_deref().map(read).transpose()?;
    let test = args.test.as_deref().map(read).transpose()?;
    let mut run = recipe::prepare_run(start, &recipe, notes, train, valid, test)?;
    let vectors = args.pretrained.as_deref();
    let found = run.start_embedding(vectors, args.freeze_embed)?;
    super::tell_vectors(found, &run.model.vocab, vectors, args.output.quiet);
    let signals = super::StopAtSignals::start();
    if !args.output.quiet {
        print_banner(&run, &args)?;
    }
    let progress = Progress::new(run.config.epochs, run.train.len(), args.output.quiet);
    let labels = run.model.labels().to_vec();
    let stop = Some(&super::STOP);
    let (result, seconds) = progress.show(&labels, |on_event| run.run(Some(files), stop, on_event));
    drop(signals);
    let report = result?;
    let title = || {
        let config = &run.config;
        let arch = run.model.network.arch();
        let (optimizer, train) = (config.optimizer.name(), file_name(&args.train));
        format!(
            "{train}: {arch}, {optimizer} lr = {}, batch {}",
            config.lr, config.batch
        )
    };
    let history = || outputs::write_history(&report.history, &labels, written.0, written.1, title);
    super::end_history::<TrainArgs>("train", &report, &args.model, history)?;
    print_summary(&run, &args, &report, (seconds, resumed_after), json!({}))
}

/// Checks the wide path's and the subwords' flags before the data is read: a size out of
/// range is the flag's error, not the data's, and `--buckets` or `--wide-lr` without n-grams
/// is a mistake.
fn check_wide_flags(args: &TrainArgs, recipe: &Recipe) -> Result<()> {
    recipe.model.check_subwords()?;
    match recipe.model.ngrams {
        Some(ngrams) => Ok(rnn::rnn::check_ngrams(ngrams)?),
        None if args.buckets.is_some() || args.wide_lr.is_some() => anyhow::bail!(
            "--buckets and --wide-lr are for the n-grams' table, which --ngrams 0 turns off"
        ),
        None => Ok(()),
    }
}

/// The embedding's width: `--embed`, or the dimension of the `--pretrained` vectors, which
/// must agree.
fn embed_of_vectors(args: &TrainArgs) -> Result<Option<usize>> {
    let Some(path) = &args.pretrained else {
        return Ok(args.embed);
    };
    let dim = vectors::dimension(path)?;
    match args.embed {
        None => Ok(Some(dim)),
        Some(e) if e == dim => Ok(Some(dim)),
        Some(e) => anyhow::bail!(
            "--embed {e} does not fit {}, whose vectors have {dim} numbers: give --embed {dim}, \
             or leave --embed out",
            path.display()
        ),
    }
}

/// The rows of the file at `path`.
fn read_rows<'a>(path: &'a Path, reading: &ReadOptions) -> rnn::error::Result<Rows<'a>> {
    files::read_rows(path, reading).map(|rows| Rows::from_file(rows, path))
}

/// The paths given among `paths`.
fn paths<'a>(paths: &[Option<&'a PathBuf>]) -> Vec<&'a Path> {
    paths.iter().flatten().map(|p| p.as_path()).collect()
}

fn print_banner(run: &Prepared, args: &TrainArgs) -> Result<()> {
    let (model, train, valid, test) = (&run.model, &run.train, &run.valid, &run.test);
    let tokens: usize = train.iter().map(|e| e.tokens.len()).sum();
    let mut sets = String::new();
    if !valid.is_empty() {
        let from = match &args.valid {
            Some(path) => file_name(path),
            None => "held out of the training file".to_string(),
        };
        sets += &format!(", validating on {} ({from})", valid.len());
    }
    if !test.is_empty() {
        sets += &format!(", testing on {}", test.len());
    }
    writeln!(
        std::io::stdout().lock(),
        "Training the network ({}; V = {} tokens, C = {} labels) on {} examples ({tokens} tokens){sets}.",
        model.network.arch(),
        model.vocab.len(),
        model.labels().len(),
        train.len(),
    )?;
    Ok(())
}

fn print_summary(
    run: &Prepared,
    args: &TrainArgs,
    report: &train::TrainReport,
    (seconds, resumed_after): (f64, Option<usize>),
    extra: serde_json::Value,
) -> Result<()> {
    let (model, train, valid, test) = (&run.model, &run.train, &run.valid, &run.test);
    // Final scores with the final weights (the history's train scores are running means).
    let score = |examples| -> Result<Score> {
        let e = model.evaluate(examples)?;
        Ok(Score {
            loss: e.loss,
            accuracy: e.accuracy,
        })
    };
    let final_train = score(train)?;
    let final_valid = (!valid.is_empty()).then(|| score(valid)).transpose()?;
    let final_test = (!test.is_empty()).then(|| score(test)).transpose()?;
    let epochs = report.history.last().map_or(0, |m| m.epoch);
    let mut out = std::io::stdout().lock();
    if !args.output.quiet {
        let run = (seconds, resumed_after);
        super::write_trained(&mut out, report, run, ("better validation score", "set"))?;
        let mut rows = vec![("train", final_train)];
        rows.extend(final_valid.map(|s| ("valid", s)));
        rows.extend(final_test.map(|s| ("test", s)));
        write_scores(&mut out, &rows)?;
        writeln!(out, "Saved the model to {}", args.model.display())?;
        args.output.tell_written(&mut out)?;
        if args.keep_checkpoint {
            writeln!(
                out,
                "Kept the checkpoint {}",
                checkpoint_path(&args.model).display()
            )?;
        }
    }
    if args.output.json {
        let mut summary = json!({
            "epochs": epochs,
            "resumed_after": resumed_after,
            "best_epoch": report.best_epoch,
            "stopped_early": report.stopped_early,
            "seconds": seconds,
            "train_tokens_per_s": report.tokens_per_second(),
            "train_loss": json_number(final_train.loss),
            "train_acc": json_number(final_train.accuracy),
            "warnings": report.warnings.iter().map(|w| w.describe(model.labels())).collect::<Vec<_>>(),
        });
        if let Some(v) = &final_valid {
            summary["valid_loss"] = json!(json_number(v.loss));
            summary["valid_acc"] = json!(json_number(v.accuracy));
        }
        if let Some(t) = &final_test {
            summary["test_loss"] = json!(json_number(t.loss));
            summary["test_acc"] = json!(json_number(t.accuracy));
        }
        if let (Some(summary), serde_json::Value::Object(extra)) = (summary.as_object_mut(), extra)
        {
            summary.extend(extra);
        }
        writeln!(out, "{summary}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rnn::data::split;

    /// The help text states the library's defaults: where they are not shown by clap itself,
    /// they are written by hand, and this keeps the two together.
    #[test]
    fn the_help_states_the_librarys_defaults() {
        let mut command = <TrainArgs as clap::Args>::augment_args(clap::Command::new("train"));
        let help = command.render_long_help().to_string();
        // the help is wrapped to the terminal's width: compare words
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        let (model, train) = (ModelConfig::default(), TrainConfig::default());
        let stated = [
            format!("[default: {}]", model.cell),
            format!("[default: {}]", model.tokens),
            format!("[default: {}]", model.hidden),
            format!("[default: {}]", model.layers),
            format!("[default: {}]", model.bidirectional),
            format!("[default: {}]", model.embed.unwrap_or(0)),
            format!("[default: {}]", model.pool),
            format!("[default: {}]", model.dropout),
            format!("[default: {}, so that <unk> is learnt]", model.min_count),
            format!("[default: {}]", train.patience.unwrap_or(0)),
            format!("[default: {}]", train.epochs),
            format!("[default: {}, or fewer", train.batch),
            format!("[default: {}]", train.optimizer),
            format!("[default: {}, or 0", split::DEFAULT_FRACTION),
        ];
        for text in stated {
            assert!(help.contains(&text), "{text} is not in the help:\n{help}");
        }
    }
}
