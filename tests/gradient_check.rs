//! Finite-difference checks of every analytic gradient.
//!
//! For each parameter `w`, the central difference `(L(w + ε) - L(w - ε)) / 2ε` must match the
//! gradient from `Network::backward`. The model runs in `f32`, so the comparison allows for
//! rounding: `|analytic - numeric| <= ATOL + RTOL · max(|analytic|, |numeric|)`. With ε = 1e-2,
//! truncation error is O(ε²) ≈ 1e-4 and rounding error about 1e-7 / ε ≈ 1e-5; the tolerance
//! leaves a margin above both that a wrong gradient (a missing transpose, a dropped term, a
//! wrong step) exceeds by orders of magnitude, which `a_wrong_backward_pass_is_caught` shows.

use rnn::kernels::matmul_nt;
use rnn::rng::Rng;
use rnn::rnn::{
    Batch, Cell, CellGradient, CellKind, Elman, Gradients, InputInit, Layout, Network, Workspace,
};

const EPS: f32 = 1e-2;
const ATOL: f32 = 2e-4;
const RTOL: f32 = 1e-2;

/// A random network with weights spread enough that `tanh` is far from linear.
fn random_network(
    kind: CellKind,
    vocab: usize,
    hidden: usize,
    classes: usize,
    seed: u64,
) -> Network {
    let mut rng = Rng::new(seed);
    let mut net = Network::new(kind, vocab, hidden, classes, InputInit::LikeRnn, &mut rng).unwrap();
    for w in net.params_mut() {
        *w = rng.symmetric(0.8) as f32;
    }
    net
}

/// Random sequences of the given lengths, with random targets.
fn random_batch(
    vocab: usize,
    classes: usize,
    lengths: &[usize],
    seed: u64,
) -> (Vec<Vec<u32>>, Vec<u32>) {
    let mut rng = Rng::new(seed);
    let seqs = lengths
        .iter()
        .map(|&n| (0..n).map(|_| rng.below(vocab) as u32).collect())
        .collect();
    let targets = lengths.iter().map(|_| rng.below(classes) as u32).collect();
    (seqs, targets)
}

fn mean_loss(net: &Network, batch: &Batch, ws: &mut Workspace) -> f32 {
    let tally = net.forward(batch, ws);
    (tally.loss_sum / tally.count as f64) as f32
}

fn analytic_gradient(net: &Network, batch: &Batch) -> Vec<f32> {
    let mut ws = Workspace::default();
    let mut grads = Gradients::new(net);
    net.forward(batch, &mut ws);
    net.backward(batch, &mut ws, &mut grads);
    grads.to_dense()
}

/// Returns, for every tensor, the worst `|a - n| / (ATOL + RTOL·max(|a|,|n|))` (a failure is > 1).
fn check(net: &mut Network, batch: &Batch) -> Vec<(&'static str, f32, usize)> {
    let analytic = analytic_gradient(net, batch);
    let mut ws = Workspace::default();
    let layout = net.layout().clone();
    let mut report = Vec::new();
    for tensor in layout.tensors() {
        let mut worst = (0.0f32, 0);
        for i in tensor.range() {
            let saved = net.params()[i];
            net.params_mut()[i] = saved + EPS;
            let plus = mean_loss(net, batch, &mut ws);
            net.params_mut()[i] = saved - EPS;
            let minus = mean_loss(net, batch, &mut ws);
            net.params_mut()[i] = saved;
            let numeric = (plus - minus) / (2.0 * EPS);
            let a = analytic[i];
            let ratio = (a - numeric).abs() / (ATOL + RTOL * a.abs().max(numeric.abs()));
            if ratio > worst.0 {
                worst = (ratio, i);
            }
        }
        report.push((tensor.name, worst.0, worst.1));
    }
    report
}

fn assert_passes(report: &[(&str, f32, usize)]) {
    for &(name, ratio, i) in report {
        assert!(
            ratio <= 1.0,
            "{name}: gradient off at index {i} ({ratio:.2}x the tolerance); {report:?}"
        );
    }
}

/// The tensors of each kind of cell, in its layout's order, then the output layer's.
fn tensor_names(kind: CellKind) -> Vec<&'static str> {
    let mut names = match kind {
        CellKind::Rnn => vec!["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0"],
        CellKind::Gru | CellKind::Lstm => vec![
            "rnn.weight_ih_l0",
            "rnn.weight_hh_l0",
            "rnn.bias_ih_l0",
            "rnn.bias_hh_l0",
        ],
    };
    names.extend(["fc.weight", "fc.bias"]);
    names
}

#[test]
fn every_gradient_matches_finite_differences_for_one_sequence() {
    for kind in CellKind::ALL {
        for seed in 0..3 {
            let mut net = random_network(kind, 5, 4, 3, seed);
            let (seqs, targets) = random_batch(5, 3, &[6], seed + 100);
            let batch = Batch::new(&[&seqs[0]], &targets);
            let report = check(&mut net, &batch);
            let names: Vec<&str> = report.iter().map(|r| r.0).collect();
            assert_eq!(names, tensor_names(kind), "{kind}");
            assert_passes(&report);
        }
    }
}

#[test]
fn every_gradient_matches_finite_differences_for_a_batch_of_different_lengths() {
    for kind in CellKind::ALL {
        let mut net = random_network(kind, 6, 5, 3, 7);
        let (seqs, targets) = random_batch(6, 3, &[3, 7, 1, 5, 7], 8);
        let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
        let batch = Batch::new(&refs, &targets);
        assert_passes(&check(&mut net, &batch));
    }
}

#[test]
fn a_sequence_gets_the_same_gradient_alone_or_in_a_batch() {
    for kind in CellKind::ALL {
        same_gradient_alone_or_in_a_batch(kind);
    }
}

fn same_gradient_alone_or_in_a_batch(kind: CellKind) {
    let net = random_network(kind, 6, 5, 3, 11);
    let (seqs, targets) = random_batch(6, 3, &[4, 9, 2], 12);
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let together = analytic_gradient(&net, &Batch::new(&refs, &targets));
    let mut mean_of_alone = vec![0.0; together.len()];
    for (seq, &target) in refs.iter().zip(&targets) {
        let alone = analytic_gradient(&net, &Batch::new(&[seq], &[target]));
        for (m, g) in mean_of_alone.iter_mut().zip(alone) {
            *m += g / 3.0;
        }
    }
    for (i, (a, b)) in together.iter().zip(&mean_of_alone).enumerate() {
        assert!(
            (a - b).abs() <= 1e-6 + 1e-5 * b.abs(),
            "{kind} parameter {i}: {a} in a batch, {b} alone"
        );
    }
}

/// The Elman cell with the backward pass of the most copied numpy tutorial, which carries the
/// gradient to the previous step with `Whh` where `Whhᵀ` belongs:
/// `d_h = Whh @ temp` instead of `d_h = Whh.T @ temp`. Lives only here, to show it is caught.
#[derive(Debug, Clone)]
struct ElmanWithoutTranspose(Elman);

impl Cell for ElmanWithoutTranspose {
    fn kind(&self) -> CellKind {
        self.0.kind()
    }
    fn vocab(&self) -> usize {
        self.0.vocab()
    }
    fn hidden(&self) -> usize {
        self.0.hidden()
    }
    fn layout(&self) -> Layout {
        self.0.layout()
    }
    fn init(&self, p: &mut [f32], input: f32, rng: &mut Rng) {
        self.0.init(p, input, rng)
    }
    fn forward_step(
        &self,
        p: &[f32],
        x: &[u32],
        s_prev: Option<&[f32]>,
        s: &mut [f32],
        cache: &mut [f32],
    ) {
        self.0.forward_step(p, x, s_prev, s, cache)
    }
    fn backward_step(
        &self,
        p: &[f32],
        _x: &[u32],
        s_prev: Option<&[f32]>,
        s: &[f32],
        _cache: &[f32],
        ds: &mut [f32],
        da: &mut [f32],
    ) {
        let (h, v) = (self.hidden(), self.vocab());
        let n = ds.len() / h;
        let whh = &p[h * v..][..h * h];
        for ((d, &g), &y) in da.iter_mut().zip(ds.iter()).zip(s) {
            *d = (1.0 - y * y) * g;
        }
        if s_prev.is_some() {
            ds.fill(0.0);
            matmul_nt(ds, da, whh, n, h, h); // the bug: Whh·da instead of Whhᵀ·da
        }
    }
    fn backward_weights(
        &self,
        p: &[f32],
        g: &mut CellGradient<'_>,
        x: &[u32],
        h_prev: &[f32],
        da: &[f32],
    ) {
        self.0.backward_weights(p, g, x, h_prev, da)
    }
    fn clone_box(&self) -> Box<dyn Cell> {
        Box::new(self.clone())
    }
}

#[test]
fn a_wrong_backward_pass_is_caught() {
    let (seqs, targets) = random_batch(5, 3, &[6], 100);
    let batch = Batch::new(&[&seqs[0]], &targets);
    let right = random_network(CellKind::Rnn, 5, 4, 3, 0);
    let mut wrong =
        Network::with_cell(Box::new(ElmanWithoutTranspose(Elman::new(5, 4))), 3).unwrap();
    wrong.params_mut().copy_from_slice(right.params());

    let report = check(&mut wrong, &batch);
    let worst = |name: &str| report.iter().find(|r| r.0 == name).unwrap().1;
    // Every gradient that flows back through time is wrong, by far more than the tolerance...
    for name in ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0"] {
        assert!(
            worst(name) > 10.0,
            "{name} should fail the check: {report:?}"
        );
    }
    // ...while the output layer, which the bug does not reach, still passes.
    for name in ["fc.weight", "fc.bias"] {
        assert!(worst(name) <= 1.0, "{name} should pass: {report:?}");
    }
}

/// The loss when the hidden state after step `t` (0-based) is `h`, with the rest of the
/// sequence run from there: the unroll written out with the cell's own step.
fn loss_from_state(net: &Network, tokens: &[u32], target: u32, t: usize, h: &[f32]) -> f32 {
    let (hidden, classes) = (net.hidden(), net.classes());
    let cell_params = &net.params()[..net.layout().get("fc.weight").unwrap().offset];
    let mut state = h.to_vec();
    let mut cache = vec![0.0; net.cell().cache_size()];
    for &token in &tokens[t + 1..] {
        let mut next = vec![0.0; hidden];
        net.cell()
            .forward_step(cell_params, &[token], Some(&state), &mut next, &mut cache);
        state = next;
    }
    let head = net.layout().get("fc.weight").unwrap().offset;
    let (why, by) = net.params()[head..].split_at(classes * hidden);
    let logits: Vec<f32> = (0..classes)
        .map(|c| {
            by[c]
                + why[c * hidden..][..hidden]
                    .iter()
                    .zip(&state)
                    .map(|(w, x)| w * x)
                    .sum::<f32>()
        })
        .collect();
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = logits.iter().map(|y| (y - m).exp()).sum::<f32>().ln();
    log_sum - (logits[target as usize] - m)
}

/// For the cells whose whole state is `h_t` (an LSTM's also holds `c_t`, which the flow does
/// not keep).
#[test]
fn the_gradient_reaching_each_hidden_state_matches_finite_differences() {
    for kind in [CellKind::Rnn, CellKind::Gru] {
        gradient_reaching_each_hidden_state(kind);
    }
}

fn gradient_reaching_each_hidden_state(kind: CellKind) {
    let net = random_network(kind, 5, 4, 3, 21);
    let (seqs, targets) = random_batch(5, 3, &[7], 22);
    let (tokens, target) = (&seqs[0], targets[0]);
    let flow = net.flow(tokens, target, &mut Workspace::default());
    assert_eq!(flow.gradient_norms.len(), tokens.len());
    for t in 0..tokens.len() {
        let h = &flow.states[t];
        let numeric: Vec<f32> = (0..h.len())
            .map(|i| {
                let (mut plus, mut minus) = (h.clone(), h.clone());
                plus[i] += EPS;
                minus[i] -= EPS;
                let l = |s: &[f32]| loss_from_state(&net, tokens, target, t, s);
                (l(&plus) - l(&minus)) / (2.0 * EPS)
            })
            .collect();
        let norm = numeric.iter().map(|g| g * g).sum::<f32>().sqrt();
        let analytic = flow.gradient_norms[t];
        assert!(
            (analytic - norm).abs() <= ATOL + RTOL * norm,
            "{kind} step {t}: ‖∂L/∂h‖ {analytic} by backprop, {norm} by finite differences"
        );
    }
    // The last step's state is the one the output reads: its gradient is never zero here.
    assert!(flow.gradient_norms[tokens.len() - 1] > 0.0);
}
