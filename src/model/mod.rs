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

use rayon::prelude::*;

mod any;
pub use any::{AnyModel, Kind};

use crate::data::files::{Columns, Row};
use crate::data::{Example, Tokens, UNK, UNSEEN, Vocab, unseen_key};
use crate::error::{Error, Result, Setting};
use crate::metrics::Confusion;
use crate::model_file::{self, ContentsRef, Rest};
use crate::rng::Rng;
pub use crate::rnn::Cancelled;
use crate::rnn::{
    Architecture, CellKind, DEFAULT_BUCKETS, Flow, Init, Network, Ngrams, Pool, Subwords,
    TokenGrams, Trace, WidePart, Workspace, argmax,
};
use crate::train::{self, Data, Event, INIT_STREAM, TrainConfig, TrainReport};

/// Sequences per forward pass when predicting or evaluating.
const BATCH: usize = 32;

/// Tokens in one forward pass of [`Model::predict`] at most (unless one text alone has more):
/// a pass holds every token's embedding and input projection, 1 KB a token with the default
/// network, so 32 texts of 200,000 tokens in one pass would take 6 GB.
const BATCH_TOKENS: usize = 1 << 16;

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

/// How a new model's weights start, by name (see [`Init`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Initializer {
    /// PyTorch's: every tensor uniform in `[-1/√H, 1/√H]`, an embedding N(0, 1), one-hot
    /// input weights uniform in `[-input_init, input_init]`.
    #[default]
    PyTorch,
    /// The seed's numpy original: every weight N(0, 1)/1000, every bias 0.
    Numpy,
}

impl Initializer {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Initializer::PyTorch => "pytorch",
            Initializer::Numpy => "numpy",
        }
    }
}

impl std::fmt::Display for Initializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Initializer {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "pytorch" => Ok(Initializer::PyTorch),
            "numpy" => Ok(Initializer::Numpy),
            _ => Err(format!(
                "unknown initializer {s:?} (expected pytorch or numpy)"
            )),
        }
    }
}

/// How to build a new model from training data. The network's shape is that of
/// [`Architecture`], whose documentation says what each field means.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub cell: CellKind,
    /// Hidden units. Default 64.
    pub hidden: usize,
    /// Stacked layers. Default 1.
    pub layers: usize,
    /// Read both ways. Default no.
    pub bidirectional: bool,
    /// A learnt embedding of this width in front of the first layer. Default none (one-hot).
    pub embed: Option<usize>,
    /// Pooling over time. Default the last state.
    pub pool: Pool,
    /// The wide path: a hashed bag of n-grams of the tokens beside the recurrent network,
    /// trained with it (see [`crate::rnn::Ngrams`]). Default [`default_ngrams`] of the
    /// default tokens: words and their bigrams in 2^18 buckets (the seed's: none).
    pub ngrams: Option<Ngrams>,
    /// Subword vectors: every word's embedding is its own row plus the mean of its character
    /// n-grams' rows (see [`Subwords`]), so that a word unseen in training still has one. Word
    /// tokens with an embedding only. Default none.
    pub subwords: Option<Subwords>,
    /// Dropout between layers and before the output layer, in training. Default 0.
    pub dropout: f32,
    pub tokens: Tokens,
    /// Tokens seen fewer times in training go to `<unk>`. Default 1 (keep every token).
    pub min_count: usize,
    /// Keep only this many tokens, the most frequent in training. Default none (keep all).
    pub max_vocab: Option<usize>,
    pub max_len: Option<usize>,
    /// How the weights start. Default PyTorch's way.
    pub initializer: Initializer,
    /// With PyTorch's initialisation, the one-hot input weights start uniform in
    /// `[-input_init, input_init]`. Default 1 (see [`Init::Uniform`]).
    pub input_init: f32,
    /// Seeds the initial weights.
    pub seed: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            cell: CellKind::Lstm,
            hidden: 64,
            layers: 1,
            bidirectional: true,
            embed: Some(64),
            pool: Pool::Max,
            ngrams: default_ngrams(Tokens::WordPunct),
            subwords: None,
            dropout: 0.3,
            tokens: Tokens::WordPunct,
            min_count: 2,
            max_vocab: None,
            max_len: None,
            initializer: Initializer::PyTorch,
            input_init: 1.0,
            seed: 0,
        }
    }
}

/// The wide path a model reading `tokens` gets by default: words and their bigrams, or
/// characters and their 2- to 4-grams, in [`DEFAULT_BUCKETS`] rows. Chosen on the accuracy
/// suite (see the README's *Defaults, and why*).
pub fn default_ngrams(tokens: Tokens) -> Option<Ngrams> {
    let n = if tokens == Tokens::Char { 4 } else { 2 };
    Some(Ngrams {
        n,
        buckets: DEFAULT_BUCKETS,
    })
}

impl ModelConfig {
    /// The shape of the classifier this configuration describes, for `vocab` tokens and
    /// `classes` labels.
    pub fn classifier(&self, vocab: usize, classes: usize) -> Architecture {
        Architecture {
            layers: self.layers,
            bidirectional: self.bidirectional,
            embed: self.embed,
            pool: self.pool,
            dropout: self.dropout,
            ngrams: self.ngrams,
            subwords: self.subwords,
            ..Architecture::new(self.cell, vocab, self.hidden, classes)
        }
    }

    /// Checks the subword vectors' settings, alone and against the rest: their sizes, an
    /// embedding to add them to, and word tokens to take them from (before any data is read,
    /// so that a wrong setting is named as such).
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting that is wrong.
    pub fn check_subwords(&self) -> Result<()> {
        let Some(subwords) = self.subwords else {
            return Ok(());
        };
        subwords.check()?;
        if self.embed.is_none() {
            return Err(Error::Config(format!(
                "{} are vectors of the embedding, which {} turns off (one-hot words have no \
                 vectors to add them to)",
                Setting::Subwords,
                Setting::Embed.given("0")
            )));
        }
        if self.tokens == Tokens::Char {
            return Err(Error::Config(format!(
                "{} needs word tokens: subwords are character n-grams of words, and {} char \
                 makes none",
                Setting::Subwords,
                Setting::Tokens
            )));
        }
        Ok(())
    }

    /// A network of `arch`, its weights drawn as this configuration says: by
    /// [`ModelConfig::initializer`] (with [`ModelConfig::input_init`]), from the seed's stream
    /// of initial weights ([`INIT_STREAM`]).
    ///
    /// # Errors
    /// As [`Network::new`].
    pub fn network(&self, arch: &Architecture) -> Result<Network> {
        let mut rng = Rng::with_stream(self.seed, INIT_STREAM);
        let init = match self.initializer {
            Initializer::PyTorch => Init::Uniform(self.input_init),
            Initializer::Numpy => Init::Numpy,
        };
        Network::new(arch, init, &mut rng)
    }

    /// The seed's network: one layer of the plain cell, one direction, one-hot words (split on
    /// white space, every training word kept), the last state, no dropout.
    pub fn seed() -> Self {
        ModelConfig {
            ngrams: None,
            cell: CellKind::Rnn,
            bidirectional: false,
            embed: None,
            pool: Pool::Last,
            dropout: 0.0,
            tokens: Tokens::Word,
            min_count: 1,
            ..ModelConfig::default()
        }
    }
}

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
/// after each token, as if the text stopped there.
///
/// For a network that reads forwards only, and for a text short enough, that is after every
/// token. A bidirectional network reads each prefix again, so for a long text only some
/// prefixes are evaluated, their ends evenly spaced and the last the whole text (see
/// [`prefix_ends`](crate::rnn::prefix_ends)): [`Explanation::ends`] says which, and the tokens
/// between them have no probabilities.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The tokens as the model sees them (unknown ones as `<unk>`).
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
            labels,
            tokens: config.tokens,
            max_len: config.max_len,
            columns: Columns::default(),
        })
    }

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
    /// is its [`UNSEEN`] key instead, which the network reads as `<unk>` and its n-grams by
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

    /// The index of `label`, if the model has it.
    pub fn label_index(&self, label: &str) -> Option<u32> {
        self.labels
            .iter()
            .position(|l| l == label)
            .map(|i| i as u32)
    }

    /// Encodes rows read from `path` into examples.
    ///
    /// # Errors
    /// [`Error::Data`] naming the file and line of the first row whose label the model does
    /// not have.
    pub fn examples(&self, rows: &[Row], path: &Path) -> Result<Vec<Example>> {
        rows.iter()
            .map(|row| {
                let label = self.label_index(&row.label).ok_or_else(|| {
                    Error::data(
                        path,
                        Some(row.line),
                        format!(
                            "the label {:?} is not one the model knows ({})",
                            row.label,
                            self.labels.join(", ")
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
    pub fn predict(&self, texts: &[&str]) -> Vec<Prediction> {
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
        out.into_iter()
            .map(|p| p.expect("every text is predicted"))
            .collect()
    }

    /// The class probabilities after the tokens of `text` (every one, unless the text is
    /// long and the network reads both ways: see [`Explanation`]). The prefixes run in
    /// batches on rayon's threads.
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
            tokens: self.shown_tokens(&ids),
            ends: trace.ends,
            probs: trace.probs,
            wide: self.network.wide_part(&ids, Some(&grams), &mut ws),
        })
    }

    /// The tokens of `ids` as the model sees them, unknown ones as `<unk>`.
    fn shown_tokens(&self, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .map(|&i| {
                if Some(i) == self.vocab.unk() || i & UNSEEN != 0 {
                    UNK.to_string()
                } else {
                    self.vocab.token(i).to_string()
                }
            })
            .collect()
    }

    /// What flows through the network as it reads `text`: hidden states, probabilities, and
    /// the gradient reaching each step for the loss against `label` (the predicted label if
    /// `None`). Returns the tokens as the model sees them, the label's index, and the flow.
    ///
    /// # Errors
    /// [`Error::Config`] if the label is not one of the model's, or the text has no tokens.
    pub fn flow(&self, text: &str, label: Option<&str>) -> Result<(Explanation, usize, Flow)> {
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
                    self.labels.join(", ")
                ))
            })? as usize,
        };
        let flow = self
            .network
            .flow(&ids, Some(&grams), target as u32, &mut ws);
        let explanation = Explanation {
            tokens: self.shown_tokens(&ids),
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
    pub fn evaluate(&self, examples: &[Example]) -> Evaluation {
        let (score, confusion) = train::evaluate_classes(&self.network, examples);
        Evaluation {
            n: examples.len(),
            loss: score.loss,
            accuracy: score.accuracy,
            confusion,
        }
    }

    /// Trains the network on `data.train`, scoring `data.valid` and `data.test` after every
    /// epoch; see [`train::train`].
    pub fn train(
        &mut self,
        data: Data<'_>,
        config: &TrainConfig,
        on_event: impl FnMut(Event<'_>) + Send,
    ) -> Result<TrainReport> {
        train::train(&mut self.network, data, config, on_event)
    }
}
