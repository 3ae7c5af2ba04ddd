//! rmsprop: one RMSprop step (Hinton's lecture 6e), as Keras 3 computes it (uncentered):
//! v = ρ·v + (1 − ρ)·g²; Δ = lr_t·g/√(v + ε); p −= Δ, or with momentum μ: m = μ·m + Δ, p −= m.
//! L2 weight decay adds `l2`·p to g first. Reference for `rmsprop` in `kernels/optimizer.cuh`
//! (tests/ops/rmsprop.rs).

use super::flush;
use super::simd::simd_dispatch;

simd_dispatch! {
    /// One step over every parameter; `v` is the mean square, `m` the momentum buffer.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        lr: f32,
        rho: f64,
        momentum: f32,
        eps: f32,
        l2: f32,
    ) as step_portable, step_at {
        assert!(p.len() == g.len() && g.len() == m.len() && m.len() == v.len());
        let (r, c) = (rho as f32, (1.0 - rho) as f32);
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = g + l2 * *p;
            *v = flush(r * *v + c * (g * g));
            let inc = lr * g / (*v + eps).sqrt();
            if momentum > 0.0 {
                *m = flush(momentum * *m + inc);
                *p -= *m;
            } else {
                *p -= inc;
            }
        }
    }
}
