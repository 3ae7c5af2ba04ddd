//! The kernel suite: every kernel of `kernels/*.cu` against the CPU reference (src/backend/cpu/),
//! launched through the declarations in src/backend/cuda/launch.rs. One module per op, named as the
//! op is everywhere, plus the emulator's own checks and the build report.
//!
//! Devices: by default the emulated executor under three fiber orders (forward, reverse, seeded
//! random) with the kernels' arithmetic as written, under two with it contracted into FMAs (as
//! NVRTC compiles for a GPU), and fakecuda through cudarc (the real driver path).
//! `FASTFC_TEST_GPU=cuda` runs the same checks on the real GPU instead and makes a missing GPU a
//! failure.
//!
//! Inputs are random and non-zero; outputs are poisoned with NaN first, so an element a kernel
//! fails to write is a mismatch; cohorts mix activations, optimizers, dropout rates and hidden
//! widths padded to the widest, with gaps between the trials' arena slices.

#[path = "../common/mod.rs"]
mod common;

mod activation;
mod adam;
mod batch;
mod build;
mod dense;
mod dropout;
mod emulator;
mod lion;
mod optimizer;
mod softmax_xent;

use fastfc::backend::cuda::emu::{Arith, EmuGpu, FiberOrder};
use fastfc::backend::cuda::launch::{Optimize, Rates};
use fastfc::backend::cuda::slot::{pad_params, padded_layout, Rate, Slot};
use fastfc::backend::cuda::{AnyGpu, Gpu};
use fastfc::model::{Activation, Hyperparams, Layout, Optimizer, TrialSpec};
use rand::{Rng, SeedableRng};

/// Runs `check` on every device of this run (see the crate docs).
pub fn each_gpu(check: impl Fn(&AnyGpu)) {
    let (g, real) = common::cuda_under_test();
    if !real {
        // Both arithmetics: as written, and contracted into FMAs as nvcc/NVRTC compile it for a
        // GPU; the tolerances (error bounds on the terms) must hold for both.
        for (order, arith) in [
            (FiberOrder::Forward, Arith::Plain),
            (FiberOrder::Reverse, Arith::Plain),
            (FiberOrder::Random(0x5eed), Arith::Plain),
            (FiberOrder::Forward, Arith::Fma),
            (FiberOrder::Random(0x5eed), Arith::Fma),
        ] {
            check(&AnyGpu::Emu(EmuGpu::with_arith(order, arith)));
        }
    }
    // The real driver path: cudarc → the GPU, or fakecuda (loaded by absolute path) → the
    // emulator, with fakecuda's rules on streams, pointers and captures.
    check(&AnyGpu::Cuda(g));
}

/// A cohort for kernel tests: specs, slots, the shared padded layout and each trial's own layout.
pub struct Cohort {
    pub specs: Vec<TrialSpec>,
    pub slots: Vec<Slot>,
    pub pad: Layout,
    pub own: Vec<Layout>,
    /// Arena elements per trial (the padded layout plus a gap that no kernel may touch).
    pub stride: usize,
}

/// Elements left between trials' arena slices: kernels must find a trial through `param_off`.
pub const GAP: usize = 5;

impl Cohort {
    /// `trials` trials of `depth` hidden layers, trial k's layer l `widths[(k + l) % len]` wide;
    /// activations, optimizers and dropout rates cycle so every combination appears.
    pub fn mixed(
        trials: usize,
        depth: usize,
        widths: &[usize],
        inputs: usize,
        classes: usize,
        seed: u64,
    ) -> Cohort {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let widest = (0..trials)
            .flat_map(|k| (0..depth).map(move |l| widths[(k + l) % widths.len()]))
            .max()
            .unwrap_or(1);
        let pad = padded_layout(inputs, depth, widest, classes);
        let stride = pad.len + GAP;
        let mut specs = vec![];
        let mut slots = vec![];
        let mut own = vec![];
        for k in 0..trials {
            let hp = Hyperparams {
                hidden: (0..depth).map(|l| widths[(k + l) % widths.len()]).collect(),
                activation: Activation::ALL[k % Activation::ALL.len()],
                dropout: [0.0, 0.1, 0.35][k % 3],
                learning_rate: rng.random_range(1e-4..3e-3),
                optimizer: Optimizer::ALL[(k / 2) % Optimizer::ALL.len()],
                ..Default::default()
            };
            let spec = TrialSpec::new(k as u64, hp, seed, inputs, classes);
            let mut slot = Slot::new(&spec, (k * stride) as u32, rng.random_range(0..5000));
            slot.active = 1;
            own.push(spec.layout());
            slots.push(slot);
            specs.push(spec);
        }
        Cohort {
            specs,
            slots,
            pad,
            own,
            stride,
        }
    }

    pub fn trials(&self) -> usize {
        self.specs.len()
    }

    /// A params arena: each trial's own random non-zero parameters embedded in the padded layout
    /// (zero padding), NaN in the gaps.
    pub fn arena(&self, seed: u64) -> Vec<f32> {
        let mut a = vec![f32::NAN; self.trials() * self.stride];
        for k in 0..self.trials() {
            let own = common::nonzero(self.own[k].len, seed + k as u64);
            let s = k * self.stride;
            pad_params(&self.own[k], &self.pad, &own, &mut a[s..s + self.pad.len]);
        }
        a
    }

    /// Trial k's width at padded layer boundary `l` (0 = inputs, depth + 1 = classes).
    pub fn width(&self, k: usize, l: usize) -> usize {
        self.own[k].dims[l]
    }
}

/// Per-trial activations (trials, rows, padded width) with trial k's first `width(k, l)` columns
/// random non-zero and the padded columns zero, as the engine keeps them.
pub fn activations(c: &Cohort, l: usize, rows: usize, seed: u64) -> Vec<f32> {
    let pw = c.pad.dims[l];
    let mut out = vec![0f32; c.trials() * rows * pw];
    for k in 0..c.trials() {
        let w = c.width(k, l);
        let v = common::nonzero(rows * w, seed + 31 * k as u64);
        for r in 0..rows {
            let at = (k * rows + r) * pw;
            out[at..at + w].copy_from_slice(&v[r * w..(r + 1) * w]);
        }
    }
    out
}

/// Trial k's real (rows, width) block out of a (trials, rows, padded) tensor, in f64.
pub fn trial_block(t: &[f32], k: usize, rows: usize, pw: usize, w: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows * w);
    for r in 0..rows {
        let at = (k * rows + r) * pw;
        out.extend(t[at..at + w].iter().map(|&v| v as f64));
    }
    out
}

/// Trial k's own parameters (own layout) out of an arena, in f64.
pub fn trial_params(c: &Cohort, arena: &[f32], k: usize) -> Vec<f64> {
    let mut own = vec![0f32; c.own[k].len];
    let s = k * c.stride;
    fastfc::backend::cuda::slot::unpad_params(
        &c.own[k],
        &c.pad,
        &arena[s..s + c.pad.len],
        &mut own,
    );
    own.into_iter().map(|v| v as f64).collect()
}

/// Compares a (trials, rows, cols) kernel output with per-trial references of width `w(k)` inside
/// a padded width `pw`: real columns within `tol(k, index, want)`, padded columns exactly `pad`.
/// Reports the first mismatch with trial/row/col, both values and the tolerance.
#[allow(clippy::too_many_arguments)]
pub fn assert_cohort(
    what: &str,
    dev: &str,
    got: &[f32],
    want: &[Vec<f64>],
    rows: usize,
    pw: usize,
    w: impl Fn(usize) -> usize,
    tol: impl Fn(usize, usize, f64) -> f64,
    pad: f32,
) {
    let mut bad = 0usize;
    let mut first = None;
    for (k, want_k) in want.iter().enumerate() {
        let wk = w(k);
        for r in 0..rows {
            for col in 0..pw {
                let g = got[(k * rows + r) * pw + col];
                let (ok, wv, t) = if col < wk {
                    let wv = want_k[r * wk + col];
                    let t = tol(k, r * wk + col, wv);
                    (((g as f64) - wv).abs() <= t, wv, t)
                } else {
                    (g == pad, pad as f64, 0.0)
                };
                if !ok {
                    bad += 1;
                    first.get_or_insert((k, r, col, g, wv, t));
                }
            }
        }
    }
    if let Some((k, r, col, g, wv, t)) = first {
        panic!(
            "{what} on {dev}: {bad} mismatches; first at trial {k} row {r} col {col}: got {g} vs want {wv} (tolerance {t:e}{})",
            if col >= w(k) { ", a padded column" } else { "" }
        );
    }
}

/// |a − b| ≤ rel·|want| + abs, for elementwise ops.
pub fn rel_abs(rel: f64, abs: f64) -> impl Fn(usize, usize, f64) -> f64 {
    move |_, _, want| rel * want.abs() + abs
}

/// Parameters and both optimizer buffers (arena-shaped) after one `optimize` launch per gradient
/// in `grads`, from `bufs`, with the rates table of every step from the `rates` kernel: what the
/// optimizer tests compare with the CPU's steps.
pub fn optimize_steps(
    g: &AnyGpu,
    c: &Cohort,
    slots: &[Slot],
    bufs: [&[f32]; 3],
    grads: &[Vec<f32>],
) -> [Vec<f32>; 3] {
    let steps = grads.len();
    let sb = g.upload(slots).unwrap();
    let [pb, mb, vb] = bufs.map(|b| g.upload(b).unwrap());
    let table = g.alloc::<Rate>(c.trials() * steps).unwrap();
    let rates = Rates {
        slots: sb.ptr(),
        steps: steps as i32,
        table: table.ptr(),
    };
    g.launch(&rates.launch(c.trials() as u32)).unwrap();
    for (s, gr) in grads.iter().enumerate() {
        let gb = g.upload(gr).unwrap();
        let k = Optimize {
            slots: sb.ptr(),
            n: c.pad.len as i32,
            step: s as u32,
            table: table.ptr(),
            steps: steps as i32,
            params: pb.ptr(),
            grads: gb.ptr(),
            m: mb.ptr(),
            v: vb.ptr(),
        };
        g.launch(&k.launch(c.trials() as u32)).unwrap();
    }
    [pb, mb, vb].map(|b| g.read(&b).unwrap())
}
