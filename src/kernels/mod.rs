//! The arithmetic loops of the model: matrix products and `tanh`, forward and backward.
//!
//! Every matrix is a row-major `f32` slice plus its sizes; products always accumulate into
//! `out` (`+=`), so a caller zeroes it first when it wants a plain product. Names tell which
//! operand is transposed: `nt` is `A·Bᵀ`, `nn` is `A·B`, `tn` is `Aᵀ·B`.
//!
//! **Plain and fast.** [`reference`](mod@reference) has every loop written plainly; it is the definition.
//! [`tiled`] has the matrix products arranged so that the compiler keeps partial sums in
//! vector registers; tests compare every function here with its reference.
//!
//! **Large products** (a batch of rows, or a weight gradient summed over every token of a
//! batch) go to the `gemm` crate, which detects the CPU's vector width at run time too.
//!
//! **One body, several instruction sets.** A default build may only assume the x86-64
//! baseline (SSE2), which leaves most of a modern core idle, so each function here compiles
//! its body again with AVX2+FMA and with AVX-512 enabled, and picks the best one the CPU has
//! at run time ([`isa`]). The binary runs on any x86-64 machine and uses what it finds.

pub mod aligned;
#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
pub mod reference;
pub mod tiled;

use std::sync::OnceLock;

pub use aligned::AlignedVec;

/// The instruction sets the kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 (F, VL) with FMA: 16 floats a register.
    Avx512,
    /// AVX2 with FMA: 8 floats a register.
    Avx2,
    /// Whatever the build targets (SSE2 on x86-64): 4 floats a register.
    Baseline,
}

/// The best instruction set this CPU has, detected once.
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::env::var_os("RNN_BASELINE_KERNELS").is_some() {
                return Isa::Baseline;
            }
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("fma")
            {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    })
}

/// Defines a function that runs a body compiled for the best [`isa`]: `= body` for all three,
/// or `= fused, separate` to give the builds with FMA (AVX2, AVX-512) one body and the
/// baseline build another (see [`tiled::MulAdd`]).
macro_rules! dispatch {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $body:path) => {
        dispatch! { $(#[$doc])* $vis fn $name($($arg: $ty),*) $(-> $ret)? = $body, $body }
    };
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $fused:path, $plain:path) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $fused($($arg),*)
                }
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $fused($($arg),*)
                }
                match isa() {
                    // SAFETY: `isa` returns these only when the CPU has the features.
                    Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    Isa::Baseline => {}
                }
            }
            $plain($($arg),*)
        }
    };
}

dispatch! {
    /// `out (n×m) += a (n×k) · bᵀ` for few rows (see [`matmul_nt`]).
    fn tiled_nt(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize)
        = tiled::matmul_nt::<tiled::Fused>, tiled::matmul_nt::<tiled::Separate>
}

dispatch! {
    /// `out (n×m) += a (n×k) · b` for few rows (see [`matmul_nn`]).
    fn tiled_nn(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize)
        = tiled::matmul_nn::<tiled::Fused>, tiled::matmul_nn::<tiled::Separate>
}

dispatch! {
    /// `out (k×m) += aᵀ · b` for a short sum (see [`matmul_tn`]).
    fn tiled_tn(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize)
        = tiled::matmul_tn::<tiled::Fused>, tiled::matmul_tn::<tiled::Separate>
}

/// From this many rows (or terms, for `tn`) on, a product goes to the `gemm` crate, whose
/// packed, cache-blocked micro-kernels run about twice as fast as [`tiled`] at batch shapes
/// (`cargo bench --bench kernels`); below it, packing costs more than it saves.
const GEMM_FROM: usize = 8;

/// Whether a product of `n` rows (or terms) goes to the `gemm` crate. Never on the baseline
/// ([`Isa::Baseline`], also chosen by `RNN_BASELINE_KERNELS`): the `gemm` crate picks its own
/// kernels by CPU, and the baseline is the one path whose every sum is in the same order on
/// every x86-64 CPU, so that model files made with it are the same bytes on any machine (the
/// pinned hashes of `tests/pinned.rs`).
fn to_gemm(n: usize) -> bool {
    n >= GEMM_FROM && isa() != Isa::Baseline
}

/// `out = out + lhs · rhs` by the `gemm` crate, each matrix given by its pointer and its row
/// and column strides in floats.
///
/// # Safety
/// Every element the strides reach (`rows × depth` of `lhs`, `depth × cols` of `rhs`,
/// `rows × cols` of `out`) must lie inside the slice behind the pointer.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_acc(
    (rows, depth, cols): (usize, usize, usize),
    out: *mut f32,
    (out_rs, out_cs): (usize, usize),
    lhs: *const f32,
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: *const f32,
    (rhs_rs, rhs_cs): (usize, usize),
) {
    // SAFETY: the caller guarantees the strides stay inside the slices.
    unsafe {
        gemm::gemm(
            rows,
            cols,
            depth,
            out,
            out_cs as isize,
            out_rs as isize,
            true,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// `out (n×m) += a (n×k) · bᵀ`, where `b` is `m×k`.
pub fn matmul_nt(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    if n == 0 || k == 0 || m == 0 {
        return; // nothing to add (a batch of empty texts has no rows)
    }
    #[cfg(target_arch = "x86_64")]
    if (GEMM_FROM..=avx512::FEW_ROWS).contains(&n) && k * m >= avx512::LARGE && isa() == Isa::Avx512
    {
        // SAFETY: `isa` found AVX-512F.
        return unsafe { avx512::matmul_nt(out, a, b, n, k, m) };
    }
    if to_gemm(n) {
        return gemm_nt(out, a, b, n, k, m);
    }
    #[cfg(target_arch = "x86_64")]
    if isa() != Isa::Baseline {
        // SAFETY: `isa` found AVX2 and FMA (AVX-512 CPUs have them too).
        return unsafe { avx2::matmul_nt(out, a, b, n, k, m) };
    }
    tiled_nt(out, a, b, n, k, m)
}

/// `out (n×m) += a (n×k) · b`, where `b` is `k×m`.
pub fn matmul_nn(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    if n == 0 || k == 0 || m == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    // (one row stays with the tiled loop, which the AVX-512 kernel does not beat there)
    if n > 1 && (n < GEMM_FROM || k * m <= avx512::NN_SMALL) && isa() == Isa::Avx512 {
        // SAFETY: `isa` found AVX-512F.
        return unsafe { avx512::matmul_nn(out, a, b, n, k, m) };
    }
    if to_gemm(n) {
        return gemm_nn(out, a, b, n, k, m);
    }
    tiled_nn(out, a, b, n, k, m)
}

/// `out (k×m) += aᵀ · b`, where `a` is `n×k` and `b` is `n×m`.
pub fn matmul_tn(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    if n == 0 || k == 0 || m == 0 {
        return;
    }
    // From 8 terms on the `gemm` crate wins here too (`cargo bench --bench kernels`, AVX-512:
    // 2.1x at 8×100×100, 3.1x at 25×85×100, a language model's window of 25 steps).
    if to_gemm(n) {
        return gemm_tn(out, a, b, n, k, m);
    }
    tiled_tn(out, a, b, n, k, m)
}

/// [`matmul_nt`] by the `gemm` crate, whatever the size.
pub fn gemm_nt(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    assert_eq!((out.len(), a.len(), b.len()), (n * m, n * k, m * k));
    let (out, a, b) = (out.as_mut_ptr(), a.as_ptr(), b.as_ptr());
    // SAFETY: out is n×m (row stride m), a is n×k (k), bᵀ is k×m with b[j][p] at j·k + p.
    unsafe { gemm_acc((n, k, m), out, (m, 1), a, (k, 1), b, (1, k)) }
}

/// [`matmul_nn`] by the `gemm` crate, whatever the size.
pub fn gemm_nn(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    assert_eq!((out.len(), a.len(), b.len()), (n * m, n * k, k * m));
    let (out, a, b) = (out.as_mut_ptr(), a.as_ptr(), b.as_ptr());
    // SAFETY: out is n×m, a is n×k, b is k×m, all row-major.
    unsafe { gemm_acc((n, k, m), out, (m, 1), a, (k, 1), b, (m, 1)) }
}

/// [`matmul_tn`] by the `gemm` crate, whatever the size.
pub fn gemm_tn(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    assert_eq!((out.len(), a.len(), b.len()), (k * m, n * k, n * m));
    let (out, a, b) = (out.as_mut_ptr(), a.as_ptr(), b.as_ptr());
    // SAFETY: out is k×m; aᵀ is k×n with a[i][p] at i·k + p; b is n×m row-major.
    unsafe { gemm_acc((k, n, m), out, (m, 1), a, (1, k), b, (m, 1)) }
}

/// How many floats [`pack`] writes for a `k×m` right-hand side.
pub fn packed_len(k: usize, m: usize) -> usize {
    if isa() == Isa::Avx512 {
        k * m
    } else {
        reference::panels_len(k, m)
    }
}

/// Whether [`pack`] changes how `b` lies: always for a `b` given transposed, and otherwise
/// except with AVX-512, whose layout is row-major; where it does not, [`matmul_packed`] on `b`
/// itself is [`matmul_nn`], and a copy would be work for nothing.
pub fn packing_moves(transposed: bool) -> bool {
    transposed || isa() != Isa::Avx512
}

/// Lays out `b` (k×m; with `transposed`, given as `bᵀ`, m×k) for many products
/// [`matmul_packed`] `a · b` with the same `b`, in the layout this CPU's kernel reads fastest:
/// with AVX-512 row-major (for [`matmul_nn`]), otherwise in panels of 16 columns
/// ([`reference::pack_panels`], for [`avx2::matmul_panels`]). `out` is [`packed_len`] long.
pub fn pack(out: &mut [f32], b: &[f32], k: usize, m: usize, transposed: bool) {
    match (isa() == Isa::Avx512, transposed) {
        (true, true) => transpose(out, b, m, k),
        (true, false) => out.copy_from_slice(b),
        (false, _) => reference::pack_panels(out, b, k, m, transposed),
    }
}

dispatch! {
    /// [`matmul_panels`] without the hand-written AVX2 kernel.
    fn plain_matmul_panels(out: &mut [f32], a: &[f32], panels: &[f32], n: usize, k: usize, m: usize) = reference::matmul_panels
}

/// `out (n×m) += a (n×k) · b`, with `b` laid out by [`pack`].
pub fn matmul_packed(out: &mut [f32], a: &[f32], packed: &[f32], n: usize, k: usize, m: usize) {
    if isa() == Isa::Avx512 {
        return matmul_nn(out, a, packed, n, k, m);
    }
    matmul_panels(out, a, packed, n, k, m)
}

/// `out (n×m) += a (n×k) · b`, with `b` laid out by [`reference::pack_panels`].
pub fn matmul_panels(out: &mut [f32], a: &[f32], panels: &[f32], n: usize, k: usize, m: usize) {
    #[cfg(target_arch = "x86_64")]
    if isa() != Isa::Baseline {
        // SAFETY: `isa` found AVX2 and FMA (AVX-512 CPUs have them too).
        return unsafe { avx2::matmul_panels(out, a, panels, n, k, m) };
    }
    plain_matmul_panels(out, a, panels, n, k, m)
}

/// Asks the CPU to bring the memory of `xs` (its first and its last cache line: a table's row
/// of a few floats) into the cache, for a read that comes soon. A hint: it reads nothing,
/// changes nothing, and cannot fault; a no-op off x86-64.
#[inline]
pub fn prefetch(xs: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(first), Some(last)) = (xs.first(), xs.last()) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        for p in [first, last] {
            // SAFETY: SSE is part of x86-64, and a prefetch of a valid address reads nothing.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(p).cast::<i8>()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = xs;
}

dispatch! {
    /// [`max`] without the hand-written AVX-512 kernel.
    fn plain_max(xs: &[f32]) -> f32 = reference::max
}

/// The largest value (NaNs aside), or `-∞` for none (see [`reference::max`]).
pub fn max(xs: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if isa() == Isa::Avx512 {
        // SAFETY: `isa` found AVX-512F.
        return unsafe { avx512::max(xs) };
    }
    plain_max(xs)
}

dispatch! {
    /// [`softmax`] without the hand-written AVX-512 kernel.
    fn plain_softmax(y: &mut [f32]) -> (f32, f32) = reference::softmax
}

/// Softmax of one row of logits, in place; returns `(ln Σ exp(y - m), m)` with `m = max y`
/// (see [`reference::softmax`]). With AVX-512, whole rows run in masked registers.
pub fn softmax(y: &mut [f32]) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if isa() == Isa::Avx512 {
        // SAFETY: `isa` found AVX-512F.
        return unsafe { avx512::softmax(y) };
    }
    plain_softmax(y)
}

dispatch! {
    /// [`transpose`] without the hand-written AVX2 kernel.
    fn plain_transpose(out: &mut [f32], a: &[f32], rows: usize, cols: usize) = reference::transpose
}

/// `out (cols × rows) = aᵀ`, where `a` is `rows × cols` (see [`reference::transpose`]).
pub fn transpose(out: &mut [f32], a: &[f32], rows: usize, cols: usize) {
    #[cfg(target_arch = "x86_64")]
    if isa() != Isa::Baseline {
        // SAFETY: `isa` found AVX2 and FMA (AVX-512 CPUs have them too).
        return unsafe { avx2::transpose(out, a, rows, cols) };
    }
    plain_transpose(out, a, rows, cols)
}

dispatch! {
    /// `y += x`, element by element.
    pub fn add_into(y: &mut [f32], x: &[f32]) = reference::add_into
}

dispatch! {
    /// `out = a + b`, element by element.
    pub fn sum_into(out: &mut [f32], a: &[f32], b: &[f32]) = reference::sum_into
}

dispatch! {
    /// `c = f ⊙ c_prev + i ⊙ g` (see [`reference::lstm_memory`]). A fused multiply-add is one
    /// instruction where the CPU has FMA, and a slow library call where it is emulated.
    pub fn lstm_memory(c: &mut [f32], f: &[f32], c_prev: &[f32], i: &[f32], g: &[f32]) = reference::lstm_memory
}

dispatch! {
    /// The LSTM's backward step at one row that has a memory before it (see
    /// [`reference::lstm_backward`]); the same sums in the same order on every CPU.
    pub fn lstm_backward(ds: &mut [f32], gates: &[f32], tanh_c: &[f32], c_prev: &[f32], da: &mut [f32]) = reference::lstm_backward::<true>
}

dispatch! {
    /// [`lstm_backward`] at a row's first step, whose memory before it is zero (`c_prev` is
    /// not read).
    pub fn lstm_backward_first(ds: &mut [f32], gates: &[f32], tanh_c: &[f32], c_prev: &[f32], da: &mut [f32]) = reference::lstm_backward::<false>
}

dispatch! {
    /// One step of max pooling over time (see [`reference::max_step`]).
    pub fn max_step(max: &mut [f32], arg: &mut [u32], x: &[f32], t: u32) = reference::max_step
}

dispatch! {
    /// `h = n + z ⊙ (h_prev - n)` (see [`reference::gru_mix`]).
    pub fn gru_mix(h: &mut [f32], z: &[f32], h_prev: &[f32], n: &[f32]) = reference::gru_mix
}

dispatch! {
    /// `x = tanh(x)` for every element (see [`reference::tanh`]).
    pub fn tanh_in_place(xs: &mut [f32]) = reference::tanh_in_place
}

dispatch! {
    /// `x = σ(x)` for every element, the gates of GRU and LSTM (see [`reference::sigmoid`]).
    pub fn sigmoid_in_place(xs: &mut [f32]) = reference::sigmoid_in_place
}

dispatch! {
    /// `da = (1 - h²) ⊙ dh`, the backward step of `h = tanh(a)`.
    pub fn tanh_backward(da: &mut [f32], dh: &[f32], h: &[f32]) = reference::tanh_backward
}

dispatch! {
    /// `w -= lr · clamp(g, ±clip); g = 0`, element by element.
    pub fn sgd_step(w: &mut [f32], g: &mut [f32], lr: f32, clip: f32) = reference::sgd_step
}

dispatch! {
    /// [`sgd_product_step`] without the hand-written AVX2 kernel.
    #[allow(clippy::too_many_arguments)]
    fn tiled_sgd_product_step(w: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize, lr: f32, clip: f32)
        = tiled::sgd_product_step::<tiled::Fused>, tiled::sgd_product_step::<tiled::Separate>
}

/// `w -= lr · clamp(aᵀ · b, ±clip)` element by element, for a gradient `aᵀ · b` (`a` n×k, `b`
/// n×m) that is never stored: the tiled `aᵀ · b` into zeros then [`sgd_step`], in one pass over
/// `w`, the same result bit for bit ([`matmul_tn`] gives it up to rounding: from 8 rows on it
/// sums in `gemm`'s order).
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
    #[cfg(target_arch = "x86_64")]
    if isa() != Isa::Baseline {
        // SAFETY: `isa` found AVX2 and FMA (AVX-512 CPUs have them too).
        return unsafe { avx2::sgd_product_step(w, a, b, n, k, m, lr, clip) };
    }
    tiled_sgd_product_step(w, a, b, n, k, m, lr, clip)
}

dispatch! {
    /// One Adam update with clipping, resetting the gradient (see [`crate::optim::Adam`]).
    pub fn adam_step(w: &mut [f32], g: &mut [f32], m: &mut [f32], v: &mut [f32], rule: &AdamRule) = reference::adam_step
}

dispatch! {
    /// One Adagrad update with clipping, resetting the gradient (see [`crate::optim::Adagrad`]).
    pub fn adagrad_step(w: &mut [f32], g: &mut [f32], sum: &mut [f32], lr: f32, eps: f32, clip: f32) = reference::adagrad_step
}

pub use reference::AdamRule;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random(n: usize, rng: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| rng.symmetric(1.0) as f32).collect()
    }

    fn close(a: &[f32], b: &[f32]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn dispatched_products_match_the_reference_at_odd_sizes() {
        let mut rng = Rng::new(5);
        for (n, k, m) in [
            (1, 64, 64),
            (3, 17, 5),
            (7, 128, 33),
            (1, 1, 1),
            (40, 64, 96),
            (2, 9, 70),
            // the copies of the one-row kernel for k = 64 and 128
            (2, 128, 20),
            (1, 64, 11),
        ] {
            let (a, b) = (random(n * k, &mut rng), random(m * k, &mut rng));
            let start = random(n * m, &mut rng);
            let (mut fast, mut slow) = (start.clone(), start.clone());
            matmul_nt(&mut fast, &a, &b, n, k, m);
            reference::matmul_nt(&mut slow, &a, &b, n, k, m);
            close(&fast, &slow);

            let b = random(k * m, &mut rng);
            let (mut fast, mut slow) = (start.clone(), start.clone());
            matmul_nn(&mut fast, &a, &b, n, k, m);
            reference::matmul_nn(&mut slow, &a, &b, n, k, m);
            close(&fast, &slow);

            let (a, b) = (random(n * k, &mut rng), random(n * m, &mut rng));
            let start = random(k * m, &mut rng);
            let (mut fast, mut slow) = (start.clone(), start.clone());
            matmul_tn(&mut fast, &a, &b, n, k, m);
            reference::matmul_tn(&mut slow, &a, &b, n, k, m);
            close(&fast, &slow);
        }
    }

    #[test]
    fn exp_is_within_two_ulp_and_zero_where_it_underflows() {
        let ulp = |x: f32| f32::from_bits(x.to_bits() + 1) - x;
        let mut worst = 0.0f64;
        for i in -87_300..=88_300 {
            let x = i as f32 / 1000.0;
            let want = f64::from(x).exp();
            let got = f64::from(reference::exp(x));
            worst = worst.max((got - want).abs() / f64::from(ulp(want as f32)));
        }
        assert!(worst <= 2.0, "{worst} ulp");
        assert_eq!(reference::exp(0.0), 1.0);
        assert_eq!(reference::exp(-88.0), 0.0);
        assert_eq!(reference::exp(f32::NEG_INFINITY), 0.0);
        assert!(reference::exp(f32::NAN).is_nan(), "a NaN stays a NaN");
    }

    #[test]
    fn the_dispatched_softmax_matches_one_in_double_precision() {
        let mut rng = Rng::new(3);
        for len in [1, 5, 16, 85, 97] {
            let y: Vec<f32> = random(len, &mut rng).iter().map(|v| 8.0 * v).collect();
            let (mut fast, mut want) = (y.clone(), y.clone());
            let (log_sum, m) = softmax(&mut fast);
            let m_want = want.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = want.iter().map(|&v| f64::from(v - m_want).exp()).sum();
            for v in &mut want {
                *v = (f64::from(*v - m_want).exp() / sum) as f32;
            }
            close(&fast, &want);
            assert_eq!(m, m_want);
            assert!((f64::from(log_sum) - sum.ln()).abs() < 1e-6, "{len}");
        }
    }

    #[test]
    fn products_with_packed_weights_match_the_plain_product() {
        let mut rng = Rng::new(6);
        for (n, k, m) in [
            (1, 1, 1),
            (6, 7, 16),
            (7, 5, 17),
            (13, 33, 40),
            (16, 256, 1024),
            (3, 100, 100),
        ] {
            let (a, b) = (random(n * k, &mut rng), random(k * m, &mut rng));
            let mut bt = vec![0.0; k * m];
            reference::transpose(&mut bt, &b, k, m);
            let start = random(n * m, &mut rng);
            let mut want = start.clone();
            reference::matmul_nn(&mut want, &a, &b, n, k, m);
            for (source, transposed) in [(&b, false), (&bt, true)] {
                let mut packed = vec![f32::NAN; packed_len(k, m)];
                pack(&mut packed, source, k, m, transposed);
                let mut got = start.clone();
                matmul_packed(&mut got, &a, &packed, n, k, m);
                close(&got, &want);
                // the panels, by the AVX2 kernel and the plain loop alike
                let mut panels = vec![f32::NAN; reference::panels_len(k, m)];
                reference::pack_panels(&mut panels, source, k, m, transposed);
                let (mut fast, mut plain) = (start.clone(), start.clone());
                matmul_panels(&mut fast, &a, &panels, n, k, m);
                plain_matmul_panels(&mut plain, &a, &panels, n, k, m);
                close(&fast, &want);
                close(&plain, &want);
            }
        }
    }

    #[test]
    fn transpose_swaps_rows_and_columns() {
        let mut rng = Rng::new(4);
        for (rows, cols) in [(1, 1), (3, 17), (16, 16), (33, 8), (9, 23), (1024, 256)] {
            let a = random(rows * cols, &mut rng);
            let (mut t, mut plain) = (vec![0.0; rows * cols], vec![0.0; rows * cols]);
            transpose(&mut t, &a, rows, cols);
            plain_transpose(&mut plain, &a, rows, cols);
            for i in 0..rows {
                for j in 0..cols {
                    assert_eq!(t[j * rows + i], a[i * cols + j], "{rows}x{cols}");
                }
            }
            assert_eq!(t, plain);
        }
    }

    #[test]
    fn an_sgd_step_on_a_product_is_the_step_on_the_formed_product() {
        let mut rng = Rng::new(8);
        // blocks of 4 rows and 16 columns, with rows and columns left over, and tails after
        // the portable version's column tiles of 64
        for (n, k, m) in [
            (1, 64, 64),
            (6, 64, 64),
            (31, 18, 70),
            (3, 5, 9),
            (2, 130, 128),
        ] {
            let (a, b) = (random(n * k, &mut rng), random(n * m, &mut rng));
            let w = random(k * m, &mut rng);
            // clip 0.5 clips some of the sums, not all
            let (lr, clip) = (0.1, 0.5);
            let mut fused = w.clone();
            sgd_product_step(&mut fused, &a, &b, n, k, m, lr, clip);
            // the product formed by the tiled loop, which sums in the same order: equal bit
            // for bit; by `matmul_tn`, which hands 8 rows or more to `gemm`: up to rounding
            let (mut formed, mut g) = (w.clone(), vec![0.0; k * m]);
            tiled_tn(&mut g, &a, &b, n, k, m);
            sgd_step(&mut formed, &mut g, lr, clip);
            assert_eq!(fused, formed, "({n}, {k}, {m})");
            let (mut formed, mut g) = (w.clone(), vec![0.0; k * m]);
            matmul_tn(&mut g, &a, &b, n, k, m);
            sgd_step(&mut formed, &mut g, lr, clip);
            close(&fused, &formed);
            let mut portable = w.clone();
            tiled_sgd_product_step(&mut portable, &a, &b, n, k, m, lr, clip);
            assert_eq!(fused, portable, "({n}, {k}, {m})");
            let mut slow = w.clone();
            reference::sgd_product_step(&mut slow, &a, &b, n, k, m, lr, clip);
            close(&fused, &slow);
            assert!(
                fused
                    .iter()
                    .zip(&w)
                    .all(|(x, y)| (x - y).abs() <= lr * clip * 1.0001)
            );
            assert!(
                fused
                    .iter()
                    .zip(&w)
                    .any(|(x, y)| (x - y).abs() >= lr * clip * 0.9999)
            );
        }
    }

    #[test]
    fn dispatched_gate_arithmetic_is_the_reference_to_the_bit() {
        let mut rng = Rng::new(10);
        let v =
            |rng: &mut Rng| -> Vec<f32> { (0..77).map(|_| rng.symmetric(2.0) as f32).collect() };
        let (a, b, c, d) = (v(&mut rng), v(&mut rng), v(&mut rng), v(&mut rng));
        let (mut fast, mut plain) = (vec![0.0; 77], vec![0.0; 77]);
        lstm_memory(&mut fast, &a, &b, &c, &d);
        reference::lstm_memory(&mut plain, &a, &b, &c, &d);
        assert_eq!(
            fast, plain,
            "a fused multiply-add is exact in hardware and emulated alike"
        );
        gru_mix(&mut fast, &a, &b, &c);
        reference::gru_mix(&mut plain, &a, &b, &c);
        assert_eq!(fast, plain);
    }

    #[test]
    fn the_dispatched_lstm_backward_step_is_the_reference_to_the_bit() {
        let mut rng = Rng::new(11);
        let h = 19; // not a multiple of the vector width
        let mut v = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.symmetric(1.0) as f32).collect() };
        let (ds, gates, tanh_c, c_prev) = (v(2 * h), v(4 * h), v(h), v(h));
        for first in [false, true] {
            let (mut ds_fast, mut ds_plain) = (ds.clone(), ds.clone());
            let (mut da_fast, mut da_plain) = (vec![0.0; 4 * h], vec![0.0; 4 * h]);
            if first {
                lstm_backward_first(&mut ds_fast, &gates, &tanh_c, &[], &mut da_fast);
                reference::lstm_backward::<false>(
                    &mut ds_plain,
                    &gates,
                    &tanh_c,
                    &[],
                    &mut da_plain,
                );
                assert!(
                    da_fast[h..2 * h].iter().all(|&d| d == 0.0),
                    "no memory, no forget gradient"
                );
            } else {
                lstm_backward(&mut ds_fast, &gates, &tanh_c, &c_prev, &mut da_fast);
                reference::lstm_backward::<true>(
                    &mut ds_plain,
                    &gates,
                    &tanh_c,
                    &c_prev,
                    &mut da_plain,
                );
            }
            assert_eq!(
                (&da_fast, &ds_fast),
                (&da_plain, &ds_plain),
                "first step: {first}"
            );
            assert_ne!(
                ds_fast[h..],
                ds[h..],
                "dc is carried back through the forget gate"
            );
        }
    }

    #[test]
    fn a_max_pooling_step_keeps_the_first_largest_and_its_step() {
        let x = [1.0, f32::NAN, 3.0, -1.0, 2.0, 5.0, 0.5, 4.0, 7.0];
        let mut max = vec![2.0, 2.0, 3.0, -2.0, 2.0, 1.0, 1.0, 1.0, 6.0];
        let mut arg = vec![1u32; 9];
        let (mut plain_max, mut plain_arg) = (max.clone(), arg.clone());
        max_step(&mut max, &mut arg, &x, 4);
        reference::max_step(&mut plain_max, &mut plain_arg, &x, 4);
        assert_eq!(max, [2.0, 2.0, 3.0, -1.0, 2.0, 5.0, 1.0, 4.0, 7.0]);
        assert_eq!(
            arg,
            [1, 1, 1, 4, 1, 4, 1, 4, 4],
            "a tie or a NaN keeps the earlier step"
        );
        assert_eq!((max.clone(), arg.clone()), (plain_max, plain_arg));
        // the first step takes every value, NaN included
        max_step(&mut max, &mut arg, &x, 0);
        assert_eq!(arg, [0; 9]);
        assert!(max[1].is_nan() && max[8] == 7.0);
    }

    #[test]
    fn dispatched_sums_are_the_reference_sums() {
        let mut rng = Rng::new(9);
        for len in [0, 1, 7, 64, 77] {
            let a: Vec<f32> = (0..len).map(|_| rng.symmetric(3.0) as f32).collect();
            let b: Vec<f32> = (0..len).map(|_| rng.symmetric(3.0) as f32).collect();
            let mut out = vec![0.0; len];
            sum_into(&mut out, &a, &b);
            let expected: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn dispatched_tanh_matches_the_reference() {
        let mut rng = Rng::new(6);
        let xs: Vec<f32> = (0..1000).map(|_| rng.symmetric(10.0) as f32).collect();
        let mut fast = xs.clone();
        tanh_in_place(&mut fast);
        let slow: Vec<f32> = xs.iter().map(|&x| reference::tanh(x)).collect();
        close(&fast, &slow);
        let (dh, h) = (random(100, &mut rng), random(100, &mut rng));
        let mut da = vec![0.0; 100];
        tanh_backward(&mut da, &dh, &h);
        for i in 0..100 {
            assert!((da[i] - (1.0 - h[i] * h[i]) * dh[i]).abs() < 1e-6);
        }
    }

    #[test]
    fn dispatched_sigmoid_is_the_logistic_function() {
        let mut rng = Rng::new(7);
        let xs: Vec<f32> = (0..2000).map(|_| rng.symmetric(30.0) as f32).collect();
        let mut fast = xs.clone();
        sigmoid_in_place(&mut fast);
        for (&x, &y) in xs.iter().zip(&fast) {
            let exact = 1.0 / (1.0 + (-f64::from(x)).exp());
            assert!(
                (f64::from(y) - exact).abs() < 4e-7,
                "σ({x}) = {y}, not {exact}"
            );
            assert!((0.0..=1.0).contains(&y));
        }
        assert_eq!(reference::sigmoid(0.0), 0.5);
    }
}
