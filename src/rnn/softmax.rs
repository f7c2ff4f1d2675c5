//! Softmax and cross-entropy, computed together and stably.
//!
//! ```text
//! p_c = exp(y_c - m) / Σ_k exp(y_k - m),    m = max_k y_k   (the same p for every m)
//! L   = -ln p_target = ln Σ_k exp(y_k - m) - (y_target - m)
//! ```
//! Subtracting the maximum keeps every `exp` at most 1, and computing `L` from the logits,
//! not from `ln p`, keeps it finite when `p_target` is too small for an `f32`.

/// Turns the logits `y` into probabilities in place and returns `ln Σ exp(y_k - m)` and `m`,
/// from which [`cross_entropy`] gets the loss of any target. The exponentials are
/// [`crate::kernels::reference::exp`]'s, in vector registers.
pub fn softmax_in_place(y: &mut [f32]) -> (f32, f32) {
    crate::kernels::softmax(y)
}

/// The loss `-ln p_target` from the target's logit and what [`softmax_in_place`] returned.
pub fn cross_entropy(target_logit: f32, (log_sum, m): (f32, f32)) -> f32 {
    log_sum - (target_logit - m)
}

/// The index of the largest value; the first one on ties. Found as the first place that holds
/// the maximum, which a vector pass finds (a running comparison mispredicts a branch at every
/// new best).
pub fn argmax(values: &[f32]) -> usize {
    let m = crate::kernels::max(values);
    values.iter().position(|&v| v == m).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_of_known_logits() {
        // ln 1, ln 2, ln 3 give probabilities 1/6, 2/6, 3/6.
        let mut y = [0.0, 2f32.ln(), 3f32.ln()];
        let norm = softmax_in_place(&mut y);
        for (p, want) in y.iter().zip([1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0]) {
            assert!((p - want).abs() < 1e-6, "{y:?}");
        }
        assert!((cross_entropy(0.0, norm) - 6f32.ln()).abs() < 1e-6);
        assert!((cross_entropy(3f32.ln(), norm) - 2f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn huge_logits_stay_finite() {
        let mut y = [1000.0, 0.0];
        let norm = softmax_in_place(&mut y);
        assert_eq!(y, [1.0, 0.0]);
        // p_1 = e^-1000 underflows, but its loss is still exactly 1000.
        assert_eq!(cross_entropy(0.0, norm), 1000.0);
    }

    #[test]
    fn argmax_takes_the_first_of_equals() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), 1);
    }
}
