//! `fastfc train`: one configuration, trained with early stopping, scored once on the test split.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::backend::{Backend, SplitId};
use crate::cli::TrainArgs;
use crate::data::batches::steps_per_epoch;
use crate::error::{Error, Result};
use crate::model::{Hyperparams, TrialSpec};
use crate::progress::Progress;
use crate::results::model_io::{self, ModelConfig};
use crate::train::{train_cohort, EpochRecord, Event, TrainConfig, TrialJob, TrialStatus};

/// What `fastfc train --out` writes; any of them already there makes it refuse without `--overwrite`.
const OUT_FILES: [&str; 3] = ["model.safetensors", "config.json", "metrics.json"];

/// `metrics.json` of `fastfc train --out`.
#[derive(Debug, Serialize)]
pub struct Metrics {
    pub status: TrialStatus,
    pub val_accuracy: f64,
    pub val_loss: f64,
    pub test_accuracy: Option<f64>,
    pub test_loss: Option<f64>,
    pub epochs_trained: usize,
    pub best_epoch: usize,
    pub wall_seconds: f64,
    pub device: String,
    pub data: String,
    pub history: Vec<EpochRecord>,
}

pub fn run(a: &TrainArgs) -> Result<()> {
    crate::device::init_threads(a.common.threads)?;
    let mut hp = Hyperparams {
        hidden: a.hidden.clone(),
        activation: a.activation,
        dropout: a.dropout,
        learning_rate: a.lr,
        optimizer: a.optimizer,
        ..Default::default()
    };
    a.knobs.apply(&mut hp, a.epochs)?;
    hp.validate()?;
    if a.epochs == 0 {
        return Err(Error::flag("--epochs", "0: expected at least 1"));
    }
    if a.common.batch_size == 0 {
        return Err(Error::flag("--batch-size", "0: expected at least 1"));
    }
    if let Some(out) = &a.out {
        if out.is_file() {
            return Err(Error::flag(
                "--out",
                format!("{}: is a file; expected a folder", out.display()),
            ));
        }
        // Checked before any data loads, so a wrong folder costs nothing (a study's `best/` too).
        let held: Vec<&str> = OUT_FILES
            .into_iter()
            .filter(|f| out.join(f).exists())
            .collect();
        if !held.is_empty() && !a.overwrite {
            return Err(Error::Exists {
                flag: "--out".into(),
                msg: format!(
                    "{}: already holds a model ({}); pass --overwrite to replace it, or choose another folder",
                    out.display(),
                    held.join(", ")
                ),
            });
        }
    }
    let data = Arc::new(super::load_data(&a.common.data, a.common.seed)?);
    data.check_batch(a.common.batch_size)?;
    let backend = crate::device::backend(&a.common.device, data.clone())?;
    let spec = TrialSpec::new(0, hp.clone(), a.common.seed, data.dim(), data.n_classes());
    let cfg = TrainConfig {
        epochs: a.epochs,
        batch_size: a.common.batch_size,
        patience: (a.patience > 0).then_some(a.patience),
        seed: a.common.seed,
        stop: Default::default(),
    };
    println!("{}", cfg.describe(&hp, &backend.name()));
    let steps = steps_per_epoch(data.train.len(), cfg.batch_size) as u64;
    let bar = Progress::new(steps * a.epochs as u64, "steps");
    let t0 = Instant::now();
    let mut epoch_t = Instant::now();
    let outcome = train_cohort(
        &backend,
        vec![TrialJob::fresh(spec.clone())],
        &cfg,
        &mut |ev| {
            if let Event::Epoch { record: r, best, .. } = ev {
                bar.println(format!(
                    "epoch {:>3}/{}  loss {:.4}  acc {:.4}  val_loss {:.4}  val_acc {:.4}  {:.2}s{}",
                    r.epoch,
                    a.epochs,
                    r.loss,
                    r.accuracy,
                    r.val_loss,
                    r.val_accuracy,
                    epoch_t.elapsed().as_secs_f64(),
                    if best { "  *" } else { "" }
                ));
                bar.set_message(format!("val_acc {:.4}", r.val_accuracy));
                epoch_t = Instant::now();
            }
        },
        &|n| bar.inc(n),
    )?
    .pop()
    .expect("one trial in, one outcome out");
    bar.finish();
    let wall = t0.elapsed().as_secs_f64();

    // The test split is touched once, for the weights training kept.
    let (test_loss, test_acc) = if outcome.best_epoch > 0 {
        let c = backend.load(vec![(spec.clone(), outcome.checkpoint.clone())])?;
        let t = backend.evaluate(&c, SplitId::Test, &[true])?[0];
        (Some(t.loss), Some(t.accuracy))
    } else {
        (None, None)
    };
    let status = outcome.status.name();
    println!(
        "result: {status} after {} epochs; kept epoch {}: val_loss {:.4} val_accuracy {:.4} | test_accuracy {} | {:.1}s",
        outcome.epochs_trained,
        outcome.best_epoch,
        outcome.val_loss,
        outcome.val_accuracy,
        test_acc.map_or("n/a (no finished epoch)".into(), |t| format!("{t:.4}")),
        wall
    );
    if let Some(out) = &a.out {
        let mc = ModelConfig::from_spec(&spec, &data, a.common.seed, a.common.batch_size);
        model_io::save(out, &mc, &outcome.checkpoint.params)?;
        let m = Metrics {
            status: outcome.status,
            val_accuracy: outcome.val_accuracy,
            val_loss: outcome.val_loss,
            test_accuracy: test_acc,
            test_loss,
            epochs_trained: outcome.epochs_trained,
            best_epoch: outcome.best_epoch,
            wall_seconds: wall,
            device: backend.name(),
            data: data.origin.to_string(),
            history: outcome.history.clone(),
        };
        model_io::write_json(&out.join("metrics.json"), &m)?;
        println!("wrote {}/{{{}}}", out.display(), OUT_FILES.join(", "));
    }
    Ok(())
}
