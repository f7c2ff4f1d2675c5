//! The recurrent network: an optional embedding, stacked layers of cells that read forwards or
//! both ways, pooling over time, an output layer, softmax and cross-entropy, and
//! backpropagation through all of it.
//!
//! ```text
//! x_t   = onehot(w_t)  or  E[w_t]                       (one-hot, or `embedding.weight` E: V×E)
//! layer l = 1..L, direction d:  h_{l,d,t} = cell(W_ih x_{l,t} + b_ih, h_{l,d,t∓1})
//! x_{l+1,t} = dropout([h_{l,0,t}, h_{l,1,t}])          (D·H, the next layer's input)
//! f     = dropout(pool_t(h_{L,·,t}))                    (last | mean | max, D·H)
//! y     = W_fc f + b_fc,   p = softmax(y),   L = -ln p_target
//! ```
//!
//! With a [`Head::Step`] there is no pooling: every step's top-layer output is a feature
//! vector, `f_t = dropout([h_{L,0,t}, h_{L,1,t}])`, with its own prediction `y_t = W_fc f_t +
//! b_fc` and loss `L_t = -ln p_t[target_t]`, and a batch's loss is the mean over its tokens. A
//! language model's target at step `t` is token `t + 1`. Such a network can also carry its
//! state from one window of a long text to the next ([`Carry`], [`Network::forward_carried`]):
//! the window starts from the state the previous one ended in, and no gradient crosses back
//! (truncated backpropagation through time).
//!
//! The pieces, one file each: [`cell`] (one step of one direction; [`Elman`], [`Gru`],
//! [`Lstm`]), [`unroll`] (one direction over time, written once for every cell), [`layer`] (the
//! input projection and the directions), [`pool`] (pooling over time), [`dropout`], [`head`]
//! (the output layer and the loss), and [`inspect`] (what flows through one text, for
//! `explain`). This file builds a network from an [`Architecture`] and runs the pieces in
//! order, forward and back. The trainer, the model file and the server see only [`Network`].
//!
//! One forward pass serves everything: training, evaluation, prediction and the step-by-step
//! trace behind `explain`. With an architecture's defaults (one layer, one direction, one-hot
//! input, the last state) it is the seed's network.

mod arch;
mod batch;
mod cell;
mod dropout;
mod elman;
mod gates;
mod grads;
mod gru;
mod head;
mod inspect;
mod layer;
mod lstm;
mod params;
mod pool;
mod softmax;
mod unroll;

pub use arch::{Architecture, CellKind, Pool};
pub use batch::Batch;
pub use cell::{Cell, Pass, Recurrent};
pub use elman::Elman;
pub use grads::{CellGradient, DEFER_ROWS, Gradients, Part, Product, Table};
pub use gru::Gru;
pub use inspect::Flow;
pub use lstm::Lstm;
pub use params::{Layout, Tensor};
pub use softmax::{argmax, cross_entropy, softmax_in_place};

use crate::error::{Error, Result};
use crate::kernels::{AlignedVec, add_into};
use crate::metrics::Tally;
use crate::rng::Rng;
pub use arch::Head;
use head::Fc;
use layer::{
    Above, Direction, FromNextLayer, Hook, Input, Layer, LayerGrads, LayerInput, LayerWork,
};
use pool::Pooling;
use unroll::fit;

/// A network: its architecture, its layers, and all its parameters in one buffer.
///
/// The buffer holds the token tables first (the embedding, or the first layer's input weights
/// under one-hot input, one a direction: see [`Gradients`]), then every layer's tensors, layer
/// by layer and direction by direction, then `fc.weight` and `fc.bias`.
#[derive(Clone, Debug)]
pub struct Network {
    arch: Architecture,
    layers: Vec<Layer>,
    /// Where `embedding.weight` (V×E, a row a token) starts, when there is one.
    embedding: Option<usize>,
    tables: Vec<Table>,
    /// Where `fc.weight` starts; `fc.bias` follows it.
    fc: usize,
    layout: Layout,
    params: AlignedVec,
}

/// How the weights are drawn at first: PyTorch's way, with a choice of scale for the one-hot
/// input weights (`Wxh`, the first layer's `weight_ih` without an embedding), or the seed's
/// numpy original's way.
///
/// A one-hot input makes `Wxh` a table of token vectors, an embedding. How large those vectors
/// start matters: small ones let a network read the order of a few words from a tiny dataset
/// (the demo); vectors as large as a learnt embedding's let it pick out words in long texts
/// (60 points of accuracy on the spam benchmark, see the README).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Uniform in `[-1/√H, 1/√H]`, as PyTorch initialises `nn.RNN(V, H)`: variance `1/(3H)`.
    LikeRnn,
    /// Uniform in `[-a, a]`: variance `a²/3`. `a = 1` gives the variance (1/3) of PyTorch's
    /// usual `nn.Embedding(V, H)` (N(0, 1)) followed by `nn.RNN(H, H)`'s input weights
    /// (U(±1/√H)).
    Uniform(f32),
    /// The numpy original of the seed: every weight, the embedding's too, N(0, 1)/1000, and
    /// every bias 0. Tiny weights start every unit in `tanh`'s linear part.
    Numpy,
}

/// Buffers reused from one batch to the next, so that a training run allocates once.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    layers: Vec<LayerWork>,
    /// For a backward direction: where each of its packed positions reads (see
    /// [`Batch::reversed_positions`]).
    positions: Vec<u32>,
    /// The embedded tokens, N × E in forward packed order (the first layer's input).
    embedded: AlignedVec,
    pooling: Pooling,
    /// The dropout mask of the features (empty when none was applied).
    feature_mask: Vec<f32>,
    /// The logits and probabilities of every row (rows × C).
    logits: Vec<f32>,
    probs: Vec<f32>,
    /// Gradient buffers of the backward pass.
    dlogits: Vec<f32>,
    dfeatures: Vec<f32>,
    d_last: Vec<Vec<f32>>,
    /// The gradient on the input of the layer being undone, and on the outputs of the one
    /// below (N × width each).
    d_in: AlignedVec,
    d_out: AlignedVec,
    /// Every token as the index of its entry in the gradient's token tables.
    local_tokens: Vec<u32>,
}

impl Workspace {
    /// The probabilities of row `r` of the last batch (in the batch's sorted order).
    pub fn probabilities(&self, r: usize, classes: usize) -> &[f32] {
        &self.probs[r * classes..][..classes]
    }

    /// The logits (before softmax) of row `r` of the last batch: a token's, in packed order,
    /// under a [`Head::Step`].
    pub fn logits(&self, r: usize, classes: usize) -> &[f32] {
        &self.logits[r * classes..][..classes]
    }
}

/// The state a network carries from one window of a text to the next: every layer's state
/// after the window's last step (`S` floats a row, rows × S a layer), the initial state of the
/// next window. Empty, it is the zero state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Carry {
    layers: Vec<Vec<f32>>,
    rows: usize,
}

impl Carry {
    /// Back to the zero state (the start of a text).
    pub fn clear(&mut self) {
        self.layers.clear();
        self.rows = 0;
    }

    /// Whether this is the zero state.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Layer `l`'s states (rows × S), if any were carried.
    pub fn layer(&self, l: usize) -> Option<&[f32]> {
        self.layers.get(l).map(Vec::as_slice)
    }
}

/// The tensor names of layer `l`'s direction `d`, PyTorch's way: `rnn.weight_ih_l1_reverse`.
fn rnn_name(base: &str, layer: usize, reverse: bool) -> String {
    let suffix = if reverse { "_reverse" } else { "" };
    format!("rnn.{base}_l{layer}{suffix}")
}

/// The order in which PyTorch registers, and so initialises, a direction's tensors.
fn pytorch_rank(name: &str) -> usize {
    [
        "rnn.weight_ih",
        "rnn.weight_hh",
        "rnn.bias_ih",
        "rnn.bias_hh",
    ]
    .iter()
    .position(|p| name.starts_with(p))
    .unwrap_or(4)
}

impl Network {
    /// A network with freshly initialised parameters, drawn in PyTorch's order of tensors: the
    /// embedding N(0, 1); then, layer by layer and direction by direction, every tensor uniform
    /// in `[-1/√H, 1/√H]` (PyTorch's `nn.RNN/GRU/LSTM`), but for one-hot input weights, drawn as
    /// `init` says; then the output layer uniform in `[-1/√(D·H), 1/√(D·H)]` (`nn.Linear`).
    ///
    /// # Errors
    /// [`Error::Config`] if a size is 0, the dropout is out of range, or the input scale is
    /// not a positive number.
    pub fn new(arch: &Architecture, init: Init, rng: &mut Rng) -> Result<Self> {
        let mut net = Self::zeros(arch)?;
        let input = match init {
            Init::LikeRnn => 1.0 / (arch.hidden as f32).sqrt(),
            Init::Uniform(a) if a.is_finite() && a > 0.0 => a,
            Init::Uniform(a) => {
                return Err(Error::Config(format!(
                    "the input weights' scale must be a positive number, not {a}"
                )));
            }
            Init::Numpy => {
                // every weight N(0, 1)/1000, tensor by tensor; the biases stay 0
                for t in net.layout.tensors() {
                    if t.name.contains("weight") {
                        for w in &mut net.params[t.range()] {
                            *w = (rng.normal() / 1000.0) as f32;
                        }
                    }
                }
                return Ok(net);
            }
        };
        let recurrent = 1.0 / (arch.hidden as f64).sqrt();
        let mut order: Vec<&Tensor> = net.layout.tensors().iter().collect();
        // embedding, then layer by layer and direction by direction (the suffix), each in
        // PyTorch's order, then fc
        let key = |t: &Tensor| {
            let group = if t.name.starts_with("embedding") {
                (0, 0, false)
            } else if let Some(rest) = t.name.strip_prefix("rnn.") {
                let (_, layer) = rest.rsplit_once("_l").expect("rnn tensors end in _lN");
                let reverse = layer.ends_with("_reverse");
                let l: usize = layer.trim_end_matches("_reverse").parse().expect("a layer");
                (1, l, reverse)
            } else {
                (2, 0, false)
            };
            (group, pytorch_rank(&t.name))
        };
        order.sort_by_key(|t| key(t));
        let ranges: Vec<(String, std::ops::Range<usize>)> =
            order.iter().map(|t| (t.name.clone(), t.range())).collect();
        let features = (arch.features() as f64).sqrt().recip();
        for (name, range) in ranges {
            let params = &mut net.params[range];
            if name == "embedding.weight" {
                params.iter_mut().for_each(|w| *w = rng.normal() as f32);
            } else if name == "rnn.weight_ih_l0" && arch.embed.is_none()
                || name == "rnn.weight_ih_l0_reverse" && arch.embed.is_none()
            {
                let a = f64::from(input);
                params.iter_mut().for_each(|w| *w = rng.symmetric(a) as f32);
            } else if name.starts_with("fc.") {
                params
                    .iter_mut()
                    .for_each(|w| *w = rng.symmetric(features) as f32);
            } else {
                params
                    .iter_mut()
                    .for_each(|w| *w = rng.symmetric(recurrent) as f32);
            }
        }
        Ok(net)
    }

    /// A network whose parameters are all zero (to be filled, e.g. from a model file).
    ///
    /// # Errors
    /// [`Error::Config`] if a size is 0 or the dropout is out of range.
    pub fn zeros(arch: &Architecture) -> Result<Self> {
        Self::with_cells(arch, |_, _| arch.cell.build(arch.hidden))
    }

    /// [`Network::zeros`] without the parameters yet (`params()` is empty until
    /// [`Network::allocate`]): its layout can be checked against what a file holds before
    /// memory is spent on it.
    ///
    /// # Errors
    /// [`Error::Config`] if a size is 0, the dropout is out of range, or the parameters would
    /// not fit in memory's address space.
    pub(crate) fn unallocated(arch: &Architecture) -> Result<Self> {
        if arch.parameter_count().is_none() {
            return Err(Error::Config(format!(
                "a {arch} network with V = {} tokens and C = {} classes has more than 2^64 \
                 parameters",
                arch.vocab, arch.classes
            )));
        }
        Self::build(arch, |_, _| arch.cell.build(arch.hidden))
    }

    /// Gives an [`Network::unallocated`] network its parameters, all zero.
    ///
    /// # Errors
    /// [`Error::Config`] when they would not fit in the memory available (the sizes may come
    /// from a flag or a file: this refuses them with a sentence rather than an abort).
    pub(crate) fn allocate(&mut self) -> Result<()> {
        let arch = &self.arch;
        let bytes = u64::try_from(self.layout.len())
            .ok()
            .and_then(|n| n.checked_mul(4));
        let what = format!(
            "a {arch} network with V = {} tokens and C = {} classes",
            arch.vocab, arch.classes
        );
        crate::memory::check(bytes, &what)?;
        self.params = AlignedVec::zeros(self.layout.len());
        Ok(())
    }

    /// A network of `arch`'s shape whose cells `cell(layer, reverse)` makes (one of
    /// [`CellKind`]'s, or your own, of `arch.hidden` units), all parameters zero.
    ///
    /// # Errors
    /// [`Error::Config`] if a size is 0 or the dropout is out of range.
    ///
    /// # Panics
    /// If a cell has another number of hidden units than `arch.hidden`.
    pub fn with_cells(
        arch: &Architecture,
        cell: impl FnMut(usize, bool) -> Box<dyn Cell>,
    ) -> Result<Self> {
        let mut net = Self::build(arch, cell)?;
        net.allocate()?;
        Ok(net)
    }

    /// The network's structure and layout, without parameters.
    fn build(
        arch: &Architecture,
        mut cell: impl FnMut(usize, bool) -> Box<dyn Cell>,
    ) -> Result<Self> {
        arch.validate()?;
        let (v, h) = (arch.vocab, arch.hidden);
        let mut cells: Vec<Vec<Box<dyn Cell>>> = (0..arch.layers)
            .map(|l| {
                (0..arch.directions())
                    .map(|d| {
                        let c = cell(l, d == 1);
                        assert_eq!(c.hidden(), h, "a cell of the architecture's size");
                        c
                    })
                    .collect()
            })
            .collect();
        let mut layout = Layout::default();
        // the token tables first: the embedding, or every direction's one-hot input weights
        let mut tables = Vec::new();
        let embedding = arch.embed.map(|e| {
            let offset = layout.push("embedding.weight", &[v, e], false);
            tables.push(Table { offset, width: e });
            offset
        });
        let mut table_w_ih = Vec::new();
        if embedding.is_none() {
            let mut entry_at = 0;
            for (d, c) in cells[0].iter().enumerate() {
                let g = c.gates() * h;
                let name = rnn_name("weight_ih", 0, d == 1);
                let offset = layout.push(name, &[g, v], true);
                tables.push(Table { offset, width: g });
                table_w_ih.push((offset, entry_at));
                entry_at += g;
            }
        }
        let mut layers = Vec::new();
        for (l, layer_cells) in cells.iter_mut().enumerate() {
            let input = match (l, arch.embed) {
                (0, None) => Input::Tokens(v),
                _ => Input::Dense(arch.input_width(l)),
            };
            let mut dirs = Vec::new();
            for (d, c) in layer_cells.drain(..).enumerate() {
                let reverse = d == 1;
                let g = c.gates() * h;
                let (w_ih, entry_at) = match input {
                    Input::Tokens(_) => table_w_ih[d],
                    Input::Dense(width) => {
                        let name = rnn_name("weight_ih", l, reverse);
                        (layout.push(name, &[g, width], false), 0)
                    }
                };
                let b_ih = layout.push(rnn_name("bias_ih", l, reverse), &[g], false);
                let cell_at = layout.len();
                for (base, shape) in c.tensors() {
                    layout.push(rnn_name(base, l, reverse), &shape, false);
                }
                dirs.push(Direction {
                    cell_len: layout.len() - cell_at,
                    cell: c,
                    reverse,
                    w_ih,
                    b_ih,
                    cell_at,
                    entry_at,
                });
            }
            layers.push(Layer { input, dirs });
        }
        let fc = layout.push("fc.weight", &[arch.classes, arch.features()], false);
        layout.push("fc.bias", &[arch.classes], false);
        Ok(Network {
            arch: arch.clone(),
            layers,
            embedding,
            tables,
            fc,
            layout,
            params: AlignedVec::new(),
        })
    }

    /// The architecture.
    pub fn arch(&self) -> &Architecture {
        &self.arch
    }

    /// `V`, the number of input tokens.
    pub fn vocab(&self) -> usize {
        self.arch.vocab
    }

    /// `H`, the number of hidden units of every layer and direction.
    pub fn hidden(&self) -> usize {
        self.arch.hidden
    }

    /// `C`, the number of classes.
    pub fn classes(&self) -> usize {
        self.arch.classes
    }

    /// The cell of layer `layer`, direction `d` (0 forward, 1 backward).
    pub fn cell(&self, layer: usize, d: usize) -> &dyn Cell {
        &*self.layers[layer].dirs[d].cell
    }

    /// The token tables at the start of the parameters (see [`Gradients`]).
    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    /// The names, shapes and places of all parameter tensors.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// All parameters, laid out as [`Network::layout`] says.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// All parameters, mutable (for optimisers and loading).
    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    /// The tensors PyTorch keeps that the cells fold into their layer's input bias, as
    /// `(name, shape, name of the tensor it is added to)`; see [`Cell::folded_tensors`].
    pub fn folded_tensors(&self) -> Vec<(String, Vec<usize>, String)> {
        let mut out = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            for dir in &layer.dirs {
                for (base, shape) in dir.cell.folded_tensors() {
                    let into = rnn_name("bias_ih", l, dir.reverse);
                    out.push((rnn_name(base, l, dir.reverse), shape, into));
                }
            }
        }
        out
    }

    /// Where the dense parameters start: after the token tables.
    fn dense_start(&self) -> usize {
        self.tables.iter().map(|t| t.width).sum::<usize>() * self.arch.vocab
    }

    fn fc(&self) -> Fc<'_> {
        let (c, f) = (self.arch.classes, self.arch.features());
        let (w, b) = self.params[self.fc..].split_at(c * f);
        Fc { w, b: &b[..c] }
    }

    /// Runs `batch` forward in training mode, leaving everything [`Network::backward`] needs in
    /// `ws`, and the probabilities of every row. With `dropout`, the architecture's dropout
    /// draws its masks from that stream; without, nothing is dropped (as in evaluation).
    /// Returns the summed loss and the number of correct predictions when the batch has
    /// targets (otherwise only the count).
    pub fn forward(&self, batch: &Batch, ws: &mut Workspace, dropout: Option<&mut Rng>) -> Tally {
        self.run(batch, ws, true, dropout, None)
    }

    /// [`Network::forward`] from the states in `carry` (zero when it is empty), leaving in
    /// `carry` the states after the batch's last step, for the next window of the same rows.
    /// [`Network::backward`] then treats the initial states as constants.
    ///
    /// # Panics
    /// If the network reads both ways, the rows have different lengths, or `carry` holds
    /// another number of rows.
    pub fn forward_carried(
        &self,
        batch: &Batch,
        ws: &mut Workspace,
        carry: &mut Carry,
        dropout: Option<&mut Rng>,
    ) -> Tally {
        self.run(batch, ws, true, dropout, Some(carry))
    }

    /// [`Network::forward_only`] from the states in `carry`, leaving the final states there (see
    /// [`Network::forward_carried`]).
    ///
    /// # Panics
    /// As [`Network::forward_carried`].
    pub fn forward_only_carried(
        &self,
        batch: &Batch,
        ws: &mut Workspace,
        carry: &mut Carry,
    ) -> Tally {
        self.run(batch, ws, false, None, Some(carry))
    }

    /// How many predictions `batch` makes, over which [`Network::backward`] takes the mean
    /// loss: one a row, or one a token under a [`Head::Step`].
    pub fn predictions(&self, batch: &Batch) -> usize {
        match self.arch.head {
            Head::Sequence => batch.rows(),
            Head::Step => batch.token_count(),
        }
    }

    /// [`Network::forward`] for prediction only, without dropout: keeps the current step's
    /// states, not every step's, so its memory does not grow with the length of the sequences
    /// (and stays in cache). Leaves the probabilities in `ws` but nothing for
    /// [`Network::backward`].
    pub fn forward_only(&self, batch: &Batch, ws: &mut Workspace) -> Tally {
        self.run(batch, ws, false, None, None)
    }

    fn run(
        &self,
        batch: &Batch,
        ws: &mut Workspace,
        keep: bool,
        rng: Option<&mut Rng>,
        carry: Option<&mut Carry>,
    ) -> Tally {
        let arch = &self.arch;
        let mut rng = rng.filter(|_| arch.dropout > 0.0);
        let step_head = arch.head == Head::Step;
        if let Some(carry) = carry.as_deref() {
            assert!(
                !arch.bidirectional,
                "a state is carried in one direction only"
            );
            assert!(
                carry.is_empty() || carry.rows == batch.rows(),
                "a carried state of {} rows for a batch of {}",
                carry.rows,
                batch.rows()
            );
        }
        if arch.bidirectional {
            batch.reversed_positions(&mut ws.positions);
        }
        if let Some(at) = self.embedding {
            self.embed(at, batch.tokens(), &mut ws.embedded);
        }
        ws.layers.resize_with(self.layers.len(), LayerWork::default);
        ws.pooling.begin(arch.pool, batch.rows(), arch.features());
        let top = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let (below, this) = ws.layers.split_at_mut(l);
            let input = layer_input(layer, batch, &ws.embedded, below.last());
            let work = &mut this[0];
            let pooling = &mut ws.pooling;
            let (h, pool) = (arch.hidden, arch.pool);
            let s_size = layer.dirs[0].cell.state_size();
            let initial = carry.as_deref().and_then(|c| c.layer(l));
            layer.forward(
                &self.params,
                batch,
                input,
                &ws.positions,
                work,
                keep,
                initial,
                l < top || step_head,
                |d, t, s| {
                    if l == top && !step_head {
                        pooling.step(pool, batch, d, t, s, s_size, h);
                    }
                },
            );
            work.mask.clear();
            if let Some(rng) = rng.as_deref_mut().filter(|_| l < top || step_head) {
                // dropout between layers, on the next layer's input (or the step head's)
                dropout::draw(&mut work.mask, work.out.len(), arch.dropout, rng);
                dropout::apply(&mut work.out, &work.mask);
            }
        }
        if let Some(carry) = carry {
            // every layer's state after the last step, the next window's start
            carry.layers.resize_with(self.layers.len(), Vec::new);
            for (l, (layer, work)) in self.layers.iter().zip(&ws.layers).enumerate() {
                let s_size = layer.dirs[0].cell.state_size();
                let last = unroll::final_states(&work.tracks[0], batch, s_size, keep);
                carry.layers[l].clear();
                carry.layers[l].extend_from_slice(last);
            }
            carry.rows = batch.rows();
        }
        if step_head {
            // every step's outputs are features, and every token has a prediction
            return self.fc().forward(
                &ws.layers[top].out,
                batch.step_targets(),
                &mut ws.logits,
                &mut ws.probs,
            );
        }
        ws.pooling.finish(arch.pool, batch);
        ws.feature_mask.clear();
        if let Some(rng) = rng {
            // dropout before the output layer
            let features = &mut ws.pooling.features;
            dropout::draw(&mut ws.feature_mask, features.len(), arch.dropout, rng);
            dropout::apply(features, &ws.feature_mask);
        }
        self.fc().forward(
            &ws.pooling.features,
            batch.targets(),
            &mut ws.logits,
            &mut ws.probs,
        )
    }

    /// The embedding of every token, packed (N × E): row `w` of the table for token `w`.
    fn embed(&self, at: usize, tokens: &[u32], out: &mut AlignedVec) {
        let e = self.arch.embed.expect("an embedding");
        fit(out, tokens.len() * e);
        for (row, &w) in out.chunks_exact_mut(e).zip(tokens) {
            row.copy_from_slice(&self.params[at + w as usize * e..][..e]);
        }
    }

    /// Backpropagation through the network for the batch last run by [`Network::forward`] with
    /// this workspace: **adds** the gradient of the batch's mean loss to `grads`.
    ///
    /// # Panics
    /// If the batch has no targets.
    pub fn backward(&self, batch: &Batch, ws: &mut Workspace, grads: &mut Gradients) {
        let n = self.predictions(batch);
        self.backward_weighted(batch, ws, grads, 1.0 / n as f32);
    }

    /// As [`Network::backward`], for the loss `weight · Σ` of the batch's losses (a part of a
    /// larger batch is weighted by one over the size of the whole).
    pub fn backward_weighted(
        &self,
        batch: &Batch,
        ws: &mut Workspace,
        grads: &mut Gradients,
        weight: f32,
    ) {
        self.backward_with(batch, ws, grads, weight, None, None);
    }

    /// As [`Network::backward_weighted`], with every row's loss also weighted by its class's
    /// weight: the loss `weight · Σ class_weights[target] · L`.
    pub fn backward_class_weighted(
        &self,
        batch: &Batch,
        ws: &mut Workspace,
        grads: &mut Gradients,
        weight: f32,
        class_weights: &[f32],
    ) {
        assert_eq!(class_weights.len(), self.classes(), "a weight a class");
        self.backward_with(batch, ws, grads, weight, Some(class_weights), None);
    }

    /// [`Network::backward_class_weighted`], letting `hook(d, t, ds)`, if given, see the
    /// gradient on the top layer's direction `d` at its step `t` before that step is undone.
    fn backward_with(
        &self,
        batch: &Batch,
        ws: &mut Workspace,
        grads: &mut Gradients,
        weight: f32,
        class_weights: Option<&[f32]>,
        mut hook: Option<Hook<'_>>,
    ) {
        let arch = &self.arch;
        let (c, f) = (arch.classes, arch.features());
        let dense = self.dense_start();
        if !self.tables.is_empty() {
            grads.localize(batch.tokens(), &mut ws.local_tokens);
        }
        let entry = grads.column_width();
        let (entries, rest, products) = grads.parts();
        let top = self.layers.len() - 1;
        let step_head = arch.head == Head::Step;
        // the head: dy, dW_fc, db_fc, and df, the gradient on the features (every step's, under
        // a step head)
        {
            let (dw, db) = rest[self.fc - dense..][..c * f + c].split_at_mut(c * f);
            let (features, targets, mask) = if step_head {
                let top = &ws.layers[top];
                (&top.out[..], batch.step_targets(), &top.mask)
            } else {
                (&ws.pooling.features[..], batch.targets(), &ws.feature_mask)
            };
            self.fc().backward(
                features,
                &ws.probs,
                targets,
                weight,
                class_weights,
                dw,
                db,
                &mut ws.dlogits,
                &mut ws.dfeatures,
            );
            if !mask.is_empty() {
                dropout::apply(&mut ws.dfeatures, mask);
            }
        }
        // the layers, from the top down; each hands the gradient on its input to the one below
        let mut layer_grads = LayerGrads {
            entries,
            entry,
            rest,
            base: dense,
            products,
        };
        if !step_head && arch.pool == Pool::Last && arch.bidirectional {
            // each direction's part of the gradient on the features reaches its final states
            ws.d_last.resize_with(2, Vec::new);
            for (d, out) in ws.d_last.iter_mut().enumerate() {
                Pooling::direction_block(&ws.dfeatures, batch.rows(), d, arch.hidden, out);
            }
        }
        for (l, layer) in self.layers.iter().enumerate().rev() {
            let (below, this) = ws.layers.split_at_mut(l);
            let input = layer_input(layer, batch, &ws.embedded, below.last());
            // the gradient on this layer's input is needed below it, or by the embedding
            let wants_dx = l > 0 || self.embedding.is_some();
            if wants_dx {
                fit(&mut ws.d_in, batch.token_count() * arch.input_width(l));
                ws.d_in.fill(0.0);
            }
            let dx = wants_dx.then_some(&mut ws.d_in[..]);
            let from_head = FromHead {
                pool: arch.pool,
                pooling: &ws.pooling,
                batch,
                df: &ws.dfeatures,
                d_last: if arch.bidirectional { &ws.d_last } else { &[] },
                hidden: arch.hidden,
            };
            let from_next = FromNextLayer {
                // under a step head, the top layer's outputs get their gradient as a lower
                // layer's do, at every step
                d_out: if l == top { &ws.dfeatures } else { &ws.d_out },
                batch,
                positions: &ws.positions,
                dirs: arch.directions(),
                hidden: arch.hidden,
            };
            let above: &dyn Above = if l == top && !step_head {
                &from_head
            } else {
                &from_next
            };
            let layer_hook = if l == top { hook.take() } else { None };
            layer.backward(
                &self.params,
                batch,
                input,
                &ws.positions,
                &ws.local_tokens,
                &mut this[0],
                &mut layer_grads,
                above,
                dx,
                layer_hook,
            );
            if l > 0 {
                // back through the dropout between the layers: the gradient on the outputs
                // of the layer below
                let mask = &below[l - 1].mask;
                if !mask.is_empty() {
                    dropout::apply(&mut ws.d_in, mask);
                }
                std::mem::swap(&mut ws.d_in, &mut ws.d_out);
            }
        }
        if self.embedding.is_some() {
            // forward: x_t = E[w_t]  =>  row w_t of dE += dx_t, in the token's gradient entry
            let e = arch.embed.expect("an embedding");
            for (dx, &local) in ws.d_in.chunks_exact(e).zip(&ws.local_tokens) {
                add_into(&mut layer_grads.entries[local as usize * entry..][..e], dx);
            }
        }
    }
}

/// What `layer` reads: the batch's tokens, or the embedded tokens (the first layer), or the
/// outputs of the layer `below`.
fn layer_input<'a>(
    layer: &Layer,
    batch: &'a Batch,
    embedded: &'a [f32],
    below: Option<&'a LayerWork>,
) -> LayerInput<'a> {
    match (layer.input, below) {
        (Input::Tokens(_), _) => LayerInput::Tokens(batch.tokens()),
        (Input::Dense(_), None) => LayerInput::Dense(embedded),
        (Input::Dense(_), Some(below)) => LayerInput::Dense(&below.out),
    }
}

/// The gradient on the top layer's outputs, from the head through the pooling.
struct FromHead<'a> {
    pool: Pool,
    pooling: &'a Pooling,
    batch: &'a Batch,
    /// The gradient on the features (rows × D·H).
    df: &'a [f32],
    /// For `last` pooling of two directions, the gradient on each one's final states
    /// (rows × H); with one direction, that is `df` itself.
    d_last: &'a [Vec<f32>],
    hidden: usize,
}

impl Above for FromHead<'_> {
    fn reaches_steps(&self) -> bool {
        self.pool != Pool::Last
    }

    fn d_last(&self, d: usize) -> Option<&[f32]> {
        match (self.pool, self.d_last.get(d)) {
            (Pool::Last, Some(block)) => Some(block),
            (Pool::Last, None) => Some(self.df),
            _ => None,
        }
    }

    fn add(&self, d: usize, t: usize, ds: &mut [f32], s_size: usize) {
        self.pooling.add_to_step(
            self.pool,
            self.batch,
            self.df,
            d,
            t,
            ds,
            s_size,
            self.hidden,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_numpy_initialisation_is_tiny_weights_and_zero_biases() {
        let arch = Architecture {
            embed: Some(3),
            layers: 2,
            bidirectional: true,
            ..Architecture::new(CellKind::Gru, 7, 4, 3)
        };
        let net = Network::new(&arch, Init::Numpy, &mut Rng::new(1)).unwrap();
        for t in net.layout().tensors() {
            let w = &net.params()[t.range()];
            if t.name.contains("bias") {
                assert!(w.iter().all(|&x| x == 0.0), "{}", t.name);
            } else {
                let rms = (w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32).sqrt();
                assert!(rms > 0.0002 && rms < 0.003, "{}: rms {rms}", t.name);
            }
        }
    }

    #[test]
    fn pytorchs_initialisation_draws_every_tensor_at_its_scale() {
        let arch = Architecture::new(CellKind::Lstm, 50, 16, 3);
        let net = Network::new(&arch, Init::Uniform(1.0), &mut Rng::new(2)).unwrap();
        let max = |name: &str| {
            let t = net.layout().get(name).unwrap();
            net.params()[t.range()]
                .iter()
                .fold(0.0f32, |m, x| m.max(x.abs()))
        };
        // one-hot input weights in [-1, 1]; the rest in [-1/4, 1/4] (H = 16, D·H = 16)
        assert!(max("rnn.weight_ih_l0") > 0.9);
        for name in [
            "rnn.weight_hh_l0",
            "rnn.bias_ih_l0",
            "rnn.bias_hh_l0",
            "fc.weight",
        ] {
            let m = max(name);
            assert!(m > 0.2 && m <= 0.25, "{name}: {m}");
        }
    }
}
