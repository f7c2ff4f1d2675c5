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
use crate::kernels::{self, AlignedVec};
use crate::rnn::{Gradients, LOOK_AHEAD, Part, Piece, Product};

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

/// What an optimiser carries from step to step, to be written into a checkpoint and read
/// back: the steps taken and its buffers (laid out like the parameters), by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptimizerState {
    pub steps: u64,
    pub buffers: Vec<(String, Vec<f32>)>,
}

/// The update of a stretch of the parameters in one step: each gradient element clipped, its
/// parameter updated, the element reset to zero. An [`Optimizer`] is one over all the
/// parameters; [`Optimizer::split_at`] gives two, one each side of a point, that may run at
/// once on two threads.
pub trait Update: Send {
    /// Updates the parameters `w`, at `range` of the stretch, from their gradient `g`: clip,
    /// update, reset `g` to zero.
    fn update(&mut self, w: &mut [f32], g: &mut [f32], range: Range<usize>, clip: f32);

    /// As [`Update::update`], for a gradient kept as the factors of a product (see
    /// [`Gradients`]). By default the product is formed, then used as any gradient.
    fn update_product(&mut self, w: &mut [f32], product: &Product, range: Range<usize>, clip: f32) {
        let ((a, b), (n, k, m)) = (product.factors(), product.shape());
        let mut g = vec![0.0; k * m];
        kernels::matmul_tn(&mut g, a, b, n, k, m);
        self.update(w, &mut g, range, clip);
    }

    /// Asks the CPU to fetch what the update keeps for the parameters at `range` (a hint
    /// that changes no value; see [`Gradients::for_each_part_ahead`]).
    fn prefetch(&self, _range: Range<usize>) {}

    /// Changes the learning rate (a schedule does, between epochs; the wide path's table has
    /// its own).
    fn set_learning_rate(&mut self, lr: f32);
}

/// One part of a gradient applied by `update` to `params` (the stretch `update` covers), with
/// the part `ahead` asked for (see [`Gradients::for_each_part_ahead`]); at learning rate
/// `wide` instead of `lr` when given (a part of the wide path's table).
fn apply(
    update: &mut (impl Update + ?Sized),
    params: &mut [f32],
    (range, part, ahead): (Range<usize>, Part<'_>, Option<Range<usize>>),
    clip: f32,
    (wide, lr): (Option<f32>, f32),
) {
    if let Some(ahead) = ahead {
        kernels::prefetch(&params[ahead.clone()]);
        update.prefetch(ahead);
    }
    if let Some(wide_lr) = wide {
        update.set_learning_rate(wide_lr);
    }
    let w = &mut params[range.clone()];
    match part {
        Part::Dense(g) => update.update(w, g, range, clip),
        Part::Product(product) => update.update_product(w, product, range, clip),
    }
    if wide.is_some() {
        update.set_learning_rate(lr);
    }
}

/// `range` moved `by` to the left: a range of the parameters as a range of a stretch that
/// starts at `by`.
fn shifted(range: Range<usize>, by: usize) -> Range<usize> {
    range.start - by..range.end - by
}

/// The learning rates of a step: `lr`, and `wide_lr` (when given) for the wide path's table,
/// the parameters before `wide_end`.
#[derive(Clone, Copy)]
struct Rates {
    lr: f32,
    wide_lr: Option<f32>,
    wide_end: usize,
}

impl Rates {
    /// The wide path's rate, for parameters at `range` of the wide path's table.
    fn wide(&self, range: &Range<usize>) -> Option<f32> {
        self.wide_lr.filter(|_| range.start < self.wide_end)
    }
}

/// Applies `pieces` (of the parameters from `start` on, which `params` and `update` hold) by
/// `update`, each asking for the memory of the table's row [`LOOK_AHEAD`] pieces on; returns
/// the seconds it took.
fn update_pieces(
    update: &mut dyn Update,
    params: &mut [f32],
    mut pieces: Vec<Piece<'_>>,
    start: usize,
    rates: Rates,
    clip: f32,
) -> f64 {
    let began = std::time::Instant::now();
    for i in 0..pieces.len() {
        let ahead = pieces
            .get(i + LOOK_AHEAD)
            .filter(|p| p.row)
            .map(|p| shifted(p.range.clone(), start));
        let piece = &mut pieces[i];
        let part = std::mem::replace(&mut piece.part, Part::Dense(&mut []));
        let wide = rates.wide(&piece.range);
        let range = shifted(piece.range.clone(), start);
        apply(update, params, (range, part, ahead), clip, (wide, rates.lr));
    }
    began.elapsed().as_secs_f64()
}

/// An update rule: changes the parameters given their (clipped) gradient, and keeps what it
/// carries from step to step.
pub trait Optimizer: Update {
    /// One update of `params` from a batch's gradient: each gradient element is clipped to
    /// `[-clip, clip]`, its parameter updated, and the element reset to zero for the next
    /// batch, all in one pass over the parts of the gradient the batch has (see
    /// [`Gradients`]); then the gradient forgets its tokens.
    fn step(&mut self, params: &mut [f32], grads: &mut Gradients, clip: f32) {
        self.step_with_wide_rate(params, grads, clip, None);
    }

    /// [`Optimizer::step`], with the wide path's table (see [`crate::rnn::Ngrams`]), when
    /// `wide_lr` is given, at that learning rate instead of the optimiser's.
    ///
    /// On a thread of a rayon pool of two threads or more, the update is cut in two at
    /// [`Gradients::split_point`], and the two halves run at once on two threads
    /// ([`Optimizer::split_at`], [`Gradients::pieces_apart`]); the times they took move the
    /// next step's cut ([`Gradients::rebalance`]). Every element's update reads and writes
    /// that element alone, so wherever the cut falls, the result is the same to the bit.
    fn step_with_wide_rate(
        &mut self,
        params: &mut [f32],
        grads: &mut Gradients,
        clip: f32,
        wide_lr: Option<f32>,
    ) {
        self.begin_step();
        let (lr, wide_end) = (self.learning_rate(), grads.wide_end());
        let rates = Rates {
            lr,
            wide_lr,
            wide_end,
        };
        let apart = rayon::current_thread_index().is_some() && rayon::current_num_threads() > 1;
        if let Some((at, [mut first, mut second])) = apart
            .then(|| grads.split_point())
            .and_then(|at| Some((at, self.split_at(at)?)))
        {
            let (first_params, second_params) = params.split_at_mut(at);
            let [before, after] = grads.pieces_apart(at);
            let times = rayon::join(
                || update_pieces(&mut *first, first_params, before, 0, rates, clip),
                || update_pieces(&mut *second, second_params, after, at, rates, clip),
            );
            grads.rebalance(times.0, times.1);
        } else {
            grads.for_each_part_ahead(|range, part, ahead| {
                let wide = rates.wide(&range);
                apply(self, params, (range, part, ahead), clip, (wide, lr));
            });
        }
        grads.clear();
    }

    /// This step's update as two: one of the parameters before `at`, and one of those from
    /// `at` on (their ranges counted from `at`), both at the optimiser's learning rate.
    /// `None` (the default) if the optimiser cannot be split: its steps then run on one
    /// thread.
    fn split_at(&mut self, _at: usize) -> Option<[Box<dyn Update + '_>; 2]> {
        None
    }

    /// Starts a step (Adam counts them).
    fn begin_step(&mut self) {}

    /// The learning rate.
    fn learning_rate(&self) -> f32;

    /// Everything it carries from step to step.
    fn save(&self) -> OptimizerState {
        OptimizerState::default()
    }

    /// [`Optimizer::save`] into `state`, reusing its buffers where they fit (a run saves its
    /// optimiser at the end of every epoch, and Adam's moments are twice the parameters:
    /// copied into the buffers of the epoch before, they cost no allocation and no page
    /// faults).
    fn save_into(&self, state: &mut OptimizerState) {
        *state = self.save();
    }

    /// Takes back what [`Optimizer::save`] gave.
    ///
    /// # Errors
    /// [`Error::Config`] if the state is another optimiser's, or of another size.
    fn restore(&mut self, state: &OptimizerState) -> Result<()> {
        match state.buffers.is_empty() {
            true => Ok(()),
            false => Err(Error::Config(
                "the checkpoint's optimiser state is not this optimiser's".into(),
            )),
        }
    }
}

/// Makes `state` the optimiser state of `steps` steps and these named `buffers`, copying into
/// its buffers when they have the names and sizes (see [`Optimizer::save_into`]).
fn copy_state(state: &mut OptimizerState, steps: u64, buffers: &[(&str, &[f32])]) {
    let fits = state.buffers.len() == buffers.len()
        && state
            .buffers
            .iter()
            .zip(buffers)
            .all(|((name, kept), (given, values))| name == given && kept.len() == values.len());
    if !fits {
        state.buffers = buffers
            .iter()
            .map(|(name, values)| (name.to_string(), values.to_vec()))
            .collect();
    } else {
        for ((_, kept), (_, values)) in state.buffers.iter_mut().zip(buffers) {
            kept.copy_from_slice(values);
        }
    }
    state.steps = steps;
}

/// Plain stochastic gradient descent: `w -= lr · dw`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    pub lr: f32,
}

impl Update for Sgd {
    fn update(&mut self, w: &mut [f32], g: &mut [f32], _range: Range<usize>, clip: f32) {
        kernels::sgd_step(w, g, self.lr, clip);
    }

    /// Forms the product tile by tile in registers and applies it, without storing it.
    fn update_product(&mut self, w: &mut [f32], product: &Product, _: Range<usize>, clip: f32) {
        let ((a, b), (n, k, m)) = (product.factors(), product.shape());
        kernels::sgd_product_step(w, a, b, n, k, m, self.lr, clip);
    }

    fn set_learning_rate(&mut self, lr: f32) {
        self.lr = lr;
    }
}

impl Optimizer for Sgd {
    fn split_at(&mut self, _at: usize) -> Option<[Box<dyn Update + '_>; 2]> {
        Some([Box::new(*self), Box::new(*self)])
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
    m: AlignedVec,
    v: AlignedVec,
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
            m: AlignedVec::zeros(n),
            v: AlignedVec::zeros(n),
        }
    }

    /// The constants of the current step at learning rate `lr` (the clipping limit comes with
    /// each update).
    fn rule(&self, lr: f32) -> kernels::AdamRule {
        kernels::AdamRule {
            lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            correction1: 1.0 - self.beta1.powi(self.t),
            correction2: 1.0 - self.beta2.powi(self.t),
            clip: f32::INFINITY,
        }
    }
}

/// Adam's update of a stretch of the parameters: the step's constants and the stretch's
/// moments.
struct AdamStretch<'a> {
    rule: kernels::AdamRule,
    m: &'a mut [f32],
    v: &'a mut [f32],
}

impl Update for AdamStretch<'_> {
    fn update(&mut self, w: &mut [f32], g: &mut [f32], range: Range<usize>, clip: f32) {
        let rule = kernels::AdamRule { clip, ..self.rule };
        let (m, v) = (&mut self.m[range.clone()], &mut self.v[range]);
        kernels::adam_step(w, g, m, v, &rule);
    }

    fn prefetch(&self, range: Range<usize>) {
        kernels::prefetch(&self.m[range.clone()]);
        kernels::prefetch(&self.v[range]);
    }

    fn set_learning_rate(&mut self, lr: f32) {
        self.rule.lr = lr;
    }
}

impl Update for Adam {
    fn update(&mut self, w: &mut [f32], g: &mut [f32], range: Range<usize>, clip: f32) {
        let rule = self.rule(self.lr);
        let (m, v) = (&mut self.m[..], &mut self.v[..]);
        AdamStretch { rule, m, v }.update(w, g, range, clip);
    }

    fn prefetch(&self, range: Range<usize>) {
        kernels::prefetch(&self.m[range.clone()]);
        kernels::prefetch(&self.v[range]);
    }

    fn set_learning_rate(&mut self, lr: f32) {
        self.lr = lr;
    }
}

impl Optimizer for Adam {
    fn begin_step(&mut self) {
        self.t = self.t.saturating_add(1);
    }

    fn split_at(&mut self, at: usize) -> Option<[Box<dyn Update + '_>; 2]> {
        let rule = self.rule(self.lr);
        let (m0, m1) = self.m.split_at_mut(at);
        let (v0, v1) = self.v.split_at_mut(at);
        Some([
            Box::new(AdamStretch { rule, m: m0, v: v0 }),
            Box::new(AdamStretch { rule, m: m1, v: v1 }),
        ])
    }

    fn learning_rate(&self) -> f32 {
        self.lr
    }

    fn save(&self) -> OptimizerState {
        OptimizerState {
            steps: self.t as u64,
            buffers: vec![
                ("adam.m".to_string(), self.m.to_vec()),
                ("adam.v".to_string(), self.v.to_vec()),
            ],
        }
    }

    fn save_into(&self, state: &mut OptimizerState) {
        copy_state(
            state,
            self.t as u64,
            &[("adam.m", &self.m), ("adam.v", &self.v)],
        );
    }

    fn restore(&mut self, state: &OptimizerState) -> Result<()> {
        if state.buffers.is_empty() && state.steps == 0 {
            return Ok(()); // a run that has not started
        }
        let fits = |name: &str, i: usize| {
            state
                .buffers
                .get(i)
                .is_some_and(|(n, b)| n == name && b.len() == self.m.len())
        };
        if !(fits("adam.m", 0) && fits("adam.v", 1)) || state.buffers.len() != 2 {
            return Err(Error::Config(
                "the checkpoint's optimiser state is not Adam's for this network".into(),
            ));
        }
        self.t = i32::try_from(state.steps).unwrap_or(i32::MAX);
        self.m.copy_from_slice(&state.buffers[0].1);
        self.v.copy_from_slice(&state.buffers[1].1);
        Ok(())
    }
}

/// Adagrad (Duchi, Hazan & Singer, 2011), as PyTorch's `torch.optim.Adagrad` with its defaults
/// (`ε = 1e-10`, no decay), and as min-char-rnn updates:
///
/// ```text
/// G += g²            w -= lr · g / (√G + ε)                           (per parameter)
/// ```
///
/// Every parameter's step shrinks as its squared gradients add up: rare tokens' columns keep
/// large steps, frequent ones get small steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Adagrad {
    pub lr: f32,
    pub eps: f32,
    /// Steps taken so far.
    t: u64,
    /// The sum of squared gradients, laid out like the parameters.
    sum: AlignedVec,
}

impl Adagrad {
    /// Adagrad for `n` parameters with learning rate `lr`.
    pub fn new(n: usize, lr: f32) -> Self {
        Adagrad {
            lr,
            eps: 1e-10,
            t: 0,
            sum: AlignedVec::zeros(n),
        }
    }
}

/// Adagrad's update of a stretch of the parameters: its rate and the stretch's sums.
struct AdagradStretch<'a> {
    lr: f32,
    eps: f32,
    sum: &'a mut [f32],
}

impl Update for AdagradStretch<'_> {
    fn update(&mut self, w: &mut [f32], g: &mut [f32], range: Range<usize>, clip: f32) {
        kernels::adagrad_step(w, g, &mut self.sum[range], self.lr, self.eps, clip);
    }

    fn prefetch(&self, range: Range<usize>) {
        kernels::prefetch(&self.sum[range]);
    }

    fn set_learning_rate(&mut self, lr: f32) {
        self.lr = lr;
    }
}

impl Update for Adagrad {
    fn update(&mut self, w: &mut [f32], g: &mut [f32], range: Range<usize>, clip: f32) {
        let (lr, eps) = (self.lr, self.eps);
        AdagradStretch {
            lr,
            eps,
            sum: &mut self.sum,
        }
        .update(w, g, range, clip);
    }

    fn prefetch(&self, range: Range<usize>) {
        kernels::prefetch(&self.sum[range]);
    }

    fn set_learning_rate(&mut self, lr: f32) {
        self.lr = lr;
    }
}

impl Optimizer for Adagrad {
    fn begin_step(&mut self) {
        self.t += 1;
    }

    fn split_at(&mut self, at: usize) -> Option<[Box<dyn Update + '_>; 2]> {
        let (lr, eps) = (self.lr, self.eps);
        let (s0, s1) = self.sum.split_at_mut(at);
        Some([
            Box::new(AdagradStretch { lr, eps, sum: s0 }),
            Box::new(AdagradStretch { lr, eps, sum: s1 }),
        ])
    }

    fn learning_rate(&self) -> f32 {
        self.lr
    }

    fn save(&self) -> OptimizerState {
        OptimizerState {
            steps: self.t,
            buffers: vec![("adagrad.sum".to_string(), self.sum.to_vec())],
        }
    }

    fn save_into(&self, state: &mut OptimizerState) {
        copy_state(state, self.t, &[("adagrad.sum", &self.sum)]);
    }

    fn restore(&mut self, state: &OptimizerState) -> Result<()> {
        if state.buffers.is_empty() && state.steps == 0 {
            return Ok(()); // a run that has not started
        }
        match state.buffers.as_slice() {
            [(name, sum)] if name == "adagrad.sum" && sum.len() == self.sum.len() => {
                self.t = state.steps;
                self.sum.copy_from_slice(sum);
                Ok(())
            }
            _ => Err(Error::Config(
                "the checkpoint's optimiser state is not Adagrad's for this network".into(),
            )),
        }
    }
}

/// The update rules by name, for settings and the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// [`Sgd`], the seed's rule.
    #[default]
    Sgd,
    /// [`Adam`].
    Adam,
    /// [`Adagrad`].
    Adagrad,
}

impl OptimizerKind {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::Adagrad => "adagrad",
        }
    }

    /// The learning rate used when none is given: the seed's 0.02 for SGD, PyTorch's 0.001
    /// for Adam, min-char-rnn's 0.1 for Adagrad.
    pub fn default_lr(self) -> f32 {
        match self {
            OptimizerKind::Sgd => 0.02,
            OptimizerKind::Adam => 0.001,
            OptimizerKind::Adagrad => 0.1,
        }
    }

    /// An optimiser of this kind for `n` parameters.
    pub fn build(self, n: usize, lr: f32) -> Box<dyn Optimizer> {
        match self {
            OptimizerKind::Sgd => Box::new(Sgd { lr }),
            OptimizerKind::Adam => Box::new(Adam::new(n, lr)),
            OptimizerKind::Adagrad => Box::new(Adagrad::new(n, lr)),
        }
    }
}

impl std::fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for OptimizerKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "sgd" => Ok(OptimizerKind::Sgd),
            "adam" => Ok(OptimizerKind::Adam),
            "adagrad" => Ok(OptimizerKind::Adagrad),
            _ => Err(format!(
                "unknown optimizer {s:?} (expected sgd, adam or adagrad)"
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // one range of indices, not a range turned into a Vec
mod tests {
    use super::*;

    #[test]
    fn saving_into_a_state_gives_what_saving_gives_and_reuses_its_buffers() {
        let mut w = vec![0.5; 6];
        let mut g = vec![0.3, -0.2, 0.1, 0.0, 0.7, -0.4];
        let optimizers: Vec<Box<dyn Optimizer>> = vec![
            Box::new(Adam::new(6, 0.01)),
            Box::new(Adagrad::new(6, 0.1)),
            Box::new(Sgd { lr: 0.1 }),
        ];
        for mut opt in optimizers {
            // a state of another optimiser's shape is replaced, one of its own is copied into
            let mut state = OptimizerState {
                steps: 9,
                buffers: vec![("other".into(), vec![1.0; 3])],
            };
            for _ in 0..2 {
                step_on(&mut *opt, &mut w, &mut g.clone(), &[0..6], 1.0);
                opt.save_into(&mut state);
                assert_eq!(state, opt.save());
            }
            let kept: Vec<*const f32> = state.buffers.iter().map(|(_, b)| b.as_ptr()).collect();
            step_on(&mut *opt, &mut w, &mut g, &[0..6], 1.0);
            opt.save_into(&mut state);
            assert_eq!(state, opt.save());
            let now: Vec<*const f32> = state.buffers.iter().map(|(_, b)| b.as_ptr()).collect();
            assert_eq!(now, kept, "the same buffers, written again");
        }
    }

    /// One step over the given ranges of a plain gradient buffer.
    fn step_on(
        opt: &mut dyn Optimizer,
        w: &mut [f32],
        g: &mut [f32],
        ranges: &[Range<usize>],
        clip: f32,
    ) {
        opt.begin_step();
        for r in ranges {
            opt.update(&mut w[r.clone()], &mut g[r.clone()], r.clone(), clip);
        }
    }

    #[test]
    fn adagrad_matches_hand_computed_steps_and_its_state_round_trips() {
        let mut opt = Adagrad::new(2, 0.1);
        let mut w = [1.0, -1.0];
        // first step: G = g², so each weight moves by lr against the gradient's sign
        step_on(&mut opt, &mut w, &mut [2.0, -0.5], &[0..2], 5.0);
        assert!(
            (w[0] - 0.9).abs() < 1e-6 && (w[1] + 0.9).abs() < 1e-6,
            "{w:?}"
        );
        // second step on the first weight: G = 4 + 1, w -= 0.1 · 1/√5; the second, clipped
        // to 5: G = 0.25 + 25, w -= 0.1 · (-5)/√25.25
        let mut g = [1.0, -9.0];
        step_on(&mut opt, &mut w, &mut g, &[0..2], 5.0);
        assert_eq!(g, [0.0, 0.0], "the gradient is reset");
        assert!((w[0] - (0.9 - 0.1 / 5f32.sqrt())).abs() < 1e-6, "{w:?}");
        assert!(
            (w[1] - (-0.9 + 0.5 / 25.25f32.sqrt())).abs() < 1e-6,
            "{w:?}"
        );
        let mut other = Adagrad::new(2, 0.1);
        other.restore(&opt.save()).unwrap();
        assert_eq!(other, opt);
        assert!(Adam::new(2, 0.1).restore(&opt.save()).is_err());
    }

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
        let mut g = [0.5, -3.0];
        step_on(&mut Sgd { lr: 0.5 }, &mut w, &mut g, &[0..2], 1.0);
        assert_eq!(w, [0.75, 2.5], "the second gradient is clipped to -1");
        assert_eq!(g, [0.0, 0.0], "and the gradient is reset");
    }

    #[test]
    fn adam_first_step_moves_every_weight_by_lr_against_the_gradient_sign() {
        // After one step m̂ = g and v̂ = g², so the step is lr · g / (|g| + ε).
        let mut w = [1.0, 1.0, 1.0];
        let mut adam = Adam::new(3, 0.1);
        step_on(&mut adam, &mut w, &mut [0.5, -2.0, 0.0], &[0..3], 10.0);
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
        step_on(&mut adam, &mut w, &mut [1.0], &[0..1], 10.0);
        step_on(&mut adam, &mut w, &mut [0.5], &[0..1], 10.0);
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
        let mut g = [1.0; 4];
        step_on(&mut Sgd { lr: 1.0 }, &mut w, &mut g, &[0..1, 2..4], 5.0);
        assert_eq!(w, [0.0, 1.0, 0.0, 0.0]);
        assert_eq!(
            g,
            [0.0, 1.0, 0.0, 0.0],
            "only the updated gradients are reset"
        );
        let mut adam = Adam::new(4, 0.1);
        let mut w = [1.0; 4];
        step_on(&mut adam, &mut w, &mut [1.0; 4], &[1..2], 5.0);
        assert_eq!(w[0], 1.0);
        assert!((w[1] - 0.9).abs() < 1e-6);
        // Lazy: a later step that skips index 1 leaves it (and its moments) alone.
        step_on(&mut adam, &mut w, &mut [1.0; 4], &[0..1], 5.0);
        assert!((w[1] - 0.9).abs() < 1e-6 && w[0] < 1.0);
    }

    #[test]
    fn a_gradient_kept_as_a_product_steps_as_the_formed_gradient_does() {
        use crate::rng::Rng;
        use crate::rnn::{Architecture, Batch, CellKind, Init, Network, Workspace};
        let mut rng = Rng::new(4);
        let arch = Architecture::new(CellKind::Rnn, 6, 8, 2);
        let net = Network::new(&arch, Init::LikeRnn, &mut rng).unwrap();
        let batch = Batch::new(&[&[1, 2, 3, 4], &[5, 0]], &[0, 1]);
        let mut ws = Workspace::default();
        net.forward(&batch, &mut ws, None);
        let mut kept = Gradients::new(&net);
        net.backward(&batch, &mut ws, &mut kept);
        let mut kinds = Vec::new();
        kept.for_each_part(|_, part| kinds.push(matches!(part, Part::Product(_))));
        assert_eq!(
            kinds.iter().filter(|&&k| k).count(),
            1,
            "Whh's gradient is kept"
        );
        for kind in [
            OptimizerKind::Sgd,
            OptimizerKind::Adam,
            OptimizerKind::Adagrad,
        ] {
            // absorbing into a zero gradient forms the product
            let (mut fused, mut formed) = (kept.clone(), Gradients::new(&net));
            formed.absorb(&mut kept.clone());
            let mut kinds = Vec::new();
            formed.for_each_part(|_, part| kinds.push(matches!(part, Part::Product(_))));
            assert!(kinds.iter().all(|&k| !k));
            let (mut w1, mut w2) = (net.params().to_vec(), net.params().to_vec());
            // a clip of 0.05 clips some of Whh's gradient
            kind.build(w1.len(), 0.1).step(&mut w1, &mut fused, 0.05);
            kind.build(w2.len(), 0.1).step(&mut w2, &mut formed, 0.05);
            assert_eq!(w1, w2, "{kind:?}");
            assert_ne!(w1, net.params(), "{kind:?}");
        }
    }

    #[test]
    fn a_step_split_across_two_threads_gives_the_same_bits() {
        use crate::rng::Rng;
        use crate::rnn::{Architecture, Batch, CellKind, Init, Network, Ngrams, Workspace};
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        assert_eq!(
            pool.install(rayon::current_num_threads),
            2,
            "a split needs two"
        );
        // with an embedding and the wide path; with one-hot input (a table a direction)
        let archs = [
            Architecture {
                embed: Some(4),
                bidirectional: true,
                ngrams: Some(Ngrams { n: 2, buckets: 64 }),
                ..Architecture::new(CellKind::Lstm, 20, 5, 3)
            },
            Architecture {
                bidirectional: true,
                ..Architecture::new(CellKind::Rnn, 20, 6, 3)
            },
        ];
        for arch in &archs {
            let net = Network::new(arch, Init::LikeRnn, &mut Rng::new(5)).unwrap();
            let batch = Batch::new(&[&[1, 2, 3, 4, 5], &[6, 7, 1], &[19, 18, 2]], &[0, 1, 2]);
            let mut ws = Workspace::default();
            net.forward(&batch, &mut ws, None);
            let mut grads = Gradients::new(&net);
            net.backward(&batch, &mut ws, &mut grads);
            let mut products = 0;
            grads
                .for_each_part(|_, part| products += usize::from(matches!(part, Part::Product(_))));
            assert!(
                products > 0,
                "{arch}: kept products, which no cut may go through"
            );
            let n = net.params().len();
            // the cut anywhere from the first parameter to past the last
            let mut cuts = Vec::new();
            for share in [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0] {
                let mut grads = grads.clone();
                grads.set_balance(share);
                cuts.push(grads.split_point());
            }
            assert!(cuts.windows(2).all(|w| w[0] <= w[1]), "{cuts:?}");
            assert_eq!((cuts[0], cuts[7]), (0, n), "{arch}");
            assert!(
                cuts.iter().filter(|&&c| 0 < c && c < n).count() >= 4,
                "{cuts:?}"
            );
            for kind in [
                OptimizerKind::Sgd,
                OptimizerKind::Adam,
                OptimizerKind::Adagrad,
            ] {
                for wide_lr in [None, Some(0.3)] {
                    let (mut w1, mut alone) = (net.params().to_vec(), kind.build(n, 0.01));
                    for _ in 0..2 {
                        alone.step_with_wide_rate(&mut w1, &mut grads.clone(), 0.05, wide_lr);
                    }
                    assert_ne!(w1, net.params(), "{kind:?}");
                    for share in [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0] {
                        let (mut w2, mut apart) = (net.params().to_vec(), kind.build(n, 0.01));
                        for _ in 0..2 {
                            let mut g = grads.clone();
                            g.set_balance(share);
                            pool.install(|| {
                                apart.step_with_wide_rate(&mut w2, &mut g, 0.05, wide_lr)
                            });
                        }
                        let bits = |w: &[f32]| w.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        let what =
                            format!("{arch}, {kind:?}, wide rate {wide_lr:?}, cut at {share}");
                        assert_eq!(bits(&w1), bits(&w2), "{what}");
                        assert_eq!(alone.save(), apart.save(), "{what}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_split_step_moves_its_cut_toward_the_slower_half() {
        use crate::rng::Rng;
        use crate::rnn::{Architecture, CellKind, Init, Network};
        let arch = Architecture::new(CellKind::Lstm, 20, 5, 3);
        let net = Network::new(&arch, Init::LikeRnn, &mut Rng::new(5)).unwrap();
        let mut grads = Gradients::new(&net);
        assert_eq!(grads.balance(), 0.5);
        // the second half took three times the first: the first takes more
        grads.rebalance(1.0, 3.0);
        assert!((grads.balance() - 0.625).abs() < 1e-12);
        grads.rebalance(2.0, 2.0);
        assert!((grads.balance() - 0.625).abs() < 1e-12);
        for _ in 0..20 {
            grads.rebalance(5.0, 0.0);
        }
        assert_eq!(grads.balance(), 0.02);
    }

    #[test]
    fn optimizer_names_parse() {
        assert_eq!("adam".parse::<OptimizerKind>(), Ok(OptimizerKind::Adam));
        assert_eq!(
            "adagrad".parse::<OptimizerKind>(),
            Ok(OptimizerKind::Adagrad)
        );
        assert!(
            "rmsprop"
                .parse::<OptimizerKind>()
                .unwrap_err()
                .contains("sgd, adam or adagrad")
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
