//! The `optimize` kernel's Lion rule over a cohort's arena against src/backend/cpu/lion.rs;
//! inactive trials (here every non-Lion trial is made inactive) untouched, zero (padded)
//! parameters stay zero.
//!
//! Tolerance: bounds derived from the terms of each formula (see tests/kernels/adam.rs). Where
//! the interpolation `c = β1·m + (1 − β1)·g` lies within its own rounding bound of 0, its sign
//! may differ between CPU and device and the parameter by 2·lr; such elements are counted and
//! must stay rare, so the check cannot pass by calling everything ambiguous.

use fastfc::backend::cpu::lion;
use fastfc::backend::cuda::Gpu;
use fastfc::model::Optimizer;

use crate::{each_gpu, Cohort};

/// The unit roundoff of f32.
const U: f64 = 1.0 / (1u64 << 24) as f64;

#[test]
fn lion_matches_cpu_over_the_arena() {
    let c = Cohort::mixed(9, 3, &[32, 48, 64], 64, 10, 22);
    let mut slots = c.slots.clone();
    slots[2].active = 0;
    for sl in slots
        .iter_mut()
        .filter(|sl| sl.opt != Optimizer::Lion as u32)
    {
        sl.active = 0;
    }
    let n = c.pad.len;
    let len = c.trials() * c.stride;
    let p0 = c.arena(5); // padded entries are 0, gaps NaN
    let m0: Vec<f32> = p0
        .iter()
        .map(|&v| if v.is_nan() { f32::NAN } else { v * 0.01 })
        .collect();
    let steps = 3u32;
    let (mut p, mut m) = (p0.clone(), m0.clone());
    let (mut ep, mut em) = (vec![0f64; len], vec![0f64; len]);
    let mut ambiguous = 0usize;
    let mut grads_all = vec![];
    for s in 0..steps {
        // Gradients zero where the parameter is padding (as the backward pass produces).
        let gr: Vec<f32> = crate::common::nonzero(len, 30 + s as u64)
            .iter()
            .zip(&p0)
            .map(|(gv, pv)| if *pv == 0.0 { 0.0 } else { *gv })
            .collect();
        for (k, sl) in slots.iter().enumerate() {
            if sl.active == 0 || sl.opt != Optimizer::Lion as u32 {
                continue;
            }
            let r = k * c.stride..k * c.stride + n;
            let (b1, c1, b2, c2) = (sl.b1f as f64, sl.c1 as f64, sl.b2f as f64, sl.c2 as f64);
            for i in r.clone() {
                let (g, mo, po) = (gr[i] as f64, m[i] as f64, p[i] as f64);
                // c: 2 roundings (1 with FMA) over β1·|m|, c1·|g|, plus m's carried difference.
                let cv = b1 * mo + c1 * g;
                let ec = b1 * em[i] + 2.0 * 2.0 * U * (b1 * mo.abs() + c1 * g.abs());
                if cv.abs() <= ec && cv != 0.0 {
                    ambiguous += 1;
                    ep[i] += 2.0 * sl.lr as f64;
                }
                let sgn = cv.signum() * (cv != 0.0) as u8 as f64;
                ep[i] += 2.0 * U * (po - sl.lr as f64 * sgn).abs();
                em[i] = b2 * em[i] + 2.0 * 2.0 * U * (b2 * mo.abs() + c2 * g.abs());
            }
            lion::step(
                &mut p[r.clone()],
                &gr[r.clone()],
                &mut m[r.clone()],
                sl.lr,
                sl.b1,
                sl.b2,
                0.0,
            );
        }
        grads_all.push(gr);
    }
    assert!(
        ambiguous * 1000 < len,
        "{ambiguous} of {len} elements have a sign within rounding of 0: the inputs test nothing"
    );
    each_gpu(|g| {
        // Lion has no second buffer; the kernel is given one (any trial of a cohort might).
        let [pg, mg, _] =
            crate::optimize_steps(g, &c, &slots, [&p0, &m0, &vec![0f32; len]], &grads_all);
        for i in 0..len {
            let (k, j) = (i / c.stride, i % c.stride);
            let touched = j < n && slots[k].active == 1 && slots[k].opt == Optimizer::Lion as u32;
            for (what, got, want, before) in
                [("param", pg[i], p[i], p0[i]), ("m", mg[i], m[i], m0[i])]
            {
                if touched {
                    let tol = if what == "param" { ep[i] } else { em[i] } as f32;
                    assert!((got - want).abs() <= tol,
                        "lion {what} on {}: trial {k} element {j}: got {got} vs want {want} (tolerance {tol:e})", g.name());
                    if before == 0.0 {
                        assert_eq!(got, 0.0, "padded {what} moved: trial {k} element {j}");
                    }
                } else {
                    assert!(
                        got.to_bits() == before.to_bits(),
                        "lion touched {what} of trial {k} element {j}"
                    );
                }
            }
        }
    });
}
