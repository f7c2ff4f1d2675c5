//! Hand-written AVX2 kernels, for the one product that portable code does not vectorise well:
//! few rows times a transposed matrix, `out += a · bᵀ`, whose every output is a dot product.
//! The compiler vectorises a dot product across its terms only with one accumulator, which
//! waits on itself at every step; here eight dot products run at once, each in its own
//! register, and their eight totals are formed together at the end by a tree of horizontal
//! additions. [`super::reference::matmul_nt`] is the definition; tests compare the two.

use std::arch::x86_64::*;

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
/// # Safety
/// The CPU must have AVX2 and FMA.
///
/// # Panics
/// If the slices do not have the sizes given.
#[target_feature(enable = "avx2,fma")]
pub fn matmul_nt(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    assert_eq!((out.len(), a.len(), b.len()), (n * m, n * k, m * k));
    let whole = k / 8 * 8;
    for (out_row, a_row) in out.chunks_exact_mut(m).zip(a.chunks_exact(k)) {
        let mut j = 0;
        while j + 8 <= m {
            let rows = &b[j * k..(j + 8) * k];
            // One pointer a row, each in its own register. Left to itself, the compiler finds
            // that row r starts k floats after row r - 1 and recomputes the eight addresses
            // from one another at every step, a chain of dependent additions that takes
            // longer than the eight multiply-adds it feeds; `black_box` hides the relation.
            let starts: [*const f32; 8] =
                std::hint::black_box(std::array::from_fn(|r| rows[r * k..].as_ptr()));
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
            *o += super::reference::dot(a_row, row);
        }
    }
}
