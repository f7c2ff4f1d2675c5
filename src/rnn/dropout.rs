//! Inverted dropout, as PyTorch applies it in training: every value is zeroed with probability
//! `p` and the others are scaled by `1/(1 - p)`, so that a value's expectation is unchanged and
//! evaluation, which drops nothing, needs no rescaling.
//!
//! ```text
//! forward:  y = m ⊙ x,   m_i = 0 with probability p, else 1/(1 - p)
//! backward: dx = m ⊙ dy
//! ```
//!
//! The mask is kept, so the backward pass multiplies by the very same `m`. Masks are drawn from
//! the random stream the trainer passes in; the same stream gives the same masks, which is
//! also how the gradient checks hold them fixed.

use crate::rng::Rng;

/// Draws a mask of `len` entries for dropout probability `p` into `mask`.
pub(super) fn draw(mask: &mut Vec<f32>, len: usize, p: f32, rng: &mut Rng) {
    let keep = 1.0 / (1.0 - p);
    mask.clear();
    mask.extend((0..len).map(|_| {
        if rng.uniform() < f64::from(p) {
            0.0
        } else {
            keep
        }
    }));
}

/// `x ⊙= mask`: applies a mask forward, or to a gradient backward.
pub(super) fn apply(x: &mut [f32], mask: &[f32]) {
    debug_assert_eq!(x.len(), mask.len());
    for (v, &m) in x.iter_mut().zip(mask) {
        *v *= m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mask_drops_about_p_and_scales_the_rest() {
        let mut rng = Rng::new(5);
        let mut mask = Vec::new();
        draw(&mut mask, 100_000, 0.25, &mut rng);
        let dropped = mask.iter().filter(|&&m| m == 0.0).count();
        assert!((24_000..26_000).contains(&dropped), "{dropped}");
        assert!(mask.iter().all(|&m| m == 0.0 || m == 1.0 / 0.75));
        // the mean is kept
        let mean = mask.iter().map(|&m| f64::from(m)).sum::<f64>() / 100_000.0;
        assert!((mean - 1.0).abs() < 0.01, "{mean}");
    }

    #[test]
    fn the_same_stream_gives_the_same_mask() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        draw(&mut a, 50, 0.5, &mut Rng::new(1));
        draw(&mut b, 50, 0.5, &mut Rng::new(1));
        assert_eq!(a, b);
        let mut x = vec![2.0; 50];
        apply(&mut x, &a);
        assert!(x.iter().zip(&a).all(|(&v, &m)| v == 2.0 * m));
    }
}
