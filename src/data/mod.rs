//! Data: texts and their classes, tokens, the vocabulary, and the files they come from.
//!
//! A text becomes a sequence of token indices ([`Tokens`], [`Vocab`]); each index stands for a
//! one-hot vector (see [`vocab`]). A class is an index into a list of label names.

pub mod files;
pub mod records;
pub mod sample;
pub mod split;
pub mod tokens;
pub mod vectors;
pub mod vocab;

pub use tokens::Tokens;

use crate::rnn::TokenGrams;
pub use vocab::{TokenCounts, UNK, UNSEEN, Vocab, network_token, unseen_key};

/// One sequence and its class: the tokens' indices in the vocabulary and the label's index,
/// and for a model with subword vectors, every token's character n-grams (see
/// [`crate::rnn::Subwords`]; empty otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub tokens: Vec<u32>,
    pub label: u32,
    pub grams: TokenGrams,
}

/// A labelled dataset in memory: examples, with the vocabulary and class names they index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dataset {
    pub vocab: Vocab,
    /// Class names by index.
    pub labels: Vec<String>,
    pub train: Vec<Example>,
    pub test: Vec<Example>,
}

impl Dataset {
    /// Encodes `(sentence, label)` pairs: the vocabulary from the training sentences, the
    /// classes sorted by name.
    ///
    /// # Errors
    /// The first test sentence with a word or label that training does not have.
    pub fn from_pairs(train: &[(&str, &str)], test: &[(&str, &str)]) -> Result<Self, String> {
        let vocab = Vocab::from_texts(train.iter().map(|&(text, _)| text));
        let mut labels: Vec<String> = train.iter().map(|&(_, l)| l.to_string()).collect();
        labels.sort();
        labels.dedup();
        let encode = |pairs: &[(&str, &str)]| -> Result<Vec<Example>, String> {
            pairs
                .iter()
                .map(|&(text, label)| {
                    let tokens = vocab.encode(text).map_err(|w| {
                        format!("{text:?}: the word {w:?} is not in the vocabulary")
                    })?;
                    let label = labels
                        .iter()
                        .position(|l| l == label)
                        .ok_or_else(|| format!("{text:?}: unknown label {label:?}"))?;
                    Ok(Example {
                        tokens,
                        label: label as u32,
                        grams: TokenGrams::default(),
                    })
                })
                .collect()
        };
        let (train, test) = (encode(train)?, encode(test)?);
        Ok(Dataset {
            vocab,
            labels,
            train,
            test,
        })
    }

    /// The built-in sample ([`sample::TRAIN`] and [`sample::TEST`]), encoded.
    pub fn sample() -> Self {
        Self::from_pairs(sample::TRAIN, sample::TEST)
            .expect("the sample's test words are all in training")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_balanced_and_its_test_words_are_all_in_training() {
        let data = Dataset::sample();
        assert_eq!(data.labels, [sample::NEGATIVE, sample::POSITIVE]);
        assert_eq!((data.train.len(), data.test.len()), (50, 25));
        let positives = data.train.iter().filter(|e| e.label == 1).count();
        assert_eq!(positives, 25);
        for (text, _) in sample::TEST {
            assert!(
                !sample::TRAIN.iter().any(|(t, _)| t == text),
                "{text:?} is also a training sentence"
            );
        }
    }

    #[test]
    fn the_sample_files_hold_the_built_in_sample() {
        // data/sample/*.tsv are the tutorial's data; they must not drift from the demo's.
        for (file, pairs) in [("train.tsv", sample::TRAIN), ("test.tsv", sample::TEST)] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("data/sample")
                .join(file);
            let rows = files::read_rows(&path, &files::ReadOptions::default()).unwrap();
            let read: Vec<(&str, &str)> = rows
                .iter()
                .map(|r| (r.text.as_str(), r.label.as_str()))
                .collect();
            assert_eq!(read, pairs, "{file}");
        }
    }

    #[test]
    fn an_unknown_test_word_is_reported() {
        let err = Dataset::from_pairs(&[("good", "pos")], &[("great", "pos")]).unwrap_err();
        assert!(err.contains("\"great\""), "{err}");
    }
}
