//! A classifier: a trained [`Network`] with what turns text into its input (the token rule,
//! the vocabulary, the length limit) and its output into label names. This is what a model file
//! holds and what `rnn train`, `eval`, `predict` and `explain` work with.
//!
//! ```
//! use rnn::data::files::Row;
//! use rnn::model::{Model, ModelConfig};
//! use rnn::optim::OptimizerKind;
//! use rnn::train::{Data, TrainConfig};
//!
//! // Examples in memory (a file read with `rnn::data::files::read_rows` gives the same rows).
//! let data = [
//!     ("good", "pos"), ("bad", "neg"), ("very good", "pos"),
//!     ("very bad", "neg"), ("not good", "neg"), ("not bad", "pos"),
//! ];
//! let rows: Vec<Row> = data
//!     .iter()
//!     .enumerate()
//!     .map(|(i, (text, label))| Row { line: i + 1, text: text.to_string(), label: label.to_string() })
//!     .collect();
//! let mut model = Model::for_data(data, &ModelConfig { hidden: 16, ..ModelConfig::default() })?;
//! let examples = model.examples(&rows, "memory".as_ref())?;
//! let config = TrainConfig {
//!     epochs: 100,
//!     optimizer: OptimizerKind::Adam,
//!     lr: 0.01,
//!     ..TrainConfig::default()
//! };
//! let data = Data { train: &examples, ..Data::default() };
//! model.train(data, &config, |_| {})?;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("model.safetensors");
//! model.save(&path)?;
//! let model = Model::load(&path)?;
//! let prediction = &model.predict(&["not bad"])[0];
//! assert_eq!(model.labels[prediction.label], "pos");
//! assert!(prediction.probs[prediction.label] > 0.5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;

mod any;
mod classify;
mod config;
pub use any::{AnyModel, Kind};
pub use classify::{Evaluation, Explanation, Prediction};
pub use config::{Initializer, ModelConfig, default_ngrams};

use crate::data::files::Columns;
use crate::data::{Tokens, Vocab, unseen_key};
use crate::error::{Error, Result};
use crate::model_file::{self, ContentsRef, Rest};
pub use crate::rnn::Cancelled;
use crate::rnn::{Network, TokenGrams};

/// A text classifier.
#[derive(Clone, Debug)]
pub struct Model {
    pub network: Network,
    pub vocab: Vocab,
    /// Class names, by index.
    pub labels: Vec<String>,
    /// How texts are split into tokens.
    pub tokens: Tokens,
    /// Texts are cut to their first `max_len` tokens, when set.
    pub max_len: Option<usize>,
    /// The columns of the TSV/CSV data it was trained on (`text` and `label` by default),
    /// which `rnn eval` reads unless told otherwise.
    pub columns: Columns,
}

impl Model {
    /// Reads a model file (see [`crate::model_file`]).
    ///
    /// # Errors
    /// As [`model_file::load`], and [`Error::Model`] for a language model's file (see
    /// [`crate::lm::LanguageModel::load`]).
    pub fn load(path: &Path) -> Result<Self> {
        match AnyModel::load(path)? {
            AnyModel::Classifier(model) => Ok(model),
            AnyModel::LanguageModel(_) => Err(Error::model(
                path,
                "a language model, not a classifier: it predicts the next token; use \
                 `rnn generate` to write text with it, or `rnn eval` to score it on a text",
            )),
        }
    }

    /// Writes a model file atomically (see [`crate::model_file`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        model_file::save(self.contents(), path)
    }

    /// The model as a model file holds it.
    pub fn contents(&self) -> ContentsRef<'_> {
        ContentsRef {
            network: &self.network,
            params: self.network.params(),
            vocab: &self.vocab,
            labels: &self.labels,
            tokens: self.tokens,
            max_len: self.max_len,
            columns: &self.columns,
        }
    }

    /// The network, to be trained, and beside it what the model file holds with it (borrowed
    /// apart, so that a run can write the model file as it trains).
    pub fn network_and_rest(&mut self) -> (&mut Network, Rest<'_>) {
        let Model {
            network,
            vocab,
            labels,
            tokens,
            max_len,
            columns,
        } = self;
        let rest = Rest {
            vocab,
            labels,
            tokens: *tokens,
            max_len: *max_len,
            columns,
        };
        (network, rest)
    }

    /// The token indices of `text`: split by the model's rule, unknown tokens as `<unk>`, cut
    /// to `max_len`. With a wide path (and `<unk>` first in the vocabulary), an unknown token
    /// is its [`UNSEEN`](crate::data::UNSEEN) key instead, which the network reads as `<unk>` and its n-grams by
    /// the token's hash (see [`unseen_key`]). With subword vectors, the network also needs
    /// every token's n-grams: [`Model::encode_with_grams`].
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.encode_with_grams(text).0
    }

    /// [`Model::encode`], and with subword vectors every token's character n-grams, taken
    /// from the word itself (a word the vocabulary lacks too; see [`crate::rnn::Subwords`]);
    /// empty n-grams without.
    pub fn encode_with_grams(&self, text: &str) -> (Vec<u32>, TokenGrams) {
        let unk = self.vocab.unk();
        let arch = self.network.arch();
        let keyed = arch.ngrams.is_some() && unk == Some(0);
        let limit = self.max_len.unwrap_or(usize::MAX);
        let (mut ids, mut grams) = (Vec::new(), TokenGrams::default());
        self.tokens.for_each(text, |t| {
            if ids.len() < limit {
                // a vocabulary without <unk> (loaded from elsewhere) drops unknown tokens
                let id = match self.vocab.index(t) {
                    Some(i) => Some(i),
                    None if keyed => Some(unseen_key(t)),
                    None => unk,
                };
                if let Some(id) = id {
                    ids.push(id);
                    if let Some(subwords) = arch.subwords {
                        grams.push(subwords, t);
                    }
                }
            }
        });
        (ids, grams)
    }
}
