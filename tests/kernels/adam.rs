//! adam over a cohort's arena against src/backend/cpu/adam.rs: several steps from non-zero
//! moments, per-trial step counters and learning rates; Lion and inactive trials untouched.

use fastfc::backend::cpu::adam;
use fastfc::backend::cuda::launch::Adam;
use fastfc::backend::cuda::Gpu;
use fastfc::model::Optimizer;

use crate::{each_gpu, Cohort};

#[test]
fn adam_matches_cpu_over_the_arena() {
    let c = Cohort::mixed(9, 2, &[32, 48, 64], 64, 10, 21);
    let mut slots = c.slots.clone();
    slots[4].active = 0;
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
    let mut grads_all = vec![];
    for s in 0..steps {
        let gr = crate::common::nonzero(len, 10 + s as u64);
        for (k, sl) in slots.iter().enumerate() {
            if sl.active == 0 || sl.opt != Optimizer::Adam as u32 {
                continue;
            }
            let r = k * c.stride..k * c.stride + n;
            adam::step(
                &mut p[r.clone()],
                &gr[r.clone()],
                &mut m[r.clone()],
                &mut v[r.clone()],
                sl.lr,
                sl.b1,
                sl.b2,
                sl.eps,
                (sl.step0 + s + 1) as u64,
            );
        }
        grads_all.push(gr);
    }
    each_gpu(|g| {
        let sb = g.upload(&slots).unwrap();
        let (pb, mb, vb) = (
            g.upload(&p0).unwrap(),
            g.upload(&m0).unwrap(),
            g.upload(&v0).unwrap(),
        );
        for s in 0..steps {
            let gb = g.upload(&grads_all[s as usize]).unwrap();
            let k = Adam {
                slots: sb.ptr(),
                n: n as i32,
                step: s,
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
        for i in 0..len {
            let (k, j) = (i / c.stride, i % c.stride);
            let touched = j < n && slots[k].active == 1 && slots[k].opt == Optimizer::Adam as u32;
            for (what, got, want, before) in [
                ("param", pg[i], p[i], p0[i]),
                ("m", mg[i], m[i], m0[i]),
                ("v", vg[i], v[i], v0[i]),
            ] {
                if touched {
                    // Same f32 formula; a GPU contracts to FMA: a few ulp of the value.
                    let tol = 4e-7 * want.abs() + 1e-12;
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
