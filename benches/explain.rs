//! How long `Model::explain` takes for long texts with the default network (a pooled
//! bidirectional LSTM, H = 64, embeddings of 64), the network whose explanation is not one
//! pass: its backward direction reads each explained prefix from that prefix's end.
//!
//! `cargo bench --bench explain`; divan prints the time per explanation. The server answers
//! `:explain` with this function, so its time is what one explain request costs a compute
//! thread.

use divan::{Bencher, black_box};
use rnn::data::sample::TRAIN;
use rnn::model::{Model, ModelConfig};

fn main() {
    divan::main();
}

/// The default network, untrained (its weights do not change the time), over the sample's
/// words.
fn model() -> Model {
    Model::for_data(TRAIN.iter().copied(), &ModelConfig::default()).expect("a model")
}

/// A text of `tokens` tokens, all of them words the model knows.
fn text(model: &Model, tokens: usize) -> String {
    let words: Vec<&str> = model
        .vocab
        .tokens()
        .iter()
        .map(String::as_str)
        .filter(|w| w.chars().all(char::is_alphabetic))
        .collect();
    words
        .iter()
        .cycle()
        .take(tokens)
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

#[divan::bench(args = [100, 1000, 4000, 10000], sample_count = 3, sample_size = 1)]
fn explain(bencher: Bencher, tokens: usize) {
    let model = model();
    let text = text(&model, tokens);
    assert_eq!(model.explain(&text).tokens.len(), tokens);
    bencher.bench_local(|| model.explain(black_box(&text)));
}
