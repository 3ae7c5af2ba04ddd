//! adam: one Adam step over a flat parameter vector, as Keras 3 computes it:
//! α = lr·√(1 − β2ᵗ)/(1 − β1ᵗ); m += (g − m)(1 − β1); v += (g² − v)(1 − β2); p −= α·m/(√v + ε).
//! `t` is the 1-based step. Reference for `kernels/adam.cu` (tests/ops/adam.rs).

use super::simd::avx2_dispatch;

avx2_dispatch! {
    /// One step over every parameter.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        lr: f32,
        b1: f64,
        b2: f64,
        eps: f32,
        t: u64,
    ) / step_portable {
        assert!(p.len() == g.len() && g.len() == m.len() && m.len() == v.len());
        let alpha =
            (lr as f64 * (1.0 - b2.powf(t as f64)).sqrt() / (1.0 - b1.powf(t as f64))) as f32;
        // 1 − β from f64 (1 − 0.999f32 is off by 1.3e-5 relative); the update only needs 1 − β.
        let (c1, c2) = ((1.0 - b1) as f32, (1.0 - b2) as f32);
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m += (g - *m) * c1;
            *v += (g * g - *v) * c2;
            *p -= alpha * *m / (v.sqrt() + eps);
        }
    }
}
