//! sgd: one step of stochastic gradient descent, as Keras 3's `SGD` computes it. Without momentum
//! p −= lr_t·g; with momentum μ: m = μ·m − lr_t·g, then p += m, or with Nesterov
//! p += μ·m − lr_t·g. L2 weight decay adds `l2`·p to g first. Reference for `sgd` in
//! `kernels/optimizer.cuh` (tests/ops/sgd.rs).

use super::flush;
use super::simd::simd_dispatch;

simd_dispatch! {
    /// One step over every parameter; `m` is the momentum buffer (untouched when μ = 0).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        lr: f32,
        momentum: f32,
        nesterov: bool,
        l2: f32,
    ) as step_portable, step_at {
        assert!(p.len() == g.len() && g.len() == m.len());
        if momentum == 0.0 {
            for (p, &g) in p.iter_mut().zip(g) {
                let g = g + l2 * *p;
                *p -= lr * g;
            }
            return;
        }
        for ((p, &g), m) in p.iter_mut().zip(g).zip(m.iter_mut()) {
            let g = g + l2 * *p;
            *m = flush(momentum * *m - lr * g);
            *p += if nesterov { momentum * *m - lr * g } else { *m };
        }
    }
}
