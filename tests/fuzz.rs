//! Bounded fuzzing of every reader of untrusted bytes: the model file loader and the TSV, CSV
//! and fastText readers. Valid files are mutated, with a seeded stream, by the edits that find
//! parser bugs (bit flips, bytes set to edge values, cuts, repeats, insertions of structural
//! characters); each mutant must load or be refused with an error, never panic or abort. The
//! number of mutants is fixed, so the test takes the same few seconds in CI every time; set
//! `RNN_FUZZ_CASES` to run more. A crash found here becomes a test of its own.

use std::path::Path;

use rnn::data::files::{Format, ReadOptions, parse_rows};
use rnn::model::{Model, ModelConfig};
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
        match Model::load(&path) {
            Ok(model) => {
                // what loads must also predict
                let p = model.predict(&["good food", ""]);
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
