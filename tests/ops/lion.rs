use fastfc::backend::cpu::lion;

use crate::common::assert_close;

/// Two Keras-3 Lion steps computed by hand for lr 0.01, β 0.9/0.99. Step 2's first parameter
/// shows the update direction uses β1·m + (1 − β1)·g (its sign flips to −), not the new m.
#[test]
fn two_steps_match_hand_computed_values() {
    let mut p = [1.0f32, -2.0, 0.5];
    let mut m = [0f32; 3];
    lion::step(&mut p, &[0.5, -1.0, 0.0], &mut m, 0.01, 0.9, 0.99, 0.0);
    assert_close("lion p1", &p, &[0.99, -1.99, 0.5], 1e-7, 0.0);
    assert_close("lion m1", &m, &[0.005, -0.01, 0.0], 1e-9, 1e-5);
    lion::step(&mut p, &[-0.25, 2.0, -0.1], &mut m, 0.01, 0.9, 0.99, 0.0);
    assert_close("lion p2", &p, &[1.0, -2.0, 0.51], 1e-7, 0.0);
    assert_close("lion m2", &m, &[0.00245, 0.0101, -0.001], 1e-9, 1e-5);
}

/// Every copy of the loop this CPU runs (AVX2, AVX-512) computes the portable loop's bits.
#[test]
fn every_simd_copy_gives_the_portable_bits() {
    for level in crate::simd_levels() {
        let n = 1031;
        let g = crate::common::nonzero(n, 43);
        let (mut p1, mut m1) = (crate::common::nonzero(n, 44), crate::common::nonzero(n, 45));
        let (mut p2, mut m2) = (p1.clone(), m1.clone());
        for _ in 0..3 {
            fastfc::backend::cpu::lion::step_at(level, &mut p1, &g, &mut m1, 1e-4, 0.9, 0.99, 0.0);
            fastfc::backend::cpu::lion::step_portable(&mut p2, &g, &mut m2, 1e-4, 0.9, 0.99, 0.0);
        }
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!((bits(&p1), bits(&m1)), (bits(&p2), bits(&m2)));
    }
}
