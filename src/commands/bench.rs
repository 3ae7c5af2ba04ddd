//! `fastfc bench`: times whole training epochs (train + validation) of a cohort on this machine and
//! prints the napkin math beside it: FLOP per epoch, achieved GFLOP/s and, on a GPU that reports
//! its clock, the floor (the epoch's FLOP at the device's peak FP32 rate), which path of the CUDA
//! engine ran the trials, and kernel launches per epoch.

use std::sync::Arc;
use std::time::Instant;

use crate::backend::{Backend, SplitId};
use crate::cli::BenchArgs;
use crate::data::batches::epoch_order;
use crate::error::{Error, Result};
use crate::model::{Hyperparams, TrialSpec, TrialState};

/// Dense FLOP of one training epoch plus one validation pass of one trial: 2·in·out per sample
/// forward, twice that backward (the first layer skips dx), 2·in·out per validation sample.
pub fn epoch_flop(dims: &[usize], n_train: usize, n_val: usize) -> f64 {
    let fwd: usize = dims.windows(2).map(|w| 2 * w[0] * w[1]).sum();
    let bwd = 2 * fwd - 2 * dims[0] * dims[1];
    ((fwd + bwd) * n_train + fwd * n_val) as f64
}

/// The napkin model's floor: seconds `flop` take at `peak_gflops` (every lane issuing an FMA
/// every cycle). Measured time over this floor is how far an engine is from the device.
pub fn floor_seconds(flop: f64, peak_gflops: f64) -> f64 {
    flop / (peak_gflops * 1e9)
}

pub fn run(a: &BenchArgs) -> Result<()> {
    crate::device::init_threads(a.common.threads)?;
    if a.trials == 0 || a.epochs == 0 {
        return Err(Error::flag("--trials/--epochs", "expected at least 1"));
    }
    let data = Arc::new(super::load_data(&a.common.data, a.common.seed)?);
    data.check_batch(a.common.batch_size)?;
    let backend = crate::device::backend(&a.common.device, data.clone())?;
    if backend.name().contains("fakecuda") {
        return Err(Error::flag(
            "--device",
            format!(
                "{}: the CUDA driver is fakecuda, the test driver (kernels run in the host emulator, not a GPU); its times are not GPU figures, so bench reports none. Run it on a GPU, or with --device cpu",
                backend.name()
            ),
        ));
    }
    let hp = Hyperparams {
        hidden: a.hidden.clone(),
        activation: a.activation,
        dropout: a.dropout,
        learning_rate: 1e-3,
        optimizer: a.optimizer,
        ..Default::default()
    };
    hp.validate()?;
    let trials: Vec<_> = (0..a.trials as u64)
        .map(|i| {
            let s = TrialSpec::new(i, hp.clone(), a.common.seed, data.dim(), data.n_classes());
            let st = TrialState::init(&s);
            (s, st)
        })
        .collect();
    let dims = trials[0].0.dims();
    let mut c = backend.load(trials)?;
    let active = vec![true; a.trials];
    let mut times = vec![];
    let mut launches = 0;
    for e in 0..=a.epochs {
        let before = crate::backend::cuda::launch::launches();
        let order = epoch_order(a.common.seed, e, data.train.len());
        let t = Instant::now();
        backend.train_epoch(&mut c, &order, a.common.batch_size, &active, &|_| {})?;
        backend.evaluate(&c, SplitId::Val, &active)?;
        if e > 0 {
            times.push(t.elapsed().as_secs_f64());
            launches = crate::backend::cuda::launch::launches() - before;
        }
    }
    times.sort_by(|x, y| x.total_cmp(y));
    let median = times[times.len() / 2];
    let flop = epoch_flop(&dims, data.train.len(), data.val.len()) * a.trials as f64;
    let gflops = flop / median / 1e9;
    let peak = backend.peak_gflops();
    let floor = peak.map(|p| floor_seconds(flop, p));
    // The paths of the trials as they trained (the cohort is reassigned when the batch size is
    // not the one it was loaded for).
    let paths = c.paths();
    if a.json {
        let line = serde_json::json!({
            "backend": backend.name(),
            "hidden": hp.hidden,
            "activation": hp.activation.to_string(),
            "optimizer": hp.optimizer.to_string(),
            // f32 → f64 through its shortest decimal form: 0.049, not 0.04899999871850014.
            "dropout": hp.dropout.to_string().parse::<f64>().unwrap_or(f64::NAN),
            "trials": a.trials,
            "batch_size": a.common.batch_size,
            "epoch_seconds": median,
            // The fastest epoch: on a shared machine, the one least disturbed by other tenants.
            "epoch_seconds_min": times[0],
            "gflops": gflops,
            "peak_gflops": peak,
            "floor_seconds": floor,
            "launches_per_epoch": launches,
            "paths": paths.map(|p| serde_json::json!({"fused": p.fused, "per_op": p.per_op})),
        });
        println!("{line}");
    } else {
        println!(
            "bench: {} x hidden {:?} {} {} dropout {} batch {} on {}",
            a.trials,
            hp.hidden,
            hp.activation,
            hp.optimizer,
            hp.dropout,
            a.common.batch_size,
            backend.name()
        );
        println!(
            "epoch (train {} + val {}): median {:.3} s of {} | {:.2} GFLOP/epoch -> {:.1} GFLOP/s | {:.0} samples/s",
            data.train.len(),
            data.val.len(),
            median,
            times.len(),
            flop / 1e9,
            gflops,
            (data.train.len() * a.trials) as f64 / median
        );
        if let (Some(p), Some(f)) = (peak, floor) {
            if backend.is_cpu() {
                println!(
                    "{:.1}% of this CPU's FMA peak ({:.1} GFLOP/s measured on {} threads with {:?} vectors): floor {:.4} s/epoch",
                    100.0 * gflops / p,
                    p,
                    rayon::current_num_threads(),
                    crate::backend::cpu::dense::isa(),
                    f
                );
            } else {
                println!(
                    "{:.2}% of the GPU's peak FP32 ({:.1} TFLOP/s): floor {:.4} s/epoch, measured {:.1}x the floor",
                    100.0 * gflops / p,
                    p / 1e3,
                    f,
                    median / f
                );
            }
        }
        if let Some(p) = paths {
            println!(
                "cuda engine: {} trials fused, {} per-op; {} kernel launches per epoch",
                p.fused, p.per_op, launches
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_napkin_model_counts_each_layers_multiply_adds() {
        // 4 x 64 on 64 inputs, 10 classes: 64·64·4 + 64·10 = 17,024 MACs forward.
        let dims = [64, 64, 64, 64, 64, 10];
        assert_eq!(epoch_flop(&dims, 1, 0), (34_048 + 59_904) as f64);
        assert_eq!(epoch_flop(&dims, 0, 1), 34_048.0);
        // Backward is twice forward less the first layer's input gradient (2·64·64).
        assert_eq!(epoch_flop(&dims, 3, 2), (3 * 93_952 + 2 * 34_048) as f64);
        let one = epoch_flop(&[64, 32, 10], 1, 0);
        assert_eq!(one, (2 * (64 * 32 + 32 * 10) * 3 - 2 * 64 * 32) as f64);
    }

    #[test]
    fn the_floor_is_flop_at_peak() {
        // 2.6 TFLOP (the seed's random search) at a T4's and an H200's peak FP32: the floors the
        // fused engine's issue names (0.32 s and 0.04 s).
        let t4 = floor_seconds(2.6e12, 8141.0);
        let h200 = floor_seconds(2.6e12, 66908.0);
        assert!((t4 - 0.3194).abs() < 1e-3, "{t4}");
        assert!((h200 - 0.0389).abs() < 1e-3, "{h200}");
        assert_eq!(floor_seconds(0.0, 1.0), 0.0);
    }
}
