//! The gated recurrent unit, PyTorch's `nn.GRU`, with its equations and gate order (r, z, n):
//!
//! ```text
//! r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)          reset gate
//! z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)          update gate
//! n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))  candidate state
//! h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}
//! ```
//!
//! `h_t` is a mix, unit by unit, of the old state and a candidate: where `z ≈ 1` a unit keeps
//! its value, and the gradient flows back through it unchanged (`∂h_t/∂h_{t-1} ⊇ z_t`), which
//! is why a GRU remembers over longer texts than the plain cell.
//!
//! | parameter | shape | PyTorch name        | holds                                   |
//! |-----------|-------|---------------------|-----------------------------------------|
//! | `W_i`     | 3H×I  | `rnn.weight_ih_l0`  | `W_ir; W_iz; W_in` (the layer's)        |
//! | `b_i`     | 3H    | `rnn.bias_ih_l0`    | `b_ir; b_iz; b_in` (the layer's)        |
//! | `W_h`     | 3H×H  | `rnn.weight_hh_l0`  | `W_hr; W_hz; W_hn`                      |
//! | `b_h`     | 3H    | `rnn.bias_hh_l0`    | `b_hr; b_hz; b_hn`                      |
//!
//! The layer hands the cell `pre_t = W_i x_t + b_i` (3H a sequence); the cell holds `W_h` and
//! `b_h`. Both biases are kept: `b_hn` sits inside `r ⊙ (…)`, so it cannot be folded into `b_in`.
//!
//! **Backward**, one step, from `dh = ∂L/∂h_t` (every product element by element):
//!
//! ```text
//! dn   = dh ⊙ (1 - z)                     dz   = dh ⊙ (h_{t-1} - n)
//! da_n = dn ⊙ (1 - n²)                    da_z = dz ⊙ z ⊙ (1 - z)
//! dr   = da_n ⊙ (W_hn h_{t-1} + b_hn)     da_r = dr ⊙ r ⊙ (1 - r)
//! dgi  = [da_r, da_z, da_n]               the gradient of W_i x + b_i
//! dgh  = [da_r, da_z, r ⊙ da_n]           the gradient of W_h h_{t-1} + b_h
//! dh_{t-1} = dh ⊙ z + W_hᵀ dgh
//! ```
//!
//! and over a batch, `dW_h += dgh · h_{t-1}ᵀ`, `db_h += dgh`; `dgi` is `∂L/∂pre_t`, which the
//! layer turns into `dW_i` and `db_i`.

use super::cell::{Cell, Recurrent};
use super::gates::{Stacked, with_scratch};
use super::grads::CellGradient;
use crate::kernels::{add_into, gru_mix, sigmoid_in_place, tanh_in_place};

/// A GRU cell with `hidden` units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gru {
    shape: Stacked,
}

impl Gru {
    /// A cell with `hidden` units.
    pub fn new(hidden: usize) -> Self {
        Gru {
            shape: Stacked { hidden, gates: 3 },
        }
    }
}

impl Cell for Gru {
    fn hidden(&self) -> usize {
        self.shape.hidden
    }

    fn gates(&self) -> usize {
        3
    }

    /// Per sequence and step: `r`, `z`, `n` and `W_hn h_{t-1} + b_hn`.
    fn cache_size(&self) -> usize {
        4 * self.shape.hidden
    }

    /// `[da_r, da_z, da_n, r ⊙ da_n]`: `dgi` is the first three, `dgh` the first two and the
    /// last.
    fn pre_size(&self) -> usize {
        4 * self.shape.hidden
    }

    fn tensors(&self) -> Vec<(&'static str, Vec<usize>)> {
        self.shape.tensors()
    }

    /// The cache of the step is laid out as two blocks: `n×3H` holding `[r, z, W_hn h + b_hn]`
    /// a row, then `n×H` holding `n_t`.
    fn forward_step(
        &self,
        p: &[f32],
        w_hh: Recurrent<'_>,
        pre: &[f32],
        s_prev: Option<&[f32]>,
        s: &mut [f32],
        cache: &mut [f32],
    ) {
        let h = self.shape.hidden;
        let n = pre.len() / (3 * h);
        let (_, bh) = self.shape.split(p);
        let (gates, candidate) = cache[..4 * h * n].split_at_mut(3 * h * n);
        // gh = W_h h_{t-1} + b_h for all three gates: GH = H_prev · W_hᵀ + b_h
        for row in gates.chunks_exact_mut(3 * h) {
            row.copy_from_slice(bh);
        }
        if let Some(s_prev) = s_prev {
            w_hh.add_product(gates, s_prev, n);
        }
        for ((row, cand), gi) in gates
            .chunks_exact_mut(3 * h)
            .zip(candidate.chunks_exact_mut(h))
            .zip(pre.chunks_exact(3 * h))
        {
            // r, z = σ(gi + gh) for the first two gates, with gi = W_i x + b_i
            add_into(&mut row[..2 * h], &gi[..2 * h]);
            sigmoid_in_place(&mut row[..2 * h]);
            // n = tanh(gi_n + r ⊙ gh_n); gh_n stays in the row for the backward step
            let (r, ghn) = (&row[..h], &row[2 * h..]);
            for ((c, &gin), (&ri, &g)) in cand.iter_mut().zip(&gi[2 * h..]).zip(r.iter().zip(ghn)) {
                *c = gin + ri * g;
            }
        }
        tanh_in_place(candidate);
        // h = (1 - z) ⊙ n + z ⊙ h_{t-1} = n + z ⊙ (h_{t-1} - n)
        for (i, (h_row, (row, cand))) in s
            .chunks_exact_mut(h)
            .zip(gates.chunks_exact(3 * h).zip(candidate.chunks_exact(h)))
            .enumerate()
        {
            let z = &row[h..2 * h];
            match s_prev {
                Some(prev) => gru_mix(h_row, z, &prev[i * h..][..h], cand),
                None => {
                    for ((hi, &zi), &ni) in h_row.iter_mut().zip(z).zip(cand) {
                        *hi = ni - zi * ni;
                    }
                }
            }
        }
    }

    fn backward_step(
        &self,
        _p: &[f32],
        w_hh: Recurrent<'_>,
        s_prev: Option<&[f32]>,
        _s: &[f32],
        cache: &[f32],
        ds: &mut [f32],
        dpre: &mut [f32],
    ) {
        let h = self.shape.hidden;
        let n = ds.len() / h;
        let (gates, candidate) = cache[..4 * h * n].split_at(3 * h * n);
        for (i, ((dh, d), (row, cand))) in ds
            .chunks_exact_mut(h)
            .zip(dpre.chunks_exact_mut(4 * h))
            .zip(gates.chunks_exact(3 * h).zip(candidate.chunks_exact(h)))
            .enumerate()
        {
            let prev = s_prev.map(|sp| &sp[i * h..][..h]);
            let (r, z, ghn) = (&row[..h], &row[h..2 * h], &row[2 * h..]);
            let (da_r, rest) = d.split_at_mut(h);
            let (da_z, rest) = rest.split_at_mut(h);
            let (da_n, r_da_n) = rest.split_at_mut(h);
            for j in 0..h {
                let (nj, zj, rj, g) = (cand[j], z[j], r[j], dh[j]);
                let hp = prev.map_or(0.0, |p| p[j]);
                let dn = g * (1.0 - zj);
                let dz = g * (hp - nj);
                da_n[j] = dn * (1.0 - nj * nj);
                da_z[j] = dz * zj * (1.0 - zj);
                da_r[j] = da_n[j] * ghn[j] * rj * (1.0 - rj);
                r_da_n[j] = rj * da_n[j];
                // the direct path: h_t = ... + z ⊙ h_{t-1}
                dh[j] = g * zj;
            }
        }
        // dh_{t-1} += W_hᵀ dgh; row by row DH += DGH · W_h, with DGH gathered contiguous
        if s_prev.is_some() {
            with_scratch(n * 3 * h, |dgh| {
                for (dst, d) in dgh.chunks_exact_mut(3 * h).zip(dpre.chunks_exact(4 * h)) {
                    dst[..2 * h].copy_from_slice(&d[..2 * h]);
                    dst[2 * h..].copy_from_slice(&d[3 * h..]);
                }
                w_hh.add_product_back(ds, dgh, n);
            });
        }
    }

    fn backward_weights(&self, _p: &[f32], g: &mut CellGradient<'_>, h_prev: &[f32], dpre: &[f32]) {
        let h = self.shape.hidden;
        let dbh = &mut g.tensors()[3 * h * h..][..3 * h];
        for d in dpre.chunks_exact(4 * h) {
            // dgh = [d[..2H], d[3H..]] goes to b_h
            add_into(&mut dbh[..2 * h], &d[..2 * h]);
            add_into(&mut dbh[2 * h..], &d[3 * h..]);
        }
        // dW_h += Σ_t dgh_t · h_{t-1}ᵀ = DGHᵀ·H_prev over the tokens after the first step,
        // with the tokens' dgh gathered into rows of 3H. dW_h comes first.
        let tokens = h_prev.len() / h;
        let tail = &dpre[dpre.len() - tokens * 4 * h..];
        with_scratch(tokens * 3 * h, |dgh| {
            for (row, d) in dgh.chunks_exact_mut(3 * h).zip(tail.chunks_exact(4 * h)) {
                row[..2 * h].copy_from_slice(&d[..2 * h]);
                row[2 * h..].copy_from_slice(&d[3 * h..]);
            }
            g.add_product(0, dgh, h_prev, 3 * h, h);
        });
    }

    fn clone_box(&self) -> Box<dyn Cell> {
        Box::new(*self)
    }
}
