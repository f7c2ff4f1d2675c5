//! The loss, outside the network: softmax cross-entropy of the logits a forward pass leaves in
//! the [`Workspace`], with optional class weights, and its gradient on the logits.
//!
//! ```text
//! p = softmax(y),   L = -ln p_target                     (one prediction: a row's, or a token's)
//! loss of a batch = weight · Σ w_target L                 (w = 1 without class weights)
//! ∂loss/∂y = weight · w_target · (p - onehot(target))
//! ```
//!
//! The softmax is the network's (`softmax_rows`, for the probabilities every prediction
//! reads); the loss, its sums and its gradient are the trainer's.

use super::Workspace;
use super::softmax::{argmax, cross_entropy, softmax_in_place};
use crate::metrics::Tally;

/// The probabilities of every row of `logits` (rows × `classes`) into `probs`, and each row's
/// `(ln Σ exp(y_k - m), m)` into `norms`, from which [`cross_entropy`] gets a loss.
pub(super) fn softmax_rows(
    logits: &[f32],
    classes: usize,
    probs: &mut Vec<f32>,
    norms: &mut Vec<(f32, f32)>,
) {
    probs.clear();
    probs.extend_from_slice(logits);
    norms.clear();
    norms.extend(probs.chunks_exact_mut(classes).map(softmax_in_place));
}

/// The sums of the loss and of the right predictions over the last batch's predictions, and
/// their number: `targets[r]` is prediction `r`'s target (see [`super::Network::targets`]);
/// predictions without a target are only counted.
pub fn tally(ws: &Workspace, targets: &[u32]) -> Tally {
    let mut tally = Tally::default();
    let c = ws.classes;
    for (r, (p, &norm)) in ws.probs.chunks_exact(c.max(1)).zip(&ws.norms).enumerate() {
        if let Some(&target) = targets.get(r) {
            let loss = cross_entropy(ws.logits[r * c + target as usize], norm);
            let correct = argmax(p) == target as usize;
            tally.add(f64::from(loss), usize::from(correct), 1);
        } else {
            tally.add(0.0, 0, 1);
        }
    }
    tally
}

/// The gradient of the loss `weight · Σ_r w_target L_r` on the logits of the last batch, into
/// the workspace, for [`super::Network::backward_logits`]: `dy = (p - onehot(target)) · weight
/// · w_target`, where the class weights `w` are 1 when `class_weights` is `None`.
///
/// # Panics
/// If a prediction has no target.
pub fn backward(ws: &mut Workspace, targets: &[u32], weight: f32, class_weights: Option<&[f32]>) {
    let c = ws.classes;
    assert_eq!(
        ws.probs.len(),
        targets.len() * c,
        "backward needs a target for every row"
    );
    // forward: p = softmax(y), L = -ln p_target  =>  dy = p - onehot(target)
    let dlogits = &mut ws.dlogits;
    dlogits.clear();
    dlogits.extend_from_slice(&ws.probs);
    for (dy, &target) in dlogits.chunks_exact_mut(c).zip(targets) {
        dy[target as usize] -= 1.0;
        let weight = class_weights.map_or(weight, |w| weight * w[target as usize]);
        for v in dy.iter_mut() {
            *v *= weight;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `weight · Σ_r w_target ln Σ_k exp(y_rk) - y_r,target`, in f64: the loss written out.
    fn loss(logits: &[f32], targets: &[u32], weight: f64, class_weights: &[f32]) -> f64 {
        let c = class_weights.len();
        let mut sum = 0.0;
        for (y, &t) in logits.chunks_exact(c).zip(targets) {
            let log_sum = y.iter().map(|&v| f64::from(v).exp()).sum::<f64>().ln();
            let w = f64::from(class_weights[t as usize]);
            sum += w * (log_sum - f64::from(y[t as usize]));
        }
        weight * sum
    }

    fn workspace(logits: &[f32], classes: usize) -> Workspace {
        let mut ws = Workspace {
            classes,
            logits: logits.to_vec(),
            ..Workspace::default()
        };
        softmax_rows(logits, classes, &mut ws.probs, &mut ws.norms);
        ws
    }

    #[test]
    fn the_gradient_on_the_logits_matches_finite_differences() {
        let (c, targets, weights) = (4, [2, 0, 3], [0.5, 1.0, 2.0, 1.5]);
        let mut logits: Vec<f32> = (0..12).map(|i| ((i * 7 % 11) as f32 - 5.0) / 2.0).collect();
        let mut ws = workspace(&logits, c);
        backward(&mut ws, &targets, 0.25, Some(&weights));
        let eps = 1e-3;
        for i in 0..logits.len() {
            let saved = logits[i];
            logits[i] = saved + eps;
            let plus = loss(&logits, &targets, 0.25, &weights);
            logits[i] = saved - eps;
            let minus = loss(&logits, &targets, 0.25, &weights);
            logits[i] = saved;
            let numeric = ((plus - minus) / (2.0 * f64::from(eps))) as f32;
            let analytic = ws.dlogits[i];
            assert!(
                (analytic - numeric).abs() < 1e-4,
                "{i}: {analytic} against {numeric}"
            );
        }
    }

    #[test]
    fn the_tally_sums_the_losses_and_counts_the_right_answers() {
        // row 0: logits ln 1, ln 2, ln 3 (p = 1/6, 2/6, 3/6), target 2: right, L = ln 2
        // row 1: the same, target 0: wrong, L = ln 6; row 2: no target, only counted
        let row = [0.0, 2f32.ln(), 3f32.ln()];
        let ws = workspace(&[row, row, row].concat(), 3);
        let tally = tally(&ws, &[2, 0]);
        assert_eq!((tally.correct, tally.count), (1, 3));
        assert!(
            (tally.loss_sum - (2f64.ln() + 6f64.ln())).abs() < 1e-6,
            "{}",
            tally.loss_sum
        );
    }
}
