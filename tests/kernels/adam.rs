//! The `optimize` kernel's Adam rule over a cohort's arena against src/backend/cpu/adam.rs: several
//! steps from non-zero moments, per-trial step counters and learning rates, the α table from the
//! `rates` kernel; inactive trials (and here every non-Adam trial is made inactive) untouched.
//!
//! Tolerance: a bound on each element's difference derived from the terms of its formulas, not a
//! fraction of the result (which fails where `m + (g − m)·c1` cancels). Each side rounds every
//! operation by at most u = 2⁻²⁴ of what it produces, and a contracted FMA rounds once where the
//! written form rounds twice, so `|device − cpu| ≤ 2·k·u·Σ|terms|` for an expression of k
//! roundings, plus the earlier steps' differences carried through the update.

use fastfc::backend::cpu::adam;
use fastfc::backend::cuda::Gpu;
use fastfc::model::Optimizer;

use crate::{each_gpu, Cohort};

/// The unit roundoff of f32.
const U: f64 = 1.0 / (1u64 << 24) as f64;

#[test]
fn adam_matches_cpu_over_the_arena() {
    let c = Cohort::mixed(9, 2, &[32, 48, 64], 64, 10, 21);
    let mut slots = c.slots.clone();
    slots[4].active = 0;
    for sl in slots
        .iter_mut()
        .filter(|sl| sl.opt != Optimizer::Adam as u32)
    {
        sl.active = 0;
    }
    let n = c.pad.len;
    let len = c.trials() * c.stride;
    let p0 = crate::common::nonzero(len, 1);
    let m0: Vec<f32> = crate::common::nonzero(len, 3)
        .iter()
        .map(|v| v * 0.01)
        .collect();
    let v0: Vec<f32> = crate::common::nonzero(len, 4)
        .iter()
        .map(|v| v * v * 1e-4)
        .collect();
    let steps = 3u32;
    // CPU: each Adam trial's slice, steps t = step0 + s + 1.
    let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
    // Bounds on |device − cpu| of each element of p, m and v, carried from step to step.
    let (mut ep, mut em, mut ev) = (vec![0f64; len], vec![0f64; len], vec![0f64; len]);
    let mut grads_all = vec![];
    for s in 0..steps {
        let gr = crate::common::nonzero(len, 10 + s as u64);
        for (k, sl) in slots.iter().enumerate() {
            if sl.active == 0 || sl.opt != Optimizer::Adam as u32 {
                continue;
            }
            let r = k * c.stride..k * c.stride + n;
            let (m_old, v_old) = (m[r.clone()].to_vec(), v[r.clone()].to_vec());
            let t = (sl.step0 + s + 1) as f64;
            let alpha =
                (sl.lr as f64 * (1.0 - sl.b2.powf(t)).sqrt() / (1.0 - sl.b1.powf(t))) as f32 as f64;
            let (c1, c2, eps) = (sl.c1 as f64, sl.c2 as f64, sl.eps as f64);
            for (j, i) in r.clone().enumerate() {
                let (g, mo, vo) = (gr[i] as f64, m_old[j] as f64, v_old[j] as f64);
                // m += (g − m)·c1: 3 roundings (2 with FMA) over |m|, c1·|g|, c1·|m|.
                em[i] = (1.0 - c1) * em[i] + 2.0 * 3.0 * U * (mo.abs() + c1 * (g.abs() + mo.abs()));
                // v += (g² − v)·c2: 4 roundings over |v|, c2·g², c2·|v|.
                ev[i] = (1.0 - c2) * ev[i] + 2.0 * 4.0 * U * (vo.abs() + c2 * (g * g + vo.abs()));
                let (mn, vn) = (mo + (g - mo) * c1, vo + (g * g - vo) * c2);
                let den = vn.sqrt() + eps;
                let q = alpha * mn / den;
                // q = α·m/(√v + ε): m's difference scaled, √v's (e_v/2√v) relative to the
                // denominator, and 4 roundings of q itself; then p − q rounds once.
                let eq = alpha * em[i] / den
                    + q.abs() * (ev[i] / (2.0 * vn.sqrt() * den) + 2.0 * 4.0 * U);
                ep[i] += eq + 2.0 * U * (p[i] as f64 - q).abs();
            }
            adam::step(
                &mut p[r.clone()],
                &gr[r.clone()],
                &mut m[r.clone()],
                &mut v[r.clone()],
                adam::alpha(sl.lr, sl.b1, sl.b2, (sl.step0 + s + 1) as u64),
                sl.b1,
                sl.b2,
                sl.eps,
                0.0,
                0.0,
            );
        }
        grads_all.push(gr);
    }
    each_gpu(|g| {
        let [pg, mg, vg] = crate::optimize_steps(g, &c, &slots, [&p0, &m0, &v0], &grads_all);
        for i in 0..len {
            let (k, j) = (i / c.stride, i % c.stride);
            let touched = j < n && slots[k].active == 1 && slots[k].opt == Optimizer::Adam as u32;
            for (what, got, want, before) in [
                ("param", pg[i], p[i], p0[i]),
                ("m", mg[i], m[i], m0[i]),
                ("v", vg[i], v[i], v0[i]),
            ] {
                if touched {
                    let tol = match what {
                        "param" => ep[i],
                        "m" => em[i],
                        _ => ev[i],
                    } as f32;
                    assert!((got - want).abs() <= tol,
                        "adam {what} on {}: trial {k} element {j}: got {got} vs want {want} (tolerance {tol:e})", g.name());
                } else {
                    assert!(
                        got.to_bits() == before.to_bits(),
                        "adam touched {what} of trial {k} element {j} (opt {}, active {})",
                        slots[k].opt,
                        slots[k].active
                    );
                }
            }
        }
    });
}
