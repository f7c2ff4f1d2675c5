//! Subword vectors through the binary: `rnn train --subwords MIN-MAX --subword-buckets B`,
//! what the model file holds, `predict`, `explain` and `eval` of such a model, resuming it,
//! and every error of the new flags.

mod common;
use common::{fails_saying, succeeds as ok};

use std::fs;
use std::path::Path;

use serde_json::Value;

/// A directory with the sample sentences, and `rnn train` on them into `model` with a small
/// network, no wide path (so that only the embedding tells unseen words apart), and `more`.
fn train<'a>(dir: &Path, model: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    common::copy_sample(dir);
    let mut args = vec!["train", "--train", "train.tsv", "--test", "test.tsv"];
    args.extend([
        "--model", model, "--hidden", "8", "--embed", "8", "--ngrams", "0",
    ]);
    args.extend(["--seed", "3", "--threads", "2", "--quiet", "--json"]);
    args.extend(more);
    args
}

const SUBWORDS: [&str; 4] = ["--subwords", "3-5", "--subword-buckets", "512"];

/// The probabilities `rnn predict --json` gives each line of `texts`.
fn probabilities(dir: &Path, model: &str, texts: &str) -> Vec<Value> {
    fs::write(dir.join("texts.txt"), texts).unwrap();
    let out = ok(&["predict", "--model", model, "texts.txt", "--probs"], dir);
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["probs"].clone())
        .collect()
}

#[test]
fn a_subword_model_holds_its_table_and_gives_unseen_words_vectors_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let args = train(
        dir.path(),
        "m.safetensors",
        &[&SUBWORDS[..], &["--epochs", "60"]].concat(),
    );
    let report: Value = serde_json::from_str(ok(&args, dir.path()).trim()).unwrap();
    assert!(report["test_acc"].as_f64().unwrap() > 0.9, "{report}");
    let parts = common::read_parts(&dir.path().join("m.safetensors"));
    assert_eq!(parts.meta["subwords"], "3-5");
    assert_eq!(parts.meta["subword_buckets"], "512");
    let names: Vec<&str> = parts.tensors.iter().map(|t| t.0.as_str()).collect();
    let at = names.iter().position(|&n| n == "subwords.weight").unwrap();
    assert!(names.contains(&"embedding.weight"), "{names:?}");
    assert_eq!(parts.tensors[at].2, [512, 8], "buckets × embedding");

    // two words no training sentence has: <unk> alike to a model without subwords, two
    // different vectors to one with them
    let texts = "the food was zorgful\nthe food was blimpish\n";
    let with = probabilities(dir.path(), "m.safetensors", texts);
    assert_ne!(with[0], with[1], "their n-grams tell them apart");
    let args = train(dir.path(), "plain.safetensors", &["--epochs", "60"]);
    ok(&args, dir.path());
    let without = probabilities(dir.path(), "plain.safetensors", texts);
    assert_eq!(without[0], without[1], "both <unk>");

    // explain and eval read the n-grams too: explain's last probabilities are predict's
    let out = ok(
        &[
            "explain",
            "--model",
            "m.safetensors",
            "--json",
            "the food was zorgful",
        ],
        dir.path(),
    );
    let explained: Value = serde_json::from_str(out.trim()).unwrap();
    // the unseen word is shown as itself: the model reads its n-grams
    assert_eq!(
        explained["tokens"],
        serde_json::json!(["the", "food", "was", "zorgful"])
    );
    let out = ok(
        &[
            "explain",
            "--model",
            "plain.safetensors",
            "--json",
            "the food was zorgful",
        ],
        dir.path(),
    );
    let plain: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        plain["tokens"][3], "<unk>",
        "without subwords the model reads only <unk>"
    );
    let last = explained["probs"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let labels = explained["labels"].as_array().unwrap();
    for (label, p) in labels.iter().zip(last.as_array().unwrap()) {
        let predicted = with[0][label.as_str().unwrap()].as_f64().unwrap();
        assert!(
            (p.as_f64().unwrap() - predicted).abs() < 1e-5,
            "{last} against {}",
            with[0]
        );
    }
    let eval = "eval --model m.safetensors --data test.tsv --json";
    let out = ok(&eval.split_whitespace().collect::<Vec<_>>(), dir.path());
    let eval: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        eval["accuracy"], report["test_acc"],
        "{eval} against {report}"
    );
}

#[test]
fn a_subword_run_is_reproducible_and_resumes_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let run = |model, more: &[&str]| {
        let args = train(dir.path(), model, &[&SUBWORDS[..], more].concat());
        ok(&args, dir.path());
    };
    run("a.safetensors", &["--epochs", "6"]);
    run("b.safetensors", &["--epochs", "6"]);
    let bytes = |name: &str| fs::read(dir.path().join(name)).unwrap();
    assert_eq!(bytes("a.safetensors"), bytes("b.safetensors"), "same seed");
    // three epochs, then three more from the checkpoint
    run(
        "c.safetensors",
        &["--epochs", "3", "--keep-checkpoint", "--patience", "0"],
    );
    let resume = "train --train train.tsv --test test.tsv --model c.safetensors --resume \
                  c.safetensors.ckpt --epochs 6 --threads 2 --quiet";
    ok(&resume.split_whitespace().collect::<Vec<_>>(), dir.path());
    run("d.safetensors", &["--epochs", "6", "--patience", "0"]);
    assert_eq!(bytes("c.safetensors"), bytes("d.safetensors"), "resumed");
}

#[test]
fn the_subword_flags_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let range = "the shortest n-gram must be at least 1 and at most the longest, and the \
                 longest at most 20";
    let cases: [(&[&str], &str); 8] = [
        (&["--subwords", "0-3"], range),
        (&["--subwords", "6-3"], range),
        (&["--subwords", "3-21"], range),
        (
            &["--subwords", "three"],
            "\"three\" is not MIN-MAX, e.g. 3-6",
        ),
        (
            &["--subwords", "3-6", "--subword-buckets", "0"],
            "--subword-buckets",
        ),
        (&["--subword-buckets", "64"], "--subwords <MIN-MAX>"),
        (
            &["--subwords", "3-6", "--tokens", "char"],
            "error: --subwords needs word tokens: subwords are character n-grams of words, and \
             --tokens char makes none\n",
        ),
        (
            &["--subwords", "3-6", "--embed", "0"],
            "error: --subwords are vectors of the embedding, which --embed 0 turns off \
             (one-hot words have no vectors to add them to)\n",
        ),
    ];
    for (flags, says) in cases {
        let mut args = [&train(dir.path(), "m.safetensors", &[])[..], flags].concat();
        if flags.contains(&"--embed") {
            // the flags' own --embed, not the setup's
            let at = args.iter().position(|&a| a == "--embed").unwrap();
            args.drain(at..at + 2);
        }
        fails_saying(&args, dir.path(), says);
        assert!(!dir.path().join("m.safetensors").exists(), "{flags:?}");
    }
}

#[test]
fn subwords_start_at_zero_and_change_nothing_until_learnt() {
    use rnn::rng::Rng;
    use rnn::rnn::{Architecture, CellKind, Init, Network, Subwords, TokenGrams, Workspace};
    let plain = Architecture {
        embed: Some(4),
        bidirectional: true,
        ..Architecture::new(CellKind::Lstm, 6, 5, 3)
    };
    let subwords = Subwords {
        min: 2,
        max: 4,
        buckets: 32,
    };
    let with = Architecture {
        subwords: Some(subwords),
        ..plain.clone()
    };
    for init in [Init::LikeRnn, Init::Numpy] {
        let a = Network::new(&plain, init, &mut Rng::new(5)).unwrap();
        let mut b = Network::new(&with, init, &mut Rng::new(5)).unwrap();
        for t in a.layout().tensors() {
            let other = b.layout().get(&t.name).unwrap().range();
            assert_eq!(&a.params()[t.range()], &b.params()[other], "{}", t.name);
        }
        let table = b.layout().get("subwords.weight").unwrap().range();
        assert_eq!(table.len(), 32 * 4);
        assert!(b.params()[table.clone()].iter().all(|&w| w == 0.0));

        let mut grams = TokenGrams::default();
        for word in ["cat", "sat", "zebra"] {
            grams.push(subwords, word);
        }
        let mut ws = Workspace::default();
        let tokens: &[u32] = &[1, 2, 0];
        let before = a.predict(&[tokens], &mut ws);
        assert_eq!(b.predict_with_grams(&[tokens], &[&grams], &mut ws), before);
        // once the n-grams' rows hold numbers, the same tokens read otherwise
        for (i, w) in b.params_mut()[table].iter_mut().enumerate() {
            *w = (i % 5) as f32 - 2.0;
        }
        assert_ne!(b.predict_with_grams(&[tokens], &[&grams], &mut ws), before);
    }
}

#[test]
fn frozen_word_vectors_leave_the_ngrams_learning() {
    let dir = tempfile::tempdir().unwrap();
    let frozen = [&SUBWORDS[..], &["--freeze-embed"]].concat();
    ok(
        &train(
            dir.path(),
            "start.safetensors",
            &[&frozen[..], &["--epochs", "0"]].concat(),
        ),
        dir.path(),
    );
    ok(
        &train(
            dir.path(),
            "end.safetensors",
            &[&frozen[..], &["--epochs", "3"]].concat(),
        ),
        dir.path(),
    );
    let tensor = |file: &str, name: &str| {
        let parts = common::read_parts(&dir.path().join(file));
        parts.tensors.into_iter().find(|t| t.0 == name).unwrap().3
    };
    assert_eq!(
        tensor("start.safetensors", "embedding.weight"),
        tensor("end.safetensors", "embedding.weight"),
        "the words' vectors are frozen"
    );
    let ngrams = tensor("end.safetensors", "subwords.weight");
    assert!(
        tensor("start.safetensors", "subwords.weight")
            .iter()
            .all(|&b| b == 0)
    );
    assert!(ngrams.iter().any(|&b| b != 0), "the n-grams learnt");
}
