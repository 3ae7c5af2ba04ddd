use fastfc::backend::cpu::{activation, erf_f32, exp_f32, exp_f32_block};
use fastfc::model::Activation;

use crate::common::{assert_close, nonzero};

/// The f32 engine against the f64 reference, for every activation, forward and backward.
#[test]
fn f32_matches_f64_reference() {
    let mut z = nonzero(2000, 21);
    z.extend([-30.0, -9.0, 9.0, 30.0]);
    let dy = nonzero(z.len(), 22);
    let z64: Vec<f64> = z.iter().map(|&v| v as f64).collect();
    let dy64: Vec<f64> = dy.iter().map(|&v| v as f64).collect();
    for act in Activation::ALL {
        let mut y = vec![f32::NAN; z.len()];
        activation::fwd(act, &z, &mut y);
        let mut y64 = vec![0f64; z.len()];
        activation::fwd(act, &z64, &mut y64);
        let want: Vec<f32> = y64.iter().map(|&v| v as f32).collect();
        assert_close(&format!("act_fwd {act}"), &y, &want, 1e-6, 1e-6);

        let mut dz = vec![f32::NAN; z.len()];
        activation::bwd(act, &z, &y, &dy, &mut dz);
        let mut dz64 = vec![0f64; z.len()];
        activation::bwd(act, &z64, &y64, &dy64, &mut dz64);
        let want: Vec<f32> = dz64.iter().map(|&v| v as f32).collect();
        assert_close(&format!("act_bwd {act}"), &dz, &want, 1e-6, 1e-5);
    }
}

fn ulps(a: f32, b: f32) -> u32 {
    (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
}

#[test]
fn fast_exp_is_within_two_ulp() {
    let mut worst = (0u32, 0f32);
    let mut x = -87.0f32;
    while x <= 88.0 {
        let want = (x as f64).exp() as f32;
        let u = ulps(exp_f32(x), want);
        if u > worst.0 {
            worst = (u, x);
        }
        x += 0.000_731;
    }
    assert!(
        worst.0 <= 2,
        "exp_f32 is {} ulp off at x = {}",
        worst.0,
        worst.1
    );
    assert_eq!(exp_f32(0.0), 1.0);
    assert!(exp_f32(-1000.0) > 0.0 && exp_f32(1000.0).is_finite());
    // Beyond the clamp the value is the clamp's, exactly (a missing clamp builds 2ⁿ with an
    // exponent that overflows its bits).
    for x in [88.5f32, 100.0, 1000.0, f32::MAX] {
        assert_eq!(exp_f32(x), exp_f32(88.0), "exp_f32({x})");
    }
    for x in [-87.5f32, -100.0, -1000.0, f32::MIN] {
        assert_eq!(exp_f32(x), exp_f32(-87.0), "exp_f32({x})");
    }
}

#[test]
fn fast_erf_is_within_three_ulp() {
    let mut worst = (0u32, 0f32);
    let mut x = -6.0f32;
    while x <= 6.0 {
        let want = libm::erf(x as f64) as f32;
        let u = ulps(erf_f32(x), want);
        if u > worst.0 {
            worst = (u, x);
        }
        x += 0.000_113;
    }
    eprintln!("erf_f32: worst {} ulp at x = {}", worst.0, worst.1);
    assert!(
        worst.0 <= 3,
        "erf_f32 is {} ulp off at x = {}",
        worst.0,
        worst.1
    );
    // Tiny arguments keep their precision (erf(x) ≈ 2x/√π), the tails are exactly ±1, and the
    // function is odd.
    for x in [1e-30f32, 1e-10, 1e-5, 0.01] {
        let want = libm::erf(x as f64) as f32;
        assert!(ulps(erf_f32(x), want) <= 1, "erf_f32({x})");
        assert_eq!(erf_f32(-x), -erf_f32(x));
    }
    assert_eq!(erf_f32(0.0), 0.0);
    assert_eq!(erf_f32(10.0), 1.0);
    assert_eq!(erf_f32(-1e30), -1.0);
    assert!(erf_f32(f32::NAN).is_nan());
}

/// Every copy of the loops this CPU runs (AVX2, AVX-512) computes the same bits as the portable one,
/// so a model does not depend on the machine it was trained on.
#[test]
fn every_simd_copy_gives_the_portable_bits() {
    for level in crate::simd_levels() {
        let mut z = nonzero(4099, 31);
        z.iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v *= (i % 13) as f32);
        let dy = nonzero(z.len(), 32);
        for act in Activation::ALL {
            let (mut y1, mut y2) = (vec![f32::NAN; z.len()], vec![f32::NAN; z.len()]);
            activation::fwd_at(level, act, &z, &mut y1);
            activation::fwd_portable(act, &z, &mut y2);
            let (mut d1, mut d2) = (vec![f32::NAN; z.len()], vec![f32::NAN; z.len()]);
            activation::bwd_at(level, act, &z, &y1, &dy, &mut d1);
            activation::bwd_portable(act, &z, &y1, &dy, &mut d2);
            for i in 0..z.len() {
                assert_eq!(
                    y1[i].to_bits(),
                    y2[i].to_bits(),
                    "{act} fwd at z = {}",
                    z[i]
                );
                assert_eq!(
                    d1[i].to_bits(),
                    d2[i].to_bits(),
                    "{act} bwd at z = {}",
                    z[i]
                );
            }
        }
    }
}

/// At z = 0 (and -0) every activation but sigmoid (1/2) and softplus (ln 2) gives 0, and the
/// derivative is the one from the z ≤ 0 side, as TensorFlow's gradients take it: relu'(0) = 0,
/// selu'(0) = scale·α, elu'(0) = celu'(0) = 1 (both sides agree), gelu'(0) = silu'(0) =
/// softplus'(0) = 1/2, leaky_relu'(0) = 0.2, tanh'(0) = 1, sigmoid'(0) = 1/4, mish'(0) =
/// tanh(ln 2) = 3/5. Exact zeros do occur: a zero input row at zero bias. In f32 (the engine) and
/// in f64 (the reference the kernels are checked against).
#[test]
fn at_the_kink_the_derivative_is_taken_from_below() {
    use fastfc::backend::cpu::activation::{SELU_ALPHA, SELU_SCALE};
    let want = |act: Activation| match act {
        Activation::Relu => 0.0,
        Activation::Selu => SELU_SCALE * SELU_ALPHA,
        Activation::Elu | Activation::Celu | Activation::Tanh => 1.0,
        Activation::Gelu | Activation::Silu | Activation::Softplus => 0.5,
        Activation::LeakyRelu => fastfc::model::LEAKY_RELU_SLOPE,
        Activation::Sigmoid => 0.25,
        Activation::Mish => 0.6,
    };
    let at_zero = |act: Activation| match act {
        Activation::Sigmoid => 0.5,
        Activation::Softplus => std::f64::consts::LN_2,
        _ => 0.0,
    };
    for act in Activation::ALL {
        let z = [0.0f32, -0.0];
        let mut y = [f32::NAN; 2];
        activation::fwd(act, &z, &mut y);
        let mut dz = [f32::NAN; 2];
        activation::bwd(act, &z, &y, &[1.0; 2], &mut dz);
        let z64 = [0.0f64, -0.0];
        let mut y64 = [f64::NAN; 2];
        activation::fwd(act, &z64, &mut y64);
        let mut dz64 = [f64::NAN; 2];
        activation::bwd(act, &z64, &y64, &[1.0; 2], &mut dz64);
        assert_eq!(act.maps_zero_to_zero(), at_zero(act) == 0.0, "{act}");
        for i in 0..2 {
            assert_eq!(y[i], at_zero(act) as f32, "{act}({})", z[i]);
            assert!(
                (y64[i] - at_zero(act)).abs() <= 1e-15,
                "{act}({}) in f64: {}",
                z64[i],
                y64[i]
            );
            assert_eq!(dz[i], want(act) as f32, "{act}'({})", z[i]);
            assert!(
                (dz64[i] - want(act)).abs() <= 1e-15,
                "{act}'({}) in f64: {}",
                z64[i],
                dz64[i]
            );
        }
    }
}

/// The training forward (`fwd_train`: f and f' in one loop, what the engine runs) gives `fwd`'s
/// outputs and, times dy, `bwd`'s gradients, to the bit, dispatched and portable.
#[test]
fn fwd_train_keeps_the_derivative_bwd_computes() {
    let mut z = nonzero(1031, 41);
    z.iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v *= (i % 11) as f32 * 0.7);
    let dy = nonzero(z.len(), 42);
    for act in Activation::ALL {
        let mut y = vec![f32::NAN; z.len()];
        activation::fwd(act, &z, &mut y);
        let mut want = vec![f32::NAN; z.len()];
        activation::bwd(act, &z, &y, &dy, &mut want);
        for portable in [false, true] {
            let (mut y1, mut d1) = (vec![f32::NAN; z.len()], vec![f32::NAN; z.len()]);
            if portable {
                activation::fwd_train_portable(act, &z, &mut y1, &mut d1);
            } else {
                activation::fwd_train(act, &z, &mut y1, &mut d1);
            }
            for i in 0..z.len() {
                assert_eq!(y1[i].to_bits(), y[i].to_bits(), "{act} y at z = {}", z[i]);
                let got = dy[i] * d1[i];
                assert_eq!(got.to_bits(), want[i].to_bits(), "{act} dz at z = {}", z[i]);
            }
        }
    }
}

/// The loops that run eˣ a block at a time (elu, celu, selu, silu) give each element the bits
/// of the one-element loop, in every block and in the tail after the last, dispatched and
/// portable; and the block eˣ gives `exp_f32`'s bits, clamped ends included.
#[test]
fn blocked_loops_give_the_elementwise_bits() {
    let mut x: Vec<f32> = nonzero(256, 43).iter().map(|v| v * 30.0).collect();
    x[..6].copy_from_slice(&[-1000.0, -87.5, -87.0, 0.0, 88.0, 1000.0]);
    let mut block: [f32; 256] = x.clone().try_into().unwrap();
    exp_f32_block(&mut block);
    for (i, &v) in x.iter().enumerate() {
        assert_eq!(block[i].to_bits(), exp_f32(v).to_bits(), "exp at x = {v}");
    }
    let mut z = nonzero(64 * 5 + 37, 44);
    z.iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v *= (i % 7) as f32 * 1.3);
    for act in Activation::ALL {
        for portable in [false, true] {
            let n = z.len();
            let (mut y, mut yt, mut dt) = (vec![f32::NAN; n], vec![f32::NAN; n], vec![f32::NAN; n]);
            if portable {
                activation::fwd_portable(act, &z, &mut y);
                activation::fwd_train_portable(act, &z, &mut yt, &mut dt);
            } else {
                activation::fwd(act, &z, &mut y);
                activation::fwd_train(act, &z, &mut yt, &mut dt);
            }
            for i in 0..n {
                let (mut y1, mut t1, mut d1) = ([f32::NAN], [f32::NAN], [f32::NAN]);
                activation::fwd_portable(act, &z[i..=i], &mut y1);
                activation::fwd_train_portable(act, &z[i..=i], &mut t1, &mut d1);
                assert_eq!(y[i].to_bits(), y1[0].to_bits(), "{act} fwd at z = {}", z[i]);
                assert_eq!(yt[i].to_bits(), t1[0].to_bits(), "{act} y at z = {}", z[i]);
                assert_eq!(dt[i].to_bits(), d1[0].to_bits(), "{act} f' at z = {}", z[i]);
            }
        }
    }
}

/// The loops that share one eˣ between f and f′ (elu, celu, selu, silu) against their formulas
/// written out here with `exp_f32`, as the engine computed them before those loops were blocked:
/// same bits for f and f′, dispatched and portable, inference, training and `bwd` (at dy = 1),
/// over several blocks and a tail. Unlike `blocked_loops_give_the_elementwise_bits`, this shares
/// neither `f_e`/`df_e` nor the SELU constants (Keras' values, written out) with the code under
/// test, so a change to a formula or a constant there fails it.
#[test]
fn shared_exp_loops_keep_the_written_out_formulas() {
    const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
    const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
    /// z ↦ (f(z), f′(z)).
    type Formula = fn(f32) -> (f32, f32);
    // celu with α = 1 is elu.
    let elu: Formula = |z| {
        let y = if z > 0.0 { z } else { exp_f32(z) - 1.0 };
        (y, if z > 0.0 { 1.0 } else { y + 1.0 })
    };
    let written: [(Activation, Formula); 4] = [
        (Activation::Elu, elu),
        (Activation::Celu, elu),
        (Activation::Selu, |z| {
            let (s, sa) = (SELU_SCALE as f32, (SELU_SCALE * SELU_ALPHA) as f32);
            let y = if z > 0.0 {
                s * z
            } else {
                sa * (exp_f32(z) - 1.0)
            };
            (y, if z > 0.0 { s } else { y + sa })
        }),
        (Activation::Silu, |z| {
            let y = z / (1.0 + exp_f32(-z));
            let sig = 1.0 / (1.0 + exp_f32(-z));
            (y, sig + z * sig * (1.0 - sig))
        }),
    ];
    // Values on both sides of 0, large ones where eˣ is clamped, and 0 itself.
    let mut z: Vec<f32> = nonzero(128 * 3 + 45, 45)
        .iter()
        .enumerate()
        .map(|(i, v)| v * [0.5, 3.0, 12.0, 95.0][i % 4])
        .collect();
    z[..4].copy_from_slice(&[0.0, -0.0, -1000.0, 1000.0]);
    let n = z.len();
    for (act, formula) in written {
        for portable in [false, true] {
            let (mut y, mut yt, mut d) = (vec![f32::NAN; n], vec![f32::NAN; n], vec![f32::NAN; n]);
            let (ones, mut dz) = (vec![1f32; n], vec![f32::NAN; n]);
            if portable {
                activation::fwd_portable(act, &z, &mut y);
                activation::fwd_train_portable(act, &z, &mut yt, &mut d);
                activation::bwd_portable(act, &z, &y, &ones, &mut dz);
            } else {
                activation::fwd(act, &z, &mut y);
                activation::fwd_train(act, &z, &mut yt, &mut d);
                activation::bwd(act, &z, &y, &ones, &mut dz);
            }
            for i in 0..n {
                let (want_y, want_d) = formula(z[i]);
                let at = format!("{act} (portable {portable}) at z[{i}] = {}", z[i]);
                assert_eq!(y[i].to_bits(), want_y.to_bits(), "fwd {at}");
                assert_eq!(yt[i].to_bits(), want_y.to_bits(), "fwd_train y {at}");
                assert_eq!(d[i].to_bits(), want_d.to_bits(), "fwd_train f' {at}");
                assert_eq!(dz[i].to_bits(), want_d.to_bits(), "bwd at dy = 1 {at}");
            }
        }
    }
}
