//! Hand-written AVX2 kernels, for three loops that portable code does not run well.
//!
//! - [`matmul_nt`]: few rows times a transposed matrix, `out += a · bᵀ`, whose every output is
//!   a dot product. The compiler vectorises a dot product across its terms only with one
//!   accumulator, which waits on itself at every step; here eight dot products run at once,
//!   each in its own register, and their eight totals are formed together at the end by a tree
//!   of horizontal additions. [`super::reference::matmul_nt`] is the definition.
//! - [`sgd_product_step`]: the SGD update from a gradient kept as two factors, with blocks of
//!   four rows so that each load of the second factor serves four of them.
//!   [`super::reference::sgd_product_step`] is the definition.
//! - [`transpose`]: blocks of 8×8 turned in registers, where a plain loop moves one float at
//!   a time. [`super::reference::transpose`] is the definition.
//! - [`matmul_panels`]: `out += a · b` with `b` laid out in panels of 16 columns
//!   ([`super::reference::pack_panels`]), six rows at a time: twelve sums of eight in
//!   registers, and at each step of the sum two loads of the panel serve all six rows. A
//!   recurrent step's product of a few dozen rows with the same large weights runs so without
//!   the copy of the weights that a general product makes at every call.
//!   [`super::reference::matmul_panels`] is the definition.
//!
//! Tests compare each with its definition and with the portable version.

use std::arch::x86_64::*;

use super::reference::{self, PANEL, panels_len};

/// The sums of each of eight registers, as the eight lanes of one.
///
/// # Safety
/// The CPU must have AVX.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn sum_each(v: [__m256; 8]) -> __m256 {
    // hadd(x, y) = [x0+x1, x2+x3, y0+y1, y2+y3 | x4+x5, x6+x7, y4+y5, y6+y7]
    let t0 = _mm256_hadd_ps(v[0], v[1]);
    let t1 = _mm256_hadd_ps(v[2], v[3]);
    let t2 = _mm256_hadd_ps(v[4], v[5]);
    let t3 = _mm256_hadd_ps(v[6], v[7]);
    // [v0 lanes 0-3, v1 0-3, v2 0-3, v3 0-3 | v0 lanes 4-7, ..., v3 4-7], then v4..v7
    let u0 = _mm256_hadd_ps(t0, t1);
    let u1 = _mm256_hadd_ps(t2, t3);
    let low = _mm256_permute2f128_ps(u0, u1, 0x20);
    let high = _mm256_permute2f128_ps(u0, u1, 0x31);
    _mm256_add_ps(low, high)
}

/// `out (n×m) += a (n×k) · bᵀ`, where `b` is `m×k`.
///
/// The hidden sizes 64 and 128 get a copy of the loop compiled for that `k`: with the length of
/// a row known, the whole dot product unrolls, and a one-row product (a step of one sequence)
/// runs about 1.6 times as fast (`cargo bench --bench kernels`).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
///
/// # Panics
/// If the slices do not have the sizes given.
#[target_feature(enable = "avx2,fma")]
pub fn matmul_nt(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    assert_eq!((out.len(), a.len(), b.len()), (n * m, n * k, m * k));
    match k {
        64 => nt_rows::<64>(out, a, b, k, m),
        128 => nt_rows::<128>(out, a, b, k, m),
        _ => nt_rows::<0>(out, a, b, k, m),
    }
}

/// The body of [`matmul_nt`], for rows of `K` floats, or of `k` when `K` is 0.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn nt_rows<const K: usize>(out: &mut [f32], a: &[f32], b: &[f32], k: usize, m: usize) {
    let k = if K > 0 { K } else { k };
    let whole = k / 8 * 8;
    for (out_row, a_row) in out.chunks_exact_mut(m).zip(a.chunks_exact(k)) {
        let mut j = 0;
        while j + 8 <= m {
            let rows = &b[j * k..(j + 8) * k];
            let starts: [*const f32; 8] = std::array::from_fn(|r| rows[r * k..].as_ptr());
            // One pointer a row, each in its own register. Left to itself, the compiler finds
            // that row r starts k floats after row r - 1 and, when k is not a constant,
            // recomputes the eight addresses from one another at every step: a chain of
            // dependent additions that takes longer than the eight multiply-adds it feeds.
            // `black_box` hides the relation.
            let starts = if K > 0 {
                starts
            } else {
                std::hint::black_box(starts)
            };
            let mut acc = [_mm256_setzero_ps(); 8];
            for p in (0..whole).step_by(8) {
                // SAFETY: p + 8 <= whole <= k, so every load is inside a row of `a` or `b`.
                unsafe {
                    let x = _mm256_loadu_ps(a_row.as_ptr().add(p));
                    for (sum, start) in acc.iter_mut().zip(starts) {
                        *sum = _mm256_fmadd_ps(x, _mm256_loadu_ps(start.add(p)), *sum);
                    }
                }
            }
            // SAFETY: out_row[j..j + 8] is inside the row, since j + 8 <= m.
            unsafe {
                let o = out_row.as_mut_ptr().add(j);
                _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), sum_each(acc)));
            }
            if whole < k {
                for (r, o) in out_row[j..j + 8].iter_mut().enumerate() {
                    let row = &rows[r * k..(r + 1) * k];
                    let tail: f32 = a_row[whole..]
                        .iter()
                        .zip(&row[whole..])
                        .map(|(x, y)| x * y)
                        .sum();
                    *o += tail;
                }
            }
            j += 8;
        }
        for (o, row) in out_row[j..].iter_mut().zip(b[j * k..].chunks_exact(k)) {
            *o += reference::dot(a_row, row);
        }
    }
}

/// [`super::tiled::sgd_product_step`] with four rows of `w` at a time: `w -= lr · clamp(aᵀ·b,
/// ±clip)` (`a` n×k, `b` n×m, `w` k×m) without storing the product.
///
/// A block of 4 rows × 16 columns of the product is summed over the `n` rows of the factors in
/// eight registers, each load of `b` serving four rows; then it is clipped and applied. The
/// sums and the update run in the same order and with the same roundings as the portable
/// version (multiply-adds in the column tiles of 64, a multiply and an add beyond them), so the
/// result is the same bit for bit.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
///
/// # Panics
/// If the slices do not have the sizes given.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub fn sgd_product_step(
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
    // the portable version's tiles: multiply-adds in the first `fused` columns
    let fused = m / super::tiled::TILE * super::tiled::TILE;
    let (low, high, rate) = (
        _mm256_set1_ps(-clip),
        _mm256_set1_ps(clip),
        _mm256_set1_ps(lr),
    );
    let rows4 = k / 4 * 4;
    for p in (0..rows4).step_by(4) {
        for j in (0..fused).step_by(16) {
            let mut acc = [_mm256_setzero_ps(); 8];
            for i in 0..n {
                // SAFETY: i < n, p + 3 < k and j + 16 <= m: inside `a` and `b`.
                unsafe {
                    let b_row = b.as_ptr().add(i * m + j);
                    let (b0, b1) = (_mm256_loadu_ps(b_row), _mm256_loadu_ps(b_row.add(8)));
                    let a_row = a.as_ptr().add(i * k + p);
                    for r in 0..4 {
                        let s = _mm256_broadcast_ss(&*a_row.add(r));
                        acc[2 * r] = _mm256_fmadd_ps(s, b0, acc[2 * r]);
                        acc[2 * r + 1] = _mm256_fmadd_ps(s, b1, acc[2 * r + 1]);
                    }
                }
            }
            for (r, pair) in acc.chunks_exact(2).enumerate() {
                for (half, &g) in pair.iter().enumerate() {
                    // SAFETY: row p + r < k, columns j + 8·half .. + 8 <= m: inside `w`.
                    unsafe {
                        let at = w.as_mut_ptr().add((p + r) * m + j + 8 * half);
                        // clamp as f32::clamp does: max(low, g) keeps a NaN g, min too
                        let clipped = _mm256_min_ps(high, _mm256_max_ps(low, g));
                        let step = _mm256_mul_ps(rate, clipped);
                        _mm256_storeu_ps(at, _mm256_sub_ps(_mm256_loadu_ps(at), step));
                    }
                }
            }
        }
    }
    // what the blocks leave: the last k mod 4 rows, and the columns after the tiles
    for p in 0..k {
        let columns = if p < rows4 { fused..m } else { 0..m };
        for j in columns {
            let g = if j < fused {
                (0..n).fold(0.0f32, |g, i| a[i * k + p].mul_add(b[i * m + j], g))
            } else {
                reference::product_entry(a, b, k, m, p, j)
            };
            w[p * m + j] = reference::sgd_update(w[p * m + j], g, lr, clip);
        }
    }
}

/// `out (cols × rows) = aᵀ`, where `a` is `rows × cols`: blocks of 8×8 are loaded a row at a
/// time, turned in registers by three rounds of shuffles, and stored a row at a time; the
/// edges that do not fill a block are copied one float at a time.
///
/// # Safety
/// The CPU must have AVX.
///
/// # Panics
/// If the slices do not have the sizes given.
#[target_feature(enable = "avx2,fma")]
pub fn transpose(out: &mut [f32], a: &[f32], rows: usize, cols: usize) {
    assert_eq!((out.len(), a.len()), (rows * cols, rows * cols));
    let (full_rows, full_cols) = (rows / 8 * 8, cols / 8 * 8);
    for i in (0..full_rows).step_by(8) {
        for j in (0..full_cols).step_by(8) {
            let mut r = [_mm256_setzero_ps(); 8];
            for (q, r) in r.iter_mut().enumerate() {
                let row = &a[(i + q) * cols + j..][..8];
                // SAFETY: `row` holds 8 floats.
                *r = unsafe { _mm256_loadu_ps(row.as_ptr()) };
            }
            // pairs of rows interleaved, then pairs of pairs, then the halves swapped
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let turned = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (q, v) in turned.iter().enumerate() {
                let row = &mut out[(j + q) * rows + i..][..8];
                // SAFETY: `row` holds 8 floats.
                unsafe { _mm256_storeu_ps(row.as_mut_ptr(), *v) };
            }
        }
    }
    // the edges: the last columns of every row, and the last rows of the full columns
    for i in 0..rows {
        let from = if i < full_rows { full_cols } else { 0 };
        for j in from..cols {
            out[j * rows + i] = a[i * cols + j];
        }
    }
}

/// `out (n×m) += a (n×k) · b`, with `b` laid out by [`reference::pack_panels`]: for every panel
/// of 16 columns, blocks of up to six rows of `a` (see `panel_block`).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
///
/// # Panics
/// If the slices do not have the sizes given.
#[target_feature(enable = "avx2,fma")]
pub fn matmul_panels(out: &mut [f32], a: &[f32], panels: &[f32], n: usize, k: usize, m: usize) {
    assert_eq!(
        (out.len(), a.len(), panels.len()),
        (n * m, n * k, panels_len(k, m))
    );
    if k == 0 {
        return;
    }
    for (j, panel) in panels.chunks_exact(k * PANEL).enumerate() {
        let at = Block {
            col: j * PANEL,
            cols: (m - j * PANEL).min(PANEL),
            k,
            m,
        };
        let mut i = 0;
        while i < n {
            let rows = (n - i).min(6);
            let (out, a) = (&mut out[i * m..(i + rows) * m], &a[i * k..(i + rows) * k]);
            match rows {
                6 => panel_block::<6>(out, a, panel, at),
                5 => panel_block::<5>(out, a, panel, at),
                4 => panel_block::<4>(out, a, panel, at),
                3 => panel_block::<3>(out, a, panel, at),
                2 => panel_block::<2>(out, a, panel, at),
                _ => panel_block::<1>(out, a, panel, at),
            }
            i += rows;
        }
    }
}

/// Where a block of [`matmul_panels`] writes: columns `col..col + cols` of rows `m` long, with
/// sums of `k` terms.
#[derive(Clone, Copy)]
struct Block {
    col: usize,
    cols: usize,
    k: usize,
    m: usize,
}

/// `R` rows of `out` (R×m), columns `col..col + cols`, `+= a (R×k) · panel (k×16)`: the
/// 2·R sums of eight stay in registers for the `k` steps, each step two loads of the panel
/// and `R` broadcasts of `a`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn panel_block<const R: usize>(out: &mut [f32], a: &[f32], panel: &[f32], at: Block) {
    let Block { col, cols, k, m } = at;
    assert!(out.len() == R * m && a.len() == R * k && panel.len() == k * PANEL);
    assert!(cols <= PANEL && col + cols <= m);
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    let mut edge = [0.0f32; PANEL];
    for (r, acc) in acc.iter_mut().enumerate() {
        let row = &out[r * m + col..][..cols];
        let src = if cols == PANEL {
            row
        } else {
            edge[..cols].copy_from_slice(row);
            &edge[..]
        };
        // SAFETY: `src` holds 16 floats.
        *acc = unsafe {
            [
                _mm256_loadu_ps(src.as_ptr()),
                _mm256_loadu_ps(src.as_ptr().add(8)),
            ]
        };
    }
    let (a, b) = (a.as_ptr(), panel.as_ptr());
    for p in 0..k {
        // SAFETY: p < k, so the panel's row p (16 floats from 16p) and a[r·k + p] for r < R
        // lie inside the slices, whose sizes were checked above.
        unsafe {
            let b0 = _mm256_loadu_ps(b.add(p * PANEL));
            let b1 = _mm256_loadu_ps(b.add(p * PANEL + 8));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_broadcast_ss(&*a.add(r * k + p));
                acc[0] = _mm256_fmadd_ps(x, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(x, b1, acc[1]);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let mut sums = [0.0f32; PANEL];
        // SAFETY: `sums` holds 16 floats.
        unsafe {
            _mm256_storeu_ps(sums.as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(sums.as_mut_ptr().add(8), acc[1]);
        }
        out[r * m + col..][..cols].copy_from_slice(&sums[..cols]);
    }
}
