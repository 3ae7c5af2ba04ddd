//! sgd against the textbook update in f64 (Keras 3's SGD): plain, momentum, Nesterov, L2.

use fastfc::backend::cpu::sgd;

use crate::common::{assert_close, nonzero};

/// Five steps of `sgd::step` against the same rule in f64 from the same start.
fn against_f64(momentum: f64, nesterov: bool, l2: f64) {
    let n = 257;
    let p0 = nonzero(n, 1);
    let (mut p, mut m) = (p0.clone(), vec![0f32; n]);
    let mut pr: Vec<f64> = p0.iter().map(|&v| v as f64).collect();
    let mut mr = vec![0f64; n];
    for t in 0..5u64 {
        let g = nonzero(n, 10 + t);
        let lr = 0.05 / (t + 1) as f64;
        sgd::step(
            &mut p,
            &g,
            &mut m,
            lr as f32,
            momentum as f32,
            nesterov,
            l2 as f32,
        );
        for i in 0..n {
            let gi = g[i] as f64 + l2 * pr[i];
            if momentum == 0.0 {
                pr[i] -= lr * gi;
            } else {
                mr[i] = momentum * mr[i] - lr * gi;
                pr[i] += if nesterov {
                    momentum * mr[i] - lr * gi
                } else {
                    mr[i]
                };
            }
        }
    }
    let want: Vec<f32> = pr.iter().map(|&v| v as f32).collect();
    assert_close(
        &format!("sgd momentum {momentum} nesterov {nesterov} l2 {l2}"),
        &p,
        &want,
        1e-6,
        1e-5,
    );
}

#[test]
fn plain_momentum_nesterov_and_l2_match_f64() {
    against_f64(0.0, false, 0.0);
    against_f64(0.9, false, 0.0);
    against_f64(0.9, true, 0.0);
    against_f64(0.5, true, 1e-2);
    against_f64(0.0, false, 1e-2);
}

/// One step by hand: p 1, g 0.5, lr 0.1, momentum 0.9: m = −0.05; Nesterov p = 1 − 0.045 − 0.05.
#[test]
fn one_nesterov_step_by_hand() {
    let (mut p, mut m) = ([1.0f32], [0.0f32]);
    sgd::step(&mut p, &[0.5], &mut m, 0.1, 0.9, true, 0.0);
    assert_close("m", &m, &[-0.05], 1e-8, 0.0);
    assert_close("p", &p, &[0.905], 1e-7, 0.0);
}

#[test]
fn every_simd_copy_gives_the_portable_bits() {
    for level in crate::simd_levels() {
        let n = 1031;
        let g = nonzero(n, 5);
        let (mut p1, mut m1) = (nonzero(n, 6), nonzero(n, 7));
        let (mut p2, mut m2) = (p1.clone(), m1.clone());
        for _ in 0..3 {
            sgd::step_at(level, &mut p1, &g, &mut m1, 1e-2, 0.9, true, 1e-3);
            sgd::step_portable(&mut p2, &g, &mut m2, 1e-2, 0.9, true, 1e-3);
        }
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!((bits(&p1), bits(&m1)), (bits(&p2), bits(&m2)));
    }
}
