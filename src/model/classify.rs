//! A classifier's operations: a new model for labelled texts, and what it does with texts and
//! labelled examples (predict, explain, the flow through the network, evaluate, train). A
//! language model has no labels: on one, each that needs them gives [`Error::Config`] (see
//! [`Model::check_kind`]).

use std::path::Path;

use rayon::prelude::*;

use super::{Kind, Model, ModelConfig, Task};
use crate::data::files::{Columns, Row};
use crate::data::{Example, UNK, Vocab};
use crate::error::{Error, Result};
use crate::metrics::Confusion;
use crate::rnn::{Cancelled, Flow, TokenGrams, Trace, WidePart, Workspace, argmax};
use crate::train::{self, Data, Event, TrainConfig, TrainReport};

/// Sequences per forward pass when predicting or evaluating.
const BATCH: usize = 32;

/// Tokens in one forward pass of [`Model::predict`] at most (unless one text alone has more):
/// a pass holds every token's embedding and input projection, 1 KB a token with the default
/// network, so 32 texts of 200,000 tokens in one pass would take 6 GB.
const BATCH_TOKENS: usize = 1 << 16;

/// A prediction for one text.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The index of the most likely label.
    pub label: usize,
    /// The probability of every label, by index.
    pub probs: Vec<f32>,
}

impl Prediction {
    /// The `k` most likely labels, most likely first, with their probabilities.
    pub fn top(&self, k: usize) -> Vec<(usize, f32)> {
        let mut ranked: Vec<(usize, f32)> = self.probs.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        ranked
    }
}

/// How a prediction evolves while the network reads a text: the probabilities of the labels
/// after each token, as if the text stopped there. (A language model's classes are its
/// vocabulary, and its network predicts at every step: after each token, the probabilities
/// of the token to come, which [`Model::next_tokens`] names.)
///
/// For a network that reads forwards only, and for a text short enough, that is after every
/// token. A bidirectional network reads each prefix again, so for a long text only some
/// prefixes are evaluated, their ends evenly spaced and the last the whole text (see
/// [`prefix_ends`](crate::rnn::prefix_ends)): [`Explanation::ends`] says which, and the tokens
/// between them have no probabilities.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The tokens as the model reads them: a word the vocabulary lacks as `<unk>`, or as
    /// itself where the model reads something of it (its subwords, its wide-path key).
    pub tokens: Vec<String>,
    /// The lengths of the prefixes evaluated, increasing; the last is the whole text's
    /// (`tokens.len()`). Every length from 1 unless the text was too long for that.
    pub ends: Vec<usize>,
    /// `probs[i]`: the probability of every label after the first `ends[i]` tokens, had the
    /// text stopped there. The last is the prediction for the whole text.
    pub probs: Vec<Vec<f32>>,
    /// With a wide path (`--ngrams`): the whole text's logits and the n-grams' part of them.
    pub wide: Option<WidePart>,
}

impl Explanation {
    /// The probabilities after each token, in the order of [`Explanation::tokens`]: `None`
    /// after a token where no evaluated prefix ends.
    pub fn after_each_token(&self) -> Vec<Option<&[f32]>> {
        Trace::after_each_token_of(&self.ends, &self.probs, self.tokens.len())
    }

    /// Whether a prefix ends after every token.
    pub fn is_complete(&self) -> bool {
        self.ends.len() == self.tokens.len()
    }
}

/// Loss, accuracy and confusion matrix of a model on labelled examples.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub n: usize,
    pub loss: f32,
    pub accuracy: f32,
    pub confusion: Confusion,
}

impl Model {
    /// A new, untrained model for labelled texts: the vocabulary from the texts (with `<unk>`
    /// and `min_count`), the labels sorted by name, weights drawn from the seed.
    ///
    /// # Errors
    /// [`Error::Config`] if there are fewer than two labels or a size is 0.
    pub fn for_data<'a>(
        data: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
        config: &ModelConfig,
    ) -> Result<Self> {
        let vocab = Vocab::build(
            data.clone().into_iter().map(|(text, _)| text),
            config.tokens,
            config.min_count,
            config.max_len,
            config.max_vocab,
        );
        let labels = data.into_iter().map(|(_, l)| l.to_string()).collect();
        Model::for_vocab(vocab, labels, config)
    }

    /// A new, untrained model with `vocab` and the labels of `labels` (sorted by name, each
    /// once), its weights drawn from the seed: [`Model::for_data`] once the data is counted,
    /// for processes that each read a part of the data (see [`TokenCounts`]).
    ///
    /// # Errors
    /// As [`Model::for_data`].
    ///
    /// [`TokenCounts`]: crate::data::TokenCounts
    pub fn for_vocab(vocab: Vocab, mut labels: Vec<String>, config: &ModelConfig) -> Result<Self> {
        labels.sort_unstable();
        labels.dedup();
        if labels.len() < 2 {
            return Err(Error::Config(format!(
                "a classifier needs at least two labels; the training data has {}",
                match labels.first() {
                    Some(l) => format!("only {l:?}"),
                    None => "none".to_string(),
                }
            )));
        }
        if let Some(label) = labels.iter().find(|l| l.contains(['\n', '\r', '\t'])) {
            // `rnn predict` prints a label a line, tab-separated from its probability
            return Err(Error::Config(format!(
                "the label {label:?} holds a line break or a tab; a label must not"
            )));
        }
        if config.max_len == Some(0) {
            return Err(Error::Config(
                "the maximum length must be at least 1".into(),
            ));
        }
        config.check_subwords()?;
        let arch = config.classifier(vocab.len(), labels.len());
        let network = config.network(&arch)?;
        Ok(Model {
            network,
            vocab,
            tokens: config.tokens,
            max_len: config.max_len,
            task: Task::Classifier {
                labels,
                columns: Columns::default(),
            },
        })
    }

    /// The index of `label`, if the model has it (a language model has none).
    pub fn label_index(&self, label: &str) -> Option<u32> {
        self.labels()
            .iter()
            .position(|l| l == label)
            .map(|i| i as u32)
    }

    /// Encodes rows read from `path` into examples.
    ///
    /// # Errors
    /// [`Error::Data`] naming the file and line of the first row whose label the model does
    /// not have; [`Error::Config`] for a language model.
    pub fn examples(&self, rows: &[Row], path: &Path) -> Result<Vec<Example>> {
        self.check_kind(Kind::Classifier, "labelled examples")?;
        rows.iter()
            .map(|row| {
                let label = self.label_index(&row.label).ok_or_else(|| {
                    Error::data(
                        path,
                        Some(row.line),
                        format!(
                            "the label {:?} is not one the model knows ({})",
                            row.label,
                            self.labels().join(", ")
                        ),
                    )
                })?;
                let (tokens, grams) = self.encode_with_grams(&row.text);
                Ok(Example {
                    tokens,
                    label,
                    grams,
                })
            })
            .collect()
    }

    /// Predicts every text, in order.
    ///
    /// Batches of texts (32 at most, 65,536 tokens at most unless one text has more) run in
    /// parallel on rayon's pool (one thread per core unless the caller installs another
    /// pool); a text's prediction does not depend on the others.
    ///
    /// # Errors
    /// [`Error::Config`] for a language model, which predicts no label.
    pub fn predict(&self, texts: &[&str]) -> Result<Vec<Prediction>> {
        self.check_kind(Kind::Classifier, "a prediction of labels")?;
        let encoded: Vec<(Vec<u32>, TokenGrams)> = texts
            .par_iter()
            .map(|t| self.encode_with_grams(t))
            .collect();
        // Batches of texts of similar lengths keep the matrix products full at every step.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encoded[i].0.len()));
        let mut chunks: Vec<&[usize]> = Vec::new();
        let (mut start, mut tokens) = (0, 0);
        for (k, &i) in order.iter().enumerate() {
            let len = encoded[i].0.len();
            if k > start && (k - start == BATCH || tokens + len > BATCH_TOKENS) {
                chunks.push(&order[start..k]);
                (start, tokens) = (k, 0);
            }
            tokens += len;
        }
        if start < order.len() {
            chunks.push(&order[start..]);
        }
        let batches: Vec<Vec<Vec<f32>>> = chunks
            .par_iter()
            .map_init(Workspace::default, |ws, chunk| {
                let refs: Vec<&[u32]> = chunk.iter().map(|&i| encoded[i].0.as_slice()).collect();
                let grams: Vec<&TokenGrams> = chunk.iter().map(|&i| &encoded[i].1).collect();
                self.network.predict_with_grams(&refs, &grams, ws)
            })
            .collect();
        let mut out = vec![None; texts.len()];
        for (&i, probs) in order.iter().zip(batches.into_iter().flatten()) {
            out[i] = Some(Prediction {
                label: argmax(&probs),
                probs,
            });
        }
        Ok(out
            .into_iter()
            .map(|p| p.expect("every text is predicted"))
            .collect())
    }

    /// The class probabilities after the tokens of `text` (every one, unless the text is
    /// long and the network reads both ways: see [`Explanation`]). The prefixes run in
    /// batches on rayon's threads. A language model's are those of the token to come after
    /// each (see [`Model::next_tokens`]).
    pub fn explain(&self, text: &str) -> Explanation {
        match self.explain_until(text, &|| false) {
            Ok(explanation) => explanation,
            Err(Cancelled) => unreachable!("an explanation that is never cancelled ends"),
        }
    }

    /// [`Model::explain`], asking `cancelled` between batches of prefixes (tens of ms apart)
    /// and giving up when it says so: the server's way to stop working for a client that is
    /// gone, or a request over its time.
    ///
    /// # Errors
    /// [`Cancelled`] when `cancelled` returned true.
    pub fn explain_until(
        &self,
        text: &str,
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> std::result::Result<Explanation, Cancelled> {
        let (ids, grams) = self.encode_with_grams(text);
        let mut ws = Workspace::default();
        let trace = self
            .network
            .trace_until(&ids, Some(&grams), &mut ws, cancelled)?;
        Ok(Explanation {
            tokens: self.shown_tokens(text),
            ends: trace.ends,
            probs: trace.probs,
            wide: self.network.wide_part(&ids, Some(&grams), &mut ws),
        })
    }

    /// The tokens of `text` as [`Model::encode`] keeps them, for showing: a word the
    /// vocabulary lacks is `<unk>`, unless the model reads something of the word itself (its
    /// character n-grams with subword vectors, its own key in the wide path's n-grams): then
    /// it is the word.
    fn shown_tokens(&self, text: &str) -> Vec<String> {
        let arch = self.network.arch();
        let (unk, limit) = (self.vocab.unk(), self.max_len.unwrap_or(usize::MAX));
        let keyed = arch.ngrams.is_some() && unk == Some(0);
        let of_its_own = arch.subwords.is_some() || keyed;
        let mut shown = Vec::new();
        self.tokens.for_each(text, |t| {
            if shown.len() < limit {
                match self.vocab.index(t) {
                    Some(i) if Some(i) == unk => shown.push(UNK.to_string()),
                    Some(i) => shown.push(self.vocab.token(i).to_string()),
                    // as encode does: without <unk>, the word is dropped
                    None if unk.is_none() => {}
                    None if of_its_own => shown.push(t.to_string()),
                    None => shown.push(UNK.to_string()),
                }
            }
        });
        shown
    }

    /// What flows through the network as it reads `text`: hidden states, probabilities, and
    /// the gradient reaching each step for the loss against `label` (the predicted label if
    /// `None`). Returns the tokens as the model sees them, the label's index, and the flow.
    ///
    /// # Errors
    /// [`Error::Config`] if the label is not one of the model's, the text has no tokens, or
    /// the model is a language model.
    pub fn flow(&self, text: &str, label: Option<&str>) -> Result<(Explanation, usize, Flow)> {
        self.check_kind(Kind::Classifier, "the flow of a label's gradient")?;
        let (ids, grams) = self.encode_with_grams(text);
        if ids.is_empty() {
            return Err(Error::Config("the text has no tokens to read".into()));
        }
        let mut ws = Workspace::default();
        // the backward pass needs its target first: the given label, or the prediction
        let target = match label {
            None => argmax(&self.network.predict_with_grams(&[&ids], &[&grams], &mut ws)[0]),
            Some(l) => self.label_index(l).ok_or_else(|| {
                Error::Config(format!(
                    "the label {l:?} is not one the model knows ({})",
                    self.labels().join(", ")
                ))
            })? as usize,
        };
        let flow = self
            .network
            .flow(&ids, Some(&grams), target as u32, &mut ws);
        let explanation = Explanation {
            tokens: self.shown_tokens(text),
            ends: flow.ends.clone(),
            probs: flow
                .ends
                .iter()
                .map(|&e| flow.probs[e - 1].clone())
                .collect(),
            wide: self.network.wide_part(&ids, Some(&grams), &mut ws),
        };
        Ok((explanation, target, flow))
    }

    /// Loss, accuracy and confusion matrix on `examples`.
    ///
    /// # Errors
    /// [`Error::Config`] for a language model (see [`Model::evaluate_text`]).
    pub fn evaluate(&self, examples: &[Example]) -> Result<Evaluation> {
        self.check_kind(Kind::Classifier, "an evaluation on labelled examples")?;
        let (score, confusion) = train::evaluate_classes(&self.network, examples);
        Ok(Evaluation {
            n: examples.len(),
            loss: score.loss,
            accuracy: score.accuracy,
            confusion,
        })
    }

    /// Trains the network on `data.train`, scoring `data.valid` and `data.test` after every
    /// epoch; see [`train::train`].
    ///
    /// # Errors
    /// As [`train::train`]; [`Error::Config`] for a language model (see
    /// [`Model::train_text`]).
    pub fn train(
        &mut self,
        data: Data<'_>,
        config: &TrainConfig,
        on_event: impl FnMut(Event<'_>) + Send,
    ) -> Result<TrainReport> {
        self.check_kind(Kind::Classifier, "training on labelled examples")?;
        train::train(&mut self.network, data, config, on_event)
    }
}
