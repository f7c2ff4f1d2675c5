//! Finite-difference checks of every analytic gradient, for every architecture.
//!
//! For each parameter `w`, the central difference `(L(w + ε) - L(w - ε)) / 2ε` must match the
//! gradient from `Network::backward`. The model runs in `f32`, so the comparison allows for
//! rounding: `|analytic - numeric| <= ATOL + RTOL · max(|analytic|, |numeric|)`. With ε = 1e-2,
//! truncation error is O(ε²) ≈ 1e-4 and rounding error about 1e-7 / ε ≈ 1e-5; the tolerance
//! leaves a margin above both that a wrong gradient (a missing transpose, a dropped term, a
//! wrong step) exceeds by orders of magnitude, which the broken-cell tests show.
//!
//! Max pooling is not differentiable where two steps tie for a unit's maximum; a perturbation
//! that moves the maximum from one step to another makes the central difference meaningless.
//! Where the check fails with ε, it is tried again with ε/10 and ε/30 (and a tolerance for the
//! larger rounding error that brings), which stay on one side of a near tie; such points are
//! counted, and only a few are allowed, so a wrong gradient, which is wrong almost everywhere,
//! still fails.
//!
//! Dropout is on (p = 0.3) in every check, with its masks held fixed: every forward pass draws
//! them from a fresh copy of the same stream.

use rnn::kernels::matmul_nt;
use rnn::rng::Rng;
use rnn::rnn::{
    Architecture, Batch, Carry, Cell, CellGradient, CellKind, Elman, Gradients, Init, Network,
    Ngrams, Pool, Recurrent, Subwords, TokenGrams, Workspace, loss,
};

const EPS: f32 = 1e-2;
const ATOL: f32 = 2e-4;
const RTOL: f32 = 1e-2;
const DROPOUT: f32 = 0.3;

/// Random weights spread enough that `tanh` is far from linear.
fn randomize(net: &mut Network, seed: u64) {
    let mut rng = Rng::new(seed);
    for w in net.params_mut() {
        *w = rng.symmetric(0.8) as f32;
    }
}

fn network(arch: &Architecture, seed: u64) -> Network {
    let mut net = Network::new(arch, Init::LikeRnn, &mut Rng::new(seed)).unwrap();
    randomize(&mut net, seed);
    net
}

/// Random sequences of the given lengths, with random targets.
fn random_batch(vocab: usize, classes: usize, lengths: &[usize], seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let seqs: Vec<Vec<u32>> = lengths
        .iter()
        .map(|&n| (0..n).map(|_| rng.below(vocab) as u32).collect())
        .collect();
    let targets: Vec<u32> = lengths.iter().map(|_| rng.below(classes) as u32).collect();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    Batch::new(&refs, &targets)
}

/// The dropout masks' stream, the same for every pass of one check.
fn masks() -> Rng {
    Rng::new(77)
}

/// The batch's mean loss, from the initial states `carry` when given (held fixed: they are a
/// constant of the window, as truncated backpropagation through time treats them).
fn mean_loss(net: &Network, batch: &Batch, ws: &mut Workspace, carry: Option<&Carry>) -> f32 {
    match carry {
        None => net.forward(batch, ws, Some(&mut masks())),
        Some(carry) => net.forward_carried(batch, ws, &mut carry.clone(), Some(&mut masks())),
    }
    let tally = loss::tally(ws, net.targets(batch));
    (tally.loss_sum / tally.count as f64) as f32
}

fn analytic_gradient(net: &Network, batch: &Batch, carry: Option<&Carry>) -> Vec<f32> {
    let mut ws = Workspace::default();
    let mut grads = Gradients::new(net);
    mean_loss(net, batch, &mut ws, carry);
    net.backward(batch, &mut ws, &mut grads);
    grads.to_dense()
}

/// Per tensor: the worst `|a - n| / (ATOL + RTOL·max(|a|,|n|))` (a failure is > 1), where it
/// was, and how many points needed the smaller step (see the module's documentation).
struct Worst {
    name: String,
    len: usize,
    ratio: f32,
    at: usize,
    kinks: usize,
}

fn check(net: &mut Network, batch: &Batch) -> Vec<Worst> {
    check_from(net, batch, None)
}

/// [`check`] of a window that starts from the states `carry`.
fn check_from(net: &mut Network, batch: &Batch, carry: Option<&Carry>) -> Vec<Worst> {
    let analytic = analytic_gradient(net, batch, carry);
    let mut ws = Workspace::default();
    let layout = net.layout().clone();
    let mut report = Vec::new();
    for tensor in layout.tensors() {
        let mut worst = Worst {
            name: tensor.name.clone(),
            len: tensor.len(),
            ratio: 0.0,
            at: 0,
            kinks: 0,
        };
        for i in tensor.range() {
            let saved = net.params()[i];
            let mut difference = |eps: f32| {
                net.params_mut()[i] = saved + eps;
                let plus = mean_loss(net, batch, &mut ws, carry);
                net.params_mut()[i] = saved - eps;
                let minus = mean_loss(net, batch, &mut ws, carry);
                net.params_mut()[i] = saved;
                (plus - minus) / (2.0 * eps)
            };
            let a = analytic[i];
            let off = |numeric: f32, atol: f32| {
                (a - numeric).abs() / (atol + RTOL * a.abs().max(numeric.abs()))
            };
            let mut ratio = off(difference(EPS), ATOL);
            for shrink in [10.0, 30.0] {
                if ratio <= 1.0 {
                    break;
                }
                // rounding error grows as the step shrinks
                let small = off(difference(EPS / shrink), shrink * ATOL);
                if small <= 1.0 {
                    worst.kinks += 1;
                    ratio = small;
                }
            }
            if ratio > worst.ratio {
                (worst.ratio, worst.at) = (ratio, i);
            }
        }
        report.push(worst);
    }
    report
}

fn describe(report: &[Worst]) -> String {
    let parts: Vec<String> = report
        .iter()
        .map(|w| format!("{} {:.2} (kinks {})", w.name, w.ratio, w.kinks))
        .collect();
    parts.join(", ")
}

fn assert_passes(arch: &Architecture, report: &[Worst]) {
    let kinks: usize = report.iter().map(|w| w.kinks).sum();
    for w in report {
        assert!(
            w.ratio <= 1.0,
            "{arch}: {} off at index {} ({:.2}x the tolerance); {}",
            w.name,
            w.at,
            w.ratio,
            describe(report)
        );
    }
    // a near tie reaches every parameter upstream of its unit, so up to a quarter of them
    let total: usize = report.iter().map(|w| w.len).sum();
    assert!(
        kinks <= total / 4,
        "{arch}: {kinks} of {total} needed a smaller step; {}",
        describe(report)
    );
}

/// Every architecture of the matrix: cell × layers × directions × pooling × input.
fn architectures(vocab: usize, hidden: usize, classes: usize) -> Vec<Architecture> {
    let mut out = Vec::new();
    for cell in CellKind::ALL {
        for layers in [1, 2] {
            for bidirectional in [false, true] {
                for pool in Pool::ALL {
                    for embed in [None, Some(3)] {
                        // half with the wide path, in few buckets, so that grams share rows
                        let wide = Ngrams { n: 3, buckets: 7 };
                        out.push(Architecture {
                            layers,
                            bidirectional,
                            pool,
                            embed,
                            dropout: DROPOUT,
                            ngrams: (embed.is_some() == bidirectional).then_some(wide),
                            ..Architecture::new(cell, vocab, hidden, classes)
                        });
                    }
                }
            }
        }
    }
    out
}

#[test]
fn every_gradient_of_every_architecture_matches_finite_differences() {
    let archs = architectures(6, 3, 3);
    assert_eq!(archs.len(), 72);
    let mut wide = 0;
    for (i, arch) in archs.iter().enumerate() {
        let mut net = network(arch, i as u64);
        // padded: sequences of different lengths, one of them empty
        let batch = random_batch(6, 3, &[3, 5, 1, 4, 0], 100 + i as u64);
        let report = check(&mut net, &batch);
        if let Some(table) = report.iter().find(|w| w.name == "wide.weight") {
            assert_eq!(table.len, 7 * 3, "B×C");
            wide += 1;
        }
        assert_passes(arch, &report);
    }
    assert_eq!(wide, 36, "half the architectures have a wide path");
}

/// The sequences of [`random_batch`]'s lengths, every token a different one: no token
/// repeats, so the embedding hands the first layer a row a position.
fn distinct_batch(classes: usize, lengths: &[usize], seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let mut next = 0;
    let seqs: Vec<Vec<u32>> = lengths
        .iter()
        .map(|&n| {
            next += n as u32;
            (next - n as u32..next).collect()
        })
        .collect();
    let targets: Vec<u32> = lengths.iter().map(|_| rng.below(classes) as u32).collect();
    let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    Batch::new(&refs, &targets)
}

/// The embedding has two ways to hand over its vectors (see `rnn::rnn::embedding`): a row a
/// position, or, when tokens repeat (as in [`random_batch`]'s of six tokens, which the test
/// above checks), a row a distinct token that the first layer projects once. This checks the
/// first way, with every token distinct.
#[test]
fn every_gradient_over_distinct_tokens_matches_finite_differences() {
    let lengths = [3, 5, 1, 4, 0];
    let vocab: usize = lengths.iter().sum();
    let archs: Vec<Architecture> = architectures(vocab, 3, 3)
        .into_iter()
        .filter(|a| a.embed.is_some())
        .collect();
    assert_eq!(archs.len(), 36);
    for (i, arch) in archs.iter().enumerate() {
        let mut net = network(arch, 500 + i as u64);
        let batch = distinct_batch(3, &lengths, 600 + i as u64);
        let report = check(&mut net, &batch);
        assert!(report.iter().any(|w| w.name == "embedding.weight"));
        assert_passes(arch, &report);
    }
}

#[test]
fn every_gradient_of_a_single_sequence_matches_finite_differences() {
    for cell in CellKind::ALL {
        for seed in 0..3 {
            let arch = Architecture::new(cell, 5, 4, 3);
            let mut net = network(&arch, seed);
            let batch = random_batch(5, 3, &[6], seed + 100);
            let report = check(&mut net, &batch);
            let names: Vec<&str> = report.iter().map(|w| w.name.as_str()).collect();
            assert_eq!(names, tensor_names(cell), "{cell}");
            assert_passes(&arch, &report);
        }
    }
}

#[test]
fn subword_vectors_get_the_gradient_of_finite_differences() {
    // few buckets, so that n-grams share rows; the empty word "<>" has no n-gram at all
    let subwords = Subwords {
        min: 2,
        max: 3,
        buckets: 5,
    };
    let words = ["ab", "", "abc", "ba", "été", "b"];
    for (i, cell) in CellKind::ALL.into_iter().enumerate() {
        let arch = Architecture {
            bidirectional: i != 1,
            pool: Pool::ALL[i % 3],
            embed: Some(3),
            dropout: DROPOUT,
            ngrams: (i == 2).then_some(Ngrams { n: 2, buckets: 7 }),
            subwords: Some(subwords),
            ..Architecture::new(cell, 4, 3, 3)
        };
        let mut net = network(&arch, 10 + i as u64);
        let mut rng = Rng::new(200 + i as u64);
        let lengths = [3, 5, 1, 4, 0];
        let mut sequences = Vec::new();
        let mut grams = Vec::new();
        for &n in &lengths {
            let (mut tokens, mut g) = (Vec::new(), TokenGrams::default());
            for _ in 0..n {
                // a word of the vocabulary (its index below 4) or not (read as <unk>, 0)
                let w = rng.below(words.len());
                tokens.push(if w < 4 { w as u32 } else { 0 });
                g.push(subwords, words[w]);
            }
            sequences.push(tokens);
            grams.push(g);
        }
        let refs: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
        let targets: Vec<u32> = lengths.iter().map(|_| rng.below(3) as u32).collect();
        let mut batch = Batch::new(&refs, &targets);
        batch.attach_grams(&grams.iter().collect::<Vec<_>>());
        let table = net.layout().get("subwords.weight").unwrap().range();
        assert_eq!(table.len(), 5 * 3, "B×E");
        let analytic = analytic_gradient(&net, &batch, None);
        assert!(
            analytic[table].iter().filter(|&&g| g != 0.0).count() >= 6,
            "{arch}: the n-grams' rows learn"
        );
        let report = check(&mut net, &batch);
        assert_passes(&arch, &report);
    }
}

/// Random streams of `rows` × `steps` tokens, each token's target the next one (the last
/// one's a random token): a window of a language model's text.
fn random_window(vocab: usize, rows: usize, steps: usize, seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let text: Vec<Vec<u32>> = (0..rows)
        .map(|_| (0..=steps).map(|_| rng.below(vocab) as u32).collect())
        .collect();
    let inputs: Vec<&[u32]> = text.iter().map(|t| &t[..steps]).collect();
    let targets: Vec<&[u32]> = text.iter().map(|t| &t[1..]).collect();
    Batch::with_step_targets(&inputs, &targets)
}

/// Every language model of the matrix: cell × layers × input, predicting at every
/// step, with dropout.
fn language_models(vocab: usize, hidden: usize) -> Vec<Architecture> {
    let mut out = Vec::new();
    for cell in CellKind::ALL {
        for layers in [1, 2] {
            for embed in [None, Some(3)] {
                out.push(Architecture {
                    layers,
                    embed,
                    dropout: DROPOUT,
                    ..Architecture::language_model(cell, vocab, hidden)
                });
            }
        }
    }
    out
}

#[test]
fn a_step_head_on_a_window_that_carries_a_state_matches_finite_differences() {
    let archs = language_models(6, 3);
    assert_eq!(archs.len(), 12);
    for (i, arch) in archs.iter().enumerate() {
        let mut net = network(arch, 200 + i as u64);
        // the state after a first window of three streams is the second window's start
        let mut carry = Carry::default();
        let first = random_window(6, 3, 4, 300 + i as u64);
        net.forward_only_carried(&first, &mut Workspace::default(), &mut carry);
        assert!(!carry.is_empty());
        let second = random_window(6, 3, 5, 400 + i as u64);
        let report = check_from(&mut net, &second, Some(&carry));
        assert_passes(arch, &report);
        // and from the zero state, both ways too (a tagger reads both ways)
        let both = Architecture {
            bidirectional: true,
            ..arch.clone()
        };
        let mut net = network(&both, 500 + i as u64);
        assert_passes(&both, &check(&mut net, &second));
    }
}

/// Batches of 8 rows or more and 4 steps or more lay the recurrent weights out once per pass
/// (`rnn::Recurrent`, `unroll::LAY_OUT_ROWS`), and their steps' products read that layout,
/// not the weights as they lie: the same check there, for every cell, with 17 units, which
/// leave a partial block of columns (the AVX2 layout's panels are 16 wide).
#[test]
fn a_batch_large_enough_to_lay_out_the_weights_matches_finite_differences() {
    for (i, cell) in CellKind::ALL.into_iter().enumerate() {
        for layers in [1, 2] {
            let arch = Architecture {
                layers,
                dropout: DROPOUT,
                ..Architecture::language_model(cell, 6, 17)
            };
            let mut net = network(&arch, 600 + 10 * i as u64 + layers as u64);
            let mut carry = Carry::default();
            let first = random_window(6, 9, 4, 700 + i as u64);
            net.forward_only_carried(&first, &mut Workspace::default(), &mut carry);
            let second = random_window(6, 9, 5, 800 + i as u64);
            assert_passes(&arch, &check_from(&mut net, &second, Some(&carry)));
        }
        // a classifier's padded batch: its rows end at different steps
        let arch = Architecture::new(cell, 6, 17, 3);
        let mut net = network(&arch, 900 + i as u64);
        let batch = random_batch(6, 3, &[5, 4, 6, 1, 5, 3, 6, 2, 4, 5], 901 + i as u64);
        assert_passes(&arch, &check(&mut net, &batch));
    }
}

#[test]
fn a_window_from_the_carried_state_continues_the_text_exactly() {
    // the losses of two windows, the second starting from the state the first ended in, are
    // those of the same text run as one window
    for arch in language_models(7, 4) {
        let arch = Architecture {
            dropout: 0.0,
            ..arch
        };
        let net = network(&arch, 9);
        let whole = random_window(7, 2, 9, 10);
        let tokens = |b: &Batch| b.tokens().to_vec();
        let step_targets = |b: &Batch| b.step_targets().to_vec();
        // the window of 9 steps, packed by step (2 rows a step), cut after step 4
        let (x, y) = (tokens(&whole), step_targets(&whole));
        let row = |v: &[u32], r: usize, from: usize, to: usize| -> Vec<u32> {
            (from..to).map(|t| v[t * 2 + r]).collect()
        };
        let part = |from: usize, to: usize| {
            let inputs = [row(&x, 0, from, to), row(&x, 1, from, to)];
            let targets = [row(&y, 0, from, to), row(&y, 1, from, to)];
            let inputs: Vec<&[u32]> = inputs.iter().map(Vec::as_slice).collect();
            let targets: Vec<&[u32]> = targets.iter().map(Vec::as_slice).collect();
            Batch::with_step_targets(&inputs, &targets)
        };
        let mut ws = Workspace::default();
        let tally = |ws: &Workspace, batch: &Batch| loss::tally(ws, batch.step_targets());
        net.forward(&whole, &mut ws, None);
        let all = tally(&ws, &whole);
        let mut carry = Carry::default();
        let (first, second) = (part(0, 4), part(4, 9));
        net.forward_carried(&first, &mut ws, &mut carry, None);
        let a = tally(&ws, &first);
        net.forward_only_carried(&second, &mut ws, &mut carry);
        let b = tally(&ws, &second);
        assert_eq!((a.count, b.count, all.count), (8, 10, 18));
        let split = a.loss_sum + b.loss_sum;
        assert!(
            (split - all.loss_sum).abs() < 1e-4 * all.loss_sum,
            "{arch}: {split} against {}",
            all.loss_sum
        );
        // without the carried state, the second window's loss is another
        net.forward_only(&second, &mut ws);
        let c = tally(&ws, &second);
        assert!((c.loss_sum - b.loss_sum).abs() > 1e-3, "{arch}");
    }
}

/// The tensors of each kind of cell's one-layer network, in its layout's order.
fn tensor_names(kind: CellKind) -> Vec<&'static str> {
    let mut names = vec!["rnn.weight_ih_l0", "rnn.bias_ih_l0", "rnn.weight_hh_l0"];
    if kind != CellKind::Rnn {
        names.push("rnn.bias_hh_l0");
    }
    names.extend(["fc.weight", "fc.bias"]);
    names
}

#[test]
fn a_sequence_gets_the_same_gradient_alone_or_in_a_batch() {
    for mut arch in architectures(6, 4, 3) {
        // dropout draws other masks for other batches; this is about batching alone
        arch.dropout = 0.0;
        let net = network(&arch, 11);
        let mut rng = Rng::new(12);
        let seqs: Vec<Vec<u32>> = [4, 9, 2]
            .iter()
            .map(|&n| (0..n).map(|_| rng.below(6) as u32).collect())
            .collect();
        let targets = [0, 2, 1];
        let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
        let together = analytic_gradient(&net, &Batch::new(&refs, &targets), None);
        let mut mean_of_alone = vec![0.0; together.len()];
        for (seq, &target) in refs.iter().zip(&targets) {
            let alone = analytic_gradient(&net, &Batch::new(&[seq], &[target]), None);
            for (m, g) in mean_of_alone.iter_mut().zip(alone) {
                *m += g / 3.0;
            }
        }
        for (i, (a, b)) in together.iter().zip(&mean_of_alone).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 + 1e-5 * b.abs(),
                "{arch}: parameter {i}: {a} in a batch, {b} alone"
            );
        }
    }
}

/// The Elman cell with the backward pass of the most copied numpy tutorial, which carries the
/// gradient to the previous step with `Whh` where `Whhᵀ` belongs:
/// `d_h = Whh @ temp` instead of `d_h = Whh.T @ temp`. Lives only here, to show it is caught.
#[derive(Debug, Clone)]
struct ElmanWithoutTranspose(Elman);

impl Cell for ElmanWithoutTranspose {
    fn hidden(&self) -> usize {
        self.0.hidden()
    }
    fn gates(&self) -> usize {
        self.0.gates()
    }
    fn tensors(&self) -> Vec<(&'static str, Vec<usize>)> {
        self.0.tensors()
    }
    fn folded_tensors(&self) -> Vec<(&'static str, Vec<usize>)> {
        self.0.folded_tensors()
    }
    fn forward_step(
        &self,
        p: &[f32],
        w_hh: Recurrent<'_>,
        pre: &[f32],
        s_prev: Option<&[f32]>,
        s: &mut [f32],
        cache: &mut [f32],
    ) {
        self.0.forward_step(p, w_hh, pre, s_prev, s, cache)
    }
    fn backward_step(
        &self,
        whh: &[f32],
        _w_hh: Recurrent<'_>,
        s_prev: Option<&[f32]>,
        s: &[f32],
        _cache: &[f32],
        ds: &mut [f32],
        da: &mut [f32],
    ) {
        let h = self.hidden();
        let n = ds.len() / h;
        for ((d, &g), &y) in da.iter_mut().zip(ds.iter()).zip(s) {
            *d = (1.0 - y * y) * g;
        }
        if s_prev.is_some() {
            ds.fill(0.0);
            matmul_nt(ds, da, whh, n, h, h); // the bug: Whh·da instead of Whhᵀ·da
        }
    }
    fn backward_weights(&self, p: &[f32], g: &mut CellGradient<'_>, h_prev: &[f32], da: &[f32]) {
        self.0.backward_weights(p, g, h_prev, da)
    }
    fn clone_box(&self) -> Box<dyn Cell> {
        Box::new(self.clone())
    }
}

/// The check of a network of `arch` whose cell at (`broken_layer`, `broken_reverse`) has the
/// transpose bug, and the worst ratio of each tensor.
fn check_with_a_broken_cell(
    arch: &Architecture,
    broken_layer: usize,
    broken_reverse: bool,
) -> Vec<(String, f32)> {
    let right = network(arch, 0);
    let h = arch.hidden;
    let mut wrong = Network::with_cells(arch, |layer, reverse| -> Box<dyn Cell> {
        if (layer, reverse) == (broken_layer, broken_reverse) {
            Box::new(ElmanWithoutTranspose(Elman::new(h)))
        } else {
            Box::new(Elman::new(h))
        }
    })
    .unwrap();
    wrong.params_mut().copy_from_slice(right.params());
    let batch = random_batch(arch.vocab, arch.classes, &[6, 4], 100);
    check(&mut wrong, &batch)
        .into_iter()
        .map(|w| (w.name, w.ratio))
        .collect()
}

fn worst(report: &[(String, f32)], name: &str) -> f32 {
    report.iter().find(|r| r.0 == name).unwrap().1
}

#[test]
fn a_wrong_backward_pass_is_caught() {
    let arch = Architecture {
        dropout: 0.0,
        ..Architecture::new(CellKind::Rnn, 5, 4, 3)
    };
    let report = check_with_a_broken_cell(&arch, 0, false);
    // Every gradient that flows back through time is wrong, by far more than the tolerance...
    for name in ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0"] {
        assert!(
            worst(&report, name) > 10.0,
            "{name} should fail: {report:?}"
        );
    }
    // ...while the output layer, which the bug does not reach, still passes.
    for name in ["fc.weight", "fc.bias"] {
        assert!(
            worst(&report, name) <= 1.0,
            "{name} should pass: {report:?}"
        );
    }
}

#[test]
fn a_wrong_backward_step_of_the_reverse_direction_is_caught() {
    let arch = Architecture {
        bidirectional: true,
        ..Architecture::new(CellKind::Rnn, 5, 4, 3)
    };
    let report = check_with_a_broken_cell(&arch, 0, true);
    for name in [
        "rnn.weight_ih_l0_reverse",
        "rnn.weight_hh_l0_reverse",
        "rnn.bias_ih_l0_reverse",
    ] {
        assert!(
            worst(&report, name) > 10.0,
            "{name} should fail: {report:?}"
        );
    }
    // the forward direction and the head never go through the backward direction's steps
    for name in [
        "rnn.weight_ih_l0",
        "rnn.weight_hh_l0",
        "rnn.bias_ih_l0",
        "fc.weight",
        "fc.bias",
    ] {
        assert!(
            worst(&report, name) <= 1.0,
            "{name} should pass: {report:?}"
        );
    }
}

#[test]
fn a_wrong_backward_step_of_the_second_layer_is_caught() {
    let arch = Architecture {
        layers: 2,
        pool: Pool::Mean,
        ..Architecture::new(CellKind::Rnn, 5, 4, 3)
    };
    let report = check_with_a_broken_cell(&arch, 1, false);
    // the second layer's own tensors, and the first layer's, whose gradient passes through it
    for name in [
        "rnn.weight_hh_l1",
        "rnn.weight_ih_l1",
        "rnn.weight_hh_l0",
        "rnn.weight_ih_l0",
    ] {
        assert!(
            worst(&report, name) > 10.0,
            "{name} should fail: {report:?}"
        );
    }
    for name in ["fc.weight", "fc.bias"] {
        assert!(
            worst(&report, name) <= 1.0,
            "{name} should pass: {report:?}"
        );
    }
}

/// The loss when the top layer's output at token `t` is `y` instead of what the network
/// computes there, with everything that reads it run from there: for a one-layer network
/// reading forwards, the rest of the unroll from `h_t = y`, written out with the cell's own
/// step, then the last state's output layer.
fn loss_from_state(net: &Network, tokens: &[u32], target: u32, t: usize, y: &[f32]) -> f32 {
    let (hidden, classes) = (net.hidden(), net.classes());
    let layout = net.layout();
    let tensor = |name: &str| &net.params()[layout.get(name).unwrap().range()];
    let (w_ih, b_ih) = (tensor("rnn.weight_ih_l0"), tensor("rnn.bias_ih_l0"));
    let cell = net.cell(0, 0);
    let cell_params = &net.params()[layout.get("rnn.weight_hh_l0").unwrap().offset..][..cell
        .tensors()
        .iter()
        .map(|(_, s)| s.iter().product::<usize>())
        .sum()];
    let g = cell.gates() * hidden;
    let mut state = y.to_vec();
    let mut cache = vec![0.0; cell.cache_size()];
    for &token in &tokens[t + 1..] {
        let pre: Vec<f32> = (0..g)
            .map(|i| b_ih[i] + w_ih[token as usize * g + i])
            .collect();
        let mut next = vec![0.0; hidden];
        let w_hh = Recurrent::of(cell, cell_params);
        cell.forward_step(cell_params, w_hh, &pre, Some(&state), &mut next, &mut cache);
        state = next;
    }
    let (why, by) = (tensor("fc.weight"), tensor("fc.bias"));
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
        let arch = Architecture::new(kind, 5, 4, 3);
        let net = network(&arch, 21);
        let mut rng = Rng::new(22);
        let tokens: Vec<u32> = (0..7).map(|_| rng.below(5) as u32).collect();
        let target = 1;
        let flow = net.flow(&tokens, None, target, &mut Workspace::default());
        assert_eq!(flow.gradient_norms.len(), tokens.len());
        for t in 0..tokens.len() {
            let h = &flow.states[t];
            let numeric: Vec<f32> = (0..h.len())
                .map(|i| {
                    let (mut plus, mut minus) = (h.clone(), h.clone());
                    plus[i] += EPS;
                    minus[i] -= EPS;
                    let l = |s: &[f32]| loss_from_state(&net, &tokens, target, t, s);
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
}

#[test]
fn a_batch_of_empty_texts_runs_forward_and_back_in_every_architecture() {
    for arch in architectures(6, 3, 3) {
        let net = network(&arch, 5);
        let batch = Batch::new(&[&[], &[]], &[0, 2]);
        let mut ws = Workspace::default();
        net.forward(&batch, &mut ws, Some(&mut masks()));
        let tally = loss::tally(&ws, batch.targets());
        assert!(tally.loss_sum.is_finite(), "{arch}");
        let mut grads = Gradients::new(&net);
        net.backward(&batch, &mut ws, &mut grads);
        // only the output layer's bias can learn from a text without tokens
        let dense = grads.to_dense();
        let fc_bias = net.layout().get("fc.bias").unwrap().range();
        for (i, g) in dense.iter().enumerate() {
            if !fc_bias.contains(&i) {
                assert_eq!(*g, 0.0, "{arch}: parameter {i}");
            }
        }
        assert!(dense[fc_bias].iter().any(|&g| g != 0.0), "{arch}");
    }
}
