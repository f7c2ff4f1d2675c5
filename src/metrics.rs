//! What training measures: loss and accuracy per epoch, kept as a history and written as CSV.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::fsutil::write_atomic;

/// Mean cross-entropy loss and accuracy (a fraction in 0..=1) over a set of examples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub loss: f32,
    pub accuracy: f32,
}

/// The metrics of one epoch. `train` is averaged over the epoch's own forward passes (each
/// example scored just before its update, as training loops usually report it); `valid` and
/// `test` are separate evaluations after the epoch, when there are such sets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1 for the first epoch.
    pub epoch: usize,
    pub train: Score,
    pub valid: Option<Score>,
    pub test: Option<Score>,
    /// The learning rate the epoch trained with.
    pub lr: f32,
    /// Precision, recall and F1 of every class on the validation set (empty without one).
    pub valid_classes: Vec<ClassScore>,
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

/// Counts of (true class, predicted class) pairs: row `t`, column `p` is how many examples of
/// class `t` were predicted as `p`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confusion {
    classes: usize,
    counts: Vec<usize>,
}

/// Precision, recall and F1 of one class, and how many examples truly have it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassScore {
    /// Of the examples predicted as this class, the fraction that are (0 when none are).
    pub precision: f32,
    /// Of the examples of this class, the fraction predicted as it (0 when there are none).
    pub recall: f32,
    /// The harmonic mean of precision and recall (0 when both are 0).
    pub f1: f32,
    /// Examples of this class.
    pub support: usize,
}

impl Confusion {
    /// An empty matrix for `classes` classes.
    pub fn new(classes: usize) -> Self {
        Confusion {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// Counts one example of class `truth` predicted as `predicted`.
    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth * self.classes + predicted] += 1;
    }

    /// How many examples of class `truth` were predicted as `predicted`.
    pub fn count(&self, truth: usize, predicted: usize) -> usize {
        self.counts[truth * self.classes + predicted]
    }

    /// The rows of the matrix (one per true class).
    pub fn rows(&self) -> impl Iterator<Item = &[usize]> {
        self.counts.chunks(self.classes.max(1))
    }

    /// The scores of class `c`.
    pub fn class_score(&self, c: usize) -> ClassScore {
        let hits = self.count(c, c);
        let support: usize = (0..self.classes).map(|p| self.count(c, p)).sum();
        let predicted: usize = (0..self.classes).map(|t| self.count(t, c)).sum();
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f32 / b as f32 };
        let (precision, recall) = (ratio(hits, predicted), ratio(hits, support));
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        ClassScore {
            precision,
            recall,
            f1,
            support,
        }
    }
}

/// Writes one row per epoch: `epoch,lr,train_loss,train_acc`, then `valid_loss,valid_acc` and
/// `test_loss,test_acc` when the history has such scores, then, with validation scores,
/// `valid_f1_LABEL` for every label in `labels` (the F1 of that class on the validation set).
pub fn write_csv(history: &[EpochMetrics], labels: &[String], path: &Path) -> Result<()> {
    let with_valid = history.iter().any(|m| m.valid.is_some());
    let with_test = history.iter().any(|m| m.test.is_some());
    write_atomic(path, |out| {
        write!(out, "epoch,lr,train_loss,train_acc")?;
        if with_valid {
            write!(out, ",valid_loss,valid_acc")?;
        }
        if with_test {
            write!(out, ",test_loss,test_acc")?;
        }
        if with_valid {
            for label in labels {
                write!(out, ",{}", csv_field(&format!("valid_f1_{label}")))?;
            }
        }
        writeln!(out)?;
        for m in history {
            write!(
                out,
                "{},{},{},{}",
                m.epoch, m.lr, m.train.loss, m.train.accuracy
            )?;
            let mut score = |s: Option<Score>| {
                let s = s.unwrap_or_default();
                write!(out, ",{},{}", s.loss, s.accuracy)
            };
            if with_valid {
                score(m.valid)?;
            }
            if with_test {
                score(m.test)?;
            }
            if with_valid {
                for c in 0..labels.len() {
                    let f1 = m.valid_classes.get(c).map_or(0.0, |s| s.f1);
                    write!(out, ",{f1}")?;
                }
            }
            writeln!(out)?;
        }
        Ok(())
    })
}

/// A CSV field: quoted (with quotes doubled) when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
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
    fn class_scores_from_a_confusion_matrix() {
        // 3 of class 0 (2 right, 1 taken for class 1), 2 of class 1 (both right), none of 2.
        let mut m = Confusion::new(3);
        for (t, p) in [(0, 0), (0, 0), (0, 1), (1, 1), (1, 1)] {
            m.add(t, p);
        }
        assert_eq!(
            m.rows().collect::<Vec<_>>(),
            [[2, 1, 0], [0, 2, 0], [0, 0, 0]]
        );
        let c0 = m.class_score(0);
        assert_eq!((c0.precision, c0.support), (1.0, 3));
        assert!((c0.recall - 2.0 / 3.0).abs() < 1e-6 && (c0.f1 - 0.8).abs() < 1e-6);
        let c1 = m.class_score(1);
        assert!((c1.precision - 2.0 / 3.0).abs() < 1e-6 && c1.recall == 1.0);
        let c2 = m.class_score(2);
        assert_eq!(
            (c2.precision, c2.recall, c2.f1, c2.support),
            (0.0, 0.0, 0.0, 0)
        );
    }

    #[test]
    fn the_csv_has_a_header_and_one_row_per_epoch() {
        let path = std::env::temp_dir().join(format!("rnn-metrics-{}.csv", std::process::id()));
        let score = |loss, accuracy| Score { loss, accuracy };
        let class = |f1| ClassScore {
            precision: f1,
            recall: f1,
            f1,
            support: 1,
        };
        let history = [
            EpochMetrics {
                epoch: 1,
                train: score(0.75, 0.5),
                valid: Some(score(0.5, 0.75)),
                test: Some(score(1.0, 0.25)),
                lr: 0.5,
                valid_classes: vec![class(0.5), class(1.0)],
            },
            EpochMetrics {
                epoch: 2,
                train: score(0.5, 1.0),
                valid: Some(score(0.25, 1.0)),
                test: Some(score(0.25, 1.0)),
                lr: 0.25,
                valid_classes: vec![class(1.0), class(1.0)],
            },
        ];
        let labels = ["neg".to_string(), "a,b".to_string()];
        write_csv(&history, &labels, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            text,
            "epoch,lr,train_loss,train_acc,valid_loss,valid_acc,test_loss,test_acc,\
             valid_f1_neg,\"valid_f1_a,b\"\n\
             1,0.5,0.75,0.5,0.5,0.75,1,0.25,0.5,1\n\
             2,0.25,0.5,1,0.25,1,0.25,1,1,1\n"
        );
    }
}
