//! What the server serves: a [`Model`](crate::model::Model) of either kind (told apart by the
//! model file itself: see [`Kind`]), and the verbs each kind answers.

pub use crate::model::Kind;

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

    #[test]
    fn each_kind_answers_its_own_verbs() {
        assert_eq!(verbs(Kind::Classifier), ["predict", "explain"]);
        assert_eq!(Kind::Classifier.name(), "classifier");
        assert_eq!(verbs(Kind::LanguageModel), ["generate"]);
        assert_eq!(Kind::LanguageModel.name(), "language_model");
    }
}
