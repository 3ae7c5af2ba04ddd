//! adagrad: one Adagrad step (Duchi et al., 2011), as Keras 3 computes it: the accumulator
//! (starting at 0.1, `model::ADAGRAD_INITIAL`) a += g²; p −= lr_t·g/√(a + ε). L2 weight decay adds
//! `l2`·p to g first. Reference for `adagrad` in `kernels/optimizer.cuh` (tests/ops/adagrad.rs).

use super::simd::simd_dispatch;

simd_dispatch! {
    /// One step over every parameter; `acc` is the accumulator.
    pub fn step(p: &mut [f32], g: &[f32], acc: &mut [f32], lr: f32, eps: f32, l2: f32) as step_portable, step_at {
        assert!(p.len() == g.len() && g.len() == acc.len());
        for ((p, &g), a) in p.iter_mut().zip(g).zip(acc.iter_mut()) {
            let g = g + l2 * *p;
            *a += g * g;
            *p -= lr * g / (*a + eps).sqrt();
        }
    }
}
