//! How `rnn train` makes a classifier from labelled rows: the validation rows held out, the
//! model built from the data (or taken from a model, or from a checkpoint to resume), the
//! training configuration with its defaults, and the run with its files (the model file and
//! the checkpoint written as it goes). The command line and the Python package both follow this
//! one recipe, so that the same rows, options and seed give the same model file, byte for
//! byte, from either.
//!
//! ```
//! use rnn::data::files::Row;
//! use rnn::recipe::{self, Recipe};
//!
//! let rows: Vec<Row> = (0..40)
//!     .map(|i| Row {
//!         line: i + 1,
//!         text: if i % 2 == 0 { "good film" } else { "bad film" }.into(),
//!         label: if i % 2 == 0 { "pos" } else { "neg" }.into(),
//!     })
//!     .collect();
//! let recipe = Recipe { epochs: 3, ..Recipe::default() };
//! let run = recipe::prepare(rows, None, &recipe)?;
//! assert!(run.valid.is_empty()); // 10% of 40 rows is under 50: nothing is held out
//! let (model, _report) = run.train(|_| {})?;
//! assert_eq!(model.predict(&["good"])?[0].label, 1); // labels are sorted: neg, pos
//! # Ok::<(), rnn::error::Error>(())
//! ```

use std::path::Path;
use std::sync::atomic::AtomicBool;

use crate::checkpoint::{self, Checkpoint, RunFiles, Saver};
use crate::data::Example;
use crate::data::files::{Columns, Row};
use crate::data::split;
use crate::data::vectors;
use crate::error::{Error, Result, Setting};
use crate::model::{Model, ModelConfig, Task};
use crate::optim::OptimizerKind;
use crate::train::{self, Data, Event, LrSchedule, RunState, TrainConfig, TrainReport};

/// How each class's loss is weighed (`--class-weight`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    /// Every example weighs 1.
    #[default]
    None,
    /// Every class weighs as much as the others together, however few its examples (see
    /// [`train::balanced_class_weights`]).
    Balanced,
}

impl std::fmt::Display for ClassWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClassWeight::None => "none",
            ClassWeight::Balanced => "balanced",
        })
    }
}

impl std::str::FromStr for ClassWeight {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "none" => Ok(ClassWeight::None),
            "balanced" => Ok(ClassWeight::Balanced),
            _ => Err(format!(
                "unknown class weight {s:?} (expected none or balanced)"
            )),
        }
    }
}

/// Every option of `rnn train` that decides the model it makes. `Default` is the command's
/// defaults; a `None` is "the default that depends on the data" (see each field).
#[derive(Clone, Debug, PartialEq)]
pub struct Recipe {
    /// The network, the tokens and the vocabulary; its seed is the run's seed.
    pub model: ModelConfig,
    /// The share of every label's rows held out for validation when no validation rows are
    /// given. `None`: [`split::default_fraction`] of the number of rows.
    pub valid_split: Option<f64>,
    pub epochs: usize,
    pub optimizer: OptimizerKind,
    /// `None`: the optimiser's default ([`OptimizerKind::default_lr`]).
    pub lr: Option<f32>,
    pub clip: f32,
    /// `None`: [`train::default_batch`] of the number of training examples.
    pub batch: Option<usize>,
    /// Epochs without a better validation score before the run stops; 0 never stops early.
    pub patience: usize,
    pub schedule: LrSchedule,
    pub class_weight: ClassWeight,
    pub shuffle: bool,
    /// Threads that share each batch; 0 is one per core.
    pub threads: usize,
    /// The learning rate of the wide path, when the model has one. `None`:
    /// [`DEFAULT_WIDE_LR`].
    pub wide_lr: Option<f32>,
}

/// The wide path's learning rate when none is given: fastText's.
pub const DEFAULT_WIDE_LR: f32 = 0.1;

impl Default for Recipe {
    fn default() -> Self {
        let train = TrainConfig::default();
        Recipe {
            model: ModelConfig::default(),
            valid_split: None,
            epochs: train.epochs,
            optimizer: train.optimizer,
            lr: None,
            clip: train.clip,
            batch: None,
            patience: train.patience.unwrap_or(0),
            schedule: train.schedule,
            class_weight: ClassWeight::None,
            shuffle: train.shuffle,
            threads: 0,
            wide_lr: None,
        }
    }
}

impl Recipe {
    /// The share held out of `rows` training rows.
    pub fn valid_fraction(&self, rows: usize) -> f64 {
        self.valid_split
            .unwrap_or_else(|| split::default_fraction(rows))
    }

    /// The training configuration for these training examples of a model with `classes`
    /// labels.
    pub fn train_config(&self, train: &[Example], classes: usize) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            optimizer: self.optimizer,
            lr: self.lr.unwrap_or(self.optimizer.default_lr()),
            clip: self.clip,
            batch: self
                .batch
                .unwrap_or_else(|| train::default_batch(train.len())),
            seed: self.model.seed,
            shuffle: self.shuffle,
            // the caller keeps the best model so far instead
            keep_last_good: false,
            threads: self.threads,
            patience: (self.patience > 0).then_some(self.patience),
            schedule: self.schedule,
            class_weights: (self.class_weight == ClassWeight::Balanced)
                .then(|| train::balanced_class_weights(train, classes)),
            freeze_embed: false,
            wide_lr: self
                .model
                .ngrams
                .map(|_| self.wide_lr.unwrap_or(DEFAULT_WIDE_LR)),
        }
    }
}

/// The training rows and the validation rows held out of them: `fraction` of every label's
/// rows, drawn by `seed` (see [`split::stratified`]). Both keep their order.
pub fn hold_out(rows: Vec<Row>, fraction: f64, seed: u64) -> (Vec<Row>, Vec<Row>) {
    let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
    let (_, held) = split::stratified(&labels, fraction, seed);
    let mut is_held = vec![false; rows.len()];
    for i in held {
        is_held[i] = true;
    }
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for (row, held) in rows.into_iter().zip(is_held) {
        if held { &mut valid } else { &mut train }.push(row);
    }
    (train, valid)
}

/// How a run starts.
#[derive(Debug)]
pub enum Start {
    /// A new model, built from the training rows.
    New,
    /// From this model's weights, vocabulary, labels and token rule (`--init`).
    Init(Box<Model>),
    /// Continuing the run of a checkpoint, with its settings: `epochs` may raise its limit,
    /// and `threads` (when given) change its threads.
    Resume {
        checkpoint: Box<Checkpoint>,
        epochs: usize,
        threads: Option<usize>,
    },
}

/// What a classifier's checkpoint keeps beside the run's state: how the run made its data, so
/// that a resumed run makes the same.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataNotes {
    /// The share of the training rows held out for validation (when no validation rows are
    /// given).
    pub valid_split: f64,
    /// Whether validation rows were given (a file).
    pub validation_file: bool,
    pub class_weight: ClassWeight,
    /// The columns read.
    pub text_col: String,
    pub label_col: String,
    /// The fingerprint of the rows the run started on (training, then validation rows of
    /// their own; see [`checkpoint::fingerprint`]), which a resumed run's rows must match.
    /// Checkpoints written before it have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl DataNotes {
    /// The notes of a run with `recipe`'s settings, reading `columns`, with or without
    /// validation rows of its own (`valid_split` is settled by [`prepare_run`], from the
    /// number of rows).
    pub fn new(recipe: &Recipe, columns: &Columns, validation_file: bool) -> Self {
        DataNotes {
            valid_split: recipe.valid_split.unwrap_or(split::DEFAULT_FRACTION),
            validation_file,
            class_weight: recipe.class_weight,
            text_col: columns.text.clone(),
            label_col: columns.label.clone(),
            data: None,
        }
    }

    /// The columns the run reads.
    pub fn columns(&self) -> Columns {
        Columns {
            text: self.text_col.clone(),
            label: self.label_col.clone(),
        }
    }
}

impl Start {
    /// The data notes of a run that starts so: a resumed run's own, checked against `given`
    /// (it must have validation rows of its own exactly when it had them); otherwise `given`.
    ///
    /// # Errors
    /// [`Error::Config`] for a checkpoint that a classifier's run did not write, or validation
    /// rows that differ from the run's.
    pub fn notes(&self, given: DataNotes) -> Result<DataNotes> {
        let Start::Resume { checkpoint, .. } = self else {
            return Ok(given);
        };
        let notes: DataNotes = serde_json::from_value(checkpoint.notes.clone()).map_err(|e| {
            Error::Config(format!("the checkpoint was not written by rnn train: {e}"))
        })?;
        checkpoint::check_validation_file(notes.validation_file, given.validation_file, "data")?;
        Ok(notes)
    }
}

/// Labelled rows, and the file they were read from (named in errors), if any.
#[derive(Clone, Debug)]
pub struct Rows<'a> {
    pub rows: Vec<Row>,
    pub file: Option<&'a Path>,
}

impl<'a> Rows<'a> {
    /// Rows read from `file`.
    pub fn from_file(rows: Vec<Row>, file: &'a Path) -> Self {
        Rows {
            rows,
            file: Some(file),
        }
    }

    /// Rows from memory.
    pub fn in_memory(rows: Vec<Row>) -> Self {
        Rows { rows, file: None }
    }
}

/// A run ready to train: the model, its examples, its configuration, the state it resumes.
#[derive(Debug)]
pub struct Prepared {
    pub model: Model,
    pub train: Vec<Example>,
    pub valid: Vec<Example>,
    /// Scored after every epoch and only reported.
    pub test: Vec<Example>,
    pub config: TrainConfig,
    /// How the run made its data, for its checkpoints.
    pub notes: DataNotes,
    /// The state of the run it continues ([`Start::Resume`]).
    pub state: Option<RunState>,
}

/// Holds out the validation rows (unless `valid` rows are given), builds the model from the
/// training rows and encodes both sets (see [`prepare_run`]). Error messages name rows as
/// `<training data>` and `<validation data>` with their `line`.
///
/// # Errors
/// As [`prepare_run`].
pub fn prepare(rows: Vec<Row>, valid: Option<Vec<Row>>, recipe: &Recipe) -> Result<Prepared> {
    let notes = DataNotes::new(recipe, &Columns::default(), valid.is_some());
    let valid = valid.map(Rows::in_memory);
    prepare_run(
        Start::New,
        recipe,
        notes,
        Rows::in_memory(rows),
        valid,
        None,
    )
}

/// A run as `start` says, with `recipe`'s settings (a resumed run keeps its own) and `notes`
/// (as [`Start::notes`] gives them): the validation rows held out of `train` by the seed
/// unless `valid` rows are given, the model built from the training rows (or taken from
/// `start`), and every set encoded. Rows are named in errors by their file and line, or as
/// `<training data>`, `<validation data>` and `<test data>`.
///
/// # Errors
/// [`Error::Config`] for fewer than two labels or settings out of range (named with the
/// training file, when there is one); [`Error::Data`] for a label that the model does not have.
pub fn prepare_run(
    start: Start,
    recipe: &Recipe,
    mut notes: DataNotes,
    train: Rows<'_>,
    valid: Option<Rows<'_>>,
    test: Option<Rows<'_>>,
) -> Result<Prepared> {
    if let Some(f) = recipe.valid_split
        && !(0.0..1.0).contains(&f)
    {
        return Err(Error::Config(format!(
            "the validation share must be at least 0 and less than 1, not {f}"
        )));
    }
    let (train_file, valid_file) = (train.file, valid.as_ref().and_then(|v| v.file));
    let seed = match &start {
        Start::Resume { checkpoint, .. } => checkpoint.config.seed,
        _ => recipe.model.seed,
    };
    let data = rows_fingerprint(&train.rows, valid.as_ref().map(|v| v.rows.as_slice()));
    if matches!(start, Start::Resume { .. }) {
        checkpoint::check_same_data(notes.data.as_deref(), &data, "training data")?;
    } else {
        notes.valid_split = recipe.valid_fraction(train.rows.len());
    }
    notes.data = Some(data);
    let (rows, valid_rows) = match valid {
        Some(valid) => (train.rows, valid.rows),
        None => hold_out(train.rows, notes.valid_split, seed),
    };
    let (mut model, resumed) = match start {
        Start::Resume {
            checkpoint,
            epochs,
            threads,
        } => {
            let (contents, config, state) = checkpoint.continue_with(epochs, threads);
            (contents, Some((config, state)))
        }
        Start::Init(mut model) => {
            if recipe.model.max_len.is_some() {
                model.max_len = recipe.model.max_len;
            }
            (*model, None)
        }
        Start::New => {
            let pairs = rows.iter().map(|r| (r.text.as_str(), r.label.as_str()));
            let model = Model::for_data(pairs, &recipe.model).map_err(|e| match train_file {
                Some(path) => Error::data(path, None, e.to_string()),
                None => e,
            })?;
            (model, None)
        }
    };
    // the columns read, which `eval` of this model reads by default
    if let Task::Classifier { columns, .. } = &mut model.task {
        *columns = notes.columns();
    }
    let name = |file: Option<&Path>, or: &'static str| file.unwrap_or(or.as_ref()).to_path_buf();
    let train_name = name(train_file, "<training data>");
    let train = model.examples(&rows, &train_name)?;
    let valid_name = name(valid_file.or(train_file), "<validation data>");
    let valid = model.examples(&valid_rows, &valid_name)?;
    drop((rows, valid_rows)); // the texts are encoded: free them before training
    let test = match test {
        Some(t) => model.examples(&t.rows, &name(t.file, "<test data>"))?,
        None => Vec::new(),
    };
    let (config, state) = match resumed {
        Some((config, state)) => (config, Some(state)),
        None => (recipe.train_config(&train, model.labels().len()), None),
    };
    config.validate()?;
    Ok(Prepared {
        model,
        train,
        valid,
        test,
        config,
        notes,
        state,
    })
}

/// The fingerprint of a run's rows: the training rows' texts and labels in order, then the
/// validation rows' when they are given apart.
fn rows_fingerprint(train: &[Row], valid: Option<&[Row]>) -> String {
    fn fields(rows: &[Row]) -> impl Iterator<Item = &[u8]> {
        rows.iter()
            .flat_map(|r| [r.text.as_bytes(), r.label.as_bytes()])
    }
    let apart: &[&[u8]] = if valid.is_some() { &[b"valid"] } else { &[] };
    checkpoint::fingerprint(
        fields(train)
            .chain(apart.iter().copied())
            .chain(fields(valid.unwrap_or_default())),
    )
}

/// How a new run's embedding starts: at the word vectors of a `.vec` file, and kept fixed in
/// training or not (`--pretrained`, `--freeze-embed`).
#[derive(Clone, Copy, Debug, Default)]
pub struct EmbeddingStart<'a> {
    pub vectors: Option<&'a Path>,
    pub freeze: bool,
}

/// Starts the embedding of a new run's `network` as `start` says, for a classifier and a
/// language model alike: the rows of `vocab`'s words found in the vectors' file are set (the
/// others keep their random start), and `config` freezes the embedding if asked. Returns
/// what the file held for the vocabulary.
///
/// # Errors
/// [`Error::Config`] for a `resumed` run (it has its own embedding), a network without an
/// embedding (one-hot input), or vectors of another width; as [`vectors::read_for`] for the
/// file.
pub fn start_embedding(
    network: &mut crate::rnn::Network,
    vocab: &crate::data::Vocab,
    config: &mut TrainConfig,
    resumed: bool,
    start: EmbeddingStart<'_>,
) -> Result<Option<vectors::Found>> {
    if start.vectors.is_none() && !start.freeze {
        return Ok(None);
    }
    let named = if start.freeze {
        Setting::FreezeEmbed
    } else {
        Setting::Pretrained
    };
    if resumed {
        return Err(Error::Config(format!(
            "{named} starts a new run's embedding; a resumed run keeps its own"
        )));
    }
    let Some(width) = network.arch().embed else {
        return Err(Error::Config(format!(
            "{named} needs an embedding, and this network reads one-hot words ({} 0)",
            Setting::Embed
        )));
    };
    let found = match start.vectors {
        Some(path) => {
            let dim = vectors::dimension(path)?;
            if dim != width {
                return Err(Error::Config(format!(
                    "{}: its vectors have {dim} numbers and the embedding {width}: give {} {dim}",
                    path.display(),
                    Setting::Embed
                )));
            }
            let found = vectors::read_for(path, vocab, width)?;
            network.set_embedding_rows(&found.rows)?;
            Some(found)
        }
        None => None,
    };
    config.freeze_embed = start.freeze;
    Ok(found)
}

impl Prepared {
    /// Starts a new run's embedding at the word vectors of the `.vec` file at `vectors` (see
    /// [`start_embedding`]), and keeps it fixed in training with `freeze`.
    ///
    /// # Errors
    /// As [`start_embedding`].
    pub fn start_embedding(
        &mut self,
        vectors: Option<&Path>,
        freeze: bool,
    ) -> Result<Option<vectors::Found>> {
        let start = EmbeddingStart { vectors, freeze };
        let model = &mut self.model;
        let resumed = self.state.is_some();
        start_embedding(
            &mut model.network,
            &model.vocab,
            &mut self.config,
            resumed,
            start,
        )
    }

    /// Trains the model (see [`train::train`]) and returns it with the run's report.
    ///
    /// # Errors
    /// As [`train::train`].
    pub fn train(mut self, on_event: impl FnMut(Event<'_>) + Send) -> Result<(Model, TrainReport)> {
        let report = self.run(None, None, on_event)?;
        Ok((self.model, report))
    }

    /// Runs the training (a new run, or the one it resumes), writing `files` as it goes (see
    /// [`Saver`]): a new run's initial model first, then the best model so far and the
    /// checkpoint at the end of an epoch, and at the end the trained model, the checkpoint
    /// removed unless it is kept. The run stops after the batch in which `stop` becomes true.
    /// `self.model` is the trained model afterwards.
    ///
    /// # Errors
    /// As [`train::train`] and [`Saver::finish`]; [`Error::Io`] if a file cannot be written.
    pub fn run(
        &mut self,
        files: Option<RunFiles>,
        stop: Option<&AtomicBool>,
        on_event: impl FnMut(Event<'_>) + Send,
    ) -> Result<TrainReport> {
        let initial = self.state.is_none().then(|| self.model.contents());
        let mut saver = Saver::start(files, &self.config, &self.notes, initial)?;
        let data = Data {
            train: &self.train,
            valid: &self.valid,
            test: &self.test,
            stop,
        };
        let result = {
            let (network, rest) = self.model.network_and_rest();
            let on_event = checkpoint::writing(&mut saver, rest, on_event);
            match self.state.take() {
                Some(state) => train::resume(network, data, &self.config, state, on_event),
                None => train::train(network, data, &self.config, on_event),
            }
        };
        checkpoint::end(saver, result, self.model.contents())
    }
}
