//! PyTorch compatibility, against reference numbers PyTorch computed
//! (`tests/fixtures/pytorch/make_fixtures.py`, run by hand; CI needs no PyTorch):
//! a model file written by `rnn train` gives in PyTorch the probabilities it gives here, and a
//! model made in PyTorch (with both of its biases non-zero) loads here and gives PyTorch's; for
//! `nn.RNN`, `nn.GRU` and `nn.LSTM`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rnn::model::Model;

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
        let ours = &model.predict(&[text])[0].probs;
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
