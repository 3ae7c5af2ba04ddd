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

/// The engine's f32 loop (`fwd_bwd_f32`, the exponentials of a block of rows in one vectorised
/// loop) gives the reference's bits at every level this CPU runs: loss, count and gradient, with
/// and without the gradient, over more rows than one block, ties for the maximum, a label at
/// every class, large logits and class counts that fill no vector.
#[test]
fn the_engines_loop_gives_the_references_bits() {
    for level in fastfc::backend::cpu::simd::Level::available() {
        for (rows, classes) in [(1, 1), (32, 10), (150, 10), (65, 3), (7, 17), (3, 1000)] {
            let mut z: Vec<f32> = nonzero(rows * classes, (rows * classes) as u64)
                .iter()
                .map(|v| v * 30.0)
                .collect();
            // Ties: the row's first and last class share the maximum in every third row.
            for r in (0..rows).step_by(3) {
                let row = &mut z[r * classes..(r + 1) * classes];
                let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                row[0] = max;
                row[classes - 1] = max;
            }
            let labels: Vec<u32> = (0..rows).map(|r| (r * 7 % classes) as u32).collect();
            let scale = 1.0 / rows as f32;
            let mut want = vec![f32::NAN; z.len()];
            let (wl, wc) =
                softmax_xent::fwd_bwd(&z, &labels, rows, classes, scale, Some(&mut want));
            let (nl, nc) = softmax_xent::fwd_bwd(&z, &labels, rows, classes, 1.0, None);
            // A workspace longer than the rows, poisoned.
            let mut got = vec![f32::NAN; z.len() + 5];
            let (gl, gc) = softmax_xent::fwd_bwd_f32_at(
                level, &z, &labels, rows, classes, scale, &mut got, true,
            );
            let what = format!("{level:?} {rows}x{classes}");
            assert_eq!(
                (gl.to_bits(), gc),
                (wl.to_bits(), wc),
                "{what}: loss, correct"
            );
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got[..z.len()]), bits(&want), "{what}: gradient");
            assert!(
                got[z.len()..].iter().all(|v| v.is_nan()),
                "{what}: wrote past the rows"
            );
            let (el, ec) = softmax_xent::fwd_bwd_f32_at(
                level, &z, &labels, rows, classes, 1.0, &mut got, false,
            );
            assert_eq!((el.to_bits(), ec), (nl.to_bits(), nc), "{what}: evaluation");
        }
    }
}
