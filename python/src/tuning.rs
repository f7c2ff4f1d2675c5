//! `rnn.Classifier(autotune=SECONDS)`: the library's search ([`rnn::autotune`]) from Python,
//! its trials told to the callback, and its result in the run's report.

use std::collections::BTreeSet;
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use rnn::autotune::{self, Search, Trial, TuneData, TuneEvent};
use rnn::data::files::{Columns, Row};
use rnn::recipe::{EmbeddingStart, Recipe, Rows};

use crate::NativeClassifier;
use crate::errors::to_py;
use crate::training::{Message, report_dict, run, sender};

/// A trial as Python hears of it.
pub struct TrialRecord {
    number: usize,
    /// The arguments whose values differ from those given, as `autotune` sets them.
    params: Vec<(&'static str, String)>,
    valid_accuracy: f32,
    valid_loss: f32,
    epochs: usize,
    /// Validation rows it got right and the best before it wrong, and the other way.
    against_best: Option<(usize, usize)>,
    /// Its sign test's p-value against that best, and the level it needed.
    test: Option<(f64, f64)>,
    best: bool,
}

/// The sign test's p-value of a trial against the best before it, and the level it needed
/// (see `rnn::autotune::beats`); none for trial 0.
fn test_of(t: &Trial) -> Option<(f64, f64)> {
    let (gained, lost) = t.against_best?;
    Some((autotune::sign_test(gained, lost), autotune::level(t.number)))
}

impl TrialRecord {
    fn of(t: &Trial) -> Self {
        TrialRecord {
            number: t.number,
            params: t
                .changed
                .iter()
                .map(|k| (k.name(), k.value(&t.recipe)))
                .collect(),
            valid_accuracy: t.valid_accuracy,
            valid_loss: t.valid_loss,
            epochs: t.epochs,
            against_best: t.against_best,
            test: test_of(t),
            best: t.best,
        }
    }

    /// The trial into `d`: number, params (a dict), valid_accuracy, valid_loss, epochs, gained
    /// and lost (validation rows against the best before it), p and level (its sign test's
    /// p-value, and the most it could be to replace that best; all four None for trial 0),
    /// best.
    pub fn write_into(&self, d: &Bound<'_, PyDict>) -> PyResult<()> {
        d.set_item("number", self.number)?;
        d.set_item("params", params(d.py(), &self.params)?)?;
        d.set_item("valid_accuracy", self.valid_accuracy)?;
        d.set_item("valid_loss", self.valid_loss)?;
        d.set_item("epochs", self.epochs)?;
        d.set_item("gained", self.against_best.map(|a| a.0))?;
        d.set_item("lost", self.against_best.map(|a| a.1))?;
        d.set_item("p", self.test.map(|t| t.0))?;
        d.set_item("level", self.test.map(|t| t.1))?;
        d.set_item("best", self.best)?;
        Ok(())
    }
}

/// Arguments of `rnn.Classifier` and their values as the flags write them, as a dict of
/// Python values: numbers as int or float, kinds as str.
fn params<'py>(py: Python<'py>, settings: &[(&str, String)]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, value) in settings {
        if let Ok(n) = value.parse::<u64>() {
            d.set_item(name, n)?;
        } else if let Ok(x) = value.parse::<f64>() {
            d.set_item(name, x)?;
        } else {
            d.set_item(name, value)?;
        }
    }
    Ok(d)
}

/// Searches settings as `rnn train --autotune` does, on `rows` (training rows, and validation
/// rows or none), from `recipe`, each trial's embedding started from `embedding` (a `.vec`
/// file, and whether it is kept fixed). Returns the best trial's model and its run's report,
/// which also has "autotune": trials (a list of every trial's dict), best_trial, params (the
/// arguments the best trial changed, and valid_split and epochs when the search set them),
/// flags (the same as `rnn train` flags) and nominal_seconds.
pub fn fit_tuned<'py>(
    py: Python<'py>,
    recipe: &Recipe,
    (train, valid): (Vec<Row>, Option<Vec<Row>>),
    (vectors, freeze): (Option<PathBuf>, bool),
    search: Search,
    callback: Option<Bound<'py, PyAny>>,
) -> PyResult<(NativeClassifier, Bound<'py, PyDict>)> {
    // the model's labels, sorted, for its warnings
    let labels: Vec<String> = train
        .iter()
        .map(|r| r.label.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let outcome = run(py, callback.as_ref(), |stop, link| {
        let trials = link.messages.clone();
        let mut send = sender(link, labels.clone());
        let data = TuneData {
            train: Rows::in_memory(train),
            valid: valid.map(Rows::in_memory),
            test: None,
            columns: Columns::default(),
            embedding: EmbeddingStart {
                vectors: vectors.as_deref(),
                freeze,
            },
        };
        autotune::tune(data, recipe, &search, Some(stop), |event| match event {
            TuneEvent::Run(e) => send(e),
            TuneEvent::End(t) => {
                let _ = trials.send(Message::Trial(TrialRecord::of(t)));
            }
            TuneEvent::Start(_) => {}
        })
    })?;
    let tuned = outcome.result.map_err(to_py)?;
    let (settings, flags) = (tuned.settings(), tuned.flags());
    let model = tuned.run.model;
    let report = report_dict(
        py,
        &tuned.report,
        model.labels(),
        outcome.keyboard_interrupt,
    )?;
    report.set_item("stopped_by_callback", outcome.stopped_by_callback)?;
    report.set_item("interrupted", tuned.interrupted)?;
    let found = PyDict::new(py);
    let trials = PyList::empty(py);
    for t in &tuned.trials {
        let d = PyDict::new(py);
        TrialRecord::of(t).write_into(&d)?;
        trials.append(d)?;
    }
    found.set_item("trials", trials)?;
    found.set_item("best_trial", tuned.best)?;
    found.set_item("params", params(py, &settings)?)?;
    found.set_item("flags", flags)?;
    found.set_item("nominal_seconds", tuned.nominal_seconds)?;
    report.set_item("autotune", found)?;
    Ok((NativeClassifier { model }, report))
}
