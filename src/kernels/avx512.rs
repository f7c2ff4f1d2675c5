//! A hand-written AVX-512 product of a few rows by a large transposed matrix: the recurrent
//! step of a batch, `(n×H)·W_hhᵀ`, for `n` up to [`FEW_ROWS`] and `W_hh` of at least
//! [`LARGE`] floats.
//!
//! A general product (the `gemm` crate) first copies both operands into blocks laid out for
//! its inner loop. For a step of 16 rows of a 256-unit LSTM, that copy of the transposed 1 MB
//! weight matrix, made again at every step, costs more than the multiply-adds. Here the weights
//! are read where they lie: blocks of 4 rows of `a` by 4 rows of `b`, 16 dot products in 16
//! registers, each summed across its lanes at the end, so `b` is read `n/4` times
//! (`cargo bench --bench kernels`: 2.0x `gemm` at 16×256×1024, 2.8x at 16×1024×256; below
//! [`LARGE`] `gemm` wins). The backward step's `(n×G·H)·W_hh` reads `W_hh` untransposed, which
//! `gemm` copies cheaply, and stays with it.
//!
//! [`super::reference::matmul_nt`] is the definition; the test compares with it.

use std::arch::x86_64::*;

/// The most rows this kernel takes; more rows amortise the `gemm` crate's copies.
pub const FEW_ROWS: usize = 64;

/// The fewest floats of `b` for which this kernel beats the `gemm` crate.
pub const LARGE: usize = 1 << 16;

/// The lanes of `k` floats from `x`, zero past its end, as a mask: all 16, or the tail.
#[inline]
fn tail_mask(len: usize) -> __mmask16 {
    if len >= 16 {
        0xffff
    } else {
        ((1u32 << len) - 1) as __mmask16
    }
}

/// `out (n×m) += a (n×k) · bᵀ`, where `b` is `m×k`.
///
/// # Safety
/// The CPU must have AVX-512F.
///
/// # Panics
/// If the slices do not have the sizes given.
#[target_feature(enable = "avx512f,fma")]
pub fn matmul_nt(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    assert_eq!((out.len(), a.len(), b.len()), (n * m, n * k, m * k));
    let mut i = 0;
    while i < n {
        let rows = (n - i).min(4);
        let mut j = 0;
        while j < m {
            let cols = (m - j).min(4);
            match (rows, cols) {
                (4, 4) => nt_block::<4, 4>(out, a, b, i, j, k, m),
                (r, 4) => {
                    for di in 0..r {
                        nt_block::<1, 4>(out, a, b, i + di, j, k, m);
                    }
                }
                (r, c) => {
                    for di in 0..r {
                        for dj in 0..c {
                            nt_block::<1, 1>(out, a, b, i + di, j + dj, k, m);
                        }
                    }
                }
            }
            j += cols;
        }
        i += rows;
    }
}

/// Adds `a[i..i+R] · b[j..j+C]ᵀ` to `out`: R·C dot products of length `k`, each in its own
/// register, summed across lanes at the end.
#[inline]
#[target_feature(enable = "avx512f,fma")]
fn nt_block<const R: usize, const C: usize>(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    i: usize,
    j: usize,
    k: usize,
    m: usize,
) {
    // (plain loops, not closures: a closure does not inherit the target features, and its
    // intrinsics would become calls)
    let mut acc = [[_mm512_setzero_ps(); C]; R];
    let a_rows = &a[i * k..(i + R) * k];
    let b_rows = &b[j * k..(j + C) * k];
    let mut p = 0;
    while p < k {
        let mask = tail_mask(k - p);
        let mut bs = [_mm512_setzero_ps(); C];
        for (c, v) in bs.iter_mut().enumerate() {
            // SAFETY: the mask keeps every lane inside row c, which holds k floats from p.
            *v = unsafe { _mm512_maskz_loadu_ps(mask, b_rows.as_ptr().add(c * k + p)) };
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: as above, for row r of `a`.
            let x = unsafe { _mm512_maskz_loadu_ps(mask, a_rows.as_ptr().add(r * k + p)) };
            for (acc, &y) in acc.iter_mut().zip(&bs) {
                *acc = _mm512_fmadd_ps(x, y, *acc);
            }
        }
        p += 16;
    }
    for (r, row) in acc.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[(i + r) * m + j + c] += _mm512_reduce_add_ps(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{Isa, isa, reference};
    use crate::rng::Rng;

    fn random(len: usize, rng: &mut Rng) -> Vec<f32> {
        (0..len).map(|_| rng.symmetric(1.0) as f32).collect()
    }

    #[test]
    fn the_few_row_product_matches_its_definition_at_every_size() {
        if isa() != Isa::Avx512 {
            return; // nothing to test on this CPU
        }
        let mut rng = Rng::new(5);
        for n in [1, 3, 4, 5, 8, 9, 16, 17] {
            for (k, m) in [(1, 1), (15, 7), (16, 33), (64, 256), (33, 50), (100, 31)] {
                let (a_nt, b_nt) = (random(n * k, &mut rng), random(m * k, &mut rng));
                let start = random(n * m, &mut rng);
                let (mut ours, mut want) = (start.clone(), start);
                // SAFETY: the CPU has AVX-512.
                unsafe { matmul_nt(&mut ours, &a_nt, &b_nt, n, k, m) };
                reference::matmul_nt(&mut want, &a_nt, &b_nt, n, k, m);
                for (x, y) in ours.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-4 * (1.0 + y.abs()), "nt {n}x{k}x{m}");
                }
            }
        }
    }
}
