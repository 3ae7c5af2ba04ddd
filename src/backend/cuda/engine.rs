//! The multi-trial CUDA engine: [`CudaBackend`] implements the [`Backend`] contract on any
//! [`Gpu`] (a real device through cudarc, or the emulated executor in tests and CI).
//!
//! Two paths, picked per trial when a cohort is loaded: the **fused** path (`super::fused`,
//! kernels/fused.cu: one CTA per trial per epoch at the trial's true widths) takes every trial
//! whose activations fit in a block's shared memory at the study's batch size; the **per-op**
//! path below (one launch per op per step, graph-captured, widths padded per depth group) takes
//! the rest, up to [`MAX_HIDDEN`] hidden layers. `FASTFC_CUDA_ENGINE=per-op` (or
//! [`CudaBackend::with_engine`]) sends every trial down the per-op path, for comparisons.
//!
//! The per-op path:
//! - Residency: the three splits are uploaded once, at construction. Each epoch uploads its batch
//!   order (one `u32` per sample) once; every step gathers its rows on the device.
//! - Cohorts: trials are grouped by depth; each group pads its hidden layers to its widest (exact,
//!   see `slot.rs`) and keeps parameters, gradients and both optimizer moments of all its trials in
//!   one arena each. Every launch covers the whole group (grid = trials).
//! - Concurrency: every group has its own stream and host thread, so groups of different depth
//!   train at the same time; an epoch's launches are captured once as a CUDA graph and replayed
//!   every later epoch (the emulator records and replays them the same way).
//! - Masking: early-stopped trials get `active = 0` in their slot; a trial whose loss turns
//!   non-finite is deactivated on the device by `softmax_xent` in the step it happens.
//! - Copies back: per epoch only the per-trial stats (loss sum, correct, rows, diverged).

use std::sync::Arc;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::fused::{self, FusedGroup, Variant};
use super::launch::*;
use super::slot::{pad_params, padded_layout, unpad_params, Rate, Slot, Stats, MAX_HIDDEN};
use super::{AnyGpu, Buf, Gpu, Ptr};
use crate::backend::{Backend, EvalStats, SplitId, TrainStats};
use crate::data::{Dataset, Split};
use crate::error::{Error, Result};
use crate::model::{Layout, TrialSpec, TrialState};

/// Rows per evaluation launch.
/// Rows per evaluation launch (a split larger than this is scored chunk by chunk).
pub const EVAL_ROWS: usize = 1024;

/// The most trials one launch can cover: the grid dimension that selects the trial (y or z) holds
/// at most 65,535 blocks.
pub const MAX_GRID_TRIALS: usize = 65_535;

/// The most trials of `params` padded parameters one group can hold: the grid limit, and trial
/// offsets in the arena (`FfcSlot::param_off`, 32 bits).
pub fn max_group_trials(params: usize) -> usize {
    MAX_GRID_TRIALS
        .min(u32::MAX as usize / params.max(1))
        .max(1)
}

/// A split resident on the device.
struct DevSplit {
    x: Buf<f32>,
    y: Buf<u32>,
    n: usize,
}

/// Which paths a [`CudaBackend`] may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// The fused kernel for every trial that fits it, the per-op path for the rest (default).
    Auto,
    /// The per-op path for every trial (`FASTFC_CUDA_ENGINE=per-op`).
    PerOp,
}

impl Engine {
    /// `FASTFC_CUDA_ENGINE`: `auto` (default) or `per-op`.
    pub fn from_env() -> Result<Engine> {
        Engine::parse(std::env::var("FASTFC_CUDA_ENGINE").ok().as_deref())
    }

    /// The engine a `FASTFC_CUDA_ENGINE` value names (unset or empty: auto).
    pub fn parse(value: Option<&str>) -> Result<Engine> {
        match value {
            None | Some("") | Some("auto") => Ok(Engine::Auto),
            Some("per-op") => Ok(Engine::PerOp),
            Some(other) => Err(Error::flag(
                "FASTFC_CUDA_ENGINE",
                format!("{other:?}: expected auto (the fused kernel for every trial that fits it, the per-op path for the rest) or per-op"),
            )),
        }
    }
}

#[cfg(test)]
mod engine_choice {
    use super::Engine;

    #[test]
    fn the_engine_variable_takes_auto_or_per_op_and_names_itself_otherwise() {
        assert_eq!(Engine::parse(None).unwrap(), Engine::Auto);
        assert_eq!(Engine::parse(Some("")).unwrap(), Engine::Auto);
        assert_eq!(Engine::parse(Some("auto")).unwrap(), Engine::Auto);
        assert_eq!(Engine::parse(Some("per-op")).unwrap(), Engine::PerOp);
        // No fused-only mode: a trial that does not fit has no fused kernel to run on.
        for bad in ["fused", "PerOp", "per_op"] {
            let e = Engine::parse(Some(bad)).unwrap_err().to_string();
            assert!(
                e.contains("FASTFC_CUDA_ENGINE") && e.contains(bad) && e.contains("per-op"),
                "{e}"
            );
        }
    }
}

/// Trials a backend has loaded on each path so far (what `fastfc bench` reports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Paths {
    pub fused: usize,
    pub per_op: usize,
}

impl std::ops::Add for Paths {
    type Output = Paths;
    fn add(self, o: Paths) -> Paths {
        Paths {
            fused: self.fused + o.fused,
            per_op: self.per_op + o.per_op,
        }
    }
}

/// The CUDA backend: a device and the resident data.
pub struct CudaBackend {
    data: Arc<Dataset>,
    gpu: AnyGpu,
    train: DevSplit,
    val: DevSplit,
    test: DevSplit,
    /// Capture each epoch as a CUDA graph and replay it (`FASTFC_CUDA_GRAPHS=0` turns it off).
    graphs: bool,
    engine: Engine,
    variant: Variant,
    /// Shared memory per block the fused path may use (the device's limit unless lowered).
    shared: usize,
    /// The batch size cohorts are partitioned for (the last one the trainer named).
    batch_hint: AtomicUsize,
    paths: Mutex<Paths>,
}

/// Activations and gradients of one group for `rows` rows per launch.
struct Workspace {
    rows: usize,
    xb: Buf<f32>,
    yb: Buf<u32>,
    /// Per hidden layer: pre-activation, activation, dropout mask, dropped activation.
    z: Vec<Buf<f32>>,
    a: Vec<Buf<f32>>,
    mask: Vec<Buf<f32>>,
    h: Vec<Buf<f32>>,
    logits: Buf<f32>,
    /// Ping-pong gradient buffers (trials, rows, max(width, classes)).
    g: [Buf<f32>; 2],
}

/// Trials of one depth, trained by the same launches.
struct Group {
    gpu: AnyGpu,
    specs: Vec<TrialSpec>,
    own: Vec<Layout>,
    pad: Layout,
    depth: usize,
    any_dropout: bool,
    slots: Vec<Slot>,
    steps: Vec<u64>,
    epochs: Vec<usize>,
    dev_slots: Buf<Slot>,
    params: Buf<f32>,
    grads: Buf<f32>,
    m: Buf<f32>,
    v: Buf<f32>,
    stats: Buf<Stats>,
    order: Option<Buf<u32>>,
    /// The rates (scheduled lr, Adam's α) of every trial and step of the epoch (filled by
    /// `rates` at its start).
    rates: Option<Buf<Rate>>,
    train_ws: Option<Workspace>,
    eval_ws: std::sync::Mutex<Option<Workspace>>,
    /// The captured epoch: (samples per epoch, batch, graph); the last step's row count depends on both.
    /// Only training (`&mut self`) touches it; the Mutex makes a Group shareable for evaluation
    /// threads, since CUDA graph handles must not be used from two threads at once.
    graph: std::sync::Mutex<Option<(usize, usize, super::Graph)>>,
}

/// One part of a cohort: a per-op depth group, or the fused trials (both boxed: a cohort holds
/// few parts, each hundreds of bytes of handles).
enum Part {
    PerOp(Box<Group>),
    Fused(Box<FusedGroup>),
}

impl Part {
    fn len(&self) -> usize {
        match self {
            Part::PerOp(g) => g.specs.len(),
            Part::Fused(g) => g.specs.len(),
        }
    }
}

/// A cohort on the device: its parts, and where each of the caller's trials went.
pub struct CudaCohort {
    groups: Vec<Part>,
    /// Trial i of the cohort is trial `at[i].1` of part `at[i].0`.
    at: Vec<(usize, usize)>,
    /// The batch size the trials were assigned to paths for.
    batch: usize,
}

impl CudaCohort {
    /// How many of the cohort's trials run on each path.
    pub fn paths(&self) -> Paths {
        let mut p = Paths::default();
        for g in &self.groups {
            match g {
                Part::PerOp(g) => p.per_op += g.specs.len(),
                Part::Fused(g) => p.fused += g.specs.len(),
            }
        }
        p
    }
}

fn upload_split(g: &AnyGpu, s: &Split) -> Result<DevSplit> {
    Ok(DevSplit {
        x: g.upload(&s.x)?,
        y: g.upload(&s.y)?,
        n: s.len(),
    })
}

impl CudaBackend {
    /// Uploads the dataset to `gpu`.
    pub fn new(data: Arc<Dataset>, gpu: AnyGpu) -> Result<Self> {
        let graphs = std::env::var("FASTFC_CUDA_GRAPHS").as_deref() != Ok("0");
        let engine = Engine::from_env()?;
        Ok(CudaBackend {
            train: upload_split(&gpu, &data.train)?,
            val: upload_split(&gpu, &data.val)?,
            test: upload_split(&gpu, &data.test)?,
            data,
            shared: gpu.max_dynamic_shared(),
            gpu,
            graphs,
            engine,
            variant: Variant::Product,
            batch_hint: AtomicUsize::new(32),
            paths: Mutex::new(Paths::default()),
        })
    }

    /// Which paths trials may take (default: `FASTFC_CUDA_ENGINE`, else [`Engine::Auto`]).
    pub fn with_engine(mut self, e: Engine) -> Self {
        self.engine = e;
        self
    }

    /// Runs a planted-bug build of the fused kernels (emulated build; tests only).
    pub fn with_fused_variant(mut self, v: Variant) -> Self {
        self.variant = v;
        self
    }

    /// Holds the fused path to `bytes` of shared memory per block (at most the device's limit),
    /// e.g. to make the logits and the batch spill to global memory in a test.
    pub fn with_shared_limit(mut self, bytes: usize) -> Self {
        self.shared = bytes.min(self.gpu.max_dynamic_shared());
        self
    }

    /// Shared memory per block the fused path may use, in bytes.
    pub fn shared_limit(&self) -> usize {
        self.shared
    }

    /// Trials loaded on each path so far.
    pub fn paths(&self) -> Paths {
        *self.paths.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `spec` trains on the fused path at `batch`.
    pub fn fused(&self, spec: &TrialSpec, batch: usize) -> bool {
        self.engine == Engine::Auto && fused::fits(spec, batch, self.shared)
    }

    /// Loads `trials`, each on the path it takes at `batch`.
    fn load_for(&self, trials: Vec<(TrialSpec, TrialState)>, batch: usize) -> Result<CudaCohort> {
        for (spec, _) in &trials {
            crate::backend::check_fits("cuda", spec, &self.data)?;
        }
        let n = trials.len();
        let mut slots: Vec<Option<(TrialSpec, TrialState)>> =
            trials.into_iter().map(Some).collect();
        let mut groups = vec![];
        let mut at = vec![(0, 0); n];
        // The fused trials, heaviest first.
        let fused_idx: Vec<usize> = (0..n)
            .filter(|&i| self.fused(&slots[i].as_ref().unwrap().0, batch))
            .collect();
        if !fused_idx.is_empty() {
            let members: Vec<(TrialSpec, TrialState)> = fused_idx
                .iter()
                .map(|&i| slots[i].clone().unwrap())
                .collect();
            let order = fused::sort_heaviest_first(&members);
            let sorted: Vec<_> = order
                .iter()
                .map(|&j| slots[fused_idx[j]].take().unwrap())
                .collect();
            for (pos, &j) in order.iter().enumerate() {
                at[fused_idx[j]] = (0, pos);
            }
            groups.push(Part::Fused(Box::new(FusedGroup::new(
                &self.gpu,
                sorted,
                self.shared,
                self.variant,
            )?)));
        }
        // The rest by depth, keeping the caller's order inside each group.
        let mut by_depth: Vec<(usize, Vec<usize>)> = vec![];
        for (i, t) in slots.iter().enumerate() {
            let Some((spec, _)) = t else { continue };
            let d = spec.hp.hidden.len();
            match by_depth.iter_mut().find(|(dd, _)| *dd == d) {
                Some((_, v)) => v.push(i),
                None => by_depth.push((d, vec![i])),
            }
        }
        for (_, idx) in by_depth {
            let members: Vec<_> = idx.iter().map(|&i| slots[i].take().unwrap()).collect();
            for (pos, &i) in idx.iter().enumerate() {
                at[i] = (groups.len(), pos);
            }
            groups.push(Part::PerOp(Box::new(self.new_group(members)?)));
        }
        let c = CudaCohort { groups, at, batch };
        let p = c.paths();
        let mut total = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        total.fused += p.fused;
        total.per_op += p.per_op;
        Ok(c)
    }

    /// Moves trials between paths when `batch` assigns them differently from the cohort's.
    fn repartition(&self, c: &mut CudaCohort, batch: usize) -> Result<()> {
        if c.batch == batch {
            return Ok(());
        }
        let differs = (0..c.at.len()).any(|i| {
            let (gi, k) = c.at[i];
            let (spec, on_fused) = match &c.groups[gi] {
                Part::PerOp(g) => (&g.specs[k], false),
                Part::Fused(g) => (&g.specs[k], true),
            };
            self.fused(spec, batch) != on_fused
        });
        if differs {
            let mut trials = vec![];
            for i in 0..c.at.len() {
                let (gi, k) = c.at[i];
                let spec = match &c.groups[gi] {
                    Part::PerOp(g) => g.specs[k].clone(),
                    Part::Fused(g) => g.specs[k].clone(),
                };
                trials.push((spec, self.state(c, i)?));
            }
            *c = self.load_for(trials, batch)?;
        }
        c.batch = batch;
        Ok(())
    }

    pub fn gpu(&self) -> &AnyGpu {
        &self.gpu
    }

    /// Whether epochs are captured once as a graph and replayed (the default unless
    /// `FASTFC_CUDA_GRAPHS=0`), or launched step by step.
    pub fn with_graphs(mut self, on: bool) -> Self {
        self.graphs = on;
        self
    }

    fn split(&self, s: SplitId) -> &DevSplit {
        match s {
            SplitId::Train => &self.train,
            SplitId::Val => &self.val,
            SplitId::Test => &self.test,
        }
    }

    fn new_group(&self, trials: Vec<(TrialSpec, TrialState)>) -> Result<Group> {
        // A stream of its own.
        let gpu = self.gpu.fork()?;
        let depth = trials[0].0.hp.hidden.len();
        let width = trials
            .iter()
            .flat_map(|(s, _)| s.hp.hidden.iter().copied())
            .max()
            .unwrap_or(1);
        let (inputs, classes) = (trials[0].0.inputs, trials[0].0.classes);
        let pad = padded_layout(inputs, depth, width, classes);
        let n = trials.len();
        if n > max_group_trials(pad.len) {
            return Err(Error::backend(
                "cuda",
                format!(
                    "{n} trials of {} parameters in one launch; at most {} fit (split the cohort with max_cohort)",
                    pad.len,
                    max_group_trials(pad.len)
                ),
            ));
        }
        let mut host_p = vec![0f32; n * pad.len];
        let mut host_m = vec![0f32; n * pad.len];
        let mut host_v = vec![0f32; n * pad.len];
        let mut slots = vec![];
        let mut specs = vec![];
        let mut own = vec![];
        let mut steps = vec![];
        let mut epochs = vec![];
        for (k, (spec, st)) in trials.into_iter().enumerate() {
            let lay = spec.layout();
            check_state(&spec, &lay, &st)?;
            let r = k * pad.len..(k + 1) * pad.len;
            pad_params(&lay, &pad, &st.params, &mut host_p[r.clone()]);
            pad_params(&lay, &pad, &st.m, &mut host_m[r.clone()]);
            if !st.v.is_empty() {
                pad_params(&lay, &pad, &st.v, &mut host_v[r]);
            }
            slots.push(Slot::new(&spec, (k * pad.len) as u32, st.step));
            steps.push(st.step);
            epochs.push(st.epochs);
            own.push(lay);
            specs.push(spec);
        }
        let any = |f: &dyn Fn(&TrialSpec) -> bool| specs.iter().any(f);
        Ok(Group {
            any_dropout: any(&|s| s.hp.dropout > 0.0),
            dev_slots: gpu.upload(&slots)?,
            params: gpu.upload(&host_p)?,
            grads: gpu.alloc(n * pad.len)?,
            m: gpu.upload(&host_m)?,
            v: gpu.upload(&host_v)?,
            stats: gpu.alloc(n)?,
            gpu,
            specs,
            own,
            pad,
            depth,
            slots,
            steps,
            epochs,
            order: None,
            rates: None,
            train_ws: None,
            eval_ws: std::sync::Mutex::new(None),
            graph: std::sync::Mutex::new(None),
        })
    }
}

/// A Mutex's value through `&mut` (no lock needed; a poisoned one is still usable here).
fn unpoisoned<T>(m: &mut std::sync::Mutex<T>) -> &mut T {
    m.get_mut().unwrap_or_else(|e| e.into_inner())
}

/// The result of a group's thread; a panic there becomes an error.
fn joined<T>(h: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    h.join()
        .unwrap_or_else(|_| Err(Error::backend("cuda", "a cohort thread panicked")))
}

pub(super) fn check_state(spec: &TrialSpec, lay: &Layout, st: &TrialState) -> Result<()> {
    let v_ok = if spec.hp.optimizer.has_v() {
        st.v.len() == lay.len
    } else {
        st.v.is_empty() || st.v.len() == lay.len
    };
    if st.params.len() != lay.len || st.m.len() != lay.len || !v_ok {
        return Err(Error::backend(
            "cuda",
            format!(
                "trial {}: state has {} parameters, its layout needs {}",
                spec.id,
                st.params.len(),
                lay.len
            ),
        ));
    }
    if spec.hp.hidden.len() > MAX_HIDDEN {
        return Err(Error::backend(
            "cuda",
            format!(
                "trial {}: {} hidden layers; the CUDA backend takes at most {MAX_HIDDEN}",
                spec.id,
                spec.hp.hidden.len()
            ),
        ));
    }
    Ok(())
}

impl Workspace {
    /// Buffers for `trials` trials of the padded layout `pad`, `rows` rows per launch; the
    /// training workspace also holds dropout masks and gradients.
    fn new(g: &AnyGpu, trials: usize, pad: &Layout, rows: usize, train: bool) -> Result<Self> {
        let depth = pad.layers() - 1;
        let (dim, width, classes) = (pad.dims[0], pad.dims[1], pad.dims[depth + 1]);
        let act = trials * rows * width;
        let per_layer =
            |n: usize| -> Result<Vec<Buf<f32>>> { (0..depth).map(|_| g.alloc(n)).collect() };
        let gw = trials * rows * width.max(classes);
        Ok(Workspace {
            rows,
            xb: g.alloc(rows * dim)?,
            yb: g.alloc(rows)?,
            z: per_layer(act)?,
            a: per_layer(act)?,
            mask: per_layer(if train { act } else { 0 })?,
            h: per_layer(if train { act } else { 0 })?,
            logits: g.alloc(trials * rows * classes)?,
            g: [
                g.alloc(if train { gw } else { 0 })?,
                g.alloc(if train { gw } else { 0 })?,
            ],
        })
    }
}

impl Group {
    fn trials(&self) -> u32 {
        self.specs.len() as u32
    }

    /// The input of layer `l` and its per-trial stride: `x0` (the batch every trial shares) for
    /// layer 0, else hidden layer l − 1's output (after dropout when training).
    fn layer_input(
        &self,
        ws: &Workspace,
        l: usize,
        x0: Ptr,
        rows: usize,
        train: bool,
    ) -> (Ptr, u32) {
        if l == 0 {
            (x0, 0)
        } else if train && self.any_dropout {
            (ws.h[l - 1].ptr(), (rows * self.pad.dims[l]) as u32)
        } else {
            (ws.a[l - 1].ptr(), (rows * self.pad.dims[l]) as u32)
        }
    }

    /// The forward pass of `rows` rows of `x` (shared by every trial) into `ws.logits`.
    fn forward(&self, ws: &Workspace, x: Ptr, rows: usize, step: u32, train: bool) -> Result<()> {
        let g = &self.gpu;
        let t = self.trials();
        let dims = &self.pad.dims;
        for l in 0..=self.depth {
            let (input, stride) = self.layer_input(ws, l, x, rows, train);
            let hidden = l < self.depth;
            g.enqueue(
                &DenseFwd {
                    slots: self.dev_slots.ptr(),
                    w_off: self.pad.w_off[l] as u32,
                    b_off: self.pad.b_off[l] as u32,
                    rows: rows as i32,
                    n_in: dims[l] as i32,
                    n_out: dims[l + 1] as i32,
                    x: input,
                    x_tstride: stride,
                    params: self.params.ptr(),
                    z: if hidden {
                        ws.z[l].ptr()
                    } else {
                        ws.logits.ptr()
                    },
                    y: if hidden { ws.a[l].ptr() } else { Ptr::NULL },
                    mode: if hidden { 1 + l as i32 } else { 0 },
                    skip_inactive: train as i32,
                }
                .launch(t),
            )?;
            if hidden && train && self.any_dropout {
                g.enqueue(
                    &DropoutFwd {
                        slots: self.dev_slots.ptr(),
                        step,
                        layer: l as u32,
                        rows: rows as i32,
                        width: dims[l + 1] as i32,
                        x: ws.a[l].ptr(),
                        mask: ws.mask[l].ptr(),
                        y: ws.h[l].ptr(),
                    }
                    .launch(t),
                )?;
            }
        }
        Ok(())
    }

    /// Every launch of training step `s`: rows `s·batch ..` of the uploaded order of `n` samples
    /// (the last step takes what is left of the order, which may be shorter than the split).
    fn enqueue_step(
        &self,
        ws: &Workspace,
        train: &DevSplit,
        n: usize,
        s: usize,
        batch: usize,
    ) -> Result<()> {
        let _r = crate::profile::range(format_args!("step {s} (depth {})", self.depth));
        let g = &self.gpu;
        let t = self.trials();
        let dims = &self.pad.dims;
        let start = s * batch;
        let rows = batch.min(n - start);
        let order = self
            .order
            .as_ref()
            .expect("order uploaded before the steps");
        let dim = dims[0];
        g.enqueue(
            &BatchGather {
                idx: order.at(start),
                rows: rows as i32,
                dim: dim as i32,
                src_x: train.x.ptr(),
                src_y: train.y.ptr(),
                dst_x: ws.xb.ptr(),
                dst_y: ws.yb.ptr(),
            }
            .launch(t),
        )?;
        self.forward(ws, ws.xb.ptr(), rows, s as u32, true)?;
        let classes = dims[self.depth + 1];
        g.enqueue(
            &SoftmaxXent {
                slots: self.dev_slots.ptr(),
                rows: rows as i32,
                classes: classes as i32,
                logits: ws.logits.ptr(),
                labels: ws.yb.ptr(),
                scale: 1.0 / rows as f32,
                dlogits: ws.g[0].ptr(),
                stats: self.stats.ptr(),
                train: 1,
            }
            .launch(t),
        )?;
        let mut cur = 0;
        for l in (0..=self.depth).rev() {
            let (input, stride) = self.layer_input(ws, l, ws.xb.ptr(), rows, true);
            g.enqueue(
                &DenseBwdW {
                    slots: self.dev_slots.ptr(),
                    w_off: self.pad.w_off[l] as u32,
                    b_off: self.pad.b_off[l] as u32,
                    rows: rows as i32,
                    n_in: dims[l] as i32,
                    n_out: dims[l + 1] as i32,
                    dy: ws.g[cur].ptr(),
                    x: input,
                    x_tstride: stride,
                    grads: self.grads.ptr(),
                }
                .launch(t),
            )?;
            if l == 0 {
                break;
            }
            g.enqueue(
                &DenseBwdX {
                    slots: self.dev_slots.ptr(),
                    w_off: self.pad.w_off[l] as u32,
                    rows: rows as i32,
                    n_in: dims[l] as i32,
                    n_out: dims[l + 1] as i32,
                    dy: ws.g[cur].ptr(),
                    params: self.params.ptr(),
                    mask: if self.any_dropout {
                        ws.mask[l - 1].ptr()
                    } else {
                        Ptr::NULL
                    },
                    z: ws.z[l - 1].ptr(),
                    y: ws.a[l - 1].ptr(),
                    dx: ws.g[1 - cur].ptr(),
                    mode: l as i32,
                }
                .launch(t),
            )?;
            cur = 1 - cur;
        }
        let rates = self
            .rates
            .as_ref()
            .expect("rate table allocated with the epoch");
        g.enqueue(
            &Optimize {
                slots: self.dev_slots.ptr(),
                n: self.pad.len as i32,
                step: s as u32,
                table: rates.ptr(),
                steps: (rates.len() / self.specs.len()) as i32,
                params: self.params.ptr(),
                grads: self.grads.ptr(),
                m: self.m.ptr(),
                v: self.v.ptr(),
            }
            .launch(t),
        )?;
        Ok(())
    }

    /// The epoch's first launch: the rates of each trial and step (read from the slots' step0 at
    /// run time, so a replayed graph computes the new epoch's).
    fn enqueue_epoch_start(&self) -> Result<()> {
        if let Some(rates) = self.rates.as_ref() {
            let steps = rates.len() / self.specs.len();
            self.gpu.enqueue(
                &Rates {
                    slots: self.dev_slots.ptr(),
                    steps: steps as i32,
                    table: rates.ptr(),
                }
                .launch(self.trials()),
            )?;
        }
        Ok(())
    }

    /// One epoch of this group. `active[k]`: trial k trains.
    fn train_epoch(
        &mut self,
        train: &DevSplit,
        order: &[u32],
        batch: usize,
        active: &[bool],
        graphs: bool,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<TrainStats>> {
        let n = order.len();
        let steps = n.div_ceil(batch.max(1));
        if n > train.n || batch == 0 {
            return Err(Error::backend(
                "cuda",
                format!(
                    "an epoch order of {n} samples in batches of {batch} for a split of {}",
                    train.n
                ),
            ));
        }
        for (k, s) in self.slots.iter_mut().enumerate() {
            s.active = active[k] as u32;
            s.step0 = self.steps[k] as u32;
        }
        let g = self.gpu.clone();
        g.write(&self.dev_slots, 0, &self.slots)?;
        g.write(&self.stats, 0, &vec![Stats::default(); self.specs.len()])?;
        if self.order.as_ref().is_none_or(|o| o.len() < n) {
            self.order = Some(g.alloc(train.n)?);
        }
        g.write(self.order.as_ref().unwrap(), 0, order)?;
        if self.train_ws.as_ref().is_none_or(|w| w.rows < batch) {
            *unpoisoned(&mut self.graph) = None;
            self.train_ws = Some(Workspace::new(
                &g,
                self.specs.len(),
                &self.pad,
                batch,
                true,
            )?);
        }
        if self
            .rates
            .as_ref()
            .is_none_or(|a| a.len() != steps * self.specs.len())
        {
            *unpoisoned(&mut self.graph) = None;
            self.rates = Some(g.alloc(steps * self.specs.len())?);
        }
        let ws = self.train_ws.as_ref().unwrap();
        // Progress counts trial-steps, as the CPU backend reports them.
        let on = active.iter().filter(|&&a| a).count() as u64;
        if graphs {
            let fresh =
                !matches!(unpoisoned(&mut self.graph), Some((m, b, _)) if *m == n && *b == batch);
            if fresh {
                let graph = g.capture(|| {
                    self.enqueue_epoch_start()?;
                    (0..steps).try_for_each(|s| self.enqueue_step(ws, train, n, s, batch))
                })?;
                *unpoisoned(&mut self.graph) = Some((n, batch, graph));
            }
            let _r = crate::profile::range(format_args!(
                "epoch graph replay: {steps} steps, depth {}",
                self.depth
            ));
            unpoisoned(&mut self.graph).as_ref().unwrap().2.launch()?;
            g.sync()?;
            progress(steps as u64 * on);
        } else {
            self.enqueue_epoch_start()?;
            for s in 0..steps {
                self.enqueue_step(ws, train, n, s, batch)?;
                if s % 64 == 63 {
                    g.sync()?;
                    progress(64 * on);
                }
            }
            g.sync()?;
            progress((steps % 64) as u64 * on);
        }
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

    fn evaluate(&self, split: &DevSplit) -> Result<Vec<EvalStats>> {
        let g = self.gpu.clone();
        let rows_cap = EVAL_ROWS.min(split.n.max(1));
        let mut cache = self.eval_ws.lock().unwrap_or_else(|e| e.into_inner());
        if cache.as_ref().is_none_or(|w| w.rows < rows_cap) {
            *cache = Some(Workspace::new(
                &g,
                self.specs.len(),
                &self.pad,
                rows_cap,
                false,
            )?);
        }
        let ws = cache.as_ref().unwrap();
        g.write(&self.stats, 0, &vec![Stats::default(); self.specs.len()])?;
        let dim = self.pad.dims[0];
        let classes = self.pad.dims[self.depth + 1];
        let mut start = 0;
        while start < split.n {
            let rows = rows_cap.min(split.n - start);
            self.forward(ws, split.x.at(start * dim), rows, 0, false)?;
            g.enqueue(
                &SoftmaxXent {
                    slots: self.dev_slots.ptr(),
                    rows: rows as i32,
                    classes: classes as i32,
                    logits: ws.logits.ptr(),
                    labels: split.y.at(start),
                    scale: 1.0,
                    dlogits: Ptr::NULL,
                    stats: self.stats.ptr(),
                    train: 0,
                }
                .launch(self.trials()),
            )?;
            start += rows;
        }
        g.sync()?;
        let n = split.n.max(1) as f64;
        Ok(g.read(&self.stats)?
            .iter()
            .map(|s| EvalStats {
                loss: s.loss_sum / n,
                accuracy: s.correct as f64 / n,
            })
            .collect())
    }

    fn state(&self, k: usize) -> Result<TrialState> {
        let g = &self.gpu;
        let (own, len) = (&self.own[k], self.pad.len);
        let get = |b: &Buf<f32>| -> Result<Vec<f32>> {
            let padded = g.read_range(b, k * len, len)?;
            let mut out = vec![0f32; own.len];
            unpad_params(own, &self.pad, &padded, &mut out);
            Ok(out)
        };
        Ok(TrialState {
            params: get(&self.params)?,
            m: get(&self.m)?,
            v: if self.specs[k].hp.optimizer.has_v() {
                get(&self.v)?
            } else {
                vec![]
            },
            step: self.steps[k],
            epochs: self.epochs[k],
        })
    }

    fn set_state(&mut self, k: usize, st: TrialState) -> Result<()> {
        check_state(&self.specs[k], &self.own[k], &st)?;
        let (own, len) = (&self.own[k], self.pad.len);
        let mut padded = vec![0f32; len];
        for (b, src) in [
            (&self.params, &st.params),
            (&self.m, &st.m),
            (&self.v, &st.v),
        ] {
            if src.is_empty() {
                padded.fill(0.0);
            } else {
                pad_params(own, &self.pad, src, &mut padded);
            }
            self.gpu.write(b, k * len, &padded)?;
        }
        self.steps[k] = st.step;
        self.epochs[k] = st.epochs;
        Ok(())
    }
}

impl Backend for CudaBackend {
    type Cohort = CudaCohort;

    fn name(&self) -> String {
        self.gpu.name()
    }

    fn data(&self) -> &Dataset {
        &self.data
    }

    /// Trials that fit in 80% of the device's free memory now (the emulator: only the launch
    /// limits). Fused trials need their three arenas and a scratch row; per-op ones the padded
    /// arenas and workspaces.
    /// Every trial of a study at once: one fused launch an epoch covers them all, and a GPU is
    /// filled only by many trials; [`Backend::max_cohort`] bounds the cohort by memory.
    fn default_cohort(&self) -> usize {
        usize::MAX
    }

    fn max_cohort(&self, specs: &[TrialSpec], batch: usize) -> usize {
        self.batch_hint.store(batch.max(1), Ordering::Relaxed);
        let width = specs
            .iter()
            .flat_map(|s| s.hp.hidden.iter().copied())
            .max()
            .unwrap_or(1);
        let depth = specs.iter().map(|s| s.hp.hidden.len()).max().unwrap_or(1);
        let (dim, classes) = (self.data.dim(), self.data.n_classes());
        let params = padded_layout(dim, depth, width, classes).len;
        let all_fused = specs.iter().all(|s| self.fused(s, batch));
        let structural = if all_fused {
            (u32::MAX as usize / params.max(1)).max(1)
        } else {
            max_group_trials(params)
        };
        #[allow(irrefutable_let_patterns)] // without the `emu` feature CUDA is the only variant
        let AnyGpu::Cuda(c) = &self.gpu
        else {
            return structural;
        };
        let Ok((free, _)) = c.mem_info() else {
            return structural;
        };
        let per_trial = if all_fused {
            // params, m, v + Adam's α per step and the logits.
            4 * (3 * params + self.train.n / batch.max(1) + 1 + batch * classes)
        } else {
            // 4 arenas + training workspace (z, a, mask, h, 2 gradients) + evaluation workspace
            // (z, a) + α per step.
            4 * (4 * params
                + batch * (4 * depth * width + 3 * width.max(classes))
                + EVAL_ROWS * (2 * depth * width + classes)
                + self.train.n / batch.max(1)
                + 1)
        };
        ((free as f64 * 0.8) as usize / per_trial.max(1)).clamp(1, structural)
    }

    fn load(&self, trials: Vec<(TrialSpec, TrialState)>) -> Result<CudaCohort> {
        self.load_for(trials, self.batch_hint.load(Ordering::Relaxed))
    }

    fn train_epoch(
        &self,
        c: &mut CudaCohort,
        order: &[u32],
        batch: usize,
        active: &[bool],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<TrainStats>> {
        self.repartition(c, batch)?;
        let per_group: Vec<Vec<bool>> = c
            .groups
            .iter()
            .enumerate()
            .map(|(gi, g)| {
                (0..g.len())
                    .map(|k| active[c.at.iter().position(|&p| p == (gi, k)).unwrap()])
                    .collect()
            })
            .collect();
        // Parts run side by side, each on its own stream and thread.
        let results: Vec<Result<Vec<TrainStats>>> = std::thread::scope(|sc| {
            let handles: Vec<_> = c
                .groups
                .iter_mut()
                .zip(&per_group)
                .map(|(g, act)| {
                    sc.spawn(move || match g {
                        Part::PerOp(g) => {
                            g.train_epoch(&self.train, order, batch, act, self.graphs, progress)
                        }
                        Part::Fused(g) => g.train_epoch(
                            &self.train.x,
                            &self.train.y,
                            self.train.n,
                            order,
                            batch,
                            act,
                            progress,
                        ),
                    })
                })
                .collect();
            handles.into_iter().map(joined).collect()
        });
        let results: Vec<Vec<TrainStats>> = results.into_iter().collect::<Result<_>>()?;
        Ok(c.at.iter().map(|&(gi, k)| results[gi][k]).collect())
    }

    fn evaluate(&self, c: &CudaCohort, split: SplitId, active: &[bool]) -> Result<Vec<EvalStats>> {
        let s = self.split(split);
        let per_group_active: Vec<Vec<bool>> = (0..c.groups.len())
            .map(|gi| {
                (0..c.groups[gi].len())
                    .map(|k| active[c.at.iter().position(|&p| p == (gi, k)).unwrap()])
                    .collect()
            })
            .collect();
        // Side by side, like training: each part on its own stream and thread.
        let per_group: Vec<Vec<EvalStats>> = std::thread::scope(|sc| {
            let handles: Vec<_> = c
                .groups
                .iter()
                .zip(&per_group_active)
                .map(|(g, act)| {
                    sc.spawn(move || match g {
                        Part::PerOp(g) => g.evaluate(s),
                        Part::Fused(g) => g.evaluate(&s.x, &s.y, s.n, act),
                    })
                })
                .collect();
            handles.into_iter().map(joined).collect::<Result<_>>()
        })?;
        Ok(c.at
            .iter()
            .zip(active)
            .map(|(&(gi, k), &on)| {
                if on {
                    per_group[gi][k]
                } else {
                    EvalStats::default()
                }
            })
            .collect())
    }

    fn state(&self, c: &CudaCohort, i: usize) -> Result<TrialState> {
        let (gi, k) = c.at[i];
        match &c.groups[gi] {
            Part::PerOp(g) => g.state(k),
            Part::Fused(g) => g.state(k),
        }
    }

    fn set_state(&self, c: &mut CudaCohort, i: usize, state: TrialState) -> Result<()> {
        let (gi, k) = c.at[i];
        match &mut c.groups[gi] {
            Part::PerOp(g) => g.set_state(k, state),
            Part::Fused(g) => g.set_state(k, state),
        }
    }
}
