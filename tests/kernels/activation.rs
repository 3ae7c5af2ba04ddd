//! activation_fwd / activation_bwd against src/backend/cpu/activation.rs (f64), every activation
//! in one launch (trial k uses activation k of the eleven), odd element counts.

use fastfc::backend::cpu::activation;
use fastfc::backend::cuda::launch::{ActivationBwd, ActivationFwd};
use fastfc::backend::cuda::Gpu;
use rand::{Rng, SeedableRng};

use crate::{assert_cohort, each_gpu, rel_abs, Cohort};

#[test]
fn activation_fwd_and_bwd_match_cpu_for_all_eleven() {
    for (case, n) in [1usize, 31, 257, 64 * 33].into_iter().enumerate() {
        let trials = fastfc::model::Activation::ALL.len();
        let c = Cohort::mixed(trials, 1, &[8], 4, 10, 40 + case as u64);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(case as u64);
        // z in ±[0.01, 6]: both branches of every activation; and, where n allows, the kink
        // itself (0 and -0 in each trial), where the derivative must come from the z ≤ 0 side.
        let mut z: Vec<f32> = (0..trials * n)
            .map(|_| {
                let v: f32 = rng.random_range(0.01..6.0);
                if rng.random::<bool>() {
                    v
                } else {
                    -v
                }
            })
            .collect();
        if n > 2 {
            for t in 0..trials {
                z[t * n + 1] = 0.0;
                z[t * n + 2] = -0.0;
            }
        }
        let dy = crate::common::nonzero(trials * n, 99 + case as u64);
        let mut want_y = vec![];
        let mut want_dz = vec![];
        let mut y_host = vec![0f32; trials * n];
        for t in 0..trials {
            let act = c.specs[t].hp.activation;
            let s = t * n..(t + 1) * n;
            let z64: Vec<f64> = z[s.clone()].iter().map(|&v| v as f64).collect();
            let dy64: Vec<f64> = dy[s.clone()].iter().map(|&v| v as f64).collect();
            let mut y64 = vec![0f64; n];
            activation::fwd(act, &z64, &mut y64);
            let mut dz64 = vec![0f64; n];
            activation::bwd(act, &z64, &y64, &dy64, &mut dz64);
            activation::fwd(act, &z[s.clone()], &mut y_host[s]);
            want_y.push(y64);
            want_dz.push(dz64);
        }
        each_gpu(|g| {
            let dev = g.name();
            let slots = g.upload(&c.slots).unwrap();
            let zb = g.upload(&z).unwrap();
            let yb = g.upload(&vec![f32::NAN; trials * n]).unwrap();
            g.launch(
                &ActivationFwd {
                    slots: slots.ptr(),
                    n: n as i32,
                    z: zb.ptr(),
                    y: yb.ptr(),
                }
                .launch(trials as u32),
            )
            .unwrap();
            let y = g.read(&yb).unwrap();
            // f32 elementwise math: a few ulp of the value, and ulp(1) near cancellation (e^z − 1).
            assert_cohort(
                &format!("activation_fwd n={n}"),
                &dev,
                &y,
                &want_y,
                1,
                n,
                |_| n,
                rel_abs(1e-6, 2.5e-7),
                0.0,
            );
            // bwd uses the host's y (as the engine does: y from the forward pass).
            let yh = g.upload(&y_host).unwrap();
            let dyb = g.upload(&dy).unwrap();
            let dzb = g.upload(&vec![f32::NAN; trials * n]).unwrap();
            g.launch(
                &ActivationBwd {
                    slots: slots.ptr(),
                    n: n as i32,
                    z: zb.ptr(),
                    y: yh.ptr(),
                    dy: dyb.ptr(),
                    dz: dzb.ptr(),
                }
                .launch(trials as u32),
            )
            .unwrap();
            let dz = g.read(&dzb).unwrap();
            assert_cohort(
                &format!("activation_bwd n={n}"),
                &dev,
                &dz,
                &want_dz,
                1,
                n,
                |_| n,
                rel_abs(2e-6, 5e-7),
                0.0,
            );
        });
    }
}

#[test]
fn every_activation_maps_zero_where_the_cpu_does_on_the_device() {
    // f(0) = 0 for all but sigmoid (1/2) and softplus (ln 2), as on the CPU: the per-op path's
    // padding rests on it for the nine, and masks padded units for the two (tests/kernels/dense.rs).
    let trials = fastfc::model::Activation::ALL.len();
    let c = Cohort::mixed(trials, 1, &[8], 4, 10, 1);
    each_gpu(|g| {
        let slots = g.upload(&c.slots).unwrap();
        let z = g.upload(&vec![0f32; trials * 40]).unwrap();
        let y = g.upload(&vec![f32::NAN; trials * 40]).unwrap();
        g.launch(
            &ActivationFwd {
                slots: slots.ptr(),
                n: 40,
                z: z.ptr(),
                y: y.ptr(),
            }
            .launch(trials as u32),
        )
        .unwrap();
        let got = g.read(&y).unwrap();
        for t in 0..trials {
            let act = c.specs[t].hp.activation;
            let mut want = [f32::NAN];
            activation::fwd(act, &[0f32], &mut want);
            assert_eq!(act.maps_zero_to_zero(), want[0] == 0.0, "{act}");
            for &v in &got[t * 40..(t + 1) * 40] {
                assert!(
                    (v - want[0]).abs() <= 1e-7,
                    "{act}(0) = {v} on {}, the CPU gives {}",
                    g.name(),
                    want[0]
                );
            }
        }
    });
}
