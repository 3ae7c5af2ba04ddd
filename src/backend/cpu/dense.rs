//! dense: y = x·Wᵀ + b over a batch, W (out, in) row-major (PyTorch's nn.Linear layout).
//! `fwd`/`bwd_x`/`bwd_w` are the textbook loops (the oracle, generic so gradcheck runs in f64);
//! `fwd_fast`/`bwd_x_fast`/`bwd_w_fast` (and the `_fused` forms the engine calls, with an epilogue
//! per strip of rows) are the f32 engine through the small-shape GEMM of `gemm.rs`.
//! Reference for `kernels/dense.cu` (tests/ops/dense.rs).

use super::gemm::{self, Isa, Strided};
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

/// The GEMM kernel family this process uses ([`gemm::Isa::detect`], read once).
pub fn isa() -> Isa {
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *ISA.get_or_init(Isa::detect)
}

/// `wt[i, o] = w[o, i]`: the weights as the forward product reads them (in, out), row-major.
pub fn transpose(w: &[f32], n_out: usize, n_in: usize, wt: &mut [f32]) {
    assert!(w.len() == n_out * n_in);
    gemm::transpose(isa(), w, n_out, n_in, wt);
}

/// `fwd` in f32 from the transposed weights `wt` (see [`transpose`]): `y = x·wt + bias`, with
/// `epilogue(row0, rows of y)` on each finished strip of rows (the activation and dropout of the
/// forward pass, while the strip is in L1).
#[allow(clippy::too_many_arguments)]
pub fn fwd_fused(
    x: &[f32],
    wt: &[f32],
    bias: &[f32],
    y: &mut [f32],
    rows: usize,
    n_in: usize,
    n_out: usize,
    epilogue: &mut dyn FnMut(usize, &mut [f32]),
) {
    let a = Strided {
        a: &x[..rows * n_in],
        rs: n_in,
        cs: 1,
    };
    gemm::gemm(
        isa(),
        (rows, n_out, n_in),
        a,
        &wt[..n_in * n_out],
        n_out,
        Some(bias),
        &mut y[..rows * n_out],
        n_out,
        epilogue,
    );
}

/// `fwd` in f32 through the small-shape GEMM (transposing `w` first; the engine keeps the
/// transpose in its workspace and calls [`fwd_fused`]).
pub fn fwd_fast(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    y: &mut [f32],
    rows: usize,
    n_in: usize,
    n_out: usize,
) {
    let mut wt = vec![0f32; n_in * n_out];
    transpose(w, n_out, n_in, &mut wt);
    fwd_fused(x, &wt, bias, y, rows, n_in, n_out, &mut |_, _| {});
}

/// `bwd_x` in f32: dx = dy·w, with `epilogue(row0, rows of dx)` on each finished strip (the
/// dropout mask and activation derivative of the layer below).
#[allow(clippy::too_many_arguments)]
pub fn bwd_x_fused(
    dy: &[f32],
    w: &[f32],
    dx: &mut [f32],
    rows: usize,
    n_in: usize,
    n_out: usize,
    epilogue: &mut dyn FnMut(usize, &mut [f32]),
) {
    let a = Strided {
        a: &dy[..rows * n_out],
        rs: n_out,
        cs: 1,
    };
    gemm::gemm(
        isa(),
        (rows, n_in, n_out),
        a,
        &w[..n_out * n_in],
        n_in,
        None,
        &mut dx[..rows * n_in],
        n_in,
        epilogue,
    );
}

/// `bwd_x` in f32: dx = dy·w.
pub fn bwd_x_fast(dy: &[f32], w: &[f32], dx: &mut [f32], rows: usize, n_in: usize, n_out: usize) {
    bwd_x_fused(dy, w, dx, rows, n_in, n_out, &mut |_, _| {});
}

/// `bwd_w` in f32: dw = dyᵀ·x (dyᵀ read through strides), db = column sums of dy.
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
    let a = Strided {
        a: &dy[..rows * n_out],
        rs: 1,
        cs: n_out,
    };
    gemm::gemm(
        isa(),
        (n_out, n_in, rows),
        a,
        &x[..rows * n_in],
        n_in,
        None,
        dw,
        n_in,
        &mut |_, _| {},
    );
    super::simd::col_sums(&dy[..rows * n_out], n_out, db);
}
