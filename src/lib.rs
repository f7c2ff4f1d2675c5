//! # rnn: recurrent neural networks for text, from scratch
//!
//! A text becomes token ids ([`data`]: a token rule, a vocabulary with `<unk>`); the network
//! ([`rnn`]) reads them through an embedding (or one-hot input), stacked recurrent layers of
//! Elman, GRU or LSTM cells, each forwards or both ways, and then either pools the top layer's
//! outputs over time into one prediction of a label (a classifier) or predicts the next token
//! at every step (a language model). A classifier also reads, by default, a hashed bag of the
//! text's n-grams, a linear model whose logits add to the recurrent network's (the wide path,
//! [`rnn::Ngrams`]). The seed's model is the smallest case, one Elman layer on one-hot words
//! classifying its last state:
//!
//! ```text
//! h_0 = 0
//! h_t = tanh(W_ih · x_t + W_hh · h_{t-1} + b_ih + b_hh)     t = 1..T
//! y   = W · h_T + b
//! p   = softmax(y),   L = -ln p[target]
//! ```
//!
//! Every gradient is written out by hand (backpropagation through time, in the cells'
//! `backward_step`s and [`rnn::Network`]'s backward pass) and checked against finite
//! differences (`tests/gradient_check.rs`). Training ([`train`]) runs mini-batches on several
//! threads, clips the gradient element-wise and updates with SGD, Adam or Adagrad ([`optim`]);
//! [`train::TrainConfig::seed`] is the seed's per-example SGD. Parameter names follow PyTorch's
//! `nn.Embedding`, `nn.RNN`/`nn.GRU`/`nn.LSTM` and `nn.Linear`, so a model file loads into
//! PyTorch tensor for tensor.
//!
//! ## Example
//! ```
//! use rnn::data::Dataset;
//! use rnn::rng::Rng;
//! use rnn::rnn::{Architecture, CellKind, Init, Network, Workspace};
//! use rnn::train::{train, Data, TrainConfig, INIT_STREAM};
//!
//! let train_pairs = [
//!     ("good", "pos"), ("bad", "neg"), ("very good", "pos"),
//!     ("very bad", "neg"), ("not good", "neg"), ("not bad", "pos"),
//! ];
//! let data = Dataset::from_pairs(&train_pairs, &[])?;
//! let mut rng = Rng::with_stream(0, INIT_STREAM);
//! let (v, c) = (data.vocab.len(), data.labels.len());
//! let arch = Architecture::new(CellKind::Rnn, v, 16, c);
//! let mut net = Network::new(&arch, Init::LikeRnn, &mut rng)?;
//! let config = TrainConfig { epochs: 300, lr: 0.1, ..TrainConfig::seed() };
//! let report = train(&mut net, Data { train: &data.train, ..Data::default() }, &config, |_| {})?;
//! assert_eq!(report.history.last().unwrap().train.accuracy, 1.0);
//!
//! let tokens = data.vocab.encode("not bad")?;
//! let probs = &net.predict(&[&tokens], &mut Workspace::default())[0];
//! let label = &data.labels[rnn::rnn::argmax(probs)];
//! assert_eq!(label, "pos");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Modules
//! - [`model`]: the one model type (network, token rule, vocabulary, and a task: labels for a
//!   classifier, the next token for a language model), read from a file of either kind; a
//!   classifier's operations: train, predict, explain, evaluate. [`lm`]: a language model's:
//!   train on a text, generate, score. [`recipe`] and [`lm::recipe`]: how `rnn train`, `rnn lm` and the Python
//!   package make them from data and settings. [`autotune`]: a search of a classifier's
//!   settings within a budget counted in nominal seconds, scored on the validation rows.
//! - [`model_file`]: `.safetensors` model files with PyTorch's names; [`checkpoint`]: a model
//!   file with a run's state, to resume it; [`tensor_file`]: reading such files safely.
//! - [`data`]: data files (TSV, CSV, fastText) with `file:line` errors, token rules,
//!   vocabularies, the held-out split, the built-in sample.
//! - [`rnn`]: the network: cells, layers, directions, pooling, heads, the wide path of
//!   n-grams, dropout, softmax and cross-entropy, forward and backward.
//! - [`train`]: the training loop (classifier, text, and a rank of a data-parallel run),
//!   evaluation, the best epoch, early stopping, the learning-rate schedule, divergence.
//! - [`optim`]: clipping, SGD, Adam, Adagrad. [`kernels`]: the matrix products and vector
//!   loops, dispatched by CPU. [`memory`]: the check that a network fits in memory.
//! - [`metrics`], [`plot`]: per-epoch scores, their CSV and charts. [`demo`]: the seed
//!   experiment. [`walkthrough`]: one training step of a tiny network with every number.
//! - [`rng`]: the seeded random streams. [`fsutil`]: atomic file writes. [`error`]: the typed
//!   error.
//! - [`serve`]: the model server behind `rnn serve`: HTTP routes, dynamic batching, metrics.
//!
//! ## Features
//! `cli` (the command line's flags, progress bars and signal handling: clap, indicatif,
//! ctrlc, anyhow), `serve` (the model server: axum, tokio) and `plot` (the charts: plotters) are
//! on by default; the binary needs all three. `cargo build --no-default-features` builds the
//! library alone, which depends on none of them.

pub mod autotune;
pub mod checkpoint;
pub mod data;
pub mod demo;
pub mod error;
pub mod fsutil;
pub mod kernels;
pub mod lm;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod model_file;
pub mod optim;
#[cfg(feature = "plot")]
pub mod plot;
pub mod recipe;
pub mod rng;
pub mod rnn;
#[cfg(feature = "serve")]
pub mod serve;
pub mod tensor_file;
pub mod train;
pub mod walkthrough;
