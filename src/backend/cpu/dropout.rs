//! dropout (inverted, training only): unit `u` of row `r` in layer `l` at optimizer step `t` is kept
//! when unit_f32(hash5(seed, t, l, r, u)) ≥ rate, and kept units are scaled by 1/(1 − rate).
//! Stateless, so CPU, emulated and real-GPU masks agree bit for bit. Reference for
//! `kernels/dropout.cu` (tests/ops/dropout.rs).

use super::simd::simd_dispatch;
use super::Real;
use crate::rng::{hash_last, hash_prefix, hash_row, unit_f32};

simd_dispatch! {
    /// Fills `mask` (rows, width) with 0 or 1/(1 − rate).
    pub fn mask(
        seed: u32,
        step: u32,
        layer: u32,
        rows: usize,
        width: usize,
        rate: f32,
        mask: &mut [f32],
    ) as mask_portable, mask_at {
        let keep_scale = 1.0 / (1.0 - rate);
        let prefix = hash_prefix(seed, step, layer);
        for (r, row) in mask[..rows * width].chunks_exact_mut(width.max(1)).enumerate() {
            let hr = hash_row(prefix, r as u32);
            for (u, m) in row.iter_mut().enumerate() {
                *m = if unit_f32(hash_last(hr, u as u32)) >= rate {
                    keep_scale
                } else {
                    0.0
                };
            }
        }
    }
}

/// y = x ⊙ mask (forward) — and, since the mask is a constant, dx = dy ⊙ mask (backward).
pub fn apply<T: Real>(x: &[T], mask: &[T], y: &mut [T]) {
    assert!(x.len() == mask.len() && mask.len() == y.len());
    for i in 0..x.len() {
        y[i] = x[i] * mask[i];
    }
}
