//! PyTorch compatibility, against reference numbers PyTorch computed
//! (`tests/fixtures/pytorch/make_fixtures.py`, run by hand; CI needs no PyTorch):
//! a model file written by `rnn train` gives in PyTorch the probabilities it gives here, and a
//! model made in PyTorch (with both of its biases non-zero) loads here and gives PyTorch's; for
//! `nn.RNN`, `nn.GRU` and `nn.LSTM` in format 1 files (one layer, one direction), and for four
//! architectures of format 2 (layers, directions, an embedding, pooling, subword vectors as an
//! `nn.EmbeddingBag`), where one SGD step from the same start also gives PyTorch's weights; and
//! for language models (`rnn lm`), whose
//! next-character probabilities, and one step of truncated backpropagation through time from a
//! carried state, are PyTorch's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rnn::model::{Kind, Model};
use rnn::optim::{Optimizer, Sgd};
use rnn::rnn::{Batch, Carry, Gradients, Network, Workspace};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pytorch")
        .join(name)
}

/// Our probabilities for every text of the reference file, against PyTorch's.
fn compare(model_file: &str, reference: &str) {
    let model = Model::load(&fixture(model_file)).unwrap();
    let text = std::fs::read_to_string(fixture(reference)).unwrap();
    let expected: HashMap<String, Vec<f64>> = serde_json::from_str(&text).unwrap();
    assert!(expected.len() >= 5, "the fixture lists the texts");
    for (text, torch_probs) in &expected {
        let ours = &model.predict(&[text]).unwrap()[0].probs;
        assert_eq!(ours.len(), torch_probs.len());
        for (a, b) in ours.iter().zip(torch_probs) {
            assert!(
                (f64::from(*a) - b).abs() < 1e-5,
                "{text:?}: ours {ours:?}, PyTorch {torch_probs:?}"
            );
        }
    }
}

#[test]
fn a_model_trained_here_gives_pytorchs_probabilities() {
    compare("ours.safetensors", "ours.torch.json");
}

#[test]
fn a_model_made_in_pytorch_loads_and_gives_its_probabilities() {
    compare("torch_made.safetensors", "torch_made.json");
}

#[test]
fn a_gru_trained_here_gives_pytorchs_probabilities() {
    compare("ours_gru.safetensors", "ours_gru.torch.json");
}

#[test]
fn a_gru_made_in_pytorch_loads_and_gives_its_probabilities() {
    compare("torch_made_gru.safetensors", "torch_made_gru.json");
}

#[test]
fn an_lstm_trained_here_gives_pytorchs_probabilities() {
    compare("ours_lstm.safetensors", "ours_lstm.torch.json");
}

#[test]
fn an_lstm_made_in_pytorch_loads_and_gives_its_probabilities() {
    compare("torch_made_lstm.safetensors", "torch_made_lstm.json");
}

#[test]
fn the_fixtures_hold_the_cell_they_are_named_for() {
    for (file, cell) in [
        ("ours.safetensors", "rnn"),
        ("ours_gru.safetensors", "gru"),
        ("torch_made_gru.safetensors", "gru"),
        ("ours_lstm.safetensors", "lstm"),
        ("torch_made_lstm.safetensors", "lstm"),
    ] {
        let model = Model::load(&fixture(file)).unwrap();
        assert_eq!(model.network.arch().cell.name(), cell, "{file}");
    }
}

/// The format 2 architectures of the fixtures (see `make_fixtures.py`): its ARCHITECTURES and
/// SUBWORD_ARCHITECTURES.
const ARCHITECTURES: [&str; 4] = [
    "lstm_2x_bi_max_embed",
    "gru_2x_mean",
    "rnn_bi_last",
    "lstm_bi_max_subwords",
];

#[test]
fn every_architecture_trained_here_gives_pytorchs_probabilities() {
    for name in ARCHITECTURES {
        compare(
            &format!("v2_{name}.safetensors"),
            &format!("v2_{name}.torch.json"),
        );
    }
}

#[test]
fn every_architecture_made_in_pytorch_loads_and_gives_its_probabilities() {
    for name in ARCHITECTURES {
        compare(
            &format!("v2_torch_made_{name}.safetensors"),
            &format!("v2_torch_made_{name}.json"),
        );
    }
}

#[test]
fn the_fixtures_hold_the_architectures_they_are_named_for() {
    for (name, shape) in [
        (
            "lstm_2x_bi_max_embed",
            "2-layer bidirectional lstm, H = 6, embedding 5, max pooling",
        ),
        ("gru_2x_mean", "2-layer gru, H = 6, mean pooling"),
        ("rnn_bi_last", "bidirectional rnn, H = 6"),
        (
            "lstm_bi_max_subwords",
            "bidirectional lstm, H = 6, embedding 5, max pooling, subwords of 2-4 characters in \
             40 buckets",
        ),
    ] {
        for file in [
            format!("v2_{name}.safetensors"),
            format!("v2_torch_made_{name}.safetensors"),
        ] {
            let model = Model::load(&fixture(&file)).unwrap();
            assert_eq!(model.network.arch().to_string(), shape, "{file}");
        }
    }
}

#[derive(serde::Deserialize)]
struct Step {
    batch: Vec<(String, String)>,
    lr: f32,
    clip: f32,
}

#[test]
fn one_sgd_step_gives_pytorchs_weights() {
    let step: Step =
        serde_json::from_str(&std::fs::read_to_string(fixture("v2_step.json")).unwrap()).unwrap();
    for name in ARCHITECTURES {
        let mut model =
            Model::load(&fixture(&format!("v2_torch_made_{name}.safetensors"))).unwrap();
        let torch =
            Model::load(&fixture(&format!("v2_torch_made_{name}.step.safetensors"))).unwrap();
        let encoded: Vec<_> = step
            .batch
            .iter()
            .map(|(t, _)| model.encode_with_grams(t))
            .collect();
        let seqs: Vec<&[u32]> = encoded.iter().map(|(ids, _)| ids.as_slice()).collect();
        let targets: Vec<u32> = step
            .batch
            .iter()
            .map(|(_, l)| model.label_index(l).unwrap())
            .collect();
        let mut batch = Batch::new(&seqs, &targets);
        if model.network.arch().subwords.is_some() {
            // every token's character n-grams, as training gives them
            batch.attach_grams(&encoded.iter().map(|(_, g)| g).collect::<Vec<_>>());
        }
        let (mut ws, mut grads) = (Workspace::default(), Gradients::new(&model.network));
        model.network.forward(&batch, &mut ws, None);
        model.network.backward(&batch, &mut ws, &mut grads);
        let before = model.network.params().to_vec();
        Sgd { lr: step.lr }.step(model.network.params_mut(), &mut grads, step.clip);
        let moved = model
            .network
            .params()
            .iter()
            .zip(&before)
            .filter(|(a, b)| a != b)
            .count();
        assert!(
            moved > model.network.params().len() / 2,
            "{name}: the step moved {moved} weights"
        );
        for t in model.network.layout().tensors() {
            let (ours, theirs) = (
                &model.network.params()[t.range()],
                &torch.network.params()[t.range()],
            );
            for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
                assert!(
                    (a - b).abs() < 1e-5,
                    "{name}: {} element {i}: ours {a}, PyTorch {b}",
                    t.name
                );
            }
        }
    }
}

/// The language models of `make_fixtures.py`'s LM_ARCHITECTURES.
const LANGUAGE_MODELS: [&str; 3] = ["lstm_2x", "gru_embed", "rnn"];

#[derive(serde::Deserialize)]
struct NextTokens {
    /// The probability of each next character of the text.
    next: Vec<f64>,
    /// The distribution after its last character.
    last: Vec<f64>,
}

/// Our next-character probabilities for every text of the reference file, against PyTorch's.
fn compare_language_model(model_file: &str, reference: &str) {
    let model = Model::load_as(&fixture(model_file), Kind::LanguageModel).unwrap();
    let text = std::fs::read_to_string(fixture(reference)).unwrap();
    let expected: HashMap<String, NextTokens> = serde_json::from_str(&text).unwrap();
    assert!(expected.len() >= 5, "the fixture lists the texts");
    let v = model.vocab.len();
    for (text, torch) in &expected {
        let ids = model.encode(text);
        // every character predicts the next; the last one's target is arbitrary
        let mut targets = ids[1..].to_vec();
        targets.push(0);
        let batch = Batch::with_step_targets(&[&ids], &[&targets]);
        let mut ws = Workspace::default();
        model.network.forward_only(&batch, &mut ws);
        assert_eq!(torch.next.len(), ids.len() - 1);
        for (t, &p) in torch.next.iter().enumerate() {
            let ours = ws.probabilities(t, v)[ids[t + 1] as usize];
            assert!(
                (f64::from(ours) - p).abs() < 1e-5,
                "{text:?} step {t}: ours {ours}, PyTorch {p}"
            );
        }
        let last = ws.probabilities(ids.len() - 1, v);
        for (a, b) in last.iter().zip(&torch.last) {
            assert!((f64::from(*a) - b).abs() < 1e-5, "{text:?}: ours {last:?}");
        }
    }
}

#[test]
fn a_language_model_trained_here_gives_pytorchs_probabilities() {
    for name in LANGUAGE_MODELS {
        compare_language_model(
            &format!("lm_{name}.safetensors"),
            &format!("lm_{name}.torch.json"),
        );
    }
}

#[test]
fn a_language_model_made_in_pytorch_loads_and_gives_its_probabilities() {
    for name in LANGUAGE_MODELS {
        compare_language_model(
            &format!("lm_torch_made_{name}.safetensors"),
            &format!("lm_torch_made_{name}.json"),
        );
    }
}

#[derive(serde::Deserialize)]
struct LmStep {
    /// The streams, read side by side.
    windows: Vec<String>,
    /// The first window is steps `0..split[0]`, the second `split[0]..split[1]`.
    split: [usize; 2],
    lr: f32,
    clip: f32,
}

/// Window `from..to` of the streams: their inputs, each with the next token as its target.
fn window(streams: &[Vec<u32>], from: usize, to: usize) -> Batch {
    let inputs: Vec<&[u32]> = streams.iter().map(|s| &s[from..to]).collect();
    let targets: Vec<&[u32]> = streams.iter().map(|s| &s[from + 1..to + 1]).collect();
    Batch::with_step_targets(&inputs, &targets)
}

#[test]
fn one_truncated_bptt_step_from_a_carried_state_gives_pytorchs_weights() {
    let step: LmStep =
        serde_json::from_str(&std::fs::read_to_string(fixture("lm_step.json")).unwrap()).unwrap();
    for name in LANGUAGE_MODELS {
        let lm = |file: String| Model::load_as(&fixture(&file), Kind::LanguageModel).unwrap();
        let mut model = lm(format!("lm_torch_made_{name}.safetensors"));
        let torch = lm(format!("lm_torch_made_{name}.step.safetensors"));
        let streams: Vec<Vec<u32>> = step.windows.iter().map(|t| model.encode(t)).collect();
        let [cut, end] = step.split;
        let net: &mut Network = &mut model.network;
        let (mut ws, mut grads, mut carry) =
            (Workspace::default(), Gradients::new(net), Carry::default());
        net.forward_only_carried(&window(&streams, 0, cut), &mut ws, &mut carry);
        let second = window(&streams, cut, end);
        net.forward_carried(&second, &mut ws, &mut carry, None);
        net.backward(&second, &mut ws, &mut grads);
        let before = net.params().to_vec();
        Sgd { lr: step.lr }.step(net.params_mut(), &mut grads, step.clip);
        let moved = net
            .params()
            .iter()
            .zip(&before)
            .filter(|(a, b)| a != b)
            .count();
        assert!(
            moved > net.params().len() / 3,
            "{name}: the step moved {moved} weights"
        );
        for t in net.layout().tensors() {
            let (ours, theirs) = (&net.params()[t.range()], &torch.network.params()[t.range()]);
            for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
                assert!(
                    (a - b).abs() < 1e-5,
                    "{name}: {} element {i}: ours {a}, PyTorch {b}",
                    t.name
                );
            }
        }
    }
}
