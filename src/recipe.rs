//! How `rnn train` makes a classifier from labelled rows: the validation rows held out, the
//! model built from the data, the training configuration with its defaults. The command line
//! and the Python package both follow this one recipe, so that the same rows, options and seed
//! give the same model file, byte for byte, from either.
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
//! assert_eq!(model.predict(&["good"])[0].label, 1); // labels are sorted: neg, pos
//! # Ok::<(), rnn::error::Error>(())
//! ```

use std::sync::atomic::AtomicBool;

use crate::data::Example;
use crate::data::files::Row;
use crate::data::split;
use crate::error::{Error, Result};
use crate::model::{Model, ModelConfig};
use crate::optim::OptimizerKind;
use crate::train::{self, Data, Event, LrSchedule, TrainConfig, TrainReport};

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
}

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

/// A run ready to train: the new model, its examples, its configuration.
#[derive(Debug)]
pub struct Prepared {
    pub model: Model,
    pub train: Vec<Example>,
    pub valid: Vec<Example>,
    pub config: TrainConfig,
}

/// Holds out the validation rows (unless `valid` rows are given), builds the model from the
/// training rows and encodes both sets. Error messages name rows as `<training data>` and
/// `<validation data>` with their `line`; a caller that read files says which.
///
/// # Errors
/// [`Error::Config`] for fewer than two labels or settings out of range; [`Error::Data`] for a
/// validation label that the training rows do not have.
pub fn prepare(rows: Vec<Row>, valid: Option<Vec<Row>>, recipe: &Recipe) -> Result<Prepared> {
    if let Some(f) = recipe.valid_split
        && !(0.0..1.0).contains(&f)
    {
        return Err(Error::Config(format!(
            "the validation share must be at least 0 and less than 1, not {f}"
        )));
    }
    let (rows, valid_rows) = match valid {
        Some(valid) => (rows, valid),
        None => {
            let fraction = recipe.valid_fraction(rows.len());
            hold_out(rows, fraction, recipe.model.seed)
        }
    };
    let pairs = rows.iter().map(|r| (r.text.as_str(), r.label.as_str()));
    let model = Model::for_data(pairs, &recipe.model)?;
    let train = model.examples(&rows, "<training data>".as_ref())?;
    let valid = model.examples(&valid_rows, "<validation data>".as_ref())?;
    let config = recipe.train_config(&train, model.labels.len());
    config.validate()?;
    Ok(Prepared {
        model,
        train,
        valid,
        config,
    })
}

impl Prepared {
    /// Trains the model (see [`train::train`]) and returns it with the run's report.
    ///
    /// # Errors
    /// As [`train::train`].
    pub fn train(self, on_event: impl FnMut(Event<'_>) + Send) -> Result<(Model, TrainReport)> {
        self.train_until(None, on_event)
    }

    /// As [`Prepared::train`], stopping after the batch in which `stop` becomes true (see
    /// [`Data::stop`]).
    ///
    /// # Errors
    /// As [`train::train`].
    pub fn train_until(
        mut self,
        stop: Option<&AtomicBool>,
        on_event: impl FnMut(Event<'_>) + Send,
    ) -> Result<(Model, TrainReport)> {
        let data = Data {
            train: &self.train,
            valid: &self.valid,
            test: &[],
            stop,
        };
        let report = self.model.train(data, &self.config, on_event)?;
        Ok((self.model, report))
    }
}
