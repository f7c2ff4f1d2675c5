//! Crafted checkpoints are refused with one line naming what is wrong, never a panic and never
//! a run that silently trains otherwise (the red team's second round, issue 28, items 2, 8
//! and 10): an order of examples out of range, a negative or absurd scale of the learning
//! rate, an epoch count that does not fit the history, a thread count past the cap.

use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::{Parts, read_parts as read, write_parts as write};

fn rnn(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rnn"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// `parts` with the JSON metadata entry `key` changed by `change`.
fn edit_json(parts: &mut Parts, key: &str, change: impl Fn(&mut serde_json::Value)) {
    let mut value: serde_json::Value = serde_json::from_str(&parts.meta[key]).unwrap();
    change(&mut value);
    parts.meta.insert(key.to_string(), value.to_string());
}

#[test]
fn tampered_checkpoints_are_one_line_errors_in_resume() {
    let dir = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample/train.tsv");
    let train = sample.to_str().unwrap();
    let first = rnn(
        &[
            "train",
            "--train",
            train,
            "--model",
            "m.safetensors",
            "--epochs",
            "2",
            "--hidden",
            "8",
            "--embed",
            "8",
            "--threads",
            "1",
            "--keep-checkpoint",
            "--quiet",
        ],
        dir.path(),
    );
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let good = read(&dir.path().join("m.safetensors.ckpt"));
    let order_entry = |value: u32| {
        move |p: &mut Parts| {
            let order = p.tensors.iter_mut().find(|t| t.0 == "train.order").unwrap();
            order.3[..4].copy_from_slice(&value.to_le_bytes());
        }
    };
    type Tamper = Box<dyn Fn(&mut Parts)>;
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "order 1,000,000",
            Box::new(order_entry(1_000_000)),
            "example 1000000 of 50",
        ),
        (
            "order 2^32-1",
            Box::new(order_entry(u32::MAX)),
            "example 4294967295 of 50",
        ),
        (
            "an example twice",
            Box::new(|p: &mut Parts| {
                let order = p.tensors.iter_mut().find(|t| t.0 == "train.order").unwrap();
                let second: [u8; 4] = order.3[4..8].try_into().unwrap();
                order.3[..4].copy_from_slice(&second);
            }),
            "in its order twice",
        ),
        (
            "a negative lr_scale",
            Box::new(|p: &mut Parts| {
                edit_json(p, "train.state", |v| {
                    v["monitor"]["lr_scale"] = (-1.0).into()
                })
            }),
            "lr_scale -1",
        ),
        (
            "an lr_scale above 1",
            Box::new(|p: &mut Parts| {
                edit_json(p, "train.state", |v| v["monitor"]["lr_scale"] = 1e30.into())
            }),
            "lr_scale 1000000000000000000000000000000",
        ),
        (
            "an epoch of 2^64-1",
            Box::new(|p: &mut Parts| edit_json(p, "train.state", |v| v["epoch"] = u64::MAX.into())),
            "epoch 18446744073709551615 with the metrics of 2 epochs",
        ),
        (
            "100,000 threads",
            Box::new(|p: &mut Parts| {
                edit_json(p, "train.config", |v| v["threads"] = 100_000.into())
            }),
            "100000 threads on a machine",
        ),
        (
            "a negative learning rate",
            Box::new(|p: &mut Parts| edit_json(p, "train.config", |v| v["lr"] = (-0.5).into())),
            "metadata train.config",
        ),
    ];
    // `rnn train --resume CHECKPOINT --epochs EPOCHS` on the same data
    let resume = |checkpoint: &str, epochs: &str| {
        let args = [
            "--model",
            "r.safetensors",
            "--resume",
            checkpoint,
            "--epochs",
            epochs,
        ];
        rnn(
            &[&["train", "--train", train][..], &args, &["--quiet"]].concat(),
            dir.path(),
        )
    };
    for (what, tamper, says) in cases {
        let mut parts = read(&dir.path().join("m.safetensors.ckpt"));
        tamper(&mut parts);
        write(&parts, &dir.path().join("bad.ckpt"));
        let out = resume("bad.ckpt", "4");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains(says), "{what}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
    }
    // and the untouched checkpoint still resumes
    write(&good, &dir.path().join("good.ckpt"));
    let out = resume("good.ckpt", "3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_run_resumed_on_other_data_of_the_same_size_is_refused() {
    // The checkpoint's order fits any data of as many rows: without the data's fingerprint a
    // resumed run went on, silently, over other examples.
    let dir = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample/train.tsv");
    let rows = std::fs::read_to_string(&sample).unwrap();
    std::fs::write(dir.path().join("a.tsv"), &rows).unwrap();
    // the same rows, one word changed
    let other = rows.replacen("good", "fine", 1);
    assert_ne!(other, rows);
    std::fs::write(dir.path().join("b.tsv"), &other).unwrap();
    let text = "the cat sat on the mat. ".repeat(200);
    std::fs::write(dir.path().join("a.txt"), &text).unwrap();
    std::fs::write(dir.path().join("b.txt"), text.replacen("cat", "rat", 1)).unwrap();
    let run = |args: &[&str]| {
        let quiet = ["--threads", "1", "--quiet", "--keep-checkpoint"];
        let out = rnn(&[args, &quiet[..]].concat(), dir.path());
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), err)
    };
    let small = ["--hidden", "8", "--batch", "2", "--bptt", "8"];
    for (command, file, other, what, extra) in [
        ("train", "a.tsv", "b.tsv", "training data", &small[..2]),
        ("lm", "a.txt", "b.txt", "training text", &small[..]),
    ] {
        let start = [
            command,
            "--train",
            file,
            "--model",
            "m.safetensors",
            "--epochs",
            "1",
        ];
        assert_eq!(run(&[&start[..], extra].concat()), (Some(0), String::new()));
        let resume = |data: &str| {
            let args = [command, "--train", data, "--model", "r.safetensors"];
            let more = ["--resume", "m.safetensors.ckpt", "--epochs", "2"];
            run(&[&args[..], &more].concat())
        };
        assert_eq!(
            resume(other),
            (
                Some(1),
                format!(
                    "error: the {what} is not the one this run started on (its contents \
                     differ): resume with the same {what}, or start a new run\n"
                )
            ),
            "{command}"
        );
        assert_eq!(resume(file), (Some(0), String::new()), "{command}");
    }
}
