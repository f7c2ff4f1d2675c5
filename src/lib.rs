//! # rnn: a recurrent neural network for sequence classification, from scratch
//!
//! A sentence is a sequence of words; every word is a one-hot vector over the vocabulary. An
//! Elman cell reads the words one by one and a linear layer classifies its last hidden state:
//!
//! ```text
//! h_0 = 0
//! h_t = tanh(Wxh · x_t + Whh · h_{t-1} + bh)     t = 1..T
//! y   = Why · h_T + by
//! p   = softmax(y),   L = -ln p[target]
//! ```
//!
//! The gradients of `L` for all five parameters are written out by hand (backpropagation
//! through time, [`rnn::Network::backward`]), clipped element-wise, and applied by plain SGD
//! after every example ([`train::train`]). Parameter names follow PyTorch's `nn.RNN` and
//! `nn.Linear`, so that a model maps onto PyTorch's one tensor for tensor.
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
//! - [`data`]: the built-in sample, the vocabulary and one-hot encoding.
//! - [`rnn`]: the network: the cell interface and the Elman cell, the unroll over time,
//!   softmax and cross-entropy, backpropagation through time.
//! - [`optim`]: clipping and SGD. [`train`]: the training loop and evaluation. [`recipe`]:
//!   how `rnn train` (and the Python package) makes a classifier from labelled rows.
//! - [`metrics`], [`plot`]: per-epoch scores, their CSV and chart. [`demo`]: the seed experiment.
//! - [`walkthrough`]: one training step of a tiny network with every number, for the docs.
//! - [`kernels`]: the matrix products. [`rng`]: the seeded random stream. [`fsutil`]: atomic
//!   file writes. [`error`]: the error type.
//! - [`serve`]: the model server behind `rnn serve`: HTTP routes, dynamic batching, metrics.
//!
//! ## Features
//! `serve` (the model server: axum, tokio) and `plot` (the charts: plotters) are on by default;
//! the binary needs both. `cargo build --no-default-features` builds the library without them.

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
