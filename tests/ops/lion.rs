use fastfc::backend::cpu::lion;

use crate::common::assert_close;

/// Two Keras-3 Lion steps computed by hand for lr 0.01, β 0.9/0.99. Step 2's first parameter
/// shows the update direction uses β1·m + (1 − β1)·g (its sign flips to −), not the new m.
#[test]
fn two_steps_match_hand_computed_values() {
    let mut p = [1.0f32, -2.0, 0.5];
    let mut m = [0f32; 3];
    lion::step(&mut p, &[0.5, -1.0, 0.0], &mut m, 0.01, 0.9, 0.99);
    assert_close("lion p1", &p, &[0.99, -1.99, 0.5], 1e-7, 0.0);
    assert_close("lion m1", &m, &[0.005, -0.01, 0.0], 1e-9, 1e-5);
    lion::step(&mut p, &[-0.25, 2.0, -0.1], &mut m, 0.01, 0.9, 0.99);
    assert_close("lion p2", &p, &[1.0, -2.0, 0.51], 1e-7, 0.0);
    assert_close("lion m2", &m, &[0.00245, 0.0101, -0.001], 1e-9, 1e-5);
}
