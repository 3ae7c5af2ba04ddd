use fastfc::backend::cpu::{activation, exp_f32};
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
}
