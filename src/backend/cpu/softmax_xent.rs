//! softmax_xent: softmax + sparse categorical cross-entropy per row, with the gradient of
//! `scale · Σ loss` and the count of rows whose argmax (first maximum) is the label.
//! Reference for `kernels/softmax_xent.cu` (tests/ops/softmax_xent.rs).

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
