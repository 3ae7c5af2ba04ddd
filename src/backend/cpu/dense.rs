//! dense: y = x·Wᵀ + b over a batch, W (out, in) row-major (PyTorch's nn.Linear layout).
//! `fwd`/`bwd_x`/`bwd_w` are the textbook loops (the oracle, generic so gradcheck runs in f64);
//! `fwd_fast`/`bwd_x_fast`/`bwd_w_fast` are the f32 engine through matrixmultiply's sgemm.
//! Reference for `kernels/dense.cu` (tests/ops/dense.rs).

use super::Real;

/// `y[b,o] = bias[o] + Σ_i x[b,i]·w[o,i]`.  x (rows, n_in), w (n_out, n_in), y (rows, n_out).
pub fn fwd<T: Real>(
    x: &[T],
    w: &[T],
    bias: &[T],
    y: &mut [T],
    rows: usize,
    n_in: usize,
    n_out: usize,
) {
    for b in 0..rows {
        for o in 0..n_out {
            let mut acc = bias[o];
            for i in 0..n_in {
                acc = acc + x[b * n_in + i] * w[o * n_in + i];
            }
            y[b * n_out + o] = acc;
        }
    }
}

/// `dx[b,i] = Σ_o dy[b,o]·w[o,i]`.
pub fn bwd_x<T: Real>(dy: &[T], w: &[T], dx: &mut [T], rows: usize, n_in: usize, n_out: usize) {
    for b in 0..rows {
        for i in 0..n_in {
            let mut acc = T::zero();
            for o in 0..n_out {
                acc = acc + dy[b * n_out + o] * w[o * n_in + i];
            }
            dx[b * n_in + i] = acc;
        }
    }
}

/// `dw[o,i] = Σ_b dy[b,o]·x[b,i]`;  `db[o] = Σ_b dy[b,o]`  (overwrites dw and db).
#[allow(clippy::too_many_arguments)]
pub fn bwd_w<T: Real>(
    dy: &[T],
    x: &[T],
    dw: &mut [T],
    db: &mut [T],
    rows: usize,
    n_in: usize,
    n_out: usize,
) {
    for o in 0..n_out {
        let mut acc_b = T::zero();
        for i in 0..n_in {
            let mut acc = T::zero();
            for b in 0..rows {
                acc = acc + dy[b * n_out + o] * x[b * n_in + i];
            }
            dw[o * n_in + i] = acc;
        }
        for b in 0..rows {
            acc_b = acc_b + dy[b * n_out + o];
        }
        db[o] = acc_b;
    }
}

/// `fwd` in f32 through sgemm: y = 1·x·wᵀ + 0·y, then + bias.
pub fn fwd_fast(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    y: &mut [f32],
    rows: usize,
    n_in: usize,
    n_out: usize,
) {
    assert!(x.len() >= rows * n_in && w.len() == n_out * n_in && y.len() >= rows * n_out);
    // SAFETY: bounds asserted above; wᵀ is read through strides (row stride 1, column stride n_in).
    unsafe {
        matrixmultiply::sgemm(
            rows,
            n_in,
            n_out,
            1.0,
            x.as_ptr(),
            n_in as isize,
            1,
            w.as_ptr(),
            1,
            n_in as isize,
            0.0,
            y.as_mut_ptr(),
            n_out as isize,
            1,
        );
    }
    for row in y[..rows * n_out].chunks_exact_mut(n_out) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// `bwd_x` in f32: dx = dy·w.
pub fn bwd_x_fast(dy: &[f32], w: &[f32], dx: &mut [f32], rows: usize, n_in: usize, n_out: usize) {
    assert!(dy.len() >= rows * n_out && w.len() == n_out * n_in && dx.len() >= rows * n_in);
    // SAFETY: bounds asserted above; all operands row-major.
    unsafe {
        matrixmultiply::sgemm(
            rows,
            n_out,
            n_in,
            1.0,
            dy.as_ptr(),
            n_out as isize,
            1,
            w.as_ptr(),
            n_in as isize,
            1,
            0.0,
            dx.as_mut_ptr(),
            n_in as isize,
            1,
        );
    }
}

/// `bwd_w` in f32: dw = dyᵀ·x, db = column sums of dy.
#[allow(clippy::too_many_arguments)]
pub fn bwd_w_fast(
    dy: &[f32],
    x: &[f32],
    dw: &mut [f32],
    db: &mut [f32],
    rows: usize,
    n_in: usize,
    n_out: usize,
) {
    assert!(dy.len() >= rows * n_out && x.len() >= rows * n_in && dw.len() == n_out * n_in);
    // SAFETY: bounds asserted above; dyᵀ is read through strides (1, n_out).
    unsafe {
        matrixmultiply::sgemm(
            n_out,
            rows,
            n_in,
            1.0,
            dy.as_ptr(),
            1,
            n_out as isize,
            x.as_ptr(),
            n_in as isize,
            1,
            0.0,
            dw.as_mut_ptr(),
            n_in as isize,
            1,
        );
    }
    db.fill(0.0);
    for row in dy[..rows * n_out].chunks_exact(n_out) {
        for (d, v) in db.iter_mut().zip(row) {
            *d += v;
        }
    }
}
