//! One direction of one layer, unrolled over a batch: the loop over time, written once for
//! every cell.
//!
//! ```text
//! s_0 = 0, or the state carried from the window before (a language model's truncated BPTT)
//! s_t = cell(pre_t, s_{t-1})        t = 1..T, for the rows still running at step t
//! ```
//!
//! `pre_t` is the step's projected input (`W_ih x_t + b_ih`, see [`super::layer`]), in this
//! direction's packed order: a direction that reads backwards gets its inputs reordered (see
//! [`Batch::reversed_positions`]) and otherwise runs exactly as a forward one, so nothing here
//! knows which way it reads. For one-hot tokens the look-up is done step by step, into a
//! buffer of one step's rows that stays in cache, rather than for every token at once.
//!
//! Backward, from the last step to the first: before step `t` is undone, the gradient that
//! reaches its output from above (the pooling, the output layer, the next layer) is added to
//! `∂L/∂s_t`; the cell's backward step then leaves the step's pre-activation gradients and
//! carries the rest to `s_{t-1}`. A row's gradient from its final state (the `last` pooling)
//! waits, untouched, until the steps reach the row's end.

use super::Batch;
use super::cell::{Cell, Pass, Recurrent};
use super::grads::CellGradient;
use crate::kernels::{AlignedVec, sum_into};

/// From this many steps and [`LAY_OUT_ROWS`] rows on, a pass lays out the recurrent weights
/// once (transposed for the forward pass), for every step's product to read (see
/// [`Recurrent`]); for fewer steps the copy costs more than it saves.
const LAY_OUT_FROM: usize = 4;

/// Fewer rows than this read `W_hh` as it lies, with the kernels of a row alone: one row's
/// dot products are at least as fast, and a text predicted in a small batch gets the same
/// answer as alone, to the last bit (`tests/serve.rs`).
const LAY_OUT_ROWS: usize = 8;

/// The projected inputs `pre_t = W_ih x_t + b_ih` of a direction, in its packed order.
#[derive(Clone, Copy, Debug)]
pub(super) enum Projection<'a> {
    /// Every token's, computed already (N × G·H).
    Rows(&'a [f32]),
    /// One-hot tokens: a token's is `bias` plus its column of `table` (G·H floats a column).
    Columns {
        tokens: &'a [u32],
        table: &'a [f32],
        bias: &'a [f32],
    },
    /// Few distinct tokens: every distinct token's, computed already (R × G·H), and for every
    /// position which row is its.
    Distinct { of: &'a [u32], rows: &'a [f32] },
}

/// What the backward pass calls at every step: `(t, ds)`, see [`backward`].
pub(super) type AtStep<'a> = &'a mut dyn FnMut(usize, &mut [f32]);

/// What one direction keeps from its forward pass for its backward pass; reused from batch to
/// batch.
#[derive(Clone, Debug, Default)]
pub(super) struct Track {
    /// One step's projected inputs, when they are looked up step by step (rows × G·H).
    pub step_pre: AlignedVec,
    /// States by step, then row: `(T+1) × rows × S`, step 0 being the initial state (zero,
    /// unless `carried`); only `2 × rows × S` (the latest two steps) when the forward pass
    /// keeps no history.
    pub states: AlignedVec,
    /// Whether the last forward pass started from a given state rather than from zero.
    pub carried: bool,
    /// The cell's caches by step, then row: `T × rows × K` (one step when no history is kept).
    pub caches: AlignedVec,
    /// `∂L/∂s` of every row during the backward pass (rows × S).
    pub dstate: AlignedVec,
    /// The pre-activation gradients of every token, packed (N × P).
    pub dpre: AlignedVec,
    /// The hidden state before every token after the first step's, packed (tokens × H);
    /// empty when `states` already holds them so (see [`states_are_packed`]).
    pub h_prev: AlignedVec,
    /// `W_hhᵀ` (H × G·H) laid out during a forward pass of [`LAY_OUT_FROM`] steps and
    /// [`LAY_OUT_ROWS`] rows or more (see [`Recurrent::lay_out`]).
    pub w_hh_forward: AlignedVec,
    /// `W_hh` (G·H × H) laid out during such a backward pass.
    pub w_hh_backward: AlignedVec,
}

/// Sets `v`'s length to `len`, new elements zero (growing to exactly `len`, see
/// [`AlignedVec::resize`]).
pub(super) fn fit(v: &mut AlignedVec, len: usize) {
    v.resize(len, 0.0);
}

/// Runs the direction forward over `batch` from its projected inputs. With `keep`, every step's
/// states and caches stay in `track` for [`backward`]; without, only the latest two steps'
/// states do, so memory does not grow with the length of the sequences. After every step `t`
/// (0-based), `on_step(t, s)` sees the new states `s` of the rows still running (n×S).
///
/// `initial` (rows × S), when given, is `s_0`, the state carried over from the window before;
/// otherwise `s_0 = 0`. The backward pass treats it as a constant: no gradient crosses from
/// one window into the one before (truncated backpropagation through time).
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(
    cell: &dyn Cell,
    p: &[f32],
    batch: &Batch,
    input: Projection<'_>,
    track: &mut Track,
    keep: bool,
    initial: Option<&[f32]>,
    mut on_step: impl FnMut(usize, &[f32]),
) {
    let (rows, steps) = (batch.rows(), batch.steps());
    let (s_size, k_size, g_size) = (
        cell.state_size(),
        cell.cache_size(),
        cell.gates() * cell.hidden(),
    );
    let kept_steps = if keep { steps } else { 1 };
    fit(&mut track.states, (kept_steps + 1) * rows * s_size);
    fit(&mut track.caches, kept_steps * rows * k_size);
    if let Projection::Columns { .. } | Projection::Distinct { .. } = input {
        fit(&mut track.step_pre, rows * g_size);
    }
    track.carried = initial.is_some();
    if let Some(initial) = initial {
        assert_eq!(initial.len(), rows * s_size, "an initial state a row");
        track.states[..rows * s_size].copy_from_slice(initial);
    }
    let carried = track.carried;
    let mut w_hh = Recurrent::of(cell, p);
    if lays_out(steps, rows) {
        w_hh = w_hh.lay_out(&mut track.w_hh_forward, Pass::Forward);
    }
    for t in 0..steps {
        let (n, at) = (batch.active(t), batch.step_offset(t));
        let pre: &[f32] = match input {
            Projection::Rows(all) => &all[at * g_size..][..n * g_size],
            Projection::Columns {
                tokens,
                table,
                bias,
            } => {
                let pre = &mut track.step_pre[..n * g_size];
                for (row, &token) in pre.chunks_exact_mut(g_size).zip(&tokens[at..at + n]) {
                    sum_into(row, bias, &table[token as usize * g_size..][..g_size]);
                }
                pre
            }
            Projection::Distinct { of, rows } => {
                let pre = &mut track.step_pre[..n * g_size];
                for (row, &r) in pre.chunks_exact_mut(g_size).zip(&of[at..at + n]) {
                    row.copy_from_slice(&rows[r as usize * g_size..][..g_size]);
                }
                pre
            }
        };
        // with history, step t reads states[t] and writes states[t+1]; without, the two halves
        // take turns
        let (read, write) = if keep { (t, t + 1) } else { (t % 2, 1 - t % 2) };
        let (s_prev, s) = split_pair(&mut track.states, read, write, rows * s_size);
        let s_prev = (t > 0 || carried).then(|| &s_prev[..n * s_size]);
        let s = &mut s[..n * s_size];
        let cache = &mut track.caches[if keep { t } else { 0 } * rows * k_size..][..n * k_size];
        cell.forward_step(p, w_hh, pre, s_prev, s, cache);
        on_step(t, s);
    }
}

/// The states after the last step of the last forward pass over `batch` (rows × S), when every
/// row ran every step: the state to carry into the next window.
///
/// # Panics
/// If the rows of the batch have different lengths.
pub(super) fn final_states<'a>(
    track: &'a Track,
    batch: &Batch,
    s_size: usize,
    keep: bool,
) -> &'a [f32] {
    let (rows, steps) = (batch.rows(), batch.steps());
    assert!(
        batch.lengths().iter().all(|&len| len == steps),
        "a state is carried only between windows of one length"
    );
    let block = if keep { steps } else { steps % 2 };
    &track.states[block * rows * s_size..][..rows * s_size]
}

/// Block `read` and block `write` (different) of `len` floats each, of `v`.
fn split_pair(v: &mut [f32], read: usize, write: usize, len: usize) -> (&[f32], &mut [f32]) {
    if read < write {
        let (a, b) = v.split_at_mut(write * len);
        (&a[read * len..][..len], &mut b[..len])
    } else {
        let (a, b) = v.split_at_mut(read * len);
        (&b[..len], &mut a[write * len..][..len])
    }
}

/// Backpropagation through time for the batch last run by [`forward`] with `keep`: **adds** the
/// gradients of the cell's parameters to `grad`, and leaves every token's pre-activation
/// gradient in `track.dpre` (its first `G·H` floats a token are `∂L/∂pre_t`, for the layer).
///
/// The gradient enters in two ways: `d_last` (rows × H), on each row's final state, and
/// `at_step(t, ds)`, which adds the gradient on step `t`'s outputs to `ds` (`∂L/∂s_t` of the
/// rows running at step `t`, n×S) before the step is undone (and may look at it).
pub(super) fn backward(
    cell: &dyn Cell,
    p: &[f32],
    batch: &Batch,
    track: &mut Track,
    grad: &mut CellGradient<'_>,
    d_last: Option<&[f32]>,
    mut at_step: Option<AtStep<'_>>,
) {
    let (rows, steps, h) = (batch.rows(), batch.steps(), cell.hidden());
    let (s_size, k_size, p_size) = (cell.state_size(), cell.cache_size(), cell.pre_size());
    fit(&mut track.dstate, rows * s_size);
    track.dstate.fill(0.0);
    if let Some(d_last) = d_last {
        for (ds, dh) in track
            .dstate
            .chunks_exact_mut(s_size)
            .zip(d_last.chunks_exact(h))
        {
            ds[..h].copy_from_slice(dh);
        }
    }
    let tokens = batch.token_count();
    let carried = track.carried;
    // the tokens whose h_{t-1} is the zero initial state, and add nothing to the recurrent
    // weights' gradient: the first step's, unless a state was carried in
    let first = if steps > 0 && !carried {
        batch.active(0)
    } else {
        0
    };
    fit(&mut track.dpre, tokens * p_size);
    let packed = states_are_packed(cell, batch);
    fit(
        &mut track.h_prev,
        if packed { 0 } else { tokens - first } * h,
    );
    let mut w_hh = Recurrent::of(cell, p);
    if lays_out(steps, rows) {
        w_hh = w_hh.lay_out(&mut track.w_hh_backward, Pass::Backward);
    }
    for t in (0..steps).rev() {
        let (n, at) = (batch.active(t), batch.step_offset(t));
        let ds = &mut track.dstate[..n * s_size];
        if let Some(at_step) = at_step.as_deref_mut() {
            at_step(t, ds);
        }
        let s_prev = (t > 0 || carried).then(|| &track.states[t * rows * s_size..][..n * s_size]);
        let s = &track.states[(t + 1) * rows * s_size..][..n * s_size];
        let cache = &track.caches[t * rows * k_size..][..n * k_size];
        let dpre = &mut track.dpre[at * p_size..][..n * p_size];
        cell.backward_step(p, w_hh, s_prev, s, cache, ds, dpre);
        // h_{t-1} of the same rows, packed beside their dpre, for the weight gradients
        // (unless the states already lie that way)
        if let Some(s_prev) = s_prev.filter(|_| !packed) {
            for (dst, src) in track.h_prev[(at - first) * h..][..n * h]
                .chunks_exact_mut(h)
                .zip(s_prev.chunks_exact(s_size))
            {
                dst.copy_from_slice(&src[..h]);
            }
        }
    }
    let h_prev = if packed {
        // h_{t-1} of the tokens after the first step: states 1 to T-1, as they lie (from
        // state 0, the carried one, when there is one)
        let (from, to) = if carried {
            (0, steps)
        } else {
            (1, steps.max(1))
        };
        &track.states[from * rows * h..to * rows * h]
    } else {
        &track.h_prev
    };
    // the weight gradients: sums over all steps, each one product over all tokens
    cell.backward_weights(p, grad, h_prev, &track.dpre);
}

/// Whether a pass of `steps` steps over `rows` rows lays out the recurrent weights once for all
/// its products (see [`LAY_OUT_FROM`] and [`LAY_OUT_ROWS`]).
fn lays_out(steps: usize, rows: usize) -> bool {
    steps >= LAY_OUT_FROM && rows >= LAY_OUT_ROWS
}

/// Whether the states that [`forward`] keeps are, from step 1 on, the hidden states before
/// every token after the first step, packed: when every row runs every step (one sequence, or
/// sequences of one length) and the state is `h` alone.
fn states_are_packed(cell: &dyn Cell, batch: &Batch) -> bool {
    cell.state_size() == cell.hidden() && batch.lengths().iter().all(|&len| len == batch.steps())
}
