//! What several test files share: the flags of the seed's setup, running the binary with a
//! standard input, and a model file's parts to alter and write back.
//!
//! Most command-line tests were written when `rnn train`'s defaults were the seed's network;
//! the defaults are now bigger (see the README's "Train on your own data"), so those tests ask
//! for the seed's setup by name.

// Each test file that shares this module uses a part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use safetensors::tensor::{Dtype, TensorView};

/// Runs this build's `rnn` in `cwd`.
pub fn rnn(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rnn"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the binary runs")
}

/// Copies the sample's `train.tsv` and `test.tsv` (`data/sample`) into `dir`.
pub fn copy_sample(dir: &Path) {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
    for name in ["train.tsv", "test.tsv"] {
        std::fs::copy(sample.join(name), dir.join(name)).unwrap();
    }
}

/// Runs the binary, which must succeed; returns its standard output.
pub fn succeeds(args: &[&str], cwd: &Path) -> String {
    let out = rnn(args, cwd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {err}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the binary, which must fail with exit code 1 or 2 and no panic; returns its standard
/// error.
pub fn fails(args: &[&str], cwd: &Path) -> String {
    let out = rnn(args, cwd);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(matches!(out.status.code(), Some(1 | 2)), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    err
}

/// Runs the binary, which must fail as [`fails`] does, saying `says`: exactly that, when it
/// starts with `error: `, or else an error that contains it (a flag's name, say).
pub fn fails_saying(args: &[&str], cwd: &Path, says: &str) {
    let err = fails(args, cwd);
    if says.starts_with("error: ") {
        assert_eq!(err, says, "{args:?}");
    } else {
        assert!(
            err.starts_with("error: ") && err.contains(says),
            "{args:?}: {err}"
        );
    }
}

/// Runs the binary with `args` in `dir`, sends it SIGINT once it has printed a line for which
/// `at` holds, and returns its output (the lines read before the signal included).
pub fn interrupted_at(args: &[&str], dir: &Path, at: impl Fn(&str) -> bool) -> Output {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_rnn"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the run ended before the line to stop it at: {seen}"
        );
        seen += &line;
        if at(&line) {
            break;
        }
    }
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(killed.success());
    child.stdout = Some(stdout.into_inner());
    let mut out = child.wait_with_output().unwrap();
    out.stdout = [seen.into_bytes(), out.stdout].concat();
    out
}

/// The seed's network: one layer of the plain cell, one direction, one-hot words (split on
/// white space, every one kept), the last state, no dropout.
pub const SEED_NET: [&str; 16] = [
    "--cell",
    "rnn",
    "--bidirectional",
    "false",
    "--embed",
    "0",
    "--pool",
    "last",
    "--dropout",
    "0",
    "--tokens",
    "word",
    "--min-count",
    "1",
    "--ngrams",
    "0",
];

/// The seed's training: per-example SGD, every epoch run.
pub const SEED_TRAINING: [&str; 6] = ["--optimizer", "sgd", "--batch", "1", "--patience", "0"];

/// [`SEED_NET`] and [`SEED_TRAINING`], but for the cell.
pub fn seed_setup_with_cell(cell: &str) -> Vec<&str> {
    let mut flags = vec!["--cell", cell];
    flags.extend(&SEED_NET[2..]);
    flags.extend(SEED_TRAINING);
    flags
}

/// Runs the binary in `dir` with `input` on a piped standard input (closed after writing).
pub fn rnn_with_stdin(args: &[&str], dir: &Path, input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rnn"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// The tensors and metadata of a model file (or a checkpoint), to be altered and written back.
pub struct Parts {
    pub tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    pub meta: HashMap<String, String>,
}

/// The parts of the file at `path`.
pub fn read_parts(path: &Path) -> Parts {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    Parts {
        tensors: file
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
            .collect(),
        meta: header.metadata().clone().unwrap(),
    }
}

/// Writes `parts` as a safetensors file at `path`.
pub fn write_parts(parts: &Parts, path: &Path) {
    let views: Vec<(&str, TensorView<'_>)> = parts
        .tensors
        .iter()
        .map(|(n, d, s, b)| (n.as_str(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    let bytes = safetensors::serialize(views, Some(parts.meta.clone())).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// The tensor `name` of `parts`.
pub fn tensor<'a>(
    parts: &'a mut Parts,
    name: &str,
) -> &'a mut (String, Dtype, Vec<usize>, Vec<u8>) {
    parts.tensors.iter_mut().find(|t| t.0 == name).unwrap()
}
