//! The recurrent network: a cell unrolled over a sequence, an output layer on the last hidden
//! state, softmax and cross-entropy, and backpropagation through time.
//!
//! ```text
//! h_0 = 0
//! h_t = cell(x_t, h_{t-1})        t = 1..T   (Elman: tanh(Wxh x_t + Whh h_{t-1} + bh))
//! y   = Why h_T + by              (C logits; PyTorch's fc = nn.Linear(H, C))
//! p   = softmax(y),   L = -ln p_target
//! ```
//!
//! Backward, with `dy = p - onehot(target)`:
//! `dWhy = dy h_Tᵀ`, `dby = dy`, `dh_T = Whyᵀ dy`, then the cell's backward step from `T` down to
//! 1 carries `dh_t` to `dh_{t-1}` and adds each step's parameter gradients. For a batch the loss
//! is the mean over its sequences, so every `dy` is divided by the batch size.
//!
//! One forward pass serves everything: training, evaluation, prediction and the step-by-step
//! trace behind `explain`.

mod batch;
mod cell;
mod elman;
mod gates;
mod grads;
mod gru;
mod lstm;
mod params;
mod softmax;

pub use batch::Batch;
pub use cell::{Cell, CellKind};
pub use elman::Elman;
pub use grads::{CellGradient, DEFER_ROWS, Gradients, Part, Product};
pub use gru::Gru;
pub use lstm::Lstm;
pub use params::{Layout, Tensor};
pub use softmax::{argmax, cross_entropy, softmax_in_place};

use crate::error::{Error, Result};
use crate::kernels::{AlignedVec, add_into, matmul_nn, matmul_nt, matmul_tn};
use crate::metrics::Tally;
use crate::rng::Rng;

/// A recurrent cell and an output layer, with all their parameters in one buffer: the cell's
/// tensors first, then `fc.weight` (`Why`, C×H) and `fc.bias` (`by`, C).
#[derive(Clone, Debug)]
pub struct Network {
    cell: Box<dyn Cell>,
    classes: usize,
    layout: Layout,
    /// Where `fc.weight` starts; the cell's parameters are everything before.
    head: usize,
    params: AlignedVec,
}

/// What flows through one sequence (see [`Network::flow`]); each list has one entry a token.
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    /// `h_t`, H floats each.
    pub states: Vec<Vec<f32>>,
    /// The class probabilities if the sequence stopped after token `t`.
    pub probs: Vec<Vec<f32>>,
    /// `‖∂L/∂h_t‖`, the size of the loss's gradient with respect to each hidden state.
    pub gradient_norms: Vec<f32>,
}

/// How the input weights (`Wxh`) are drawn at first.
///
/// A one-hot input makes `Wxh` a table of token vectors, an embedding. How large those vectors
/// start matters: small ones let a network read the order of a few words from a tiny dataset
/// (the demo); vectors as large as a learnt embedding's let it pick out words in long texts
/// (60 points of accuracy on the spam benchmark, see the README).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InputInit {
    /// Uniform in `[-1/√H, 1/√H]`, as PyTorch initialises `nn.RNN(V, H)`: variance `1/(3H)`.
    LikeRnn,
    /// Uniform in `[-a, a]`: variance `a²/3`. `a = 1` gives the variance (1/3) of PyTorch's
    /// usual `nn.Embedding(V, H)` (N(0, 1)) followed by `nn.RNN(H, H)`'s input weights
    /// (U(±1/√H)).
    Uniform(f32),
}

/// Buffers reused from one batch to the next, so that a training run allocates once.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    /// States by step, then row: `(T+1) × rows × S`; step 0 is the zero initial state.
    states: AlignedVec,
    /// The cell's caches by step, then row: `T × rows × K`.
    caches: AlignedVec,
    /// `h_T` of every row (rows × H).
    last: AlignedVec,
    /// The logits of every row (rows × C).
    logits: Vec<f32>,
    /// The probabilities of every row (rows × C).
    probs: Vec<f32>,
    /// Gradient buffers of the backward pass.
    dlogits: Vec<f32>,
    dlast: Vec<f32>,
    dstate: AlignedVec,
    /// Every token's column in the gradient of the input weights, packed.
    local_tokens: Vec<u32>,
    /// Pre-activation gradients of every token, packed (tokens × G).
    dpre: AlignedVec,
    /// The hidden state before every token after the first step's, packed (tokens × H); empty
    /// when `states` already holds them so (see `Network::states_are_packed`).
    h_prev: AlignedVec,
}

impl Workspace {
    /// The probabilities of row `r` of the last batch (in the batch's sorted order).
    pub fn probabilities(&self, r: usize, classes: usize) -> &[f32] {
        &self.probs[r * classes..][..classes]
    }
}

/// Sets `v`'s length to `len`, new elements zero (growing to exactly `len`, see
/// [`AlignedVec::resize`]).
fn fit(v: &mut AlignedVec, len: usize) {
    v.resize(len, 0.0);
}

/// Checks a size given by a user.
fn positive(what: &str, n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::Config(format!("{what} must be at least 1")));
    }
    Ok(())
}

impl Network {
    /// A network with freshly initialised parameters: the cell's own initialisation with input
    /// weights as `init` says, and the output layer uniform in `[-1/√H, 1/√H]`, as PyTorch
    /// initialises `nn.Linear(H, C)`.
    ///
    /// # Errors
    /// [`Error::Config`] if a size is 0 or the input scale is not a positive number.
    pub fn new(
        kind: CellKind,
        vocab: usize,
        hidden: usize,
        classes: usize,
        init: InputInit,
        rng: &mut Rng,
    ) -> Result<Self> {
        let mut net = Self::zeros(kind, vocab, hidden, classes)?;
        let input = match init {
            InputInit::LikeRnn => 1.0 / (hidden as f32).sqrt(),
            InputInit::Uniform(a) if a.is_finite() && a > 0.0 => a,
            InputInit::Uniform(a) => {
                return Err(Error::Config(format!(
                    "the input weights' scale must be a positive number, not {a}"
                )));
            }
        };
        let head = net.head;
        net.cell.init(&mut net.params[..head], input, rng);
        let a = 1.0 / (hidden as f64).sqrt();
        for w in &mut net.params[head..] {
            *w = rng.symmetric(a) as f32;
        }
        Ok(net)
    }

    /// A network whose parameters are all zero (to be filled, e.g. from a model file).
    ///
    /// # Errors
    /// [`Error::Config`] if a size is 0.
    pub fn zeros(kind: CellKind, vocab: usize, hidden: usize, classes: usize) -> Result<Self> {
        positive("the vocabulary size", vocab)?;
        positive("the hidden size", hidden)?;
        Self::with_cell(kind.build(vocab, hidden), classes)
    }

    /// A network around any cell (one of [`CellKind`]'s or your own), all parameters zero.
    ///
    /// # Errors
    /// [`Error::Config`] if a size is 0.
    pub fn with_cell(cell: Box<dyn Cell>, classes: usize) -> Result<Self> {
        positive("the number of classes", classes)?;
        let hidden = cell.hidden();
        let mut layout = cell.layout();
        assert!(
            layout.tensors().first().is_some_and(|t| t.column_major),
            "a cell's first tensor is its input weights, column by column"
        );
        let head = layout.len();
        layout.push("fc.weight", &[classes, hidden], false);
        layout.push("fc.bias", &[classes], false);
        let params = AlignedVec::zeros(layout.len());
        Ok(Network {
            cell,
            classes,
            layout,
            head,
            params,
        })
    }

    /// The recurrent cell.
    pub fn cell(&self) -> &dyn Cell {
        &*self.cell
    }

    /// `V`, the number of input tokens.
    pub fn vocab(&self) -> usize {
        self.cell.vocab()
    }

    /// `H`, the number of hidden units.
    pub fn hidden(&self) -> usize {
        self.cell.hidden()
    }

    /// `C`, the number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The input weights: how many floats they take at the start of the parameters, and how
    /// many a column (the column of token `v` starts at `v` times that).
    pub fn input_weights(&self) -> (usize, usize) {
        let input = &self.layout.tensors()[0];
        (input.len(), input.shape[0])
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

    /// Runs `batch` forward, leaving every state in `ws` for [`Network::backward`] and the
    /// probabilities of every row in `ws`. Returns the summed loss and the number of correct
    /// predictions when the batch has targets (otherwise only the count).
    pub fn forward(&self, batch: &Batch, ws: &mut Workspace) -> Tally {
        let (rows, steps) = (batch.rows(), batch.steps());
        let h = self.hidden();
        let (s_size, k_size) = (self.cell.state_size(), self.cell.cache_size());
        let cell_p = &self.params[..self.head];

        fit(&mut ws.states, (steps + 1) * rows * s_size);
        ws.states[..rows * s_size].fill(0.0); // h_0 = 0
        fit(&mut ws.caches, steps * rows * k_size);
        for t in 0..steps {
            // step t+1 reads states[t] and writes states[t+1], for the rows still running
            let x = batch.step_tokens(t);
            let n = x.len();
            let (before, after) = ws.states.split_at_mut((t + 1) * rows * s_size);
            let s_prev = (t > 0).then(|| &before[t * rows * s_size..][..n * s_size]);
            let s = &mut after[..n * s_size];
            let cache = &mut ws.caches[t * rows * k_size..][..n * k_size];
            self.cell.forward_step(cell_p, x, s_prev, s, cache);
        }

        // h_T of every row: its state after its own last token
        fit(&mut ws.last, rows * h);
        for (r, &len) in batch.lengths().iter().enumerate() {
            let state = &ws.states[(len * rows + r) * s_size..][..h];
            ws.last[r * h..][..h].copy_from_slice(state);
        }
        self.head_forward(batch, ws)
    }

    /// [`Network::forward`] for prediction only: keeps the current step's states, not every
    /// step's, so its memory does not grow with the length of the sequences (and stays in
    /// cache). Leaves the probabilities in `ws` but nothing for [`Network::backward`].
    pub fn forward_only(&self, batch: &Batch, ws: &mut Workspace) -> Tally {
        let (rows, steps) = (batch.rows(), batch.steps());
        let h = self.hidden();
        let (s_size, k_size) = (self.cell.state_size(), self.cell.cache_size());
        let cell_p = &self.params[..self.head];
        // two state buffers, read one, write the other: rows × S each
        fit(&mut ws.states, 2 * rows * s_size);
        ws.states[..rows * s_size].fill(0.0); // h_0 = 0
        fit(&mut ws.caches, rows * k_size);
        fit(&mut ws.last, rows * h);
        let lengths = batch.lengths();
        let mut running = rows; // rows whose sequence is longer than the steps so far
        let mut current = 0; // which half of `states` holds the latest step
        for t in 0..=steps {
            // rows that end at step t (length t) keep the state the last step left them
            let still = if t < steps {
                batch.step_tokens(t).len()
            } else {
                0
            };
            for (r, &len) in lengths.iter().enumerate().take(running).skip(still) {
                debug_assert_eq!(len, t);
                let state = &ws.states[(current * rows + r) * s_size..][..h];
                ws.last[r * h..][..h].copy_from_slice(state);
            }
            running = still;
            if t == steps {
                break;
            }
            let x = batch.step_tokens(t);
            let n = x.len();
            let (first, second) = ws.states.split_at_mut(rows * s_size);
            let (s_prev, s) = if current == 0 {
                (&*first, second)
            } else {
                (&*second, first)
            };
            let cache = &mut ws.caches[..n * k_size];
            let s_prev = (t > 0).then(|| &s_prev[..n * s_size]);
            self.cell
                .forward_step(cell_p, x, s_prev, &mut s[..n * s_size], cache);
            current = 1 - current;
        }
        self.head_forward(batch, ws)
    }

    /// The output layer on `ws.last`: `y = Why h_T + by`, `p = softmax(y)`, and the loss
    /// `-ln p_target` and accuracy when the batch has targets.
    fn head_forward(&self, batch: &Batch, ws: &mut Workspace) -> Tally {
        let (rows, h, c) = (batch.rows(), self.hidden(), self.classes);
        let (why, by) = self.params[self.head..].split_at(c * h);
        ws.logits.clear();
        for _ in 0..rows {
            ws.logits.extend_from_slice(by);
        }
        matmul_nt(&mut ws.logits, &ws.last, why, rows, h, c);
        ws.probs.clone_from(&ws.logits);
        let mut tally = Tally::default();
        for (r, p) in ws.probs.chunks_exact_mut(c).enumerate() {
            let norm = softmax_in_place(p);
            if let Some(&target) = batch.targets().get(r) {
                let loss = cross_entropy(ws.logits[r * c + target as usize], norm);
                let correct = argmax(p) == target as usize;
                tally.add(f64::from(loss), usize::from(correct), 1);
            } else {
                tally.add(0.0, 0, 1);
            }
        }
        tally
    }

    /// Backpropagation through time for the batch last run by [`Network::forward`] with this
    /// workspace: **adds** the gradient of the batch's mean loss to `grads`.
    ///
    /// # Panics
    /// If the batch has no targets.
    pub fn backward(&self, batch: &Batch, ws: &mut Workspace, grads: &mut Gradients) {
        self.backward_weighted(batch, ws, grads, 1.0 / batch.rows() as f32);
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
        let (rows, h, c) = (batch.rows(), self.hidden(), self.classes);
        self.output_gradient(batch, ws, weight);
        let (input_len, _) = self.input_weights();
        grads.localize(batch.tokens(), &mut ws.local_tokens);
        let (g_columns, g_rest, products) = grads.parts();
        let (g_cell_rest, g_head) = g_rest.split_at_mut(self.head - input_len);
        let (dwhy, dby) = g_head.split_at_mut(c * h);
        // forward: y = Why h_T + by  =>  dby += dy, dWhy += dy h_Tᵀ
        for dy in ws.dlogits.chunks_exact(c) {
            add_into(dby, dy);
        }
        matmul_tn(dwhy, &ws.dlogits, &ws.last, rows, c, h);
        self.through_time(batch, ws, |_, _| {});
        let h_prev = if self.states_are_packed(batch) {
            // h_{t-1} of the tokens after the first step: states 1 to T-1, as they lie
            &ws.states[rows * h..batch.steps().max(1) * rows * h]
        } else {
            &ws.h_prev
        };
        // the weight gradients: sums over all steps, each one product over all tokens
        self.cell.backward_weights(
            &self.params[..self.head],
            &mut CellGradient::new(g_columns, g_cell_rest, products),
            &ws.local_tokens,
            h_prev,
            &ws.dpre,
        );
    }

    /// Backprop into the logits and the last states: `dy = (p - onehot(target)) · weight` into
    /// `ws.dlogits`, and `dh_T = Whyᵀ dy` into the first `H` floats of every row of `ws.dstate`
    /// (the rest of the state gets no gradient from the output).
    fn output_gradient(&self, batch: &Batch, ws: &mut Workspace, weight: f32) {
        assert_eq!(
            batch.targets().len(),
            batch.rows(),
            "backward needs targets"
        );
        let (rows, h, c) = (batch.rows(), self.hidden(), self.classes);
        let s_size = self.cell.state_size();
        let why = &self.params[self.head..][..c * h];
        ws.dlogits.clone_from(&ws.probs);
        for (dy, &target) in ws.dlogits.chunks_exact_mut(c).zip(batch.targets()) {
            dy[target as usize] -= 1.0;
            for v in dy.iter_mut() {
                *v *= weight;
            }
        }
        // dh_T = Whyᵀ dy, row by row: DH = DY · Why
        ws.dlast.clear();
        ws.dlast.resize(rows * h, 0.0);
        matmul_nn(&mut ws.dlast, &ws.dlogits, why, rows, c, h);
        ws.dstate.clear();
        ws.dstate.resize(rows * s_size, 0.0);
        for (ds, dh) in ws
            .dstate
            .chunks_exact_mut(s_size)
            .zip(ws.dlast.chunks_exact(h))
        {
            ds[..h].copy_from_slice(dh);
        }
    }

    /// Back through time from `ws.dstate` (set by [`Network::output_gradient`]): every step
    /// leaves its pre-activation gradients at its tokens' packed positions in `ws.dpre`, and
    /// the state before it in `ws.h_prev`. Before step `t` (0-based) is undone, `on_step(t, ds)`
    /// sees `ds` = `∂L/∂s` after that step for the rows still running.
    fn through_time(
        &self,
        batch: &Batch,
        ws: &mut Workspace,
        mut on_step: impl FnMut(usize, &[f32]),
    ) {
        let (rows, steps, h) = (batch.rows(), batch.steps(), self.hidden());
        let (s_size, k_size) = (self.cell.state_size(), self.cell.cache_size());
        let cell_p = &self.params[..self.head];
        let g_size = self.cell.pre_size();
        let tokens = batch.token_count();
        // a row's gradient waits, untouched, until the steps reach its end; h_prev holds
        // h_{t-1} of every token after the first step's (whose h_0 is zero)
        let first = if steps > 0 {
            batch.step_tokens(0).len()
        } else {
            0
        };
        fit(&mut ws.dpre, tokens * g_size);
        let packed = self.states_are_packed(batch);
        fit(&mut ws.h_prev, if packed { 0 } else { tokens - first } * h);
        for t in (0..steps).rev() {
            let x = batch.step_tokens(t);
            let (n, at) = (x.len(), batch.step_offset(t));
            on_step(t, &ws.dstate[..n * s_size]);
            let s_prev = (t > 0).then(|| &ws.states[t * rows * s_size..][..n * s_size]);
            let s = &ws.states[(t + 1) * rows * s_size..][..n * s_size];
            let cache = &ws.caches[t * rows * k_size..][..n * k_size];
            let ds = &mut ws.dstate[..n * s_size];
            let dpre = &mut ws.dpre[at * g_size..][..n * g_size];
            self.cell
                .backward_step(cell_p, x, s_prev, s, cache, ds, dpre);
            // h_{t-1} of the same rows, packed beside their dpre, for the weight gradients
            // (unless the states already lie that way)
            if let Some(s_prev) = s_prev.filter(|_| !packed) {
                for (dst, src) in ws.h_prev[(at - first) * h..][..n * h]
                    .chunks_exact_mut(h)
                    .zip(s_prev.chunks_exact(s_size))
                {
                    dst.copy_from_slice(&src[..h]);
                }
            }
        }
    }

    /// Whether the states that [`Network::forward`] keeps are, from step 1 on, the hidden
    /// states before every token after the first step, packed: when every row runs every step
    /// (one sequence, or sequences of one length) and the state is `h` alone.
    fn states_are_packed(&self, batch: &Batch) -> bool {
        self.cell.state_size() == self.hidden()
            && batch.lengths().iter().all(|&len| len == batch.steps())
    }

    /// What flows through one sequence, for pictures of it: the hidden state after each token,
    /// the class probabilities after each token (as in [`Network::trace`]), and the size of the
    /// gradient of the loss against `target` that reaches each hidden state, `‖∂L/∂h_t‖`.
    pub fn flow(&self, tokens: &[u32], target: u32, ws: &mut Workspace) -> Flow {
        let batch = Batch::new(&[tokens], &[target]);
        self.forward(&batch, ws);
        let probs = self.probs_after_each_step(tokens.len(), ws);
        let (h, s_size) = (self.hidden(), self.cell.state_size());
        let states = (1..=tokens.len())
            .map(|t| ws.states[t * s_size..][..h].to_vec())
            .collect();
        self.output_gradient(&batch, ws, 1.0);
        let mut gradient_norms = vec![0.0; tokens.len()];
        self.through_time(&batch, ws, |t, ds| {
            gradient_norms[t] = ds[..h].iter().map(|g| g * g).sum::<f32>().sqrt();
        });
        Flow {
            states,
            probs,
            gradient_norms,
        }
    }

    /// The class probabilities of every sequence, in the order given.
    pub fn predict(&self, sequences: &[&[u32]], ws: &mut Workspace) -> Vec<Vec<f32>> {
        let batch = Batch::new(sequences, &[]);
        self.forward_only(&batch, ws);
        let mut out = vec![Vec::new(); sequences.len()];
        for (r, &i) in batch.order().iter().enumerate() {
            out[i] = ws.probabilities(r, self.classes).to_vec();
        }
        out
    }

    /// The class probabilities after each token of `tokens`, as if the sequence stopped there:
    /// `softmax(Why h_t + by)` for `t = 1..T`. The last entry is the prediction for the whole.
    pub fn trace(&self, tokens: &[u32], ws: &mut Workspace) -> Vec<Vec<f32>> {
        let batch = Batch::new(&[tokens], &[]);
        self.forward(&batch, ws);
        self.probs_after_each_step(tokens.len(), ws)
    }

    /// `softmax(Why h_t + by)` for `t = 1..steps`, from the states that [`Network::forward`]
    /// left in `ws` for a batch of one sequence of `steps` tokens.
    fn probs_after_each_step(&self, steps: usize, ws: &Workspace) -> Vec<Vec<f32>> {
        let (h, c, s_size) = (self.hidden(), self.classes, self.cell.state_size());
        let (why, by) = self.params[self.head..].split_at(c * h);
        (1..=steps)
            .map(|t| {
                let mut y = by.to_vec();
                matmul_nt(&mut y, &ws.states[t * s_size..][..h], why, 1, h, c);
                softmax_in_place(&mut y);
                y
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forward_pass_for_prediction_gives_what_the_full_one_gives() {
        let mut rng = Rng::new(3);
        let mut net = Network::new(CellKind::Rnn, 9, 6, 3, InputInit::LikeRnn, &mut rng).unwrap();
        for w in net.params_mut() {
            *w = rng.symmetric(0.7) as f32;
        }
        let seqs: [&[u32]; 5] = [&[1, 2, 3], &[], &[4, 5, 6, 7, 8], &[0], &[8, 8]];
        let batch = Batch::new(&seqs, &[0, 1, 2, 0, 1]);
        let (mut full, mut lean) = (Workspace::default(), Workspace::default());
        let a = net.forward(&batch, &mut full);
        let b = net.forward_only(&batch, &mut lean);
        assert_eq!(
            (a.loss_sum, a.correct, a.count),
            (b.loss_sum, b.correct, b.count)
        );
        assert_eq!(full.probs, lean.probs);
        assert_eq!(lean.states.len(), 2 * 5 * 6, "two steps of states, not six");
    }
}
