//! adam: one Adam or AdamW step over a flat parameter vector, as Keras 3 computes it:
//! AdamW first decays p −= (wd·lr_t)·p (decoupled); then m += (g − m)(1 − β1);
//! v += (g² − v)(1 − β2); p −= α·m/(√v + ε), α = lr_t·√(1 − β2ᵗ)/(1 − β1ᵗ) for the 1-based step t
//! ([`alpha`]; `crate::schedule::rate` gives it with the schedule's lr_t). Adam's L2 weight decay
//! adds `l2`·p to the gradient first. Reference for `adam` in `kernels/optimizer.cuh`
//! (tests/ops/adam.rs).

use super::flush;
use super::simd::simd_dispatch;

/// Adam's bias-corrected step size at 1-based step `t`, in f64 and rounded once.
pub fn alpha(lr: f32, b1: f64, b2: f64, t: u64) -> f32 {
    (lr as f64 * (1.0 - b2.powf(t as f64)).sqrt() / (1.0 - b1.powf(t as f64))) as f32
}

simd_dispatch! {
    /// One step over every parameter: `alpha` from [`alpha`], `decay` = wd·lr_t (AdamW; 0 for
    /// Adam), `l2` the L2 coefficient (Adam; 0 for AdamW).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        alpha: f32,
        b1: f64,
        b2: f64,
        eps: f32,
        l2: f32,
        decay: f32,
    ) as step_portable, step_at {
        assert!(p.len() == g.len() && g.len() == m.len() && m.len() == v.len());
        // 1 − β from f64 (1 − 0.999f32 is off by 1.3e-5 relative); the update only needs 1 − β.
        let (c1, c2) = ((1.0 - b1) as f32, (1.0 - b2) as f32);
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = g + l2 * *p;
            *p -= *p * decay;
            *m = flush(*m + (g - *m) * c1);
            *v = flush(*v + (g * g - *v) * c2);
            *p -= alpha * *m / (v.sqrt() + eps);
        }
    }
}
