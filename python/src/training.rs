//! Training from Python: the run on a thread of its own, its events carried to the calling
//! thread, which runs the caller's callback and watches for Ctrl-C; and the helpers that move
//! model files through bytes.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use rnn::checkpoint::RunFiles;
use rnn::data::files::Columns;
use rnn::data::files::Row;
use rnn::error::{Error, Result};
use rnn::metrics::EpochMetrics;
use rnn::recipe::{self, DataNotes, Rows, Start};
use rnn::train::{Event, TrainReport};

use crate::NativeClassifier;
use crate::errors::to_py;
use crate::options;

/// How often the calling thread looks for Ctrl-C while it waits, and the least time between
/// two progress events within an epoch.
const TICK: Duration = Duration::from_millis(100);

/// What the training thread tells the calling thread.
pub enum Message {
    Step {
        epoch: usize,
        done: usize,
        total: usize,
    },
    Epoch(EpochMetrics),
    Warning(String),
    /// A trial of `autotune` ended.
    Trial(crate::tuning::TrialRecord),
}

impl Message {
    /// The message as the callback receives it: a dict whose "event" is "step", "epoch" or
    /// "warning".
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        match self {
            Message::Step { epoch, done, total } => {
                d.set_item("event", "step")?;
                d.set_item("epoch", epoch)?;
                d.set_item("done", done)?;
                d.set_item("total", total)?;
            }
            Message::Epoch(m) => {
                d.set_item("event", "epoch")?;
                metrics_into(&d, m)?;
            }
            Message::Warning(text) => {
                d.set_item("event", "warning")?;
                d.set_item("message", text)?;
            }
            Message::Trial(trial) => {
                d.set_item("event", "trial")?;
                trial.write_into(&d)?;
            }
        }
        Ok(d)
    }
}

/// An epoch's metrics into `d`: epoch, train_loss, train_accuracy, valid_loss,
/// valid_accuracy (None without a validation set), test_loss and test_accuracy (with a test
/// set), lr.
pub fn metrics_into(d: &Bound<'_, PyDict>, m: &EpochMetrics) -> PyResult<()> {
    d.set_item("epoch", m.epoch)?;
    d.set_item("train_loss", m.train.loss)?;
    d.set_item("train_accuracy", m.train.accuracy)?;
    d.set_item("valid_loss", m.valid.map(|s| s.loss))?;
    d.set_item("valid_accuracy", m.valid.map(|s| s.accuracy))?;
    if let Some(test) = m.test {
        d.set_item("test_loss", test.loss)?;
        d.set_item("test_accuracy", test.accuracy)?;
    }
    d.set_item("lr", m.lr)?;
    Ok(())
}

/// The training thread's end of the channels: messages out, and after each epoch's message
/// the calling thread's word that it has heard it (so that a callback that stops the run at
/// the end of an epoch stops it there).
pub struct Link {
    pub messages: mpsc::Sender<Message>,
    pub heard: mpsc::Receiver<()>,
}

/// The event handler of a training thread: steps at most every [`TICK`], every epoch and
/// warning, sent to the calling thread; at an epoch's end it waits until the calling thread
/// has handled it.
pub fn sender(link: Link, labels: Vec<String>) -> impl FnMut(Event<'_>) + Send {
    let mut last_step = Instant::now();
    let Link {
        messages: tx,
        heard,
    } = link;
    move |event| {
        let epoch = matches!(event, Event::Epoch { .. });
        let message = match event {
            Event::Step { epoch, done, total } => {
                if last_step.elapsed() < TICK && done < total {
                    return;
                }
                last_step = Instant::now();
                Message::Step { epoch, done, total }
            }
            Event::Epoch { metrics, .. } => Message::Epoch(metrics.clone()),
            Event::Warning(w) => Message::Warning(w.describe(&labels)),
            // the stop came from this side (a Ctrl-C or the callback), which knows
            Event::Interrupted { .. } => return,
        };
        // the calling thread stops listening only once training has ended
        if tx.send(message).is_ok() && epoch {
            let _ = heard.recv();
        }
    }
}

/// How a run ended, as the calling thread saw it.
pub struct Outcome<T> {
    /// What training returned.
    pub result: Result<T>,
    /// Whether the callback stopped it by returning False.
    pub stopped_by_callback: bool,
    /// Whether a Ctrl-C stopped it.
    pub keyboard_interrupt: bool,
}

/// Runs `train` on a thread of its own, handing it the stop flag and a channel for its
/// messages; meanwhile the calling thread, without the GIL, waits for the messages, passes
/// each to `callback` (with the GIL), and looks for Ctrl-C every [`TICK`]. A Ctrl-C, or a
/// callback that returns `False`, stops the run after its current batch; a callback that
/// raises stops it too, and the exception is the result.
pub fn run<T: Send>(
    py: Python<'_>,
    callback: Option<&Bound<'_, PyAny>>,
    train: impl FnOnce(&AtomicBool, Link) -> Result<T> + Send,
) -> PyResult<Outcome<T>> {
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    let rx = Mutex::new(rx);
    let (heard, heard_rx) = mpsc::channel();
    let link = Link {
        messages: tx,
        heard: heard_rx,
    };
    let mut failure: Option<PyErr> = None;
    let mut stopped_by_callback = false;
    let joined = std::thread::scope(|scope| {
        let stop = &stop;
        let worker = scope.spawn(move || train(stop, link));
        loop {
            let received = py.detach(|| {
                rx.lock()
                    .expect("only this thread receives")
                    .recv_timeout(TICK)
            });
            match received {
                Ok(message) => {
                    let epoch = matches!(message, Message::Epoch(_));
                    if let (Some(cb), None) = (callback, &failure) {
                        let called = message.to_dict(py).and_then(|d| cb.call1((d,)));
                        match called {
                            Ok(answer)
                                if answer.is_instance_of::<pyo3::types::PyBool>()
                                    && !answer.is_truthy().unwrap_or(true) =>
                            {
                                stopped_by_callback = true;
                                stop.store(true, Ordering::Relaxed);
                            }
                            Ok(_) => {}
                            Err(e) => {
                                stop.store(true, Ordering::Relaxed);
                                failure = Some(e);
                            }
                        }
                    }
                    if epoch {
                        let _ = heard.send(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if failure.is_none()
                && let Err(e) = py.check_signals()
            {
                stop.store(true, Ordering::Relaxed);
                failure = Some(e);
            }
        }
        worker.join()
    });
    let result = joined.map_err(|_| {
        PyRuntimeError::new_err("training stopped on an internal error (a panic); please report it")
    })?;
    match failure {
        Some(e) if e.is_instance_of::<PyKeyboardInterrupt>(py) => Ok(Outcome {
            result,
            stopped_by_callback,
            keyboard_interrupt: true,
        }),
        Some(e) => Err(e),
        None => Ok(Outcome {
            result,
            stopped_by_callback,
            keyboard_interrupt: false,
        }),
    }
}

/// The report of a run as a dict: history (a list of every epoch's metrics), best_epoch,
/// stopped_early, interrupted (by a Ctrl-C or the callback), keyboard_interrupt,
/// train_seconds, train_tokens, tokens_per_second, warnings.
pub fn report_dict<'py>(
    py: Python<'py>,
    report: &TrainReport,
    labels: &[String],
    keyboard_interrupt: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let history = PyList::empty(py);
    for m in &report.history {
        let e = PyDict::new(py);
        metrics_into(&e, m)?;
        history.append(e)?;
    }
    d.set_item("history", history)?;
    d.set_item("best_epoch", report.best_epoch)?;
    d.set_item("stopped_early", report.stopped_early)?;
    d.set_item("interrupted", report.interrupted)?;
    d.set_item("keyboard_interrupt", keyboard_interrupt)?;
    d.set_item("train_seconds", report.train_seconds)?;
    d.set_item("train_tokens", report.train_tokens)?;
    d.set_item("tokens_per_second", report.tokens_per_second())?;
    let warnings: Vec<String> = report.warnings.iter().map(|w| w.describe(labels)).collect();
    d.set_item("warnings", warnings)?;
    Ok(d)
}

/// Labelled rows from parallel lists, numbered from 1 as lines are; labels lose surrounding
/// white space, as a file's do.
pub fn rows(what: &str, texts: Vec<String>, labels: Vec<String>) -> PyResult<Vec<Row>> {
    if texts.len() != labels.len() {
        return Err(PyValueError::new_err(format!(
            "{what}: {} texts and {} labels; every text needs its label",
            texts.len(),
            labels.len()
        )));
    }
    texts
        .into_iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (text, label))| {
            let label = label.trim().to_string();
            if label.is_empty() {
                return Err(PyValueError::new_err(format!(
                    "{what}: the label of row {} is empty",
                    i + 1
                )));
            }
            Ok(Row {
                line: i + 1,
                text,
                label,
            })
        })
        .collect()
}

/// Where a run from Python writes as it goes: its checkpoint alone (the model stays in
/// memory), kept at the end so that the run can be continued.
pub fn checkpoint_files(checkpoint: Option<PathBuf>) -> Option<RunFiles> {
    checkpoint.map(|checkpoint| RunFiles {
        model: None,
        checkpoint,
        keep_checkpoint: true,
    })
}

/// Trains a classifier on `texts` and `labels` as `rnn train` would on a file of these rows
/// with the same options: validation rows held out of them unless `valid_texts` and
/// `valid_labels` are given. With `checkpoint`, the run's checkpoint is written there as it
/// goes (as `rnn train` writes MODEL.ckpt); with `resume`, the run of that checkpoint goes on,
/// with its own settings but `epochs` and `threads` (the same data must be given). Returns the
/// model, the run's report, and whether a Ctrl-C (or the callback) stopped it early.
#[pyfunction]
#[pyo3(signature = (texts, labels, valid_texts, valid_labels, options, callback=None, checkpoint=None, resume=None))]
#[allow(clippy::too_many_arguments)]
pub fn fit_classifier<'py>(
    py: Python<'py>,
    texts: Vec<String>,
    labels: Vec<String>,
    valid_texts: Option<Vec<String>>,
    valid_labels: Option<Vec<String>>,
    options: &Bound<'py, PyDict>,
    callback: Option<Bound<'py, PyAny>>,
    checkpoint: Option<PathBuf>,
    resume: Option<PathBuf>,
) -> PyResult<(NativeClassifier, Bound<'py, PyDict>)> {
    let recipe = options::recipe(options)?;
    let threads = options::threads_given(options)?;
    let (pretrained, freeze_embed) = options::embedding_start(options)?;
    let train_rows = rows("the training data", texts, labels)?;
    let valid_rows = match (valid_texts, valid_labels) {
        (Some(t), Some(l)) => Some(rows("the validation data", t, l)?),
        (None, None) => None,
        _ => {
            return Err(PyValueError::new_err(
                "the validation data needs both texts and labels",
            ));
        }
    };
    if let Some(seconds) = options::autotune(options)? {
        if checkpoint.is_some() || resume.is_some() {
            return Err(PyValueError::new_err(
                "autotune runs new trials: it takes no checkpoint and resumes none",
            ));
        }
        let search = rnn::autotune::Search {
            seconds,
            fixed: options::fixed_knobs(options)?,
        };
        let embedding = (pretrained, freeze_embed);
        let data = (train_rows, valid_rows);
        return crate::tuning::fit_tuned(py, &recipe, data, embedding, search, callback);
    }
    let mut prepared = py
        .detach(|| {
            let start = match resume {
                Some(path) => Start::Resume {
                    checkpoint: Box::new(rnn::checkpoint::load(&path)?),
                    epochs: recipe.epochs,
                    threads,
                },
                None => Start::New,
            };
            let given = DataNotes::new(&recipe, &Columns::default(), valid_rows.is_some());
            let notes = start.notes(given)?;
            let valid = valid_rows.map(Rows::in_memory);
            let train = Rows::in_memory(train_rows);
            let mut prepared = recipe::prepare_run(start, &recipe, notes, train, valid, None)?;
            prepared.start_embedding(pretrained.as_deref(), freeze_embed)?;
            Ok::<_, rnn::error::Error>(prepared)
        })
        .map_err(to_py)?;
    let labels = prepared.model.labels().to_vec();
    let files = checkpoint_files(checkpoint);
    let outcome = run(py, callback.as_ref(), |stop, link| {
        prepared.run(files, Some(stop), sender(link, labels.clone()))
    })?;
    let report = outcome.result.map_err(to_py)?;
    let model = prepared.model;
    let report = report_dict(py, &report, model.labels(), outcome.keyboard_interrupt)?;
    report.set_item("stopped_by_callback", outcome.stopped_by_callback)?;
    Ok((NativeClassifier { model }, report))
}

/// `f` run on a pool of `threads` threads (0: one per core), as the command line runs it.
pub fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> Result<T> {
    if threads > options::max_threads() {
        return Err(Error::Config(format!(
            "{threads} threads: at most {} (4 per core, or 16)",
            options::max_threads()
        )));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Config(format!("cannot start {threads} threads: {e}")))?;
    Ok(pool.install(f))
}
