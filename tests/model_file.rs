//! Model files: a round trip keeps every prediction, PyTorch's layout loads, and every kind
//! of broken file is rejected with a message that says what is wrong.

use std::collections::HashMap;
use std::path::Path;

use rnn::data::Tokens;
use rnn::error::Error;
use rnn::model::{Model, ModelConfig};
use rnn::rnn::CellKind;
use safetensors::tensor::Dtype;

mod common;

use common::{Parts, read_parts, tensor, write_parts};

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
        assert_eq!(loaded.labels(), ["neg", "pos"]);
        assert_eq!((loaded.tokens, loaded.max_len), (tokens, Some(7)));
        let texts = ["good", "not bad at all", "never seen"];
        assert_eq!(
            loaded.predict(&texts).unwrap(),
            original.predict(&texts).unwrap()
        );
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
        assert_eq!(
            loaded.predict(&texts).unwrap(),
            original.predict(&texts).unwrap()
        );
    }
}

/// An alteration of a good file.
type Change = Box<dyn Fn(&mut Parts)>;

/// The parts of `model`'s file.
fn parts(model: &Model, dir: &Path) -> Parts {
    let path = dir.join("good.safetensors");
    model.save(&path).unwrap();
    read_parts(&path)
}

fn load_error(parts: &Parts, dir: &Path) -> String {
    let path = dir.join("bad.safetensors");
    write_parts(parts, &path);
    match Model::load(&path) {
        Err(e @ Error::Model { .. }) => e.to_string(),
        other => panic!("expected a model error, got {other:?}"),
    }
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
    write_parts(&p, &path);
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
    assert!(err.ends_with("not a regular file"), "{err}");
}

/// A model of `words` distinct words (one-hot input: the input weights are `H × V`), a few
/// megabytes, so that rewriting it takes long enough to be caught halfway.
fn big_model(words: usize, label_first: &str) -> Model {
    let texts: Vec<(String, &str)> = (0..words)
        .map(|i| {
            (
                format!("w{i}"),
                if i % 2 == 0 { label_first } else { "other" },
            )
        })
        .collect();
    let config = ModelConfig {
        hidden: 32,
        ..ModelConfig::seed()
    };
    Model::for_data(texts.iter().map(|(t, l)| (t.as_str(), *l)), &config).unwrap()
}

#[test]
fn a_model_rewritten_in_place_while_it_loads_never_kills_the_reader() {
    // `cp new old` truncates `old` and writes into it. A reader that mapped the file died of
    // SIGBUS when it touched a page that was gone (that would end this test's process); now
    // every load gives the old model, the new one, or an error that says what happened.
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (big_model(20_000, "a"), big_model(20_000, "b"));
    let path = dir.path().join("m.safetensors");
    a.save(&path).unwrap();
    let bytes_a = std::fs::read(&path).unwrap();
    b.save(&path).unwrap();
    let bytes_b = std::fs::read(&path).unwrap();
    assert!(bytes_a.len() > 2_000_000);
    let labels = |m: &Model| m.labels().to_vec();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (mut loaded, mut refused) = (0, 0);
    std::thread::scope(|s| {
        s.spawn(|| {
            use std::io::Write;
            for round in 0..60 {
                let bytes = if round % 2 == 0 { &bytes_a } else { &bytes_b };
                let mut file = std::fs::File::create(&path).unwrap();
                for chunk in bytes.chunks(128 * 1024) {
                    file.write_all(chunk).unwrap();
                }
            }
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            match Model::load(&path) {
                Ok(m) => {
                    assert!(labels(&m) == labels(&a) || labels(&m) == labels(&b));
                    loaded += 1;
                }
                Err(e) => {
                    let message = e.to_string();
                    assert!(
                        message.contains("changed while it was read")
                            || message.contains("not a valid safetensors file"),
                        "{message}"
                    );
                    refused += 1;
                }
            }
        }
    });
    assert!(loaded + refused > 0);
    // and once the writing is over, the file loads
    assert_eq!(Model::load(&path).unwrap().labels(), b.labels());
}

#[test]
fn a_fifo_or_a_directory_is_refused_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.safetensors");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // opening a FIFO for reading waits for a writer: load in a thread, and fail (rather than
    // hang) if it has not answered in 10 s
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || tx.send(Model::load(&path).map(|_| ()).unwrap_err().to_string()));
    let err = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("loading a FIFO must not wait for a writer");
    assert!(
        err.ends_with("fifo.safetensors: not a regular file"),
        "{err}"
    );
}

#[test]
fn bytes_from_the_file_are_escaped_in_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = parts(&model(Tokens::Word), dir.path());
    p.tensors
        .push(("x\u{1b}[2J\u{0}".into(), Dtype::F32, vec![1], vec![0; 4]));
    let err = load_error(&p, dir.path());
    assert!(err.contains("unexpected tensor x\\u{1b}[2J\\u{0}"), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains('\u{0}'), "{err}");
}

#[test]
fn sizes_read_from_a_file_are_checked_before_anything_is_allocated() {
    // a 2 KB file that claims a recurrent weight of 2^40 (or 2^64 - 1) columns and holds no data
    // for it once aborted every command ("memory allocation of ... bytes failed")
    let dir = tempfile::tempdir().unwrap();
    let good = parts(&model(Tokens::Word), dir.path());
    let cases = [
        (
            1usize << 30,
            "H = 1073741824 network with V = 7 tokens and C = 2 classes needs 4.6 EB of memory",
        ),
        (
            1 << 40,
            "H = 1099511627776 network with V = 7 tokens and C = 2 classes has more than 2^64 parameters",
        ),
        (
            usize::MAX,
            "H = 18446744073709551615 network with V = 7 tokens and C = 2 classes has more than 2^64 parameters",
        ),
    ];
    for (columns, expected) in cases {
        let mut p = Parts {
            tensors: good.tensors.clone(),
            meta: good.meta.clone(),
        };
        let t = tensor(&mut p, "rnn.weight_hh_l0");
        t.2 = vec![0, columns];
        t.3.clear();
        let err = load_error(&p, dir.path());
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn a_number_of_layers_the_tensors_do_not_hold_is_refused_before_anything_is_built() {
    // `layers` of 10^7, 10^9 or 2^64 - 1 in the metadata once aborted every command (or looped
    // for ever) while the network's layers were built, before any shape was checked
    let dir = tempfile::tempdir().unwrap();
    let good = parts(&model(Tokens::Word), dir.path());
    for layers in ["10000000", "1000000000", "18446744073709551615"] {
        let mut p = Parts {
            tensors: good.tensors.clone(),
            meta: good.meta.clone(),
        };
        p.meta.insert("layers".into(), layers.into());
        let err = load_error(&p, dir.path());
        let top = layers.parse::<u64>().unwrap() - 1;
        assert!(
            err.contains(&format!("metadata layers is {layers}"))
                && err.contains(&format!("no tensor rnn.weight_hh_l{top}")),
            "{err}"
        );
    }
}

#[test]
fn nan_infinite_or_huge_weights_are_refused_naming_the_tensor() {
    // huge but finite weights (3e38) overflowed on the way through and answered NaN
    let dir = tempfile::tempdir().unwrap();
    let good = parts(&model(Tokens::Word), dir.path());
    for (name, value) in [
        ("fc.weight", f32::NAN),
        ("rnn.weight_hh_l0", f32::INFINITY),
        ("rnn.bias_hh_l0", f32::NEG_INFINITY),
        ("rnn.weight_ih_l0", 3e38),
        ("fc.bias", -1.5e12),
    ] {
        let mut p = Parts {
            tensors: good.tensors.clone(),
            meta: good.meta.clone(),
        };
        tensor(&mut p, name).3[4..8].copy_from_slice(&value.to_le_bytes());
        let err = load_error(&p, dir.path());
        assert!(
            err.contains(&format!("tensor {name} holds {value}"))
                && err.contains("must be finite numbers of at most 1e12 in size"),
            "{err}"
        );
    }
}
