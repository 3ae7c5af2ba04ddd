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
use fastfc::backend::cuda::launch::{Optimize, Rates};
use fastfc::backend::cuda::slot::{Rate, Slot};
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
    let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
    for (s, gr) in grads.iter().enumerate() {
        for (k, sl) in slots.iter().enumerate() {
            if sl.active == 0 {
                continue;
            }
            let r = k * c.stride..k * c.stride + n;
            optimizer_step(
                &c.specs[k].hp,
                sl.step0 as u64 + s as u64,
                steps,
                &mut p[r.clone()],
                &gr[r.clone()],
                &mut m[r.clone()],
                &mut v[r],
            );
        }
    }
    each_gpu(|g| {
        let sb = g.upload(&slots).unwrap();
        let (pb, mb, vb) = (
            g.upload(&p0).unwrap(),
            g.upload(&m0).unwrap(),
            g.upload(&v0).unwrap(),
        );
        let table = g.alloc::<Rate>(c.trials() * steps).unwrap();
        let rates = Rates {
            slots: sb.ptr(),
            steps: steps as i32,
            table: table.ptr(),
        };
        g.launch(&rates.launch(c.trials() as u32)).unwrap();
        for (s, gr) in grads.iter().enumerate() {
            let gb = g.upload(gr).unwrap();
            let k = Optimize {
                slots: sb.ptr(),
                n: n as i32,
                step: s as u32,
                table: table.ptr(),
                steps: steps as i32,
                params: pb.ptr(),
                grads: gb.ptr(),
                m: mb.ptr(),
                v: vb.ptr(),
            };
            g.launch(&k.launch(c.trials() as u32)).unwrap();
        }
        let (pg, mg, vg) = (
            g.read(&pb).unwrap(),
            g.read(&mb).unwrap(),
            g.read(&vb).unwrap(),
        );
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
