//! One test binary for every op: the f32 engine against the textbook reference (the dense layers
//! through the small-shape GEMM of `gemm`, whose kernels are checked against each other too; and, in the
//! kernels issue, the CUDA kernels against the same reference). One module per op, named as the
//! op is everywhere (`dense`, `activation`, `dropout`, `softmax_xent`, `adam` (and AdamW), `lion`, `sgd`,
//! `rmsprop`, `adagrad`, and the learning-rate `schedule`).

#[path = "../common/mod.rs"]
mod common;

mod activation;
mod adagrad;
mod adam;
mod dense;
mod dropout;
mod gemm;
mod lion;
mod rmsprop;
mod schedule;
mod sgd;
mod softmax_xent;

/// The AVX2-vs-portable tests compare two compiled copies of a loop only where the CPU runs the
/// AVX2 one; elsewhere the dispatched loop is the portable loop itself, and the test says so
/// rather than pass as if it had compared anything.
pub fn say_if_no_avx2() {
    if !fastfc::backend::cpu::simd::has_avx2() {
        eprintln!(
            "note: this CPU has no AVX2+FMA: the dispatched loop is the portable one, so this test compares it with itself"
        );
    }
}
