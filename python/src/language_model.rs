//! The language model for Python: `rnn lm`'s recipe to train it, and the library's sampler,
//! scorer and model files.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use rnn::lm::recipe::{self, TextRecipe, TextStart};
use rnn::lm::{Sampling, bits};
use rnn::model::{Kind, Model};

use crate::errors::to_py;
use crate::options;
use crate::training::{self, report_dict, sender};

/// Tokens generated between two looks at Python's signals: a few milliseconds' work.
const GENERATE_CHUNK: usize = 256;

/// A trained language model: the library's [`Model`], of [`Kind::LanguageModel`].
#[pyclass(module = "rnn._rnn", name = "NativeLanguageModel", frozen)]
pub struct NativeLanguageModel {
    model: Model,
}

#[pymethods]
impl NativeLanguageModel {
    /// Reads a language model's file.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let model = py
            .detach(|| Model::load_as(&path, Kind::LanguageModel))
            .map_err(to_py)?;
        Ok(NativeLanguageModel { model })
    }

    /// Writes the model file (atomically), creating missing folders as the command line does.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| {
            rnn::fsutil::create_parent(&path)?;
            self.model.save(&path)
        })
        .map_err(to_py)
    }

    /// The vocabulary, by token index (`<unk>` first).
    #[getter]
    fn vocabulary(&self) -> Vec<String> {
        (0..self.model.vocab.len() as u32)
            .map(|i| self.model.token(i).to_string())
            .collect()
    }

    /// What the network is.
    #[getter]
    fn architecture(&self) -> String {
        self.model.network.arch().to_string()
    }

    /// The settings the model was made with, as keyword arguments of `rnn.LanguageModel`.
    fn settings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let a = self.model.network.arch();
        let d = PyDict::new(py);
        d.set_item("cell", a.cell.name())?;
        d.set_item("hidden", a.hidden)?;
        d.set_item("layers", a.layers)?;
        d.set_item("embed", a.embed.unwrap_or(0))?;
        d.set_item("tokens", self.model.tokens.name())?;
        Ok(d)
    }

    /// `prime` and `length` tokens drawn after it, as `rnn generate` prints them. Ctrl-C (a
    /// signal Python handles) stops a long text between chunks of [`GENERATE_CHUNK`] tokens.
    #[pyo3(signature = (prime, length, temperature, top_k, top_p, seed))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments
    fn generate(
        &self,
        py: Python<'_>,
        prime: String,
        length: usize,
        temperature: f32,
        top_k: Option<usize>,
        top_p: Option<f32>,
        seed: u64,
    ) -> PyResult<String> {
        let sampling = Sampling {
            temperature,
            top_k,
            top_p,
            seed,
        };
        let mut generator = py
            .detach(|| self.model.generate(&prime, &sampling))
            .map_err(to_py)?;
        let join = self.model.join();
        let mut out = prime.clone();
        let mut first = prime.is_empty();
        let mut left = length;
        // a chunk of tokens at a time without the GIL, then Ctrl-C's chance to stop a long text
        while left > 0 {
            let chunk = left.min(GENERATE_CHUNK);
            py.detach(|| {
                for (token, _) in generator.by_ref().take(chunk) {
                    if !first {
                        out.push_str(join);
                    }
                    first = false;
                    out.push_str(self.model.token(token));
                }
            });
            left -= chunk;
            py.check_signals()?;
        }
        Ok(out)
    }

    /// The mean loss on `text` in nats a token, in bits a token, the perplexity, the
    /// next-token accuracy and the text's tokens, read as `rnn eval` reads it (`streams`
    /// streams in windows of `bptt`).
    fn evaluate(
        &self,
        py: Python<'_>,
        text: String,
        streams: usize,
        bptt: usize,
    ) -> PyResult<(f32, f32, f32, f32, usize)> {
        if streams == 0 || bptt == 0 {
            return Err(PyValueError::new_err("streams and bptt must be at least 1"));
        }
        let ids = self.model.encode(&text);
        let score = py
            .detach(|| self.model.evaluate_text(&ids, streams, bptt))
            .map_err(to_py)?;
        match score {
            Some(s) => Ok((s.loss, bits(s.loss), s.loss.exp(), s.accuracy, ids.len())),
            None => Err(PyValueError::new_err(
                "the text has fewer than two tokens: there is nothing to predict",
            )),
        }
    }

    /// For every token of `text`: the token, the probability the model gave it after the ones
    /// before (None for the first), and the `top` likeliest tokens to follow it.
    #[allow(clippy::type_complexity)]
    fn explain(
        &self,
        py: Python<'_>,
        text: String,
        top: usize,
    ) -> PyResult<Vec<(String, Option<f32>, Vec<(String, f32)>)>> {
        let steps = py
            .detach(|| self.model.next_tokens(&text, top))
            .map_err(to_py)?;
        Ok(steps
            .into_iter()
            .map(|s| {
                let next = s
                    .next
                    .iter()
                    .map(|&(t, p)| (self.model.token(t).to_string(), p))
                    .collect();
                (self.model.token(s.token).to_string(), s.p, next)
            })
            .collect())
    }
}

/// The options of a language model as Python sees them, with `rnn lm`'s defaults.
#[pyfunction]
pub fn language_model_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let r = TextRecipe::default();
    let m = &r.model;
    let d = PyDict::new(py);
    d.set_item("cell", m.cell.name())?;
    d.set_item("hidden", m.hidden)?;
    d.set_item("layers", m.layers)?;
    d.set_item("embed", m.embed.unwrap_or(0))?;
    d.set_item("dropout", options::shortest(m.dropout))?;
    d.set_item("tokens", m.tokens.name())?;
    d.set_item("min_count", m.min_count)?;
    d.set_item("max_vocab", m.max_vocab)?;
    d.set_item("bptt", r.bptt)?;
    d.set_item("batch", r.batch)?;
    d.set_item("epochs", r.epochs)?;
    d.set_item("patience", r.patience)?;
    d.set_item("optimizer", r.optimizer.to_string())?;
    d.set_item("lr", r.lr)?;
    d.set_item("schedule", r.schedule.to_string())?;
    d.set_item("clip", options::shortest(r.clip))?;
    d.set_item("valid_fraction", r.valid_fraction)?;
    d.set_item("max_seconds", r.max_seconds)?;
    d.set_item("seed", m.seed)?;
    d.set_item("threads", None::<usize>)?;
    Ok(d)
}

/// Trains a language model on `text` as `rnn lm` would on a file holding it: the validation
/// tokens are `valid`'s, or the end of `text`. `checkpoint` and `resume` are as for a
/// classifier ([`crate::training::fit_classifier`]).
#[pyfunction]
#[pyo3(signature = (text, valid, options, callback=None, checkpoint=None, resume=None))]
pub fn fit_language_model<'py>(
    py: Python<'py>,
    text: String,
    valid: Option<String>,
    options: &Bound<'py, PyDict>,
    callback: Option<Bound<'py, PyAny>>,
    checkpoint: Option<PathBuf>,
    resume: Option<PathBuf>,
) -> PyResult<(NativeLanguageModel, Bound<'py, PyDict>)> {
    let recipe = options::text_recipe(options)?;
    let threads = options::threads_given(options)?;
    let (pretrained, freeze_embed) = options::embedding_start(options)?;
    let mut prepared = py
        .detach(|| {
            let start = match resume {
                Some(path) => TextStart::Resume {
                    checkpoint: Box::new(rnn::checkpoint::load(&path)?),
                    path,
                    epochs: recipe.epochs,
                    threads,
                },
                None => TextStart::New,
            };
            let notes = start.notes(&recipe, valid.is_some())?;
            let mut prepared =
                recipe::prepare_run(start, &recipe, notes, &text, valid.as_deref(), None)?;
            prepared.start_embedding(pretrained.as_deref(), freeze_embed)?;
            Ok::<_, rnn::error::Error>(prepared)
        })
        .map_err(to_py)?;
    drop(text);
    let files = training::checkpoint_files(checkpoint);
    let outcome = training::run(py, callback.as_ref(), |stop, link| {
        prepared.run(files, Some(stop), sender(link, Vec::new()))
    })?;
    let report = outcome.result.map_err(to_py)?;
    let report_py = report_dict(py, &report, &[], outcome.keyboard_interrupt)?;
    report_py.set_item("stopped_by_callback", outcome.stopped_by_callback)?;
    Ok((
        NativeLanguageModel {
            model: prepared.model,
        },
        report_py,
    ))
}
