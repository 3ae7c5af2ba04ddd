use fastfc::backend::cpu::dropout;
use fastfc::rng::{hash5, unit_f32};

use crate::common::nonzero;

/// Shared test vectors: the same numbers are asserted for `ffc_hash5` in kernels/common.cuh, so
/// CPU and GPU masks agree bit for bit. Values checked with an independent Python transcription of
/// the documented algorithm.
type Key = (u32, u32, u32, u32, u32);

pub const HASH_VECTORS: [(Key, u32); 4] = [
    ((0, 0, 0, 0, 0), 0x2fd7_925f),
    ((42, 1, 2, 3, 4), 0x853a_378e),
    ((0xffff_ffff, 7, 0, 31, 63), 0xd2da_c720),
    ((123_456, 15_625, 3, 16, 47), 0xb5e5_1bf9),
];

#[test]
fn hash_vectors() {
    for ((s, a, b, c, d), want) in HASH_VECTORS {
        assert_eq!(hash5(s, a, b, c, d), want, "hash5({s}, {a}, {b}, {c}, {d})");
    }
}

#[test]
fn mask_is_the_hash_and_keeps_the_expected_fraction() {
    let (rows, width, rate) = (32, 64, 0.3f32);
    let mut m = vec![f32::NAN; rows * width];
    dropout::mask(99, 5, 2, rows, width, rate, &mut m);
    let keep = 1.0 / (1.0 - rate);
    for r in 0..rows {
        for u in 0..width {
            let want = if unit_f32(hash5(99, 5, 2, r as u32, u as u32)) >= rate {
                keep
            } else {
                0.0
            };
            assert_eq!(m[r * width + u], want, "row {r} unit {u}");
        }
    }
    // Many masks: the kept fraction is 1 − rate within 4 standard deviations.
    let mut kept = 0usize;
    let n = 200 * rows * width;
    for step in 0..200 {
        dropout::mask(99, step, 0, rows, width, rate, &mut m);
        kept += m.iter().filter(|&&v| v > 0.0).count();
    }
    let p = kept as f64 / n as f64;
    let sd = (0.7 * 0.3 / n as f64).sqrt();
    assert!((p - 0.7).abs() < 4.0 * sd, "kept fraction {p}");
}

#[test]
fn masks_differ_by_step_layer_and_seed() {
    let mut a = vec![0f32; 256];
    let mut b = vec![0f32; 256];
    dropout::mask(1, 1, 1, 4, 64, 0.5, &mut a);
    for (s, t, l) in [(2, 1, 1), (1, 2, 1), (1, 1, 2)] {
        dropout::mask(s, t, l, 4, 64, 0.5, &mut b);
        assert_ne!(a, b, "seed {s} step {t} layer {l}");
    }
    // Widths do not shift the mask: unit u of row r is the same bit in a narrower layer.
    let mut narrow = vec![0f32; 4 * 32];
    dropout::mask(1, 1, 1, 4, 32, 0.5, &mut narrow);
    for r in 0..4 {
        assert_eq!(&narrow[r * 32..r * 32 + 32], &a[r * 64..r * 64 + 32]);
    }
}

/// Every copy of the mask loop this CPU runs (AVX2, AVX-512) computes the portable loop's bits.
#[test]
fn every_simd_copy_gives_the_portable_bits() {
    for level in crate::simd_levels() {
        for (rows, width, rate) in [(32, 64, 0.3f32), (7, 13, 0.05), (1, 1, 0.5)] {
            let mut a = vec![f32::NAN; rows * width];
            let mut b = vec![f32::NAN; rows * width];
            fastfc::backend::cpu::dropout::mask_at(level, 9, 17, 2, rows, width, rate, &mut a);
            fastfc::backend::cpu::dropout::mask_portable(9, 17, 2, rows, width, rate, &mut b);
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "{rows}x{width} at rate {rate}");
            assert!(a.iter().all(|&m| m == 0.0 || m == 1.0 / (1.0 - rate)));
        }
    }
}

/// The engine's products (`simd::mul`: the mask forward, dy·f'(z) back; `simd::mul2`: dy·mask·f'(z))
/// at every level this CPU runs, against the written-out products, on lengths that fill no vector.
#[test]
fn the_engines_products_give_the_written_bits() {
    use fastfc::backend::cpu::simd;
    for level in fastfc::backend::cpu::simd::Level::available() {
        for n in [1, 15, 64, 1037] {
            let (x, m, d) = (nonzero(n, 1), nonzero(n, 2), nonzero(n, 3));
            let mut y = vec![f32::NAN; n];
            simd::mul_at(level, &x, &m, &mut y);
            for i in 0..n {
                assert_eq!(
                    y[i].to_bits(),
                    (x[i] * m[i]).to_bits(),
                    "{level:?} mul {i} of {n}"
                );
            }
            simd::mul2_at(level, &x, &m, &d, &mut y);
            for i in 0..n {
                assert_eq!(
                    y[i].to_bits(),
                    (x[i] * m[i] * d[i]).to_bits(),
                    "{level:?} mul2 {i} of {n}"
                );
            }
        }
    }
}
