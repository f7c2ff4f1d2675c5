//! Model files: a round trip keeps every prediction, PyTorch's layout loads, and every kind
//! of broken file is rejected with a message that says what is wrong.

use std::collections::HashMap;
use std::path::Path;

use rnn::data::Tokens;
use rnn::error::Error;
use rnn::model::{Model, ModelConfig};
use rnn::rnn::CellKind;
use safetensors::tensor::{Dtype, TensorView};

const DATA: [(&str, &str); 4] = [
    ("good food", "pos"),
    ("bad food", "neg"),
    ("not good", "neg"),
    ("not bad at all", "pos"),
];

fn model(tokens: Tokens) -> Model {
    model_of(CellKind::Rnn, tokens)
}

fn model_of(cell: CellKind, tokens: Tokens) -> Model {
    let config = ModelConfig {
        cell,
        hidden: 5,
        tokens,
        max_len: Some(7),
        ..ModelConfig::seed()
    };
    Model::for_data(DATA, &config).unwrap()
}

#[test]
fn a_saved_model_loads_with_the_same_weights_and_predictions() {
    let dir = tempfile::tempdir().unwrap();
    for tokens in [Tokens::Word, Tokens::Char] {
        let original = model(tokens);
        let path = dir.path().join(format!("m-{tokens}.safetensors"));
        original.save(&path).unwrap();
        let loaded = Model::load(&path).unwrap();
        assert_eq!(loaded.network.params(), original.network.params());
        assert_eq!(loaded.vocab, original.vocab);
        assert_eq!(loaded.labels, ["neg", "pos"]);
        assert_eq!((loaded.tokens, loaded.max_len), (tokens, Some(7)));
        let texts = ["good", "not bad at all", "never seen"];
        assert_eq!(loaded.predict(&texts), original.predict(&texts));
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no temporary files left"
    );
}

#[test]
fn gru_and_lstm_models_round_trip_with_pytorchs_shapes_and_both_biases() {
    let dir = tempfile::tempdir().unwrap();
    for (cell, gates) in [(CellKind::Gru, 3), (CellKind::Lstm, 4)] {
        let original = model_of(cell, Tokens::Word);
        let path = dir.path().join(format!("{cell}.safetensors"));
        original.save(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let (v, h) = (original.vocab.len(), 5);
        let shapes: HashMap<String, Vec<usize>> = file
            .tensors()
            .into_iter()
            .map(|(n, t)| (n, t.shape().to_vec()))
            .collect();
        let expected: HashMap<String, Vec<usize>> = [
            ("rnn.weight_ih_l0", vec![gates * h, v]),
            ("rnn.weight_hh_l0", vec![gates * h, h]),
            ("rnn.bias_ih_l0", vec![gates * h]),
            ("rnn.bias_hh_l0", vec![gates * h]),
            ("fc.weight", vec![2, h]),
            ("fc.bias", vec![2]),
        ]
        .into_iter()
        .map(|(n, s)| (n.to_string(), s))
        .collect();
        assert_eq!(shapes, expected, "{cell}");
        // the hidden-side bias is a real parameter of a gated cell, not zeros
        let bias_hh = file.tensor("rnn.bias_hh_l0").unwrap();
        assert!(bias_hh.data().iter().any(|&b| b != 0), "{cell}");
        let loaded = Model::load(&path).unwrap();
        assert_eq!(loaded.network.arch().cell, cell);
        assert_eq!(loaded.network.params(), original.network.params());
        let texts = ["good", "not bad at all", "never seen"];
        assert_eq!(loaded.predict(&texts), original.predict(&texts));
    }
}

/// An alteration of a good file.
type Change = Box<dyn Fn(&mut Parts)>;

/// The tensors and metadata of a saved model, to be altered and written back.
struct Parts {
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    meta: HashMap<String, String>,
}

fn parts(model: &Model, dir: &Path) -> Parts {
    let path = dir.join("good.safetensors");
    model.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let tensors = file
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    Parts {
        tensors,
        meta: header.metadata().clone().unwrap(),
    }
}

fn write(parts: &Parts, path: &Path) {
    let views: Vec<(&str, TensorView<'_>)> = parts
        .tensors
        .iter()
        .map(|(n, d, s, b)| (n.as_str(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(
        path,
        safetensors::serialize(views, Some(parts.meta.clone())).unwrap(),
    )
    .unwrap();
}

fn load_error(parts: &Parts, dir: &Path) -> String {
    let path = dir.join("bad.safetensors");
    write(parts, &path);
    match Model::load(&path) {
        Err(e @ Error::Model { .. }) => e.to_string(),
        other => panic!("expected a model error, got {other:?}"),
    }
}

fn tensor<'a>(parts: &'a mut Parts, name: &str) -> &'a mut (String, Dtype, Vec<usize>, Vec<u8>) {
    parts.tensors.iter_mut().find(|t| t.0 == name).unwrap()
}

#[test]
fn pytorchs_two_biases_are_added_on_loading() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(Tokens::Word);
    let mut p = parts(&m, dir.path());
    let h = m.network.hidden();
    let ones: Vec<u8> = (0..h).flat_map(|_| 1.0f32.to_le_bytes()).collect();
    tensor(&mut p, "rnn.bias_hh_l0").3 = ones;
    let path = dir.path().join("torch.safetensors");
    write(&p, &path);
    let loaded = Model::load(&path).unwrap();
    let range = m.network.layout().get("rnn.bias_ih_l0").unwrap().range();
    for (a, b) in loaded.network.params()[range.clone()]
        .iter()
        .zip(&m.network.params()[range])
    {
        assert_eq!(*a, b + 1.0);
    }
}

#[test]
fn broken_files_are_rejected_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(Tokens::Word);
    let good = parts(&m, dir.path());
    let error = |change: &dyn Fn(&mut Parts)| {
        let mut p = Parts {
            tensors: good.tensors.clone(),
            meta: good.meta.clone(),
        };
        change(&mut p);
        load_error(&p, dir.path())
    };
    let v = m.vocab.len();
    let shape_message = format!(
        "tensor rnn.weight_ih_l0 has shape [5, {v}], expected [5, {}] (H = 5 from rnn.weight_hh_l0, V = {} tokens",
        v + 1,
        v + 1
    );
    let cases: Vec<(&str, Change)> = vec![
        (
            &shape_message,
            Box::new(|p: &mut Parts| {
                let mut vocab: Vec<String> = serde_json::from_str(&p.meta["vocab"]).unwrap();
                vocab.push("extra".into());
                p.meta
                    .insert("vocab".into(), serde_json::to_string(&vocab).unwrap());
            }),
        ),
        (
            "no \"labels\" in the metadata: not a model written by `rnn train`",
            Box::new(|p: &mut Parts| {
                p.meta.remove("labels");
            }),
        ),
        (
            "format_version \"9\" is not supported",
            Box::new(|p: &mut Parts| {
                p.meta.insert("format_version".into(), "9".into());
            }),
        ),
        (
            "metadata: unknown cell \"transformer\"",
            Box::new(|p: &mut Parts| {
                p.meta.insert("cell".into(), "transformer".into());
            }),
        ),
        (
            "metadata \"vocab\" is not a JSON array of strings",
            Box::new(|p: &mut Parts| {
                p.meta.insert("vocab".into(), "good bad".into());
            }),
        ),
        (
            "tensor fc.bias is F16; only F32 is supported",
            Box::new(|p: &mut Parts| {
                let t = tensor(p, "fc.bias");
                t.1 = Dtype::F16;
                t.3.truncate(4);
            }),
        ),
        (
            "no tensor fc.weight",
            Box::new(|p: &mut Parts| p.tensors.retain(|t| t.0 != "fc.weight")),
        ),
        (
            "unexpected tensor emb.weight",
            Box::new(|p: &mut Parts| {
                p.tensors
                    .push(("emb.weight".into(), Dtype::F32, vec![1], vec![0; 4]));
            }),
        ),
    ];
    for (expected, change) in cases {
        let message = error(&*change);
        assert!(
            message.contains(expected),
            "expected {expected:?} in {message:?}"
        );
    }
}

#[test]
fn truncated_and_foreign_files_are_not_models() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    model(Tokens::Word).save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let err = Model::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("m.safetensors: not a valid safetensors file"),
        "{err}"
    );
    std::fs::write(&path, b"PK\x03\x04 this is a zip file, not a model").unwrap();
    let err = Model::load(&path).unwrap_err().to_string();
    assert!(err.contains("not a valid safetensors file"), "{err}");
    let missing = Model::load(&dir.path().join("nope.safetensors")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
    std::fs::write(&path, b"").unwrap();
    let err = Model::load(&path).unwrap_err().to_string();
    assert!(err.contains("not a valid safetensors file"), "{err}");
    let err = Model::load(dir.path()).unwrap_err().to_string();
    assert!(err.ends_with("not a file"), "{err}");
}
