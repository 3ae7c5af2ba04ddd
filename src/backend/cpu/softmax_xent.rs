//! softmax_xent: softmax + sparse categorical cross-entropy per row, with the gradient of
//! `scale · Σ loss` and the count of rows whose argmax (first maximum) is the label.
//! Reference for `kernels/softmax_xent.cu` (tests/ops/softmax_xent.rs).

use super::simd::simd_dispatch;
use super::Real;

/// Returns (`Σ_rows −ln softmax(z)[y]`, correct). When `dlogits` is given it receives
/// scale·(softmax(z) − onehot(y)); pass scale = 1/rows for the gradient of the mean loss.
pub fn fwd_bwd<T: Real>(
    logits: &[T],
    labels: &[u32],
    rows: usize,
    classes: usize,
    scale: T,
    mut dlogits: Option<&mut [T]>,
) -> (f64, usize) {
    let mut loss = 0f64;
    let mut correct = 0usize;
    for r in 0..rows {
        let z = &logits[r * classes..(r + 1) * classes];
        let y = labels[r] as usize;
        let mut arg = 0;
        for c in 1..classes {
            if z[c] > z[arg] {
                arg = c;
            }
        }
        correct += (arg == y) as usize;
        let zmax = z[arg];
        let mut sum = T::zero();
        // With a gradient to fill, each e^(z − max) is computed once, into its row.
        match dlogits.as_deref_mut() {
            Some(d) => {
                let d = &mut d[r * classes..(r + 1) * classes];
                for (e, &v) in d.iter_mut().zip(z) {
                    *e = (v - zmax).exp();
                    sum = sum + *e;
                }
                let inv = T::one() / sum;
                for (c, e) in d.iter_mut().enumerate() {
                    let t = if c == y { T::one() } else { T::zero() };
                    *e = scale * (*e * inv - t);
                }
            }
            None => {
                for &v in z {
                    sum = sum + (v - zmax).exp();
                }
            }
        }
        // −ln p_y = ln Σ e^(z − max) − (z_y − max)
        loss += sum.ln().to_f64() - (z[y] - zmax).to_f64();
    }
    (loss, correct)
}

/// Rows per block of [`fwd_bwd_f32`]: its per-row maxima and label terms live on the stack.
const BLOCK: usize = 64;

simd_dispatch! {
    /// [`fwd_bwd`] in f32 as the engine runs it, to the same bits, with the exponentials of a
    /// block of rows in one loop over contiguous memory (a row of 10 classes does not fill a
    /// vector): `e` (at least rows·classes) is the workspace, and receives the gradient when
    /// `grad` (dlogits of `scale·Σ loss`). Each e^(z − max) and each row's sum is computed as
    /// `fwd_bwd` computes it, in the same order.
    #[allow(clippy::too_many_arguments)]
    pub fn fwd_bwd_f32(
        logits: &[f32],
        labels: &[u32],
        rows: usize,
        classes: usize,
        scale: f32,
        e: &mut [f32],
        grad: bool,
    ) -> (f64, usize) as fwd_bwd_f32_portable, fwd_bwd_f32_at {
        assert!(logits.len() >= rows * classes && e.len() >= rows * classes && labels.len() >= rows);
        let (mut loss, mut correct) = (0f64, 0usize);
        let c = classes;
        let mut r0 = 0;
        while r0 < rows {
            let n = BLOCK.min(rows - r0);
            let (z, e) = (&logits[r0 * c..(r0 + n) * c], &mut e[r0 * c..(r0 + n) * c]);
            // z_y − max of each row: the label's term of the loss.
            let mut zy = [0f32; BLOCK];
            for r in 0..n {
                let (z, e) = (&z[r * c..(r + 1) * c], &mut e[r * c..(r + 1) * c]);
                let y = labels[r0 + r] as usize;
                // The first maximum, as `fwd_bwd` finds it, through selects: a branch on which
                // logit is larger mispredicts about every other row.
                let (mut arg, mut zmax) = (0, z[0]);
                for (k, &v) in z.iter().enumerate().skip(1) {
                    let gt = v > zmax;
                    arg = if gt { k } else { arg };
                    zmax = if gt { v } else { zmax };
                }
                correct += (arg == y) as usize;
                for (e, &v) in e.iter_mut().zip(z) {
                    *e = v - zmax;
                }
                zy[r] = e[y];
            }
            for x in e.iter_mut() {
                *x = super::exp_f32(*x);
            }
            for (r, e) in e.chunks_exact_mut(c.max(1)).enumerate() {
                let mut sum = 0f32;
                for &x in e.iter() {
                    sum += x;
                }
                if grad {
                    let inv = 1.0 / sum;
                    let y = labels[r0 + r] as usize;
                    for (k, x) in e.iter_mut().enumerate() {
                        let t = if k == y { 1.0 } else { 0.0 };
                        *x = scale * (*x * inv - t);
                    }
                }
                loss += sum.ln() as f64 - zy[r] as f64;
            }
            r0 += n;
        }
        (loss, correct)
    }
}
