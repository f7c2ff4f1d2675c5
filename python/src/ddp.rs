//! One rank of a data-parallel run (`python -m rnn.ddp` under torchrun): its shard of the data,
//! the model every rank builds alike, and the library's [`RankTrainer`]. The collectives are
//! Python's (PyTorch's `torch.distributed`): the constructor calls `gather(obj)` (every rank's
//! `obj`, in rank order) to agree on the data, and per batch Python all-reduces the buffer that
//! [`NativeRank::pack`] fills.

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict};

use rnn::data::files::{self, Columns, Format, ReadOptions, Row, Shard};
use rnn::data::vocab::TokenCount;
use rnn::data::{Example, TokenCounts, Tokens, Vocab};
use rnn::metrics::{Score, Tally};
use rnn::model::{Model, Task};
use rnn::model_file::{ContentsRef, Rest};
use rnn::recipe::ClassWeight;
use rnn::train::ranks::{Plan, RankTrainer};
use rnn::train::{self, Verdict};

use crate::errors::to_py;
use crate::options;
use crate::training::{metrics_into, report_dict};

/// Loss, correct predictions and examples, summed: what the ranks add up.
type Sums = (f64, usize, usize);

/// Everything a rank keeps.
struct Rank {
    trainer: RankTrainer,
    vocab: Vocab,
    tokens: Tokens,
    max_len: Option<usize>,
    task: Task,
    /// The shard's rows, by their place in it (row `rank + world · k` of the file is `k`).
    rows: Vec<Example>,
    /// The shard's validation rows: held out, or of a validation file.
    valid: Vec<Example>,
    /// The shard's rows of a test file (only reported).
    test: Vec<Example>,
    validation_file: bool,
    plan: Plan,
    rank: usize,
    world: usize,
    /// Examples a batch, over every rank.
    batch: usize,
    shuffle: bool,
    /// The current epoch's batches, as row numbers of the file.
    batches: Vec<Vec<usize>>,
}

impl Rank {
    /// The model file's contents with `params`.
    fn contents<'a>(&'a self, params: &'a [f32]) -> ContentsRef<'a> {
        let rest = Rest {
            vocab: &self.vocab,
            tokens: self.tokens,
            max_len: self.max_len,
            task: &self.task,
        };
        rest.around(self.trainer.network(), params)
    }

    /// The best epoch's weights so far, or the current ones.
    fn best_params(&self) -> &[f32] {
        let best = &self.trainer.state().best_params;
        if best.is_empty() {
            self.trainer.network().params()
        } else {
            best
        }
    }
}

/// One rank of a data-parallel classifier run.
#[pyclass(module = "rnn._rnn", name = "NativeRank", frozen)]
pub struct NativeRank {
    inner: Mutex<Option<Rank>>,
}

/// How a rank reads a data file: the columns, format and row limit of `reading` (`text_col`,
/// `label_col`, `format`, `max_row_bytes`, each optional), and its shard.
fn read_options(reading: &Bound<'_, PyDict>, rank: usize, world: usize) -> PyResult<ReadOptions> {
    let text = |key: &str, default: &str| -> PyResult<String> {
        match reading.get_item(key)? {
            Some(v) if !v.is_none() => v.extract(),
            _ => Ok(default.to_string()),
        }
    };
    let format = match reading.get_item("format")? {
        Some(f) if !f.is_none() => Some(
            f.extract::<String>()?
                .parse::<Format>()
                .map_err(PyValueError::new_err)?,
        ),
        _ => None,
    };
    let defaults = ReadOptions::default();
    let max_row_bytes = match reading.get_item("max_row_bytes")? {
        Some(v) if !v.is_none() => v.extract()?,
        _ => defaults.max_row_bytes,
    };
    Ok(ReadOptions {
        columns: Columns {
            text: text("text_col", "text")?,
            label: text("label_col", "label")?,
        },
        max_row_bytes,
        format,
        shard: Some(Shard {
            index: rank,
            count: world,
        }),
    })
}

/// A value of every rank, in rank order, from Python's `gather`.
fn gathered<'py, T>(gather: &Bound<'py, PyAny>, value: impl IntoPyObject<'py>) -> PyResult<Vec<T>>
where
    T: for<'a> FromPyObject<'a, 'py>,
{
    gather.call1((value,))?.extract()
}

/// Every rank's labels, gathered: the labels of every row of the file, sorted, once each.
fn every_label(gather: &Bound<'_, PyAny>, rows: &[Row]) -> PyResult<Vec<String>> {
    let mut mine: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
    mine.sort_unstable();
    mine.dedup();
    let mut names: Vec<String> = gathered::<Vec<String>>(gather, mine)?.concat();
    names.sort_unstable();
    names.dedup();
    Ok(names)
}

/// The plan of a run on `total` rows (see [`Plan`]): every row's label (by its index in
/// `names`, the run's labels sorted), gathered from every rank's shard (`rows`; row
/// `rank + world · k` of the file is shard `rank`'s `k`-th), so that the rows held out are the
/// ones `rnn train` holds out of the whole file. Each rank holds 4 bytes a row for it, once.
fn plan(
    gather: &Bound<'_, PyAny>,
    rows: &[Row],
    names: &[String],
    (total, world): (usize, usize),
    valid_fraction: f64,
    seed: u64,
) -> PyResult<Plan> {
    let index = |label: &str| {
        names
            .binary_search_by(|n| n.as_str().cmp(label))
            .unwrap_or(0)
    };
    let mine: Vec<u32> = rows.iter().map(|r| index(&r.label) as u32).collect();
    let shards: Vec<Vec<u32>> = gathered(gather, mine)?;
    let every: Option<Vec<u32>> = (0..total)
        .map(|g| shards.get(g % world)?.get(g / world).copied())
        .collect();
    let every = every.ok_or_else(|| {
        PyRuntimeError::new_err(format!(
            "the ranks' shards do not make {total} rows of {world} shards"
        ))
    })?;
    // indices into the sorted names sort as the names: the same draw as rnn train's
    Ok(Plan::new(&every, valid_fraction, seed))
}

/// The vocabulary every rank builds alike: every rank's counts of its training rows (row
/// `rank + world · k` of the file is shard `rank`'s `k`-th, `rows[k]`), gathered and merged as
/// one process would count the whole file's.
fn agreed_vocab(
    gather: &Bound<'_, PyAny>,
    rows: &[Row],
    plan: &Plan,
    (rank, world): (usize, usize),
    config: &rnn::model::ModelConfig,
) -> PyResult<Vocab> {
    let row_of = |k: usize| rank + world * k;
    let counts = TokenCounts::of(
        rows.iter()
            .enumerate()
            .filter(|(k, _)| !plan.held(row_of(*k)))
            .map(|(k, r)| (row_of(k) as u64, r.text.as_str())),
        config.tokens,
        config.max_len,
    );
    let mine: Vec<(String, usize, u64)> = counts
        .entries
        .into_iter()
        .map(|e| (e.token, e.count, e.first))
        .collect();
    let parts: Vec<Vec<(String, usize, u64)>> = gathered(gather, mine)?;
    let merged = TokenCounts::merge(parts.into_iter().map(|p| {
        TokenCounts {
            entries: p
                .into_iter()
                .map(|(token, count, first)| TokenCount {
                    token,
                    count,
                    first,
                })
                .collect(),
        }
    }));
    Ok(Vocab::from_counts(
        &merged,
        config.min_count,
        config.max_vocab,
    ))
}

/// Every class's training rows over every rank (`examples` is shard `rank`'s, as in
/// [`agreed_vocab`]), for the weights one process would give the classes.
fn class_counts(
    gather: &Bound<'_, PyAny>,
    examples: &[Example],
    plan: &Plan,
    (rank, world): (usize, usize),
    classes: usize,
) -> PyResult<Vec<usize>> {
    let mut counts = vec![0usize; classes];
    for (k, e) in examples.iter().enumerate() {
        if !plan.held(rank + world * k) {
            counts[e.label as usize] += 1;
        }
    }
    let all: Vec<Vec<usize>> = gathered(gather, counts)?;
    Ok((0..classes)
        .map(|c| all.iter().map(|v| v[c]).sum())
        .collect())
}

impl NativeRank {
    fn with<T>(&self, f: impl FnOnce(&mut Rank) -> PyResult<T>) -> PyResult<T> {
        let mut guard = self.inner.lock().expect("one caller at a time");
        match guard.as_mut() {
            Some(rank) => f(rank),
            None => Err(PyRuntimeError::new_err("the run has finished")),
        }
    }
}

impl NativeRank {
    /// A rank of the run that `checkpoint` holds (see [`NativeRank::new`]).
    #[allow(clippy::too_many_arguments)]
    fn resumed(
        py: Python<'_>,
        checkpoint: &std::path::Path,
        path: &std::path::Path,
        gather: &Bound<'_, PyAny>,
        rows: Vec<Row>,
        scored: Scored,
        total: usize,
        rank: usize,
        world: usize,
        recipe: &rnn::recipe::Recipe,
    ) -> PyResult<Self> {
        let ckpt = py
            .detach(|| rnn::checkpoint::load(checkpoint))
            .map_err(to_py)?;
        let notes: RunNotes = serde_json::from_value(ckpt.notes.clone()).map_err(|_| {
            PyValueError::new_err(format!(
                "{}: not a checkpoint of python -m rnn.ddp",
                checkpoint.display()
            ))
        })?;
        rnn::checkpoint::check_validation_file(
            notes.validation_file,
            scored.valid.is_some(),
            "data",
        )
        .map_err(|e| PyValueError::new_err(format!("{}: {e}", checkpoint.display())))?;
        if notes.world != world || notes.rows != total {
            return Err(PyValueError::new_err(format!(
                "{}: the run had {} ranks and {} rows; this one has {world} and {total}: resume \
                 it with as many ranks on the same data",
                checkpoint.display(),
                notes.world,
                notes.rows
            )));
        }
        let model = ckpt.model;
        let plan = plan(
            gather,
            &rows,
            model.labels(),
            (total, world),
            notes.valid_fraction,
            ckpt.config.seed,
        )?;
        let examples = model.examples(&rows, path).map_err(to_py)?;
        let config = rnn::train::TrainConfig {
            epochs: recipe.epochs,
            ..ckpt.config
        };
        Rank::build(
            model,
            examples,
            scored,
            plan,
            rank,
            world,
            config,
            Some(ckpt.state),
        )
    }
}

/// The shards of the files a rank only scores, as read: a validation file's and a test file's.
struct Scored {
    valid: Option<(PathBuf, Vec<Row>)>,
    test: Option<(PathBuf, Vec<Row>)>,
}

/// What a checkpoint of `rnn.ddp` keeps beside the run's state.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunNotes {
    world: usize,
    rows: usize,
    valid_fraction: f64,
    validation_file: bool,
}

impl Rank {
    /// A rank with `model` and the shard's `examples` (row `rank + world · k` of the file is
    /// `examples[k]`), scoring its shards of the `scored` files (without a validation file, its
    /// held-out rows), training by `plan` and `config`, from `state` when resumed.
    #[allow(clippy::too_many_arguments)]
    fn build(
        model: Model,
        examples: Vec<Example>,
        scored: Scored,
        plan: Plan,
        rank: usize,
        world: usize,
        config: rnn::train::TrainConfig,
        state: Option<rnn::train::RunState>,
    ) -> PyResult<NativeRank> {
        let encode = |file: Option<(PathBuf, Vec<Row>)>| match file {
            Some((path, rows)) => model.examples(&rows, &path).map(Some).map_err(to_py),
            None => Ok(None),
        };
        let (valid, test) = (encode(scored.valid)?, encode(scored.test)?);
        let valid_file = valid.is_some();
        let valid: Vec<Example> = valid.unwrap_or_else(|| {
            examples
                .iter()
                .enumerate()
                .filter(|(k, _)| plan.held(rank + world * k))
                .map(|(_, e)| e.clone())
                .collect()
        });
        let (batch, shuffle) = (config.batch, config.shuffle);
        let Model {
            network,
            vocab,
            tokens,
            max_len,
            task,
        } = model;
        let trainer = RankTrainer::new(network, config, rank, state).map_err(to_py)?;
        Ok(NativeRank {
            inner: Mutex::new(Some(Rank {
                trainer,
                vocab,
                tokens,
                max_len,
                task,
                rows: examples,
                validation_file: valid_file,
                valid,
                test: test.unwrap_or_default(),
                plan,
                rank,
                world,
                batch,
                shuffle,
                batches: Vec::new(),
            })),
        })
    }
}

#[pymethods]
impl NativeRank {
    /// Reads shard `rank` of `world` of the data file at `path` and builds the model every
    /// rank builds alike: the rows counted, the vocabulary and labels agreed through `gather`.
    /// Every rank scores its shard of `valid` (else its held-out rows) and of `test`.
    ///
    /// With `resume`, the run continues from that checkpoint (written by
    /// [`NativeRank::save_checkpoint`] of a run with as many ranks, on the same data): its
    /// model, settings and state, but for `epochs`.
    #[new]
    #[pyo3(signature = (path, rank, world, options, reading, gather, resume=None, valid=None, test=None))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments
    fn new(
        py: Python<'_>,
        path: PathBuf,
        rank: usize,
        world: usize,
        options: &Bound<'_, PyDict>,
        reading: &Bound<'_, PyDict>,
        gather: &Bound<'_, PyAny>,
        resume: Option<PathBuf>,
        valid: Option<PathBuf>,
        test: Option<PathBuf>,
    ) -> PyResult<Self> {
        if world == 0 || rank >= world {
            return Err(PyValueError::new_err(format!(
                "rank {rank} of a world of {world}"
            )));
        }
        let recipe = options::recipe(options)?;
        let read = read_options(reading, rank, world)?;
        let columns = read.columns.clone();
        let rows = py
            .detach(|| files::read_rows(&path, &read))
            .map_err(to_py)?;
        let read_shard = |path: Option<PathBuf>| -> PyResult<Option<(PathBuf, Vec<Row>)>> {
            match path {
                Some(p) => {
                    let rows = py.detach(|| files::read_rows(&p, &read)).map_err(to_py)?;
                    Ok(Some((p, rows)))
                }
                None => Ok(None),
            }
        };
        let scored = Scored {
            valid: read_shard(valid)?,
            test: read_shard(test)?,
        };
        let total: usize = gathered::<usize>(gather, rows.len())?.into_iter().sum();
        if let Some(checkpoint) = resume {
            return Self::resumed(
                py,
                &checkpoint,
                &path,
                gather,
                rows,
                scored,
                total,
                rank,
                world,
                &recipe,
            );
        }
        let valid_fraction = if scored.valid.is_some() {
            0.0
        } else {
            recipe.valid_fraction(total)
        };
        // the labels of every row, held out or not
        let labels = every_label(gather, &rows)?;
        let plan = plan(
            gather,
            &rows,
            &labels,
            (total, world),
            valid_fraction,
            recipe.model.seed,
        )?;
        let vocab = agreed_vocab(gather, &rows, &plan, (rank, world), &recipe.model)?;
        let mut model = Model::for_vocab(vocab, labels, &recipe.model).map_err(to_py)?;
        // the columns read, which `rnn eval` of this model reads by default
        if let Task::Classifier { columns: kept, .. } = &mut model.task {
            *kept = columns;
        }
        let examples = model.examples(&rows, &path).map_err(to_py)?;
        drop(rows);
        let training = plan.training_rows().len();
        let classes = model.labels().len();
        let mut config = recipe.train_config(&[], classes);
        config.batch = recipe
            .batch
            .unwrap_or_else(|| train::default_batch(training));
        if recipe.class_weight == ClassWeight::Balanced {
            let n = class_counts(gather, &examples, &plan, (rank, world), classes)?;
            config.class_weights = Some(train::balanced_weights(&n));
        }
        Rank::build(model, examples, scored, plan, rank, world, config, None)
    }

    /// What the run is: rows, held-out rows, batch size, epochs done, the network.
    fn describe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with(|r| {
            let d = PyDict::new(py);
            d.set_item("rows", r.plan.rows)?;
            d.set_item("training_rows", r.plan.training_rows().len())?;
            d.set_item("valid_fraction", r.plan.valid_fraction)?;
            d.set_item("batch", r.batch)?;
            d.set_item("epoch", r.trainer.epoch())?;
            d.set_item("vocab", r.vocab.len())?;
            d.set_item("labels", r.task.labels())?;
            d.set_item("architecture", r.trainer.network().arch().to_string())?;
            d.set_item("parameters", r.trainer.network().params().len())?;
            Ok(d)
        })
    }

    /// Starts the next epoch; returns its number of batches (the same on every rank).
    fn begin_epoch(&self) -> PyResult<usize> {
        self.with(|r| {
            r.batches = r.plan.batches(r.trainer.epoch() + 1, r.batch, r.shuffle);
            Ok(r.batches.len())
        })
    }

    /// Forward and backward over this rank's rows of batch `step`; returns this part's loss
    /// sum and the batch's size over every rank.
    fn backward(&self, py: Python<'_>, step: usize) -> PyResult<(f64, usize)> {
        self.with(|r| {
            let batch = r.batches.get(step).ok_or_else(|| {
                PyValueError::new_err(format!("the epoch has {} batches", r.batches.len()))
            })?;
            let (rank, world) = (r.rank, r.world);
            let mine: Vec<&Example> = batch
                .iter()
                .filter(|&&g| g % world == rank)
                .map(|&g| &r.rows[g / world])
                .collect();
            let size = batch.len();
            let trainer = &mut r.trainer;
            let t = py.detach(|| trainer.backward(&mine, size));
            Ok((t.loss_sum, size))
        })
    }

    /// The ids of this rank's gradient entries, sorted: its tokens, then `V + b` for its
    /// n-gram buckets `b`.
    fn tokens(&self) -> PyResult<Vec<u32>> {
        self.with(|r| Ok(r.trainer.tokens()))
    }

    /// Floats of the packed gradient for the ranks' `union` of entry ids.
    fn packed_len(&self, union: Vec<u32>) -> PyResult<usize> {
        self.with(|r| Ok(r.trainer.packed_len(&union)))
    }

    /// The number of entry ids: the tokens of the vocabulary, and the n-gram buckets.
    fn id_space(&self) -> PyResult<usize> {
        self.with(|r| Ok(r.trainer.id_space()))
    }

    /// Floats of the dense gradient.
    fn dense_len(&self) -> PyResult<usize> {
        self.with(|r| Ok(r.trainer.dense_len()))
    }

    /// Writes the gradient for the ranks' `union` of tokens into the first floats of `buffer`
    /// (little-endian f32) and clears it.
    fn pack(&self, union: Vec<u32>, buffer: &Bound<'_, PyByteArray>) -> PyResult<()> {
        self.with(|r| {
            let n = r.trainer.packed_len(&union);
            // SAFETY: the GIL is held and no Python code runs until the slice is dropped.
            r.trainer.pack(&union, unsafe { floats(buffer, n)? });
            Ok(())
        })
    }

    /// Writes the gradient in the dense layout into the first floats of `buffer`.
    fn pack_dense(&self, buffer: &Bound<'_, PyByteArray>) -> PyResult<()> {
        self.with(|r| {
            let n = r.trainer.dense_len();
            // SAFETY: as in `pack`.
            r.trainer.pack_dense(unsafe { floats(buffer, n)? });
            Ok(())
        })
    }

    /// Updates the weights from the summed packed gradient in `buffer`; `loss` is the batch's
    /// mean loss over every rank. (The GIL stays held: the update reads the buffer in place.)
    fn step(&self, union: Vec<u32>, buffer: &Bound<'_, PyByteArray>, loss: f32) -> PyResult<()> {
        self.with(|r| {
            let n = r.trainer.packed_len(&union);
            // SAFETY: as in `pack`.
            let summed = unsafe { floats(buffer, n)? };
            r.trainer.step(&union, summed, loss).map_err(to_py)
        })
    }

    /// Updates the weights from the summed dense gradient in `buffer`.
    fn step_dense(&self, buffer: &Bound<'_, PyByteArray>, loss: f32) -> PyResult<()> {
        self.with(|r| {
            let n = r.trainer.dense_len();
            // SAFETY: as in `pack`.
            let summed = unsafe { floats(buffer, n)? };
            r.trainer.step_dense(summed, loss).map_err(to_py)
        })
    }

    /// This rank's sums over the epoch so far, over its validation rows and over its test rows:
    /// (loss, correct, count) three times.
    fn tallies(&self, py: Python<'_>) -> PyResult<(Sums, Sums, Sums)> {
        self.with(|r| {
            let t = r.trainer.epoch_tally();
            // (a `&mut`: the trainer may move to another thread, not be shared with one)
            let (trainer, valid, test) = (&mut r.trainer, &r.valid, &r.test);
            let (v, e) = py.detach(move || (trainer.evaluate(valid), trainer.evaluate(test)));
            let sums = |t: Tally| (t.loss_sum, t.correct, t.count);
            Ok((sums(t), sums(v), sums(e)))
        })
    }

    /// Ends the epoch with the sums of every rank: "best", "continue" or "stop".
    fn end_epoch(&self, train: Sums, valid: Sums, test: Sums) -> PyResult<&'static str> {
        self.with(|r| {
            let score = |(loss_sum, correct, count): Sums| {
                let mut t = Tally::default();
                t.add(loss_sum, correct, count);
                t.score()
            };
            let valid: Option<Score> = (valid.2 > 0).then(|| score(valid));
            let test: Option<Score> = (test.2 > 0).then(|| score(test));
            Ok(match r.trainer.end_epoch(score(train), valid, test) {
                Verdict::Best => "best",
                Verdict::Continue => "continue",
                Verdict::Stop => "stop",
            })
        })
    }

    /// The metrics of the last epoch, as a callback receives them.
    fn last_epoch<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.with(|r| {
            let d = PyDict::new(py);
            if let Some(m) = r.trainer.state().history.last() {
                metrics_into(&d, m)?;
            }
            Ok(d)
        })
    }

    /// Writes the model file: the best epoch's weights so far (or the current ones). Missing
    /// folders are created, as `rnn train` creates them (the checkpoint goes beside the model).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        self.with(|r| {
            let contents = r.contents(r.best_params());
            py.detach(|| {
                rnn::fsutil::create_parent(&path)?;
                rnn::model_file::save(contents, &path)
            })
            .map_err(to_py)
        })
    }

    /// Writes a checkpoint of the run as it is at the end of an epoch, for `resume`.
    fn save_checkpoint(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        self.with(|r| {
            let notes = serde_json::to_value(RunNotes {
                world: r.world,
                rows: r.plan.rows,
                valid_fraction: r.plan.valid_fraction,
                validation_file: r.validation_file,
            })
            .expect("plain data");
            let current = r.contents(r.trainer.network().params());
            let (config, state) = (r.trainer.config(), r.trainer.state());
            py.detach(|| rnn::checkpoint::save(&path, current, config, state, &notes))
                .map_err(to_py)
        })
    }

    /// Ends the run: the network takes the best epoch's weights; returns the report.
    fn finish<'py>(
        &self,
        py: Python<'py>,
        stopped_early: bool,
        interrupted: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let rank = self
            .inner
            .lock()
            .expect("one caller at a time")
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("the run has finished"))?;
        let labels = rank.task.labels().to_vec();
        let (_, report) = rank.trainer.finish(stopped_early, interrupted);
        report_dict(py, &report, &labels, false)
    }
}

/// The first `n` floats of `buffer` (a bytearray that Python all-reduces as a float32 tensor),
/// in place: the gradient is packed straight into the memory the all-reduce sends.
///
/// # Safety
/// The caller holds the GIL for as long as it uses the slice, and runs no Python code
/// meanwhile, so that the bytearray is neither resized nor freed nor read.
#[allow(clippy::mut_from_ref)] // the bytearray's memory, not the handle's
unsafe fn floats<'a>(buffer: &'a Bound<'_, PyByteArray>, n: usize) -> PyResult<&'a mut [f32]> {
    if !cfg!(target_endian = "little") {
        return Err(PyRuntimeError::new_err(
            "a data-parallel run needs a little-endian machine",
        ));
    }
    if buffer.len() < n * 4 {
        return Err(PyValueError::new_err(format!(
            "the buffer holds {} bytes; the gradient needs {}",
            buffer.len(),
            n * 4
        )));
    }
    // SAFETY: the caller's promise; f32 has no invalid bit patterns.
    let (before, floats, _) = unsafe { buffer.as_bytes_mut().align_to_mut::<f32>() };
    if !before.is_empty() {
        return Err(PyValueError::new_err(
            "the buffer is not aligned for float32",
        ));
    }
    Ok(&mut floats[..n])
}
