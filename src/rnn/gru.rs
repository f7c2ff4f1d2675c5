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
//! | `W_i`     | 3H×V  | `rnn.weight_ih_l0`  | `W_ir; W_iz; W_in`, stored column by column |
//! | `W_h`     | 3H×H  | `rnn.weight_hh_l0`  | `W_hr; W_hz; W_hn`                      |
//! | `b_i`     | 3H    | `rnn.bias_ih_l0`    | `b_ir; b_iz; b_in`                      |
//! | `b_h`     | 3H    | `rnn.bias_hh_l0`    | `b_hr; b_hz; b_hn`                      |
//!
//! Both biases are kept: `b_hn` sits inside `r ⊙ (…)`, so it cannot be folded into `b_in`.
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
//! and over a batch, `dW_i[:, x_t] += dgi`, `db_i += dgi`, `dW_h += dgh · h_{t-1}ᵀ`,
//! `db_h += dgh`.

use super::cell::{Cell, CellKind};
use super::gates::{Stacked, Tensors, with_scratch};
use super::grads::CellGradient;
use super::params::Layout;
use crate::kernels::{add_into, matmul_nn, matmul_nt, sigmoid_in_place, tanh_in_place};
use crate::rng::Rng;

/// A GRU cell for `vocab` tokens and `hidden` units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gru {
    shape: Stacked,
}

impl Gru {
    /// A cell for `vocab` input tokens and `hidden` units.
    pub fn new(vocab: usize, hidden: usize) -> Self {
        Gru {
            shape: Stacked {
                vocab,
                hidden,
                gates: 3,
            },
        }
    }
}

impl Cell for Gru {
    fn kind(&self) -> CellKind {
        CellKind::Gru
    }

    fn vocab(&self) -> usize {
        self.shape.vocab
    }

    fn hidden(&self) -> usize {
        self.shape.hidden
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

    fn layout(&self) -> Layout {
        self.shape.layout()
    }

    /// Everything but the input weights uniform in `[-1/√H, 1/√H]`, as PyTorch initialises
    /// `nn.GRU`; the input weights in `[-input, input]`.
    fn init(&self, p: &mut [f32], input: f32, rng: &mut Rng) {
        self.shape.init(p, input, rng);
    }

    /// The cache of the step is laid out as two blocks: `n×3H` holding `[r, z, W_hn h + b_hn]`
    /// a row, then `n×H` holding `n_t`.
    fn forward_step(
        &self,
        p: &[f32],
        x: &[u32],
        s_prev: Option<&[f32]>,
        s: &mut [f32],
        cache: &mut [f32],
    ) {
        let (h, n) = (self.shape.hidden, x.len());
        let Tensors { wi, wh, bi, bh } = self.shape.tensors(p);
        let (gates, candidate) = cache[..4 * h * n].split_at_mut(3 * h * n);
        // gh = W_h h_{t-1} + b_h for all three gates: GH = H_prev · W_hᵀ + b_h
        for row in gates.chunks_exact_mut(3 * h) {
            row.copy_from_slice(bh);
        }
        if let Some(s_prev) = s_prev {
            matmul_nt(gates, s_prev, wh, n, h, 3 * h);
        }
        for ((row, cand), &token) in gates
            .chunks_exact_mut(3 * h)
            .zip(candidate.chunks_exact_mut(h))
            .zip(x)
        {
            // gi = column x of W_i + b_i
            let column = &wi[token as usize * 3 * h..][..3 * h];
            // r, z = σ(gi + gh) for the first two gates
            for ((g, &w), &b) in row[..2 * h].iter_mut().zip(column).zip(bi) {
                *g += w + b;
            }
            sigmoid_in_place(&mut row[..2 * h]);
            // n = tanh(gi_n + r ⊙ gh_n); gh_n stays in the row for the backward step
            let (r, ghn) = (&row[..h], &row[2 * h..]);
            for (((c, &w), &b), (&ri, &g)) in cand
                .iter_mut()
                .zip(&column[2 * h..])
                .zip(&bi[2 * h..])
                .zip(r.iter().zip(ghn))
            {
                *c = w + b + ri * g;
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
                Some(prev) => {
                    let prev = &prev[i * h..][..h];
                    for (((hi, &zi), &ni), &pi) in h_row.iter_mut().zip(z).zip(cand).zip(prev) {
                        *hi = zi.mul_add(pi - ni, ni);
                    }
                }
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
        p: &[f32],
        _x: &[u32],
        s_prev: Option<&[f32]>,
        _s: &[f32],
        cache: &[f32],
        ds: &mut [f32],
        dpre: &mut [f32],
    ) {
        let h = self.shape.hidden;
        let n = ds.len() / h;
        let wh = self.shape.tensors(p).wh;
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
                matmul_nn(ds, dgh, wh, n, 3 * h, h);
            });
        }
    }

    fn backward_weights(
        &self,
        _p: &[f32],
        g: &mut CellGradient<'_>,
        x: &[u32],
        h_prev: &[f32],
        dpre: &[f32],
    ) {
        let h = self.shape.hidden;
        let (dbi, dbh) = g.rest[3 * h * h..][..6 * h].split_at_mut(3 * h);
        for (d, &column) in dpre.chunks_exact(4 * h).zip(x) {
            // dgi = d[..3H] goes to b_i and to column x of W_i
            add_into(dbi, &d[..3 * h]);
            add_into(
                &mut g.columns[column as usize * 3 * h..][..3 * h],
                &d[..3 * h],
            );
            // dgh = [d[..2H], d[3H..]] goes to b_h
            add_into(&mut dbh[..2 * h], &d[..2 * h]);
            add_into(&mut dbh[2 * h..], &d[3 * h..]);
        }
        // dW_h += Σ_t dgh_t · h_{t-1}ᵀ = DGHᵀ·H_prev over the tokens after the first step,
        // with the tokens' dgh gathered into rows of 3H. dW_h comes first in `g.rest`.
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
