//! Matrix products arranged for the vector units, in portable Rust: the same sums as
//! [`super::reference`], in the same order for every output, but with the outputs that are
//! being summed held in registers (a *tile*) while the inputs stream past, instead of being
//! loaded and stored once per term.
//!
//! A tile is [`TILE`] floats: four AVX2 registers or two AVX-512 ones. `[f32; TILE]` locals
//! with fixed-length loops are what the compiler turns into those registers; the remainder of
//! a row that is not a whole tile falls back to the plain loops.

use super::reference::{axpy, dot};

/// Output floats held in registers at a time.
const TILE: usize = 32;

/// `out (n×m) += a (n×k) · b`, where `b` is `k×m`: for each row, a tile of `out` gathers
/// `Σ_p a[i][p] · b[p][tile]` over all `p` before it is stored.
#[inline(always)]
pub fn matmul_nn(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    debug_assert_eq!((out.len(), a.len(), b.len()), (n * m, n * k, k * m));
    let whole = m / TILE * TILE;
    for (out_row, a_row) in out.chunks_exact_mut(m).zip(a.chunks_exact(k)) {
        for j in (0..whole).step_by(TILE) {
            let mut acc = [0.0f32; TILE];
            acc.copy_from_slice(&out_row[j..j + TILE]);
            for (p, &a_ip) in a_row.iter().enumerate() {
                let b_tile: &[f32; TILE] = b[p * m + j..][..TILE].try_into().unwrap();
                for q in 0..TILE {
                    acc[q] += a_ip * b_tile[q];
                }
            }
            out_row[j..j + TILE].copy_from_slice(&acc);
        }
        if whole < m {
            for (p, &a_ip) in a_row.iter().enumerate() {
                axpy(&mut out_row[whole..], a_ip, &b[p * m + whole..(p + 1) * m]);
            }
        }
    }
}

/// `out (k×m) += aᵀ · b`, where `a` is `n×k` and `b` is `n×m`: a tile of row `p` of `out`
/// gathers `Σ_i a[i][p] · b[i][tile]` over all `n` rows before it is stored, so a long sum
/// (a weight gradient over every token of a batch) touches `out` once.
#[inline(always)]
pub fn matmul_tn(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    debug_assert_eq!((out.len(), a.len(), b.len()), (k * m, n * k, n * m));
    let whole = m / TILE * TILE;
    for (p, out_row) in out.chunks_exact_mut(m).enumerate() {
        for j in (0..whole).step_by(TILE) {
            let mut acc = [0.0f32; TILE];
            acc.copy_from_slice(&out_row[j..j + TILE]);
            for i in 0..n {
                let a_ip = a[i * k + p];
                let b_tile: &[f32; TILE] = b[i * m + j..][..TILE].try_into().unwrap();
                for q in 0..TILE {
                    acc[q] += a_ip * b_tile[q];
                }
            }
            out_row[j..j + TILE].copy_from_slice(&acc);
        }
        if whole < m {
            for i in 0..n {
                axpy(
                    &mut out_row[whole..],
                    a[i * k + p],
                    &b[i * m + whole..(i + 1) * m],
                );
            }
        }
    }
}

/// `out (n×m) += a (n×k) · bᵀ`, where `b` is `m×k`: four dot products at a time, so that
/// four independent sums keep the multiply-add units busy (one dot product alone waits on
/// its own previous addition at every step) and each load of `a` serves four of them.
#[inline(always)]
pub fn matmul_nt(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    debug_assert_eq!((out.len(), a.len(), b.len()), (n * m, n * k, m * k));
    let whole = m / 4 * 4;
    for (out_row, a_row) in out.chunks_exact_mut(m).zip(a.chunks_exact(k)) {
        for j in (0..whole).step_by(4) {
            let sums = dot4(a_row, [0, 1, 2, 3].map(|q| &b[(j + q) * k..][..k]));
            for q in 0..4 {
                out_row[j + q] += sums[q];
            }
        }
        for j in whole..m {
            out_row[j] += dot(a_row, &b[j * k..][..k]);
        }
    }
}

/// Four dot products of `x` with the rows `ys`, each summed exactly as [`dot`] sums it.
#[inline(always)]
fn dot4(x: &[f32], ys: [&[f32]; 4]) -> [f32; 4] {
    let len = x.len() / 8 * 8;
    let mut sums = [[0.0f32; 8]; 4];
    for c in (0..len).step_by(8) {
        let xc: &[f32; 8] = x[c..c + 8].try_into().unwrap();
        for (s, y) in sums.iter_mut().zip(ys) {
            let yc: &[f32; 8] = y[c..c + 8].try_into().unwrap();
            for l in 0..8 {
                s[l] += xc[l] * yc[l];
            }
        }
    }
    let mut out = [0.0; 4];
    for q in 0..4 {
        let tail: f32 = x[len..].iter().zip(&ys[q][len..]).map(|(a, b)| a * b).sum();
        out[q] = sums[q].iter().sum::<f32>() + tail;
    }
    out
}
