use fastfc::backend::cpu::softmax_xent;

use crate::common::{assert_close, nonzero};

#[test]
fn f32_matches_f64_reference() {
    for (rows, classes) in [(1, 1), (1, 10), (32, 10), (17, 3)] {
        let z = nonzero(rows * classes, rows as u64);
        let labels: Vec<u8> = (0..rows).map(|r| (r * 7 % classes) as u8).collect();
        let z64: Vec<f64> = z.iter().map(|&v| v as f64).collect();
        let mut d = vec![f32::NAN; z.len()];
        let mut d64 = vec![0f64; z.len()];
        let (l, c) =
            softmax_xent::fwd_bwd(&z, &labels, rows, classes, 1.0 / rows as f32, Some(&mut d));
        let (l64, c64) = softmax_xent::fwd_bwd(
            &z64,
            &labels,
            rows,
            classes,
            1.0 / rows as f64,
            Some(&mut d64),
        );
        assert_eq!(c, c64);
        assert!((l - l64).abs() < 1e-5 * l64.abs().max(1.0), "{l} vs {l64}");
        let want: Vec<f32> = d64.iter().map(|&v| v as f32).collect();
        assert_close(
            &format!("softmax_xent {rows}x{classes}"),
            &d,
            &want,
            1e-7,
            1e-5,
        );
    }
}

#[test]
fn large_logits_stay_finite() {
    let z = [1000.0f32, -1000.0, 0.0, 999.0];
    let mut d = [f32::NAN; 4];
    let (l, _) = softmax_xent::fwd_bwd(&z, &[3], 1, 4, 1.0, Some(&mut d));
    assert!((l - 1.313_261_7).abs() < 1e-5, "{l}");
    assert!(d.iter().all(|v| v.is_finite()));
}
