//! The trainer: epochs × mini-batches for a whole cohort on any [`Backend`], validation after
//! each epoch, per-trial early stopping on val_loss that keeps the best weights (Keras'
//! `EarlyStopping(patience, restore_best_weights=True)`), and divergence (a non-finite loss) as a
//! trial status instead of a crash.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, SplitId};
use crate::data::batches::epoch_order;
use crate::error::{Error, Result};
use crate::model::{TrialSpec, TrialState};

#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Train until this many epochs in total (a trial that already has some continues).
    pub epochs: usize,
    pub batch_size: usize,
    /// Stop a trial after this many epochs without a lower val_loss; `None` never stops early.
    pub patience: Option<usize>,
    /// Study seed: the batch order of epoch e is derived from (seed, e).
    pub seed: u64,
    /// Raised by a front end to stop (Python's KeyboardInterrupt): the trainer checks it before
    /// each epoch and returns [`Error::Interrupted`], so a cohort stops within one epoch and
    /// nothing unfinished is journaled.
    pub stop: Stop,
}

impl TrainConfig {
    /// One line saying what trains how, and where (`fastfc train`'s and `FCNNClassifier.fit`'s).
    pub fn describe(&self, hp: &crate::model::Hyperparams, backend: &str) -> String {
        let mut opt = hp.optimizer.to_string();
        for (k, v) in hp.optimizer_params() {
            opt.push_str(&format!(" {k} {v}"));
        }
        if !hp.schedule.is_constant() {
            opt.push_str(&format!(" schedule {}", hp.schedule.name()));
            for (k, v) in [
                ("warmup_epochs", hp.schedule.warmup_epochs()),
                ("decay_epochs", hp.schedule.decay_epochs()),
                ("decay_rate", hp.schedule.decay_rate()),
            ] {
                if let Some(v) = v {
                    opt.push_str(&format!(" {k} {v}"));
                }
            }
        }
        format!(
            "train: hidden {:?} {} {} lr {} dropout {} | {} epochs, batch {}, patience {}, seed {} on {backend}",
            hp.hidden,
            hp.activation,
            opt,
            hp.learning_rate,
            hp.dropout,
            self.epochs,
            hp.batch(self.batch_size),
            self.patience.unwrap_or(0),
            self.seed,
        )
    }
}

/// A request to stop, shared between a front end's thread and the trainer's.
#[derive(Debug, Clone, Default)]
pub struct Stop(Option<std::sync::Arc<std::sync::atomic::AtomicBool>>);

impl Stop {
    /// A flag that [`Stop::requested`] reads.
    pub fn new(flag: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Self {
        Stop(Some(flag))
    }
    pub fn requested(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed))
    }
    /// `Err(Interrupted)` once a stop was requested.
    pub fn check(&self, what: impl FnOnce() -> String) -> Result<()> {
        if self.requested() {
            return Err(Error::Interrupted(what()));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialStatus {
    /// Trained all its epochs.
    Complete,
    /// Stopped by early stopping.
    EarlyStopped,
    /// Met a non-finite loss.
    Diverged,
    /// The backend failed on it.
    Failed,
}

impl TrialStatus {
    pub fn name(self) -> &'static str {
        match self {
            TrialStatus::Complete => "complete",
            TrialStatus::EarlyStopped => "early_stopped",
            TrialStatus::Diverged => "diverged",
            TrialStatus::Failed => "failed",
        }
    }
}

/// Metrics of one epoch of one trial (epoch is 1-based and absolute).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    #[serde(with = "crate::results::nonfinite")]
    pub loss: f64,
    #[serde(with = "crate::results::nonfinite")]
    pub accuracy: f64,
    #[serde(with = "crate::results::nonfinite")]
    pub val_loss: f64,
    #[serde(with = "crate::results::nonfinite")]
    pub val_accuracy: f64,
}

/// A trial to train: spec plus the state to start from (fresh init or checkpoint).
#[derive(Debug, Clone)]
pub struct TrialJob {
    pub spec: TrialSpec,
    pub state: TrialState,
}

impl TrialJob {
    pub fn fresh(spec: TrialSpec) -> Self {
        let state = TrialState::init(&spec);
        TrialJob { spec, state }
    }
}

/// What training one trial produced.
#[derive(Debug, Clone)]
pub struct TrialOutcome {
    pub spec: TrialSpec,
    pub status: TrialStatus,
    /// Epochs of this run (not of earlier runs a checkpoint came from).
    pub history: Vec<EpochRecord>,
    /// Absolute epoch (1-based) whose weights were kept; 0 if none finished.
    pub best_epoch: usize,
    pub val_loss: f64,
    pub val_accuracy: f64,
    /// Total epochs trained, including earlier runs.
    pub epochs_trained: usize,
    /// The kept state: best-epoch weights and moments, `epochs` = total epochs trained.
    pub checkpoint: TrialState,
    /// Wall time from the cohort's start until this trial stopped.
    pub seconds: f64,
}

/// Something the trainer reports while it runs (drives progress bars and logs).
#[derive(Debug, Clone)]
pub enum Event<'a> {
    CohortStart {
        trials: usize,
        steps_per_epoch: usize,
        first_epoch: usize,
        last_epoch: usize,
    },
    Epoch {
        trial: &'a TrialSpec,
        record: &'a EpochRecord,
        best: bool,
    },
    TrialEnd {
        outcome: &'a TrialOutcome,
    },
}

/// Trains a cohort (all jobs must start at the same epoch) to `cfg.epochs`. A cohort larger than
/// the backend holds at once ([`Backend::max_cohort`]), or one whose loading runs out of device
/// memory, is split and trained part after part; outcomes come back in job order.
pub fn train_cohort<B: Backend>(
    backend: &B,
    mut jobs: Vec<TrialJob>,
    cfg: &TrainConfig,
    on_event: &mut dyn FnMut(Event),
    on_steps: &(dyn Fn(u64) + Sync),
) -> Result<Vec<TrialOutcome>> {
    // Trials of different batch sizes take different steps, so the cohort trains as one group
    // per batch size (each in lockstep), one after another; outcomes come back in job order. The
    // batch order of an epoch is a function of (seed, epoch) alone, so a trial's result does not
    // depend on the group it trained in.
    let batch_of = |j: &TrialJob| j.spec.hp.batch(cfg.batch_size);
    if let Some(first) = jobs.first().map(batch_of) {
        if jobs.iter().any(|j| batch_of(j) != first) {
            let mut sizes: Vec<usize> = jobs.iter().map(batch_of).collect();
            sizes.sort();
            sizes.dedup();
            let mut out: Vec<Option<TrialOutcome>> = vec![None; jobs.len()];
            for b in sizes {
                let (idx, group): (Vec<usize>, Vec<TrialJob>) = jobs
                    .iter()
                    .enumerate()
                    .filter(|(_, j)| batch_of(j) == b)
                    .map(|(i, j)| (i, j.clone()))
                    .unzip();
                let sub = TrainConfig {
                    batch_size: b,
                    ..cfg.clone()
                };
                for (i, o) in idx
                    .into_iter()
                    .zip(train_cohort(backend, group, &sub, on_event, on_steps)?)
                {
                    out[i] = Some(o);
                }
            }
            return Ok(out
                .into_iter()
                .map(|o| o.expect("every job trained"))
                .collect());
        }
        if first != cfg.batch_size {
            let sub = TrainConfig {
                batch_size: first,
                ..cfg.clone()
            };
            return train_cohort(backend, jobs, &sub, on_event, on_steps);
        }
    }
    let specs: Vec<TrialSpec> = jobs.iter().map(|j| j.spec.clone()).collect();
    let max = backend.max_cohort(&specs, cfg.batch_size).max(1);
    if jobs.len() > max {
        let mut out = vec![];
        while !jobs.is_empty() {
            let rest = jobs.split_off(max.min(jobs.len()));
            out.extend(train_cohort(backend, jobs, cfg, on_event, on_steps)?);
            jobs = rest;
        }
        return Ok(out);
    }
    if jobs.len() > 1 {
        let copy = jobs.clone();
        return match train_whole(backend, jobs, cfg, on_event, on_steps) {
            Err(Error::OutOfMemory { backend: b, msg }) => {
                eprintln!(
                    "note: {b}: out of memory with {} trials ({msg}); splitting the cohort",
                    copy.len()
                );
                let mut first = copy;
                let second = first.split_off(first.len() / 2);
                let mut out = train_cohort(backend, first, cfg, on_event, on_steps)?;
                out.extend(train_cohort(backend, second, cfg, on_event, on_steps)?);
                Ok(out)
            }
            other => other,
        };
    }
    train_whole(backend, jobs, cfg, on_event, on_steps)
}

fn train_whole<B: Backend>(
    backend: &B,
    jobs: Vec<TrialJob>,
    cfg: &TrainConfig,
    on_event: &mut dyn FnMut(Event),
    on_steps: &(dyn Fn(u64) + Sync),
) -> Result<Vec<TrialOutcome>> {
    if jobs.is_empty() {
        return Ok(vec![]);
    }
    if cfg.batch_size == 0 {
        return Err(Error::flag("--batch-size", "0: expected at least 1"));
    }
    let first = jobs[0].state.epochs;
    if let Some(j) = jobs.iter().find(|j| j.state.epochs != first) {
        return Err(Error::backend(
            "trainer",
            format!(
                "trial {} starts at epoch {}, the cohort at {first}",
                j.spec.id, j.state.epochs
            ),
        ));
    }
    let n = jobs.len();
    let started = Instant::now();
    let n_train = backend.data().train.len();
    let steps = crate::data::batches::steps_per_epoch(n_train, cfg.batch_size);
    on_event(Event::CohortStart {
        trials: n,
        steps_per_epoch: steps,
        first_epoch: first,
        last_epoch: cfg.epochs,
    });

    let _cohort_range = crate::profile::range(format_args!(
        "cohort of {n} trials, epochs {}..{}",
        first + 1,
        cfg.epochs
    ));
    let specs: Vec<TrialSpec> = jobs.iter().map(|j| j.spec.clone()).collect();
    let mut cohort = backend.load(jobs.into_iter().map(|j| (j.spec, j.state)).collect())?;
    let mut active = vec![true; n];
    let mut status = vec![TrialStatus::Complete; n];
    let mut history: Vec<Vec<EpochRecord>> = vec![vec![]; n];
    let mut best: Vec<Option<(EpochRecord, TrialState)>> = vec![None; n];
    let mut wait = vec![0usize; n];
    let mut ended_at = vec![0f64; n];

    for e in first..cfg.epochs {
        if !active.iter().any(|&a| a) {
            break;
        }
        cfg.stop.check(|| {
            format!(
                "stopped before epoch {} of a cohort of {n} trials; its runs were not journaled",
                e + 1
            )
        })?;
        let order = epoch_order(cfg.seed, e, n_train);
        let tr = {
            let _r = crate::profile::range(format_args!("epoch {} ({n} trials)", e + 1));
            backend.train_epoch(&mut cohort, &order, cfg.batch_size, &active, on_steps)?
        };
        let va = {
            let _r = crate::profile::range(format_args!("validation after epoch {}", e + 1));
            backend.evaluate(&cohort, SplitId::Val, &active)?
        };
        for i in 0..n {
            if !active[i] {
                continue;
            }
            let rec = EpochRecord {
                epoch: e + 1,
                loss: tr[i].loss(),
                accuracy: tr[i].accuracy(),
                val_loss: va[i].loss,
                val_accuracy: va[i].accuracy,
            };
            if tr[i].diverged || !rec.val_loss.is_finite() {
                status[i] = TrialStatus::Diverged;
                active[i] = false;
                ended_at[i] = started.elapsed().as_secs_f64();
                history[i].push(rec);
                on_event(Event::Epoch {
                    trial: &specs[i],
                    record: &rec,
                    best: false,
                });
                continue;
            }
            let improved = best[i]
                .as_ref()
                .is_none_or(|(b, _)| rec.val_loss < b.val_loss);
            if improved {
                best[i] = Some((rec, backend.state(&cohort, i)?));
                wait[i] = 0;
            } else {
                wait[i] += 1;
                if cfg.patience.is_some_and(|p| wait[i] >= p) && e + 1 < cfg.epochs {
                    status[i] = TrialStatus::EarlyStopped;
                    active[i] = false;
                    ended_at[i] = started.elapsed().as_secs_f64();
                }
            }
            history[i].push(rec);
            on_event(Event::Epoch {
                trial: &specs[i],
                record: &rec,
                best: improved,
            });
        }
    }
    let total = started.elapsed().as_secs_f64();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let now = backend.state(&cohort, i)?;
        let (best_epoch, val_loss, val_accuracy, mut ckpt) = match best[i].take() {
            Some((r, st)) => (r.epoch, r.val_loss, r.val_accuracy, st),
            None => (0, f64::NAN, 0.0, now.clone()),
        };
        // The kept weights are the best epoch's; the epoch count is what was trained in total,
        // so a continued run (Hyperband promotion) starts after it.
        ckpt.epochs = now.epochs.max(history[i].last().map_or(first, |r| r.epoch));
        let o = TrialOutcome {
            spec: specs[i].clone(),
            status: status[i],
            history: std::mem::take(&mut history[i]),
            best_epoch,
            val_loss,
            val_accuracy,
            epochs_trained: ckpt.epochs,
            checkpoint: ckpt,
            seconds: if ended_at[i] > 0.0 {
                ended_at[i]
            } else {
                total
            },
        };
        on_event(Event::TrialEnd { outcome: &o });
        out.push(o);
    }
    Ok(out)
}
