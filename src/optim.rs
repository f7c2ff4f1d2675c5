//! Gradient clipping and the update rules. Parameters and gradients are flat slices with the
//! same layout (see [`crate::rnn::Layout`]), so each is one loop.

use crate::error::{Error, Result};

/// Clips every gradient element to `[-limit, limit]` (element-wise, as the seed does; not by
/// the norm of the whole gradient). A NaN stays NaN, so that divergence is still noticed.
pub fn clip(grads: &mut [f32], limit: f32) {
    for g in grads {
        *g = g.clamp(-limit, limit);
    }
}

/// Checks that a learning rate or a clipping limit is a positive, finite number.
pub fn check_positive(what: &str, value: f32) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{what} must be a positive number, not {value}"
        )))
    }
}

/// An update rule: changes the parameters given their (clipped) gradient.
pub trait Optimizer {
    /// One update of `params` with the gradient `grads` (same layout).
    fn step(&mut self, params: &mut [f32], grads: &[f32]);

    /// The learning rate.
    fn learning_rate(&self) -> f32;
}

/// Plain stochastic gradient descent: `w -= lr · dw`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    pub lr: f32,
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut [f32], grads: &[f32]) {
        for (w, g) in params.iter_mut().zip(grads) {
            *w -= self.lr * g;
        }
    }

    fn learning_rate(&self) -> f32 {
        self.lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_is_element_wise() {
        let mut g = [-3.0, -0.5, 0.0, 0.25, 7.0];
        clip(&mut g, 1.0);
        assert_eq!(g, [-1.0, -0.5, 0.0, 0.25, 1.0]);
        let mut nan = [f32::NAN];
        clip(&mut nan, 1.0);
        assert!(nan[0].is_nan(), "clipping must not hide a NaN");
    }

    #[test]
    fn sgd_steps_against_the_gradient() {
        let mut w = [1.0, 2.0];
        Sgd { lr: 0.5 }.step(&mut w, &[0.5, -1.0]);
        assert_eq!(w, [0.75, 2.5]);
    }

    #[test]
    fn learning_rates_must_be_positive_and_finite() {
        assert!(check_positive("--lr", 0.1).is_ok());
        for bad in [0.0, -0.1, f32::NAN, f32::INFINITY] {
            let err = check_positive("--lr", bad).unwrap_err().to_string();
            assert!(err.starts_with("--lr must be a positive number"), "{err}");
        }
    }
}
