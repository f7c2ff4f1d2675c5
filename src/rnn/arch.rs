//! What a network is made of, by name: the cell, the layers, the directions, the input, the
//! pooling over time and the dropout. One [`Architecture`] describes the PyTorch model
//!
//! ```python
//! embedding = nn.Embedding(V, E)                 # only when `embed` is set; otherwise one-hot input
//! rnn = nn.RNN|GRU|LSTM(E or V, H, num_layers=L, bidirectional=B, dropout=p, batch_first=True)
//! features = last | mean | max over time of rnn's top-layer outputs   # D·H wide (D = 2 if B)
//! fc = nn.Linear(D·H, C)                         # after dropout p
//! ```
//!
//! and [`super::Network`] builds it. The default is the seed's network: one layer, one
//! direction, one-hot input, the last state, no dropout.
//!
//! With a [`Head::Step`], `fc` reads the top layer's output at every step instead of pooled
//! features, and predicts one of its `C` classes at every step: a language model's next token
//! (`C = V`), or a tagger's tag.

use std::fmt;

use super::{CellKind, Head, Ngrams, Pool, Subwords};
use crate::error::{Error, Result};

/// Declares a kind of module chosen by name (a cell, a pooling, a head) from **one table**:
/// every row is a variant, its name on the command line and in model files, and the file and
/// type that implement it. From the table come the enum, `ALL` (the list the help and the error
/// messages print), `name` and `Display` (what a model file writes), `FromStr` (what the command
/// line and a model file's metadata are read with), `clap::ValueEnum` (the command line's
/// parser and the list of possible values in its help), `build`, and the `mod` line of each
/// file, so nothing can drift from it, and a new kind is one new file and one row.
///
/// ```text
/// kinds! {
///     /// How the top layer's outputs over time become one feature vector a sequence.
///     pub enum Pool, called "pooling";
///     pub(crate) fn build() -> Arc<dyn Pooling> { Arc::new }
///     /// Each direction's state after it has read the whole sequence.
///     #[default]
///     Last = "last", last::Last;
///     Mean = "mean", mean::Mean;
/// }
/// ```
///
/// `build(args)` calls the row's `Type::new(args)` and wraps it.
macro_rules! kinds {
    // `build`, apart: its arguments pass to every row's `new` as one token tree
    (@build $kind:ident, $bvis:vis, ($($params:tt)*), $args:tt, $ret:ty, $wrap:path,
        [$($variant:ident $module:ident $ty:ident)+]) => {
        impl $kind {
            /// A module of this kind.
            $bvis fn build(self, $($params)*) -> $ret {
                match self {
                    $( $kind::$variant => $wrap(<$module::$ty>::new $args), )+
                }
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $kind:ident, called $what:literal;
        $bvis:vis fn build($($arg:ident: $argty:ty),*) -> $ret:ty { $wrap:path }
        $( $(#[$vmeta:meta])* $variant:ident = $name:literal, $module:ident::$ty:ident; )+
    ) => {
        $( mod $module; )+

        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        $vis enum $kind {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $kind {
            /// Every kind, in the order of the table (the order the documentation lists them).
            pub const ALL: [$kind; [$(stringify!($variant)),+].len()] = [$($kind::$variant),+];

            /// The name on the command line and in model files.
            pub fn name(self) -> &'static str {
                match self {
                    $( $kind::$variant => $name, )+
                }
            }
        }

        kinds!(@build $kind, $bvis, ($($arg: $argty),*), ($($arg),*), $ret, $wrap,
            [$($variant $module $ty)+]);

        impl std::str::FromStr for $kind {
            type Err = String;

            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                $crate::rnn::arch::parse_named(s, &$kind::ALL, $kind::name, $what)
            }
        }

        impl std::fmt::Display for $kind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        /// The command line reads the names, and its help lists them, from the table.
        #[cfg(feature = "cli")]
        impl clap::ValueEnum for $kind {
            fn value_variants<'a>() -> &'a [Self] {
                &$kind::ALL
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.name()))
            }
        }
    };
}
pub(crate) use kinds;

/// Parses one of a list of named kinds, or says which names there are.
pub(crate) fn parse_named<T: Copy>(
    s: &str,
    all: &[T],
    name: fn(T) -> &'static str,
    what: &str,
) -> Result<T, String> {
    all.iter().copied().find(|&k| name(k) == s).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|&k| name(k)).collect();
        format!(
            "unknown {what} {s:?} (expected one of: {})",
            names.join(", ")
        )
    })
}

/// The shape of a network: every size and choice that PyTorch's modules take as arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Architecture {
    pub cell: CellKind,
    /// `V`, the number of input tokens.
    pub vocab: usize,
    /// `E`, the width of a learnt embedding (`nn.Embedding(V, E)`) in front of the first
    /// layer; `None` for one-hot input, where the first layer's input weights are the table.
    pub embed: Option<usize>,
    /// `H`, hidden units of every layer and direction.
    pub hidden: usize,
    /// `L`, stacked layers: layer `l + 1` reads layer `l`'s outputs at every step.
    pub layers: usize,
    /// Whether every layer reads the sequence both ways (`D = 2`).
    pub bidirectional: bool,
    /// How a sequence's outputs become its features, under a [`Head::Sequence`].
    pub pool: Pool,
    /// One prediction a sequence or one a step.
    pub head: Head,
    /// The probability of zeroing an input of the second and later layers, and a feature
    /// before `fc`, in training (inverted dropout: the kept ones are scaled by `1/(1 - p)`).
    pub dropout: f32,
    /// `C`, the number of classes.
    pub classes: usize,
    /// The wide path beside the recurrent one, a hashed bag of n-grams whose logits add to the
    /// head's (see [`super::Ngrams`]); `None` for none. Only under a [`Head::Sequence`].
    pub ngrams: Option<Ngrams>,
    /// Subword vectors: every word's embedding is its row plus the mean of its character
    /// n-grams' rows (see [`super::Subwords`]); `None` for none. Only with an embedding, under
    /// a [`Head::Sequence`].
    pub subwords: Option<Subwords>,
}

impl Architecture {
    /// The seed's network: one layer of `cell`, one direction, one-hot input, the last state.
    pub fn new(cell: CellKind, vocab: usize, hidden: usize, classes: usize) -> Self {
        Architecture {
            cell,
            vocab,
            embed: None,
            hidden,
            layers: 1,
            bidirectional: false,
            pool: Pool::Last,
            head: Head::Sequence,
            dropout: 0.0,
            classes,
            ngrams: None,
            subwords: None,
        }
    }

    /// A language model: one layer of `cell` reading one-hot tokens of a vocabulary of
    /// `vocab`, predicting the next of them at every step.
    pub fn language_model(cell: CellKind, vocab: usize, hidden: usize) -> Self {
        Architecture {
            head: Head::Step,
            ..Architecture::new(cell, vocab, hidden, vocab)
        }
    }

    /// The rows of the token table: `V`, and with subwords their `B` rows after (n-gram `g`
    /// is row `V + g`, see [`super::Subwords`]).
    pub fn token_rows(&self) -> usize {
        self.vocab + self.subwords.map_or(0, |s| s.buckets)
    }

    /// `D`: 2 for a bidirectional network, else 1.
    pub fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// `D·H`, the width of a layer's output and of the features `fc` reads.
    pub fn features(&self) -> usize {
        self.directions() * self.hidden
    }

    /// The width of layer `l`'s input: `V` (one-hot) or `E` for the first, `D·H` above.
    pub fn input_width(&self, layer: usize) -> usize {
        match (layer, self.embed) {
            (0, Some(e)) => e,
            (0, None) => self.vocab,
            _ => self.features(),
        }
    }

    /// The number of parameters of a network of this shape, or `None` if it does not fit in a
    /// `usize` (sizes read from a file are checked with this before anything is allocated).
    pub fn parameter_count(&self) -> Option<usize> {
        let (h, c) = (self.hidden, self.classes);
        let f = self.directions().checked_mul(h)?;
        // a cell of one unit, to ask its kind's number of gates and biases
        let cell = self.cell.build(1);
        let gates = cell.gates();
        let embedding = match self.embed {
            Some(e) => self.token_rows().checked_mul(e)?,
            None => 0,
        };
        // weight_ih, bias_ih, weight_hh, and bias_hh unless the cell folds it, for a layer
        // reading `input` floats a token
        let g = gates.checked_mul(h)?;
        let layer = |input: usize| {
            let all = g.checked_mul(input.checked_add(h)?.checked_add(2)?)?;
            let folded = if cell.folded_tensors().is_empty() {
                0
            } else {
                g
            };
            (all - folded).checked_mul(self.directions())
        };
        // the first layer reads the embedding or the one-hot tokens; the others (all alike,
        // counted at once, so that a file's absurd number of layers costs no time) the layer
        // below's `f` floats
        let first = layer(self.embed.unwrap_or(self.vocab))?;
        let others = match self.layers {
            0 => 0,
            n => layer(f)?.checked_mul(n - 1)?,
        };
        let wide = match self.ngrams {
            Some(ngrams) => ngrams.buckets.checked_mul(c)?,
            None => 0,
        };
        let total = embedding.checked_add(first)?.checked_add(others)?;
        total
            .checked_add(wide)?
            .checked_add(c.checked_mul(f.checked_add(1)?)?)
    }

    /// Checks every size and the dropout.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first size that is 0 or the dropout outside `[0, 1)`.
    pub fn validate(&self) -> Result<()> {
        for (what, n) in [
            ("the vocabulary size", self.vocab),
            ("the hidden size", self.hidden),
            ("the number of layers", self.layers),
            ("the number of classes", self.classes),
            ("the embedding size", self.embed.unwrap_or(1)),
        ] {
            if n == 0 {
                return Err(Error::Config(format!("{what} must be at least 1")));
            }
        }
        if let Some(ngrams) = self.ngrams {
            check_ngrams(ngrams)?;
            if self.head != Head::Sequence {
                return Err(Error::Config(
                    "n-gram features are for classifiers: a network that predicts every step \
                     has none"
                        .into(),
                ));
            }
        }
        if let Some(subwords) = self.subwords {
            subwords.check()?;
            if self.embed.is_none() || self.head != Head::Sequence {
                return Err(Error::Config(
                    "subword vectors are a classifier's embedding: they need an embedding \
                     (one-hot words have none) and a prediction a text"
                        .into(),
                ));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::Config(format!(
                "the dropout must be at least 0 and less than 1, not {}",
                self.dropout
            )));
        }
        Ok(())
    }
}

/// The longest n-gram the wide path reads at most.
pub const MAX_NGRAMS: usize = 10;

/// Checks the wide path's sizes: `1 ≤ N ≤` [`MAX_NGRAMS`], and `1 ≤ B ≤ 2^32` (a bucket is
/// kept as a `u32`).
///
/// # Errors
/// [`Error::Config`] naming the size out of range.
pub fn check_ngrams(ngrams: Ngrams) -> Result<()> {
    if !(1..=MAX_NGRAMS).contains(&ngrams.n) {
        return Err(Error::Config(format!(
            "the longest n-gram must be from 1 to {MAX_NGRAMS}, not {}",
            ngrams.n
        )));
    }
    if ngrams.buckets == 0 || ngrams.buckets as u64 > 1 << 32 {
        return Err(Error::Config(format!(
            "the number of n-gram buckets must be from 1 to 2^32, not {}",
            ngrams.buckets
        )));
    }
    Ok(())
}

impl fmt::Display for Architecture {
    /// A short description, e.g. `2-layer bidirectional lstm, H = 64, embedding 32, max pooling`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.layers > 1 {
            write!(f, "{}-layer ", self.layers)?;
        }
        if self.bidirectional {
            f.write_str("bidirectional ")?;
        }
        write!(f, "{}, H = {}", self.cell, self.hidden)?;
        if let Some(e) = self.embed {
            write!(f, ", embedding {e}")?;
        }
        match self.head {
            Head::Sequence if self.pool != Pool::Last => write!(f, ", {} pooling", self.pool)?,
            Head::Sequence => {}
            Head::Step => f.write_str(", a prediction every step")?,
        }
        if self.dropout > 0.0 {
            write!(f, ", dropout {}", self.dropout)?;
        }
        if let Some(ngrams) = self.ngrams {
            write!(
                f,
                ", 1- to {}-grams in {} buckets",
                ngrams.n, ngrams.buckets
            )?;
        }
        if let Some(s) = self.subwords {
            write!(
                f,
                ", subwords of {}-{} characters in {} buckets",
                s.min, s.max, s.buckets
            )?;
        }
        Ok(())
    }
}

/// A bound on the memory of what a network holds a layer and direction besides its
/// parameters: its cell, its tensors' names and ranges in the layout, its scratch buffers'
/// headers.
const BYTES_A_CELL: u64 = 1024;

impl Architecture {
    /// Refuses, before anything is built, a network whose parameters, or whose layers'
    /// structures, would not fit in memory, or that has more than 2^64 parameters: the sizes
    /// may come from a flag or a file, and an absurd one must be a sentence, not an abort.
    ///
    /// # Errors
    /// [`Error::Config`] for more than 2^64 parameters; as [`crate::memory::check`] for too
    /// much memory.
    pub fn check_memory(&self) -> Result<()> {
        let what = format!(
            "a {self} network with V = {} tokens and C = {} classes",
            self.vocab, self.classes
        );
        let Some(count) = self.parameter_count() else {
            return Err(Error::Config(format!(
                "{what} has more than 2^64 parameters"
            )));
        };
        let cells = (self.layers as u64).checked_mul(self.directions() as u64);
        let bytes = (count as u64)
            .checked_mul(4)
            .zip(cells.and_then(|n| n.checked_mul(BYTES_A_CELL)))
            .and_then(|(params, cells)| params.checked_add(cells));
        crate::memory::check(bytes, &what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_both_ways_and_unknown_ones_are_listed() {
        for kind in CellKind::ALL {
            assert_eq!(kind.name().parse::<CellKind>(), Ok(kind));
        }
        for pool in Pool::ALL {
            assert_eq!(pool.name().parse::<Pool>(), Ok(pool));
        }
        for head in Head::ALL {
            assert_eq!(head.to_string().parse::<Head>(), Ok(head));
        }
        assert_eq!(
            "mode".parse::<Pool>().unwrap_err(),
            "unknown pooling \"mode\" (expected one of: last, mean, max)"
        );
        assert_eq!(
            "rnn2".parse::<CellKind>().unwrap_err(),
            "unknown cell \"rnn2\" (expected one of: rnn, gru, lstm)"
        );
        assert_eq!(
            "token".parse::<Head>().unwrap_err(),
            "unknown head \"token\" (expected one of: sequence, step)"
        );
        // the defaults are the seed's
        let defaults = (CellKind::default(), Pool::default(), Head::default());
        assert_eq!(defaults, (CellKind::Rnn, Pool::Last, Head::Sequence));
    }

    #[test]
    fn widths_follow_the_layers_and_directions() {
        let mut arch = Architecture::new(CellKind::Lstm, 100, 8, 3);
        assert_eq!((arch.input_width(0), arch.features()), (100, 8));
        arch.bidirectional = true;
        arch.embed = Some(5);
        arch.layers = 2;
        assert_eq!(
            (arch.input_width(0), arch.input_width(1), arch.features()),
            (5, 16, 16)
        );
        assert_eq!(
            arch.to_string(),
            "2-layer bidirectional lstm, H = 8, embedding 5"
        );
    }

    #[test]
    fn the_parameter_count_is_the_networks_and_overflow_is_none() {
        for cell in CellKind::ALL {
            for (layers, bidirectional, embed) in [(1, false, None), (2, true, Some(3))] {
                let arch = Architecture {
                    layers,
                    bidirectional,
                    embed,
                    ..Architecture::new(cell, 11, 4, 3)
                };
                let net = crate::rnn::Network::zeros(&arch).unwrap();
                assert_eq!(arch.parameter_count(), Some(net.params().len()), "{arch}");
            }
        }
        let huge = Architecture::new(CellKind::Lstm, 10, 1 << 40, 2);
        assert_eq!(huge.parameter_count(), None);
        let huge = Architecture::new(CellKind::Rnn, usize::MAX, 2, 2);
        assert_eq!(huge.parameter_count(), None);
    }

    #[test]
    fn sizes_and_dropout_are_checked() {
        let good = Architecture::new(CellKind::Rnn, 10, 4, 2);
        assert!(good.validate().is_ok());
        let bad = Architecture {
            layers: 0,
            ..good.clone()
        };
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "the number of layers must be at least 1"
        );
        for p in [1.0, -0.1, f32::NAN] {
            let bad = Architecture {
                dropout: p,
                ..good.clone()
            };
            assert!(bad.validate().is_err(), "{p}");
        }
    }
}
