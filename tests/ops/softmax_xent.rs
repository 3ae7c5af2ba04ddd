use fastfc::backend::cpu::softmax_xent;

use crate::common::{assert_close, nonzero};

#[test]
fn f32_matches_f64_reference() {
    for (rows, classes) in [(1, 1), (1, 10), (32, 10), (17, 3)] {
        let z = nonzero(rows * classes, rows as u64);
        let labels: Vec<u32> = (0..rows).map(|r| (r * 7 % classes) as u32).collect();
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
    // dL/dz = softmax(z) − onehot(label), by hand: only 1000 and 999 have weight, e¹ : 1.
    let p0 = 1.0 / (1.0 + (-1.0f64).exp());
    let want = [p0 as f32, 0.0, 0.0, ((1.0 - p0) - 1.0) as f32];
    assert_close("softmax_xent large logits", &d, &want, 1e-6, 1e-6);
}

/// The gradient's formula, independently of the generic code: softmax minus the one-hot label,
/// scaled, for every row, at f32 against a naive f64 softmax.
#[test]
fn gradient_is_softmax_minus_onehot() {
    let (rows, classes) = (7, 10);
    let z = nonzero(rows * classes, 77);
    let labels: Vec<u32> = (0..rows).map(|r| (r * 3 % classes) as u32).collect();
    let mut d = vec![f32::NAN; z.len()];
    softmax_xent::fwd_bwd(&z, &labels, rows, classes, 0.25, Some(&mut d));
    let mut want = vec![0f32; z.len()];
    for r in 0..rows {
        let row = &z[r * classes..(r + 1) * classes];
        let s: f64 = row.iter().map(|&v| (v as f64).exp()).sum();
        for c in 0..classes {
            let p = (row[c] as f64).exp() / s;
            let y = (c == labels[r] as usize) as u8 as f64;
            want[r * classes + c] = (0.25 * (p - y)) as f32;
        }
    }
    assert_close("softmax − onehot", &d, &want, 1e-7, 1e-5);
}
