//! `rnn._rnn`: the native half of the Python package `rnn`. It is thin on purpose: training
//! follows the library's [`rnn::recipe`] (what `rnn train` follows), predictions come from
//! [`rnn::model::Model`], and model files are the library's. The estimator, the argument
//! checks a Python user expects and NumPy's arrays are in `python/rnn/`.
//!
//! Training runs on a thread of its own while the calling thread, without the GIL, waits for
//! its events: the caller's progress callback then runs on the calling thread, and a Ctrl-C
//! (which Python delivers to the main thread only) is seen within a tenth of a second and
//! stops the run after its current batch, keeping the best weights so far.

mod ddp;
mod errors;
mod language_model;
mod options;
mod training;
mod tuning;

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use rnn::model::{Kind, Model};

use errors::to_py;

/// A trained classifier: the library's [`Model`].
#[pyclass(module = "rnn._rnn", name = "NativeClassifier", frozen)]
pub struct NativeClassifier {
    pub(crate) model: Model,
}

#[pymethods]
impl NativeClassifier {
    /// Reads a classifier's model file.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let model = py
            .detach(|| Model::load_as(&path, Kind::Classifier))
            .map_err(to_py)?;
        Ok(NativeClassifier { model })
    }

    /// Writes the model file (atomically), creating missing folders as the command line does.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| {
            rnn::fsutil::create_parent(&path)?;
            self.model.save(&path)
        })
        .map_err(to_py)
    }

    /// The labels, in the model's order (sorted by name): the columns of `predict_proba`.
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.model.labels().to_vec()
    }

    /// What the network is, as `rnn train` prints it.
    #[getter]
    fn architecture(&self) -> String {
        self.model.network.arch().to_string()
    }

    /// The settings the model was made with, as keyword arguments of `rnn.Classifier`.
    fn settings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        options::settings_of(py, &self.model)
    }

    /// The vocabulary, by token index (`<unk>` first).
    #[getter]
    fn vocabulary(&self) -> Vec<String> {
        (0..self.model.vocab.len() as u32)
            .map(|i| self.model.vocab.token(i).to_string())
            .collect()
    }

    /// The token ids the model reads for `text` (split by its rule, unknown tokens as
    /// `<unk>`, cut to its `max_len`).
    fn encode(&self, text: &str) -> Vec<u32> {
        // a token the vocabulary lacks is <unk> (token 0) to the network (see rnn::data::UNSEEN)
        let ids = self.model.encode(text);
        ids.into_iter().map(rnn::data::network_token).collect()
    }

    /// The keys the model reads for `text`: its token ids, but with n-gram features (see
    /// [`rnn::rnn::Ngrams`]) a token the vocabulary lacks is its unseen key (`1 << 31` and the
    /// low 31 bits of the FNV-1a hash of its UTF-8 bytes), which the network reads as `<unk>`
    /// and the n-grams by its hash.
    fn keys(&self, text: &str) -> Vec<u32> {
        self.model.encode(text)
    }

    /// The n-gram features' buckets of `text` (every 1-gram by position, then every 2-gram,
    /// ...), the rows of `wide.weight` whose mean adds to its logits; an error for a model
    /// without them.
    fn buckets(&self, text: &str) -> PyResult<Vec<u32>> {
        let ngrams = self.model.network.arch().ngrams.ok_or_else(|| {
            PyValueError::new_err("the model has no n-gram features (it was trained with ngrams 0)")
        })?;
        let mut out = Vec::new();
        rnn::rnn::buckets_of(&self.model.encode(text), ngrams, &mut out);
        Ok(out)
    }

    /// Every token's subword n-gram buckets for `text` (see [`rnn::rnn::Subwords`]): one list
    /// a token of `encode`'s, the rows of `subwords.weight` whose mean with the token's own
    /// row is its embedding, taken from the word itself (an unknown word's too); every list
    /// empty for a model without subword vectors.
    fn grams(&self, text: &str) -> Vec<Vec<u32>> {
        let (ids, grams) = self.model.encode_with_grams(text);
        (0..ids.len())
            .map(|t| {
                if grams.is_empty() {
                    Vec::new()
                } else {
                    grams.of(t).to_vec()
                }
            })
            .collect()
    }

    /// The probability of every label for every text, as little-endian `f32` bytes of a
    /// `len(texts) × len(labels)` array, and the index of each text's likeliest label.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        threads: usize,
    ) -> PyResult<(Bound<'py, PyBytes>, Vec<usize>)> {
        let (probs, labels) = py
            .detach(|| {
                // the pool's error, then the prediction's
                training::on_threads(threads, || {
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    let predictions = self.model.predict(&refs)?;
                    let labels = predictions.iter().map(|p| p.label).collect();
                    let bytes: Vec<u8> = predictions
                        .iter()
                        .flat_map(|p| p.probs.iter().flat_map(|x| x.to_le_bytes()))
                        .collect();
                    Ok((bytes, labels))
                })?
            })
            .map_err(to_py)?;
        Ok((PyBytes::new(py, &probs), labels))
    }

    /// The tokens of `text` as the model sees them, and after each one the probability of
    /// every label if the text stopped there (`f32` bytes, `len(tokens) × len(labels)`; NaN
    /// after a token of a long text where no evaluated prefix ends, see `Model::explain`).
    fn explain<'py>(
        &self,
        py: Python<'py>,
        text: String,
    ) -> PyResult<(Vec<String>, Bound<'py, PyBytes>)> {
        let explanation = py.detach(|| self.model.explain(&text));
        let labels = self.model.labels().len();
        let not_evaluated = vec![f32::NAN; labels];
        let bytes: Vec<u8> = explanation
            .after_each_token()
            .into_iter()
            .flat_map(|p| {
                p.unwrap_or(&not_evaluated)
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
            })
            .collect();
        Ok((explanation.tokens, PyBytes::new(py, &bytes)))
    }
}

/// From now on, this process's messages name settings as the command line's flags
/// (`--text-col`, not `text_col`): for `python -m rnn.ddp`, whose flags are `rnn train`'s.
#[pyfunction]
fn name_settings_as_flags() {
    rnn::error::name_settings_as_flags();
}

/// Which kind of model a file holds: "classifier" or "language_model".
#[pyfunction]
fn model_kind(py: Python<'_>, path: PathBuf) -> PyResult<&'static str> {
    let model = py.detach(|| Model::load(&path)).map_err(to_py)?;
    Ok(model.kind().name())
}

#[pymodule]
fn _rnn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeClassifier>()?;
    m.add_class::<language_model::NativeLanguageModel>()?;
    m.add_class::<ddp::NativeRank>()?;
    m.add_function(wrap_pyfunction!(training::fit_classifier, m)?)?;
    m.add_function(wrap_pyfunction!(language_model::fit_language_model, m)?)?;
    m.add_function(wrap_pyfunction!(
        language_model::language_model_defaults,
        m
    )?)?;
    m.add_function(wrap_pyfunction!(options::classifier_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(model_kind, m)?)?;
    m.add_function(wrap_pyfunction!(name_settings_as_flags, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
