//! The recurrent network, as modules: an optional embedding, a stack of layers of cells that
//! read forwards or both ways, and a head (pooling over time and an output layer, or an output
//! layer at every step); the loss (softmax cross-entropy) is outside it, in [`loss`].
//!
//! ```text
//! x_t   = onehot(w_t)  or  E[w_t]                       (one-hot, or `embedding.weight` E: V×E)
//! layer l = 1..L, direction d:  h_{l,d,t} = cell(W_ih x_{l,t} + b_ih, h_{l,d,t∓1})
//! x_{l+1,t} = dropout([h_{l,0,t}, h_{l,1,t}])          (D·H, the next layer's input)
//! f     = dropout(pool_t(h_{L,·,t}))                    (last | mean | max, D·H)
//! y     = W_fc f + b_fc,   p = softmax(y)               (the logits, and the probabilities)
//! L     = -ln p_target                                  (the loss, see [`loss`])
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
//! The modules, one file each, each a forward and backward pair that owns its part of the
//! flat parameter buffer and draws it at first (`init`): `embedding`, `stack` (the layers;
//! a `layer` is its input projection and its directions, each an `unroll` over time of a
//! `cell`: [`Elman`], [`Gru`], [`Lstm`]), `pool` (last, mean, max) and `head` (the
//! classifier's and the step head, on `linear`, the output layer), with `dropout` between
//! them; `inspect` shows what flows through one text, for `explain`. Cells, poolings and
//! heads are each named in one table (see `arch::kinds`), so a new one is one new file and one
//! row. This file builds a network from an [`Architecture`] and runs the modules in order,
//! forward and back. The trainer, the model file and the server see only [`Network`].
//!
//! One forward pass serves everything: training, evaluation, prediction and the step-by-step
//! trace behind `explain`. With an architecture's defaults (one layer, one direction, one-hot
//! input, the last state) it is the seed's network.

mod arch;
mod batch;
mod carry;
mod cell;
mod dropout;
mod embedding;
mod gates;
mod grads;
mod head;
mod init;
mod inspect;
mod layer;
mod linear;
pub mod loss;
mod params;
mod pool;
mod softmax;
mod stack;
mod subwords;
mod unroll;
mod wide;

pub use arch::{Architecture, MAX_NGRAMS, check_ngrams};
pub use batch::Batch;
pub use carry::Carry;
pub use cell::{Cell, Pass, Recurrent};
pub use elman::Elman;
pub use grads::{
    CellGradient, DEFER_ROWS, Gradients, LOOK_AHEAD, PIECE_COST, Part, Piece, Product, ROW_COST,
    Table,
};
pub use gru::Gru;
pub use head::Head;
pub use init::Init;
pub use inspect::{Cancelled, Flow, PREFIX_BUDGET, Trace, WidePart, prefix_ends};
pub use lstm::Lstm;
pub use params::{Layout, Tensor};
pub use pool::Pool;
pub use softmax::{argmax, cross_entropy, softmax_in_place};
pub use subwords::{
    DEFAULT_SUBWORD_BUCKETS, MAX_SUBWORD, Subwords, TokenGrams, check_lengths, parse_subwords,
};
pub use wide::{DEFAULT_BUCKETS, Ngrams, buckets_of};

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::kernels::AlignedVec;
use crate::rng::Rng;
use arch::kinds;
use embedding::{EmbeddedWork, Embedding};
use head::{FromHead, HeadModule, HeadWork};
use layer::{Hook, LayerGrads};
use stack::{Stack, StackWork};
use wide::{Wide, WideWork};

kinds! {
    /// The kinds of cell, by the name used on the command line and in model files.
    pub enum CellKind, called "cell";
    pub fn build(hidden: usize) -> Box<dyn Cell> { Box::new }
    /// The Elman cell, `h_t = tanh(Wxh x_t + Whh h_{t-1} + bh)`: PyTorch's `nn.RNN`.
    #[default]
    Rnn = "rnn", elman::Elman;
    /// The gated recurrent unit: PyTorch's `nn.GRU` (see [`Gru`]).
    Gru = "gru", gru::Gru;
    /// Long short-term memory: PyTorch's `nn.LSTM` (see [`Lstm`]).
    Lstm = "lstm", lstm::Lstm;
}

/// A network: its architecture, its modules, and all their parameters in one buffer.
///
/// The buffer holds the wide path's table first, if there is one, then the token tables (the
/// embedding, or the first layer's input weights under one-hot input, one a direction: see
/// [`Gradients`]), then every layer's tensors, layer by layer and direction by direction, then
/// the head's `fc.weight` and `fc.bias`.
#[derive(Clone, Debug)]
pub struct Network {
    arch: Architecture,
    wide: Option<Wide>,
    embedding: Option<Embedding>,
    stack: Stack,
    head: Arc<dyn HeadModule>,
    tables: Vec<Table>,
    layout: Layout,
    params: AlignedVec,
}

/// Buffers reused from one batch to the next, so that a training run allocates once.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    /// For a backward direction: where each of its packed positions reads (see
    /// [`Batch::reversed_positions`]).
    positions: Vec<u32>,
    /// The embedded tokens, in forward packed order (the first layer's input).
    embedded: EmbeddedWork,
    stack: StackWork,
    head: HeadWork,
    wide: WideWork,
    /// `C` of the last batch, and its logits, probabilities and softmax norms (one a
    /// prediction, see [`loss::softmax_rows`]).
    classes: usize,
    logits: Vec<f32>,
    probs: Vec<f32>,
    norms: Vec<(f32, f32)>,
    /// The gradient on the logits, from the loss (see [`loss::backward`]).
    dlogits: Vec<f32>,
    /// Every token as the index of its entry in the gradient's token tables.
    local_tokens: Vec<u32>,
    /// Every subword n-gram of the batch (in [`Batch::grams`]'s order) as its row of the token
    /// table, `V + g`, then as the index of its entry in the gradient's token tables.
    subword_rows: Vec<u32>,
    local_subwords: Vec<u32>,
    /// Every n-gram bucket as the index of its row in the gradient's rows of the wide table.
    local_grams: Vec<u32>,
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

impl Network {
    /// A network with freshly initialised parameters. Each module draws its own, in PyTorch's
    /// order of tensors: the embedding N(0, 1); then, layer by layer and direction by
    /// direction, every tensor uniform in `[-1/√H, 1/√H]` (PyTorch's `nn.RNN/GRU/LSTM`), but
    /// for one-hot input weights, drawn as `init` says; then the output layer uniform in
    /// `[-1/√(D·H), 1/√(D·H)]` (`nn.Linear`). [`Init::Numpy`] draws every weight matrix in
    /// the buffer's order instead.
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
                init::numpy(&net.layout, &mut net.params, rng);
                return Ok(net);
            }
        };
        let params = &mut net.params[..];
        if let Some(embedding) = &net.embedding {
            embedding.init(params, rng);
        }
        net.stack.init(params, f64::from(input), rng);
        net.head.init(params, rng);
        Ok(net)
    }

    /// A network whose parameters are all zero (to be filled, e.g. from a model file).
    ///
    /// # Errors
    /// As [`Network::with_cells`].
    pub fn zeros(arch: &Architecture) -> Result<Self> {
        Self::with_cells(arch, |_, _| arch.cell.build(arch.hidden))
    }

    /// [`Network::zeros`] without the parameters yet (`params()` is empty until
    /// [`Network::allocate`]): its layout can be checked against what a file holds before
    /// memory is spent on it.
    ///
    /// # Errors
    /// As [`Network::with_cells`].
    pub(crate) fn unallocated(arch: &Architecture) -> Result<Self> {
        Self::build(arch, |_, _| arch.cell.build(arch.hidden))
    }

    /// Gives an [`Network::unallocated`] network its parameters, all zero (their memory was
    /// checked when it was built: see [`Architecture::check_memory`]).
    pub(crate) fn allocate(&mut self) {
        self.params = AlignedVec::zeros(self.layout.len());
    }

    /// A network of `arch`'s shape whose cells `cell(layer, reverse)` makes (one of
    /// [`CellKind`]'s, or your own, of `arch.hidden` units), all parameters zero.
    ///
    /// # Errors
    /// [`Error::Config`] if a size is 0, the dropout is out of range, or the network would not
    /// fit in the memory available (its parameters, and a bound on each layer's structures);
    /// nothing is built then.
    ///
    /// # Panics
    /// If a cell has another number of hidden units than `arch.hidden`.
    pub fn with_cells(
        arch: &Architecture,
        cell: impl FnMut(usize, bool) -> Box<dyn Cell>,
    ) -> Result<Self> {
        let mut net = Self::build(arch, cell)?;
        net.allocate();
        Ok(net)
    }

    /// The network's modules and layout, without parameters: the token tables first (the
    /// embedding, or the stack's one-hot input weights), then the stack, then the head.
    fn build(
        arch: &Architecture,
        mut cell: impl FnMut(usize, bool) -> Box<dyn Cell>,
    ) -> Result<Self> {
        arch.validate()?;
        arch.check_memory()?;
        let cells: Vec<Vec<Box<dyn Cell>>> = (0..arch.layers)
            .map(|l| {
                (0..arch.directions())
                    .map(|d| {
                        let c = cell(l, d == 1);
                        assert_eq!(c.hidden(), arch.hidden, "a cell of the architecture's size");
                        c
                    })
                    .collect()
            })
            .collect();
        let (mut layout, mut tables) = (Layout::default(), Vec::new());
        let wide = arch
            .ngrams
            .map(|ngrams| Wide::new(&mut layout, ngrams, arch.classes));
        let embedding = arch
            .embed
            .map(|e| Embedding::new(&mut layout, &mut tables, arch, e));
        let stack = Stack::new(arch, cells, &mut layout, &mut tables);
        let head = arch.head.build(arch, &mut layout);
        Ok(Network {
            arch: arch.clone(),
            wide,
            embedding,
            stack,
            head,
            tables,
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
        &*self.stack.layers[layer].dirs[d].cell
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
        self.stack.folded_tensors()
    }

    /// Where the dense parameters start: after the wide path's table and the token tables.
    pub(crate) fn dense_start(&self) -> usize {
        self.wide.map_or(0, |w| w.len())
            + self.tables.iter().map(|t| t.width).sum::<usize>() * self.arch.token_rows()
    }

    /// The wide path's table, as a table of `C`-float rows and its number of rows `B`, if the
    /// network has one (its gradient is sparse, see [`Gradients`]).
    pub(crate) fn wide_table(&self) -> Option<(Table, usize)> {
        self.wide.map(|w| {
            let table = Table {
                offset: w.offset,
                width: w.classes,
            };
            (table, w.ngrams.buckets)
        })
    }

    /// How many predictions `batch` makes, over which [`Network::backward`] takes the mean
    /// loss: one a row, or one a token under a [`Head::Step`].
    pub fn predictions(&self, batch: &Batch) -> usize {
        self.head.predictions(batch)
    }

    /// The target of each of `batch`'s predictions, in the order of the logits: its rows'
    /// labels, or its tokens' targets under a [`Head::Step`] (see [`loss::tally`]).
    pub fn targets<'b>(&self, batch: &'b Batch) -> &'b [u32] {
        self.head.targets(batch)
    }

    /// Runs `batch` forward in training mode, leaving everything [`Network::backward`] needs in
    /// `ws`, and the logits and probabilities of every prediction. With `dropout`, the
    /// architecture's dropout draws its masks from that stream; without, nothing is dropped
    /// (as in evaluation). The loss is [`loss::tally`]'s.
    pub fn forward(&self, batch: &Batch, ws: &mut Workspace, dropout: Option<&mut Rng>) {
        self.run(batch, ws, true, dropout, None);
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
    ) {
        self.run(batch, ws, true, dropout, Some(carry));
    }

    /// [`Network::forward_only`] from the states in `carry`, leaving the final states there (see
    /// [`Network::forward_carried`]).
    ///
    /// # Panics
    /// As [`Network::forward_carried`].
    pub fn forward_only_carried(&self, batch: &Batch, ws: &mut Workspace, carry: &mut Carry) {
        self.run(batch, ws, false, None, Some(carry));
    }

    /// [`Network::forward`] for prediction only, without dropout: keeps the current step's
    /// states, not every step's, so its memory does not grow with the length of the sequences
    /// (and stays in cache). Leaves the logits and probabilities in `ws` but nothing for
    /// [`Network::backward`].
    pub fn forward_only(&self, batch: &Batch, ws: &mut Workspace) {
        self.run(batch, ws, false, None, None);
    }

    /// The modules in order: embedding, stack (the head seeing its top layer's every step),
    /// head, softmax.
    fn run(
        &self,
        batch: &Batch,
        ws: &mut Workspace,
        keep: bool,
        rng: Option<&mut Rng>,
        carry: Option<&mut Carry>,
    ) {
        let arch = &self.arch;
        let mut rng = rng.filter(|_| arch.dropout > 0.0);
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
        if let Some(embedding) = &self.embedding {
            embedding.forward(&self.params, batch, &mut ws.embedded);
        }
        let head = &*self.head;
        head.begin(&mut ws.head, batch);
        let head_work = &mut ws.head;
        self.stack.forward(
            &self.params,
            batch,
            self.embedding.as_ref().map(|_| ws.embedded.input()),
            &ws.positions,
            &mut ws.stack,
            keep,
            rng.as_deref_mut(),
            carry,
            head.reads_every_step(),
            |d, t, s, s_size| head.step(head_work, batch, d, t, s, s_size),
        );
        let top = self.stack.top_out(&mut ws.stack);
        head.forward(&self.params, batch, top, &mut ws.head, rng, &mut ws.logits);
        if let Some(wide) = &self.wide {
            wide.forward(&self.params, batch, &mut ws.wide, &mut ws.logits);
        }
        ws.classes = arch.classes;
        loss::softmax_rows(&ws.logits, ws.classes, &mut ws.probs, &mut ws.norms);
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
        loss::backward(ws, self.targets(batch), weight, None);
        self.backward_logits(batch, ws, grads);
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
        loss::backward(ws, self.targets(batch), weight, Some(class_weights));
        self.backward_logits(batch, ws, grads);
    }

    /// Backpropagation from the gradient on the logits that a loss left in `ws` (see
    /// [`loss::backward`]), for the batch last run by [`Network::forward`]: **adds** the
    /// gradient of every parameter to `grads`.
    pub fn backward_logits(&self, batch: &Batch, ws: &mut Workspace, grads: &mut Gradients) {
        self.backward_with(batch, ws, grads, None);
    }

    /// [`Network::backward_logits`], the modules in reverse order, letting `hook(d, t, ds)`, if
    /// given, see the gradient on the top layer's direction `d` at its step `t` before that
    /// step is undone.
    fn backward_with(
        &self,
        batch: &Batch,
        ws: &mut Workspace,
        grads: &mut Gradients,
        hook: Option<Hook<'_>>,
    ) {
        let dense = self.dense_start();
        if !self.tables.is_empty() {
            grads.localize(batch.tokens(), &mut ws.local_tokens);
        }
        if let Some((_, grams)) = batch.grams() {
            let v = self.arch.vocab as u32;
            ws.subword_rows.clear();
            ws.subword_rows.extend(grams.iter().map(|&g| v + g));
            grads.localize(&ws.subword_rows, &mut ws.local_subwords);
        }
        if let Some(wide) = &self.wide {
            grads.localize_rows(&ws.wide.grams, &mut ws.local_grams);
            let rows = grads.row_entries();
            wide.backward(&ws.wide, &ws.dlogits, &ws.local_grams, rows);
        }
        let entry = grads.column_width();
        let (entries, rest, products) = grads.parts();
        // the head: its parameters' gradients, and the gradient on the top layer's outputs
        let span = self.head.span();
        let top = self.stack.top(&ws.stack);
        let grad = &mut rest[span.start - dense..span.end - dense];
        self.head
            .backward(&self.params, top, &ws.dlogits, grad, &mut ws.head);
        let above = FromHead {
            head: &*self.head,
            work: &ws.head,
            batch,
            positions: &ws.positions,
        };
        let mut layer_grads = LayerGrads {
            entries,
            entry,
            rest,
            base: dense,
            products,
        };
        self.stack.backward(
            &self.params,
            batch,
            self.embedding.as_ref().map(|_| ws.embedded.input()),
            &ws.positions,
            &ws.local_tokens,
            &mut ws.stack,
            &mut layer_grads,
            &above,
            self.embedding.is_some(),
            hook,
        );
        if let Some(embedding) = &self.embedding {
            let local = (&ws.local_tokens[..], &ws.local_subwords[..]);
            let dx = &ws.stack.d_in;
            embedding.backward(batch, &ws.embedded, dx, local, layer_grads.entries, entry);
        }
    }
}
