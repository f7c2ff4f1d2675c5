//! A language model: a [`Model`] whose task is the next token ([`Task::NextToken`]), its
//! network reading a text one token at a time and predicting the next, with what turns text
//! into its tokens and back. This is what `rnn lm` trains, `rnn generate` samples from, and a
//! language model's file holds. Its operations are here, as methods of [`Model`]: those that
//! need the next token give [`Error::Config`] on a classifier (see [`Model::check_kind`]);
//! [`Model::token`] and [`Model::join`] serve either kind.
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
//! use rnn::lm::Sampling;
//! use rnn::model::{Model, ModelConfig};
//! use rnn::data::Tokens;
//! use rnn::train::{TrainConfig, text::{TextConfig, Texts}};
//!
//! let text = "abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc".repeat(4);
//! let config = ModelConfig { hidden: 16, tokens: Tokens::Char, bidirectional: false, dropout: 0.0, embed: None, ..ModelConfig::default() };
//! let mut model = Model::for_text(&text, &config)?;
//! let ids = model.encode(&text);
//! let training = TrainConfig { epochs: 30, batch: 4, lr: 0.01, ..TrainConfig::default() };
//! let texts = Texts { train: &ids, ..Texts::default() };
//! model.train_text(texts, &training, &TextConfig { bptt: 8, max_seconds: None }, None, |_| {})?;
//! let greedy = Sampling { temperature: 0.0, ..Sampling::default() };
//! let written: String = model.generate("ab", &greedy)?.take(6).map(|(token, _)| model.token(token).to_string()).collect();
//! assert_eq!(written, "cabcab");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod corpus;
pub mod recipe;
mod sample;

pub use sample::{Generator, Sampling};

use crate::data::{Tokens, Vocab};
use crate::error::{Error, Result, Setting};
use crate::metrics::Score;
use crate::model::{Kind, Model, ModelConfig, Task};
use crate::rnn::{Architecture, Batch, Workspace};
use crate::train::text::{self, TextConfig, Texts};
use crate::train::{Event, RunState, TrainConfig, TrainReport};

impl Model {
    /// A new language model for a training text: its vocabulary is `<unk>` and every token of
    /// `text` seen at least `config.min_count` times (at most `config.max_vocab` of them), its
    /// network `config`'s, reading forwards, with weights drawn from `config.seed` as a
    /// classifier's are. `config.pool` and `config.max_len` do not apply.
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
        Ok(Model {
            network: config.network(&arch)?,
            vocab,
            tokens: config.tokens,
            max_len: None,
            task: Task::NextToken,
        })
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

    /// Trains a language model on `texts` (token ids, see [`Model::encode`]) by truncated
    /// backpropagation through time; see [`text::train_text`].
    ///
    /// # Errors
    /// As [`text::train_text`]; [`Error::Config`] for a classifier.
    pub fn train_text(
        &mut self,
        texts: Texts<'_>,
        config: &TrainConfig,
        text: &TextConfig,
        state: Option<RunState>,
        on_event: impl FnMut(Event<'_>) + Send,
    ) -> Result<TrainReport> {
        self.check_kind(Kind::LanguageModel, "training on a text")?;
        text::train_text(&mut self.network, texts, config, text, state, on_event)
    }

    /// A language model's mean loss (nats a token) and next-token accuracy on `ids`, read as
    /// `streams` streams in windows of `bptt` steps (see [`text::evaluate_text`]); `None` for
    /// fewer than two tokens.
    ///
    /// # Errors
    /// [`Error::Config`] for a classifier (see [`Model::evaluate`]).
    pub fn evaluate_text(&self, ids: &[u32], streams: usize, bptt: usize) -> Result<Option<Score>> {
        self.check_kind(Kind::LanguageModel, "scoring a text")?;
        Ok(text::evaluate_text(&self.network, ids, streams, bptt))
    }

    /// What a language model expects at every step of `text`: for each of its tokens, the
    /// probability the model gave it from the tokens before (`None` for the first, which
    /// nothing predicts), and the `top` likeliest next tokens after it, with their
    /// probabilities, likeliest first.
    ///
    /// # Errors
    /// [`Error::Config`] for a classifier (see [`Model::explain`]).
    pub fn next_tokens(&self, text: &str, top: usize) -> Result<Vec<NextToken>> {
        self.check_kind(Kind::LanguageModel, "the likeliest next tokens")?;
        let ids = self.encode(text);
        if ids.is_empty() {
            return Ok(Vec::new());
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
        Ok(out)
    }

    /// A stream of tokens drawn one after the other, each with its probability under a
    /// language model, after reading `prime` (see [`Generator`]).
    ///
    /// # Errors
    /// [`Error::Config`] for sampling settings out of range, a prime of only tokens the model
    /// does not know, or a classifier.
    pub fn generate(&self, prime: &str, sampling: &Sampling) -> Result<Generator<'_>> {
        Generator::new(self, prime, sampling)
    }
}

/// One step of [`Model::next_tokens`].
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
