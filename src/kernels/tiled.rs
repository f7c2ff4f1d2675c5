//! Matrix products arranged for the vector units, in portable Rust: the same sums as
//! [`super::reference`], but with the outputs that are being summed held in registers (a
//! *tile*) while the inputs stream past, instead of being loaded and stored once per term.
//!
//! A tile is `TILE` floats: eight AVX2 registers or four AVX-512 ones. `[f32; TILE]` locals
//! with fixed-length loops are what the compiler turns into those registers; the remainder of
//! a row that is not a whole tile falls back to the plain loops.
//!
//! Every kernel takes its multiply-add as a type ([`MulAdd`]): the builds for CPUs with FMA
//! use the fused instruction (one rounding, one instruction), the baseline build a multiply
//! and an add (Rust never fuses them on its own, and a software `fma` would be slow).

use super::reference::{axpy, dot, product_entry, sgd_update};

/// Output floats held in registers at a time.
pub(super) const TILE: usize = 64;

/// How `a · b + c` is computed.
pub trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// With the fused multiply-add instruction (for builds that have it).
pub struct Fused;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// A multiply, then an add.
pub struct Separate;

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// `out (n×m) += a (n×k) · b`, where `b` is `k×m`: for each row, a tile of `out` gathers
/// `Σ_p a[i][p] · b[p][tile]` over all `p` before it is stored.
#[inline(always)]
pub fn matmul_nn<M: MulAdd>(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    assert_eq!((out.len(), a.len(), b.len()), (n * m, n * k, k * m));
    let whole = m / TILE * TILE;
    for (out_row, a_row) in out.chunks_exact_mut(m).zip(a.chunks_exact(k)) {
        for j in (0..whole).step_by(TILE) {
            let acc: &mut [f32; TILE] = (&mut out_row[j..j + TILE]).try_into().unwrap();
            let mut tile = *acc;
            for (&a_ip, b_row) in a_row.iter().zip(b.chunks_exact(m)) {
                let b_tile: &[f32; TILE] = b_row[j..j + TILE].try_into().unwrap();
                for q in 0..TILE {
                    tile[q] = M::mul_add(a_ip, b_tile[q], tile[q]);
                }
            }
            *acc = tile;
        }
        if whole < m {
            for (&a_ip, b_row) in a_row.iter().zip(b.chunks_exact(m)) {
                axpy(&mut out_row[whole..], a_ip, &b_row[whole..]);
            }
        }
    }
}

/// `out (k×m) += aᵀ · b`, where `a` is `n×k` and `b` is `n×m`: a tile of row `p` of `out`
/// gathers `Σ_i a[i][p] · b[i][tile]` over all `n` rows before it is stored, so a long sum
/// (a weight gradient over every token of a batch) touches `out` once.
#[inline(always)]
pub fn matmul_tn<M: MulAdd>(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    assert_eq!((out.len(), a.len(), b.len()), (k * m, n * k, n * m));
    let whole = m / TILE * TILE;
    for (p, out_row) in out.chunks_exact_mut(m).enumerate() {
        for j in (0..whole).step_by(TILE) {
            let acc: &mut [f32; TILE] = (&mut out_row[j..j + TILE]).try_into().unwrap();
            let mut tile = *acc;
            for (a_row, b_row) in a.chunks_exact(k).zip(b.chunks_exact(m)).take(n) {
                let a_ip = a_row[p];
                let b_tile: &[f32; TILE] = b_row[j..j + TILE].try_into().unwrap();
                for q in 0..TILE {
                    tile[q] = M::mul_add(a_ip, b_tile[q], tile[q]);
                }
            }
            *acc = tile;
        }
        if whole < m {
            for (a_row, b_row) in a.chunks_exact(k).zip(b.chunks_exact(m)).take(n) {
                axpy(&mut out_row[whole..], a_row[p], &b_row[whole..]);
            }
        }
    }
}

/// One SGD step on a gradient given as a product, `w -= lr · clamp(aᵀ · b, ±clip)` (see
/// [`super::reference::sgd_product_step`]): a tile of the gradient is summed in registers, as
/// [`matmul_tn`] sums it, clipped and applied, and never stored. The sums run in the same
/// order as [`matmul_tn`]'s on a zeroed `out`, and the update is [`super::reference::sgd_step`]'s,
/// so the result is the same, bit for bit, as forming the gradient and then stepping.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn sgd_product_step<M: MulAdd>(
    w: &mut [f32],
    a: &[f32],
    b: &[f32],
    n: usize,
    k: usize,
    m: usize,
    lr: f32,
    clip: f32,
) {
    assert_eq!((w.len(), a.len(), b.len()), (k * m, n * k, n * m));
    let whole = m / TILE * TILE;
    for (p, w_row) in w.chunks_exact_mut(m).enumerate() {
        for j in (0..whole).step_by(TILE) {
            let mut tile = [0.0f32; TILE];
            for (a_row, b_row) in a.chunks_exact(k).zip(b.chunks_exact(m)) {
                let a_ip = a_row[p];
                let b_tile: &[f32; TILE] = b_row[j..j + TILE].try_into().unwrap();
                for q in 0..TILE {
                    tile[q] = M::mul_add(a_ip, b_tile[q], tile[q]);
                }
            }
            let w_tile: &mut [f32; TILE] = (&mut w_row[j..j + TILE]).try_into().unwrap();
            for q in 0..TILE {
                w_tile[q] = sgd_update(w_tile[q], tile[q], lr, clip);
            }
        }
        for (j, wj) in w_row.iter_mut().enumerate().skip(whole) {
            // as matmul_tn's remainder (axpy): a multiply, then an add
            *wj = sgd_update(*wj, product_entry(a, b, k, m, p, j), lr, clip);
        }
    }
}

/// `out (n×m) += a (n×k) · bᵀ`, where `b` is `m×k`: four dot products at a time, so that
/// four independent sums keep the multiply-add units busy (one dot product alone waits on
/// its own previous addition at every step) and each load of `a` serves four of them.
#[inline(always)]
pub fn matmul_nt<M: MulAdd>(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    assert_eq!((out.len(), a.len(), b.len()), (n * m, n * k, m * k));
    let whole = m / 4 * 4;
    for (out_row, a_row) in out.chunks_exact_mut(m).zip(a.chunks_exact(k)) {
        let (out_whole, out_rest) = out_row.split_at_mut(whole);
        for (o, rows) in out_whole.chunks_exact_mut(4).zip(b.chunks_exact(4 * k)) {
            let sums = dot4::<M>(a_row, rows, k);
            for q in 0..4 {
                o[q] += sums[q];
            }
        }
        for (o, b_row) in out_rest.iter_mut().zip(b[whole * k..].chunks_exact(k)) {
            *o += dot(a_row, b_row);
        }
    }
}

/// Four dot products of `x` (length `k`) with the four rows of `ys` (4×k).
#[inline(always)]
fn dot4<M: MulAdd>(x: &[f32], ys: &[f32], k: usize) -> [f32; 4] {
    let (y0, rest) = ys.split_at(k);
    let (y1, rest) = rest.split_at(k);
    let (y2, y3) = rest.split_at(k);
    let mut sums = [[0.0f32; 8]; 4];
    let chunks = x.chunks_exact(8).zip(y0.chunks_exact(8)).zip(
        y1.chunks_exact(8)
            .zip(y2.chunks_exact(8))
            .zip(y3.chunks_exact(8)),
    );
    for ((xc, c0), ((c1, c2), c3)) in chunks {
        for l in 0..8 {
            sums[0][l] = M::mul_add(xc[l], c0[l], sums[0][l]);
            sums[1][l] = M::mul_add(xc[l], c1[l], sums[1][l]);
            sums[2][l] = M::mul_add(xc[l], c2[l], sums[2][l]);
            sums[3][l] = M::mul_add(xc[l], c3[l], sums[3][l]);
        }
    }
    let tail = k / 8 * 8;
    let mut out = [0.0; 4];
    for (q, y) in [y0, y1, y2, y3].into_iter().enumerate() {
        let rest: f32 = x[tail..].iter().zip(&y[tail..]).map(|(a, b)| a * b).sum();
        out[q] = sums[q].iter().sum::<f32>() + rest;
    }
    out
}
