use fastfc::backend::cpu::adam;

use crate::common::assert_close;

/// Two Keras-3 Adam steps computed by hand (in f64) for lr 0.1, β 0.9/0.999, ε 1e-7.
#[test]
fn two_steps_match_hand_computed_values() {
    let mut p = [1.0f32, -2.0, 0.5];
    let (mut m, mut v) = ([0f32; 3], [0f32; 3]);
    adam::step(
        &mut p,
        &[0.5, -1.0, 0.0],
        &mut m,
        &mut v,
        adam::alpha(0.1, 0.9, 0.999, 1),
        0.9,
        0.999,
        1e-7,
        0.0,
        0.0,
    );
    assert_close("adam p1", &p, &[0.900_000_63, -1.900_000_3, 0.5], 1e-6, 0.0);
    assert_close("adam m1", &m, &[0.05, -0.1, 0.0], 1e-8, 1e-6);
    assert_close("adam v1", &v, &[0.00025, 0.001, 0.0], 1e-10, 1e-6);
    adam::step(
        &mut p,
        &[0.25, 2.0, -0.1],
        &mut m,
        &mut v,
        adam::alpha(0.1, 0.9, 0.999, 2),
        0.9,
        0.999,
        1e-7,
        0.0,
        0.0,
    );
    assert_close(
        "adam p2",
        &p,
        &[0.806_783_2, -1.936_610_6, 0.574_411_3],
        2e-6,
        0.0,
    );
    assert_close("adam m2", &m, &[0.07, 0.11, -0.01], 1e-8, 1e-6);
    assert_close("adam v2", &v, &[0.000_312_25, 0.004_999, 1e-5], 1e-10, 1e-5);
}

#[test]
fn zero_gradient_zero_moment_parameters_stay_put() {
    // Padded units (README, "Building the CUDA kernels"): zero gradient and zero moments must leave the parameter alone.
    let mut p = [0.0f32, 0.3];
    let (mut m, mut v) = ([0f32; 2], [0f32; 2]);
    for t in 1..=5 {
        adam::step(
            &mut p,
            &[0.0, 0.0],
            &mut m,
            &mut v,
            adam::alpha(0.01, 0.9, 0.999, t),
            0.9,
            0.999,
            1e-7,
            0.0,
            0.0,
        );
    }
    assert_eq!(p, [0.0, 0.3]);
}

/// Every copy of the loop this CPU runs (AVX2, AVX-512) computes the portable loop's bits.
#[test]
fn every_simd_copy_gives_the_portable_bits() {
    let n = 1031;
    let g = crate::common::nonzero(n, 41);
    let init = crate::common::nonzero(n, 42);
    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    // Three steps from the same state, through `level`'s copy or (None) the portable loop.
    let run = |level: Option<fastfc::backend::cpu::simd::Level>| {
        let (mut p, mut m, mut v) = (init.clone(), vec![0.01f32; n], vec![0.02f32; n]);
        for t in 1..=3 {
            let a = adam::alpha(1e-3, 0.9, 0.999, t);
            let (p, m, v) = (&mut p[..], &mut m[..], &mut v[..]);
            match level {
                Some(l) => adam::step_at(l, p, &g, m, v, a, 0.9, 0.999, 1e-7, 0.0, 0.0),
                None => adam::step_portable(p, &g, m, v, a, 0.9, 0.999, 1e-7, 0.0, 0.0),
            }
        }
        [p, m, v].map(|x| bits(&x))
    };
    for level in crate::simd_levels() {
        assert_eq!(run(Some(level)), run(None), "{level:?}");
    }
}

/// AdamW: the decoupled decay p −= (wd·lr_t)·p comes before the Adam step and never enters the
/// moments; Adam's L2 adds wd·p to the gradient, which the moments see. Both against f64.
#[test]
fn adamw_decays_decoupled_and_adam_l2_enters_the_gradient() {
    let n = 129;
    let p0 = crate::common::nonzero(n, 60);
    for decoupled in [true, false] {
        let wd = 0.01f64;
        let (mut p, mut m, mut v) = (p0.clone(), vec![0f32; n], vec![0f32; n]);
        let mut pr: Vec<f64> = p0.iter().map(|&x| x as f64).collect();
        let (mut mr, mut vr) = (vec![0f64; n], vec![0f64; n]);
        for t in 1..=4u64 {
            let g = crate::common::nonzero(n, 60 + t);
            let lr = 1e-2f32;
            let a = adam::alpha(lr, 0.9, 0.999, t);
            let (l2, decay) = if decoupled {
                (0.0, (wd * lr as f64) as f32)
            } else {
                (wd as f32, 0.0)
            };
            adam::step(&mut p, &g, &mut m, &mut v, a, 0.9, 0.999, 1e-7, l2, decay);
            for i in 0..n {
                let gi = g[i] as f64 + if decoupled { 0.0 } else { wd * pr[i] };
                if decoupled {
                    pr[i] -= wd * lr as f64 * pr[i];
                }
                mr[i] = 0.9 * mr[i] + 0.1 * gi;
                vr[i] = 0.999 * vr[i] + 0.001 * gi * gi;
                // Keras' form: α·m/(√v + ε), α = lr·√(1 − β2ᵗ)/(1 − β1ᵗ).
                let alpha = lr as f64 * (1.0 - 0.999f64.powi(t as i32)).sqrt()
                    / (1.0 - 0.9f64.powi(t as i32));
                pr[i] -= alpha * mr[i] / (vr[i].sqrt() + 1e-7);
            }
        }
        let want: Vec<f32> = pr.iter().map(|&x| x as f32).collect();
        assert_close(
            &format!("adam decoupled {decoupled}"),
            &p,
            &want,
            1e-6,
            1e-5,
        );
    }
}
