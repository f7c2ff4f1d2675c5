//! The interface between the unroll over time (in [`super::Network`]) and one recurrent cell.
//!
//! A cell is **one time step** for a batch of `n` sequences at once: it maps the state
//! `s_{t-1}` (n×S) and the tokens `x_t` (n) to `s_t` (n×S), and back again for gradients.
//! Everything else (the loop over time, sequences of different lengths, the output layer, the
//! loss) is written once in the network and serves every cell, so a new cell is one new file
//! that implements this trait.
//!
//! Dimensions: `n` sequences in the step, `V` vocabulary, `H` hidden units, `S` state floats a
//! sequence (`H` for the plain cell; a cell with a memory, like an LSTM, keeps more), and `K`
//! cache floats a sequence a step (intermediate values the backward step needs).

use std::fmt;
use std::str::FromStr;

use super::grads::CellGradient;
use super::params::Layout;
use crate::rng::Rng;

/// The kinds of cell, by the name used on the command line and in model files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CellKind {
    /// The Elman cell, `h_t = tanh(Wxh x_t + Whh h_{t-1} + bh)`: PyTorch's `nn.RNN`.
    #[default]
    Rnn,
    /// The gated recurrent unit: PyTorch's `nn.GRU` (see [`super::Gru`]).
    Gru,
    /// Long short-term memory: PyTorch's `nn.LSTM` (see [`super::Lstm`]).
    Lstm,
}

impl CellKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [CellKind; 3] = [CellKind::Rnn, CellKind::Gru, CellKind::Lstm];

    /// The name on the command line and in model files.
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Rnn => "rnn",
            CellKind::Gru => "gru",
            CellKind::Lstm => "lstm",
        }
    }

    /// A cell of this kind for `vocab` input tokens and `hidden` units.
    pub fn build(self, vocab: usize, hidden: usize) -> Box<dyn Cell> {
        match self {
            CellKind::Rnn => Box::new(super::elman::Elman::new(vocab, hidden)),
            CellKind::Gru => Box::new(super::gru::Gru::new(vocab, hidden)),
            CellKind::Lstm => Box::new(super::lstm::Lstm::new(vocab, hidden)),
        }
    }
}

impl fmt::Display for CellKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CellKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CellKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = CellKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown cell {s:?} (expected one of: {})", names.join(", "))
            })
    }
}

/// One recurrent step, forward and backward, for a batch of sequences.
///
/// Parameters arrive as the cell's own part of the flat buffer (`p`, laid out as
/// [`Cell::layout`] says) and gradients as the matching part of the gradient buffer (`g`).
///
/// Backward runs in two parts. [`Cell::backward_step`], once a step from the last to the
/// first, carries the state gradient back and keeps the step's *pre-activation* gradients
/// (`G` floats a sequence: for the Elman cell `da_t`, the gradient at the input of `tanh`).
/// [`Cell::backward_weights`], once a batch, turns the pre-activation gradients of all steps
/// into parameter gradients. Every weight gradient is a sum over steps (`dWhh = Σ_t da_t ·
/// h_{t-1}ᵀ`), so computing it once, as one matrix product over all tokens, replaces one small
/// product a step with one large one.
pub trait Cell: Send + Sync + fmt::Debug {
    /// Which kind of cell this is.
    fn kind(&self) -> CellKind;

    /// `V`, the number of input tokens.
    fn vocab(&self) -> usize;

    /// `H`, the number of hidden units (the size of the output `h_t`).
    fn hidden(&self) -> usize;

    /// `S`, floats of state a sequence; the first `H` of them are `h_t`.
    fn state_size(&self) -> usize {
        self.hidden()
    }

    /// `K`, floats a sequence a step that [`Cell::forward_step`] leaves for the backward step.
    fn cache_size(&self) -> usize {
        0
    }

    /// `G`, floats a sequence a step of pre-activation gradient.
    fn pre_size(&self) -> usize {
        self.hidden()
    }

    /// The cell's parameter tensors, from offset 0. The first is the input weights, stored
    /// column by column (`column_major`): column `v` is what token `v` adds, so a one-hot
    /// input is a column look-up and its gradient touches only that column.
    fn layout(&self) -> Layout;

    /// Tensors PyTorch keeps that this cell folds into one of its own, as
    /// `(PyTorch name, shape, name of the tensor it is added to)`. A model file writes them as
    /// zeros and adds them in on loading, so files from PyTorch load too. Default: none.
    fn folded_tensors(&self) -> Vec<(&'static str, Vec<usize>, &'static str)> {
        Vec::new()
    }

    /// Draws initial parameters into `p`: the input weights (the first tensor) uniform in
    /// `[-input, input]`, the others as the cell's PyTorch counterpart draws them.
    fn init(&self, p: &mut [f32], input: f32, rng: &mut Rng);

    /// One step forward for `n = x.len()` sequences: from `s_prev` (n×S) and the tokens `x` to
    /// `s` (n×S), leaving what the backward step needs in `cache` (n×K). At the first step
    /// `s_prev` is `None`: the initial state is zero, and products with it can be skipped.
    fn forward_step(
        &self,
        p: &[f32],
        x: &[u32],
        s_prev: Option<&[f32]>,
        s: &mut [f32],
        cache: &mut [f32],
    );

    /// One step backward. On entry `ds` (n×S) holds `∂L/∂s_t`; on return it holds `∂L/∂s_{t-1}`,
    /// and `dpre` (n×G) holds the step's pre-activation gradients. At the first step
    /// (`s_prev` is `None`) nothing comes before, and `ds` need not be carried back.
    #[allow(clippy::too_many_arguments)]
    fn backward_step(
        &self,
        p: &[f32],
        x: &[u32],
        s_prev: Option<&[f32]>,
        s: &[f32],
        cache: &[f32],
        ds: &mut [f32],
        dpre: &mut [f32],
    );

    /// **Adds** the parameter gradients of a whole batch, from every token (N, all steps
    /// packed) and the pre-activation gradients of its step `dpre` (N×G), and the hidden state
    /// before every token *after the first step's*: `h_prev` is (N − N₀)×H, where the first N₀
    /// tokens, read from the zero initial state, contribute nothing to the recurrent weights.
    /// The input weights' gradient goes to `g.columns`, one column per distinct token: `x`
    /// holds each token's column index there, not the token itself (see
    /// [`super::Gradients`]). The other tensors' gradients go to `g.rest`, laid out as the
    /// cell's tensors after the first; a weight gradient that is one product over all tokens
    /// may instead be handed to [`CellGradient::add_product`], which may keep it as its
    /// factors until the update.
    fn backward_weights(
        &self,
        p: &[f32],
        g: &mut CellGradient<'_>,
        x: &[u32],
        h_prev: &[f32],
        dpre: &[f32],
    );

    /// A boxed copy (so that a network holding a `Box<dyn Cell>` can be cloned).
    fn clone_box(&self) -> Box<dyn Cell>;
}

impl Clone for Box<dyn Cell> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}
