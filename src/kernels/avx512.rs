//! Hand-written AVX-512 products for a few rows by a weight matrix read where it lies: the
//! recurrent step of a batch.
//!
//! A general product (the `gemm` crate) first copies both operands into blocks laid out for
//! its inner loop. For a step of 16 rows, that copy of the weights, made again at every step,
//! costs about what the multiply-adds do. Here the weights are read in place:
//!
//! - [`matmul_nt`], `(n×H)·W_hhᵀ` with `W_hh` as it lies, for `n` up to [`FEW_ROWS`] and
//!   `W_hh` of at least [`LARGE`] floats: blocks of 4 rows of `a` by 4 rows of `b`, 16 dot
//!   products in 16 registers, each summed across its lanes at the end, so `b` is read `n/4`
//!   times (`cargo bench --bench kernels`: 1.6x `gemm` at 16×256×1024, 2.4x at 16×1024×256).
//!   A step of a text being generated uses it.
//! - [`matmul_nn`], `(n×K)·B` with `B` row by row (`W_hhᵀ`, laid out once for a pass of many
//!   steps, and `W_hh` in the backward step): 8 rows by 48 columns in 24 registers, no sums
//!   across lanes. It beats `gemm` for few rows or small matrices ([`NN_SMALL`]).
//!
//! [`super::reference`] has the definitions; the tests compare with them.

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

/// The most floats of `b` for which [`matmul_nn`] beats the `gemm` crate however many rows
/// (`cargo bench --bench kernels`: 1.6x at 16×100×100, even at 64×128×128, 0.7x at
/// 16×256×1024, where `gemm`'s copy of `b` into its blocks pays for itself); below
/// `GEMM_FROM` rows it wins at every size.
pub const NN_SMALL: usize = 128 * 128;

/// `out (n×m) += a (n×k) · b`, where `b` is `k×m`: the recurrent step's product when the
/// weights lie so that each step reads them row by row (`W_hhᵀ` forward, `W_hh` backward).
///
/// Blocks of up to 8 rows of `a` by 48 columns of `b` (3 registers) keep 24 sums in
/// registers; for every `p`, the block loads its 3 vectors of row `p` of `b` once and adds
/// `a[i][p]` times them to each of its rows. So `b` is read where it lies, `n/8` times, with
/// no copy (the `gemm` crate copies `b` at every call, which for a step of 16 rows costs about
/// what the multiply-adds do). A block of rows sums over `p` in order; a row alone sums in
/// 4 interleaved parts (`nn_row`).
///
/// # Safety
/// The CPU must have AVX-512F.
///
/// # Panics
/// If the slices do not have the sizes given.
#[target_feature(enable = "avx512f,fma")]
pub fn matmul_nn(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    assert_eq!((out.len(), a.len(), b.len()), (n * m, n * k, k * m));
    let vectors = m.div_ceil(16);
    let mut j = 0;
    while j < vectors {
        let v = (vectors - j).min(3);
        let mut i = 0;
        while i < n {
            let r = match n - i {
                8.. => 8,
                4..=7 => 4,
                2..=3 => 2,
                _ => 1,
            };
            match (r, v) {
                (8, 3) => nn_block::<8, 3>(out, a, b, i, j, k, m),
                (8, 2) => nn_block::<8, 2>(out, a, b, i, j, k, m),
                (8, _) => nn_block::<8, 1>(out, a, b, i, j, k, m),
                (4, 3) => nn_block::<4, 3>(out, a, b, i, j, k, m),
                (4, 2) => nn_block::<4, 2>(out, a, b, i, j, k, m),
                (4, _) => nn_block::<4, 1>(out, a, b, i, j, k, m),
                (2, 3) => nn_block::<2, 3>(out, a, b, i, j, k, m),
                (2, 2) => nn_block::<2, 2>(out, a, b, i, j, k, m),
                (2, _) => nn_block::<2, 1>(out, a, b, i, j, k, m),
                (_, 3) => nn_row::<3>(out, a, b, i, j, k, m),
                (_, 2) => nn_row::<2>(out, a, b, i, j, k, m),
                _ => nn_row::<1>(out, a, b, i, j, k, m),
            }
            i += r;
        }
        j += v;
    }
}

/// The masks of V registers of a row of `m` floats from column `col`: all 16 lanes, or those
/// before the row's end.
#[inline]
fn column_masks<const V: usize>(col: usize, m: usize) -> [__mmask16; V] {
    let mut masks = [0xffff; V];
    for (c, mask) in masks.iter_mut().enumerate() {
        *mask = tail_mask(m - (col + 16 * c).min(m));
    }
    masks
}

/// Adds row `i` of `a` times `b[.., 16j..16(j+V)]` to `out`: [`nn_block`] for one row, whose
/// V sums would each wait for the last multiply-add at every `p`, so 4 partial sums a
/// register take turns (`p` mod 4) and are added at the end.
#[inline]
#[target_feature(enable = "avx512f,fma")]
#[allow(clippy::too_many_arguments)]
fn nn_row<const V: usize>(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    i: usize,
    j: usize,
    k: usize,
    m: usize,
) {
    const CHAINS: usize = 4;
    let col = 16 * j;
    let masks = column_masks::<V>(col, m);
    let row = &a[i * k..(i + 1) * k];
    let mut acc = [[_mm512_setzero_ps(); V]; CHAINS];
    let mut p = 0;
    while p + CHAINS <= k {
        for (q, acc) in acc.iter_mut().enumerate() {
            let x = _mm512_set1_ps(row[p + q]);
            for (c, acc) in acc.iter_mut().enumerate() {
                // SAFETY: the mask keeps every lane inside row p + q of `b`.
                let y = unsafe {
                    _mm512_maskz_loadu_ps(masks[c], b.as_ptr().add((p + q) * m + col + 16 * c))
                };
                *acc = _mm512_fmadd_ps(x, y, *acc);
            }
        }
        p += CHAINS;
    }
    for (q, acc) in acc.iter_mut().enumerate().take(k - p) {
        let x = _mm512_set1_ps(row[p + q]);
        for (c, acc) in acc.iter_mut().enumerate() {
            // SAFETY: as above.
            let y = unsafe {
                _mm512_maskz_loadu_ps(masks[c], b.as_ptr().add((p + q) * m + col + 16 * c))
            };
            *acc = _mm512_fmadd_ps(x, y, *acc);
        }
    }
    let out_row = &mut out[i * m..(i + 1) * m];
    for c in 0..V {
        let sum = _mm512_add_ps(
            _mm512_add_ps(acc[0][c], acc[1][c]),
            _mm512_add_ps(acc[2][c], acc[3][c]),
        );
        // SAFETY: the mask keeps every lane inside the row of `out`.
        unsafe {
            let at = out_row.as_mut_ptr().add(col + 16 * c);
            let old = _mm512_maskz_loadu_ps(masks[c], at);
            _mm512_mask_storeu_ps(at, masks[c], _mm512_add_ps(old, sum));
        }
    }
}

/// Adds `a[i..i+R] · b[.., 16j..16(j+V)]` to `out`: R×V registers of sums, the last column
/// register masked where the row of `b` ends.
#[inline]
#[target_feature(enable = "avx512f,fma")]
#[allow(clippy::too_many_arguments)]
fn nn_block<const R: usize, const V: usize>(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    i: usize,
    j: usize,
    k: usize,
    m: usize,
) {
    let col = 16 * j;
    let masks = column_masks::<V>(col, m);
    let out_rows = &mut out[i * m..(i + R) * m];
    let a_rows = &a[i * k..(i + R) * k];
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    for (r, acc) in acc.iter_mut().enumerate() {
        for (c, acc) in acc.iter_mut().enumerate() {
            // SAFETY: the mask keeps every lane inside row r of `out`, m floats from r·m.
            *acc = unsafe {
                _mm512_maskz_loadu_ps(masks[c], out_rows.as_ptr().add(r * m + col + 16 * c))
            };
        }
    }
    for p in 0..k {
        let mut bs = [_mm512_setzero_ps(); V];
        for (c, v) in bs.iter_mut().enumerate() {
            // SAFETY: the mask keeps every lane inside row p of `b`, m floats from p·m.
            *v = unsafe { _mm512_maskz_loadu_ps(masks[c], b.as_ptr().add(p * m + col + 16 * c)) };
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: r < R and p < k, inside the R rows of k floats.
            let x = _mm512_set1_ps(unsafe { *a_rows.as_ptr().add(r * k + p) });
            for (acc, &y) in acc.iter_mut().zip(&bs) {
                *acc = _mm512_fmadd_ps(x, y, *acc);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (c, &v) in acc.iter().enumerate() {
            // SAFETY: as for the loads.
            unsafe {
                _mm512_mask_storeu_ps(out_rows.as_mut_ptr().add(r * m + col + 16 * c), masks[c], v)
            };
        }
    }
}

/// `eˣ` of 16 lanes: [`super::reference::exp`]'s steps, one instruction each, so the same
/// results bit for bit (the test checks it).
#[inline]
#[target_feature(enable = "avx512f,fma")]
fn exp16(x: __m512) -> __m512 {
    use super::reference::exp_constants::*;
    let low = _mm512_set1_ps(LOW);
    // max(low, x) and min(high, ·) keep a NaN, as `clamp` does
    let clamped = _mm512_min_ps(_mm512_set1_ps(HIGH), _mm512_max_ps(low, x));
    let round = _mm512_set1_ps(ROUND);
    let shifted = _mm512_fmadd_ps(clamped, _mm512_set1_ps(std::f32::consts::LOG2_E), round);
    let n = _mm512_sub_ps(shifted, round);
    let r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_HI), clamped);
    let r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_LO), r);
    let mut p = _mm512_set1_ps(P[0]);
    for &c in &P[1..] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    let e_r = _mm512_add_ps(
        _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r),
        _mm512_set1_ps(1.0),
    );
    let exponent = _mm512_sub_epi32(
        _mm512_castps_si512(shifted),
        _mm512_set1_epi32(ROUND.to_bits() as i32),
    );
    let two_n = _mm512_slli_epi32::<23>(_mm512_add_epi32(exponent, _mm512_set1_epi32(127)));
    let value = _mm512_mul_ps(e_r, _mm512_castsi512_ps(two_n));
    let under = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, low);
    _mm512_mask_blend_ps(under, value, _mm512_setzero_ps())
}

/// The largest of `xs`, or `-∞` for none: 16 lanes at a time, the last ones masked.
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f,fma")]
pub fn max(xs: &[f32]) -> f32 {
    let lowest = _mm512_set1_ps(f32::NEG_INFINITY);
    let mut acc = lowest;
    for i in (0..xs.len()).step_by(16) {
        // SAFETY: the mask keeps every lane inside `xs`.
        let v =
            unsafe { _mm512_mask_loadu_ps(lowest, tail_mask(xs.len() - i), xs.as_ptr().add(i)) };
        acc = _mm512_max_ps(acc, v);
    }
    _mm512_reduce_max_ps(acc)
}

/// Softmax of one row of logits in place, `y = exp(y - m) / Σ exp(y - m)` with `m = max y`;
/// returns `(ln Σ exp(y - m), m)`. [`super::reference::softmax`] in three passes of 16 lanes,
/// the last few masked.
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f,fma")]
pub fn softmax(y: &mut [f32]) -> (f32, f32) {
    let m = max(y);
    let (len, ptr) = (y.len(), y.as_mut_ptr());
    let shift = _mm512_set1_ps(m);
    let mut sum = _mm512_setzero_ps();
    for i in (0..len).step_by(16) {
        let mask = tail_mask(len - i);
        // SAFETY: the mask keeps every lane inside `y`.
        unsafe {
            let e = exp16(_mm512_sub_ps(
                _mm512_maskz_loadu_ps(mask, ptr.add(i)),
                shift,
            ));
            _mm512_mask_storeu_ps(ptr.add(i), mask, e);
            sum = _mm512_mask_add_ps(sum, mask, sum, e);
        }
    }
    let total = _mm512_reduce_add_ps(sum);
    let scale = _mm512_set1_ps(1.0 / total);
    for i in (0..len).step_by(16) {
        let mask = tail_mask(len - i);
        // SAFETY: as above.
        unsafe {
            let v = _mm512_maskz_loadu_ps(mask, ptr.add(i));
            _mm512_mask_storeu_ps(ptr.add(i), mask, _mm512_mul_ps(v, scale));
        }
    }
    (total.ln(), m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{Isa, isa, reference};
    use crate::rng::Rng;

    fn random(len: usize, rng: &mut Rng) -> Vec<f32> {
        (0..len).map(|_| rng.symmetric(1.0) as f32).collect()
    }

    type Product<'a> = &'a dyn Fn(&mut [f32], &[f32], &[f32], usize, usize, usize);

    /// `kernel` against `definition` for every `n` of `rows` and `(k, m)` of `shapes`.
    fn matches(name: &str, kernel: Product, definition: Product, rows: &[usize], seed: u64) {
        if isa() != Isa::Avx512 {
            return; // nothing to test on this CPU
        }
        let mut rng = Rng::new(seed);
        let shapes = [
            (1, 1),
            (15, 7),
            (16, 33),
            (64, 256),
            (33, 50),
            (100, 100),
            (7, 49),
        ];
        for &n in rows {
            for (k, m) in shapes {
                // `b` is m×k for nt, k×m for nn: as many floats either way
                let (a, b) = (random(n * k, &mut rng), random(m * k, &mut rng));
                let start = random(n * m, &mut rng);
                let (mut ours, mut want) = (start.clone(), start);
                kernel(&mut ours, &a, &b, n, k, m);
                definition(&mut want, &a, &b, n, k, m);
                for (x, y) in ours.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-4 * (1.0 + y.abs()), "{name} {n}x{k}x{m}");
                }
            }
        }
    }

    #[test]
    fn the_few_row_products_match_their_definitions_at_every_size() {
        // SAFETY (both): `matches` runs them only where the CPU has AVX-512.
        let nt =
            |o: &mut [f32], a: &[f32], b: &[f32], n, k, m| unsafe { matmul_nt(o, a, b, n, k, m) };
        let nn =
            |o: &mut [f32], a: &[f32], b: &[f32], n, k, m| unsafe { matmul_nn(o, a, b, n, k, m) };
        matches(
            "nt",
            &nt,
            &reference::matmul_nt,
            &[1, 3, 4, 5, 8, 9, 16, 17],
            5,
        );
        matches(
            "nn",
            &nn,
            &reference::matmul_nn,
            &[1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 25],
            6,
        );
    }

    #[test]
    fn exp_and_softmax_match_their_definitions() {
        if isa() != Isa::Avx512 {
            return; // nothing to test on this CPU
        }
        let xs: Vec<f32> = (-2000..2000)
            .map(|i| i as f32 * 0.0471)
            .chain([f32::NEG_INFINITY, -87.3, -87.31, 88.3, 100.0, 0.0])
            .collect();
        for chunk in xs.chunks(16) {
            let mut lanes = [0.0f32; 16];
            lanes[..chunk.len()].copy_from_slice(chunk);
            let mut got = [0.0f32; 16];
            // SAFETY: the CPU has AVX-512; both arrays hold 16 floats.
            unsafe {
                let e = exp16(_mm512_loadu_ps(lanes.as_ptr()));
                _mm512_storeu_ps(got.as_mut_ptr(), e);
            }
            for (x, e) in lanes.iter().zip(got) {
                assert_eq!(e.to_bits(), reference::exp(*x).to_bits(), "exp({x})");
            }
        }
        let mut rng = Rng::new(9);
        for len in [1, 2, 15, 16, 17, 85, 97] {
            let y: Vec<f32> = random(len, &mut rng).iter().map(|v| 10.0 * v).collect();
            let (mut fast, mut want) = (y.clone(), y.clone());
            // SAFETY: the CPU has AVX-512.
            let (ln_fast, m_fast) = unsafe { softmax(&mut fast) };
            let (ln_want, m_want) = reference::softmax(&mut want);
            assert_eq!(m_fast, m_want);
            // SAFETY: as above.
            assert_eq!(unsafe { max(&y) }, reference::max(&y));
            assert!((ln_fast - ln_want).abs() < 1e-6, "{len}");
            for (a, b) in fast.iter().zip(&want) {
                assert!((a - b).abs() < 1e-6, "{len}: {a} vs {b}");
            }
        }
    }
}
