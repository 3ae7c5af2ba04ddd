//! One test binary for every op: the f32 engine against the textbook reference (and, in the
//! kernels issue, the CUDA kernels against the same reference). One module per op, named as the
//! op is everywhere (`dense`, `activation`, `dropout`, `softmax_xent`, `adam`, `lion`).

#[path = "../common/mod.rs"]
mod common;

mod activation;
mod adam;
mod dense;
mod dropout;
mod lion;
mod softmax_xent;
