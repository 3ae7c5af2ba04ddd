//! The `optimize` kernel (kernels/optimizer.cu) and its `rates` table against the CPU's
//! `optimizer_step` (src/backend/cpu/mod.rs) on a cohort of every optimizer with its knobs:
//! momentum and Nesterov, RMSprop's ρ with momentum, L2 and AdamW's decoupled decay, β1, and each
//! schedule (warmup included), several steps from non-zero buffers and per-trial step counts.
//! Padding (zero parameters with zero gradients) stays zero; inactive trials are untouched.
//!
//! Tolerance: each side rounds every operation to f32 (the FMA build contracts some); the
//! difference allowed is 16 ulp of the parameter's size plus 1e-5 of what the steps moved it,
//! ample for rounding and far below a wrong rule (a missed decay moves p by wd·lr·p, a missed
//! momentum by μ·m). Lion, whose sign can flip on a rounding, has its own test (lion.rs).

use fastfc::backend::cpu::optimizer_step;
use fastfc::backend::cuda::slot::Slot;
use fastfc::backend::cuda::Gpu;
use fastfc::model::{Optimizer, Schedule};

use crate::{each_gpu, Cohort};

#[test]
fn every_optimizer_with_its_knobs_matches_cpu_over_the_arena() {
    let mut c = Cohort::mixed(11, 2, &[32, 48, 64], 64, 10, 23);
    type Knobs = fn(&mut fastfc::model::Hyperparams);
    let knobs: [(Optimizer, Knobs); 11] = [
        (Optimizer::Adam, |_| {}),
        (Optimizer::Adam, |h| {
            h.beta_1 = Some(0.8);
            h.weight_decay = Some(1e-2);
            h.schedule = Schedule::Exponential {
                decay_rate: 0.5,
                decay_epochs: 1.0,
            };
        }),
        (Optimizer::Adamw, |_| {}),
        (Optimizer::Adamw, |h| {
            h.weight_decay = Some(0.05);
            h.schedule = Schedule::Cosine {
                decay_epochs: 3.0,
                warmup_epochs: 0.5,
            };
        }),
        (Optimizer::Sgd, |_| {}),
        (Optimizer::Sgd, |h| h.momentum = Some(0.9)),
        (Optimizer::Sgd, |h| {
            h.momentum = Some(0.9);
            h.nesterov = Some(true);
            h.weight_decay = Some(1e-2);
            h.schedule = Schedule::Step {
                decay_rate: 0.5,
                decay_epochs: 1.0,
            };
        }),
        (Optimizer::Rmsprop, |_| {}),
        (Optimizer::Rmsprop, |h| {
            h.rho = Some(0.7);
            h.momentum = Some(0.5);
            h.weight_decay = Some(1e-2);
        }),
        (Optimizer::Adagrad, |_| {}),
        (Optimizer::Adagrad, |h| {
            h.weight_decay = Some(1e-2);
            h.schedule = Schedule::Cosine {
                decay_epochs: 2.0,
                warmup_epochs: 0.0,
            };
        }),
    ];
    for (k, (opt, set)) in knobs.iter().enumerate() {
        let spec = &mut c.specs[k];
        spec.hp.optimizer = *opt;
        set(&mut spec.hp);
        spec.hp.validate().unwrap();
        // Early steps, so every schedule still moves its trial (warmup, mid-decay).
        c.slots[k] = Slot::new(spec, (k * c.stride) as u32, (k % 4) as u64);
    }
    let mut slots = c.slots.clone();
    slots[4].active = 0;
    let (n, len, steps) = (c.pad.len, c.trials() * c.stride, 4usize);
    let p0 = c.arena(7); // padded entries 0, gaps NaN
    let buf = |seed: u64, scale: f32| -> Vec<f32> {
        crate::common::nonzero(len, seed)
            .iter()
            .zip(&p0)
            .map(|(x, p)| {
                if p.is_nan() {
                    f32::NAN
                } else if *p == 0.0 {
                    0.0
                } else {
                    (x * scale).abs()
                }
            })
            .collect()
    };
    // m: signed for the momenta, positive for Adagrad's accumulator; v ≥ 0.
    let (m0, v0) = (buf(8, 0.05), buf(9, 0.01));
    let grads: Vec<Vec<f32>> = (0..steps)
        .map(|s| {
            crate::common::nonzero(len, 40 + s as u64)
                .iter()
                .zip(&p0)
                .map(|(g, p)| if *p == 0.0 { 0.0 } else { *g })
                .collect()
        })
        .collect();
    let [p, m, v] = on_cpu(&c, &slots, [&p0, &m0, &v0], &grads);
    each_gpu(|g| {
        let [pg, mg, vg] = crate::optimize_steps(g, &c, &slots, [&p0, &m0, &v0], &grads);
        let (mut moved, mut movable) = (0usize, 0usize);
        for i in 0..len {
            let (k, j) = (i / c.stride, i % c.stride);
            let live = j < n && slots[k].active == 1;
            for (what, got, want, before) in [
                ("param", pg[i], p[i], p0[i]),
                ("m", mg[i], m[i], m0[i]),
                ("v", vg[i], v[i], v0[i]),
            ] {
                if live {
                    let tol = 16.0 * f32::EPSILON * want.abs().max(before.abs())
                        + 1e-5 * (want - before).abs();
                    assert!(
                        (got - want).abs() <= tol,
                        "{} {what} on {}: trial {k} element {j}: got {got} vs want {want} (from {before}, tolerance {tol:e})",
                        c.specs[k].hp.optimizer,
                        g.name()
                    );
                    if what == "param" && before != 0.0 {
                        movable += 1;
                        moved += (got != before) as usize;
                    }
                    if before == 0.0 && what == "param" {
                        assert_eq!(got, 0.0, "padding of trial {k} moved");
                    }
                } else {
                    assert_eq!(
                        got.to_bits(),
                        before.to_bits(),
                        "{what} of trial {k} element {j} touched (active {})",
                        slots[k].active
                    );
                }
            }
        }
        assert!(
            moved * 10 > movable * 9,
            "only {moved} of {movable} parameters moved: the test tests nothing"
        );
    });
}

/// A weight that stops getting gradient decays its moments toward 0; below f32's smallest normal
/// both sides store 0 (`cpu::flush`, `ffc_flush`), so neither carries subnormals (which cost the
/// CPU a hundred cycles an operation and, under m·β, never reach 0 by themselves). Moments start
/// just above the smallest normal and see zero gradients; every momentum optimizer with a
/// decaying buffer, Adam's v included. Without the flush they would end subnormal, not 0.
#[test]
fn decaying_moments_flush_to_zero_on_both_sides() {
    let mut c = Cohort::mixed(5, 2, &[32, 48], 64, 10, 29);
    type Knobs = fn(&mut fastfc::model::Hyperparams);
    let knobs: [(Optimizer, Knobs); 5] = [
        (Optimizer::Adam, |_| {}),
        (Optimizer::Adamw, |_| {}),
        (Optimizer::Lion, |_| {}),
        (Optimizer::Sgd, |h| h.momentum = Some(0.9)),
        (Optimizer::Rmsprop, |h| h.momentum = Some(0.5)),
    ];
    for (k, (opt, set)) in knobs.iter().enumerate() {
        let spec = &mut c.specs[k];
        spec.hp.optimizer = *opt;
        set(&mut spec.hp);
        spec.hp.validate().unwrap();
        c.slots[k] = Slot::new(spec, (k * c.stride) as u32, 0);
    }
    let slots = c.slots.clone();
    let p0 = c.arena(3);
    let small = f32::MIN_POSITIVE;
    // Live entries: |m| in [1.01, 1.05)·min normal, either sign, which Lion's β2 = 0.99 takes
    // under in at most 5 steps; v in [1, 1.004)·min normal, which Adam's β2 = 0.999 takes under in
    // at most 4 steps.
    let m0: Vec<f32> = crate::common::nonzero(p0.len(), 5)
        .iter()
        .zip(&p0)
        .map(|(x, p)| match p {
            p if p.is_nan() => f32::NAN,
            0.0 => 0.0, // padding: zero parameter, zero buffers
            _ => x.signum() * small * (1.01 + 0.04 * x.abs().min(1.0)),
        })
        .collect();
    let v0: Vec<f32> = crate::common::nonzero(p0.len(), 6)
        .iter()
        .zip(&p0)
        .map(|(x, p)| match p {
            p if p.is_nan() => f32::NAN,
            0.0 => 0.0,
            _ => small * (1.0 + 0.004 * x.abs().min(1.0)),
        })
        .collect();
    let grads = vec![
        p0.iter()
            .map(|p| if p.is_nan() { f32::NAN } else { 0.0 })
            .collect::<Vec<f32>>();
        12
    ];
    let [p, m, v] = on_cpu(&c, &slots, [&p0, &m0, &v0], &grads);
    let live = |i: usize| i % c.stride < c.pad.len;
    for i in (0..p0.len()).filter(|&i| live(i)) {
        let (k, opt) = (i / c.stride, c.specs[i / c.stride].hp.optimizer);
        assert_eq!(
            m[i].to_bits(),
            0,
            "cpu {opt} (trial {k}) element {i}: m = {:e}, not flushed",
            m[i]
        );
        if opt.has_v() {
            assert_eq!(
                v[i].to_bits(),
                0,
                "cpu {opt} (trial {k}) element {i}: v = {:e}, not flushed",
                v[i]
            );
        }
        // What the flushed moments could have moved a weight by rounds away. Not so for AdamW
        // (its decoupled decay goes on) and Lion (sign(m) moves a weight by the whole rate until
        // m is flushed: with subnormals kept, a dead unit's weights would drift forever).
        if !matches!(opt, Optimizer::Adamw | Optimizer::Lion) {
            assert_eq!(
                p[i].to_bits(),
                p0[i].to_bits(),
                "cpu {opt}: weight {i} moved"
            );
        }
    }
    each_gpu(|g| {
        let got = crate::optimize_steps(g, &c, &slots, [&p0, &m0, &v0], &grads);
        for (what, got, want) in [
            ("param", &got[0], &p),
            ("m", &got[1], &m),
            ("v", &got[2], &v),
        ] {
            for i in (0..p0.len()).filter(|&i| live(i)) {
                let opt = c.specs[i / c.stride].hp.optimizer;
                if what == "v" && !opt.has_v() {
                    continue;
                }
                if what == "param" && opt == Optimizer::Adamw {
                    // p −= p·wd·lr contracts into an FMA on a GPU: one rounding fewer.
                    let tol = 2.0 * f32::EPSILON * want[i].abs();
                    assert!(
                        (got[i] - want[i]).abs() <= tol,
                        "adamw param element {i} on {}: {:e} vs the cpu's {:e}",
                        g.name(),
                        got[i],
                        want[i]
                    );
                    continue;
                }
                assert_eq!(
                    got[i].to_bits(),
                    want[i].to_bits(),
                    "{opt} {what} element {i} on {}: {:e} vs the cpu's {:e}",
                    g.name(),
                    got[i],
                    want[i]
                );
            }
        }
    });
}

/// Parameters, first and second buffers after one CPU `optimizer_step` per gradient in `grads`
/// for every active slot, from `bufs` (arena-shaped, as the kernels see them).
fn on_cpu(c: &Cohort, slots: &[Slot], bufs: [&[f32]; 3], grads: &[Vec<f32>]) -> [Vec<f32>; 3] {
    let [mut p, mut m, mut v] = bufs.map(|b| b.to_vec());
    for (s, gr) in grads.iter().enumerate() {
        for (k, sl) in slots.iter().enumerate() {
            if sl.active == 0 {
                continue;
            }
            let r = k * c.stride..k * c.stride + c.pad.len;
            optimizer_step(
                &c.specs[k].hp,
                sl.step0 as u64 + s as u64,
                grads.len(),
                &mut p[r.clone()],
                &gr[r.clone()],
                &mut m[r.clone()],
                &mut v[r],
            );
        }
    }
    [p, m, v]
}
