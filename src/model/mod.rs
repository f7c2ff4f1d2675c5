//! A model: a trained [`Network`], the text codec that turns text into its input (the token
//! rule, the vocabulary, the length limit), and its task, which says what the network's output
//! means: a label for a whole text (a classifier, `rnn train`'s) or, at every step, the next
//! token (a language model, `rnn lm`'s). This is what a model file holds, and what every
//! command works with. One [`Model::load`] reads a file of either kind, and tells the kinds
//! apart there and nowhere else ([`Model::from_parts`]); the rest asks [`Model::kind`].
//!
//! A classifier's operations (predict, explain, evaluate, train on labelled examples) are
//! below; a language model's (score a text, name the likeliest next tokens, write text, train
//! on a text) are in [`crate::lm`]. An operation of one kind on a model of the other is an
//! [`Error::Config`] that says so ([`Model::check_kind`]).
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
//! let prediction = &model.predict(&["not bad"])?[0];
//! assert_eq!(model.labels()[prediction.label], "pos");
//! assert!(prediction.probs[prediction.label] > 0.5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;

mod classify;
mod config;
pub use classify::{Evaluation, Explanation, Prediction};
pub use config::{Initializer, ModelConfig, default_ngrams};

use crate::data::files::Columns;
use crate::data::{Tokens, Vocab, unseen_key};
use crate::error::{Error, Result};
use crate::model_file::{self, ContentsRef, Rest};
pub use crate::rnn::Cancelled;
use crate::rnn::{Head, Network, TokenGrams};

/// A model of either kind: a network, its text codec (`vocab`, `tokens`, `max_len`) and its
/// task.
#[derive(Clone, Debug)]
pub struct Model {
    pub network: Network,
    pub vocab: Vocab,
    /// How texts are split into tokens (and a language model's tokens joined back: see
    /// [`Model::join`]).
    pub tokens: Tokens,
    /// Texts are cut to their first `max_len` tokens, when set. A classifier's setting: a
    /// language model reads its texts whole (its file holds none).
    pub max_len: Option<usize>,
    /// What the network's output means.
    pub task: Task,
}

/// What a model's network predicts, and what that needs beside the network.
#[derive(Clone, Debug, PartialEq)]
pub enum Task {
    /// A label for a whole text: the network predicts once a text ([`Head::Sequence`]), one
    /// class a label.
    Classifier {
        /// Class names, by index.
        labels: Vec<String>,
        /// The columns of the TSV/CSV data it was trained on (`text` and `label` by default),
        /// which `rnn eval` and `rnn predict` read unless told otherwise.
        columns: Columns,
    },
    /// The next token: the network predicts at every step ([`Head::Step`]), its classes the
    /// vocabulary, reading forwards only (it must not see the token it predicts).
    NextToken,
}

/// Which kind a model is: its [`Task`], without what the task holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Classifier,
    LanguageModel,
}

impl Task {
    /// Which kind of model does this task.
    pub fn kind(&self) -> Kind {
        match self {
            Task::Classifier { .. } => Kind::Classifier,
            Task::NextToken => Kind::LanguageModel,
        }
    }

    /// A classifier's class names, by index; none for a language model.
    pub fn labels(&self) -> &[String] {
        match self {
            Task::Classifier { labels, .. } => labels,
            Task::NextToken => &[],
        }
    }

    /// The columns of the TSV/CSV data a classifier was trained on; none for a language model,
    /// which reads plain text.
    pub fn columns(&self) -> Option<&Columns> {
        match self {
            Task::Classifier { columns, .. } => Some(columns),
            Task::NextToken => None,
        }
    }
}

impl Kind {
    /// The name in JSON answers: `"classifier"` or `"language_model"`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Classifier => "classifier",
            Kind::LanguageModel => "language_model",
        }
    }

    /// What a model of this kind is and does, for messages.
    fn described(self) -> &'static str {
        match self {
            Kind::Classifier => "a classifier, which gives a whole text a label (`rnn train`)",
            Kind::LanguageModel => "a language model, which predicts the next token (`rnn lm`)",
        }
    }
}

impl Model {
    /// Which kind of model this is.
    pub fn kind(&self) -> Kind {
        self.task.kind()
    }

    /// A classifier's class names, by index; none for a language model.
    pub fn labels(&self) -> &[String] {
        self.task.labels()
    }

    /// The columns of the TSV/CSV data a classifier was trained on; none for a language model,
    /// which reads plain text.
    pub fn columns(&self) -> Option<&Columns> {
        self.task.columns()
    }

    /// Reads a model file of either kind (see [`crate::model_file`]); [`Model::kind`] tells
    /// which it holds.
    ///
    /// # Errors
    /// As [`model_file::load`]: among others, [`Error::Model`] for a file that holds neither
    /// kind (see [`Model::from_parts`]).
    pub fn load(path: &Path) -> Result<Self> {
        model_file::load(path)
    }

    /// Reads a model file that must hold a model of `kind`: [`Model::load`], then
    /// [`Model::of_kind`].
    ///
    /// # Errors
    /// As [`Model::load`] and [`Model::of_kind`].
    pub fn load_as(path: &Path, kind: Kind) -> Result<Self> {
        Self::load(path)?.of_kind(kind, path)
    }

    /// This model (read from `path`), if it is of `kind`.
    ///
    /// # Errors
    /// [`Error::Model`] saying what the model is and which command takes it.
    pub fn of_kind(self, kind: Kind, path: &Path) -> Result<Self> {
        match (kind, self.kind()) {
            (wanted, is) if wanted == is => Ok(self),
            (Kind::Classifier, _) => Err(Error::model(
                path,
                "a language model, not a classifier: it predicts the next token; use \
                 `rnn generate` to write text with it, or `rnn eval` to score it on a text",
            )),
            (Kind::LanguageModel, _) => Err(Error::model(
                path,
                "a classifier, not a language model: use `rnn predict` with it (`rnn generate` \
                 needs a model trained by `rnn lm`)",
            )),
        }
    }

    /// Checks that this model is of `kind` before `what`, which only a model of that kind
    /// does (a language model has no labels to predict; a classifier predicts no next token).
    ///
    /// # Errors
    /// [`Error::Config`] naming `what`, what it needs and what this model is.
    pub fn check_kind(&self, kind: Kind, what: &str) -> Result<()> {
        if self.kind() == kind {
            return Ok(());
        }
        Err(Error::Config(format!(
            "{what} needs {}; this is {}",
            kind.described(),
            self.kind().described()
        )))
    }

    /// The model that a model file's parts make: the network, the text codec, and the labels
    /// and columns the file holds (`None` for a file without labels, as a language model's).
    /// The kinds are told apart here and nowhere else: a network that predicts once a text
    /// ([`Head::Sequence`]) with labels is a classifier; one that predicts at every step, its
    /// classes its vocabulary, without labels, is a language model, which reads its texts whole
    /// (`max_len` is dropped) and must read them forwards only.
    ///
    /// # Errors
    /// The sentence for [`Error::Model`]: a network that predicts at every step but not the
    /// next token, or a language model that reads both ways (it would see the token it is to
    /// predict).
    pub fn from_parts(
        network: Network,
        vocab: Vocab,
        tokens: Tokens,
        max_len: Option<usize>,
        labels: Option<Vec<String>>,
        columns: Columns,
    ) -> std::result::Result<Self, &'static str> {
        let arch = network.arch();
        let (task, max_len) = match labels {
            Some(labels) if arch.head == Head::Sequence => {
                (Task::Classifier { labels, columns }, max_len)
            }
            None if arch.head == Head::Step && arch.classes == arch.vocab => {
                if arch.bidirectional {
                    return Err(
                        "a language model that reads the text both ways: it would see the token \
                         it predicts, so it cannot write or score text (`rnn lm` trains forwards \
                         only)",
                    );
                }
                (Task::NextToken, None)
            }
            _ => {
                return Err(
                    "a network that predicts at every step but not the next token: neither a \
                     classifier (`rnn train`) nor a language model (`rnn lm`)",
                );
            }
        };
        Ok(Model {
            network,
            vocab,
            tokens,
            max_len,
            task,
        })
    }

    /// Writes a model file atomically (see [`crate::model_file`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        model_file::save(self.contents(), path)
    }

    /// The model as a model file holds it.
    pub fn contents(&self) -> ContentsRef<'_> {
        let rest = Rest {
            vocab: &self.vocab,
            tokens: self.tokens,
            max_len: self.max_len,
            task: &self.task,
        };
        rest.around(&self.network, self.network.params())
    }

    /// The network, to be trained, and beside it what the model file holds with it (borrowed
    /// apart, so that a run can write the model file as it trains).
    pub fn network_and_rest(&mut self) -> (&mut Network, Rest<'_>) {
        let Model {
            network,
            vocab,
            tokens,
            max_len,
            task,
        } = self;
        let rest = Rest {
            vocab,
            tokens: *tokens,
            max_len: *max_len,
            task,
        };
        (network, rest)
    }

    /// The token indices of `text`: split by the model's rule, unknown tokens as `<unk>`, cut
    /// to `max_len`. With a wide path (and `<unk>` first in the vocabulary), an unknown token
    /// is its [`UNSEEN`](crate::data::UNSEEN) key instead, which the network reads as `<unk>` and its n-grams by
    /// the token's hash (see [`unseen_key`]). With subword vectors, the network also needs
    /// every token's n-grams: [`Model::encode_with_grams`].
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.encode_text(text, false).0
    }

    /// [`Model::encode`], and with subword vectors every token's character n-grams, taken
    /// from the word itself (a word the vocabulary lacks too; see [`crate::rnn::Subwords`]);
    /// empty n-grams without.
    pub fn encode_with_grams(&self, text: &str) -> (Vec<u32>, TokenGrams) {
        self.encode_text(text, true)
    }

    /// The token ids of `text`, and with `grams_too` (and subword vectors) their n-grams, which
    /// [`Model::encode`] does not hash only to drop.
    fn encode_text(&self, text: &str, grams_too: bool) -> (Vec<u32>, TokenGrams) {
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
                    if let Some(subwords) = arch.subwords.filter(|_| grams_too) {
                        grams.push(subwords, t);
                    }
                }
            }
        });
        (ids, grams)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model_file::ContentsRef;
    use crate::rng::Rng;
    use crate::rnn::{Architecture, CellKind, Init};

    /// A language model's network written with `bidirectional` as given.
    fn language_model_file(bidirectional: bool, path: &Path) {
        let vocab = Vocab::build(["abcabc"], Tokens::Char, 1, None, None);
        let arch = Architecture {
            bidirectional,
            ..Architecture::language_model(CellKind::Gru, vocab.len(), 4)
        };
        let network = Network::new(&arch, Init::LikeRnn, &mut Rng::new(0)).unwrap();
        let rest = Rest {
            vocab: &vocab,
            tokens: Tokens::Char,
            max_len: None,
            task: &Task::NextToken,
        };
        let contents: ContentsRef<'_> = rest.around(&network, network.params());
        model_file::save(contents, path).unwrap();
    }

    #[test]
    fn a_language_model_that_reads_both_ways_is_refused_when_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lm.safetensors");
        language_model_file(false, &path);
        assert_eq!(Model::load(&path).unwrap().kind(), Kind::LanguageModel);
        // a crafted file: generate and eval would index past the states of one direction
        language_model_file(true, &path);
        let message = Model::load(&path).unwrap_err().to_string();
        assert!(message.contains("reads the text both ways"), "{message}");
        let message = Model::load_as(&path, Kind::LanguageModel)
            .unwrap_err()
            .to_string();
        assert!(message.contains("reads the text both ways"), "{message}");
    }

    #[test]
    fn a_file_loads_as_the_kind_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let config = ModelConfig {
            hidden: 4,
            ..ModelConfig::seed()
        };
        let classifier = Model::for_data([("good", "pos"), ("bad", "neg")], &config).unwrap();
        let path = dir.path().join("c.safetensors");
        classifier.save(&path).unwrap();
        let loaded = Model::load(&path).unwrap();
        assert_eq!(loaded.kind(), Kind::Classifier);
        assert_eq!(loaded.labels(), ["neg", "pos"]);
        assert_eq!(loaded.task, classifier.task);
        let message = Model::load_as(&path, Kind::LanguageModel)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("a classifier, not a language model"),
            "{message}"
        );

        let config = ModelConfig {
            tokens: Tokens::Char,
            bidirectional: false,
            ..config
        };
        let lm = Model::for_text("abcabc", &config).unwrap();
        let path = dir.path().join("lm.safetensors");
        lm.save(&path).unwrap();
        let loaded = Model::load_as(&path, Kind::LanguageModel).unwrap();
        assert_eq!(loaded.task, Task::NextToken);
        assert_eq!(loaded.vocab.len(), lm.vocab.len());
        assert!(loaded.labels().is_empty());
        assert_eq!(Kind::LanguageModel.name(), "language_model");
        let message = Model::load_as(&path, Kind::Classifier)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("a language model, not a classifier"),
            "{message}"
        );

        std::fs::write(&path, b"not a model").unwrap();
        assert!(Model::load(&path).is_err());
    }

    #[test]
    fn an_operation_of_the_other_kind_is_an_error_not_a_panic() {
        let config = ModelConfig {
            hidden: 4,
            tokens: Tokens::Char,
            bidirectional: false,
            ..ModelConfig::seed()
        };
        let lm = Model::for_text("abcabc", &config).unwrap();
        let classifier = Model::for_data([("good", "pos"), ("bad", "neg")], &config).unwrap();
        let needs = |result: Result<()>, what: &str, kind: &str| {
            let message = result.unwrap_err().to_string();
            assert!(message.starts_with(what), "{message}");
            assert!(message.contains(&format!("; this is {kind}")), "{message}");
        };
        let classifier_s = "a classifier";
        let language_model = "a language model";
        needs(
            lm.predict(&["", "ab"]).map(drop),
            "a prediction",
            language_model,
        );
        needs(lm.evaluate(&[]).map(drop), "an evaluation", language_model);
        needs(lm.flow("ab", None).map(drop), "the flow", language_model);
        let rows = [crate::data::files::Row {
            line: 1,
            text: "ab".into(),
            label: "pos".into(),
        }];
        needs(
            lm.examples(&rows, "x".as_ref()).map(drop),
            "labelled examples",
            language_model,
        );
        needs(
            classifier.next_tokens("good", 3).map(drop),
            "the likeliest next tokens",
            classifier_s,
        );
        needs(
            classifier.evaluate_text(&[0, 1, 0], 1, 2).map(drop),
            "scoring a text",
            classifier_s,
        );
        needs(
            classifier.generate("good", &Default::default()).map(drop),
            "writing text",
            classifier_s,
        );
        // a language model's explanation: the next token's probabilities after each token
        let explanation = lm.explain("ab");
        assert_eq!(explanation.tokens, ["a", "b"]);
        assert_eq!(explanation.probs.len(), 2);
        let b = lm.encode("ab")[1] as usize;
        let p = lm.next_tokens("ab", 0).unwrap()[1].p.unwrap();
        assert!((explanation.probs[0][b] - p).abs() < 1e-5, "{p}");
        assert!(lm.explain("").probs.is_empty());
    }
}
