//! Gradient clipping and the update rules. Parameters and gradients are flat slices with the
//! same layout (see [`crate::rnn::Layout`]), so each is one loop.
//!
//! **Sparse updates.** A batch's gradient is zero outside a few index ranges: every column of
//! `Wxh` but those of the batch's tokens is untouched (see [`crate::train`]). Updates take the
//! list of ranges to touch. For SGD this is exact: a zero gradient changes nothing. For Adam it
//! is the *lazy* variant (PyTorch's `SparseAdam`, TensorFlow's `LazyAdam`): the moments of an
//! input column are updated only in steps whose batch contains its token, where dense Adam would
//! keep moving every column by its decaying momentum at every step. Both use the global step
//! count for the bias correction.

use std::ops::Range;

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
    /// One update of `params` with the gradient `grads` (same layout), at the indices in
    /// `ranges` only (pass `&[0..params.len()]` for a dense update).
    fn step(&mut self, params: &mut [f32], grads: &[f32], ranges: &[Range<usize>]);

    /// The learning rate.
    fn learning_rate(&self) -> f32;
}

/// Plain stochastic gradient descent: `w -= lr · dw`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    pub lr: f32,
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut [f32], grads: &[f32], ranges: &[Range<usize>]) {
        for r in ranges {
            for (w, g) in params[r.clone()].iter_mut().zip(&grads[r.clone()]) {
                *w -= self.lr * g;
            }
        }
    }

    fn learning_rate(&self) -> f32 {
        self.lr
    }
}

/// Adam (Kingma & Ba, 2015), with PyTorch's defaults `β1 = 0.9`, `β2 = 0.999`, `ε = 1e-8`:
///
/// ```text
/// m = β1·m + (1 − β1)·g          v = β2·v + (1 − β2)·g²          (per parameter)
/// w -= lr · (m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + ε)             (t = steps so far)
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Steps taken so far.
    t: i32,
    /// First and second moment estimates, laid out like the parameters.
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Adam {
    /// Adam for `n` parameters with learning rate `lr` and the default betas and epsilon.
    pub fn new(n: usize, lr: f32) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            t: 0,
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &mut [f32], grads: &[f32], ranges: &[Range<usize>]) {
        self.t = self.t.saturating_add(1);
        let (b1, b2) = (self.beta1, self.beta2);
        let correction1 = 1.0 - b1.powi(self.t);
        let correction2 = 1.0 - b2.powi(self.t);
        for r in ranges {
            let state = self.m[r.clone()].iter_mut().zip(&mut self.v[r.clone()]);
            let pairs = params[r.clone()].iter_mut().zip(&grads[r.clone()]);
            for ((w, &g), (m, v)) in pairs.zip(state) {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                let m_hat = *m / correction1;
                let v_hat = *v / correction2;
                *w -= self.lr * m_hat / (v_hat.sqrt() + self.eps);
            }
        }
    }

    fn learning_rate(&self) -> f32 {
        self.lr
    }
}

/// The update rules by name, for settings and the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OptimizerKind {
    /// [`Sgd`], the seed's rule.
    #[default]
    Sgd,
    /// [`Adam`].
    Adam,
}

impl OptimizerKind {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
        }
    }

    /// The learning rate used when none is given: the seed's 0.02 for SGD, PyTorch's 0.001
    /// for Adam.
    pub fn default_lr(self) -> f32 {
        match self {
            OptimizerKind::Sgd => 0.02,
            OptimizerKind::Adam => 0.001,
        }
    }

    /// An optimiser of this kind for `n` parameters.
    pub fn build(self, n: usize, lr: f32) -> Box<dyn Optimizer> {
        match self {
            OptimizerKind::Sgd => Box::new(Sgd { lr }),
            OptimizerKind::Adam => Box::new(Adam::new(n, lr)),
        }
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "sgd" => Ok(OptimizerKind::Sgd),
            "adam" => Ok(OptimizerKind::Adam),
            _ => Err(format!("unknown optimizer {s:?} (expected sgd or adam)")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // one range of indices, not a range turned into a Vec
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
        Sgd { lr: 0.5 }.step(&mut w, &[0.5, -1.0], &[0..2]);
        assert_eq!(w, [0.75, 2.5]);
    }

    #[test]
    fn adam_first_step_moves_every_weight_by_lr_against_the_gradient_sign() {
        // After one step m̂ = g and v̂ = g², so the step is lr · g / (|g| + ε).
        let mut w = [1.0, 1.0, 1.0];
        let mut adam = Adam::new(3, 0.1);
        adam.step(&mut w, &[0.5, -2.0, 0.0], &[0..3]);
        assert!(
            (w[0] - 0.9).abs() < 1e-6 && (w[1] - 1.1).abs() < 1e-6,
            "{w:?}"
        );
        assert_eq!(w[2], 1.0);
    }

    #[test]
    fn adam_matches_a_hand_computed_second_step() {
        // Two steps, g = 1 then g = 0.5, against the formulas evaluated in f64.
        let mut w = [0.0f32];
        let mut adam = Adam::new(1, 0.01);
        adam.step(&mut w, &[1.0], &[0..1]);
        adam.step(&mut w, &[0.5], &[0..1]);
        let (b1, b2, lr) = (0.9f64, 0.999f64, 0.01f64);
        let m = (1.0 - b1) * (b1 * 1.0 + 0.5);
        let v = (1.0 - b2) * (b2 * 1.0 + 0.25);
        let second = lr * (m / (1.0 - b1 * b1)) / ((v / (1.0 - b2 * b2)).sqrt() + 1e-8);
        let expected = -0.01 - second;
        assert!(
            (f64::from(w[0]) - expected).abs() < 1e-7,
            "{} vs {expected}",
            w[0]
        );
    }

    #[test]
    fn only_the_given_ranges_are_updated() {
        let mut w = [1.0; 4];
        Sgd { lr: 1.0 }.step(&mut w, &[1.0; 4], &[0..1, 2..4]);
        assert_eq!(w, [0.0, 1.0, 0.0, 0.0]);
        let mut adam = Adam::new(4, 0.1);
        let mut w = [1.0; 4];
        adam.step(&mut w, &[1.0; 4], &[1..2]);
        assert_eq!(w[0], 1.0);
        assert!((w[1] - 0.9).abs() < 1e-6);
        // Lazy: a later step that skips index 1 leaves it (and its moments) alone.
        adam.step(&mut w, &[1.0; 4], &[0..1]);
        assert!((w[1] - 0.9).abs() < 1e-6 && w[0] < 1.0);
    }

    #[test]
    fn optimizer_names_parse() {
        assert_eq!("adam".parse::<OptimizerKind>(), Ok(OptimizerKind::Adam));
        assert!(
            "rmsprop"
                .parse::<OptimizerKind>()
                .unwrap_err()
                .contains("sgd or adam")
        );
        assert_eq!(OptimizerKind::Adam.default_lr(), 0.001);
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
