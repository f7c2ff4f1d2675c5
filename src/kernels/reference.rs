//! The plain kernels: simple loops, written for clarity. They are the reference that the
//! dispatched versions in [`super`] are tested against, and they are also what those versions
//! compile: the same bodies, built once more for each instruction set.

/// `a · b` for equal-length slices, with eight independent partial sums so that the compiler
/// can keep them in vector registers.
#[inline(always)]
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
#[inline(always)]
pub fn axpy(y: &mut [f32], alpha: f32, x: &[f32]) {
    debug_assert_eq!(y.len(), x.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// `out (n×m) += a (n×k) · bᵀ`, where `b` is `m×k`: every output is a dot product of two rows.
#[inline(always)]
pub fn matmul_nt(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    debug_assert_eq!((out.len(), a.len(), b.len()), (n * m, n * k, m * k));
    for (out_row, a_row) in out.chunks_exact_mut(m).zip(a.chunks_exact(k)) {
        for (o, b_row) in out_row.iter_mut().zip(b.chunks_exact(k)) {
            *o += dot(a_row, b_row);
        }
    }
}

/// `out (n×m) += a (n×k) · b`, where `b` is `k×m`: every output row is a sum of rows of `b`.
#[inline(always)]
pub fn matmul_nn(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    debug_assert_eq!((out.len(), a.len(), b.len()), (n * m, n * k, k * m));
    for (out_row, a_row) in out.chunks_exact_mut(m).zip(a.chunks_exact(k)) {
        for (&a_ip, b_row) in a_row.iter().zip(b.chunks_exact(m)) {
            axpy(out_row, a_ip, b_row);
        }
    }
}

/// The width of a panel in [`pack_panels`]' layout: two AVX2 registers.
pub const PANEL: usize = 16;

/// How many floats [`pack_panels`] writes for a `k×m` matrix: `⌈m/16⌉` panels of `k×16`.
pub fn panels_len(k: usize, m: usize) -> usize {
    k * m.div_ceil(PANEL) * PANEL
}

/// Lays out `b` (k×m) as panels of [`PANEL`] columns, one after the other, each `k×16`
/// row-major, the last one padded with zeros: `b[p][16j + c]` goes to `out[16k·j + 16p + c]`.
/// `b` is given row-major, or with `transposed` as its transpose `bᵀ` (m×k). A product that
/// reads `b` so ([`matmul_panels`]) finds the 16 values of each of its steps side by side, and
/// a whole panel in a few kilobytes, where a row-major `b` has them a row's length apart.
///
/// # Panics
/// If the slices do not have the sizes given.
pub fn pack_panels(out: &mut [f32], b: &[f32], k: usize, m: usize, transposed: bool) {
    assert_eq!((out.len(), b.len()), (panels_len(k, m), k * m));
    for (j, panel) in out.chunks_exact_mut(k * PANEL).enumerate() {
        let (col, cols) = (j * PANEL, (m - j * PANEL).min(PANEL));
        if transposed {
            // column c of the panel is row `col + c` of bᵀ, read in order
            for c in 0..cols {
                for (p, &v) in b[(col + c) * k..][..k].iter().enumerate() {
                    panel[p * PANEL + c] = v;
                }
            }
        }
        for (p, row) in panel.chunks_exact_mut(PANEL).enumerate() {
            if !transposed {
                row[..cols].copy_from_slice(&b[p * m + col..][..cols]);
            }
            row[cols..].fill(0.0);
        }
    }
}

/// `out (n×m) += a (n×k) · b`, with `b` laid out by [`pack_panels`].
pub fn matmul_panels(out: &mut [f32], a: &[f32], panels: &[f32], n: usize, k: usize, m: usize) {
    debug_assert_eq!(
        (out.len(), a.len(), panels.len()),
        (n * m, n * k, panels_len(k, m))
    );
    for (j, panel) in panels.chunks_exact(k * PANEL).enumerate() {
        let cols = (m - j * PANEL).min(PANEL);
        for (out_row, a_row) in out.chunks_exact_mut(m).zip(a.chunks_exact(k)) {
            let out = &mut out_row[j * PANEL..][..cols];
            for (&a_ip, b_row) in a_row.iter().zip(panel.chunks_exact(PANEL)) {
                axpy(out, a_ip, &b_row[..cols]);
            }
        }
    }
}

/// `out (k×m) += aᵀ · b`, where `a` is `n×k` and `b` is `n×m`: a sum of `n` outer products,
/// the shape of every weight gradient (`dW += dyᵀ · x`).
#[inline(always)]
pub fn matmul_tn(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
    debug_assert_eq!((out.len(), a.len(), b.len()), (k * m, n * k, n * m));
    for (a_row, b_row) in a.chunks_exact(k).zip(b.chunks_exact(m)) {
        for (out_row, &a_ip) in out.chunks_exact_mut(m).zip(a_row) {
            axpy(out_row, a_ip, b_row);
        }
    }
}

/// `out (cols × rows) = aᵀ`, where `a` is `rows × cols`, in blocks of 8 × 8: a block's 8
/// rows on either side stay in cache while it is copied, even at the power-of-two strides
/// that put them all in one cache set (16 would not fit in its 12 ways).
#[inline(always)]
pub fn transpose(out: &mut [f32], a: &[f32], rows: usize, cols: usize) {
    assert_eq!((out.len(), a.len()), (rows * cols, rows * cols));
    const B: usize = 8;
    for i0 in (0..rows).step_by(B) {
        let i1 = (i0 + B).min(rows);
        for j0 in (0..cols).step_by(B) {
            for j in j0..(j0 + B).min(cols) {
                let column = &mut out[j * rows..][i0..i1];
                for (o, i) in column.iter_mut().zip(i0..i1) {
                    *o = a[i * cols + j];
                }
            }
        }
    }
}

/// `eˣ` to within 2 ulp for `x` in `[-87.3, 88.3]`, exactly 0 below (where `eˣ` is not a
/// normal `f32`), and `e^88.3` above. Cody and Waite's reduction, `eˣ = 2ⁿ · eʳ` with
/// `n = round(x / ln 2)` and `|r| ≤ ln 2 / 2` (`n · ln 2` subtracted in two parts, so `r` is
/// exact), then Cephes' polynomial for `eʳ`, and `2ⁿ` built from its exponent bits. Like
/// [`tanh`], it has no branches and no calls, so a loop of it runs in vector registers, where
/// the C library's `expf` is one call an element.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    use exp_constants::*;
    let clamped = x.clamp(LOW, HIGH);
    let shifted = clamped.mul_add(std::f32::consts::LOG2_E, ROUND);
    let n = shifted - ROUND;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, clamped));
    let p = P[0].mul_add(r, P[1]).mul_add(r, P[2]).mul_add(r, P[3]);
    let p = p.mul_add(r, P[4]).mul_add(r, P[5]);
    let e_r = p.mul_add(r * r, r) + 1.0;
    // 2ⁿ: n + 127 in the exponent bits (n is in [-126, 127])
    let bits = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127)
        << 23;
    let value = e_r * f32::from_bits(bits);
    if x < LOW { 0.0 } else { value }
}

/// The constants of [`exp`], shared with the vector kernels that take the same steps.
pub mod exp_constants {
    /// Below this, `eˣ` is 0; above [`HIGH`], `e^HIGH`.
    pub const LOW: f32 = -87.3;
    pub const HIGH: f32 = 88.3;
    /// `ln 2` in two parts: `n · LN2_HI` is exact for the `n` that occur.
    pub const LN2_HI: f32 = 0.693_359_4;
    pub const LN2_LO: f32 = -2.121_944_4e-4;
    /// Adding 1.5·2²³ rounds to the nearest integer, which lands in the low mantissa bits.
    pub const ROUND: f32 = 12_582_912.0;
    /// Cephes' polynomial for `eʳ` on `|r| ≤ ln 2 / 2`, highest power first.
    pub const P: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ];
}

/// `xs` folded with `f` (associative and commutative, like `+` and `max`) from `init`: 16
/// running values side by side, one a lane of a vector register (the last few values padded
/// with `init` to a whole register), then folded together in halves. A single running value
/// would wait for the previous step at every element.
#[inline(always)]
fn lanes(xs: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 16];
    let mut chunks = xs.chunks_exact(16);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = f(*a, x);
        }
    }
    let mut tail = [init; 16];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    for (a, &x) in acc.iter_mut().zip(&tail) {
        *a = f(*a, x);
    }
    for half in [8, 4, 2, 1] {
        for i in 0..half {
            acc[i] = f(acc[i], acc[i + half]);
        }
    }
    acc[0]
}

/// `x = exp(x)` for every element, 16 at a time (the last few in a padded register).
#[inline(always)]
fn exp_in_place(xs: &mut [f32]) {
    let mut chunks = xs.chunks_exact_mut(16);
    for chunk in &mut chunks {
        for x in chunk {
            *x = exp(*x);
        }
    }
    let rest = chunks.into_remainder();
    let mut tail = [0.0; 16];
    tail[..rest.len()].copy_from_slice(rest);
    for x in &mut tail {
        *x = exp(*x);
    }
    rest.copy_from_slice(&tail[..rest.len()]);
}

/// The largest value (NaNs aside), or `-∞` for none.
#[inline(always)]
pub fn max(xs: &[f32]) -> f32 {
    lanes(xs, f32::NEG_INFINITY, f32::max)
}

/// Softmax of one row of logits, in place: `y = exp(y - m) / Σ exp(y - m)` with
/// `m = max y`. Returns `(ln Σ exp(y - m), m)`, from which the loss of any target follows.
#[inline(always)]
pub fn softmax(y: &mut [f32]) -> (f32, f32) {
    let m = max(y);
    for v in y.iter_mut() {
        *v -= m;
    }
    exp_in_place(y);
    let sum = lanes(y, 0.0, |a, b| a + b);
    let scale = 1.0 / sum;
    for v in y.iter_mut() {
        *v *= scale;
    }
    (sum.ln(), m)
}

/// `tanh(x)` to within 4e-7 (3e-7 of approximation, the rest `f32` rounding), as a rational function: `x · P(x²) / Q(x²)` with `P` of degree 6
/// and `Q` of degree 3 in `x²`, on `x` clamped to `[-7.905, 7.905]` (beyond which `tanh` is 1 in
/// `f32` arithmetic). These are the coefficients of Eigen's fast `tanh`. Unlike the C library's
/// `tanhf`, it has no branches and no calls, so a loop of it runs in vector registers.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    const P: [f32; 7] = [
        4.893_524_6e-3,
        6.372_619_3e-4,
        1.485_722_4e-5,
        5.122_297e-8,
        -8.604_672e-11,
        2.000_188e-13,
        -2.760_768_5e-16,
    ];
    const Q: [f32; 4] = [4.893_525e-3, 2.268_434_6e-3, 1.185_347_1e-4, 1.198_258_4e-6];
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    let p = P[6];
    let p = p.mul_add(x2, P[5]).mul_add(x2, P[4]).mul_add(x2, P[3]);
    let p = p.mul_add(x2, P[2]).mul_add(x2, P[1]).mul_add(x2, P[0]);
    let q = Q[3].mul_add(x2, Q[2]).mul_add(x2, Q[1]).mul_add(x2, Q[0]);
    x * p / q
}

/// The logistic function `σ(x) = 1 / (1 + e^{-x})`, computed as `(1 + tanh(x/2)) / 2` (the
/// same function) with the branch-free [`tanh`], so that it vectorises too. Absolute error
/// below 3e-7; beyond |x| ≈ 15.8 it is exactly 0 or 1, where σ is within 1.4e-7 of them.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    0.5f32.mul_add(tanh(0.5 * x), 0.5)
}

/// `x = σ(x)` for every element.
#[inline(always)]
pub fn sigmoid_in_place(xs: &mut [f32]) {
    for x in xs {
        *x = sigmoid(*x);
    }
}

/// `y += x`, element by element.
#[inline(always)]
pub fn add_into(y: &mut [f32], x: &[f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += xi;
    }
}

/// `out = a + b`, element by element.
#[inline(always)]
pub fn sum_into(out: &mut [f32], a: &[f32], b: &[f32]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x + y;
    }
}

/// The LSTM's memory: `c = f ⊙ c_prev + i ⊙ g`, the first product fused with the sum.
#[inline(always)]
pub fn lstm_memory(c: &mut [f32], f: &[f32], c_prev: &[f32], i: &[f32], g: &[f32]) {
    for ((((c, &f), &cp), &i), &g) in c.iter_mut().zip(f).zip(c_prev).zip(i).zip(g) {
        *c = f.mul_add(cp, i * g);
    }
}

/// The LSTM's backward step at one row, element by element, from the gradient on its state
/// `ds = [dh, dc]` (2H) and its cached `gates = [i, f, g, o]` (4H, after their activations)
/// and `tanh_c` (H), with `c_prev` the memory before the step (read only with `PREV`; zero
/// without):
///
/// ```text
/// dc'  = dc + dh ⊙ o ⊙ (1 - tanh(c)²)
/// da_i = dc' ⊙ g ⊙ i ⊙ (1 - i)         da_f = dc' ⊙ c_prev ⊙ f ⊙ (1 - f)
/// da_g = dc' ⊙ i ⊙ (1 - g²)            da_o = dh ⊙ tanh(c) ⊙ o ⊙ (1 - o)
/// dc  ← dc' ⊙ f                        (c = f ⊙ c_prev + ...: the gradient on c_prev)
/// ```
///
/// into `da = [da_i, da_f, da_g, da_o]` (4H).
#[inline(always)]
pub fn lstm_backward<const PREV: bool>(
    ds: &mut [f32],
    gates: &[f32],
    tanh_c: &[f32],
    c_prev: &[f32],
    da: &mut [f32],
) {
    let h = tanh_c.len();
    let (dh, dc) = ds[..2 * h].split_at_mut(h);
    let (i, f) = (&gates[..h], &gates[h..2 * h]);
    let (g, o) = (&gates[2 * h..3 * h], &gates[3 * h..4 * h]);
    let (da_i, rest) = da[..4 * h].split_at_mut(h);
    let (da_f, rest) = rest.split_at_mut(h);
    let (da_g, da_o) = rest.split_at_mut(h);
    let c_prev = if PREV { &c_prev[..h] } else { &[][..] };
    for j in 0..h {
        let (ij, fj, gj, oj, tj) = (i[j], f[j], g[j], o[j], tanh_c[j]);
        let dcj = dc[j] + dh[j] * oj * (1.0 - tj * tj);
        let cp = if PREV { c_prev[j] } else { 0.0 };
        da_i[j] = dcj * gj * ij * (1.0 - ij);
        da_f[j] = dcj * cp * fj * (1.0 - fj);
        da_g[j] = dcj * ij * (1.0 - gj * gj);
        da_o[j] = dh[j] * tj * oj * (1.0 - oj);
        dc[j] = dcj * fj;
    }
}

/// One step of max pooling over time: where `x > max` (or at the first step, `t == 0`),
/// `max = x` and `arg = t`. A NaN never replaces a maximum.
#[inline(always)]
pub fn max_step(max: &mut [f32], arg: &mut [u32], x: &[f32], t: u32) {
    let first = t == 0;
    for ((m, a), &x) in max.iter_mut().zip(arg.iter_mut()).zip(x) {
        let take = first || x > *m;
        *m = if take { x } else { *m };
        *a = if take { t } else { *a };
    }
}

/// The GRU's mix: `h = (1 - z) ⊙ n + z ⊙ h_prev`, computed as `n + z ⊙ (h_prev - n)`, fused.
#[inline(always)]
pub fn gru_mix(h: &mut [f32], z: &[f32], h_prev: &[f32], n: &[f32]) {
    for (((h, &z), &p), &n) in h.iter_mut().zip(z).zip(h_prev).zip(n) {
        *h = z.mul_add(p - n, n);
    }
}

/// `x = tanh(x)` for every element.
#[inline(always)]
pub fn tanh_in_place(xs: &mut [f32]) {
    for x in xs {
        *x = tanh(*x);
    }
}

/// The backward step of `h = tanh(a)`: `da = (1 - h²) ⊙ dh`.
#[inline(always)]
pub fn tanh_backward(da: &mut [f32], dh: &[f32], h: &[f32]) {
    for ((d, &g), &y) in da.iter_mut().zip(dh).zip(h) {
        *d = (1.0 - y * y) * g;
    }
}

/// The SGD rule for one weight, with clipping: `w - lr · clamp(g, ±clip)`. Every SGD kernel
/// applies it in this form (a multiply, then a subtraction), so that they agree bit for bit.
#[inline(always)]
pub fn sgd_update(w: f32, g: f32, lr: f32, clip: f32) -> f32 {
    w - lr * g.clamp(-clip, clip)
}

/// One SGD update with clipping, resetting the gradient: `w -= lr · clamp(g, ±clip); g = 0`.
#[inline(always)]
pub fn sgd_step(w: &mut [f32], g: &mut [f32], lr: f32, clip: f32) {
    for (wi, gi) in w.iter_mut().zip(g.iter_mut()) {
        *wi = sgd_update(*wi, *gi, lr, clip);
        *gi = 0.0;
    }
}

/// Element `(p, j)` of `aᵀ · b` (`a` n×k, `b` n×m): `Σ_i a[i][p] · b[i][j]`, summed over the
/// rows in order, each term a multiply and then an add (as [`matmul_tn`] sums it).
#[inline(always)]
pub fn product_entry(a: &[f32], b: &[f32], k: usize, m: usize, p: usize, j: usize) -> f32 {
    let mut sum = 0.0;
    for (a_row, b_row) in a.chunks_exact(k).zip(b.chunks_exact(m)) {
        sum += a_row[p] * b_row[j];
    }
    sum
}

/// [`sgd_step`] on a gradient given as a product, `g = aᵀ · b` (`a` is n×k, `b` is n×m, `w`
/// is k×m), without storing it: `w[p][j] -= lr · clamp(Σ_i a[i][p] · b[i][j], ±clip)`.
#[inline(always)]
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
    debug_assert_eq!((w.len(), a.len(), b.len()), (k * m, n * k, n * m));
    for (p, w_row) in w.chunks_exact_mut(m).enumerate() {
        for (j, wj) in w_row.iter_mut().enumerate() {
            *wj = sgd_update(*wj, product_entry(a, b, k, m, p, j), lr, clip);
        }
    }
}

/// The constants of one Adam step (see [`crate::optim::Adam`]).
#[derive(Clone, Copy, Debug)]
pub struct AdamRule {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// `1 - β1ᵗ` and `1 - β2ᵗ`, the bias corrections of step `t`.
    pub correction1: f32,
    pub correction2: f32,
    pub clip: f32,
}

/// One Adam update with clipping, resetting the gradient.
#[inline(always)]
pub fn adam_step(w: &mut [f32], g: &mut [f32], m: &mut [f32], v: &mut [f32], rule: &AdamRule) {
    let AdamRule {
        lr,
        beta1: b1,
        beta2: b2,
        eps,
        correction1,
        correction2,
        clip,
    } = *rule;
    for (((wi, gi), mi), vi) in w.iter_mut().zip(g.iter_mut()).zip(m).zip(v) {
        let g = gi.clamp(-clip, clip);
        *mi = b1 * *mi + (1.0 - b1) * g;
        *vi = b2 * *vi + (1.0 - b2) * g * g;
        let m_hat = *mi / correction1;
        let v_hat = *vi / correction2;
        *wi -= lr * m_hat / (v_hat.sqrt() + eps);
        *gi = 0.0;
    }
}

/// One Adagrad update with clipping, resetting the gradient: `s += ĝ²`,
/// `w -= lr · ĝ / (√s + eps)`, with `ĝ = clamp(g, ±clip)`.
#[inline(always)]
pub fn adagrad_step(w: &mut [f32], g: &mut [f32], sum: &mut [f32], lr: f32, eps: f32, clip: f32) {
    for ((w, g), sum) in w.iter_mut().zip(g.iter_mut()).zip(sum) {
        let clipped = g.clamp(-clip, clip);
        *sum += clipped * clipped;
        *w -= lr * clipped / (sum.sqrt() + eps);
        *g = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `A` is 2×3, `B` is 3×2: small enough to multiply by hand.
    const A: [f32; 6] = [1., 2., 3., 4., 5., 6.];
    const B: [f32; 6] = [7., 8., 9., 10., 11., 12.];

    #[test]
    fn tanh_is_within_4e_7_of_the_exact_value_and_never_beyond_1() {
        let mut worst = 0.0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4; // -20 to 20
            let t = tanh(x);
            assert!(t.abs() <= 1.0, "tanh({x}) = {t}");
            worst = worst.max((f64::from(t) - f64::from(x).tanh()).abs());
        }
        assert!(worst < 4e-7, "worst error {worst}");
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(-2.0), -tanh(2.0));
    }

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
