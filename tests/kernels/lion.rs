//! lion over a cohort's arena against src/backend/cpu/lion.rs; Adam and inactive trials untouched,
//! zero (padded) parameters stay zero.

use fastfc::backend::cpu::lion;
use fastfc::backend::cuda::launch::Lion;
use fastfc::backend::cuda::Gpu;
use fastfc::model::Optimizer;

use crate::{each_gpu, Cohort};

#[test]
fn lion_matches_cpu_over_the_arena() {
    let c = Cohort::mixed(9, 3, &[32, 48, 64], 64, 10, 22);
    let mut slots = c.slots.clone();
    slots[2].active = 0;
    let n = c.pad.len;
    let len = c.trials() * c.stride;
    let p0 = c.arena(5); // padded entries are 0, gaps NaN
    let m0: Vec<f32> = p0
        .iter()
        .map(|&v| if v.is_nan() { f32::NAN } else { v * 0.01 })
        .collect();
    let steps = 3u32;
    let (mut p, mut m) = (p0.clone(), m0.clone());
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
            lion::step(
                &mut p[r.clone()],
                &gr[r.clone()],
                &mut m[r.clone()],
                sl.lr,
                sl.b1,
                sl.b2,
            );
        }
        grads_all.push(gr);
    }
    each_gpu(|g| {
        let sb = g.upload(&slots).unwrap();
        let (pb, mb) = (g.upload(&p0).unwrap(), g.upload(&m0).unwrap());
        for s in 0..steps {
            let gb = g.upload(&grads_all[s as usize]).unwrap();
            g.launch(
                &Lion {
                    slots: sb.ptr(),
                    n: n as i32,
                    params: pb.ptr(),
                    grads: gb.ptr(),
                    m: mb.ptr(),
                }
                .launch(c.trials() as u32),
            )
            .unwrap();
        }
        let (pg, mg) = (g.read(&pb).unwrap(), g.read(&mb).unwrap());
        for i in 0..len {
            let (k, j) = (i / c.stride, i % c.stride);
            let touched = j < n && slots[k].active == 1 && slots[k].opt == Optimizer::Lion as u32;
            for (what, got, want, before) in
                [("param", pg[i], p[i], p0[i]), ("m", mg[i], m[i], m0[i])]
            {
                if touched {
                    let tol = 4e-7 * want.abs() + 1e-12;
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
