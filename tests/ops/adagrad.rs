//! adagrad against the textbook update in f64 (Keras 3's Adagrad: accumulators from 0.1).

use fastfc::backend::cpu::adagrad;
use fastfc::model::ADAGRAD_INITIAL;

use crate::common::{assert_close, nonzero};

#[test]
fn six_steps_match_f64_with_and_without_l2() {
    for l2 in [0.0, 1e-2] {
        let n = 257;
        let p0 = nonzero(n, 3);
        let (mut p, mut a) = (p0.clone(), vec![ADAGRAD_INITIAL; n]);
        let mut pr: Vec<f64> = p0.iter().map(|&x| x as f64).collect();
        let mut ar = vec![ADAGRAD_INITIAL as f64; n];
        for t in 0..6u64 {
            let g = nonzero(n, 30 + t);
            adagrad::step(&mut p, &g, &mut a, 1e-2, 1e-7, l2 as f32);
            for i in 0..n {
                let gi = g[i] as f64 + l2 * pr[i];
                ar[i] += gi * gi;
                pr[i] -= 1e-2f32 as f64 * gi / (ar[i] + 1e-7f32 as f64).sqrt();
            }
        }
        let want: Vec<f32> = pr.iter().map(|&x| x as f32).collect();
        assert_close(&format!("adagrad l2 {l2}"), &p, &want, 1e-6, 1e-5);
    }
}

/// One step by hand from the 0.1 start: a = 0.1 + 0.25, p = 1 − 0.1·0.5/√0.35.
#[test]
fn first_step_by_hand() {
    let (mut p, mut a) = ([1.0f32], [ADAGRAD_INITIAL]);
    adagrad::step(&mut p, &[0.5], &mut a, 0.1, 1e-7, 0.0);
    assert_close("a", &a, &[0.35], 1e-7, 0.0);
    let want = 1.0 - 0.1 * 0.5 / (0.35f64 + 1e-7).sqrt();
    assert_close("p", &p, &[want as f32], 1e-7, 0.0);
}

#[test]
fn every_simd_copy_gives_the_portable_bits() {
    for level in crate::simd_levels() {
        let n = 1031;
        let g = nonzero(n, 11);
        let (mut p1, mut a1) = (nonzero(n, 12), vec![ADAGRAD_INITIAL; n]);
        let (mut p2, mut a2) = (p1.clone(), a1.clone());
        for _ in 0..3 {
            adagrad::step_at(level, &mut p1, &g, &mut a1, 1e-2, 1e-7, 1e-3);
            adagrad::step_portable(&mut p2, &g, &mut a2, 1e-2, 1e-7, 1e-3);
        }
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!((bits(&p1), bits(&a1)), (bits(&p2), bits(&a2)));
    }
}
