//! The loss, outside the network: softmax cross-entropy of the logits a forward pass leaves in
//! the [`Workspace`], with optional class weights, and its gradient on the logits.
//!
//! ```text
//! p = softmax(y),   L = -ln p_target                     (one prediction: a row's, or a token's)
//! loss of a batch = weight · Σ w_target L                 (w = 1 without class weights)
//! ∂loss/∂y = weight · w_target · (p - onehot(target))
//! ```
//!
//! The softmax is the network's ([`softmax_rows`], for the probabilities every prediction
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
