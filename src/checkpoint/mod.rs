//! Checkpoints: a model file that also holds a training run's state, so that a stopped run
//! continues where it was and ends as the uninterrupted run would, to the bit.
//!
//! A checkpoint is a `.safetensors` file like any model file (PyTorch reads it; `rnn` loads it
//! as a model), with the run's state beside the model under names that start with
//! [`EXTRA_PREFIX`] (`train.`):
//!
//! | name | kind | holds |
//! | --- | --- | --- |
//! | the model's tensors | `f32` | the weights at the end of the checkpoint's epoch (not the best epoch's) |
//! | `train.order` | `u32` tensor | the order of the training examples |
//! | `train.best` | `f32` tensor | the best epoch's weights, laid out as the parameters (when there is one) |
//! | `train.optimizer.NAME` | `f32` tensor | the optimiser's buffers (Adam's `m` and `v`) |
//! | `train.config` | metadata, JSON | the [`TrainConfig`] |
//! | `train.state` | metadata, JSON | the epoch, the step, the shuffling stream's position, the best epoch and the monitor's counts, the history, the warnings |
//! | `train.notes` | metadata, JSON | what the caller keeps beside (the command line: its data settings and the data's [`fingerprint`]) |

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::metrics::EpochMetrics;
use crate::model::Model;
use crate::model_file::{self, ContentsRef, EXTRA_PREFIX, ExtrasRef};
use crate::optim::OptimizerState;
use crate::train::{Monitor, RunState, TrainConfig, Warning};

mod fingerprint;
mod lock;
mod saver;
pub use fingerprint::{check_same_data, fingerprint};
pub use lock::{RunLock, check_free, lock_path};
pub use saver::{RunFiles, Saver, check_validation_file, checkpoint_path, end, writing};

/// A checkpoint read back.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The model (of either kind), with the weights at the end of the checkpoint's epoch.
    pub model: Model,
    pub config: TrainConfig,
    pub state: RunState,
    /// What the caller kept beside (see [`save`]).
    pub notes: serde_json::Value,
}

impl Checkpoint {
    /// The checkpoint's model, and its run's settings and state to continue from: `epochs` as
    /// the new limit, and `threads` (when given) instead of the run's.
    pub fn continue_with(
        self,
        epochs: usize,
        threads: Option<usize>,
    ) -> (Model, TrainConfig, RunState) {
        let config = TrainConfig {
            epochs,
            threads: threads.unwrap_or(self.config.threads),
            ..self.config
        };
        (self.model, config, self.state)
    }
}

/// The scalars of a [`RunState`], as the metadata holds them.
#[derive(Serialize, Deserialize)]
struct StateMeta {
    epoch: usize,
    step: u64,
    /// A `u128` does not fit JSON's numbers: written as a decimal string.
    shuffle_position: String,
    optimizer_steps: u64,
    optimizer_buffers: Vec<String>,
    monitor: Monitor,
    history: Vec<EpochMetrics>,
    train_seconds: f64,
    train_tokens: usize,
    warnings: Vec<Warning>,
}

fn key(name: &str) -> String {
    format!("{EXTRA_PREFIX}{name}")
}

/// Writes a checkpoint of a run: `contents` with the network's weights at the end of the
/// epoch, the configuration, the run's state, and `notes` for the caller (atomically).
///
/// # Errors
/// [`Error::Io`] if the file cannot be written.
pub fn save(
    path: &Path,
    contents: ContentsRef<'_>,
    config: &TrainConfig,
    state: &RunState,
    notes: &serde_json::Value,
) -> Result<()> {
    let meta = StateMeta {
        epoch: state.epoch,
        step: state.step,
        shuffle_position: state.shuffle_position.to_string(),
        optimizer_steps: state.optimizer.steps,
        optimizer_buffers: state
            .optimizer
            .buffers
            .iter()
            .map(|(n, _)| n.clone())
            .collect(),
        monitor: state.monitor.clone(),
        history: state.history.clone(),
        train_seconds: state.train_seconds,
        train_tokens: state.train_tokens,
        warnings: state.warnings.clone(),
    };
    let mut extras = ExtrasRef {
        u32s: vec![(key("order"), &state.order[..])],
        meta: vec![
            (key("config"), to_json(config)),
            (key("state"), to_json(&meta)),
            (key("notes"), notes.to_string()),
        ],
        ..ExtrasRef::default()
    };
    if !state.best_params.is_empty() {
        extras.f32s.push((key("best"), &state.best_params[..]));
    }
    for (name, buffer) in &state.optimizer.buffers {
        extras
            .f32s
            .push((key(&format!("optimizer.{name}")), &buffer[..]));
    }
    model_file::save_with(contents, &extras, path)
}

/// Reads a checkpoint written by [`save`].
///
/// # Errors
/// As [`model_file::load`], and [`Error::Model`] if the file holds no run, or a broken one.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let (model, mut extras) = model_file::load_with(path)?;
    let err = |message: String| Error::model(path, message);
    let mut text = |name: &str| {
        extras.meta.remove(&key(name)).ok_or_else(|| {
            err(format!(
                "no {:?} in the metadata: a model file, not a checkpoint of a run",
                key(name)
            ))
        })
    };
    let (config, state, notes) = (text("config")?, text("state")?, text("notes")?);
    let parse = |what: &str, e: serde_json::Error| err(format!("metadata {}: {e}", key(what)));
    let config: TrainConfig = serde_json::from_str(&config).map_err(|e| parse("config", e))?;
    let meta: StateMeta = serde_json::from_str(&state).map_err(|e| parse("state", e))?;
    let notes: serde_json::Value = serde_json::from_str(&notes).map_err(|e| parse("notes", e))?;
    let shuffle_position = meta
        .shuffle_position
        .parse()
        .map_err(|_| err("metadata train.state: a bad shuffle_position".into()))?;
    let order = extras
        .u32s
        .remove(&key("order"))
        .ok_or_else(|| err("no tensor train.order".into()))?;
    let best_params = extras.f32s.remove(&key("best")).unwrap_or_default();
    let mut buffers = Vec::new();
    for name in meta.optimizer_buffers {
        let buffer = extras
            .f32s
            .remove(&key(&format!("optimizer.{name}")))
            .ok_or_else(|| err(format!("no tensor train.optimizer.{name}")))?;
        buffers.push((name, buffer));
    }
    let state = RunState {
        epoch: meta.epoch,
        step: meta.step,
        order,
        shuffle_position,
        optimizer: OptimizerState {
            steps: meta.optimizer_steps,
            buffers,
        },
        monitor: meta.monitor,
        best_params,
        history: meta.history,
        train_seconds: meta.train_seconds,
        train_tokens: meta.train_tokens,
        warnings: meta.warnings,
    };
    state
        .check()
        .map_err(|e| err(format!("metadata train.state: {e}")))?;
    config
        .validate()
        .map_err(|e| err(format!("metadata train.config: {e}")))?;
    Ok(Checkpoint {
        model,
        config,
        state,
        notes,
    })
}

/// Plain data as a JSON string.
fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}
