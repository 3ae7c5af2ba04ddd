use fastfc::backend::cpu::dense;

use crate::common::{assert_close, nonzero};

/// Shapes: 1×1, the search space's widths, partial tiles, the output layer.
const SHAPES: [(usize, usize, usize); 7] = [
    (1, 1, 1),
    (32, 64, 64),
    (32, 64, 48),
    (17, 33, 10),
    (16, 48, 32),
    (5, 7, 3),
    (500, 64, 10),
];

#[test]
fn fast_paths_match_reference() {
    for (k, &(rows, n_in, n_out)) in SHAPES.iter().enumerate() {
        let s = k as u64 * 10;
        let x = nonzero(rows * n_in, s + 1);
        let w = nonzero(n_out * n_in, s + 2);
        let b = nonzero(n_out, s + 3);
        let dy = nonzero(rows * n_out, s + 4);
        let tag = format!("{rows}x{n_in}->{n_out}");
        let tol = 1e-5 * n_in.max(rows) as f32;

        let (mut want, mut got) = (vec![f32::NAN; rows * n_out], vec![f32::NAN; rows * n_out]);
        dense::fwd(&x, &w, &b, &mut want, rows, n_in, n_out);
        dense::fwd_fast(&x, &w, &b, &mut got, rows, n_in, n_out);
        assert_close(&format!("dense_fwd {tag}"), &got, &want, tol, 1e-5);

        let (mut want, mut got) = (vec![f32::NAN; rows * n_in], vec![f32::NAN; rows * n_in]);
        dense::bwd_x(&dy, &w, &mut want, rows, n_in, n_out);
        dense::bwd_x_fast(&dy, &w, &mut got, rows, n_in, n_out);
        assert_close(&format!("dense_bwd_x {tag}"), &got, &want, tol, 1e-5);

        let (mut ww, mut wb) = (vec![f32::NAN; n_out * n_in], vec![f32::NAN; n_out]);
        let (mut gw, mut gb) = (vec![f32::NAN; n_out * n_in], vec![f32::NAN; n_out]);
        dense::bwd_w(&dy, &x, &mut ww, &mut wb, rows, n_in, n_out);
        dense::bwd_w_fast(&dy, &x, &mut gw, &mut gb, rows, n_in, n_out);
        assert_close(&format!("dense_bwd_w {tag}"), &gw, &ww, tol, 1e-5);
        assert_close(&format!("dense_bwd_b {tag}"), &gb, &wb, tol, 1e-5);
    }
}

#[test]
fn fast_fwd_leaves_rows_beyond_the_batch_alone() {
    // A workspace sized for 32 rows used for a partial batch of 16: rows 16.. must stay untouched.
    let (rows, n_in, n_out) = (16, 8, 4);
    let x = nonzero(32 * n_in, 1);
    let w = nonzero(n_out * n_in, 2);
    let b = nonzero(n_out, 3);
    let mut y = vec![-7.0f32; 32 * n_out];
    dense::fwd_fast(&x, &w, &b, &mut y, rows, n_in, n_out);
    assert!(y[rows * n_out..].iter().all(|&v| v == -7.0));
    assert!(y[..rows * n_out]
        .iter()
        .all(|&v| v != -7.0 && v.is_finite()));
}

/// The bias gradient (`simd::col_sums`, what `bwd_w_fast` gives as db) at every level this CPU
/// runs: each column summed from 0 in row order, bit for bit, over widths that fill its block
/// of 64 columns, leave a tail, or fill no vector; the output starts poisoned.
#[test]
fn bias_gradient_sums_each_column_in_row_order() {
    use fastfc::backend::cpu::simd::{self, Level};
    for level in Level::available() {
        for (k, &(rows, cols)) in [(1, 1), (32, 10), (32, 64), (33, 48), (7, 100), (32, 130)]
            .iter()
            .enumerate()
        {
            let x = nonzero(rows * cols, 40 + k as u64);
            let mut got = vec![f32::NAN; cols];
            simd::col_sums_at(level, &x, cols, &mut got);
            for j in 0..cols {
                let want = (0..rows).fold(0f32, |s, r| s + x[r * cols + j]);
                assert_eq!(
                    got[j].to_bits(),
                    want.to_bits(),
                    "{level:?} {rows}x{cols}: column {j}"
                );
            }
        }
    }
}
