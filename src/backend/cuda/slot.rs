//! The cohort slot table: one [`Slot`] per trial, read on the device as `slots[trial]` by every
//! kernel, and the per-trial accumulators [`Stats`]. `#[repr(C)]` twins of `FfcSlot`/`FfcStats` in
//! `kernels/common.cuh`; sizes and field offsets are checked against the C++ side by
//! tests/kernels/slot.rs through the emulated build.

use bytemuck::{Pod, Zeroable};

use crate::model::{Layout, Optimizer, TrialSpec, EPSILON};

/// Per-trial hyperparameters and arena offset of a cohort launch (`FfcSlot`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct Slot {
    /// β1, β2 in f64 (the Adam bias correction is computed in f64, as on the CPU); RMSprop: ρ, 0.
    pub b1: f64,
    pub b2: f64,
    /// The schedule's two parameters ([`crate::schedule::Schedule::params`]).
    pub rate_a: f64,
    pub rate_b: f64,
    /// Base learning rate (the schedule scales it per step).
    pub lr: f32,
    /// Dropout rate of every hidden layer (0 = none).
    pub dropout: f32,
    pub eps: f32,
    /// 1 − β1 and 1 − β2, rounded from f64.
    pub c1: f32,
    pub c2: f32,
    /// β1, β2 rounded to f32 (Lion, RMSprop).
    pub b1f: f32,
    pub b2f: f32,
    /// SGD / RMSprop momentum (0 = none).
    pub momentum: f32,
    /// Weight decay: decoupled for AdamW, L2 for the others.
    pub wd: f32,
    /// Offset of the trial's parameters in the cohort's arenas (params, grads, m, v).
    pub param_off: u32,
    /// Activation id (`Activation as u32`).
    pub act: u32,
    /// Optimizer id (`Optimizer as u32`).
    pub opt: u32,
    /// Dropout seed.
    pub seed: u32,
    /// 1 = training; 0 = early-stopped (set by the host) or diverged (set by `softmax_xent`).
    pub active: u32,
    /// Optimizer steps taken before the current epoch.
    pub step0: u32,
    /// True hidden widths (0 = no such layer). The per-op path pads every layer to the cohort's
    /// widest (and masks the padded units' outputs); the fused kernel trains each trial at these
    /// widths.
    pub hidden: [u32; MAX_HIDDEN],
    /// Schedule id ([`crate::schedule::Schedule::id`]).
    pub sched: u32,
    /// 1 = Nesterov momentum.
    pub nesterov: u32,
    pub reserved: u32,
}

/// One epoch's stats of a cohort as the trainer takes them, advancing each trial's step and epoch
/// counters: a trial that diverged counts the steps it took (its rows in whole batches) and no
/// epoch. Inactive trials get empty stats and keep their counters.
pub fn epoch_stats(
    stats: &[Stats],
    active: &[bool],
    steps: usize,
    batch: usize,
    step_count: &mut [u64],
    epoch_count: &mut [usize],
) -> Vec<crate::backend::TrainStats> {
    let mut out = vec![];
    for (k, st) in stats.iter().enumerate() {
        if !active[k] {
            out.push(crate::backend::TrainStats::default());
            continue;
        }
        let diverged = st.diverged != 0;
        let rows = st.rows as u64;
        step_count[k] += if diverged {
            rows.div_ceil(batch as u64)
        } else {
            steps as u64
        };
        if !diverged {
            epoch_count[k] += 1;
        }
        out.push(crate::backend::TrainStats {
            loss_sum: st.loss_sum,
            correct: st.correct as u64,
            samples: rows,
            diverged,
        });
    }
    out
}

/// Most hidden layers a slot describes (`FFC_MAX_HIDDEN`), on either path.
pub const MAX_HIDDEN: usize = 8;

impl Slot {
    /// The slot of `spec`, placed at `param_off` in the cohort's arenas, after `step` optimizer
    /// steps.
    pub fn new(spec: &TrialSpec, param_off: u32, step: u64) -> Slot {
        let hp = &spec.hp;
        let (b1, b2) = match hp.optimizer {
            Optimizer::Rmsprop => (hp.rho(), 0.0),
            _ => hp.betas(),
        };
        let mut hidden = [0u32; MAX_HIDDEN];
        for (h, &w) in hidden.iter_mut().zip(&hp.hidden) {
            *h = w as u32;
        }
        let (rate_a, rate_b) = hp.schedule.params();
        Slot {
            b1,
            b2,
            rate_a,
            rate_b,
            lr: hp.learning_rate,
            dropout: hp.dropout,
            eps: EPSILON,
            c1: (1.0 - b1) as f32,
            c2: (1.0 - b2) as f32,
            b1f: b1 as f32,
            b2f: b2 as f32,
            momentum: hp.momentum() as f32,
            wd: hp.weight_decay() as f32,
            param_off,
            act: hp.activation as u32,
            opt: hp.optimizer as u32,
            seed: spec.dropout_seed(),
            active: 1,
            step0: step as u32,
            hidden,
            sched: hp.schedule.id(),
            nesterov: hp.nesterov() as u32,
            reserved: 0,
        }
    }
}

/// One step's rates in the epoch's table (`FfcRate`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct Rate {
    pub lr: f32,
    pub alpha: f32,
}

/// Per-trial accumulators of `softmax_xent` (`FfcStats`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct Stats {
    pub loss_sum: f64,
    pub correct: u32,
    pub rows: u32,
    pub diverged: u32,
    pub reserved: u32,
}

/// The padded layout every trial of a cohort shares: the input width, `depth` hidden layers of the
/// cohort's widest width, and the classes. Embedding a trial's own [`Layout`] into it is exact
/// (padded weights are zero and stay zero).
pub fn padded_layout(inputs: usize, depth: usize, width: usize, classes: usize) -> Layout {
    let mut dims = vec![inputs];
    dims.extend(std::iter::repeat_n(width, depth));
    dims.push(classes);
    Layout::new(&dims)
}

/// Copies a trial's vector (`own` layout) into the padded layout (`pad`), zero elsewhere.
pub fn pad_params(own: &Layout, pad: &Layout, src: &[f32], dst: &mut [f32]) {
    assert_eq!(own.layers(), pad.layers());
    dst.fill(0.0);
    for l in 0..own.layers() {
        let (ni, no) = (own.dims[l], own.dims[l + 1]);
        let pi = pad.dims[l];
        for o in 0..no {
            let s = own.w_off[l] + o * ni;
            let d = pad.w_off[l] + o * pi;
            dst[d..d + ni].copy_from_slice(&src[s..s + ni]);
        }
        dst[pad.b_off[l]..pad.b_off[l] + no].copy_from_slice(&src[own.b_range(l)]);
    }
}

/// The inverse of [`pad_params`]: extracts a trial's own parameters from the padded layout.
pub fn unpad_params(own: &Layout, pad: &Layout, src: &[f32], dst: &mut [f32]) {
    for l in 0..own.layers() {
        let (ni, no) = (own.dims[l], own.dims[l + 1]);
        let pi = pad.dims[l];
        for o in 0..no {
            let d = own.w_off[l] + o * ni;
            let s = pad.w_off[l] + o * pi;
            dst[d..d + ni].copy_from_slice(&src[s..s + ni]);
        }
        dst[own.b_range(l)].copy_from_slice(&src[pad.b_off[l]..pad.b_off[l] + no]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_the_c_twin() {
        assert_eq!(std::mem::size_of::<Slot>(), 136);
        assert_eq!(std::mem::size_of::<Rate>(), 8);
        assert_eq!(std::mem::align_of::<Slot>(), 8);
        assert_eq!(std::mem::size_of::<Stats>(), 24);
    }

    #[test]
    fn padding_round_trips_and_zero_fills() {
        let own = Layout::new(&[5, 3, 2, 4]);
        let pad = padded_layout(5, 2, 7, 4);
        let src: Vec<f32> = (0..own.len).map(|i| i as f32 + 1.0).collect();
        let mut p = vec![f32::NAN; pad.len];
        pad_params(&own, &pad, &src, &mut p);
        assert_eq!(p.iter().filter(|v| **v != 0.0).count(), own.len);
        let mut back = vec![0.0; own.len];
        unpad_params(&own, &pad, &p, &mut back);
        assert_eq!(back, src);
    }
}
