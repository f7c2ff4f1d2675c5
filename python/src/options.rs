//! The keyword arguments of `rnn.Classifier`, read into the library's [`Recipe`] with the
//! command line's checks and messages (a Python user gets a `ValueError` naming the argument,
//! where `rnn train` names the flag), and the defaults, which the Python class states and a
//! test keeps equal to these.

use std::path::PathBuf;
use std::str::FromStr;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_py;
use rnn::autotune::Knob;
use rnn::data::Tokens;
use rnn::lm::recipe::{MODEL_DEFAULTS, TextRecipe};
use rnn::model::{Model, ModelConfig, default_ngrams};
use rnn::recipe::Recipe;
use rnn::rnn::{
    DEFAULT_BUCKETS, DEFAULT_SUBWORD_BUCKETS, MAX_NGRAMS, Ngrams, Subwords, check_lengths,
    parse_subwords,
};

/// The options of a classifier as Python sees them, with `rnn train`'s defaults: a value
/// that depends on the data (`lr`, `batch`, `valid_split`) or is absent (`max_vocab`,
/// `max_len`), or the library's own default (`ngrams`, which depends on the tokens, `buckets`,
/// `wide_lr`, `subword_buckets`), is `None`; `ngrams` 0 is no n-gram features, and `subwords`
/// None no subword vectors.
#[pyfunction]
pub fn classifier_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let r = Recipe::default();
    let m = &r.model;
    let d = PyDict::new(py);
    d.set_item("cell", m.cell.name())?;
    d.set_item("hidden", m.hidden)?;
    d.set_item("layers", m.layers)?;
    d.set_item("bidirectional", m.bidirectional)?;
    d.set_item("embed", m.embed.unwrap_or(0))?;
    d.set_item("pool", m.pool.to_string())?;
    d.set_item("ngrams", None::<usize>)?;
    d.set_item("buckets", None::<usize>)?;
    d.set_item("wide_lr", r.wide_lr.map(shortest))?;
    d.set_item("subwords", None::<String>)?;
    d.set_item("subword_buckets", None::<usize>)?;
    d.set_item("dropout", shortest(m.dropout))?;
    d.set_item("tokens", m.tokens.name())?;
    d.set_item("min_count", m.min_count)?;
    d.set_item("max_vocab", m.max_vocab)?;
    d.set_item("max_len", m.max_len)?;
    d.set_item("initializer", m.initializer.name())?;
    d.set_item("input_init", shortest(m.input_init))?;
    d.set_item("optimizer", r.optimizer.to_string())?;
    d.set_item("lr", r.lr)?;
    d.set_item("clip", shortest(r.clip))?;
    d.set_item("batch", r.batch)?;
    d.set_item("epochs", r.epochs)?;
    d.set_item("patience", r.patience)?;
    d.set_item("schedule", r.schedule.to_string())?;
    d.set_item("class_weight", r.class_weight.to_string())?;
    d.set_item("valid_split", r.valid_split)?;
    d.set_item("shuffle", r.shuffle)?;
    d.set_item("seed", m.seed)?;
    d.set_item("threads", None::<usize>)?;
    d.set_item("autotune", None::<f64>)?;
    Ok(d)
}

/// The `autotune` option: a budget in seconds, or None for no search.
pub fn autotune(options: &Bound<'_, PyDict>) -> PyResult<Option<f64>> {
    Options(options).optional("autotune", |o, k| {
        let s: f64 = o.value(k, "a number of seconds")?;
        if s.is_finite() && s > 0.0 {
            Ok(s)
        } else {
            Err(PyValueError::new_err(format!(
                "{k} must be a positive number of seconds, not {s}"
            )))
        }
    })
}

/// The knobs that `autotune` keeps: those whose argument differs from its default (and the
/// embedding's width when `pretrained` vectors set it).
pub fn fixed_knobs(options: &Bound<'_, PyDict>) -> PyResult<Vec<Knob>> {
    let defaults = classifier_defaults(options.py())?;
    let (o, mut fixed) = (Options(options), Vec::new());
    for knob in Knob::ALL {
        let name = knob.name();
        let given = o.item(name)?;
        if given.ne(defaults.get_item(name)?)? {
            fixed.push(knob);
        }
    }
    if embedding_start(options)?.0.is_some() && !fixed.contains(&Knob::Embed) {
        fixed.push(Knob::Embed);
    }
    Ok(fixed)
}

/// The settings a model was made with that its file keeps, as keyword arguments of
/// `rnn.Classifier` (for a model read from a file).
pub fn settings_of<'py>(py: Python<'py>, model: &Model) -> PyResult<Bound<'py, PyDict>> {
    let a = model.network.arch();
    let d = PyDict::new(py);
    d.set_item("cell", a.cell.name())?;
    d.set_item("hidden", a.hidden)?;
    d.set_item("layers", a.layers)?;
    d.set_item("bidirectional", a.bidirectional)?;
    d.set_item("embed", a.embed.unwrap_or(0))?;
    d.set_item("pool", a.pool.to_string())?;
    // the table's size as a number, also where it was the default (None) when trained
    d.set_item("ngrams", a.ngrams.map_or(0, |g| g.n))?;
    d.set_item("buckets", a.ngrams.map(|g| g.buckets))?;
    d.set_item(
        "subwords",
        a.subwords.map(|s| format!("{}-{}", s.min, s.max)),
    )?;
    d.set_item("subword_buckets", a.subwords.map(|s| s.buckets))?;
    d.set_item("dropout", shortest(a.dropout))?;
    d.set_item("tokens", model.tokens.name())?;
    d.set_item("max_len", model.max_len)?;
    Ok(d)
}

/// How a classifier's embedding starts, from the options `rnn.Classifier` passes:
/// `pretrained`, a `.vec` file (or None), and `freeze_embed`; either may be absent (as from
/// `rnn.ddp`), which is None and false.
pub fn embedding_start(options: &Bound<'_, PyDict>) -> PyResult<(Option<PathBuf>, bool)> {
    let pretrained = match options.get_item("pretrained")? {
        Some(v) if !v.is_none() => Some(v.extract()?),
        _ => None,
    };
    let freeze = match options.get_item("freeze_embed")? {
        Some(v) => v.extract()?,
        None => false,
    };
    Ok((pretrained, freeze))
}

/// Reads the options that `rnn.Classifier` passes (every key present) into a recipe.
pub fn recipe(options: &Bound<'_, PyDict>) -> PyResult<Recipe> {
    let o = Options(options);
    let model = ModelConfig {
        cell: o.parsed("cell")?,
        hidden: o.at_least_one("hidden")?,
        layers: o.at_least_one("layers")?,
        bidirectional: o.flag("bidirectional")?,
        embed: Some(o.whole("embed")?).filter(|&e| e > 0),
        pool: o.parsed("pool")?,
        ngrams: o.ngrams(o.parsed("tokens")?)?,
        subwords: o.subwords()?,
        dropout: o.fraction("dropout")? as f32,
        tokens: o.parsed("tokens")?,
        min_count: o.at_least_one("min_count")?,
        max_vocab: o.optional("max_vocab", |o, k| o.at_least_one(k))?,
        max_len: o.optional("max_len", |o, k| o.at_least_one(k))?,
        initializer: o.parsed("initializer")?,
        input_init: o.positive("input_init")?,
        seed: o.seed("seed")?,
    };
    model.check_subwords().map_err(to_py)?;
    Ok(Recipe {
        model,
        valid_split: o.optional("valid_split", Options::fraction)?,
        epochs: o.whole("epochs")?,
        optimizer: o.parsed("optimizer")?,
        lr: o.optional("lr", Options::positive)?,
        clip: o.positive("clip")?,
        batch: o.optional("batch", |o, k| o.at_least_one(k))?,
        patience: o.whole("patience")?,
        schedule: o.parsed("schedule")?,
        class_weight: o.parsed("class_weight")?,
        shuffle: o.flag("shuffle")?,
        threads: o.optional("threads", Options::threads)?.unwrap_or(0),
        wide_lr: o.optional("wide_lr", Options::positive)?,
    })
}

/// Reads the options that `rnn.LanguageModel` passes (every key present) into a recipe.
pub fn text_recipe(options: &Bound<'_, PyDict>) -> PyResult<TextRecipe> {
    let o = Options(options);
    let model = ModelConfig {
        cell: o.parsed("cell")?,
        hidden: o.at_least_one("hidden")?,
        layers: o.at_least_one("layers")?,
        embed: Some(o.whole("embed")?).filter(|&e| e > 0),
        dropout: o.fraction("dropout")? as f32,
        tokens: o.parsed("tokens")?,
        min_count: o.at_least_one("min_count")?,
        max_vocab: o.optional("max_vocab", |o, k| o.at_least_one(k))?,
        seed: o.seed("seed")?,
        ..MODEL_DEFAULTS
    };
    Ok(TextRecipe {
        model,
        valid_fraction: o.fraction("valid_fraction")?,
        bptt: o.at_least_one("bptt")?,
        batch: o.at_least_one("batch")?,
        epochs: o.whole("epochs")?,
        patience: o.whole("patience")?,
        optimizer: o.parsed("optimizer")?,
        lr: o.optional("lr", Options::positive)?,
        schedule: o.parsed("schedule")?,
        clip: o.positive("clip")?,
        threads: o.optional("threads", Options::threads)?.unwrap_or(0),
        max_seconds: o.optional("max_seconds", |o, k| {
            let s: f64 = o.value(k, "a number of seconds")?;
            if s.is_finite() && s >= 0.0 {
                Ok(s)
            } else {
                Err(PyValueError::new_err(format!(
                    "{k} must be a number of seconds, not {s}"
                )))
            }
        })?,
    })
}

/// The `threads` option as given, `None` when it is not: a resumed run then keeps its own.
pub fn threads_given(options: &Bound<'_, PyDict>) -> PyResult<Option<usize>> {
    Options(options).optional("threads", Options::threads)
}

/// The most threads that may be asked for: 4 per core, and at least 16 (as `--threads`).
pub fn max_threads() -> usize {
    rnn::train::max_threads()
}

/// A dictionary of options, read with messages that name the argument.
struct Options<'a, 'py>(&'a Bound<'py, PyDict>);

impl Options<'_, '_> {
    fn item(&self, key: &str) -> PyResult<Bound<'_, PyAny>> {
        self.0
            .get_item(key)?
            .ok_or_else(|| PyValueError::new_err(format!("the option {key} is missing")))
    }

    /// The value of `key` as a `T`, which a message calls `what`.
    fn value<T: for<'a, 'py> FromPyObject<'a, 'py>>(&self, key: &str, what: &str) -> PyResult<T> {
        let item = self.item(key)?;
        item.extract::<T>().map_err(|_| {
            PyValueError::new_err(format!("{key} must be {what}, not {}", describe(&item)))
        })
    }

    fn flag(&self, key: &str) -> PyResult<bool> {
        self.value(key, "True or False")
    }

    fn whole(&self, key: &str) -> PyResult<usize> {
        self.value(key, "a whole number of at least 0")
    }

    fn seed(&self, key: &str) -> PyResult<u64> {
        self.value(key, "a whole number of at least 0")
    }

    fn optional<T>(
        &self,
        key: &str,
        read: impl Fn(&Self, &str) -> PyResult<T>,
    ) -> PyResult<Option<T>> {
        if self.item(key)?.is_none() {
            Ok(None)
        } else {
            read(self, key).map(Some)
        }
    }

    fn parsed<T: FromStr<Err = String>>(&self, key: &str) -> PyResult<T> {
        let name: String = self.value(key, "a string")?;
        name.parse()
            .map_err(|e: String| PyValueError::new_err(format!("{key}: {e}")))
    }

    fn at_least_one(&self, key: &str) -> PyResult<usize> {
        match self.value::<usize>(key, "") {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(PyValueError::new_err(format!(
                "{key} must be a whole number of at least 1, not {}",
                describe(&self.item(key)?)
            ))),
        }
    }

    fn positive(&self, key: &str) -> PyResult<f32> {
        match self.value::<f64>(key, "") {
            Ok(x) if x.is_finite() && x > 0.0 && (x as f32) > 0.0 => Ok(x as f32),
            _ => Err(PyValueError::new_err(format!(
                "{key} must be a positive number, not {}",
                describe(&self.item(key)?)
            ))),
        }
    }

    fn fraction(&self, key: &str) -> PyResult<f64> {
        match self.value::<f64>(key, "") {
            Ok(x) if (0.0..1.0).contains(&x) => Ok(x),
            _ => Err(PyValueError::new_err(format!(
                "{key} must be at least 0 and less than 1, not {}",
                describe(&self.item(key)?)
            ))),
        }
    }

    /// The wide path that `ngrams` and `buckets` ask for, as `--ngrams` and `--buckets` do:
    /// `ngrams` None for the default of `tokens` ([`default_ngrams`]), none for `ngrams` 0
    /// (whatever `buckets` is), `buckets` None for [`DEFAULT_BUCKETS`].
    fn ngrams(&self, tokens: Tokens) -> PyResult<Option<Ngrams>> {
        let default = default_ngrams(tokens).map_or(0, |d| d.n);
        let n = match self.optional("ngrams", |o, k| o.value::<usize>(k, "")) {
            Ok(n) if n.unwrap_or(default) <= MAX_NGRAMS => n.unwrap_or(default),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "ngrams must be None (the default) or a whole number from 0 (none) to \
                     {MAX_NGRAMS}, not {}",
                    describe(&self.item("ngrams")?)
                )));
            }
        };
        let buckets = match self.optional("buckets", |o, k| o.at_least_one(k))? {
            Some(b) if b as u64 > 1 << 32 => {
                return Err(PyValueError::new_err(format!(
                    "buckets must be a whole number from 1 to 2^32, not {b}"
                )));
            }
            b => b,
        };
        Ok((n > 0).then(|| Ngrams {
            n,
            buckets: buckets.unwrap_or(DEFAULT_BUCKETS),
        }))
    }

    /// The subword vectors that `subwords` and `subword_buckets` ask for, as `--subwords` and
    /// `--subword-buckets` do: `subwords` None for none (whatever `subword_buckets` is, as
    /// `buckets` with `ngrams` 0), else `"MIN-MAX"` (or `"N"`, `N-N`) or a `(MIN, MAX)` pair
    /// (a tuple or a list);
    /// `subword_buckets` None for [`DEFAULT_SUBWORD_BUCKETS`].
    fn subwords(&self) -> PyResult<Option<Subwords>> {
        let buckets = match self.optional("subword_buckets", |o, k| o.at_least_one(k))? {
            Some(b) if b as u64 >= 1 << 31 => {
                return Err(PyValueError::new_err(format!(
                    "subword_buckets must be a whole number from 1 to 2^31 - 1, not {b}"
                )));
            }
            b => b.unwrap_or(DEFAULT_SUBWORD_BUCKETS),
        };
        let item = self.item("subwords")?;
        if item.is_none() {
            return Ok(None);
        }
        let sizes = match item.extract::<String>() {
            Ok(s) => parse_subwords(&s),
            // a pair: a tuple, or a list of two (as JSON gives it)
            Err(_) => item.extract::<Vec<usize>>().ok().and_then(|v| match v[..] {
                [min, max] => Some((min, max)),
                _ => None,
            }),
        };
        let Some((min, max)) = sizes else {
            return Err(PyValueError::new_err(format!(
                "subwords must be None (none), \"MIN-MAX\" such as \"3-6\", or a (MIN, MAX) \
                 pair of whole numbers, not {}",
                describe(&item)
            )));
        };
        check_lengths(min, max)
            .map_err(|e| PyValueError::new_err(format!("subwords {}: {e}", describe(&item))))?;
        Ok(Some(Subwords { min, max, buckets }))
    }

    fn threads(&self, key: &str) -> PyResult<usize> {
        let n = self.at_least_one(key)?;
        let max = max_threads();
        if n > max {
            return Err(PyValueError::new_err(format!(
                "{key}: {n} threads on a machine with {} cores: at most {max} (4 per core, or 16)",
                std::thread::available_parallelism().map_or(1, usize::from)
            )));
        }
        Ok(n)
    }
}

/// `x` as the float a person wrote (0.3, not 0.30000001192092896): the shortest decimal that
/// reads back as the same `f32`.
pub fn shortest(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::NAN)
}

/// How a value reads in a message: its repr.
fn describe(item: &Bound<'_, PyAny>) -> String {
    item.repr()
        .map_or_else(|_| "a value".to_string(), |r| r.to_string())
}
