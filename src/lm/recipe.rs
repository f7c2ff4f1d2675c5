//! How `rnn lm` makes a language model from a text: the validation part held out of its end,
//! the vocabulary from the training part (or the model and the run of a checkpoint, to resume
//! it), the defaults, and the run with its files. The command line and the Python package both
//! follow this recipe.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use super::corpus::{self, DEFAULT_VALID_FRACTION};
use crate::checkpoint::{self, Checkpoint, RunFiles, Saver};
use crate::data::Tokens;
use crate::error::{Error, Result};
use crate::model::{Initializer, Kind, Model, ModelConfig};
use crate::optim::OptimizerKind;
use crate::rnn::{CellKind, Pool};
use crate::train::text::{TextConfig, Texts};
use crate::train::{Event, LrSchedule, RunState, TrainConfig, TrainReport};

/// `rnn lm`'s network: char-rnn's two layers of 256 LSTM units on one-hot characters.
pub const MODEL_DEFAULTS: ModelConfig = ModelConfig {
    cell: CellKind::Lstm,
    hidden: 256,
    layers: 2,
    bidirectional: false,
    embed: None,
    pool: Pool::Last,
    ngrams: None,
    subwords: None,
    dropout: 0.0,
    tokens: Tokens::Char,
    min_count: 1,
    max_vocab: None,
    max_len: None,
    initializer: Initializer::PyTorch,
    input_init: 1.0,
    seed: 0,
};

/// The learning rate of `optimizer` for a language model when none is given: Adam's is
/// char-rnn's 0.002, twice PyTorch's default, which the benchmark's texts learn faster with.
pub fn default_lr(optimizer: OptimizerKind) -> f32 {
    match optimizer {
        OptimizerKind::Adam => 0.002,
        other => other.default_lr(),
    }
}

/// Every option of `rnn lm` that decides the model it makes; `Default` is the command's.
#[derive(Clone, Debug, PartialEq)]
pub struct TextRecipe {
    /// The network and the tokens; its seed is the run's.
    pub model: ModelConfig,
    /// Without a validation text, the share of the text's end held out.
    pub valid_fraction: f64,
    /// Steps a window.
    pub bptt: usize,
    /// Streams read side by side.
    pub batch: usize,
    pub epochs: usize,
    /// Epochs without a lower validation loss before the run stops; 0 never stops early.
    pub patience: usize,
    pub optimizer: OptimizerKind,
    /// `None`: [`default_lr`].
    pub lr: Option<f32>,
    pub schedule: LrSchedule,
    pub clip: f32,
    /// Threads that share each window's streams; 0 is one per core.
    pub threads: usize,
    /// Stop after the window in which training has taken this many seconds.
    pub max_seconds: Option<f64>,
}

impl Default for TextRecipe {
    fn default() -> Self {
        TextRecipe {
            model: MODEL_DEFAULTS,
            valid_fraction: DEFAULT_VALID_FRACTION,
            bptt: TextConfig::default().bptt,
            batch: 32,
            epochs: 20,
            patience: 3,
            optimizer: OptimizerKind::Adam,
            lr: None,
            schedule: LrSchedule::Constant,
            clip: 5.0,
            threads: 0,
            max_seconds: None,
        }
    }
}

impl TextRecipe {
    /// The training configuration (`batch` is the number of streams).
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            optimizer: self.optimizer,
            lr: self.lr.unwrap_or(default_lr(self.optimizer)),
            clip: self.clip,
            batch: self.batch,
            seed: self.model.seed,
            shuffle: false,
            keep_last_good: false,
            threads: self.threads,
            patience: (self.patience > 0).then_some(self.patience),
            schedule: self.schedule,
            class_weights: None,
            freeze_embed: false,
            wide_lr: None,
        }
    }

    /// What only training on a text needs.
    pub fn text_config(&self) -> TextConfig {
        TextConfig {
            bptt: self.bptt,
            max_seconds: self.max_seconds,
        }
    }
}

/// Where the training part of `text` ends when its last `fraction` is held out: at the same
/// token as [`corpus::split_valid`] cuts the encoded text, for characters (`chars` is their
/// count); for words, at the same share of the bytes, the next white space.
pub fn training_end(text: &str, fraction: f64, chars: Option<usize>) -> usize {
    match chars {
        Some(n) => {
            let keep = n - (n as f64 * fraction) as usize;
            text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i)
        }
        None => {
            let mut at = text.len() - (text.len() as f64 * fraction) as usize;
            while at < text.len()
                && !(text.is_char_boundary(at) && text[at..].starts_with(char::is_whitespace))
            {
                at += 1;
            }
            at
        }
    }
}

/// How a run on a text starts.
#[derive(Debug)]
pub enum TextStart {
    /// A new model, its vocabulary from the training part of the text.
    New,
    /// Continuing the run of the checkpoint read from `path`, with its settings: `epochs` may
    /// raise its limit, and `threads` (when given) change its threads.
    Resume {
        checkpoint: Box<Checkpoint>,
        path: PathBuf,
        epochs: usize,
        threads: Option<usize>,
    },
}

/// What a language model's checkpoint keeps beside the run's state: how the run cut its text,
/// so that a resumed run cuts the same.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TextNotes {
    pub text: TextConfig,
    /// The share of the text's end held out (without a validation text).
    pub valid_fraction: f64,
    /// Whether a validation text was given.
    pub validation_file: bool,
    /// The fingerprint of the text the run started on (then its validation text, if given;
    /// see [`checkpoint::fingerprint`]), which a resumed run's text must match. Checkpoints
    /// written before it have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl TextStart {
    /// The notes of a run that starts so: a resumed run's own, checked against
    /// `validation_file` (it must have a validation text exactly when it had one); otherwise
    /// `recipe`'s.
    ///
    /// # Errors
    /// [`Error::Config`] for a checkpoint that a language model's run did not write, or a
    /// validation text where the run had none (or none where it had one).
    pub fn notes(&self, recipe: &TextRecipe, validation_file: bool) -> Result<TextNotes> {
        let TextStart::Resume { checkpoint, .. } = self else {
            return Ok(TextNotes {
                text: TextConfig {
                    max_seconds: None,
                    ..recipe.text_config()
                },
                valid_fraction: recipe.valid_fraction,
                validation_file,
                data: None,
            });
        };
        let notes: TextNotes = serde_json::from_value(checkpoint.notes.clone())
            .map_err(|e| Error::Config(format!("the checkpoint was not written by rnn lm: {e}")))?;
        checkpoint::check_validation_file(notes.validation_file, validation_file, "text")?;
        Ok(notes)
    }
}

/// A run on a text, ready to train.
/// A run on a text, ready to train.
#[derive(Debug)]
pub struct PreparedText {
    pub model: Model,
    /// The training tokens, then (without a validation text) the validation tokens.
    ids: Vec<u32>,
    /// Where the validation tokens start in `ids`, or the validation text's own tokens.
    valid: Result<usize, Vec<u32>>,
    pub config: TrainConfig,
    pub text: TextConfig,
    /// How the run cut its text, for its checkpoints.
    pub notes: TextNotes,
    /// The state of the run it continues ([`TextStart::Resume`]).
    pub state: Option<RunState>,
}

/// Builds the model from `text` (its vocabulary from the training part) and encodes the text;
/// the validation tokens are `valid`'s, or the last [`TextRecipe::valid_fraction`] of `text`
/// (see [`prepare_run`]).
///
/// # Errors
/// As [`prepare_run`].
pub fn prepare(text: &str, valid: Option<&str>, recipe: &TextRecipe) -> Result<PreparedText> {
    let notes = TextStart::New.notes(recipe, valid.is_some())?;
    prepare_run(TextStart::New, recipe, notes, text, valid, None)
}

/// A run as `start` says, with `recipe`'s settings (a resumed run keeps its own, but for the
/// time limit) and `notes` (as [`TextStart::notes`] gives them): the model built from the
/// training part of `text` (or taken from the checkpoint), the text encoded, and the
/// validation tokens `valid`'s or the last `notes.valid_fraction` of `text`. `name` (the files
/// read) is named in errors about the text.
///
/// # Errors
/// [`Error::Config`] for an empty text, one shorter than a window of every stream, or settings
/// out of range; [`Error::Model`] for a checkpoint that does not hold a language model.
pub fn prepare_run(
    start: TextStart,
    recipe: &TextRecipe,
    mut notes: TextNotes,
    text: &str,
    valid: Option<&str>,
    name: Option<&str>,
) -> Result<PreparedText> {
    let data = checkpoint::fingerprint(
        [text.as_bytes()]
            .into_iter()
            .chain(valid.map(str::as_bytes)),
    );
    if matches!(start, TextStart::Resume { .. }) {
        checkpoint::check_same_data(notes.data.as_deref(), &data, "training text")?;
    }
    notes.data = Some(data);
    if !(0.0..1.0).contains(&notes.valid_fraction) {
        return Err(Error::Config(format!(
            "the validation share must be at least 0 and less than 1, not {}",
            notes.valid_fraction
        )));
    }
    let named = |e: Error| match name {
        Some(name) => Error::data(name, None, e.to_string()),
        None => e,
    };
    let (model, resumed) = match start {
        TextStart::Resume {
            checkpoint,
            path,
            epochs,
            threads,
        } => {
            let (model, config, state) = checkpoint.continue_with(epochs, threads);
            let model = model.of_kind(Kind::LanguageModel, &path)?;
            (model, Some((config, state)))
        }
        TextStart::New => {
            let cut = match valid {
                Some(_) => text.len(),
                None => {
                    let chars = (recipe.model.tokens == Tokens::Char).then(|| text.chars().count());
                    training_end(text, notes.valid_fraction, chars)
                }
            };
            let model = Model::for_text(&text[..cut], &recipe.model).map_err(named)?;
            (model, None)
        }
    };
    let ids = model.encode(text);
    if ids.is_empty() {
        return Err(named(Error::Config("the text is empty".into())));
    }
    let valid = match valid {
        Some(v) => Err(model.encode(v)),
        None => Ok(ids.len() - corpus::split_valid(&ids, notes.valid_fraction).1.len()),
    };
    let (config, state) = match resumed {
        Some((config, state)) => (config, Some(state)),
        None => (recipe.train_config(), None),
    };
    let prepared = PreparedText {
        model,
        ids,
        valid,
        config,
        text: TextConfig {
            max_seconds: recipe.max_seconds,
            ..notes.text
        },
        notes,
        state,
    };
    prepared.config.validate()?;
    crate::train::text::check_text(prepared.texts(None), &prepared.config, &prepared.text)
        .map_err(named)?;
    Ok(prepared)
}

impl PreparedText {
    /// Starts a new run's embedding at the word vectors of the `.vec` file at `vectors`, and
    /// keeps it fixed in training with `freeze`, as a classifier's run does (see
    /// [`crate::recipe::start_embedding`]).
    ///
    /// # Errors
    /// As [`crate::recipe::start_embedding`].
    pub fn start_embedding(
        &mut self,
        vectors: Option<&std::path::Path>,
        freeze: bool,
    ) -> Result<Option<crate::data::vectors::Found>> {
        let start = crate::recipe::EmbeddingStart { vectors, freeze };
        let resumed = self.state.is_some();
        let model = &mut self.model;
        crate::recipe::start_embedding(
            &mut model.network,
            &model.vocab,
            &mut self.config,
            resumed,
            start,
        )
    }

    /// The training and validation tokens.
    pub fn texts<'a>(&'a self, stop: Option<&'a AtomicBool>) -> Texts<'a> {
        texts(&self.ids, &self.valid, stop)
    }

    /// Runs the training (a new run, or the one it resumes), writing `files` as it goes (see
    /// [`Saver`]), stopping after the window in which `stop` becomes true. `self.model` is the
    /// trained model afterwards.
    ///
    /// # Errors
    /// As [`crate::train::text::train_text`] and [`Saver::finish`]; [`Error::Io`] if a file
    /// cannot be written.
    pub fn run(
        &mut self,
        files: Option<RunFiles>,
        stop: Option<&AtomicBool>,
        on_event: impl FnMut(Event<'_>) + Send,
    ) -> Result<TrainReport> {
        let initial = self.state.is_none().then(|| self.model.contents());
        let mut saver = Saver::start(files, &self.config, &self.notes, initial)?;
        // (the fields apart: the model is borrowed mutably beside them)
        let texts = texts(&self.ids, &self.valid, stop);
        let result = {
            let (network, rest) = self.model.network_and_rest();
            let on_event = checkpoint::writing(&mut saver, rest, on_event);
            let (config, text, state) = (&self.config, &self.text, self.state.take());
            crate::train::text::train_text(network, texts, config, text, state, on_event)
        };
        checkpoint::end(saver, result, self.model.contents())
    }
}

/// The training and validation tokens of a [`PreparedText`]'s `ids` and `valid`.
fn texts<'a>(
    ids: &'a [u32],
    valid: &'a Result<usize, Vec<u32>>,
    stop: Option<&'a AtomicBool>,
) -> Texts<'a> {
    let (train, valid) = match valid {
        Ok(at) => ids.split_at(*at),
        Err(valid) => (ids, &valid[..]),
    };
    Texts { train, valid, stop }
}
