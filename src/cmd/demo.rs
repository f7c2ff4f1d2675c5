//! `rnn demo`: the seed's experiment. Trains on the built-in sentences, prints a summary, and
//! writes `metrics.csv` and `curves.png`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use rnn::demo::{self, DemoConfig};
use rnn::rnn::Workspace;
use rnn::train::TrainConfig;

use super::progress::Progress;
use super::{at_least_one, json_number, positive_number, write_scores};

/// Train the seed model on the built-in sample sentences and chart its learning.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Passes over the training sentences.
    #[arg(long, default_value_t = 1000, value_parser = at_least_one)]
    epochs: usize,
    /// Seed of the initial weights and of the shuffling.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    seed: u64,
    /// Hidden units (H).
    #[arg(long, default_value_t = 64, value_parser = at_least_one)]
    hidden: usize,
    /// Learning rate of the SGD update after every sentence.
    #[arg(long, default_value_t = 0.02, value_parser = positive_number, allow_negative_numbers = true)]
    lr: f32,
    /// Gradients are clipped element-wise to [-clip, clip].
    #[arg(long, default_value_t = 1.0, value_parser = positive_number, allow_negative_numbers = true)]
    clip: f32,
    /// Folder for metrics.csv and curves.png (created if missing).
    #[arg(long, default_value = "runs/demo")]
    out: PathBuf,
    /// Print one JSON object with the results as the last line.
    #[arg(long)]
    json: bool,
}

impl Default for DemoArgs {
    fn default() -> Self {
        use clap::FromArgMatches;
        let matches = <Self as clap::Args>::augment_args(clap::Command::new("demo"))
            .get_matches_from(["demo"]);
        Self::from_arg_matches(&matches).expect("the defaults parse")
    }
}

/// A few test sentences whose predictions the summary shows.
const SHOWCASE: [usize; 4] = [0, 14, 15, 17];

pub fn run(args: DemoArgs) -> Result<()> {
    let config = DemoConfig {
        hidden: args.hidden,
        train: TrainConfig {
            epochs: args.epochs,
            lr: args.lr,
            clip: args.clip,
            seed: args.seed,
            ..TrainConfig::seed()
        },
    };
    let examples = rnn::data::sample::TRAIN.len();
    let mut progress = Progress::new(args.epochs, examples, false);
    let result = demo::run(&config, &args.out, |e| progress.on_event(e));
    progress.finish();
    let report = result?;

    let mut out = std::io::stdout().lock();
    let net = &report.network;
    writeln!(
        out,
        "Trained an Elman RNN (V = {} words, H = {}, C = {} classes) on {} sentences for {} epochs in {:.2} s.",
        net.vocab(),
        net.hidden(),
        net.classes(),
        report.dataset.train.len(),
        args.epochs,
        report.seconds
    )?;
    write_scores(&mut out, &[("train", report.train), ("test", report.test)])?;
    writeln!(
        out,
        "Some test sentences, and the probability the network gives each class:"
    )?;
    let mut ws = Workspace::default();
    for i in SHOWCASE {
        let (text, label) = rnn::data::sample::TEST[i];
        let example = &report.dataset.test[i];
        let probs = &net.predict(&[&example.tokens], &mut ws)[0];
        let best = rnn::rnn::argmax(probs);
        let mark = if best == example.label as usize {
            "right"
        } else {
            "WRONG"
        };
        let name = &report.dataset.labels[best];
        writeln!(
            out,
            "  {text:<48} {name} {:.3} ({mark}; expected {label})",
            probs[best]
        )?;
    }
    for file in &report.files {
        writeln!(out, "Wrote {}", file.display())?;
    }
    if args.json {
        let summary = json!({
            "epochs": args.epochs,
            "seconds": report.seconds,
            "train_loss": json_number(report.train.loss),
            "train_acc": json_number(report.train.accuracy),
            "test_loss": json_number(report.test.loss),
            "test_acc": json_number(report.test.accuracy),
            "seed": args.seed,
            "hidden": args.hidden,
            "lr": json_number(args.lr),
            "clip": json_number(args.clip),
        });
        writeln!(out, "{summary}")?;
    }
    Ok(())
}
