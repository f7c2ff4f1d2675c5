//! One training step of a tiny RNN, every number printed: `cargo run --example walkthrough`.
//! The output is quoted in `docs/bptt.md`, and a test keeps the two equal.

fn main() {
    print!("{}", rnn::walkthrough::report());
}
