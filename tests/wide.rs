//! The wide path through the binary: `rnn train --ngrams N --buckets B --wide-lr LR`, what the
//! model file holds, `predict` and `explain` of such a model, resuming it, and every error of
//! the new flags.

mod common;
use common::{fails_saying, succeeds as ok};

use std::fs;
use std::path::Path;

use serde_json::Value;

/// A directory with the sample sentences, and `rnn train` on them into `model` with a small
/// network, a wide path of bigrams in 64 buckets, and `more`.
fn train<'a>(dir: &Path, model: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let wide = ["--ngrams", "2", "--buckets", "64"];
    [&train_without_wide(dir, model)[..], &wide, more].concat()
}

/// [`train`] without the wide path's flags.
fn train_without_wide<'a>(dir: &Path, model: &'a str) -> Vec<&'a str> {
    common::copy_sample(dir);
    let mut args = vec!["train", "--train", "train.tsv", "--test", "test.tsv"];
    args.extend(["--model", model, "--hidden", "8", "--embed", "8"]);
    args.extend(["--seed", "3", "--threads", "2", "--quiet", "--json"]);
    args
}

#[test]
fn a_wide_model_holds_its_table_and_predicts_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let args = train(dir.path(), "m.safetensors", &["--epochs", "0"]);
    ok(&args, dir.path());
    let parts = common::read_parts(&dir.path().join("m.safetensors"));
    assert_eq!(parts.meta["ngrams"], "2");
    assert_eq!(parts.meta["buckets"], "64");
    let table = parts.tensors.iter().find(|t| t.0 == "wide.weight").unwrap();
    assert_eq!(table.2, [64, 2], "buckets × labels");
    assert!(table.3.iter().all(|&b| b == 0), "the table starts at zero");

    let args = train(dir.path(), "m.safetensors", &["--epochs", "30"]);
    let report: Value = serde_json::from_str(ok(&args, dir.path()).trim()).unwrap();
    assert!(report["train_acc"].as_f64().unwrap() > 0.9, "{report}");
    let parts = common::read_parts(&dir.path().join("m.safetensors"));
    let table = &parts
        .tensors
        .iter()
        .find(|t| t.0 == "wide.weight")
        .unwrap()
        .3;
    let rows = table.chunks(8).filter(|row| row.iter().any(|&b| b != 0));
    // every word and bigram of the training sentences has a row (some share one)
    assert!(rows.count() > 20);

    // predict reads it back; explain says how much of the lead the n-grams gave
    fs::write(dir.path().join("texts.txt"), "the food is good\n").unwrap();
    let predicted = ok(
        &["predict", "--model", "m.safetensors", "texts.txt"],
        dir.path(),
    );
    assert!(predicted.starts_with("positive\t"), "{predicted}");
    let table = ok(
        &["explain", "--model", "m.safetensors", "the food is good"],
        dir.path(),
    );
    let line = table.lines().find(|l| l.starts_with("n-grams: ")).unwrap();
    assert!(line.contains("of its lead of"), "{table}");
    let json = ok(
        &[
            "explain",
            "--model",
            "m.safetensors",
            "--json",
            "the food is good",
        ],
        dir.path(),
    );
    let json: Value = serde_json::from_str(json.trim()).unwrap();
    let numbers = |key: &str| -> Vec<f64> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let (logits, ngrams) = (numbers("logits"), numbers("ngram_logits"));
    assert_eq!((logits.len(), ngrams.len()), (2, 2));
    assert!(ngrams.iter().any(|&x| x.abs() > 1e-3), "the n-grams count");
    // the logits are the last probabilities' (softmax)
    let last = json["probs"].as_array().unwrap().last().unwrap()[1]
        .as_f64()
        .unwrap();
    let p = 1.0 / (1.0 + (logits[0] - logits[1]).exp());
    assert!((p - last).abs() < 1e-5, "{p} against {last}");
}

#[test]
fn a_wide_run_is_reproducible_and_resumes_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let whole = train(dir.path(), "a.safetensors", &["--epochs", "6"]);
    ok(&whole, dir.path());
    ok(
        &train(dir.path(), "b.safetensors", &["--epochs", "6"]),
        dir.path(),
    );
    let bytes = |name: &str| fs::read(dir.path().join(name)).unwrap();
    assert_eq!(bytes("a.safetensors"), bytes("b.safetensors"), "same seed");
    // three epochs, then three more from the checkpoint
    let first = ["--epochs", "3", "--keep-checkpoint", "--patience", "0"];
    ok(&train(dir.path(), "c.safetensors", &first), dir.path());
    let resume = "train --train train.tsv --test test.tsv --model c.safetensors --resume \
                  c.safetensors.ckpt --epochs 6 --threads 2 --quiet";
    ok(&resume.split_whitespace().collect::<Vec<_>>(), dir.path());
    let whole_no_patience = train(
        dir.path(),
        "d.safetensors",
        &["--epochs", "6", "--patience", "0"],
    );
    ok(&whole_no_patience, dir.path());
    assert_eq!(bytes("c.safetensors"), bytes("d.safetensors"), "resumed");
}

#[test]
fn the_wide_flags_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["--ngrams", "11"],
            "error: the longest n-gram must be from 1 to 10, not 11\n",
        ),
        (&["--ngrams", "2", "--buckets", "0"], "--buckets"),
        (
            &["--ngrams", "0", "--buckets", "64"],
            "error: --buckets and --wide-lr are for the n-grams' table, which --ngrams 0 turns \
             off\n",
        ),
        (
            &["--ngrams", "2", "--buckets", "8589934592"],
            "error: the number of n-gram buckets must be from 1 to 2^32, not 8589934592\n",
        ),
        (&["--ngrams", "1", "--wide-lr", "-1"], "--wide-lr"),
        (&["--ngrams", "1", "--wide-lr", "nan"], "--wide-lr"),
    ];
    for (flags, says) in cases {
        let args = [&train_without_wide(dir.path(), "m.safetensors")[..], flags].concat();
        fails_saying(&args, dir.path(), says);
        assert!(!dir.path().join("m.safetensors").exists(), "{flags:?}");
    }
}

#[test]
fn a_word_the_vocabulary_lacks_keeps_n_grams_of_its_own() {
    use rnn::data::{UNSEEN, unseen_key};
    use rnn::model::{Model, ModelConfig};
    use rnn::rnn::Ngrams;
    let data = [
        ("good food", "pos"),
        ("bad food", "neg"),
        ("good day", "pos"),
    ];
    let wide = ModelConfig {
        ngrams: Some(Ngrams {
            n: 2,
            buckets: 1 << 12,
        }),
        min_count: 2,
        ..ModelConfig::default()
    };
    let model = Model::for_data(data, &wide).unwrap();
    // "bad" was seen once: <unk> to the network, its own key to the n-grams
    assert_eq!(model.vocab.index("bad"), None);
    let ids = model.encode("bad good zebra");
    let good = model.vocab.index("good").unwrap();
    assert_eq!(ids, [unseen_key("bad"), good, unseen_key("zebra")]);
    assert!(ids[0] & UNSEEN != 0 && ids[0] != ids[2]);
    // explain shows the word: the n-grams read it by its own key
    assert_eq!(model.explain("bad good").tokens, ["bad", "good"]);
    // without a wide path, both are <unk> (token 0) as before
    let plain = Model::for_data(
        data,
        &ModelConfig {
            ngrams: None,
            ..wide
        },
    )
    .unwrap();
    assert_eq!(plain.encode("bad good zebra"), [0, good, 0]);
    assert_eq!(plain.explain("bad good").tokens, ["<unk>", "good"]);
    // the recurrent network reads an unseen key as <unk>, the n-grams by the key: with a
    // table of zeros the two predict alike, with a table of numbers they do not
    let mut network = model.network.clone();
    let mut ws = rnn::rnn::Workspace::default();
    let unk = network.predict(&[&[0, good]], &mut ws);
    let keyed = network.predict(&[&[unseen_key("bad"), good]], &mut ws);
    assert_eq!(unk, keyed);
    let table = network.layout().get("wide.weight").unwrap().range();
    for (i, w) in network.params_mut()[table].iter_mut().enumerate() {
        *w = (i % 7) as f32 - 3.0;
    }
    let unk = network.predict(&[&[0, good]], &mut ws);
    let keyed = network.predict(&[&[unseen_key("bad"), good]], &mut ws);
    assert_ne!(unk, keyed);
}
