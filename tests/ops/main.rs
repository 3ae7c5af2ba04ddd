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

/// The levels whose copies of the dispatched loops are compared with the portable loop: every
/// SIMD level this CPU runs (not `Portable`, which is that loop). Where that leaves out AVX2 or
/// AVX-512, the test says so rather than pass as if it had compared those copies.
pub fn simd_levels() -> Vec<fastfc::backend::cpu::simd::Level> {
    use fastfc::backend::cpu::simd::Level;
    let levels: Vec<Level> = Level::available()
        .into_iter()
        .filter(|&l| l != Level::Portable)
        .collect();
    for missing in [Level::Avx2, Level::Avx512]
        .iter()
        .filter(|l| !levels.contains(l))
    {
        eprintln!("note: this CPU does not run {missing:?}: that copy of the loop is not compared");
    }
    levels
}
