//! One layer: its input projection, one or two directions, and its outputs.
//!
//! ```text
//! pre_{d,t} = W_ih,d x_t + b_ih,d                      every token at once, each direction
//! h_{d,t}   = cell_d(pre_{d,t}, h_{d,t∓1})              the unroll, forwards or backwards
//! y_t       = [h_{0,t}, h_{1,t}]                       D·H, the next layer's input
//! ```
//!
//! **The input projection.** When `x_t` is one-hot (the first layer without an embedding),
//! `W_ih x_t` is column `x_t` of `W_ih`: a look-up, and the gradient touches only the columns of
//! the batch's tokens (kept sparse, see [`super::Gradients`]). When `x_t` is dense (an embedding,
//! or the layer below), the projection of every token is one matrix product, `PRE = X·W_ihᵀ + b`
//! (N×G·H), and backward `dW_ih += DGIᵀ·X` and `dX = DGI·W_ih`, where `DGI` holds `∂L/∂pre` of
//! every token. Computing the input side for all steps at once leaves only the recurrent
//! product inside the loop over time.
//!
//! **Directions.** A direction that reads backwards gets its tokens, or its input rows, in its
//! own packed order ([`Batch::reversed_positions`]), runs the same unroll, and puts its outputs
//! back at their forward positions. Nothing else differs.

use super::Batch;
use super::cell::Cell;
use super::grads::CellGradient;
use super::unroll::{self, AtStep, Projection, Track, fit};
use crate::kernels::{AlignedVec, add_into, matmul_nn, matmul_nt};

/// What a layer reads at every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Input {
    /// Token ids of a vocabulary of this size: one-hot vectors, so the input weights are a
    /// table with a column a token.
    Tokens(usize),
    /// Dense vectors of this width: an embedding, or the layer below's outputs.
    Dense(usize),
}

impl Input {
    /// The width of an input vector: the vocabulary's size for one-hot tokens.
    pub fn width(self) -> usize {
        match self {
            Input::Tokens(v) | Input::Dense(v) => v,
        }
    }
}

/// One direction of a layer: its cell, which way it reads, and where its tensors lie in the
/// parameters.
#[derive(Clone, Debug)]
pub(super) struct Direction {
    pub cell: Box<dyn Cell>,
    pub reverse: bool,
    /// `W_ih` (G·H × I): column by column for [`Input::Tokens`], row by row otherwise.
    pub w_ih: usize,
    /// `b_ih` (G·H).
    pub b_ih: usize,
    /// The cell's tensors, `cell_len` floats from `cell_at`.
    pub cell_at: usize,
    pub cell_len: usize,
    /// Under one-hot input: where this direction's column lies in a token's gradient entry.
    pub entry_at: usize,
}

impl Direction {
    /// `G·H`, the width of the projected input.
    fn rows(&self) -> usize {
        self.cell.gates() * self.cell.hidden()
    }

    fn cell_params<'a>(&self, params: &'a [f32]) -> &'a [f32] {
        &params[self.cell_at..][..self.cell_len]
    }
}

/// A layer: what it reads, and its directions (the forward one first).
#[derive(Clone, Debug)]
pub(super) struct Layer {
    pub input: Input,
    pub dirs: Vec<Direction>,
}

/// A layer's input for one batch, packed in forward order.
#[derive(Clone, Copy, Debug)]
pub(super) enum LayerInput<'a> {
    /// One token id a position.
    Tokens(&'a [u32]),
    /// One row of [`Input::Dense`]'s width a position.
    Dense(&'a [f32]),
    /// The embedding of a batch of few distinct tokens (see [`super::embedding`]): a row of
    /// [`Input::Dense`]'s width a distinct token, and for every position, which is its row.
    Distinct { rows: &'a [f32], of: &'a [u32] },
}

impl LayerInput<'_> {
    /// The rows of the input's gradient: one a position (`n_tokens`), or one a distinct row.
    pub fn gradient_rows(&self, n_tokens: usize, width: usize) -> usize {
        match self {
            LayerInput::Distinct { rows, .. } => rows.len() / width.max(1),
            LayerInput::Tokens(_) | LayerInput::Dense(_) => n_tokens,
        }
    }
}

/// What looks at the gradient on a direction's states in the backward pass: `(d, t, ds)`.
pub(super) type Hook<'a> = &'a mut dyn FnMut(usize, usize, &[f32]);

/// The gradient that reaches a layer's outputs from above: from the pooling and the head, or
/// from the next layer.
pub(super) trait Above {
    /// The gradient on direction `d`'s final states (rows × H), if any reaches them directly.
    fn d_last(&self, d: usize) -> Option<&[f32]>;

    /// Whether any gradient reaches the outputs of the steps (see [`Above::add`]).
    fn reaches_steps(&self) -> bool;

    /// Adds the gradient on direction `d`'s outputs at its step `t` (0-based, in its own
    /// order) to `ds`, `∂L/∂s_t` of the rows running at that step (n×S).
    fn add(&self, d: usize, t: usize, ds: &mut [f32], s_size: usize);
}

/// The gradient on a layer's outputs from the layer above: `d_out` (N × D·H, forward order).
pub(super) struct FromNextLayer<'a> {
    pub d_out: &'a [f32],
    pub batch: &'a Batch,
    pub positions: &'a [u32],
    pub dirs: usize,
    pub hidden: usize,
}

impl Above for FromNextLayer<'_> {
    fn d_last(&self, _: usize) -> Option<&[f32]> {
        None
    }

    fn reaches_steps(&self) -> bool {
        true
    }

    fn add(&self, d: usize, t: usize, ds: &mut [f32], s_size: usize) {
        let (h, width, at) = (
            self.hidden,
            self.dirs * self.hidden,
            self.batch.step_offset(t),
        );
        for (r, row) in ds.chunks_exact_mut(s_size).enumerate() {
            let pos = if d == 0 {
                at + r
            } else {
                self.positions[at + r] as usize
            };
            add_into(&mut row[..h], &self.d_out[pos * width + d * h..][..h]);
        }
    }
}

/// Where a layer's backward pass writes: the gradient buffers of the whole network.
pub(super) struct LayerGrads<'a> {
    /// Tokens' entries of the token tables, `entry` floats a token (see [`super::Gradients`]).
    pub entries: &'a mut [f32],
    pub entry: usize,
    /// The dense gradients, from parameter `base` on.
    pub rest: &'a mut [f32],
    pub base: usize,
    pub products: &'a mut Vec<super::Product>,
}

/// What a layer keeps between its forward and backward passes; reused from batch to batch.
#[derive(Clone, Debug, Default)]
pub(super) struct LayerWork {
    /// One track a direction.
    pub tracks: Vec<Track>,
    /// A direction's projected inputs from dense ones, every token's (N × G·H).
    pre: AlignedVec,
    /// The layer's outputs, N × D·H in forward order, after dropout: the next layer's input,
    /// or a step head's. Only layers below the top fill it, and the top under a step head.
    pub out: AlignedVec,
    /// The dropout mask applied to `out` (empty when none was).
    pub mask: Vec<f32>,
    /// A backward direction's input in its own order: tokens (or their gradient entries)...
    rev_tokens: Vec<u32>,
    /// ...or dense rows (N × I).
    rev_input: AlignedVec,
    /// `∂L/∂pre` of every token made contiguous (N × G·H), when the cell keeps more a token.
    dgi: AlignedVec,
    /// A backward direction's input gradient in its own order (N × I).
    rev_dx: AlignedVec,
}

impl Layer {
    /// Runs the layer forward over `batch` (see [`unroll::forward`] for `keep` and `initial`,
    /// which only a layer of one direction takes). With `write_out`, the outputs of every
    /// position go to `work.out`. After each step `t` of direction `d`, `on_step(d, t, s)` sees
    /// the states of the rows still running (n×S).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        params: &[f32],
        batch: &Batch,
        input: LayerInput<'_>,
        positions: &[u32],
        work: &mut LayerWork,
        keep: bool,
        initial: Option<&[f32]>,
        write_out: bool,
        mut on_step: impl FnMut(usize, usize, &[f32]),
    ) {
        assert!(
            initial.is_none() || self.dirs.len() == 1,
            "a state is carried in one direction only"
        );
        let n_tokens = batch.token_count();
        let h = self.dirs[0].cell.hidden();
        let width = self.dirs.len() * h;
        work.tracks.resize_with(self.dirs.len(), Track::default);
        if write_out {
            fit(&mut work.out, n_tokens * width);
        }
        let LayerWork {
            tracks,
            pre,
            out,
            rev_tokens,
            rev_input,
            ..
        } = work;
        for (d, (dir, track)) in self.dirs.iter().zip(tracks.iter_mut()).enumerate() {
            let g = dir.rows();
            let b_ih = &params[dir.b_ih..][..g];
            let projection = match input {
                // pre = b_ih + column x of W_ih, a look-up, step by step
                LayerInput::Tokens(ids) => Projection::Columns {
                    tokens: in_order(ids, dir.reverse, positions, rev_tokens),
                    table: &params[dir.w_ih..][..g * self.input.width()],
                    bias: b_ih,
                },
                LayerInput::Dense(x) => {
                    let i_width = self.input.width();
                    let x = rows_in_order(x, i_width, dir.reverse, positions, rev_input);
                    // PRE = X · W_ihᵀ + b_ih, every token at once
                    project(params, dir, x, i_width, pre);
                    Projection::Rows(pre)
                }
                LayerInput::Distinct { rows, of } => {
                    // U = R · W_ihᵀ + b_ih, each distinct row once; pre_t = row x_t of U, the
                    // same sums as a row a position (a text gets the same numbers either way)
                    project(params, dir, rows, self.input.width(), pre);
                    Projection::Distinct {
                        of: in_order(of, dir.reverse, positions, rev_tokens),
                        rows: pre,
                    }
                }
            };
            let s_size = dir.cell.state_size();
            unroll::forward(
                &*dir.cell,
                dir.cell_params(params),
                batch,
                projection,
                track,
                keep,
                initial,
                |t, s| {
                    if write_out {
                        let at = batch.step_offset(t);
                        for (r, state) in s.chunks_exact(s_size).enumerate() {
                            let pos = if dir.reverse {
                                positions[at + r] as usize
                            } else {
                                at + r
                            };
                            out[pos * width + d * h..][..h].copy_from_slice(&state[..h]);
                        }
                    }
                    on_step(d, t, s);
                },
            );
        }
    }

    /// Backpropagation through the layer for the batch last run by [`Layer::forward`] with
    /// `keep`: **adds** the gradients of its parameters to `grads`, and, when `dx` is given,
    /// **adds** the gradient on its dense input (N × I, forward order) to `dx`. `local` holds
    /// the batch's tokens as their entries in `grads` (for one-hot input). Before a step is
    /// undone, `hook(d, t, ds)`, if given, sees the gradient on direction `d`'s state at its
    /// step `t`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        batch: &Batch,
        input: LayerInput<'_>,
        positions: &[u32],
        local: &[u32],
        work: &mut LayerWork,
        grads: &mut LayerGrads<'_>,
        above: &dyn Above,
        mut dx: Option<&mut [f32]>,
        mut hook: Option<Hook<'_>>,
    ) {
        let n_tokens = batch.token_count();
        let LayerWork {
            tracks,
            rev_tokens,
            rev_input,
            dgi,
            rev_dx,
            ..
        } = work;
        for (d, (dir, track)) in self.dirs.iter().zip(tracks.iter_mut()).enumerate() {
            let g = dir.rows();
            let s_size = dir.cell.state_size();
            let mut cell_grad = CellGradient::new(
                grads.rest,
                dir.cell_at - grads.base,
                dir.cell_len,
                grads.products,
            );
            let (reaches, hooked) = (above.reaches_steps(), hook.is_some());
            let mut at_step = |t: usize, ds: &mut [f32]| {
                if reaches {
                    above.add(d, t, ds, s_size);
                }
                if let Some(hook) = hook.as_deref_mut() {
                    hook(d, t, ds);
                }
            };
            let at_step: Option<AtStep<'_>> = (reaches || hooked).then_some(&mut at_step);
            unroll::backward(
                &*dir.cell,
                dir.cell_params(params),
                batch,
                track,
                &mut cell_grad,
                above.d_last(d),
                at_step,
            );
            // ∂L/∂pre of every token: the first G·H floats of its pre-activation gradient
            let p_size = dir.cell.pre_size();
            let dpre = &track.dpre[..n_tokens * p_size];
            // forward: pre = W_ih x + b_ih  =>  db_ih += dpre, and W_ih's gradient below
            let db_ih = &mut grads.rest[dir.b_ih - grads.base..][..g];
            match input {
                LayerInput::Tokens(_) => {
                    // one-hot x: column x of dW_ih += dpre, in the token's gradient entry
                    let entries = in_order(local, dir.reverse, positions, rev_tokens);
                    for (d_row, &entry) in dpre.chunks_exact(p_size).zip(entries) {
                        let d_row = &d_row[..g];
                        add_into(db_ih, d_row);
                        let at = entry as usize * grads.entry + dir.entry_at;
                        add_into(&mut grads.entries[at..][..g], d_row);
                    }
                }
                LayerInput::Dense(x) => {
                    for d_row in dpre.chunks_exact(p_size) {
                        add_into(db_ih, &d_row[..g]);
                    }
                    // the same input rows the forward pass projected (reordered for a backward
                    // direction, and still in `rev_input` from the forward pass)
                    let x = if dir.reverse { &rev_input[..] } else { x };
                    let bufs = (&mut *dgi, &mut *rev_dx);
                    let dx = dx.as_deref_mut();
                    self.backward_dense(params, dir, x, dpre, positions, grads, dx, bufs);
                }
                LayerInput::Distinct { rows, of } => {
                    let of = in_order(of, dir.reverse, positions, rev_tokens);
                    let dx = dx.as_deref_mut();
                    self.backward_distinct(params, dir, rows, of, dpre, grads, dx, dgi);
                }
            }
        }
    }

    /// The input side of [`Layer::backward`] for [`LayerInput::Distinct`] input: `rows`
    /// (R × I, a distinct token's vector a row), `of` (the row of every position, in the
    /// direction's order). The gradient of a token's projection is the sum over its positions,
    /// `S_r = Σ_{t: of_t = r} dpre_t` (the first `G·H` floats of each row of `dpre`, summed
    /// into `sums`); then **adds** `db_ih += Σ_r S_r`, `dW_ih += Sᵀ·R` and, when `dx` is
    /// given, `dR += S·W_ih` to `dx` (R × I).
    #[allow(clippy::too_many_arguments)]
    fn backward_distinct(
        &self,
        params: &[f32],
        dir: &Direction,
        rows: &[f32],
        of: &[u32],
        dpre: &[f32],
        grads: &mut LayerGrads<'_>,
        dx: Option<&mut [f32]>,
        sums: &mut AlignedVec,
    ) {
        let (g, p_size, i_width) = (dir.rows(), dir.cell.pre_size(), self.input.width());
        let distinct = of_rows(rows, self.input);
        fit(sums, distinct * g);
        sums.fill(0.0);
        for (d_row, &r) in dpre.chunks_exact(p_size).zip(of) {
            add_into(&mut sums[r as usize * g..][..g], &d_row[..g]);
        }
        let db_ih = &mut grads.rest[dir.b_ih - grads.base..][..g];
        for sum in sums.chunks_exact(g) {
            add_into(db_ih, sum);
        }
        add_input_weight_gradient(dir, grads, sums, rows, i_width);
        if let Some(dx) = dx {
            let w = &params[dir.w_ih..][..g * i_width];
            matmul_nn(dx, sums, w, distinct, g, i_width);
        }
    }

    /// The input side of [`Layer::backward`] for dense input `x` (N × I, in the direction's
    /// order): **adds** `dW_ih += DGIᵀ·X` to `grads` and, when `dx` is given, `DX += DGI·W_ih`
    /// to `dx` (forward order), where `DGI` is `∂L/∂pre` of every token, the first `G·H`
    /// floats of each row of `dpre` (made contiguous in `bufs.0`; `bufs.1` holds a backward
    /// direction's `DX` in its own order).
    #[allow(clippy::too_many_arguments)]
    fn backward_dense(
        &self,
        params: &[f32],
        dir: &Direction,
        x: &[f32],
        dpre: &[f32],
        positions: &[u32],
        grads: &mut LayerGrads<'_>,
        dx: Option<&mut [f32]>,
        (dgi, rev_dx): (&mut AlignedVec, &mut AlignedVec),
    ) {
        let (g, p_size, i_width) = (dir.rows(), dir.cell.pre_size(), self.input.width());
        let n_tokens = dpre.len() / p_size;
        let dgi: &[f32] = if p_size == g {
            dpre
        } else {
            fit(dgi, n_tokens * g);
            for (dst, src) in dgi.chunks_exact_mut(g).zip(dpre.chunks_exact(p_size)) {
                dst.copy_from_slice(&src[..g]);
            }
            dgi
        };
        // dW_ih += Σ_t dpre_t · x_tᵀ = DGIᵀ · X, one product over all tokens
        add_input_weight_gradient(dir, grads, dgi, x, i_width);
        // dx_t += W_ihᵀ dpre_t; row by row DX += DGI · W_ih
        if let Some(dx) = dx {
            let w = &params[dir.w_ih..][..g * i_width];
            if dir.reverse {
                fit(rev_dx, n_tokens * i_width);
                rev_dx.fill(0.0);
                matmul_nn(rev_dx, dgi, w, n_tokens, g, i_width);
                for (i, row) in rev_dx.chunks_exact(i_width).enumerate() {
                    let pos = positions[i] as usize;
                    add_into(&mut dx[pos * i_width..][..i_width], row);
                }
            } else {
                matmul_nn(dx, dgi, w, n_tokens, g, i_width);
            }
        }
    }
}

/// `PRE = X · W_ihᵀ + b_ih` of direction `dir`, every row of `x` (`i_width` wide) at once,
/// into `pre` (a row of G·H a row of `x`).
fn project(params: &[f32], dir: &Direction, x: &[f32], i_width: usize, pre: &mut AlignedVec) {
    let (g, n) = (dir.rows(), x.len() / i_width.max(1));
    fit(pre, n * g);
    let b_ih = &params[dir.b_ih..][..g];
    for row in pre.chunks_exact_mut(g) {
        row.copy_from_slice(b_ih);
    }
    let w = &params[dir.w_ih..][..g * i_width];
    matmul_nt(pre, x, w, n, i_width, g);
}

/// **Adds** `dW_ih += Aᵀ·X` of direction `dir` to `grads`, one product over the rows: `A` holds
/// `∂L/∂pre` rows (G·H wide), `X` the input rows (`i_width` wide) they were projected from.
fn add_input_weight_gradient(
    dir: &Direction,
    grads: &mut LayerGrads<'_>,
    a: &[f32],
    x: &[f32],
    i_width: usize,
) {
    let g = dir.rows();
    CellGradient::new(
        grads.rest,
        dir.w_ih - grads.base,
        g * i_width,
        grads.products,
    )
    .add_product(0, a, x, g, i_width);
}

/// How many rows of `input`'s width `rows` holds.
fn of_rows(rows: &[f32], input: Input) -> usize {
    rows.len() / input.width().max(1)
}

/// `ids` as a direction reads them: as they are, or reordered by `positions` into `buf`.
fn in_order<'a>(
    ids: &'a [u32],
    reverse: bool,
    positions: &[u32],
    buf: &'a mut Vec<u32>,
) -> &'a [u32] {
    if !reverse {
        return ids;
    }
    buf.clear();
    buf.extend(positions.iter().map(|&p| ids[p as usize]));
    buf
}

/// The rows (`width` floats each) of `x` as a direction reads them: as they are, or reordered
/// by `positions` into `buf`.
fn rows_in_order<'a>(
    x: &'a [f32],
    width: usize,
    reverse: bool,
    positions: &[u32],
    buf: &'a mut AlignedVec,
) -> &'a [f32] {
    if !reverse {
        return x;
    }
    fit(buf, positions.len() * width);
    for (dst, &p) in buf.chunks_exact_mut(width.max(1)).zip(positions) {
        dst.copy_from_slice(&x[p as usize * width..][..width]);
    }
    buf
}
