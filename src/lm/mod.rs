//! A language model: a network that reads a text one token at a time and predicts the next,
//! with what turns text into its tokens and back. This is what `rnn lm` trains, `rnn generate`
//! samples from, and a language model's file holds.
//!
//! ```text
//! x_t = onehot(w_t) or E[w_t]      h_t = the layers' cells (one direction)
//! p_t = softmax(W_fc h_t + b_fc)   over the vocabulary: the probability of w_{t+1}
//! L   = mean over t of -ln p_t[w_{t+1}]       bits a token = L / ln 2,  perplexity = e^L
//! ```
//!
//! The network is the classifier's core with a [`Head::Step`](crate::rnn::Head::Step) (see [`crate::rnn`]), trained
//! by truncated backpropagation through time ([`crate::train::text`]).
//!
//! ```
//! use rnn::lm::{LanguageModel, Sampling};
//! use rnn::model::ModelConfig;
//! use rnn::data::Tokens;
//! use rnn::train::{TrainConfig, text::{TextConfig, Texts}};
//!
//! let text = "abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc".repeat(4);
//! let config = ModelConfig { hidden: 16, tokens: Tokens::Char, bidirectional: false, dropout: 0.0, embed: None, ..ModelConfig::default() };
//! let mut model = LanguageModel::for_text(&text, &config)?;
//! let ids = model.encode(&text);
//! let training = TrainConfig { epochs: 30, batch: 4, lr: 0.01, ..TrainConfig::default() };
//! let texts = Texts { train: &ids, ..Texts::default() };
//! model.train(texts, &training, &TextConfig { bptt: 8, max_seconds: None }, None, |_| {})?;
//! let greedy = Sampling { temperature: 0.0, ..Sampling::default() };
//! let written: String = model.generate("ab", &greedy)?.take(6).map(|(token, _)| model.token(token).to_string()).collect();
//! assert_eq!(written, "cabcab");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod corpus;
pub mod recipe;
mod sample;

use std::path::Path;

pub use sample::{Generator, Sampling};

use crate::data::files::Columns;
use crate::data::{Tokens, Vocab};
use crate::error::{Error, Result, Setting};
use crate::metrics::Score;
use crate::model::{AnyModel, ModelConfig};
use crate::model_file::{self, Contents, ContentsRef, Rest};
use crate::rnn::{Architecture, Batch, Network, Workspace};
use crate::train::text::{self, TextConfig, Texts};
use crate::train::{Event, RunState, TrainConfig, TrainReport};

/// A language model.
#[derive(Clone, Debug)]
pub struct LanguageModel {
    pub network: Network,
    pub vocab: Vocab,
    /// How text is split into tokens (and the tokens joined back: see [`LanguageModel::join`]).
    pub tokens: Tokens,
}

impl LanguageModel {
    /// A new model for a training text: its vocabulary is `<unk>` and every token of `text`
    /// seen at least `config.min_count` times (at most `config.max_vocab` of them), its network
    /// `config`'s, reading forwards, with weights drawn from `config.seed` as a classifier's
    /// are. `config.pool` and `config.max_len` do not apply.
    ///
    /// # Errors
    /// [`Error::Config`] for a bidirectional network (a language model must not see the token
    /// it predicts), an empty text, or a size out of range.
    pub fn for_text(text: &str, config: &ModelConfig) -> Result<Self> {
        if config.bidirectional {
            return Err(Error::Config(format!(
                "a language model reads forwards only: it must not see the token it predicts \
                 ({} false)",
                Setting::Bidirectional
            )));
        }
        let vocab = Vocab::build(
            [text],
            config.tokens,
            config.min_count,
            None,
            config.max_vocab,
        );
        if vocab.len() < 2 {
            return Err(Error::Config(
                "the training text is empty: it has no tokens to learn".into(),
            ));
        }
        let arch = Architecture {
            layers: config.layers,
            embed: config.embed,
            dropout: config.dropout,
            ..Architecture::language_model(config.cell, vocab.len(), config.hidden)
        };
        Ok(LanguageModel {
            network: config.network(&arch)?,
            vocab,
            tokens: config.tokens,
        })
    }

    /// Reads a language model's file (see [`crate::model_file`]).
    ///
    /// # Errors
    /// As [`AnyModel::load`], and [`Error::Model`] for a classifier's file.
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_contents(model_file::load(path)?, path)
    }

    /// The language model that a model file's contents (read from `path`) hold.
    ///
    /// # Errors
    /// As [`AnyModel::from_contents`], and [`Error::Model`] for a classifier's contents.
    pub fn from_contents(contents: Contents, path: &Path) -> Result<Self> {
        match AnyModel::from_contents(contents, path)? {
            AnyModel::LanguageModel(model) => Ok(model),
            AnyModel::Classifier(_) => Err(Error::model(
                path,
                "a classifier, not a language model: use `rnn predict` with it (`rnn generate` \
                 needs a model trained by `rnn lm`)",
            )),
        }
    }

    /// Writes the model file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        model_file::save(self.contents(), path)
    }

    /// The model as a model file holds it.
    pub fn contents(&self) -> ContentsRef<'_> {
        rest(&self.vocab, self.tokens).around(&self.network, self.network.params())
    }

    /// The network, to be trained, and beside it what the model file holds with it (borrowed
    /// apart, so that a run can write the model file as it trains).
    pub fn network_and_rest(&mut self) -> (&mut Network, Rest<'_>) {
        (&mut self.network, rest(&self.vocab, self.tokens))
    }

    /// The token ids of `text`, split by the model's rule; unknown tokens are `<unk>`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let unk = self.vocab.unk();
        let mut ids = Vec::new();
        self.tokens.for_each(text, |t| {
            if let Some(i) = self.vocab.index(t).or(unk) {
                ids.push(i);
            }
        });
        ids
    }

    /// Token `id` as text.
    pub fn token(&self, id: u32) -> &str {
        self.vocab.token(id)
    }

    /// What goes between two tokens written out: nothing between characters, a space
    /// between words (word tokens lose the text's own spacing and case).
    pub fn join(&self) -> &'static str {
        match self.tokens {
            Tokens::Char => "",
            Tokens::Word | Tokens::WordPunct => " ",
        }
    }

    /// Trains the model on `texts` (token ids, see [`LanguageModel::encode`]) by truncated
    /// backpropagation through time; see [`text::train_text`].
    ///
    /// # Errors
    /// As [`text::train_text`].
    pub fn train(
        &mut self,
        texts: Texts<'_>,
        config: &TrainConfig,
        text: &TextConfig,
        state: Option<RunState>,
        on_event: impl FnMut(Event<'_>) + Send,
    ) -> Result<TrainReport> {
        text::train_text(&mut self.network, texts, config, text, state, on_event)
    }

    /// The mean loss (nats a token) and next-token accuracy on `ids`, read as `streams`
    /// streams in windows of `bptt` steps (see [`text::evaluate_text`]); `None` for fewer than
    /// two tokens.
    pub fn evaluate(&self, ids: &[u32], streams: usize, bptt: usize) -> Option<Score> {
        text::evaluate_text(&self.network, ids, streams, bptt)
    }

    /// What the model expects at every step of `text`: for each of its tokens, the
    /// probability the model gave it from the tokens before (`None` for the first, which
    /// nothing predicts), and the `top` likeliest next tokens after it, with their
    /// probabilities, likeliest first.
    pub fn explain(&self, text: &str, top: usize) -> Vec<NextToken> {
        let ids = self.encode(text);
        if ids.is_empty() {
            return Vec::new();
        }
        let batch = Batch::new(&[&ids], &[]);
        let mut ws = Workspace::default();
        self.network.forward_only(&batch, &mut ws);
        let v = self.network.classes();
        let mut out: Vec<NextToken> = Vec::with_capacity(ids.len());
        for (t, &id) in ids.iter().enumerate() {
            let p = ws.probabilities(t, v);
            let mut order: Vec<u32> = (0..v as u32).collect();
            order.sort_by(|&a, &b| p[b as usize].total_cmp(&p[a as usize]).then(a.cmp(&b)));
            let previous = t
                .checked_sub(1)
                .map(|s| ws.probabilities(s, v)[id as usize]);
            out.push(NextToken {
                token: id,
                p: previous,
                next: order[..top.min(v)]
                    .iter()
                    .map(|&i| (i, p[i as usize]))
                    .collect(),
            });
        }
        out
    }

    /// A stream of tokens drawn one after the other, each with its probability under the
    /// model, after reading `prime` (see [`Generator`]).
    ///
    /// # Errors
    /// [`Error::Config`] for sampling settings out of range, or a prime of only tokens the
    /// model does not know.
    pub fn generate(&self, prime: &str, sampling: &Sampling) -> Result<Generator<'_>> {
        Generator::new(self, prime, sampling)
    }
}

/// What a language model's file holds beside the network: its vocabulary and token rule (no
/// labels, no length limit, the default columns).
fn rest(vocab: &Vocab, tokens: Tokens) -> Rest<'_> {
    static COLUMNS: std::sync::LazyLock<Columns> = std::sync::LazyLock::new(Columns::default);
    Rest {
        vocab,
        labels: &[],
        tokens,
        max_len: None,
        columns: &COLUMNS,
    }
}

/// One step of [`LanguageModel::explain`].
#[derive(Clone, Debug, PartialEq)]
pub struct NextToken {
    pub token: u32,
    /// The probability the model gave this token after the ones before it.
    pub p: Option<f32>,
    /// The likeliest tokens to follow it, with their probabilities.
    pub next: Vec<(u32, f32)>,
}

/// Bits a token from a loss in nats a token.
pub fn bits(loss: f32) -> f32 {
    loss / std::f32::consts::LN_2
}
