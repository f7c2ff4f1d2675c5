//! Showing training as it goes: a progress bar with live metrics on a terminal, plain log
//! lines (about twenty a run) when the output goes to a file or a pipe.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use rnn::metrics::EpochMetrics;
use rnn::train::Event;

use super::percent;

/// Turns training events into a progress bar or log lines.
pub struct Progress {
    bar: Option<ProgressBar>,
    epochs: usize,
    examples: usize,
    log_every: usize,
    quiet: bool,
    /// Losses shown as bits a token too (a language model's).
    bits: bool,
}

impl Progress {
    /// A display for `epochs` epochs of `examples` examples each; nothing at all if `quiet`.
    pub fn new(epochs: usize, examples: usize, quiet: bool) -> Self {
        Self::counting(epochs, examples, "examples", quiet)
    }

    /// A display for a language model's `epochs` epochs of `tokens` predicted tokens each.
    pub fn for_text(epochs: usize, tokens: usize, quiet: bool) -> Self {
        Progress {
            bits: true,
            ..Self::counting(epochs, tokens, "tokens", quiet)
        }
    }

    fn counting(epochs: usize, examples: usize, unit: &'static str, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stdout().is_terminal()).then(|| {
            let total = (epochs * examples) as u64;
            let style =
                ProgressStyle::with_template("epoch {msg}\n{bar:40.cyan/blue} {rate}  ETA {eta}")
                    .expect("the template is valid")
                    .with_key(
                        "rate",
                        move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.0} {unit}/s", state.per_sec());
                        },
                    )
                    .progress_chars("=> ");
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
            bar.set_style(style);
            bar.set_message(format!("1/{epochs}"));
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress {
            bar,
            epochs,
            examples,
            log_every: epochs.div_ceil(20).max(1),
            quiet,
            bits: false,
        }
    }

    /// Runs `f` (which prints a line) with the bar out of the way.
    pub fn suspend(&self, f: impl FnOnce()) {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Shows one event.
    pub fn on_event(&mut self, event: Event<'_>) {
        match (event, &self.bar) {
            (Event::Step { epoch, done, .. }, Some(bar)) => {
                // an atomic store: the bar redraws itself on its own thread (steady tick)
                bar.set_position(((epoch - 1) * self.examples + done) as u64);
            }
            (Event::Epoch { metrics: m, .. }, Some(bar)) => bar.set_message(self.line(m)),
            (Event::Epoch { metrics: m, .. }, None)
                if !self.quiet && (m.epoch % self.log_every == 0 || m.epoch == self.epochs) =>
            {
                // a closed pipe is noticed (and reported quietly) when the summary is printed
                let _ = writeln!(std::io::stdout(), "epoch {}", self.line(m));
            }
            _ => {}
        }
    }

    /// Runs `train` with this display: it hears of every event, and warnings (named with
    /// `labels`) are printed above the bar; the bar is removed at the end. Returns what `train`
    /// returned and the seconds it took.
    pub fn show<T>(
        mut self,
        labels: &[String],
        train: impl FnOnce(&mut (dyn FnMut(Event<'_>) + Send)) -> T,
    ) -> (T, f64) {
        let started = Instant::now();
        let result = train(&mut |event| {
            if let Event::Warning(warning) = event {
                let text = warning.describe(labels);
                self.suspend(|| eprintln!("warning: {text}"));
            }
            self.on_event(event);
        });
        self.finish();
        (result, started.elapsed().as_secs_f64())
    }

    /// Removes the bar, so that what follows is printed on a clean line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn line(&self, m: &EpochMetrics) -> String {
        let width = self.epochs.to_string().len();
        let mut line = format!(
            "{:>width$}/{}  train loss {:.4} acc {:>6}",
            m.epoch,
            self.epochs,
            m.train.loss,
            percent(m.train.accuracy)
        );
        for (name, score) in [("valid", m.valid), ("test", m.test)] {
            if let Some(s) = score {
                line += &format!("  {name} loss {:.4} acc {:>6}", s.loss, percent(s.accuracy));
                if self.bits {
                    line += &format!(" ({:.3} bits a token)", rnn::lm::bits(s.loss));
                }
            }
        }
        line
    }
}
