//! What the server serves: a model of either kind ([`AnyModel`], told apart by the model file
//! itself), and the verbs each kind answers.

pub use crate::model::{AnyModel, Kind};

/// The verbs of `POST /v1/models/NAME:VERB` a model of `kind` answers.
pub fn verbs(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Classifier => &["predict", "explain"],
        Kind::LanguageModel => &["generate"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Tokens;
    use crate::lm::LanguageModel;
    use crate::model::{Model, ModelConfig};

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
        let loaded = AnyModel::load(&path).unwrap();
        assert_eq!(loaded.kind(), Kind::Classifier);
        assert_eq!(verbs(loaded.kind()), ["predict", "explain"]);

        let config = ModelConfig {
            tokens: Tokens::Char,
            bidirectional: false,
            ..config
        };
        let lm = LanguageModel::for_text("abcabc", &config).unwrap();
        let path = dir.path().join("lm.safetensors");
        lm.save(&path).unwrap();
        let AnyModel::LanguageModel(loaded) = AnyModel::load(&path).unwrap() else {
            panic!("not loaded as a language model");
        };
        assert_eq!(loaded.vocab.len(), lm.vocab.len());
        assert_eq!(Kind::LanguageModel.name(), "language_model");
        assert_eq!(verbs(Kind::LanguageModel), ["generate"]);

        std::fs::write(&path, b"not a model").unwrap();
        assert!(AnyModel::load(&path).is_err());
    }
}
