//! Matrix products on row-major `f32` slices: the only arithmetic loops of the model that are
//! not element-wise. Every matrix is a slice plus its sizes; `out` is always accumulated into
//! (`+=`), so a caller zeroes it first when it wants a plain product.
//!
//! Names tell which operand is transposed: `nt` is `A·Bᵀ`, `nn` is `A·B`, `tn` is `Aᵀ·B`.
//! These are the plain versions, written for clarity and auto-vectorisation; faster kernels
//! must match them (tests compare against them).

/// `a · b` for equal-length slices, with eight independent partial sums so that the compiler
/// can keep them in vector registers.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut sums = [0.0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b8, b_rest) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for k in 0..8 {
            sums[k] += x[k] * y[k];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    sums.iter().sum::<f32>() + tail
}

/// `y += alpha · x`.
#[inline]
pub fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    debug_assert_eq!(y.len(), x.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// `out (n×m) += a (n×k) · bᵀ`, where `b` is `m×k`: every output is a dot product of two rows.
pub fn matmul_nt(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    debug_assert_eq!((out.len(), a.len(), b.len()), (n * m, n * k, m * k));
    for (out_row, a_row) in out.chunks_exact_mut(m).zip(a.chunks_exact(k)) {
        for (o, b_row) in out_row.iter_mut().zip(b.chunks_exact(k)) {
            *o += dot(a_row, b_row);
        }
    }
}

/// `out (n×m) += a (n×k) · b`, where `b` is `k×m`: every output row is a sum of rows of `b`.
pub fn matmul_nn(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    debug_assert_eq!((out.len(), a.len(), b.len()), (n * m, n * k, k * m));
    for (out_row, a_row) in out.chunks_exact_mut(m).zip(a.chunks_exact(k)) {
        for (&a_ip, b_row) in a_row.iter().zip(b.chunks_exact(m)) {
            axpy(out_row, a_ip, b_row);
        }
    }
}

/// `out (k×m) += aᵀ · b`, where `a` is `n×k` and `b` is `n×m`: a sum of `n` outer products,
/// the shape of every weight gradient (`dW += dyᵀ · x`).
pub fn matmul_tn(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    debug_assert_eq!((out.len(), a.len(), b.len()), (k * m, n * k, n * m));
    for (a_row, b_row) in a.chunks_exact(k).zip(b.chunks_exact(m)) {
        for (out_row, &a_ip) in out.chunks_exact_mut(m).zip(a_row) {
            axpy(out_row, a_ip, b_row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `A` is 2×3, `B` is 3×2: small enough to multiply by hand.
    const A: [f32; 6] = [1., 2., 3., 4., 5., 6.];
    const B: [f32; 6] = [7., 8., 9., 10., 11., 12.];

    #[test]
    fn dot_handles_lengths_that_are_not_multiples_of_eight() {
        let a: Vec<f32> = (1..=11).map(|x| x as f32).collect();
        assert_eq!(dot(&a, &a), 506.0); // 1² + 2² + ... + 11²
    }

    #[test]
    fn nn_multiplies_and_accumulates() {
        let mut out = [1.0; 4];
        matmul_nn(&mut out, &A, &B, 2, 3, 2);
        // [1 2 3; 4 5 6] · [7 8; 9 10; 11 12] = [58 64; 139 154], plus the 1 already there.
        assert_eq!(out, [59., 65., 140., 155.]);
    }

    #[test]
    fn nt_is_nn_with_b_transposed() {
        let b_t = [7., 9., 11., 8., 10., 12.]; // Bᵀ, 2×3
        let mut out = [0.0; 4];
        matmul_nt(&mut out, &A, &b_t, 2, 3, 2);
        assert_eq!(out, [58., 64., 139., 154.]);
    }

    #[test]
    fn tn_is_nn_with_a_transposed() {
        let a_t = [1., 4., 2., 5., 3., 6.]; // Aᵀ, 3×2, so (Aᵀ)ᵀ · B = A · B
        let mut out = [0.0; 4];
        matmul_tn(&mut out, &a_t, &B, 3, 2, 2);
        assert_eq!(out, [58., 64., 139., 154.]);
    }
}
