//! How a new model is built: the network's shape, its text rules and how its weights start
//! ([`ModelConfig`]), for a classifier ([`Model::for_data`](super::Model::for_data)) and a
//! language model ([`Model::for_text`](super::Model::for_text)) alike.

use crate::data::Tokens;
use crate::error::{Error, Result, Setting};
use crate::rng::Rng;
use crate::rnn::{Architecture, CellKind, DEFAULT_BUCKETS, Init, Network, Ngrams, Pool, Subwords};
use crate::train::INIT_STREAM;

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
