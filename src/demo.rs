//! The demo: the seed's experiment end to end. Train the Elman network on the built-in sample
//! ([`crate::data::sample`]), score it on the training and test sentences, and write the
//! metrics of every epoch (`metrics.csv`) and their chart (`curves.png`).

use std::path::PathBuf;
use std::time::Instant;

use crate::data::Dataset;
use crate::error::Result;
use crate::metrics::{EpochMetrics, Score};
use crate::rng::Rng;
use crate::rnn::{Architecture, CellKind, Init, Network};
use crate::train::{self, Event, INIT_STREAM, TrainConfig};

/// The demo's settings: the network's size and how to train it.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoConfig {
    /// Hidden units. Default 64.
    pub hidden: usize,
    /// Epochs, seed, learning rate and clipping (batch size 1: per-example SGD).
    pub train: TrainConfig,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            hidden: 64,
            train: TrainConfig::seed(),
        }
    }
}

/// What the demo did.
#[derive(Debug)]
pub struct DemoReport {
    pub dataset: Dataset,
    pub network: Network,
    pub history: Vec<EpochMetrics>,
    /// Scores of the trained network (a clean pass after training, not a running mean).
    pub train: Score,
    pub test: Score,
    /// Wall-clock seconds spent training.
    pub seconds: f64,
    /// The files written.
    pub files: Vec<PathBuf>,
}

/// Trains on the sample and scores the result, without writing anything.
///
/// # Errors
/// [`Error::Config`](crate::error::Error::Config) for settings out of range, [`Error::Diverged`](crate::error::Error::Diverged) if the loss blows up.
pub fn train_sample(
    config: &DemoConfig,
    on_event: impl FnMut(Event<'_>) + Send,
) -> Result<DemoReport> {
    let dataset = Dataset::sample();
    let mut rng = Rng::with_stream(config.train.seed, INIT_STREAM);
    let labels = dataset.labels.len();
    let arch = Architecture::new(CellKind::Rnn, dataset.vocab.len(), config.hidden, labels);
    let mut network = Network::new(&arch, Init::LikeRnn, &mut rng)?;
    let start = Instant::now();
    let data = train::Data {
        train: &dataset.train,
        valid: &[],
        test: &dataset.test,
        stop: None,
    };
    let history = train::train(&mut network, data, &config.train, on_event)?.history;
    let seconds = start.elapsed().as_secs_f64();
    let train = train::evaluate(&network, &dataset.train);
    let test = train::evaluate(&network, &dataset.test);
    Ok(DemoReport {
        dataset,
        network,
        history,
        train,
        test,
        seconds,
        files: Vec::new(),
    })
}

/// The whole demo: [`train_sample`], then `metrics.csv` and `curves.png` in `out` (created if
/// missing). Needs the `plot` feature.
///
/// # Errors
/// As [`train_sample`], and [`Error::Io`](crate::error::Error::Io) or
/// [`Error::Plot`](crate::error::Error::Plot) if the files cannot be written.
#[cfg(feature = "plot")]
pub fn run(
    config: &DemoConfig,
    out: &std::path::Path,
    on_event: impl FnMut(Event<'_>) + Send,
) -> Result<DemoReport> {
    use crate::error::Error;
    if config.train.epochs == 0 {
        return Err(Error::Config("the demo needs at least one epoch".into()));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut report = train_sample(config, on_event)?;
    let csv = out.join("metrics.csv");
    crate::metrics::write_csv(&report.history, &report.dataset.labels, &csv)?;
    let png = out.join("curves.png");
    let title = format!(
        "Elman RNN on the sample sentences: H = {}, lr = {}, seed {}",
        config.hidden, config.train.lr, config.train.seed
    );
    crate::plot::plot_curves(&report.history, &title, &png)?;
    report.files = vec![csv, png];
    Ok(report)
}
