//! What training measures: loss and accuracy per epoch, kept as a history and written as CSV.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::fsutil::write_atomic;

/// Mean cross-entropy loss and accuracy (a fraction in 0..=1) over a set of examples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Score {
    pub loss: f32,
    pub accuracy: f32,
}

/// The metrics of one epoch. `train` is averaged over the epoch's own forward passes (each
/// example scored just before its update, as training loops usually report it); `test` is a
/// separate evaluation after the epoch, when there is a test set.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct EpochMetrics {
    /// 1 for the first epoch.
    pub epoch: usize,
    pub train: Score,
    pub test: Option<Score>,
}

/// Running sums of loss and correct predictions, turned into a [`Score`] at the end.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    pub loss_sum: f64,
    pub correct: usize,
    pub count: usize,
}

impl Tally {
    /// Adds `count` examples whose losses sum to `loss_sum`, `correct` of them predicted right.
    pub fn add(&mut self, loss_sum: f64, correct: usize, count: usize) {
        self.loss_sum += loss_sum;
        self.correct += correct;
        self.count += count;
    }

    /// The mean loss and the accuracy; both 0 when nothing was added.
    pub fn score(&self) -> Score {
        if self.count == 0 {
            return Score::default();
        }
        Score {
            loss: (self.loss_sum / self.count as f64) as f32,
            accuracy: self.correct as f32 / self.count as f32,
        }
    }
}

/// Writes one row per epoch: `epoch,train_loss,train_acc,test_loss,test_acc` (the test columns
/// only when the history has test scores).
pub fn write_csv(history: &[EpochMetrics], path: &Path) -> Result<()> {
    let with_test = history.iter().any(|m| m.test.is_some());
    write_atomic(path, |out| {
        write!(out, "epoch,train_loss,train_acc")?;
        if with_test {
            write!(out, ",test_loss,test_acc")?;
        }
        writeln!(out)?;
        for m in history {
            write!(out, "{},{},{}", m.epoch, m.train.loss, m.train.accuracy)?;
            if with_test {
                let test = m.test.unwrap_or_default();
                write!(out, ",{},{}", test.loss, test.accuracy)?;
            }
            writeln!(out)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_averages_loss_and_counts_accuracy() {
        let mut t = Tally::default();
        t.add(1.5, 1, 2);
        t.add(0.5, 1, 2);
        assert_eq!(
            t.score(),
            Score {
                loss: 0.5,
                accuracy: 0.5
            }
        );
        assert_eq!(Tally::default().score(), Score::default());
    }

    #[test]
    fn the_csv_has_a_header_and_one_row_per_epoch() {
        let path = std::env::temp_dir().join(format!("rnn-metrics-{}.csv", std::process::id()));
        let score = |loss, accuracy| Score { loss, accuracy };
        let history = [
            EpochMetrics {
                epoch: 1,
                train: score(0.75, 0.5),
                test: Some(score(1.0, 0.25)),
            },
            EpochMetrics {
                epoch: 2,
                train: score(0.5, 1.0),
                test: Some(score(0.25, 1.0)),
            },
        ];
        write_csv(&history, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            text,
            "epoch,train_loss,train_acc,test_loss,test_acc\n1,0.75,0.5,1,0.25\n2,0.5,1,0.25,1\n"
        );
    }
}
