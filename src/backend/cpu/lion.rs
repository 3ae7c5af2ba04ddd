//! lion: one Lion step (Chen et al., 2023) over a flat parameter vector, as Keras 3 computes it:
//! p −= lr_t·sign(β1·m + (1 − β1)·g);  m = β2·m + (1 − β2)·g, with `l2`·p added to g first (L2
//! weight decay). sign(0) = 0, so zero-gradient, zero-moment (padded) parameters stay put.
//! Reference for `lion` in `kernels/optimizer.cuh` (tests/ops/lion.rs).

use super::flush;
use super::simd::simd_dispatch;

simd_dispatch! {
    /// One step over every parameter at the scheduled rate `lr`.
    pub fn step(p: &mut [f32], g: &[f32], m: &mut [f32], lr: f32, b1: f64, b2: f64, l2: f32) as step_portable, step_at {
        assert!(p.len() == g.len() && g.len() == m.len());
        // 1 − β from f64 (see adam.rs).
        let (c1, c2) = ((1.0 - b1) as f32, (1.0 - b2) as f32);
        let (b1, b2) = (b1 as f32, b2 as f32);
        for ((p, &g), m) in p.iter_mut().zip(g).zip(m.iter_mut()) {
            let g = g + l2 * *p;
            let c = b1 * *m + c1 * g;
            let s = if c > 0.0 {
                1.0
            } else if c < 0.0 {
                -1.0
            } else {
                0.0
            };
            *p -= lr * s;
            *m = flush(b2 * *m + c2 * g);
        }
    }
}
