//! Holding out a validation set: a seeded, stratified share of the training rows.
//!
//! Every label gives the same share of its rows (rounded; at most all but one, so that every
//! label keeps an example to learn from), drawn at random from the seed's own stream. A label
//! with a few rows gives none rather than its only ones. Both parts keep the file's order.

use std::collections::BTreeMap;

use crate::rng::Rng;

/// The random stream that picks the validation rows, for a given seed.
pub const VALID_STREAM: u64 = 3;

/// The share of the training rows held out for validation by default.
pub const DEFAULT_FRACTION: f64 = 0.1;

/// The fewest rows a default validation set may have: with fewer, its accuracy moves in steps
/// too coarse to pick an epoch by, or to stop on.
pub const MIN_HELD_OUT: usize = 50;

/// The share held out by default from `rows` training rows: [`DEFAULT_FRACTION`], or nothing
/// when that would be fewer than [`MIN_HELD_OUT`] rows (a small set is then trained on whole,
/// for every epoch).
pub fn default_fraction(rows: usize) -> f64 {
    if DEFAULT_FRACTION * rows as f64 >= MIN_HELD_OUT as f64 {
        DEFAULT_FRACTION
    } else {
        0.0
    }
}

/// Splits items with the given `labels` into the indices kept for training and the indices
/// held out for validation, both in order: `fraction` (in `[0, 1)`) of every label's items,
/// chosen by `seed`.
pub fn stratified<L: Ord>(labels: &[L], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut by_label: BTreeMap<&L, Vec<usize>> = BTreeMap::new();
    for (i, label) in labels.iter().enumerate() {
        by_label.entry(label).or_default().push(i);
    }
    let mut rng = Rng::with_stream(seed, VALID_STREAM);
    let mut held = vec![false; labels.len()];
    for items in by_label.values_mut() {
        let n = items.len();
        let take = ((fraction * n as f64).round() as usize).min(n.saturating_sub(1));
        rng.shuffle(items);
        for &i in &items[..take] {
            held[i] = true;
        }
    }
    (0..labels.len()).partition(|&i| !held[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_gives_its_share_and_keeps_one() {
        let mut labels = vec!["a"; 50];
        labels.extend(vec!["b"; 10]);
        labels.push("c");
        let (train, valid) = stratified(&labels, 0.2, 1);
        let count = |set: &[usize], l: &str| set.iter().filter(|&&i| labels[i] == l).count();
        assert_eq!(
            (count(&valid, "a"), count(&valid, "b"), count(&valid, "c")),
            (10, 2, 0)
        );
        assert_eq!(train.len() + valid.len(), labels.len());
        assert!(train.windows(2).all(|w| w[0] < w[1]) && valid.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            stratified(&labels, 0.2, 1),
            (train, valid.clone()),
            "the seed fixes it"
        );
        assert_ne!(
            stratified(&labels, 0.2, 2).1,
            valid,
            "another seed, other rows"
        );
    }

    #[test]
    fn a_small_set_holds_nothing_out_by_default() {
        assert_eq!(default_fraction(300), 0.0);
        assert_eq!(default_fraction(499), 0.0);
        assert_eq!(default_fraction(500), DEFAULT_FRACTION);
    }

    #[test]
    fn nothing_is_held_out_at_zero() {
        let (train, valid) = stratified(&["x", "y", "x"], 0.0, 0);
        assert_eq!((train, valid), (vec![0, 1, 2], vec![]));
    }
}
