//! The fused engine's side of a cohort: trials trained by `kernels/fused.cu`, one CTA per trial
//! per epoch, each at its own widths and depth (no padding), with the optimizer step inside the
//! kernel. The per-op path (engine.rs) takes what this one cannot: see [`fits`].
//!
//! - Arenas: parameters and both optimizer moments of every trial, each at its own [`Layout`],
//!   back to back (`Slot::param_off`); no gradient arena (the kernel applies each gradient from
//!   registers).
//! - Order: the trials run in CTA order, heaviest first, so the longest CTAs start in the first
//!   wave when a cohort has more trials than the GPU has SMs.
//! - Launches: one per epoch (`fused_train`) and one per evaluated split (`fused_eval`); copies:
//!   the slot table and the epoch order in, the per-trial stats out.

use super::launch::{fused_eval_floats, FusedEval, FusedTrain};
use super::slot::{Slot, Stats, MAX_HIDDEN};
use super::{AnyGpu, Buf, Gpu};
use crate::backend::{EvalStats, TrainStats};
use crate::error::{Error, Result};
use crate::model::{Layout, TrialSpec, TrialState};

/// Floats of shared memory a trial needs at least, at `batch` rows a step: each hidden layer's
/// output and its derivative (2·batch·Σ widths). The logits and the batch itself go to shared
/// memory only when the launch has room to spare.
pub fn min_floats(spec: &TrialSpec, batch: usize) -> usize {
    2 * batch * spec.hp.hidden.iter().sum::<usize>()
}

/// Floats a trial uses when everything it can keep in shared memory is there.
pub fn full_floats(spec: &TrialSpec, batch: usize) -> usize {
    min_floats(spec, batch) + batch * (spec.classes + spec.inputs)
}

/// Whether the fused kernel can train `spec` at `batch` rows a step with `cap` bytes of shared
/// memory per block: at most [`MAX_HIDDEN`] hidden layers, [`min_floats`] within the cap, and
/// one evaluation row of the widest layer ([`eval_chunk`]).
pub fn fits(spec: &TrialSpec, batch: usize, cap: usize) -> bool {
    let depth = spec.hp.hidden.len();
    let widest = spec.hp.hidden.iter().copied().max().unwrap_or(0);
    (1..=MAX_HIDDEN).contains(&depth)
        && 4 * min_floats(spec, batch) <= cap
        && 4 * (2 * widest + spec.classes) <= cap
}

/// Multiply-adds per sample of one forward pass: the order key (heaviest first).
fn cost(spec: &TrialSpec) -> usize {
    let lay = spec.layout();
    lay.dims.windows(2).map(|w| w[0] * w[1]).sum()
}

/// Rows `fused_eval` scores at a time within `cap_floats` (at most 256).
pub fn eval_chunk(widest: usize, classes: usize, cap_floats: usize) -> usize {
    (cap_floats / (2 * widest + classes).max(1)).clamp(1, 256)
}

/// Which build of the fused kernels runs: the product, or a planted bug (the emulated build's
/// `fused_train_plantN`, for the tests that each bug must fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variant {
    #[default]
    Product,
    Planted(u32),
}

impl Variant {
    fn train(self) -> Result<&'static str> {
        Ok(match self {
            Variant::Product => FusedTrain::NAME,
            Variant::Planted(1) => "fused_train_plant1",
            Variant::Planted(2) => "fused_train_plant2",
            Variant::Planted(3) => "fused_train_plant3",
            Variant::Planted(4) => "fused_train_plant4",
            Variant::Planted(n) => {
                return Err(Error::backend("cuda", format!("no planted bug {n}")))
            }
        })
    }
}

/// The fused trials of a cohort.
pub struct FusedGroup {
    gpu: AnyGpu,
    pub(super) specs: Vec<TrialSpec>,
    own: Vec<Layout>,
    slots: Vec<Slot>,
    steps: Vec<u64>,
    epochs: Vec<usize>,
    dev_slots: Buf<Slot>,
    params: Buf<f32>,
    m: Buf<f32>,
    v: Buf<f32>,
    stats: Buf<Stats>,
    order: Option<Buf<u32>>,
    scratch: Option<Buf<f32>>,
    /// Bytes of shared memory one block may have on this device.
    cap: usize,
    variant: Variant,
}

/// The order of a fused group (heaviest first): for each of its places, the index in `trials`.
pub fn sort_heaviest_first(trials: &[(TrialSpec, TrialState)]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..trials.len()).collect();
    idx.sort_by_key(|&i| std::cmp::Reverse(cost(&trials[i].0)));
    idx
}

impl FusedGroup {
    /// Uploads `trials` (already in the group's order) to a stream of their own.
    pub fn new(
        gpu: &AnyGpu,
        trials: Vec<(TrialSpec, TrialState)>,
        cap: usize,
        variant: Variant,
    ) -> Result<FusedGroup> {
        let gpu = gpu.fork()?;
        let mut host_p = vec![];
        let mut host_m = vec![];
        let mut host_v = vec![];
        let (mut slots, mut specs, mut own, mut steps, mut epochs) =
            (vec![], vec![], vec![], vec![], vec![]);
        for (spec, st) in trials {
            let lay = spec.layout();
            super::engine::check_state(&spec, &lay, &st)?;
            let off = u32::try_from(host_p.len()).map_err(|_| {
                Error::backend(
                    "cuda",
                    "the cohort's parameters overflow 32-bit offsets (split the cohort with max_cohort)",
                )
            })?;
            host_p.extend_from_slice(&st.params);
            host_m.extend_from_slice(&st.m);
            if st.v.is_empty() {
                host_v.resize(host_v.len() + lay.len, 0.0);
            } else {
                host_v.extend_from_slice(&st.v);
            }
            slots.push(Slot::new(&spec, off, st.step));
            steps.push(st.step);
            epochs.push(st.epochs);
            own.push(lay);
            specs.push(spec);
        }
        Ok(FusedGroup {
            dev_slots: gpu.upload(&slots)?,
            params: gpu.upload(&host_p)?,
            m: gpu.upload(&host_m)?,
            v: gpu.upload(&host_v)?,
            stats: gpu.alloc(specs.len())?,
            gpu,
            specs,
            own,
            slots,
            steps,
            epochs,
            order: None,
            scratch: None,
            cap,
            variant,
        })
    }

    fn trials(&self) -> u32 {
        self.specs.len() as u32
    }

    /// Shared memory of the training launch at `batch`: what the hungriest trial can use, within
    /// the device's limit (every trial fits [`min_floats`] by construction).
    pub fn train_floats(&self, batch: usize) -> usize {
        let want = self
            .specs
            .iter()
            .map(|s| full_floats(s, batch))
            .max()
            .unwrap_or(0);
        want.min(self.cap / 4)
    }

    /// One epoch over `order` (a prefix of the resident split `x`, `y` of `split_n` rows).
    #[allow(clippy::too_many_arguments)]
    pub fn train_epoch(
        &mut self,
        x: &Buf<f32>,
        y: &Buf<u32>,
        split_n: usize,
        order: &[u32],
        batch: usize,
        active: &[bool],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<TrainStats>> {
        let n = order.len();
        if n > split_n || batch == 0 || n == 0 {
            return Err(Error::backend(
                "cuda",
                format!(
                    "an epoch order of {n} samples in batches of {batch} for a split of {split_n}"
                ),
            ));
        }
        let steps = n.div_ceil(batch);
        for (k, s) in self.slots.iter_mut().enumerate() {
            s.active = active[k] as u32;
            s.step0 = self.steps[k] as u32;
        }
        let g = self.gpu.clone();
        g.write(&self.dev_slots, 0, &self.slots)?;
        if self.order.as_ref().is_none_or(|o| o.len() < n) {
            self.order = Some(g.alloc(split_n)?);
        }
        let order_buf = self.order.as_ref().unwrap();
        g.write(order_buf, 0, order)?;
        let (dim, classes) = (self.specs[0].inputs, self.specs[0].classes);
        // Per trial: the epoch's rates (two floats a step), then room for the logits.
        let stride = 2 * steps + batch * classes;
        let need = stride * self.specs.len();
        if self.scratch.as_ref().is_none_or(|s| s.len() < need) {
            self.scratch = Some(g.alloc(need)?);
        }
        let launch = FusedTrain {
            slots: self.dev_slots.ptr(),
            dim: dim as i32,
            classes: classes as i32,
            order: order_buf.ptr(),
            n: n as i32,
            batch: batch as i32,
            src_x: x.ptr(),
            src_y: y.ptr(),
            params: self.params.ptr(),
            m: self.m.ptr(),
            v: self.v.ptr(),
            scratch: self.scratch.as_ref().unwrap().ptr(),
            scratch_stride: stride as u32,
            stats: self.stats.ptr(),
            smem_floats: self.train_floats(batch) as u32,
        };
        let mut l = launch.launch(self.trials());
        l.kernel = self.variant.train()?;
        {
            let _r = crate::profile::range(format_args!(
                "fused epoch: {} trials, {steps} steps",
                self.specs.len()
            ));
            g.launch(&l)?;
        }
        let on = active.iter().filter(|&&a| a).count() as u64;
        progress(steps as u64 * on);
        let stats = g.read(&self.stats)?;
        Ok(super::slot::epoch_stats(
            &stats,
            active,
            steps,
            batch,
            &mut self.steps,
            &mut self.epochs,
        ))
    }

    /// Loss and accuracy of the `active` trials on a resident split; one launch.
    pub fn evaluate(
        &self,
        x: &Buf<f32>,
        y: &Buf<u32>,
        n: usize,
        active: &[bool],
    ) -> Result<Vec<EvalStats>> {
        let g = &self.gpu;
        let mut slots = self.slots.clone();
        for (s, &a) in slots.iter_mut().zip(active) {
            s.active = a as u32;
        }
        g.write(&self.dev_slots, 0, &slots)?;
        let (dim, classes) = (self.specs[0].inputs, self.specs[0].classes);
        let widest = self
            .specs
            .iter()
            .flat_map(|s| s.hp.hidden.iter().copied())
            .max()
            .unwrap_or(1);
        let chunk = eval_chunk(widest, classes, self.cap / 4);
        let l = FusedEval {
            slots: self.dev_slots.ptr(),
            dim: dim as i32,
            classes: classes as i32,
            x: x.ptr(),
            y: y.ptr(),
            n: n as i32,
            params: self.params.ptr(),
            stats: self.stats.ptr(),
            chunk: chunk as i32,
            widest: widest as i32,
            skip_inactive: 1,
        }
        .launch(self.trials());
        debug_assert!(
            fused_eval_floats(chunk as i32, widest as i32, classes as i32) as usize * 4 <= self.cap
        );
        g.launch(&l)?;
        let stats = g.read(&self.stats)?;
        let nn = n.max(1) as f64;
        Ok(stats
            .iter()
            .zip(active)
            .map(|(s, &a)| {
                if a {
                    EvalStats {
                        loss: s.loss_sum / nn,
                        accuracy: s.correct as f64 / nn,
                    }
                } else {
                    EvalStats::default()
                }
            })
            .collect())
    }

    fn offset(&self, k: usize) -> usize {
        self.slots[k].param_off as usize
    }

    pub fn state(&self, k: usize) -> Result<TrialState> {
        let (at, len) = (self.offset(k), self.own[k].len);
        let g = &self.gpu;
        Ok(TrialState {
            params: g.read_range(&self.params, at, len)?,
            m: g.read_range(&self.m, at, len)?,
            v: if self.specs[k].hp.optimizer.has_v() {
                g.read_range(&self.v, at, len)?
            } else {
                vec![]
            },
            step: self.steps[k],
            epochs: self.epochs[k],
        })
    }

    pub fn set_state(&mut self, k: usize, st: TrialState) -> Result<()> {
        super::engine::check_state(&self.specs[k], &self.own[k], &st)?;
        let (at, len) = (self.offset(k), self.own[k].len);
        self.gpu.write(&self.params, at, &st.params)?;
        self.gpu.write(&self.m, at, &st.m)?;
        if st.v.is_empty() {
            self.gpu.write(&self.v, at, &vec![0.0; len])?;
        } else {
            self.gpu.write(&self.v, at, &st.v)?;
        }
        self.steps[k] = st.step;
        self.epochs[k] = st.epochs;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, Hyperparams, Optimizer};

    fn spec(hidden: Vec<usize>) -> TrialSpec {
        let hp = Hyperparams {
            hidden,
            activation: Activation::Elu,
            dropout: 0.1,
            learning_rate: 1e-3,
            optimizer: Optimizer::Adam,
            ..Default::default()
        };
        TrialSpec::new(0, hp, 1, 64, 10)
    }

    /// The seed's space (2–4 hidden layers of 32/48/64 units, batch 32) is fused on a T4, whose
    /// blocks may opt in to 64 KiB: its largest trial, 4 × 64, needs exactly that.
    #[test]
    fn the_seeds_space_fits_an_sm75_block() {
        let t4 = 64 << 10;
        for depth in 2..=4 {
            for w in [32, 48, 64] {
                let s = spec(vec![w; depth]);
                assert!(fits(&s, 32, t4), "{depth} × {w}");
            }
        }
        assert_eq!(4 * min_floats(&spec(vec![64; 4]), 32), t4);
        // Twice the batch needs twice the memory: an H200's 227 KiB, not a T4's.
        assert!(!fits(&spec(vec![64; 4]), 64, t4));
        assert!(fits(&spec(vec![64; 4]), 64, 227 << 10));
        // Depth 1..=8 only, and at least one evaluation row of the widest layer.
        assert!(!fits(&spec(vec![]), 32, t4));
        assert!(fits(&spec(vec![8; 8]), 32, t4));
        assert!(!fits(&spec(vec![8; 9]), 32, t4));
        assert!(!fits(&spec(vec![512, 512]), 32, t4));
    }

    #[test]
    fn evaluation_chunks_fit_the_cap() {
        let cap = (64 << 10) / 4;
        for (w, c) in [(64, 10), (1000, 37), (4096, 10)] {
            let rows = eval_chunk(w, c, cap);
            assert!((1..=256).contains(&rows));
            assert!(rows * (2 * w + c) <= cap, "{w} {c}: {rows}");
        }
        assert_eq!(eval_chunk(64, 10, cap), 118);
    }

    #[test]
    fn heaviest_trials_come_first() {
        let t: Vec<(TrialSpec, TrialState)> = [vec![16, 16], vec![64; 4], vec![48]]
            .into_iter()
            .map(|h| {
                let s = spec(h);
                let st = TrialState::init(&s);
                (s, st)
            })
            .collect();
        // Multiply-adds per sample: 1,440; 13,056; 3,552.
        assert_eq!(sort_heaviest_first(&t), vec![1, 2, 0]);
    }
}
