//! Watching a run from epoch to epoch: which epoch is the best so far, when to lower the
//! learning rate or stop, and what a user should be warned about.
//!
//! **The best epoch** is the one with the highest validation accuracy, and among equals the
//! lowest validation loss: accuracy is what a classifier is judged by, and the loss breaks the
//! ties that a small validation set makes common. Without a validation set, the last epoch is
//! the one kept.
//!
//! **Early stopping.** After `patience` epochs in a row without progress, the run stops; the
//! best epoch's weights are what it returns. Progress is a new lowest validation loss, or a
//! new best epoch whose accuracy is more than [`PROGRESS_MARGIN`] above the last best's: early
//! in a run the loss often falls for epochs while the accuracy still sits at chance, and such
//! a run is learning; late in a run a best by one or two validation rows is noise, and it
//! should not buy the run another `patience` epochs (it is still the best epoch, and kept).
//!
//! **Reduce on plateau.** With [`LrSchedule::Plateau`], the learning rate is multiplied by
//! `factor` after `patience` epochs without progress (counted again from there), so that a
//! run that has stopped improving at one rate gets a chance at a smaller one before it stops.

use std::fmt;
use std::str::FromStr;

use crate::metrics::{EpochMetrics, Score};

/// How the learning rate changes during a run; the configured rate is the highest it reaches.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// The same rate throughout.
    #[default]
    Constant,
    /// Multiply the rate by `factor` whenever the validation score has not improved for
    /// `patience` epochs (needs a validation set; without one the rate stays).
    Plateau { patience: usize, factor: f32 },
}

impl LrSchedule {
    /// The plateau schedule with the defaults of `--schedule plateau`: halve after 2 epochs
    /// without improvement.
    pub const PLATEAU: LrSchedule = LrSchedule::Plateau {
        patience: 2,
        factor: 0.5,
    };
}

impl fmt::Display for LrSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LrSchedule::Constant => f.write_str("constant"),
            LrSchedule::Plateau { .. } => f.write_str("plateau"),
        }
    }
}

impl FromStr for LrSchedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "constant" => Ok(LrSchedule::Constant),
            "plateau" => Ok(LrSchedule::PLATEAU),
            _ => Err(format!(
                "unknown schedule {s:?} (expected constant or plateau)"
            )),
        }
    }
}

/// Epochs in a row that a loss must rise (by `RISE` or more in all) before a warning says so.
pub const RISING: usize = 3;

/// How much, relatively, a loss must rise over those epochs: a run stuck on a plateau wobbles
/// by less, and is not worth a warning.
const RISE: f32 = 0.05;

/// Something about a run that a user should know (each is said once).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Warning {
    /// The training loss rose for [`RISING`] epochs in a row: from `(epoch, loss)` to
    /// `(epoch, loss)`, at learning rate `lr`.
    LossRising {
        from: (usize, f32),
        to: (usize, f32),
        lr: f32,
    },
    /// The validation loss rose for [`RISING`] epochs while the training loss fell.
    Overfitting,
    /// The trained network predicts `class` for every example of the validation set (or the
    /// training set, without one), though the set has several classes.
    OneClass { class: usize, validation: bool },
}

impl Warning {
    /// The warning in words, with the classes' names.
    pub fn describe(&self, labels: &[String]) -> String {
        match self {
            Warning::LossRising { from, to, lr } => format!(
                "the training loss has risen for {RISING} epochs in a row ({:.4} after epoch {}, \
                 {:.4} after epoch {}): the learning rate ({lr}) may be too high",
                from.1, from.0, to.1, to.0
            ),
            Warning::Overfitting => format!(
                "the validation loss has risen for {RISING} epochs while the training loss fell: \
                 the network is learning the training examples rather than the task \
                 (overfitting); the best epoch's weights are the ones kept"
            ),
            Warning::OneClass { class, validation } => format!(
                "the trained model predicts {:?} for every {} example: it has learnt nothing but \
                 one answer; try more epochs, another learning rate, or --class-weight balanced",
                labels.get(*class).map_or("?", String::as_str),
                if *validation {
                    "validation"
                } else {
                    "training"
                }
            ),
        }
    }
}

/// What the monitor decides after an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// This epoch is the best so far: keep its weights.
    Best,
    /// Not the best; go on.
    Continue,
    /// No new best for `patience` epochs: stop and go back to the best.
    Stop,
}

/// The state of the watch over a run (kept in checkpoints, so a resumed run decides as the
/// uninterrupted one would).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Monitor {
    /// The best epoch so far and its validation score.
    pub best: Option<(usize, Score)>,
    /// The lowest validation loss so far.
    pub lowest_loss: Option<f32>,
    /// Epochs since the last progress (see the module's documentation).
    pub since_best: usize,
    /// Epochs since the last progress or since the last cut of the learning rate.
    pub since_change: usize,
    /// What the configured learning rate is multiplied by now.
    pub lr_scale: f32,
    /// Which warnings were given (each is given once).
    pub warned_rising: bool,
    pub warned_overfitting: bool,
    /// Whether the best epoch is the one of the lowest validation loss (a language model's,
    /// whose accuracy says little), rather than the most accurate.
    #[serde(default)]
    pub by_loss: bool,
}

/// How much more accurate on the validation set than the last best a new best must be to count
/// as progress when its loss is not a new lowest: a quarter of a point, three rows of a
/// thousand.
///
/// On the suite's fortunes (1,017 validation rows, two threads), the defaults' run went on to
/// epoch 19 on bests of one row at a time (51.9% at epoch 5, 52.0% at 9, 52.4% at 12, 52.7% at
/// 14) while the validation loss rose from epoch 5, and scored 52.7% on the test set in 36 s.
/// With this margin it stops after epoch 11 (best epoch 9) and scores 52.9% in 20 s. On the
/// other eight sets it changed neither the epochs nor the accuracy. On a validation set of fewer
/// than 400 rows one row is more than the margin, so there every new best is progress.
pub const PROGRESS_MARGIN: f32 = 0.0025;

/// `a` is a better validation score than `b`: more accurate, or as accurate with a lower loss.
pub fn better(a: &Score, b: &Score) -> bool {
    a.accuracy > b.accuracy || (a.accuracy == b.accuracy && a.loss < b.loss)
}

impl Monitor {
    /// The watch over a new run.
    pub fn new() -> Self {
        Monitor {
            lr_scale: 1.0,
            ..Monitor::default()
        }
    }

    /// The watch over a run whose best epoch is that of the lowest validation loss.
    pub fn by_loss() -> Self {
        Monitor {
            by_loss: true,
            ..Monitor::new()
        }
    }

    /// Takes in the metrics of the epoch that just ended; `history` holds every epoch's,
    /// this one's last. Returns the verdict, and warnings for the user.
    pub fn after_epoch(
        &mut self,
        history: &[EpochMetrics],
        patience: Option<usize>,
        schedule: LrSchedule,
        lr: f32,
    ) -> (Verdict, Vec<Warning>) {
        let metrics = history.last().expect("an epoch just ended");
        let mut warnings = self.warnings(history, lr);
        let Some(valid) = metrics.valid else {
            return (Verdict::Continue, warnings);
        };
        let lower = self.lowest_loss.is_none_or(|l| valid.loss < l);
        if lower {
            self.lowest_loss = Some(valid.loss);
        }
        let by_loss = self.by_loss;
        let improves = |best: &Score| {
            if by_loss {
                valid.loss < best.loss
            } else {
                better(&valid, best)
            }
        };
        if self.best.is_none_or(|(_, best)| improves(&best)) {
            // a new best by no more than noise is kept, but it is not progress (see the
            // module's documentation); the run goes on after it at least one epoch
            let progress = lower
                || self
                    .best
                    .is_none_or(|(_, best)| valid.accuracy > best.accuracy + PROGRESS_MARGIN);
            self.best = Some((metrics.epoch, valid));
            if progress {
                self.since_best = 0;
                self.since_change = 0;
            } else {
                self.since_best += 1;
                self.since_change += 1;
            }
            return (Verdict::Best, warnings);
        }
        if lower {
            self.since_best = 0;
            self.since_change = 0;
            return (Verdict::Continue, warnings);
        }
        self.since_best += 1;
        self.since_change += 1;
        if patience.is_some_and(|p| self.since_best >= p) {
            // a run stopped by its patience may not have seen the validation loss rise by
            // RISE yet (a language model's patience is 3, the RISING epochs themselves): when
            // it rose at every one of them while the training loss fell, that is overfitting
            if !self.warned_overfitting && overfitting(history, 0.0) {
                self.warned_overfitting = true;
                warnings.push(Warning::Overfitting);
            }
            return (Verdict::Stop, warnings);
        }
        if let LrSchedule::Plateau { patience, factor } = schedule
            && self.since_change >= patience
        {
            self.lr_scale *= factor;
            self.since_change = 0;
        }
        (Verdict::Continue, warnings)
    }

    /// The warnings the history calls for, each given once.
    fn warnings(&mut self, history: &[EpochMetrics], lr: f32) -> Vec<Warning> {
        let mut out = Vec::new();
        let Some(recent) = history.len().checked_sub(RISING + 1).map(|i| &history[i..]) else {
            return out;
        };
        let rising = |score: fn(&EpochMetrics) -> Option<f32>| {
            recent
                .windows(2)
                .all(|w| matches!((score(&w[0]), score(&w[1])), (Some(a), Some(b)) if b > a))
        };
        let train_loss = |m: &EpochMetrics| Some(m.train.loss);
        let (first, last) = (&recent[0], &recent[RISING]);
        let grew = |score: fn(&EpochMetrics) -> Option<f32>| matches!((score(first), score(last)), (Some(a), Some(b)) if b > a * (1.0 + RISE));
        if !self.warned_rising && rising(train_loss) && grew(train_loss) {
            self.warned_rising = true;
            out.push(Warning::LossRising {
                from: (first.epoch, first.train.loss),
                to: (last.epoch, last.train.loss),
                lr,
            });
        }
        if !self.warned_overfitting && overfitting(history, RISE) {
            self.warned_overfitting = true;
            out.push(Warning::Overfitting);
        }
        out
    }
}

/// Whether, over the last [`RISING`] epochs of `history`, the validation loss rose at every
/// epoch (by `rise` or more in all, a fraction) while the training loss fell at every epoch.
fn overfitting(history: &[EpochMetrics], rise: f32) -> bool {
    let Some(recent) = history.len().checked_sub(RISING + 1).map(|i| &history[i..]) else {
        return false;
    };
    let valid: Option<Vec<f32>> = recent.iter().map(|m| m.valid.map(|v| v.loss)).collect();
    let Some(valid) = valid else {
        return false;
    };
    let rising = valid.windows(2).all(|w| w[1] > w[0]);
    let falling = recent.windows(2).all(|w| w[1].train.loss < w[0].train.loss);
    rising && falling && valid[RISING] > valid[0] * (1.0 + rise)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: usize, train_loss: f32, valid: Option<(f32, f32)>) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train: Score {
                loss: train_loss,
                accuracy: 0.5,
            },
            valid: valid.map(|(loss, accuracy)| Score { loss, accuracy }),
            test: None,
            lr: 0.1,
            valid_classes: Vec::new(),
        }
    }

    #[test]
    fn the_best_epoch_is_the_most_accurate_then_the_lowest_loss() {
        let mut m = Monitor::new();
        let mut history = Vec::new();
        let scores = [(0.9, 0.5), (0.8, 0.6), (0.7, 0.6), (0.95, 0.6), (0.2, 0.55)];
        let mut verdicts = Vec::new();
        for (i, &s) in scores.iter().enumerate() {
            history.push(epoch(i + 1, 1.0, Some(s)));
            verdicts.push(m.after_epoch(&history, None, LrSchedule::Constant, 0.1).0);
        }
        use Verdict::*;
        assert_eq!(verdicts, [Best, Best, Best, Continue, Continue]);
        assert_eq!(m.best.unwrap().0, 3);
    }

    #[test]
    fn patience_stops_and_a_plateau_cuts_the_rate_first() {
        let mut m = Monitor::new();
        let mut history = vec![epoch(1, 1.0, Some((0.5, 0.8)))];
        let schedule = LrSchedule::Plateau {
            patience: 2,
            factor: 0.5,
        };
        assert_eq!(
            m.after_epoch(&history, Some(4), schedule, 0.1).0,
            Verdict::Best
        );
        let mut verdicts = Vec::new();
        let mut scales = Vec::new();
        for e in 2..=5 {
            history.push(epoch(e, 1.0, Some((0.6, 0.7))));
            verdicts.push(m.after_epoch(&history, Some(4), schedule, 0.1).0);
            scales.push(m.lr_scale);
        }
        use Verdict::*;
        assert_eq!(verdicts, [Continue, Continue, Continue, Stop]);
        assert_eq!(scales, [1.0, 0.5, 0.5, 0.5]);
    }

    #[test]
    fn a_falling_validation_loss_is_progress_though_not_the_best() {
        let mut m = Monitor::new();
        let mut history = vec![epoch(1, 1.0, Some((0.69, 0.53)))];
        m.after_epoch(&history, Some(2), LrSchedule::Constant, 0.1);
        let mut verdicts = Vec::new();
        // accuracy below the first epoch's, but the loss falls: no stop
        for (e, loss) in [(2, 0.688), (3, 0.687), (4, 0.686), (5, 0.7), (6, 0.71)] {
            history.push(epoch(e, 1.0, Some((loss, 0.5))));
            verdicts.push(
                m.after_epoch(&history, Some(2), LrSchedule::Constant, 0.1)
                    .0,
            );
        }
        use Verdict::*;
        assert_eq!(verdicts, [Continue, Continue, Continue, Continue, Stop]);
        assert_eq!(m.best.unwrap().0, 1, "the best is still the most accurate");
    }

    #[test]
    fn a_best_by_no_more_than_the_margin_is_kept_but_is_not_progress() {
        let mut m = Monitor::new();
        // the validation loss rises throughout, so only accuracy could be progress
        let mut history = vec![epoch(1, 1.0, Some((0.60, 0.500)))];
        m.after_epoch(&history, Some(3), LrSchedule::Constant, 0.1);
        let mut verdicts = Vec::new();
        let mut best = Vec::new();
        for (e, accuracy) in [(2, 0.501), (3, 0.502), (4, 0.502), (5, 0.506), (6, 0.506)] {
            history.push(epoch(e, 1.0, Some((0.60 + e as f32 / 100.0, accuracy))));
            verdicts.push(
                m.after_epoch(&history, Some(3), LrSchedule::Constant, 0.1)
                    .0,
            );
            best.push(m.best.unwrap().0);
        }
        use Verdict::*;
        // epochs 2 and 3 are bests by one and two thousandths: kept, but the patience of 3
        // runs out at epoch 4 all the same
        assert_eq!(verdicts, [Best, Best, Stop, Best, Continue]);
        assert_eq!(best, [2, 3, 3, 5, 5]);
        assert_eq!(
            m.since_best, 1,
            "epoch 5, 0.4 points better than epoch 3, is progress"
        );
    }

    #[test]
    fn without_a_validation_set_nothing_is_best_and_nothing_stops() {
        let mut m = Monitor::new();
        let history = vec![epoch(1, 1.0, None)];
        assert_eq!(
            m.after_epoch(&history, Some(1), LrSchedule::PLATEAU, 0.1).0,
            Verdict::Continue
        );
        assert_eq!((m.best, m.lr_scale), (None, 1.0));
    }

    #[test]
    fn a_rising_training_loss_and_overfitting_are_each_told_once() {
        let mut m = Monitor::new();
        let mut history = Vec::new();
        let mut told = Vec::new();
        for (e, loss) in [0.5, 0.6, 0.7, 0.8, 0.9].into_iter().enumerate() {
            history.push(epoch(e + 1, loss, None));
            told.extend(m.after_epoch(&history, None, LrSchedule::Constant, 0.3).1);
        }
        assert_eq!(told.len(), 1, "{told:?}");
        let text = told[0].describe(&[]);
        assert!(
            text.contains("risen for 3 epochs") && text.contains("(0.3)"),
            "{text}"
        );

        let mut m = Monitor::new();
        let mut history = Vec::new();
        let mut told = Vec::new();
        for e in 0..6 {
            let (train, valid) = (1.0 - 0.1 * e as f32, 0.5 + 0.1 * e as f32);
            history.push(epoch(e + 1, train, Some((valid, 0.5))));
            told.extend(m.after_epoch(&history, None, LrSchedule::Constant, 0.3).1);
        }
        assert_eq!(told, [Warning::Overfitting]);
    }

    #[test]
    fn schedules_parse() {
        assert_eq!("plateau".parse(), Ok(LrSchedule::PLATEAU));
        assert_eq!("constant".parse(), Ok(LrSchedule::Constant));
        assert!(
            "cosine"
                .parse::<LrSchedule>()
                .unwrap_err()
                .contains("constant or plateau")
        );
    }
}
