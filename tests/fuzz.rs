//! Bounded fuzzing of every reader of untrusted bytes: the model file loader and the TSV, CSV
//! and fastText readers. Valid files are mutated, with a seeded stream, by the edits that find
//! parser bugs (bit flips, bytes set to edge values, cuts, repeats, insertions of structural
//! characters); each mutant must load or be refused with an error, never panic or abort.
//! Model files and checkpoints are also mutated where they hold meaning: a metadata value
//! (the network's sizes, the vocabulary, the run's state and settings) set to an edge of its
//! type or another type, or a tensor's entry (the order, the optimiser's buffers) set to an edge
//! value; each mutant must load and predict, resume and train, or be refused. The
//! number of mutants is fixed, so the test takes the same few seconds in CI every time; set
//! `RNN_FUZZ_CASES` to run more. A crash found here becomes a test of its own.

use std::path::Path;

mod common;

use rnn::data::files::{Format, ReadOptions, parse_rows};
use rnn::model::{Kind, Model, ModelConfig};
use rnn::rng::Rng;

fn cases(default: usize) -> usize {
    std::env::var("RNN_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// One random edit of `bytes`; `special` are characters worth inserting for this format.
fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng, special: &[u8]) {
    let n = bytes.len().max(1);
    let at = rng.below(n);
    match rng.below(7) {
        0 if !bytes.is_empty() => bytes[at] ^= 1 << rng.below(8),
        1 if !bytes.is_empty() => bytes[at] = [0, 0xff, 0x7f, 0x80, b'9'][rng.below(5)],
        2 => bytes.truncate(at),
        3 => {
            let end = (at + 1 + rng.below(64)).min(bytes.len());
            let piece = bytes[at.min(end)..end].to_vec();
            bytes.splice(at.min(bytes.len())..at.min(bytes.len()), piece);
        }
        4 => {
            let c = special[rng.below(special.len())];
            bytes.insert(at.min(bytes.len()), c);
        }
        5 if bytes.len() > 1 => {
            let end = (at + 1 + rng.below(16)).min(bytes.len());
            bytes.drain(at..end);
        }
        _ => {
            // a number in the text made huge or negative (shapes, offsets, sizes)
            if let Some(i) = bytes[at..].iter().position(u8::is_ascii_digit) {
                let i = at + i;
                let huge = ["18446744073709551615", "-1", "1099511627776", "0"][rng.below(4)];
                bytes.splice(i..i + 1, huge.bytes());
            }
        }
    }
}

#[test]
fn mutated_model_files_load_or_are_refused_never_crash() {
    let dir = tempfile::tempdir().unwrap();
    let data = [
        ("good food", "pos"),
        ("bad food", "neg"),
        ("not good, at all", "neg"),
    ];
    let mut originals = Vec::new();
    for (i, config) in [
        ModelConfig {
            hidden: 4,
            ..ModelConfig::seed()
        },
        ModelConfig {
            hidden: 4,
            embed: Some(3),
            ..ModelConfig::default()
        },
    ]
    .iter()
    .enumerate()
    {
        let path = dir.path().join(format!("m{i}.safetensors"));
        Model::for_data(data, config).unwrap().save(&path).unwrap();
        originals.push(std::fs::read(&path).unwrap());
    }
    let mut rng = Rng::new(7);
    let path = dir.path().join("mutant.safetensors");
    let (mut loaded, mut refused) = (0, 0);
    for case in 0..cases(5000) {
        let mut bytes = originals[case % originals.len()].clone();
        for _ in 0..1 + rng.below(3) {
            mutate(&mut bytes, &mut rng, b"{}[]\",:0123456789");
        }
        std::fs::write(&path, &bytes).unwrap();
        match Model::load_as(&path, Kind::Classifier) {
            Ok(model) => {
                // what loads must also predict
                let p = model.predict(&["good food", ""]).unwrap();
                assert_eq!(p.len(), 2);
                loaded += 1;
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                refused += 1;
            }
        }
    }
    assert!(
        refused > loaded,
        "most mutants are broken files: {refused} refused, {loaded} loaded"
    );
}

#[test]
fn mutated_data_files_are_read_or_refused_never_crash() {
    let tsv = b"text\tlabel\ngood food\tpos\nbad \"food\"\tneg\n\nnot good\tneg\r\n".to_vec();
    let csv =
        b"id,text,label\n1,\"good, \"\"food\"\"\",pos\n2,\"bad\nfood\",neg\n3,fine,pos\n".to_vec();
    let fasttext =
        b"__label__pos good food\n__label__neg bad food\n\n__label__neg  not good\n".to_vec();
    let options = ReadOptions {
        max_row_bytes: 200,
        ..ReadOptions::default()
    };
    let mut rng = Rng::new(11);
    let mut rows = 0;
    for case in 0..cases(20000) {
        let (format, original) = match case % 3 {
            0 => (Format::Tsv, &tsv),
            1 => (Format::Csv, &csv),
            _ => (Format::FastText, &fasttext),
        };
        let mut bytes = original.clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut bytes, &mut rng, b"\t,\"\n\r_ \xef\xbb\xbf");
        }
        match parse_rows(&bytes[..], format, Path::new("d"), &options) {
            Ok(read) => {
                for row in &read {
                    assert!(!row.label.is_empty() && !row.label.contains(['\n', '\t']));
                    assert!(row.line >= 1);
                }
                rows += read.len();
            }
            Err(e) => assert!(e.to_string().starts_with("d"), "{e}"),
        }
    }
    assert!(rows > 0);
}

/// Values worth putting where a model file's metadata or a checkpoint's state holds a number,
/// a word or a list: the edges of every type, sizes that cannot be allocated, wrong types.
const EDGES: [&str; 16] = [
    "0",
    "-1",
    "1",
    "10000000",
    "1099511627776",
    "18446744073709551615",
    "1e39",
    "-1e-45",
    "NaN",
    "null",
    "true",
    "\"\"",
    "\"x\"",
    "[]",
    "{}",
    "[\"<unk>\"]",
];

/// `value` with one of its leaves (or itself, if it has none) replaced by an edge value, or
/// one of its keys or items removed.
fn mutate_json(value: &mut serde_json::Value, rng: &mut Rng) {
    use serde_json::Value;
    match value {
        Value::Object(map) if !map.is_empty() && rng.below(4) > 0 => {
            let key = map.keys().nth(rng.below(map.len())).unwrap().clone();
            if rng.below(8) == 0 {
                map.remove(&key);
            } else {
                mutate_json(map.get_mut(&key).unwrap(), rng);
            }
        }
        Value::Array(items) if !items.is_empty() && rng.below(4) > 0 => {
            let i = rng.below(items.len());
            if rng.below(8) == 0 {
                items.remove(i);
            } else {
                mutate_json(&mut items[i], rng);
            }
        }
        _ => {
            let edge = EDGES[rng.below(EDGES.len())];
            *value = serde_json::from_str(edge).unwrap_or_else(|_| Value::String(edge.into()));
        }
    }
}

/// One edit of a model file's or a checkpoint's parts: a metadata entry's value (JSON or a
/// plain word) changed or removed, or an entry of a tensor set to an edge value.
fn mutate_parts(parts: &mut common::Parts, rng: &mut Rng) {
    if rng.below(4) == 0 {
        let which = rng.below(parts.tensors.len());
        let t = &mut parts.tensors[which];
        let n = t.3.len() / 4;
        if n > 0 {
            let at = 4 * rng.below(n);
            let edge: [u8; 4] = match rng.below(6) {
                0 => u32::MAX.to_le_bytes(),
                1 => 1_000_000u32.to_le_bytes(),
                2 => f32::NAN.to_le_bytes(),
                3 => f32::INFINITY.to_le_bytes(),
                4 => (-1.0f32).to_le_bytes(),
                _ => 3e38f32.to_le_bytes(),
            };
            t.3[at..at + 4].copy_from_slice(&edge);
        }
        return;
    }
    let mut keys: Vec<String> = parts.meta.keys().cloned().collect();
    keys.sort();
    let key = keys[rng.below(keys.len())].clone();
    if rng.below(10) == 0 {
        parts.meta.remove(&key);
        return;
    }
    let old = &parts.meta[&key];
    let new = match serde_json::from_str::<serde_json::Value>(old) {
        Ok(mut value) if value.is_object() || value.is_array() => {
            mutate_json(&mut value, rng);
            value.to_string()
        }
        _ => EDGES[rng.below(EDGES.len())].trim_matches('"').to_string(),
    };
    parts.meta.insert(key, new);
}

#[test]
fn mutated_metadata_and_checkpoints_load_resume_or_are_refused_never_crash() {
    use rnn::checkpoint::{self, RunFiles};
    use rnn::data::files::Columns;
    use rnn::recipe::{self, DataNotes, Recipe, Rows, Start};

    let dir = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample/train.tsv");
    let rows = rnn::data::files::read_rows(&sample, &ReadOptions::default()).unwrap();
    let recipe = Recipe {
        model: ModelConfig {
            hidden: 4,
            embed: Some(3),
            ..ModelConfig::default()
        },
        epochs: 1,
        threads: 1,
        ..Recipe::default()
    };
    let start_run = |start: Start| {
        let notes = start.notes(DataNotes::new(&recipe, &Columns::default(), false))?;
        let train = Rows::in_memory(rows.clone());
        recipe::prepare_run(start, &recipe, notes, train, None, None)
    };
    let good = dir.path().join("good.ckpt");
    let mut prepared = start_run(Start::New).unwrap();
    let files = RunFiles {
        model: None,
        checkpoint: good.clone(),
        keep_checkpoint: true,
    };
    prepared.run(Some(files), None, |_| {}).unwrap();
    let model_path = dir.path().join("good.safetensors");
    prepared.model.save(&model_path).unwrap();
    let originals = [common::read_parts(&good), common::read_parts(&model_path)];

    let mut rng = Rng::new(11);
    let mutant = dir.path().join("mutant.ckpt");
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..cases(600) {
        let original = &originals[case % 2];
        let mut parts = common::Parts {
            tensors: original.tensors.clone(),
            meta: original.meta.clone(),
        };
        for _ in 0..1 + rng.below(2) {
            mutate_parts(&mut parts, &mut rng);
        }
        common::write_parts(&parts, &mutant);
        // as a model: loaded, then used; as a checkpoint: resumed for an epoch
        let used = Model::load(&mutant).and_then(|m| match m.kind() {
            Kind::Classifier => {
                assert_eq!(m.predict(&["good food", ""])?.len(), 2);
                Ok(())
            }
            Kind::LanguageModel => m.generate("", &Default::default()).map(|g| {
                assert_eq!(g.take(3).count(), 3);
            }),
        });
        let resume = || {
            let checkpoint = Box::new(checkpoint::load(&mutant)?);
            let start = Start::Resume {
                checkpoint,
                epochs: 2,
                threads: None,
            };
            start_run(start)?.train(|_| {}).map(|_| ())
        };
        let resumed = if case % 2 == 0 { resume() } else { Ok(()) };
        match (used, resumed) {
            (Ok(()), Ok(())) => accepted += 1,
            (a, b) => {
                for e in [a.err(), b.err()].into_iter().flatten() {
                    assert!(!e.to_string().is_empty());
                }
                refused += 1;
            }
        }
    }
    assert!(
        refused > 0 && accepted > 0,
        "{refused} refused, {accepted} accepted"
    );
}
