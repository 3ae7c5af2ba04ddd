//! The fused engine (kernels/fused.cu, src/backend/cuda/fused.rs), beyond what
//! tests/cuda_engine.rs runs on both engines: each planted bug of the fused kernel fails the
//! parity check that the product passes; trials whose logits and batch do not fit the launch's
//! shared memory (logits in global scratch, the batch read in place) still train to the CPU's
//! weights; depths beyond the old limit of 4 on both paths, and a depth above 8 refused by name;
//! a cohort split between the paths (a trial too wide for shared memory goes per-op).

mod common;

use fastfc::backend::cpu::CpuBackend;
use fastfc::backend::cuda::emu::{Arith, EmuGpu, FiberOrder};
use fastfc::backend::cuda::engine::{CudaBackend, Engine, Paths};
use fastfc::backend::cuda::fused::{self, Variant};
use fastfc::backend::cuda::{AnyGpu, Gpu};
use fastfc::backend::{Backend, SplitId};
use fastfc::data::{self, Dataset};
use fastfc::model::{Activation, Hyperparams, Optimizer, TrialSpec, TrialState};
use std::sync::Arc;

use common::{elem_rel_diff, embedded_subset as small, rel_diff};

/// The emulator, plain and with FMA contraction, and fakecuda through cudarc (or only the real
/// GPU with `FASTFC_TEST_GPU=cuda`).
fn gpus() -> Vec<AnyGpu> {
    match common::cuda_under_test() {
        (g, true) => vec![AnyGpu::Cuda(g)],
        (g, false) => vec![
            AnyGpu::Emu(EmuGpu::new(FiberOrder::Random(21))),
            AnyGpu::Emu(EmuGpu::with_arith(FiberOrder::Reverse, Arith::Fma)),
            AnyGpu::Cuda(g),
        ],
    }
}

fn real(g: &AnyGpu) -> bool {
    matches!(g, AnyGpu::Cuda(c) if !c.info.fake)
}

/// One trial per width list: activations in turn, Adam and Lion in turn (tests/cuda_engine.rs
/// runs all six optimizers with their knobs), dropout 0.2 / 0.1 / 0 (the
/// first two trials drop units, so a wrong mask shows), learning rates 2e-3 and 5e-4.
fn trials(data: &Dataset, widths: &[&[usize]]) -> Vec<(TrialSpec, TrialState)> {
    widths
        .iter()
        .enumerate()
        .map(|(k, w)| {
            let hp = Hyperparams {
                hidden: w.to_vec(),
                activation: Activation::ALL[k % 6],
                dropout: [0.2, 0.1, 0.0][k % 3],
                learning_rate: [2e-3, 5e-4][(k / 2) % 2],
                optimizer: Optimizer::ALL[k % 2],
                ..Default::default()
            };
            let spec = TrialSpec::new(k as u64, hp, 13, data.dim(), data.n_classes());
            let st = TrialState::init(&spec);
            (spec, st)
        })
        .collect()
}

/// Trains `trials` for `epochs` epochs at batch 32 on `cuda` and on the CPU, and compares every
/// epoch's losses and sample counts, then the step counters, the weights and both moments, and
/// the validation scores. Err is "mismatch: " and the first difference beyond float reasons (the
/// emulator's observed differences are ≤ 3e-7 of the largest weight; a real GPU's expf/erff and a
/// Lion sign decided near zero allow 1e-3 there), or "engine error: " and the engine's error.
/// Returns the paths the cohort took.
fn parity(
    cuda: &CudaBackend,
    trials: &[(TrialSpec, TrialState)],
    epochs: usize,
) -> Result<Paths, String> {
    let data = cuda.data();
    let cpu = CpuBackend::new(Arc::new(data.clone()));
    let n = trials.len();
    let mut a = cpu.load(trials.to_vec()).unwrap();
    let mut b = cuda
        .load(trials.to_vec())
        .map_err(|e| format!("engine error: {e}"))?;
    let paths = b.paths();
    let active = vec![true; n];
    let (tol_p, tol_v) = if real(cuda.gpu()) {
        (1e-3, 1e-1)
    } else {
        (1e-5, 1e-4)
    };
    for epoch in 0..epochs {
        let order = data::batches::epoch_order(9, epoch, data.train.len());
        let sa = cpu
            .train_epoch(&mut a, &order, 32, &active, &|_| {})
            .unwrap();
        let sb = cuda
            .train_epoch(&mut b, &order, 32, &active, &|_| {})
            .map_err(|e| format!("engine error: {e}"))?;
        for k in 0..n {
            let (la, lb) = (sa[k].loss(), sb[k].loss());
            if sa[k].samples != sb[k].samples || (la - lb).abs() > 1e-4 * la {
                return Err(format!(
                    "mismatch: epoch {epoch} trial {k}: train loss cpu {la} ({} samples) vs cuda {lb} ({})",
                    sa[k].samples, sb[k].samples
                ));
            }
        }
    }
    for k in 0..n {
        let (x, y) = (cpu.state(&a, k).unwrap(), cuda.state(&b, k).unwrap());
        if (x.step, x.epochs) != (y.step, y.epochs) {
            return Err(format!(
                "mismatch: trial {k}: counters {:?} vs {:?}",
                (x.step, x.epochs),
                (y.step, y.epochs)
            ));
        }
        let (dp, dm) = (rel_diff(&y.params, &x.params), rel_diff(&y.m, &x.m));
        if dp > tol_p || dm > tol_p {
            return Err(format!(
                "mismatch: trial {k}: params differ by {dp:e}, first moments by {dm:e} (tolerance {tol_p:e})"
            ));
        }
        if x.v.len() != y.v.len() || elem_rel_diff(&y.v, &x.v) > tol_v {
            return Err(format!("mismatch: trial {k}: second moments differ"));
        }
    }
    let (ea, eb) = (
        cpu.evaluate(&a, SplitId::Val, &active).unwrap(),
        cuda.evaluate(&b, SplitId::Val, &active)
            .map_err(|e| format!("engine error: {e}"))?,
    );
    let rows = data.val.len() as f64;
    for k in 0..n {
        if (ea[k].loss - eb[k].loss).abs() > 1e-4 * ea[k].loss
            || (ea[k].accuracy - eb[k].accuracy).abs() > 2.0 / rows
        {
            return Err(format!(
                "mismatch: trial {k}: val {:?} vs {:?}",
                (ea[k].loss, ea[k].accuracy),
                (eb[k].loss, eb[k].accuracy)
            ));
        }
    }
    Ok(paths)
}

const SEED_LIKE: &[&[usize]] = &[
    &[64, 48],
    &[32, 64, 48],
    &[48, 32, 64, 32],
    &[64, 64, 64, 64],
];

/// Every planted bug of fused.cu (a wrong dropout mask key, a skipped bias step, an update
/// before the input's gradient reads the weights, Adam without its bias correction) fails the
/// parity check that the product kernel passes on the same cohort.
#[test]
fn each_planted_bug_in_the_fused_kernel_fails_parity() {
    let data = small(256, 128);
    let ts = trials(&data, SEED_LIKE);
    let gpu = AnyGpu::Emu(EmuGpu::new(FiberOrder::Random(5)));
    let backend = |v| {
        CudaBackend::new(data.clone(), gpu.clone())
            .unwrap()
            .with_engine(Engine::Auto)
            .with_fused_variant(v)
    };
    let paths = parity(&backend(Variant::Product), &ts, 2).unwrap();
    assert_eq!(
        paths,
        Paths {
            fused: 4,
            per_op: 0
        }
    );
    for bug in 1..=4 {
        let err = parity(&backend(Variant::Planted(bug)), &ts, 2)
            .expect_err(&format!("planted bug {bug} passed the parity check"));
        // Caught by the numbers, not by a build or launch that failed outright.
        assert!(err.starts_with("mismatch: "), "planted bug {bug}: {err}");
        eprintln!("planted bug {bug}: {err}");
    }
    assert!(parity(&backend(Variant::Planted(5)), &ts, 1)
        .unwrap_err()
        .contains("no planted bug 5"));
}

/// With only the minimum of shared memory (each hidden layer's output and derivative), the
/// heaviest trial keeps its logits in global scratch and reads the batch in place through the
/// epoch order; with room for the logits but not the batch, only the batch is read in place.
#[test]
fn trials_whose_logits_and_batch_spill_out_of_shared_memory_match_the_cpu() {
    let data = small(256, 128);
    // Without the 4 × 64 trial, whose minimum (64 KiB) is already fakecuda's sm_75 limit.
    let ts = trials(&data, &SEED_LIKE[..3]);
    let batch = 32;
    let min = ts
        .iter()
        .map(|(s, _)| fused::min_floats(s, batch))
        .max()
        .unwrap();
    for gpu in gpus() {
        for cap in [4 * min, 4 * (min + batch * 10)] {
            let cuda = CudaBackend::new(data.clone(), gpu.clone())
                .unwrap()
                .with_engine(Engine::Auto)
                .with_shared_limit(cap);
            assert_eq!(cuda.shared_limit(), cap);
            let paths = parity(&cuda, &ts, 2)
                .unwrap_or_else(|e| panic!("{} with {cap} bytes: {e}", gpu.name()));
            assert_eq!(paths.fused, ts.len(), "{paths:?}");
        }
    }
}

/// Six and eight hidden layers train to the CPU's weights on both paths (the per-op path used to
/// stop at 4); nine are refused on both with the limit named.
#[test]
fn deep_networks_train_on_both_paths_and_too_deep_ones_are_refused() {
    let data = small(128, 64);
    let deep: &[&[usize]] = &[&[24, 16, 32, 16, 24, 16], &[16; 8], &[8, 12, 8, 12, 8, 12]];
    let ts = trials(&data, deep);
    let too_deep = trials(&data, &[&[8; 9]]);
    for gpu in gpus() {
        for engine in [Engine::Auto, Engine::PerOp] {
            let cuda = CudaBackend::new(data.clone(), gpu.clone())
                .unwrap()
                .with_engine(engine);
            let paths =
                parity(&cuda, &ts, 2).unwrap_or_else(|e| panic!("{} {engine:?}: {e}", gpu.name()));
            let want = match engine {
                Engine::Auto => Paths {
                    fused: 3,
                    per_op: 0,
                },
                Engine::PerOp => Paths {
                    fused: 0,
                    per_op: 3,
                },
            };
            assert_eq!(paths, want);
            let err = cuda
                .load(too_deep.clone())
                .err()
                .expect("9 hidden layers loaded")
                .to_string();
            assert!(
                err.contains("9 hidden layers") && err.contains("at most 8"),
                "{err}"
            );
        }
    }
    // The CPU engine has no such limit.
    CpuBackend::new(data.clone()).load(too_deep).unwrap();
}

/// A trial too wide for the launch's shared memory (2 × 32 rows × 1,024 units is 256 KiB) goes
/// to the per-op path while its cohort mates are fused; the cohort trains as one and matches
/// the CPU on both parts.
#[test]
fn a_cohort_split_between_the_paths_matches_the_cpu() {
    let data = small(128, 64);
    let widths: &[&[usize]] = &[&[32, 48], &[512, 512], &[64, 32, 16], &[48]];
    let ts = trials(&data, widths);
    for gpu in gpus() {
        let cuda = CudaBackend::new(data.clone(), gpu.clone())
            .unwrap()
            .with_engine(Engine::Auto);
        assert!(!cuda.fused(&ts[1].0, 32));
        let paths = parity(&cuda, &ts, 2).unwrap_or_else(|e| panic!("{}: {e}", gpu.name()));
        assert_eq!(
            paths,
            Paths {
                fused: 3,
                per_op: 1
            },
            "{}",
            gpu.name()
        );
        assert_eq!(cuda.paths(), paths);
    }
}
