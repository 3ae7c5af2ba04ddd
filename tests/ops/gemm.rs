//! The small-shape GEMM (`backend/cpu/gemm.rs`) that the dense fast paths run on: every kernel
//! this CPU has against an f64 reference, over full and partial tiles, strided (transposed) A,
//! a bias row and a C wider than N; the AVX2 and AVX-512 kernels to the bit; the epilogue once per
//! row, in order, after the row is final.

use fastfc::backend::cpu::gemm::{self, Isa, Strided};

use crate::common::{assert_close, nonzero};

/// The kernels this CPU runs (matrixmultiply's sgemm always).
fn isas() -> Vec<Isa> {
    let best = Isa::detect();
    let mut v = vec![Isa::Sgemm];
    if best == Isa::Avx2 || best == Isa::Avx512 {
        v.push(Isa::Avx2);
    }
    if best == Isa::Avx512 {
        v.push(Isa::Avx512);
    }
    if v.len() < 3 {
        eprintln!("note: this CPU runs only {v:?}; the other kernels are not compared here");
    }
    v
}

/// (m, n, k): 1×1×1, the cohort's shapes (batch 32 × widths, the 10-class output, bwd_w's
/// 10 × 64 × 32), tiles cut in every way (n below, at and past 8, 16 and 32, a tail of one full
/// vector after a 32-wide tile; m past 6, 12), a long k.
const SHAPES: [(usize, usize, usize); 17] = [
    (1, 1, 1),
    (32, 64, 64),
    (32, 48, 32),
    (32, 10, 64),
    (10, 64, 32),
    (7, 3, 5),
    (13, 9, 17),
    (25, 17, 8),
    (6, 16, 1),
    (12, 31, 40),
    (256, 128, 48),
    (3, 40, 300),
    (14, 32, 7),
    (5, 33, 9),
    (9, 48, 12),
    (3, 49, 4),
    (2, 80, 3),
];

/// `init + A·B` in f64, A(m, k) = a[m·rs + k·cs].
#[allow(clippy::too_many_arguments)]
fn reference(
    (m, n, k): (usize, usize, usize),
    a: &[f32],
    (rs, cs): (usize, usize),
    b: &[f32],
    ldb: usize,
    init: Option<&[f32]>,
) -> Vec<f32> {
    let mut c = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = init.map_or(0.0, |v| v[j] as f64);
            for p in 0..k {
                acc += a[i * rs + p * cs] as f64 * b[p * ldb + j] as f64;
            }
            c[i * n + j] = acc as f32;
        }
    }
    c
}

/// Runs `gemm` into a C of row stride n + 3 poisoned with NaN; returns the m×n result and
/// checks the padding columns stayed NaN and the epilogue saw rows 0..m once, in order, final.
#[allow(clippy::too_many_arguments)]
fn run(
    isa: Isa,
    shape: (usize, usize, usize),
    a: &[f32],
    ars: (usize, usize),
    b: &[f32],
    ldb: usize,
    init: Option<&[f32]>,
    want: &[f32],
) -> Vec<f32> {
    let (m, n, k) = shape;
    let ldc = n + 3;
    let mut c = vec![f32::NAN; m * ldc];
    let mut next_row = 0;
    let tag = format!("{isa:?} {shape:?}");
    gemm::gemm(
        isa,
        shape,
        Strided {
            a,
            rs: ars.0,
            cs: ars.1,
        },
        b,
        ldb,
        init,
        &mut c,
        ldc,
        &mut |row0, strip| {
            assert_eq!(row0, next_row, "{tag}: strips out of order");
            let rows = (strip.len() - n) / ldc + 1;
            assert_eq!((rows - 1) * ldc + n, strip.len(), "{tag}: strip length");
            for r in 0..rows {
                let got = &strip[r * ldc..r * ldc + n];
                let w = &want[(row0 + r) * n..(row0 + r + 1) * n];
                assert_close(
                    &format!("{tag} row {} at its epilogue", row0 + r),
                    got,
                    w,
                    1e-5 * k as f32,
                    1e-5,
                );
            }
            next_row += rows;
        },
    );
    assert_eq!(next_row, m, "{tag}: the epilogue missed rows");
    let mut out = vec![0f32; m * n];
    for r in 0..m {
        out[r * n..(r + 1) * n].copy_from_slice(&c[r * ldc..r * ldc + n]);
        assert!(
            c[r * ldc + n..(r + 1) * ldc].iter().all(|v| v.is_nan()),
            "{tag}: wrote past n"
        );
    }
    out
}

#[test]
fn every_kernel_matches_the_f64_reference_and_avx2_equals_avx512_to_the_bit() {
    for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
        let seed = 100 + s as u64 * 7;
        // A both ways: row-major (m, k) and transposed storage (k, m) read through strides.
        let a = nonzero(m * k, seed);
        let b = nonzero(k * (n + 2), seed + 1);
        let bias = nonzero(n, seed + 2);
        for (ars, what) in [((k, 1), "A"), ((1, m), "Aᵀ")] {
            for init in [None, Some(&bias[..])] {
                let want = reference((m, n, k), &a, ars, &b, n + 2, init);
                let mut by_isa = vec![];
                for isa in isas() {
                    let got = run(isa, (m, n, k), &a, ars, &b, n + 2, init, &want);
                    let tag = format!("{isa:?} {what} bias={} {m}x{n}x{k}", init.is_some());
                    assert_close(&tag, &got, &want, 1e-5 * k as f32, 1e-5);
                    by_isa.push((isa, got));
                }
                // One FMA chain per element, in k order, from the same start: the same bits.
                let simd: Vec<_> = by_isa.iter().filter(|(i, _)| *i != Isa::Sgemm).collect();
                for w in simd.windows(2) {
                    let (x, y): (Vec<u32>, Vec<u32>) = (
                        w[0].1.iter().map(|v| v.to_bits()).collect(),
                        w[1].1.iter().map(|v| v.to_bits()).collect(),
                    );
                    assert_eq!(x, y, "{:?} vs {:?} on {what} {m}x{n}x{k}", w[0].0, w[1].0);
                }
            }
        }
    }
}

#[test]
fn a_short_operand_is_refused() {
    let a = nonzero(4 * 3, 1);
    let b = nonzero(3 * 5, 2);
    let mut c = vec![0f32; 4 * 5 - 1];
    let r = std::panic::catch_unwind(move || {
        gemm::gemm(
            Isa::detect(),
            (4, 5, 3),
            Strided {
                a: &a,
                rs: 3,
                cs: 1,
            },
            &b,
            5,
            None,
            &mut c,
            5,
            &mut |_, _| {},
        )
    });
    assert!(r.is_err(), "a C one float short was written");
}

#[test]
fn transpose_moves_every_element_on_every_kernel() {
    for &(rows, cols) in &[
        (1, 1),
        (8, 8),
        (64, 64),
        (10, 64),
        (64, 10),
        (48, 32),
        (13, 17),
        (16, 9),
        // Several 8 × 8 blocks a side; then with scalar edges right and below as well.
        (32, 48),
        (40, 24),
        (17, 33),
        (25, 50),
    ] {
        let x = nonzero(rows * cols, (rows * 100 + cols) as u64);
        for isa in isas() {
            let mut t = vec![f32::NAN; rows * cols];
            gemm::transpose(isa, &x, rows, cols, &mut t);
            for i in 0..rows {
                for j in 0..cols {
                    assert_eq!(
                        t[j * rows + i].to_bits(),
                        x[i * cols + j].to_bits(),
                        "{isa:?} {rows}x{cols} at ({i}, {j})"
                    );
                }
            }
        }
    }
}

#[test]
fn strides_whose_product_overflows_are_refused() {
    // (m − 1)·rs wraps to a small number in release arithmetic: the check must not.
    let a = nonzero(16, 3);
    let b = nonzero(16, 4);
    let mut c = vec![0f32; 16];
    let r = std::panic::catch_unwind(move || {
        gemm::gemm(
            Isa::detect(),
            (3, 1, 1),
            Strided {
                a: &a,
                rs: usize::MAX / 2 + 1,
                cs: 1,
            },
            &b,
            1,
            None,
            &mut c,
            1,
            &mut |_, _| {},
        )
    });
    assert!(r.is_err(), "an overflowing stride was accepted");
}
