//! rmsprop against the textbook update in f64 (Keras 3's uncentered RMSprop, ε inside the root).

use fastfc::backend::cpu::rmsprop;

use crate::common::{assert_close, nonzero};

fn against_f64(rho: f64, momentum: f64, l2: f64) {
    let n = 257;
    let p0 = nonzero(n, 2);
    let (mut p, mut m, mut v) = (p0.clone(), vec![0f32; n], vec![0f32; n]);
    let mut pr: Vec<f64> = p0.iter().map(|&x| x as f64).collect();
    let (mut mr, mut vr) = (vec![0f64; n], vec![0f64; n]);
    let eps = 1e-7f32;
    for t in 0..6u64 {
        let g = nonzero(n, 20 + t);
        let lr = 1e-3;
        rmsprop::step(
            &mut p,
            &g,
            &mut m,
            &mut v,
            lr as f32,
            rho,
            momentum as f32,
            eps,
            l2 as f32,
        );
        for i in 0..n {
            let gi = g[i] as f64 + l2 * pr[i];
            vr[i] = rho * vr[i] + (1.0 - rho) * gi * gi;
            let inc = lr * gi / (vr[i] + eps as f64).sqrt();
            if momentum > 0.0 {
                mr[i] = momentum * mr[i] + inc;
                pr[i] -= mr[i];
            } else {
                pr[i] -= inc;
            }
        }
    }
    let want: Vec<f32> = pr.iter().map(|&x| x as f32).collect();
    assert_close(
        &format!("rmsprop rho {rho} momentum {momentum} l2 {l2}"),
        &p,
        &want,
        1e-6,
        1e-5,
    );
}

#[test]
fn with_and_without_momentum_and_l2_match_f64() {
    against_f64(0.9, 0.0, 0.0);
    against_f64(0.9, 0.5, 0.0);
    against_f64(0.75, 0.0, 1e-2);
}

/// First step by hand: v = 0.1·g², so Δ = lr·g/√(0.1·g² + ε) ≈ lr·sign(g)·√10.
#[test]
fn first_step_by_hand() {
    let (mut p, mut m, mut v) = ([1.0f32], [0.0f32], [0.0f32]);
    rmsprop::step(&mut p, &[2.0], &mut m, &mut v, 0.01, 0.9, 0.0, 1e-7, 0.0);
    let want = 1.0 - 0.01 * 2.0 / (0.4f64 + 1e-7).sqrt();
    assert_close("p", &p, &[want as f32], 1e-7, 0.0);
    assert_close("v", &v, &[0.4], 1e-7, 0.0);
}

#[test]
fn every_simd_copy_gives_the_portable_bits() {
    for level in crate::simd_levels() {
        let n = 1031;
        let g = nonzero(n, 8);
        let (mut p1, mut m1, mut v1) = (nonzero(n, 9), vec![0f32; n], vec![0.01f32; n]);
        let (mut p2, mut m2, mut v2) = (p1.clone(), m1.clone(), v1.clone());
        for _ in 0..3 {
            rmsprop::step_at(
                level, &mut p1, &g, &mut m1, &mut v1, 1e-3, 0.9, 0.5, 1e-7, 1e-3,
            );
            rmsprop::step_portable(&mut p2, &g, &mut m2, &mut v2, 1e-3, 0.9, 0.5, 1e-7, 1e-3);
        }
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            (bits(&p1), bits(&m1), bits(&v1)),
            (bits(&p2), bits(&m2), bits(&v2))
        );
    }
}
