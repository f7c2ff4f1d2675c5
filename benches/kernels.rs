//! Micro-benchmarks of the matrix products at the model's shapes: the dispatched kernels
//! against the plain reference loops, run in the same process.
//!
//! `cargo bench --bench kernels`; divan prints the time per call, from which
//! GFLOP/s = 2·n·k·m / time.

use divan::{Bencher, black_box};
use rnn::kernels::{self, reference};
use rnn::rng::Rng;

fn main() {
    println!("kernels dispatched for: {:?}", kernels::isa());
    divan::main();
}

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.symmetric(1.0) as f32).collect()
}

/// (n, k, m): one sequence at H = 64 and 100; batches of 16, 32 and 64 at H = 100 and 128; a
/// weight gradient over 25 and 640 tokens; a step of 16 rows of a 256-unit LSTM, forward and
/// backward.
const SHAPES: [(usize, usize, usize); 9] = [
    (1, 64, 64),
    (1, 100, 100),
    (16, 100, 100),
    (25, 85, 100),
    (32, 128, 128),
    (64, 128, 128),
    (640, 128, 128),
    (16, 256, 1024),
    (16, 1024, 256),
];

type Kernel = fn(&mut [f32], &[f32], &[f32], usize, usize, usize);

fn run(bencher: Bencher, (n, k, m): (usize, usize, usize), kernel: Kernel, transposed_a: bool) {
    let a = random(n * k, 1);
    let b = random(k * m, 2);
    let mut out = if transposed_a {
        random(k * m, 3)
    } else {
        random(n * m, 3)
    };
    bencher
        .counter(divan::counter::ItemsCount::new(2 * n * k * m))
        .bench_local(|| kernel(black_box(&mut out), black_box(&a), black_box(&b), n, k, m));
}

#[divan::bench(args = SHAPES)]
fn nt_fast(bencher: Bencher, shape: (usize, usize, usize)) {
    run(bencher, shape, kernels::matmul_nt, false);
}

#[divan::bench(args = SHAPES)]
fn nt_reference(bencher: Bencher, shape: (usize, usize, usize)) {
    run(bencher, shape, reference::matmul_nt, false);
}

#[divan::bench(args = SHAPES)]
fn nn_fast(bencher: Bencher, shape: (usize, usize, usize)) {
    run(bencher, shape, kernels::matmul_nn, false);
}

#[divan::bench(args = SHAPES)]
fn nn_reference(bencher: Bencher, shape: (usize, usize, usize)) {
    run(bencher, shape, reference::matmul_nn, false);
}

/// For `tn`, `a` is n×k and `b` is n×m: (n, k, m) = (tokens, H, H).
fn run_tn(bencher: Bencher, (n, k, m): (usize, usize, usize), kernel: Kernel) {
    let a = random(n * k, 1);
    let b = random(n * m, 2);
    let mut out = random(k * m, 3);
    bencher
        .counter(divan::counter::ItemsCount::new(2 * n * k * m))
        .bench_local(|| kernel(black_box(&mut out), black_box(&a), black_box(&b), n, k, m));
}

#[divan::bench(args = SHAPES)]
fn tn_fast(bencher: Bencher, shape: (usize, usize, usize)) {
    run_tn(bencher, shape, kernels::matmul_tn);
}

#[divan::bench(args = SHAPES)]
fn tn_reference(bencher: Bencher, shape: (usize, usize, usize)) {
    run_tn(bencher, shape, reference::matmul_tn);
}

#[divan::bench(args = SHAPES)]
fn nt_gemm(bencher: Bencher, shape: (usize, usize, usize)) {
    run(bencher, shape, kernels::gemm_nt, false);
}

#[divan::bench(args = SHAPES)]
fn nn_gemm(bencher: Bencher, shape: (usize, usize, usize)) {
    run(bencher, shape, kernels::gemm_nn, false);
}

/// `matmul_nn` with `b` laid out once by `kernels::pack` (the recurrent step's weights, read at
/// every step of a pass): the layout and the product this CPU's kernels choose.
#[divan::bench(args = SHAPES)]
fn nn_packed(bencher: Bencher, (n, k, m): (usize, usize, usize)) {
    let a = random(n * k, 1);
    let b = random(k * m, 2);
    let mut packed = vec![0.0; kernels::packed_len(k, m)];
    kernels::pack(&mut packed, &b, k, m, false);
    let mut out = random(n * m, 3);
    bencher
        .counter(divan::counter::ItemsCount::new(2 * n * k * m))
        .bench_local(|| {
            kernels::matmul_packed(
                black_box(&mut out),
                black_box(&a),
                black_box(&packed),
                n,
                k,
                m,
            )
        });
}

#[divan::bench(args = SHAPES)]
fn tn_gemm(bencher: Bencher, shape: (usize, usize, usize)) {
    run_tn(bencher, shape, kernels::gemm_tn);
}

#[cfg(target_arch = "x86_64")]
#[divan::bench(args = SHAPES)]
fn nt_avx2(bencher: Bencher, shape: (usize, usize, usize)) {
    if kernels::isa() == kernels::Isa::Baseline {
        return;
    }
    fn kernel(out: &mut [f32], a: &[f32], b: &[f32], n: usize, k: usize, m: usize) {
        // SAFETY: the CPU has AVX2 and FMA (checked above).
        unsafe { kernels::avx2::matmul_nt(out, a, b, n, k, m) }
    }
    run(bencher, shape, kernel, false);
}

/// One sentence's SGD update of `Whh` (H = 64) from its gradient's factors (6 tokens after the
/// first): formed and stored, then applied, against formed in registers and applied at once.
const UPDATE_ROWS: [usize; 2] = [6, 24];

#[divan::bench(args = UPDATE_ROWS)]
fn sgd_formed_then_stepped(bencher: Bencher, n: usize) {
    let (a, b, mut w, mut g) = (
        random(n * 64, 1),
        random(n * 64, 2),
        random(64 * 64, 3),
        vec![0.0; 64 * 64],
    );
    bencher.bench_local(|| {
        kernels::matmul_tn(black_box(&mut g), black_box(&a), black_box(&b), n, 64, 64);
        kernels::sgd_step(black_box(&mut w), &mut g, 1e-9, 1.0);
    });
}

#[divan::bench(args = UPDATE_ROWS)]
fn sgd_product_step(bencher: Bencher, n: usize) {
    let (a, b, mut w) = (random(n * 64, 1), random(n * 64, 2), random(64 * 64, 3));
    bencher.bench_local(|| {
        kernels::sgd_product_step(
            black_box(&mut w),
            black_box(&a),
            black_box(&b),
            n,
            64,
            64,
            1e-9,
            1.0,
        )
    });
}
