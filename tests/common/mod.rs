//! What several test files share: the flags of the seed's setup, and running the binary with
//! a standard input.
//!
//! Most command-line tests were written when `rnn train`'s defaults were the seed's network;
//! the defaults are now bigger (see the README's "Train on your own data"), so those tests ask
//! for the seed's setup by name.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The seed's network: one layer of the plain cell, one direction, one-hot words (split on
/// white space, every one kept), the last state, no dropout.
pub const SEED_NET: [&str; 14] = [
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
#[allow(dead_code)] // (not every test file that shares this module runs the binary so)
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
