//! Data: sentences and their classes, the vocabulary, and the encoding of a sentence as a
//! sequence of one-hot vectors.
//!
//! **One-hot encoding.** Every distinct word of the training data gets an index `0..V`; word `i`
//! is the vector `x` of `V` zeros with a 1 at position `i`. The network only ever multiplies
//! `x` by `Wxh`, and `Wxh · onehot(i)` is column `i` of `Wxh`, so a sentence is kept as its
//! word indices and the product is a column look-up ([`Vocab::one_hot`] builds the vector
//! itself, to show the idea; training never needs it).

pub mod sample;

use std::collections::HashMap;

/// One sequence and its class: the tokens' indices in the vocabulary and the label's index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub tokens: Vec<u32>,
    pub label: u32,
}

/// The words of a text: lowercased and split on white space.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split_whitespace().map(str::to_lowercase)
}

/// The vocabulary: tokens by index, in order of first appearance, and the way back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vocab {
    tokens: Vec<String>,
    index: HashMap<String, u32>,
}

impl Vocab {
    /// The vocabulary of `texts`: every distinct word, numbered in order of first appearance.
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut vocab = Vocab::default();
        for text in texts {
            for word in words(text) {
                vocab.insert(word);
            }
        }
        vocab
    }

    /// Adds `token` at the end unless it is already there; returns its index.
    pub fn insert(&mut self, token: String) -> u32 {
        if let Some(&i) = self.index.get(&token) {
            return i;
        }
        let i = self.tokens.len() as u32;
        self.index.insert(token.clone(), i);
        self.tokens.push(token);
        i
    }

    /// `V`, the number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The index of `token`, if it is in the vocabulary.
    pub fn index(&self, token: &str) -> Option<u32> {
        self.index.get(token).copied()
    }

    /// The token with index `i`.
    pub fn token(&self, i: u32) -> &str {
        &self.tokens[i as usize]
    }

    /// All tokens, by index.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The one-hot vector of `token`: `V` zeros with a 1 at the token's index.
    pub fn one_hot(&self, token: &str) -> Option<Vec<f32>> {
        let i = self.index(token)? as usize;
        let mut x = vec![0.0; self.len()];
        x[i] = 1.0;
        Some(x)
    }

    /// The indices of the words of `text`, or the first word that is not in the vocabulary.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        words(text).map(|w| self.index(&w).ok_or(w)).collect()
    }
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
    fn the_vocabulary_numbers_words_in_order_of_first_appearance() {
        let vocab = Vocab::from_texts(["Not bad", "not GOOD at all"]);
        assert_eq!(vocab.tokens(), ["not", "bad", "good", "at", "all"]);
        assert_eq!(vocab.index("good"), Some(2));
        assert_eq!(vocab.index("great"), None);
        assert_eq!(vocab.encode("all  not\tgood"), Ok(vec![4, 0, 2]));
        assert_eq!(vocab.encode("not great"), Err("great".to_string()));
    }

    #[test]
    fn a_one_hot_vector_has_a_single_one_at_the_word_index() {
        let vocab = Vocab::from_texts(["a b c"]);
        assert_eq!(vocab.one_hot("b"), Some(vec![0.0, 1.0, 0.0]));
        assert_eq!(vocab.one_hot("d"), None);
    }

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
    fn an_unknown_test_word_is_reported() {
        let err = Dataset::from_pairs(&[("good", "pos")], &[("great", "pos")]).unwrap_err();
        assert!(err.contains("\"great\""), "{err}");
    }
}
