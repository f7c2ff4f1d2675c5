//! What the server serves: a classifier (`rnn train`'s model: `:predict` and `:explain`) or a
//! language model (`rnn lm`'s: `:generate`), told apart by the model file itself.

use std::path::Path;

use crate::error::{Error, Result};
use crate::lm::{self, LanguageModel};
use crate::model::Model;
use crate::model_file;
use crate::rnn::Head;

/// A model the server can serve.
#[derive(Clone, Debug)]
pub enum ServedModel {
    /// A classifier: a label for a text.
    Classifier(Model),
    /// A language model: the text after a beginning.
    LanguageModel(LanguageModel),
}

/// Which kind a served model is, as `/v1/models` and `/v1/models/NAME` say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Classifier,
    LanguageModel,
}

impl Kind {
    /// The name in the JSON: `"classifier"` or `"language_model"`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Classifier => "classifier",
            Kind::LanguageModel => "language_model",
        }
    }

    /// The verbs of `POST /v1/models/NAME:VERB` a model of this kind answers.
    pub fn verbs(self) -> &'static [&'static str] {
        match self {
            Kind::Classifier => &["predict", "explain"],
            Kind::LanguageModel => &["generate"],
        }
    }
}

impl ServedModel {
    /// Reads a model file, a classifier's or a language model's (the file is read once).
    ///
    /// # Errors
    /// As [`model_file::load`], and [`Error::Model`] for a file whose network is neither.
    pub fn load(path: &Path) -> Result<Self> {
        let contents = model_file::load(path)?;
        let arch = contents.network.arch();
        if arch.head == Head::Sequence {
            return Ok(ServedModel::Classifier(Model::from(contents)));
        }
        if !lm::is_language_model(arch) {
            return Err(Error::model(
                path,
                "a network that predicts at every step but not the next token: neither a \
                 classifier (`rnn train`) nor a language model (`rnn lm`)",
            ));
        }
        LanguageModel::from_contents(contents)
            .map(ServedModel::LanguageModel)
            .map_err(|message| Error::model(path, message))
    }

    /// Which kind of model this is.
    pub fn kind(&self) -> Kind {
        match self {
            ServedModel::Classifier(_) => Kind::Classifier,
            ServedModel::LanguageModel(_) => Kind::LanguageModel,
        }
    }
}

impl From<Model> for ServedModel {
    fn from(model: Model) -> Self {
        ServedModel::Classifier(model)
    }
}

impl From<LanguageModel> for ServedModel {
    fn from(model: LanguageModel) -> Self {
        ServedModel::LanguageModel(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Tokens;
    use crate::model::ModelConfig;

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
        let loaded = ServedModel::load(&path).unwrap();
        assert_eq!(loaded.kind(), Kind::Classifier);
        assert_eq!(loaded.kind().verbs(), ["predict", "explain"]);

        let config = ModelConfig {
            tokens: Tokens::Char,
            bidirectional: false,
            ..config
        };
        let lm = LanguageModel::for_text("abcabc", &config).unwrap();
        let path = dir.path().join("lm.safetensors");
        lm.save(&path).unwrap();
        let ServedModel::LanguageModel(loaded) = ServedModel::load(&path).unwrap() else {
            panic!("not loaded as a language model");
        };
        assert_eq!(loaded.vocab.len(), lm.vocab.len());
        assert_eq!(Kind::LanguageModel.name(), "language_model");

        std::fs::write(&path, b"not a model").unwrap();
        assert!(ServedModel::load(&path).is_err());
    }
}
