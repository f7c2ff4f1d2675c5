//! The recurrent stack: layers of cells, each reading one or both ways, with dropout between
//! the layers.
//!
//! ```text
//! layer l = 1..L, direction d:  h_{l,d,t} = cell(W_ih x_{l,t} + b_ih, h_{l,d,t∓1})   (see [`super::layer`])
//! x_{1,t}   = onehot(w_t) or E[w_t]
//! x_{l+1,t} = dropout([h_{l,0,t}, h_{l,1,t}])          (D·H, the next layer's input)
//! ```
//!
//! Backward from the top down: the head hands the top layer the gradient on its outputs (an
//! [`Above`]), and each layer hands the one below the gradient on its input, back through the
//! dropout between them. Under one-hot input the first layer's input weights are token tables
//! at the start of the parameters (see [`super::Gradients`]).

use super::cell::Cell;
use super::grads::Table;
use super::layer::{
    Above, Direction, FromNextLayer, Hook, Input, Layer, LayerGrads, LayerInput, LayerWork,
};
use super::params::Layout;
use super::unroll::{self, fit};
use super::{Architecture, Batch, Carry, dropout, init};
use crate::kernels::AlignedVec;
use crate::rng::Rng;

/// The layers, bottom first.
#[derive(Clone, Debug)]
pub(super) struct Stack {
    pub layers: Vec<Layer>,
    dropout: f32,
}

/// What the stack keeps between its forward and backward passes; reused from batch to batch.
#[derive(Clone, Debug, Default)]
pub(super) struct StackWork {
    pub layers: Vec<LayerWork>,
    /// The gradient on the input of the layer being undone, and on the outputs of the one
    /// below (N × width each). After the backward pass `d_in` holds the gradient on the first
    /// layer's dense input.
    pub d_in: AlignedVec,
    d_out: AlignedVec,
}

/// The tensor names of layer `l`'s direction `d`, PyTorch's way: `rnn.weight_ih_l1_reverse`.
fn rnn_name(base: &str, layer: usize, reverse: bool) -> String {
    let suffix = if reverse { "_reverse" } else { "" };
    format!("rnn.{base}_l{layer}{suffix}")
}

impl Stack {
    /// The layers of `arch` with the cells `cells[l][d]`, their tensors added to `layout`:
    /// under one-hot input every direction's first-layer input weights first, as token tables,
    /// then layer by layer and direction by direction `weight_ih`, `bias_ih` and the cell's.
    pub fn new(
        arch: &Architecture,
        cells: Vec<Vec<Box<dyn Cell>>>,
        layout: &mut Layout,
        tables: &mut Vec<Table>,
    ) -> Self {
        let (v, h) = (arch.vocab, arch.hidden);
        let mut table_w_ih = Vec::new();
        if arch.embed.is_none() {
            let mut entry_at = 0;
            for (d, c) in cells[0].iter().enumerate() {
                let g = c.gates() * h;
                let offset = layout.push(rnn_name("weight_ih", 0, d == 1), &[g, v], true);
                tables.push(Table { offset, width: g });
                table_w_ih.push((offset, entry_at));
                entry_at += g;
            }
        }
        let mut layers = Vec::new();
        for (l, layer_cells) in cells.into_iter().enumerate() {
            let input = match (l, arch.embed) {
                (0, None) => Input::Tokens(v),
                _ => Input::Dense(arch.input_width(l)),
            };
            let mut dirs = Vec::new();
            for (d, c) in layer_cells.into_iter().enumerate() {
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
        Stack {
            layers,
            dropout: arch.dropout,
        }
    }

    /// PyTorch's initialisation of `nn.RNN/GRU/LSTM`, layer by layer and direction by
    /// direction in its order of registration: `weight_ih`, the cell's first tensor
    /// (`weight_hh`), `bias_ih`, the cell's others (`bias_hh`); every tensor uniform in
    /// `[-a, a]` with `a = 1/√H`, but for one-hot input weights, at `input`.
    pub fn init(&self, params: &mut [f32], input: f64, rng: &mut Rng) {
        let recurrent = 1.0 / (self.hidden() as f64).sqrt();
        for layer in &self.layers {
            let i_width = layer.input.width();
            let a = match layer.input {
                Input::Tokens(_) => input,
                Input::Dense(_) => recurrent,
            };
            for dir in &layer.dirs {
                let g = dir.cell.gates() * dir.cell.hidden();
                let first: usize = dir.cell.tensors()[0].1.iter().product();
                let (cell_at, rest) = (dir.cell_at, dir.cell_len - first);
                init::uniform(&mut params[dir.w_ih..][..g * i_width], a, rng);
                init::uniform(&mut params[cell_at..][..first], recurrent, rng);
                init::uniform(&mut params[dir.b_ih..][..g], recurrent, rng);
                init::uniform(&mut params[cell_at + first..][..rest], recurrent, rng);
            }
        }
    }

    /// `H`.
    fn hidden(&self) -> usize {
        self.layers[0].dirs[0].cell.hidden()
    }

    /// Runs every layer forward (see [`Layer::forward`] for `keep`), from the states in
    /// `carry` when given (leaving there the states after the last step), with dropout between
    /// the layers drawn from `rng` when given. The top layer writes its outputs at every
    /// position to its `out` when `top_out`, and `on_top(d, t, s, s_size)` sees its every
    /// step. `embedded` is the first layer's dense input, if it has one (see
    /// [`super::embedding::EmbeddedWork::input`]).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        params: &[f32],
        batch: &Batch,
        embedded: Option<LayerInput<'_>>,
        positions: &[u32],
        work: &mut StackWork,
        keep: bool,
        mut rng: Option<&mut Rng>,
        carry: Option<&mut Carry>,
        top_out: bool,
        mut on_top: impl FnMut(usize, usize, &[f32], usize),
    ) {
        work.layers
            .resize_with(self.layers.len(), LayerWork::default);
        let top = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let (below, this) = work.layers.split_at_mut(l);
            let input = layer_input(layer, batch, embedded, below.last());
            let work = &mut this[0];
            let s_size = layer.dirs[0].cell.state_size();
            let initial = carry.as_deref().and_then(|c| c.layer(l));
            let write_out = l < top || top_out;
            layer.forward(
                params,
                batch,
                input,
                positions,
                work,
                keep,
                initial,
                write_out,
                |d, t, s| {
                    if l == top {
                        on_top(d, t, s, s_size);
                    }
                },
            );
            work.mask.clear();
            if let Some(rng) = rng.as_deref_mut().filter(|_| l < top) {
                // dropout between layers, on the next layer's input
                dropout::draw(&mut work.mask, work.out.len(), self.dropout, rng);
                dropout::apply(&mut work.out, &work.mask);
            }
        }
        if let Some(carry) = carry {
            // every layer's state after the last step, the next window's start
            carry.layers.resize_with(self.layers.len(), Vec::new);
            for (l, (layer, work)) in self.layers.iter().zip(&work.layers).enumerate() {
                let s_size = layer.dirs[0].cell.state_size();
                let last = unroll::final_states(&work.tracks[0], batch, s_size, keep);
                carry.layers[l].clear();
                carry.layers[l].extend_from_slice(last);
            }
            carry.rows = batch.rows();
        }
    }

    /// Backpropagation through every layer, from the top down, for the batch last run
    /// forward: **adds** the layers' gradients to `grads`; `top` gives the gradient on the top
    /// layer's outputs, and `hook` (see [`Layer::backward`]) sees the top layer's steps. With
    /// `wants_dx`, leaves the gradient on the first layer's (dense) input in `work.d_in`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        batch: &Batch,
        embedded: Option<LayerInput<'_>>,
        positions: &[u32],
        local: &[u32],
        work: &mut StackWork,
        grads: &mut LayerGrads<'_>,
        top: &dyn Above,
        wants_dx: bool,
        mut hook: Option<Hook<'_>>,
    ) {
        let last = self.layers.len() - 1;
        let dirs = self.layers[0].dirs.len();
        for (l, layer) in self.layers.iter().enumerate().rev() {
            let (below, this) = work.layers.split_at_mut(l);
            let input = layer_input(layer, batch, embedded, below.last());
            // the gradient on this layer's input is needed below it, or by the embedding
            let wants_dx = l > 0 || wants_dx;
            if wants_dx {
                let width = layer.input.width();
                fit(
                    &mut work.d_in,
                    input.gradient_rows(batch.token_count(), width) * width,
                );
                work.d_in.fill(0.0);
            }
            let dx = wants_dx.then_some(&mut work.d_in[..]);
            let from_next = FromNextLayer {
                d_out: &work.d_out,
                batch,
                positions,
                dirs,
                hidden: self.hidden(),
            };
            let above: &dyn Above = if l == last { top } else { &from_next };
            let layer_hook = if l == last { hook.take() } else { None };
            layer.backward(
                params,
                batch,
                input,
                positions,
                local,
                &mut this[0],
                grads,
                above,
                dx,
                layer_hook,
            );
            if l > 0 {
                // back through the dropout between the layers: the gradient on the outputs
                // of the layer below
                let mask = &below[l - 1].mask;
                if !mask.is_empty() {
                    dropout::apply(&mut work.d_in, mask);
                }
                std::mem::swap(&mut work.d_in, &mut work.d_out);
            }
        }
    }

    /// The top layer's outputs at every position (N × D·H), when the last forward pass wrote
    /// them (see [`Stack::forward`]'s `top_out`).
    pub fn top_out<'a>(&self, work: &'a mut StackWork) -> &'a mut [f32] {
        &mut work.layers[self.layers.len() - 1].out
    }

    /// [`Stack::top_out`], to read.
    pub fn top<'a>(&self, work: &'a StackWork) -> &'a [f32] {
        &work.layers[self.layers.len() - 1].out
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
}

/// What `layer` reads: the batch's tokens, or the embedded tokens (the first layer), or the
/// outputs of the layer `below`.
fn layer_input<'a>(
    layer: &Layer,
    batch: &'a Batch,
    embedded: Option<LayerInput<'a>>,
    below: Option<&'a LayerWork>,
) -> LayerInput<'a> {
    match (layer.input, below) {
        (Input::Tokens(_), _) => LayerInput::Tokens(batch.tokens()),
        (Input::Dense(_), None) => {
            embedded.expect("a first layer of dense input reads an embedding")
        }
        (Input::Dense(_), Some(below)) => LayerInput::Dense(&below.out),
    }
}
