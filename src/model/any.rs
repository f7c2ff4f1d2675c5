//! A model file of either kind: a classifier (`rnn train`'s: a label for a text) or a language
//! model (`rnn lm`'s: the next token), told apart here and nowhere else ([`Kind::of`]), by the
//! network's head and the file's labels.

use std::path::Path;

use crate::error::{Error, Result};
use crate::lm::LanguageModel;
use crate::model::Model;
use crate::model_file::{self, Contents};
use crate::rnn::{Architecture, Head};

/// A model of either kind.
#[derive(Clone, Debug)]
pub enum AnyModel {
    /// A classifier: a label for a text.
    Classifier(Model),
    /// A language model: the text after a beginning.
    LanguageModel(LanguageModel),
}

/// Which kind a model is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Classifier,
    LanguageModel,
}

impl Kind {
    /// The kind of a network with these labels: a classifier predicts one of its labels from a
    /// whole text; a language model predicts at every step the next token (its classes are
    /// the vocabulary) and has no labels. `None` for a network that is neither.
    pub fn of(arch: &Architecture, labels: &[String]) -> Option<Kind> {
        match arch.head {
            Head::Sequence => Some(Kind::Classifier),
            Head::Step if labels.is_empty() && arch.classes == arch.vocab => {
                Some(Kind::LanguageModel)
            }
            Head::Step => None,
        }
    }

    /// The name in JSON answers: `"classifier"` or `"language_model"`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Classifier => "classifier",
            Kind::LanguageModel => "language_model",
        }
    }
}

impl AnyModel {
    /// Reads a model file of either kind (the file is read once).
    ///
    /// # Errors
    /// As [`model_file::load`], and [`Error::Model`] for a file that holds neither kind (see
    /// [`AnyModel::from_contents`]).
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_contents(model_file::load(path)?, path)
    }

    /// The model that a model file's contents (read from `path`) hold.
    ///
    /// # Errors
    /// [`Error::Model`] for a network that predicts at every step but not the next token, or
    /// a language model that reads both ways (it would see the token it is to predict).
    pub fn from_contents(contents: Contents, path: &Path) -> Result<Self> {
        let arch = contents.network.arch();
        match Kind::of(arch, &contents.labels) {
            Some(Kind::Classifier) => Ok(AnyModel::Classifier(contents)),
            Some(Kind::LanguageModel) if arch.bidirectional => Err(Error::model(
                path,
                "a language model that reads the text both ways: it would see the token it \
                 predicts, so it cannot write or score text (`rnn lm` trains forwards only)",
            )),
            Some(Kind::LanguageModel) => Ok(AnyModel::LanguageModel(LanguageModel {
                network: contents.network,
                vocab: contents.vocab,
                tokens: contents.tokens,
            })),
            None => Err(Error::model(
                path,
                "a network that predicts at every step but not the next token: neither a \
                 classifier (`rnn train`) nor a language model (`rnn lm`)",
            )),
        }
    }

    /// Which kind of model this is.
    pub fn kind(&self) -> Kind {
        match self {
            AnyModel::Classifier(_) => Kind::Classifier,
            AnyModel::LanguageModel(_) => Kind::LanguageModel,
        }
    }
}

impl From<Model> for AnyModel {
    fn from(model: Model) -> Self {
        AnyModel::Classifier(model)
    }
}

impl From<LanguageModel> for AnyModel {
    fn from(model: LanguageModel) -> Self {
        AnyModel::LanguageModel(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::files::Columns;
    use crate::data::{Tokens, Vocab};
    use crate::model_file::ContentsRef;
    use crate::rng::Rng;
    use crate::rnn::{CellKind, Init, Network};

    /// A language model's network written with `bidirectional` as given.
    fn language_model_file(bidirectional: bool, path: &Path) {
        let vocab = Vocab::build(["abcabc"], Tokens::Char, 1, None, None);
        let arch = Architecture {
            bidirectional,
            ..Architecture::language_model(CellKind::Gru, vocab.len(), 4)
        };
        let network = Network::new(&arch, Init::LikeRnn, &mut Rng::new(0)).unwrap();
        let contents = ContentsRef {
            network: &network,
            params: network.params(),
            vocab: &vocab,
            labels: &[],
            tokens: Tokens::Char,
            max_len: None,
            columns: &Columns::default(),
        };
        model_file::save(contents, path).unwrap();
    }

    #[test]
    fn a_language_model_that_reads_both_ways_is_refused_when_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lm.safetensors");
        language_model_file(false, &path);
        assert_eq!(AnyModel::load(&path).unwrap().kind(), Kind::LanguageModel);
        // a crafted file: generate and eval would index past the states of one direction
        language_model_file(true, &path);
        let message = AnyModel::load(&path).unwrap_err().to_string();
        assert!(message.contains("reads the text both ways"), "{message}");
        let message = LanguageModel::load(&path).unwrap_err().to_string();
        assert!(message.contains("reads the text both ways"), "{message}");
    }
}
