//! The CPU backend: every op as a textbook loop (generic over [`Real`], so gradient checks run in
//! f64) plus the f32 engine that trains a cohort with one trial per task, spread over cores by
//! rayon. Twins: `kernels/<op>.cu`; tests: `tests/ops/`, `tests/gradcheck.rs`.

pub mod activation;
pub mod adagrad;
pub mod adam;
pub mod dense;
pub mod dropout;
pub mod gemm;
pub mod lion;
pub mod rmsprop;
pub mod sgd;
pub mod simd;
pub mod softmax_xent;

use std::sync::Arc;

use super::{Backend, EvalStats, SplitId, TrainStats};
use crate::data::{Dataset, Split};
use crate::error::{Error, Result};
use crate::model::{Layout, Optimizer, TrialSpec, TrialState, EPSILON};

/// The scalar types the reference ops run in: f32 (the engine) and f64 (gradient checks).
pub trait Real:
    Copy
    + PartialOrd
    + std::fmt::Debug
    + Send
    + Sync
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
    + 'static
{
    fn c(v: f64) -> Self;
    fn zero() -> Self {
        Self::c(0.0)
    }
    fn one() -> Self {
        Self::c(1.0)
    }
    fn exp(self) -> Self;
    /// [`Real::exp`] of each element in place, bit for bit, in an order the core can overlap.
    #[inline(always)]
    fn exp_block<const N: usize>(x: &mut [Self; N]) {
        for v in x.iter_mut() {
            *v = v.exp();
        }
    }
    fn ln(self) -> Self;
    fn erf(self) -> Self;
    fn to_f64(self) -> f64;
}

impl Real for f32 {
    #[inline(always)]
    fn c(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn exp(self) -> Self {
        exp_f32(self)
    }
    #[inline(always)]
    fn exp_block<const N: usize>(x: &mut [Self; N]) {
        exp_f32_block(x)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f32::ln(self)
    }
    #[inline(always)]
    fn erf(self) -> Self {
        erf_f32(self)
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    #[inline(always)]
    fn c(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f64::ln(self)
    }
    #[inline(always)]
    fn erf(self) -> Self {
        libm::erf(self)
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

/// An optimizer moment below f32's smallest normal (1.2e-38) is stored as 0 (flush to zero).
/// A weight that stops getting gradient (a dead relu unit's) decays its moments geometrically
/// into the subnormals, where m·β rounds back to itself and they stay for good; on x86 every
/// arithmetic operation on a subnormal costs about a hundred cycles, which made Adam half of a relu
/// epoch. What such a moment could still move a weight by (under 1e-30) rounds away against any
/// weight's ulp, so flushing changes no weight, with one exception: Lion steps by lr·sign(m), so
/// a weight whose m is flushed stops where, with m kept subnormal, it would drift by lr a step for
/// good. `kernels/optimizer.cuh` flushes the same values (`ffc_flush`).
#[inline(always)]
pub fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}

/// The polynomial for eʳ − 1 − r, over r²: Cephes' expf coefficients, highest degree first.
const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];
const EXP_ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding and subtracting rounds to an integer

/// [`exp_f32`]'s range reduction: (y, r) with x = n·ln2 + r, n held in y's low mantissa bits.
#[inline(always)]
fn exp_reduce(x: f32) -> (f32, f32) {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Plain selects (not f32::clamp, whose NaN handling blocks vectorisation).
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    // y = n + 1.5·2²³ with n = round(x·log₂e): y's exponent is fixed, so its low mantissa bits
    // hold n, read back in `exp_scale` without a float → int cast (Rust's saturating cast does
    // not vectorise).
    let y = x * LOG2E + EXP_ROUND;
    let n = y - EXP_ROUND;
    (y, x - n * LN2_HI - n * LN2_LO)
}

/// [`exp_f32`]'s last step: eʳ from the polynomial's value `p`, times 2ⁿ built in the exponent.
#[inline(always)]
fn exp_scale(y: f32, r: f32, p: f32) -> f32 {
    let er = p * r * r + r + 1.0;
    let ni = (y.to_bits() as i32).wrapping_sub(EXP_ROUND.to_bits() as i32);
    er * f32::from_bits((ni.wrapping_add(127) as u32) << 23)
}

/// eˣ in f32 without a libm call, so elementwise loops vectorise: x = n·ln2 + r with |r| ≤ ln2/2
/// (Cody–Waite split of ln2), a degree-6 polynomial for eʳ (Cephes' expf coefficients), and 2ⁿ
/// built in the exponent bits. Inputs are clamped to [−87, 88] (results stay normal and finite).
/// Within 2 ulp of the correctly rounded value (checked in tests/ops/activation.rs), like CUDA's
/// `expf`.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let (y, r) = exp_reduce(x);
    let mut p = EXP_POLY[0];
    for &c in &EXP_POLY[1..] {
        p = p * r + c;
    }
    exp_scale(y, r, p)
}

/// [`exp_f32`] of every element of `x` in place, with the same operations (same bits), in passes
/// over the whole block: the range reduction, one pass per Horner step, the scaling. eˣ is one
/// chain of some twenty dependent operations, and a loop that runs it a vector at a time keeps
/// too few vectors in flight to fill the core (the compiler keeps the chain together even when
/// the loop is unrolled); each pass here is a short loop of independent vectors over a block in
/// L1. 1.4–1.5× on one 32 × 64 elu layer alone (`dense_step/cpu/act_fwd_train_elu` in
/// BENCHMARKS.md); the engine hands it strips of 12 rows.
#[inline(always)]
pub fn exp_f32_block<const N: usize>(x: &mut [f32; N]) {
    let (mut y, mut r) = ([0f32; N], [0f32; N]);
    for i in 0..N {
        (y[i], r[i]) = exp_reduce(x[i]);
    }
    let mut p = [EXP_POLY[0]; N];
    for &c in &EXP_POLY[1..] {
        for i in 0..N {
            p[i] = p[i] * r[i] + c;
        }
    }
    for i in 0..N {
        x[i] = exp_scale(y[i], r[i], p[i]);
    }
}

/// Below this |x|, [`erf_f32`] sums its Taylor series; above, it goes through erfc.
const ERF_SPLIT: f32 = 1.0;
/// Terms of the Taylor series erf(x) = 2/√π · Σₙ (−1)ⁿ x²ⁿ⁺¹ / (n!·(2n+1)): at |x| ≤ 1 the first
/// term left out is below 1e-9.
const ERF_TERMS: usize = 11;
const ERF_TAYLOR: [f32; ERF_TERMS] = {
    let mut c = [0f32; ERF_TERMS];
    let mut fact = 1.0f64; // n!
    let mut n = 0;
    while n < ERF_TERMS {
        if n > 0 {
            fact *= n as f64;
        }
        let sign = if n % 2 == 0 { 1.0 } else { -1.0 };
        c[n] = (sign * std::f64::consts::FRAC_2_SQRT_PI / (fact * (2 * n + 1) as f64)) as f32;
        n += 1;
    }
    c
};
/// erfc(x) ≈ t·exp(−x² + P(t)), t = 1/(1 + x/2), x ≥ 0: the Chebyshev fit in Numerical Recipes
/// (Press et al., 2nd ed., §6.2), fractional error below 1.2e-7 everywhere. P's coefficients,
/// constant term first, as published (f32 rounds them).
#[allow(clippy::excessive_precision)]
const ERFC_FIT: [f32; 10] = [
    -1.265_512_23,
    1.000_023_68,
    0.374_091_96,
    0.096_784_18,
    -0.186_288_06,
    0.278_868_07,
    -1.135_203_98,
    1.488_515_87,
    -0.822_152_23,
    0.170_872_77,
];

/// erf(x) in f32 without a libm call, so the gelu loops vectorise: both a Taylor series (|x| < 1)
/// and 1 − erfc(|x|) from the erfc fit below are computed, and a select keeps one. Within 3 ulp of the
/// correctly rounded value (checked in tests/ops/activation.rs); `libm::erff` cost 3× an elu
/// epoch, being a branchy scalar call.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let a = f32::from_bits(x.to_bits() & 0x7fff_ffff);
    let a2 = a * a;
    let mut p = ERF_TAYLOR[ERF_TERMS - 1];
    for &c in ERF_TAYLOR[..ERF_TERMS - 1].iter().rev() {
        p = p * a2 + c;
    }
    let small = a * p;
    let t = 1.0 / (1.0 + 0.5 * a);
    let mut q = ERFC_FIT[9];
    for &c in ERFC_FIT[..9].iter().rev() {
        q = q * t + c;
    }
    let large = 1.0 - t * exp_f32(q - a2);
    let r = if a < ERF_SPLIT { small } else { large };
    f32::from_bits(r.to_bits() | (x.to_bits() & 0x8000_0000))
}

/// Rows per validation/test chunk (bounded workspace, independent of the batch size).
const EVAL_ROWS: usize = 512;

/// Activations of one forward pass; every buffer is (rows, width of that layer).
#[derive(Debug, Default, Clone)]
struct Workspace {
    rows: usize,
    cap: usize,          // rows the buffers below hold
    xb: Vec<f32>,        // (rows, in) a batch gathered here (see `EpochRows`), else empty
    yb: Vec<u32>,        // (rows,)
    z: Vec<Vec<f32>>,    // per hidden layer: pre-activation
    a: Vec<Vec<f32>>,    // per hidden layer: f(z)
    d: Vec<Vec<f32>>,    // per hidden layer: f'(z) (training only)
    mask: Vec<Vec<f32>>, // per hidden layer: 0 or 1/(1-p) (training with dropout only)
    h: Vec<Vec<f32>>,    // per hidden layer: a ⊙ mask (training with dropout only)
    logits: Vec<f32>,    // (rows, classes)
    g: Vec<f32>,         // gradient flowing backwards (rows, max width)
    g2: Vec<f32>,        // second buffer for it
    g3: Vec<f32>,        // third (the backward epilogue's output)
    wt: Vec<Vec<f32>>,   // per layer: its weights transposed, (in, out)
    grad: Vec<f32>,      // (layout.len) parameter gradients
}

impl Workspace {
    fn new(lay: &Layout, rows: usize, train: bool) -> Self {
        let hidden = &lay.dims[1..lay.dims.len() - 1];
        let widest = *lay.dims.iter().max().unwrap();
        let per = |w: &usize| vec![0f32; rows * w];
        Workspace {
            rows,
            cap: rows,
            xb: vec![],
            yb: vec![],
            z: hidden.iter().map(per).collect(),
            a: hidden.iter().map(per).collect(),
            d: if train {
                hidden.iter().map(per).collect()
            } else {
                vec![]
            },
            mask: if train {
                hidden.iter().map(per).collect()
            } else {
                vec![]
            },
            h: if train {
                hidden.iter().map(per).collect()
            } else {
                vec![]
            },
            logits: vec![0f32; rows * lay.dims[lay.dims.len() - 1]],
            g: vec![0f32; rows * widest],
            g2: vec![0f32; rows * widest],
            g3: vec![0f32; rows * widest],
            wt: (0..lay.layers())
                .map(|l| vec![0f32; lay.dims[l] * lay.dims[l + 1]])
                .collect(),
            grad: if train { vec![0f32; lay.len] } else { vec![] },
        }
    }

    /// The rows of `idx` copied into `xb` and `yb`.
    fn gather(&mut self, split: &Split, idx: &[u32]) {
        gather_into(split, idx, &mut self.xb, &mut self.yb);
    }
}

/// `x`, `y` = the rows of `idx` (in that order) and their labels.
fn gather_into(split: &Split, idx: &[u32], x: &mut Vec<f32>, y: &mut Vec<u32>) {
    x.clear();
    y.clear();
    for &i in idx {
        x.extend_from_slice(split.row(i as usize));
        y.push(split.y[i as usize]);
    }
}

/// Largest copy of an epoch's rows in batch order that [`EpochRows::new`] makes (64 MiB: 12.8 MB
/// for Fashion-MNIST's 50,000 rows of 8×8); a larger training split is gathered batch by batch.
pub const EPOCH_COPY_BYTES: usize = 64 << 20;

/// The rows of one epoch in batch order. Copied once per cohort and epoch, every trial reads its
/// batches as contiguous memory that the hardware prefetcher streams, instead of each trial
/// gathering each batch from rows scattered over the split; past [`EPOCH_COPY_BYTES`], and for a
/// cohort with one trial training (`CpuBackend::train_epoch`), each trial gathers each batch
/// itself. Either way a batch holds the same rows in the same order.
pub enum EpochRows<'a> {
    Copied(Split),
    Gathered { split: &'a Split, order: &'a [u32] },
}

impl<'a> EpochRows<'a> {
    pub fn new(split: &'a Split, order: &'a [u32]) -> Self {
        Self::reusing(split, order, None)
    }

    /// [`EpochRows::new`], copying into `spare`'s buffers (an earlier epoch's, from
    /// [`EpochRows::into_spare`]) rather than fresh memory that each epoch would fault in anew.
    pub fn reusing(split: &'a Split, order: &'a [u32], spare: Option<Split>) -> Self {
        if order.len().saturating_mul(split.dim * 4) > EPOCH_COPY_BYTES {
            return EpochRows::Gathered { split, order };
        }
        let mut copy = spare.unwrap_or(Split {
            x: vec![],
            y: vec![],
            dim: split.dim,
        });
        copy.dim = split.dim;
        gather_into(split, order, &mut copy.x, &mut copy.y);
        EpochRows::Copied(copy)
    }

    /// The copy's buffers, for the next epoch's [`EpochRows::reusing`].
    pub fn into_spare(self) -> Option<Split> {
        match self {
            EpochRows::Copied(s) => Some(s),
            EpochRows::Gathered { .. } => None,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            EpochRows::Copied(s) => s.len(),
            EpochRows::Gathered { order, .. } => order.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Asks L2 for rows `r` of the epoch ahead of [`EpochRows::batch`], when they are gathered:
    /// scattered over the split, each is a cache miss the hardware prefetcher cannot foresee (the
    /// copy is read in order, which it does foresee). A lone trial's step computes for ~28 µs
    /// while the next batch's lines arrive. Measured on the seed's epoch (BENCHMARKS.md, #27):
    /// 1% faster in an 8-round A/B, inside the VM's noise; into L1 (`T0`) the prefetches
    /// stalled on L1's few outstanding misses.
    fn prefetch(&self, r: std::ops::Range<usize>) {
        #[cfg(target_arch = "x86_64")]
        if let EpochRows::Gathered { split, order } = self {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
            for &i in &order[r.start.min(order.len())..r.end.min(order.len())] {
                let row = split.row(i as usize);
                // Every 64-byte line the row touches: one per 16 floats from its start, and its
                // last element's, which is on one more line when the row starts mid-line.
                for p in row.iter().step_by(16).chain(row.last()) {
                    // SAFETY: a prefetch is a hint that never faults; the address is in the row.
                    unsafe { _mm_prefetch::<_MM_HINT_T1>(p as *const f32 as *const i8) };
                }
            }
        }
        let _ = r;
    }

    /// Rows `r` of the epoch and their labels: a slice of the copy, or gathered into `x`, `y`.
    fn batch<'b>(
        &'b self,
        r: std::ops::Range<usize>,
        x: &'b mut Vec<f32>,
        y: &'b mut Vec<u32>,
    ) -> (&'b [f32], &'b [u32]) {
        match self {
            EpochRows::Copied(s) => (&s.x[r.start * s.dim..r.end * s.dim], &s.y[r]),
            EpochRows::Gathered { split, order } => {
                gather_into(split, &order[r], x, y);
                (x, y)
            }
        }
    }
}

/// One trial of a CPU cohort.
#[derive(Debug, Clone)]
pub struct CpuTrial {
    pub spec: TrialSpec,
    pub lay: Layout,
    pub state: TrialState,
    ws: Workspace,
    /// Steps per epoch of the epoch being trained (the schedule's unit).
    steps_per_epoch: usize,
}

impl CpuTrial {
    pub fn new(spec: TrialSpec, state: TrialState) -> Result<Self> {
        let lay = spec.layout();
        if state.params.len() != lay.len || state.m.len() != lay.len {
            return Err(Error::backend(
                "cpu",
                format!(
                    "trial {}: state has {} parameters, its layout needs {}",
                    spec.id,
                    state.params.len(),
                    lay.len
                ),
            ));
        }
        if spec.hp.optimizer.has_v() && state.v.len() != lay.len {
            return Err(Error::backend(
                "cpu",
                format!(
                    "trial {}: {} needs a second moment of {} values, the state has {}",
                    spec.id,
                    spec.hp.optimizer,
                    lay.len,
                    state.v.len()
                ),
            ));
        }
        Ok(CpuTrial {
            spec,
            lay,
            state,
            ws: Workspace::default(),
            steps_per_epoch: 1,
        })
    }

    /// Forward pass of the `ws.rows` rows of `x` into `ws.logits`; with `dropout = Some(step)`
    /// masks are drawn for that optimizer step. Each hidden layer is one GEMM whose epilogue
    /// applies the activation (and the dropout mask) to each strip of rows as it is finished.
    fn forward(&self, ws: &mut Workspace, x: &[f32], dropout: Option<u32>) {
        let lay = &self.lay;
        let p = &self.state.params;
        let rows = ws.rows;
        let act = self.spec.hp.activation;
        let rate = self.spec.hp.dropout;
        let dropping = dropout.is_some() && rate > 0.0;
        let n_hidden = lay.layers() - 1;
        for l in 0..=n_hidden {
            let (n_in, n_out) = (lay.dims[l], lay.dims[l + 1]);
            let (w, b) = (&p[lay.w_range(l)], &p[lay.b_range(l)]);
            dense::transpose(w, n_out, n_in, &mut ws.wt[l]);
            let last = l == n_hidden;
            // This layer's outputs, out of the workspace while the previous layer's are read.
            let mut z = std::mem::take(if last { &mut ws.logits } else { &mut ws.z[l] });
            let mut a = if last {
                vec![]
            } else {
                std::mem::take(&mut ws.a[l])
            };
            // Training keeps f'(z) for the backward pass.
            let train = dropout.is_some() && !last;
            let mut d = if train {
                std::mem::take(&mut ws.d[l])
            } else {
                vec![]
            };
            let mut h = if dropping && !last {
                std::mem::take(&mut ws.h[l])
            } else {
                vec![]
            };
            if let (Some(step), true, false) = (dropout, dropping, last) {
                let seed = self.spec.dropout_seed();
                let n = rows * n_out;
                dropout::mask(
                    seed,
                    step,
                    l as u32,
                    rows,
                    n_out,
                    rate,
                    &mut ws.mask[l][..n],
                );
            }
            let input: &[f32] = if l == 0 {
                x
            } else if dropping {
                &ws.h[l - 1]
            } else {
                &ws.a[l - 1]
            };
            let mask: &[f32] = if dropping && !last { &ws.mask[l] } else { &[] };
            let mut epilogue = |row0: usize, strip: &mut [f32]| {
                if last {
                    return;
                }
                let s = row0 * n_out..row0 * n_out + strip.len();
                if train {
                    activation::fwd_train(act, strip, &mut a[s.clone()], &mut d[s.clone()]);
                } else {
                    activation::fwd(act, strip, &mut a[s.clone()]);
                }
                if dropping {
                    simd::mul(&a[s.clone()], &mask[s.clone()], &mut h[s]);
                }
            };
            dense::fwd_fused(
                input,
                &ws.wt[l],
                b,
                &mut z,
                rows,
                n_in,
                n_out,
                &mut epilogue,
            );
            if last {
                ws.logits = z;
            } else {
                ws.z[l] = z;
                ws.a[l] = a;
                if train {
                    ws.d[l] = d;
                }
                if dropping {
                    ws.h[l] = h;
                }
            }
        }
    }

    /// Backward pass from `ws.g` = dL/dlogits into `ws.grad` (`x`: the batch the forward pass
    /// read): per layer the weight gradient, then one GEMM for the gradient of the layer below
    /// whose epilogue applies that layer's dropout mask and activation derivative to each
    /// finished strip of rows.
    fn backward(&self, ws: &mut Workspace, x: &[f32]) {
        let lay = &self.lay;
        let p = &self.state.params;
        let rows = ws.rows;
        let dropped = self.spec.hp.dropout > 0.0;
        let mut g = std::mem::take(&mut ws.g);
        let mut g2 = std::mem::take(&mut ws.g2);
        let mut g3 = std::mem::take(&mut ws.g3);
        let mut grad = std::mem::take(&mut ws.grad);
        for l in (0..lay.layers()).rev() {
            let (n_in, n_out) = (lay.dims[l], lay.dims[l + 1]);
            let input: &[f32] = if l == 0 {
                x
            } else if dropped {
                &ws.h[l - 1]
            } else {
                &ws.a[l - 1]
            };
            let (dw, rest) = grad[lay.w_off[l]..].split_at_mut(n_in * n_out);
            dense::bwd_w_fast(&g, input, dw, &mut rest[..n_out], rows, n_in, n_out);
            if l == 0 {
                break;
            }
            // g2 = dL/d(output of layer l-1) = g·W_l; then, per strip, back through dropout and
            // the activation into g3, which becomes the next layer's g.
            let d = &ws.d[l - 1];
            let mask: &[f32] = if dropped { &ws.mask[l - 1] } else { &[] };
            dense::bwd_x_fused(
                &g,
                &p[lay.w_range(l)],
                &mut g2,
                rows,
                n_in,
                n_out,
                &mut |row0, strip| {
                    let s = row0 * n_in..row0 * n_in + strip.len();
                    // dz = dy·mask·f'(z), f'(z) as the forward pass kept it (activation::fwd_train).
                    if dropped {
                        simd::mul2(strip, &mask[s.clone()], &d[s.clone()], &mut g3[s]);
                    } else {
                        simd::mul(strip, &d[s.clone()], &mut g3[s]);
                    }
                },
            );
            std::mem::swap(&mut g, &mut g3);
        }
        ws.g = g;
        ws.g2 = g2;
        ws.g3 = g3;
        ws.grad = grad;
    }

    /// One optimizer step on `ws.grad`, at the rate the trial's schedule gives its step count.
    fn update(&mut self, grad: &[f32]) {
        let st = &mut self.state;
        optimizer_step(
            &self.spec.hp,
            st.step,
            self.steps_per_epoch,
            &mut st.params,
            grad,
            &mut st.m,
            &mut st.v,
        );
        st.step += 1;
    }

    /// The forward pass of the batch `x`, `y` at optimizer step `step` (its dropout masks) and
    /// the softmax cross-entropy: returns (loss sum, correct) and leaves dL/dlogits of the mean
    /// loss in `ws.g`. Shared by training and the gradient checks.
    fn forward_loss(&self, ws: &mut Workspace, x: &[f32], y: &[u32], step: u32) -> (f64, usize) {
        ws.rows = y.len();
        self.forward(ws, x, Some(step));
        let (rows, classes) = (ws.rows, self.spec.classes);
        softmax_xent::fwd_bwd_f32(
            &ws.logits,
            y,
            rows,
            classes,
            1.0 / rows as f32,
            &mut ws.g,
            true,
        )
    }

    /// The mean loss over the rows of `idx` and its gradient with respect to every parameter,
    /// as a training step at optimizer step `step` computes them (the same dropout masks), without
    /// updating anything: what the gradient checks differentiate.
    pub fn loss_and_gradient(&self, split: &Split, idx: &[u32], step: u32) -> (f64, Vec<f32>) {
        let mut ws = Workspace::new(&self.lay, idx.len(), true);
        let (mut x, mut y) = (vec![], vec![]);
        gather_into(split, idx, &mut x, &mut y);
        let (loss, _) = self.forward_loss(&mut ws, &x, &y, step);
        self.backward(&mut ws, &x);
        (loss / ws.rows as f64, ws.grad)
    }

    /// The trial's workspace, sized for batches of `rows` (by its buffers, not `ws.rows`, which a
    /// short last batch lowers).
    fn take_workspace(&mut self, rows: usize) -> Workspace {
        let ws = std::mem::take(&mut self.ws);
        if ws.cap < rows || ws.grad.is_empty() {
            return Workspace::new(&self.lay, rows, true);
        }
        ws
    }

    /// One training step on the batch `x` (rows × inputs), `y`. Returns (loss sum, correct).
    fn step_on(&mut self, ws: &mut Workspace, x: &[f32], y: &[u32]) -> (f64, usize) {
        let (loss, correct) = self.forward_loss(ws, x, y, self.state.step as u32);
        if loss.is_finite() {
            self.backward(ws, x);
            let grad = std::mem::take(&mut ws.grad);
            self.update(&grad);
            ws.grad = grad;
        }
        (loss, correct)
    }

    /// One training step on the rows of `idx` (a mini-batch). Returns (loss sum, correct).
    pub fn train_step(&mut self, split: &Split, idx: &[u32]) -> (f64, usize) {
        let mut ws = self.take_workspace(idx.len());
        ws.gather(split, idx);
        let (x, y) = (std::mem::take(&mut ws.xb), std::mem::take(&mut ws.yb));
        let out = self.step_on(&mut ws, &x, &y);
        (ws.xb, ws.yb) = (x, y);
        self.ws = ws;
        out
    }

    /// One epoch over `rows` (the epoch's rows in batch order) in batches of `batch`.
    pub fn train_epoch(
        &mut self,
        rows: &EpochRows,
        batch: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> TrainStats {
        let mut st = TrainStats::default();
        let (n, batch) = (rows.len(), batch.max(1));
        self.steps_per_epoch = n.div_ceil(batch);
        let mut ws = self.take_workspace(batch.min(n.max(1)));
        let (mut xb, mut yb) = (std::mem::take(&mut ws.xb), std::mem::take(&mut ws.yb));
        let mut pending = 0u64;
        for r0 in (0..n).step_by(batch) {
            let (x, y) = rows.batch(r0..(r0 + batch).min(n), &mut xb, &mut yb);
            let next = (r0 + batch).min(n);
            rows.prefetch(next..next.saturating_add(batch).min(n));
            let (loss, correct) = self.step_on(&mut ws, x, y);
            if !loss.is_finite() {
                st.diverged = true;
                break;
            }
            st.loss_sum += loss;
            st.correct += correct as u64;
            st.samples += y.len() as u64;
            pending += 1;
            if pending == 64 {
                progress(pending);
                pending = 0;
            }
        }
        (ws.xb, ws.yb) = (xb, yb);
        self.ws = ws;
        progress(pending);
        if !st.diverged {
            self.state.epochs += 1;
        }
        st
    }

    /// Mean loss and accuracy over a whole split, no dropout.
    pub fn evaluate(&self, split: &Split) -> EvalStats {
        let mut ws = Workspace::new(&self.lay, EVAL_ROWS.min(split.len().max(1)), false);
        let (mut loss, mut correct) = (0f64, 0usize);
        // The split's rows in order: each chunk is read where it lies.
        let d = split.dim;
        assert_eq!(
            d, self.lay.dims[0],
            "evaluate: split rows of {d} values for a model of {}",
            self.lay.dims[0]
        );
        for (x, y) in split.x.chunks(ws.cap * d).zip(split.y.chunks(ws.cap)) {
            ws.rows = y.len();
            self.forward(&mut ws, x, None);
            let c = self.spec.classes;
            // ws.g (rows × the widest layer) is the exponentials' scratch.
            let (l, k) =
                softmax_xent::fwd_bwd_f32(&ws.logits, y, y.len(), c, 1.0, &mut ws.g, false);
            loss += l;
            correct += k;
        }
        let n = split.len().max(1) as f64;
        EvalStats {
            loss: loss / n,
            accuracy: correct as f64 / n,
        }
    }
}

impl CpuTrial {
    /// Class probabilities (the softmax of the logits, rows × classes) of each row of `x`
    /// (rows × inputs), without dropout: what `fastfc predict` writes.
    pub fn predict_proba(&self, x: &[f32]) -> Vec<f32> {
        let (d, c) = (self.lay.dims[0], self.spec.classes);
        let n = x.len() / d;
        let mut ws = Workspace::new(&self.lay, EVAL_ROWS.min(n.max(1)), false);
        let mut out = vec![0f32; n * c];
        for (chunk, dst) in x.chunks(EVAL_ROWS * d).zip(out.chunks_mut(EVAL_ROWS * c)) {
            ws.rows = chunk.len() / d;
            self.forward(&mut ws, chunk, None);
            for (z, p) in ws.logits.chunks_exact(c).zip(dst.chunks_exact_mut(c)) {
                let m = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
                let sum: f64 = z.iter().map(|&v| (v as f64 - m).exp()).sum();
                for (pi, &v) in p.iter_mut().zip(z) {
                    *pi = ((v as f64 - m).exp() / sum) as f32;
                }
            }
        }
        out
    }
}

/// One step of `hp`'s optimizer at 0-based iteration `t` (epochs of `steps` steps) over a flat
/// parameter vector: the rates from its schedule, then the optimizer's rule (`v` may be empty for
/// the optimizers without a second buffer). The reference the `optimize` kernel and the fused
/// kernel are checked against (tests/kernels/optimizer.rs).
pub fn optimizer_step(
    hp: &crate::model::Hyperparams,
    t: u64,
    steps: usize,
    p: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    let (b1, b2) = hp.betas();
    let rate = crate::schedule::rate(hp, t, steps);
    // The coefficient in f32, as the device slot carries it (kernels/optimizer.cuh).
    let wd = hp.weight_decay() as f32;
    // AdamW decays the weights (decoupled); every other optimizer adds wd·p to the gradient.
    let (l2, decay) = match hp.optimizer {
        Optimizer::Adamw => (0.0, (wd as f64 * rate.lr as f64) as f32),
        _ => (wd, 0.0),
    };
    match hp.optimizer {
        Optimizer::Adam | Optimizer::Adamw => {
            adam::step(p, grad, m, v, rate.alpha, b1, b2, EPSILON, l2, decay)
        }
        Optimizer::Lion => lion::step(p, grad, m, rate.lr, b1, b2, l2),
        Optimizer::Sgd => sgd::step(p, grad, m, rate.lr, hp.momentum() as f32, hp.nesterov(), l2),
        Optimizer::Rmsprop => rmsprop::step(
            p,
            grad,
            m,
            v,
            rate.lr,
            hp.rho(),
            hp.momentum() as f32,
            EPSILON,
            l2,
        ),
        Optimizer::Adagrad => adagrad::step(p, grad, m, rate.lr, EPSILON, l2),
    }
}

/// Work per sample of a trial: its multiply-adds (what a step and an evaluation scale with).
pub fn trial_cost(lay: &Layout) -> usize {
    lay.dims.windows(2).map(|d| d[0] * d[1]).sum()
}

/// Runs `f` on every active item, spread over rayon's threads largest first (greedy
/// longest-processing-time scheduling: each thread takes the largest trial not yet started, so a
/// 4×64 trial never starts last while another thread idles); items that are not active get
/// `R::default()`. Each item runs on one thread, so results do not depend on the thread count.
fn largest_first<T: Send, R: Default + Send>(
    items: &mut [T],
    active: &[bool],
    cost: impl Fn(&T) -> usize,
    f: impl Fn(&mut T) -> R + Sync,
) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let n = items.len();
    let mut queue: Vec<(usize, &mut T)> = items
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| active.get(*i).copied().unwrap_or(false))
        .collect();
    // Largest first; equal costs in cohort order.
    queue.sort_by_key(|(i, t)| (std::cmp::Reverse(cost(t)), *i));
    let slots: Vec<Mutex<(usize, &mut T, Option<R>)>> = queue
        .into_iter()
        .map(|(i, t)| Mutex::new((i, t, None)))
        .collect();
    let next = AtomicUsize::new(0);
    let workers = rayon::current_num_threads().min(slots.len());
    rayon::scope(|s| {
        for _ in 0..workers {
            s.spawn(|_| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(slot) = slots.get(k) else { break };
                let mut slot = slot.lock().expect("a trial's slot is taken once");
                let r = f(&mut *slot.1);
                slot.2 = Some(r);
            });
        }
    });
    let mut out: Vec<R> = (0..n).map(|_| R::default()).collect();
    for slot in slots {
        let (i, _, r) = slot.into_inner().expect("not poisoned");
        out[i] = r.expect("every queued trial ran");
    }
    out
}

/// Cohort state of the CPU backend: the trials themselves.
#[derive(Debug)]
pub struct CpuCohort {
    pub trials: Vec<CpuTrial>,
}

/// The CPU backend. Uses rayon's current pool (size it with `--threads` / RAYON_NUM_THREADS).
pub struct CpuBackend {
    data: Arc<Dataset>,
    /// The last epoch's copy of its rows ([`EpochRows`]), whose memory the next one reuses: up to
    /// [`EPOCH_COPY_BYTES`] held as long as the backend.
    spare: std::sync::Mutex<Option<Split>>,
}

impl CpuBackend {
    pub fn new(data: Arc<Dataset>) -> Self {
        CpuBackend {
            data,
            spare: Default::default(),
        }
    }

    fn split(&self, s: SplitId) -> &Split {
        match s {
            SplitId::Train => &self.data.train,
            SplitId::Val => &self.data.val,
            SplitId::Test => &self.data.test,
        }
    }
}

impl Backend for CpuBackend {
    type Cohort = CpuCohort;

    fn name(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn data(&self) -> &Dataset {
        &self.data
    }

    fn load(&self, trials: Vec<(TrialSpec, TrialState)>) -> Result<CpuCohort> {
        for (spec, _) in &trials {
            super::check_fits("cpu", spec, &self.data)?;
        }
        Ok(CpuCohort {
            trials: trials
                .into_iter()
                .map(|(s, st)| CpuTrial::new(s, st))
                .collect::<Result<_>>()?,
        })
    }

    fn train_epoch(
        &self,
        c: &mut CpuCohort,
        order: &[u32],
        batch: usize,
        active: &[bool],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<TrainStats>> {
        // The epoch's rows in batch order, gathered once for the cohort. A lone trial reads each
        // row once, so it gathers its batches itself, into L1, rather than have the epoch's copy
        // (12.8 MB for Fashion-MNIST) written out to memory and read back.
        let readers = active.iter().filter(|&&a| a).count();
        let rows = if readers > 1 {
            let spare = self.spare.lock().map(|mut s| s.take()).unwrap_or(None);
            EpochRows::reusing(&self.data.train, order, spare)
        } else {
            EpochRows::Gathered {
                split: &self.data.train,
                order,
            }
        };
        let stats = largest_first(
            &mut c.trials,
            active,
            |t| trial_cost(&t.lay),
            |t| t.train_epoch(&rows, batch, progress),
        );
        if let (Some(copy), Ok(mut s)) = (rows.into_spare(), self.spare.lock()) {
            *s = Some(copy);
        }
        Ok(stats)
    }

    fn evaluate(&self, c: &CpuCohort, split: SplitId, active: &[bool]) -> Result<Vec<EvalStats>> {
        let s = self.split(split);
        let mut refs: Vec<&CpuTrial> = c.trials.iter().collect();
        Ok(largest_first(
            &mut refs,
            active,
            |t| trial_cost(&t.lay),
            |t| t.evaluate(s),
        ))
    }

    fn state(&self, c: &CpuCohort, i: usize) -> Result<TrialState> {
        Ok(c.trials[i].state.clone())
    }

    fn set_state(&self, c: &mut CpuCohort, i: usize, state: TrialState) -> Result<()> {
        // The checks `CpuTrial::new` makes (parameters and first moment sized by the layout).
        let t = &mut c.trials[i];
        *t = CpuTrial::new(t.spec.clone(), state)?;
        Ok(())
    }
}
