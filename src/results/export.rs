//! `results.csv` (one row per trial run, for pandas) and `summary.json`.

use std::path::Path;

use serde::Serialize;

use super::journal::RunRecord;
use crate::error::{Error, Result};

#[derive(Debug, Serialize)]
struct Row<'a> {
    run_id: u64,
    trial_id: u64,
    hidden: String,
    layers: usize,
    units: usize,
    dropout: f32,
    learning_rate: f32,
    activation: &'a str,
    optimizer: &'a str,
    /// The trial's own batch size when the space searched it (empty: the study's).
    batch_size: Option<usize>,
    /// The conditional parameters: empty where the trial's optimizer or schedule lacks them or
    /// the space left them at Keras' defaults.
    beta_1: Option<f64>,
    beta_2: Option<f64>,
    momentum: Option<f64>,
    nesterov: Option<bool>,
    rho: Option<f64>,
    weight_decay: Option<f64>,
    schedule: &'a str,
    warmup_epochs: Option<f64>,
    decay_epochs: Option<f64>,
    decay_rate: Option<f64>,
    epochs: usize,
    start_epoch: usize,
    best_epoch: usize,
    val_loss: f64,
    val_accuracy: f64,
    status: &'a str,
    seconds: f64,
    study_seconds: f64,
    study_epochs: usize,
    iteration: Option<usize>,
    bracket: Option<usize>,
    round: Option<usize>,
    resumed_from_run: Option<u64>,
}

/// Rewrites `results.csv` from the records (atomically).
pub fn write_csv(dir: &Path, records: &[RunRecord]) -> Result<()> {
    let path = dir.join("results.csv");
    let tmp = dir.join("results.csv.tmp");
    let err = |e: csv::Error| Error::file(&tmp, e.to_string());
    let mut w = csv::Writer::from_path(&tmp).map_err(err)?;
    for r in records {
        let q = &r.request;
        w.serialize(Row {
            run_id: q.run_id,
            trial_id: q.trial_id,
            // Widths joined by '-': a string, never a number pandas could mangle.
            hidden: q
                .hp
                .hidden
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join("-"),
            layers: q.hp.hidden.len(),
            units: *q.hp.hidden.iter().max().unwrap_or(&0),
            dropout: q.hp.dropout,
            learning_rate: q.hp.learning_rate,
            activation: q.hp.activation.name(),
            optimizer: q.hp.optimizer.name(),
            batch_size: q.hp.batch_size,
            beta_1: q.hp.beta_1,
            beta_2: q.hp.beta_2,
            momentum: q.hp.momentum,
            nesterov: q.hp.nesterov,
            rho: q.hp.rho,
            weight_decay: q.hp.weight_decay,
            schedule: q.hp.schedule.name(),
            warmup_epochs: q.hp.schedule.warmup_epochs(),
            decay_epochs: q.hp.schedule.decay_epochs(),
            decay_rate: q.hp.schedule.decay_rate(),
            epochs: r.epochs_trained,
            start_epoch: r.start_epoch,
            best_epoch: r.best_epoch,
            val_loss: r.val_loss,
            val_accuracy: r.val_accuracy,
            status: r.status.name(),
            seconds: r.seconds,
            study_seconds: r.study_seconds,
            study_epochs: r.study_epochs,
            iteration: q.bracket.map(|b| b.iteration),
            bracket: q.bracket.map(|b| b.bracket),
            round: q.bracket.map(|b| b.round),
            resumed_from_run: q.resume_from,
        })
        .map_err(err)?;
    }
    w.flush().map_err(|e| Error::io(&tmp, e))?;
    drop(w);
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
}
