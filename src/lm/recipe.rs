//! How `rnn lm` makes a language model from a text: the validation part held out of its end,
//! the vocabulary from the training part, the defaults. The command line and the Python
//! package both follow this recipe.

use std::sync::atomic::AtomicBool;

use super::LanguageModel;
use super::corpus::{self, DEFAULT_VALID_FRACTION};
use crate::data::Tokens;
use crate::error::{Error, Result};
use crate::model::{Initializer, ModelConfig};
use crate::optim::OptimizerKind;
use crate::rnn::{CellKind, Pool};
use crate::train::text::{TextConfig, Texts};
use crate::train::{Event, LrSchedule, TrainConfig, TrainReport};

/// `rnn lm`'s network: char-rnn's two layers of 256 LSTM units on one-hot characters.
pub const MODEL_DEFAULTS: ModelConfig = ModelConfig {
    cell: CellKind::Lstm,
    hidden: 256,
    layers: 2,
    bidirectional: false,
    embed: None,
    pool: Pool::Last,
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

/// A run on a text, ready to train.
#[derive(Debug)]
pub struct PreparedText {
    pub model: LanguageModel,
    /// The training tokens, then (without a validation text) the validation tokens.
    ids: Vec<u32>,
    /// Where the validation tokens start in `ids`, or the validation text's own tokens.
    valid: Result<usize, Vec<u32>>,
    pub config: TrainConfig,
    pub text: TextConfig,
}

/// Builds the model from `text` (its vocabulary from the training part) and encodes the text;
/// the validation tokens are `valid`'s, or the last [`TextRecipe::valid_fraction`] of `text`.
///
/// # Errors
/// [`Error::Config`] for an empty text, one shorter than a window of every stream, or settings
/// out of range.
pub fn prepare(text: &str, valid: Option<&str>, recipe: &TextRecipe) -> Result<PreparedText> {
    if !(0.0..1.0).contains(&recipe.valid_fraction) {
        return Err(Error::Config(format!(
            "the validation share must be at least 0 and less than 1, not {}",
            recipe.valid_fraction
        )));
    }
    let cut = match valid {
        Some(_) => text.len(),
        None => {
            let chars = (recipe.model.tokens == Tokens::Char).then(|| text.chars().count());
            training_end(text, recipe.valid_fraction, chars)
        }
    };
    let model = LanguageModel::for_text(&text[..cut], &recipe.model)?;
    let ids = model.encode(text);
    if ids.is_empty() {
        return Err(Error::Config("the text is empty".into()));
    }
    let valid = match valid {
        Some(v) => Err(model.encode(v)),
        None => Ok(ids.len() - corpus::split_valid(&ids, recipe.valid_fraction).1.len()),
    };
    let prepared = PreparedText {
        model,
        ids,
        valid,
        config: recipe.train_config(),
        text: recipe.text_config(),
    };
    prepared.config.validate()?;
    crate::train::text::check_text(prepared.texts(None), &prepared.config, &prepared.text)?;
    Ok(prepared)
}

impl PreparedText {
    /// The training and validation tokens.
    pub fn texts<'a>(&'a self, stop: Option<&'a AtomicBool>) -> Texts<'a> {
        texts(&self.ids, &self.valid, stop)
    }

    /// Trains the model, stopping after the window in which `stop` becomes true; returns it
    /// with the run's report.
    ///
    /// # Errors
    /// As [`crate::train::text::train_text`].
    pub fn train_until(
        mut self,
        stop: Option<&AtomicBool>,
        on_event: impl FnMut(Event<'_>) + Send,
    ) -> Result<(LanguageModel, TrainReport)> {
        // (the fields apart: the model is borrowed mutably beside them)
        let texts = texts(&self.ids, &self.valid, stop);
        let report = self
            .model
            .train(texts, &self.config, &self.text, None, on_event)?;
        Ok((self.model, report))
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
