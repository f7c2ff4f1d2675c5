//! One training step of a tiny network, with every number written out: the worked example of
//! `docs/bptt.md`, printed by `cargo run --example walkthrough`.
//!
//! The model has V = 3 words (`not`, `good`, `bad`), H = 2 hidden units and C = 2 classes
//! (`negative`, `positive`), with weights chosen by hand. It reads "not good" (label
//! `negative`), computes the loss, and backpropagates through time by the formulas of the
//! doc, in plain arithmetic, one line per quantity. Then it checks every gradient and the
//! updated weights against what the library computes ([`Network::backward`] and
//! [`Sgd`]), so the page can never show numbers the code does not produce.

// The loops index by `i` and `j` as the formulas in the doc do; iterators would hide that.
#![allow(clippy::needless_range_loop)]

use crate::optim::{Optimizer, Sgd};
use crate::rnn::{Architecture, Batch, CellKind, Gradients, Network, Workspace, loss};

const H: usize = 2;
const WORDS: [&str; 3] = ["not", "good", "bad"];
const LABELS: [&str; 2] = ["negative", "positive"];
/// The sentence, as word indices, and its label.
const SENTENCE: [usize; 2] = [0, 1];
const TARGET: usize = 0;
const LR: f32 = 0.5;
const CLIP: f32 = 0.5;

/// The hand-picked weights, row by row as the doc writes them.
struct Weights {
    wxh: [[f32; 3]; H],
    whh: [[f32; H]; H],
    bh: [f32; H],
    why: [[f32; H]; 2],
    by: [f32; 2],
}

const START: Weights = Weights {
    wxh: [[0.5, -0.3, 0.8], [0.2, 0.4, -0.6]],
    whh: [[0.1, -0.2], [0.3, 0.05]],
    bh: [0.0, 0.1],
    why: [[0.7, -0.5], [-0.4, 0.6]],
    by: [0.0, 0.05],
};

fn vector(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x:>9.5}")).collect();
    format!("[{}]", parts.join(","))
}

fn matrix(m: &[[f32; H]]) -> String {
    let rows: Vec<String> = m.iter().map(|r| vector(r)).collect();
    format!("[{}]", rows.join(", "))
}

/// The network of [`START`], in the library's own types.
fn network() -> Network {
    let arch = Architecture::new(CellKind::Rnn, 3, H, 2);
    let mut net = Network::zeros(&arch).expect("sizes are positive");
    let layout = net.layout().clone();
    let params = net.params_mut();
    let put = |params: &mut [f32], name: &str, at: (usize, usize), value: f32| {
        let t = layout.get(name).expect("a tensor of the Elman network");
        let cols = t.shape.get(1).copied().unwrap_or(1);
        let index = if t.column_major {
            at.1 * t.shape[0] + at.0
        } else {
            at.0 * cols + at.1
        };
        params[t.offset + index] = value;
    };
    for i in 0..H {
        for v in 0..3 {
            put(params, "rnn.weight_ih_l0", (i, v), START.wxh[i][v]);
        }
        for j in 0..H {
            put(params, "rnn.weight_hh_l0", (i, j), START.whh[i][j]);
        }
        put(params, "rnn.bias_ih_l0", (i, 0), START.bh[i]);
    }
    for c in 0..2 {
        for j in 0..H {
            put(params, "fc.weight", (c, j), START.why[c][j]);
        }
        put(params, "fc.bias", (c, 0), START.by[c]);
    }
    net
}

/// The walkthrough as text, with every check against the library done.
///
/// # Panics
/// If a hand-computed number differs from the library's by more than 1e-6: the doc and the
/// code would disagree.
pub fn report() -> String {
    let w = &START;
    let mut out = String::new();
    let o = &mut out;
    let line = |o: &mut String, text: String| {
        o.push_str(&text);
        o.push('\n');
    };
    line(
        o,
        format!("words: {WORDS:?}  labels: {LABELS:?}  sentence: \"not good\" -> negative"),
    );
    line(
        o,
        format!("Wxh = [{}, {}]", vector(&w.wxh[0]), vector(&w.wxh[1])),
    );
    line(
        o,
        format!("Whh = {}   bh = {}", matrix(&w.whh), vector(&w.bh)),
    );
    line(
        o,
        format!("Why = {}   by = {}", matrix(&w.why), vector(&w.by)),
    );
    line(o, String::new());

    // forward
    line(o, "forward".to_string());
    let mut hs: Vec<[f32; H]> = vec![[0.0; H]]; // h_0 = 0
    for (t, &word) in SENTENCE.iter().enumerate() {
        let prev = hs[t];
        let mut a = [0.0; H];
        for i in 0..H {
            a[i] = w.wxh[i][word] + (0..H).map(|j| w.whh[i][j] * prev[j]).sum::<f32>() + w.bh[i];
        }
        let h = a.map(f32::tanh);
        line(
            o,
            format!(
                "  x_{} = onehot({:?}):  Wxh·x_{} = column {word} = {}",
                t + 1,
                WORDS[word],
                t + 1,
                vector(&[w.wxh[0][word], w.wxh[1][word]])
            ),
        );
        line(
            o,
            format!(
                "  a_{} = Wxh·x_{} + Whh·h_{} + bh = {}",
                t + 1,
                t + 1,
                t,
                vector(&a)
            ),
        );
        line(
            o,
            format!(
                "  h_{} = tanh(a_{})           = {}",
                t + 1,
                t + 1,
                vector(&h)
            ),
        );
        hs.push(h);
    }
    let h_t = hs[SENTENCE.len()];
    let y: Vec<f32> = (0..2)
        .map(|c| (0..H).map(|j| w.why[c][j] * h_t[j]).sum::<f32>() + w.by[c])
        .collect();
    let m = y[0].max(y[1]);
    let e: Vec<f32> = y.iter().map(|v| (v - m).exp()).collect();
    let p: Vec<f32> = e.iter().map(|v| v / (e[0] + e[1])).collect();
    let loss = -p[TARGET].ln();
    line(o, format!("  y = Why·h_2 + by = {}", vector(&y)));
    line(o, format!("  p = softmax(y)   = {}", vector(&p)));
    line(o, format!("  L = -ln p[negative] = {loss:.5}"));
    line(o, String::new());

    // backward
    line(o, "backward".to_string());
    let mut dy = p.clone();
    dy[TARGET] -= 1.0;
    line(o, format!("  dy = p - onehot(negative) = {}", vector(&dy)));
    let mut dwhy = [[0.0; H]; 2];
    for c in 0..2 {
        for j in 0..H {
            dwhy[c][j] = dy[c] * h_t[j];
        }
    }
    let dby = [dy[0], dy[1]];
    line(
        o,
        format!("  dWhy = dy·h_2ᵀ = {}   dby = dy", matrix(&dwhy)),
    );
    let mut dh = [0.0; H];
    for j in 0..H {
        dh[j] = (0..2).map(|c| w.why[c][j] * dy[c]).sum();
    }
    line(o, format!("  dh_2 = Whyᵀ·dy = {}", vector(&dh)));
    let (mut dwxh, mut dwhh, mut dbh) = ([[0.0f32; 3]; H], [[0.0f32; H]; H], [0.0f32; H]);
    for t in (1..=SENTENCE.len()).rev() {
        let (h, prev, word) = (hs[t], hs[t - 1], SENTENCE[t - 1]);
        let da: [f32; H] = std::array::from_fn(|i| (1.0 - h[i] * h[i]) * dh[i]);
        line(
            o,
            format!("  da_{t} = (1 - h_{t}²) ⊙ dh_{t} = {}", vector(&da)),
        );
        for i in 0..H {
            dbh[i] += da[i];
            dwxh[i][word] += da[i];
            for j in 0..H {
                dwhh[i][j] += da[i] * prev[j];
            }
        }
        line(
            o,
            format!(
                "    dbh += da_{t};  column {word} ({:?}) of dWxh += da_{t};  dWhh += da_{t}·h_{}ᵀ",
                WORDS[word],
                t - 1
            ),
        );
        dh = std::array::from_fn(|j| (0..H).map(|i| w.whh[i][j] * da[i]).sum());
        if t > 1 {
            line(
                o,
                format!("    dh_{} = Whhᵀ·da_{t} = {}", t - 1, vector(&dh)),
            );
        }
    }
    line(
        o,
        format!(
            "  dWxh = [{}, {}]   (column 2, \"bad\", is untouched)",
            vector(&dwxh[0]),
            vector(&dwxh[1])
        ),
    );
    line(
        o,
        format!("  dWhh = {}   dbh = {}", matrix(&dwhh), vector(&dbh)),
    );
    line(o, String::new());

    // check against the library, then update
    let mut net = network();
    let batch = Batch::new(&[&[0, 1]], &[TARGET as u32]);
    let mut ws = Workspace::default();
    net.forward(&batch, &mut ws, None);
    let tally = loss::tally(&ws, batch.targets());
    let mut grads = Gradients::new(&net);
    net.backward(&batch, &mut ws, &mut grads);
    let dense = grads.to_dense();
    // the hand-computed gradients laid out as the library lays out its parameters
    let mut expected = Vec::new();
    for tensor in net.layout().tensors() {
        match tensor.name.as_str() {
            "rnn.weight_ih_l0" => {
                for word in 0..3 {
                    expected.extend((0..H).map(|i| dwxh[i][word])); // column by column
                }
            }
            "rnn.weight_hh_l0" => expected.extend(dwhh.iter().flatten()),
            "rnn.bias_ih_l0" => expected.extend(dbh),
            "fc.weight" => expected.extend(dwhy.iter().flatten()),
            "fc.bias" => expected.extend(dby),
            other => unreachable!("the Elman network has no tensor {other}"),
        }
    }
    assert_eq!(dense.len(), expected.len());
    for (i, (a, b)) in dense.iter().zip(&expected).enumerate() {
        assert!(
            (a - b).abs() <= 1e-6,
            "gradient {i}: the library says {a}, the walkthrough {b}"
        );
    }
    assert!((tally.loss_sum as f32 - loss).abs() <= 1e-6);
    let clipped = expected.iter().filter(|g| g.abs() > CLIP).count();
    line(
        o,
        format!(
            "update: clip every gradient to [-{CLIP}, {CLIP}] ({clipped} clipped), then w -= {LR}·dw"
        ),
    );
    Sgd { lr: LR }.step(net.params_mut(), &mut grads, CLIP);
    net.forward(&batch, &mut ws, None);
    let after = loss::tally(&ws, batch.targets()).loss_sum as f32;
    let params = net.params();
    let tensor = |name: &str| &params[net.layout().get(name).expect("a tensor").range()];
    let col = |v: usize| &tensor("rnn.weight_ih_l0")[v * H..][..H];
    line(
        o,
        format!(
            "  Wxh columns: not {}  good {}  bad {}",
            vector(col(0)),
            vector(col(1)),
            vector(col(2))
        ),
    );
    line(
        o,
        format!(
            "  Whh = [{}, {}]   bh = {}",
            vector(&tensor("rnn.weight_hh_l0")[..H]),
            vector(&tensor("rnn.weight_hh_l0")[H..]),
            vector(tensor("rnn.bias_ih_l0"))
        ),
    );
    line(
        o,
        format!(
            "  Why = [{}, {}]   by = {}",
            vector(&tensor("fc.weight")[..H]),
            vector(&tensor("fc.weight")[H..]),
            vector(tensor("fc.bias"))
        ),
    );
    line(o, format!("  L before {loss:.5}, after {after:.5}"));
    // the library's update, checked against the rule by hand
    let start = network();
    for (i, ((new, old), g)) in params.iter().zip(start.params()).zip(&expected).enumerate() {
        let by_hand = old - LR * g.clamp(-CLIP, CLIP);
        assert!(
            (new - by_hand).abs() <= 1e-6,
            "weight {i}: {new} after the step, {by_hand} by hand"
        );
    }
    out
}
