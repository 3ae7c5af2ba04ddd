//! The worker loop of a study shared through PostgreSQL (`fastfc worker`, and `fastfc search
//! --storage`, which is a worker that also writes the final results): claim a cohort, train it,
//! record it, until the strategy is done. A heartbeat thread, on its own connection, renews the
//! claims' leases; a worker that dies stops renewing, and its runs go back to the pool.
//!
//! What a run is and how it trains is [`crate::study`]'s: the same grouping into cohorts by
//! (start, end) epoch, the same trainer, the same records. Only where runs come from (claims
//! instead of the strategy in this process) and where they go (the database instead of the
//! journal) differ.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::error::Result;
use crate::model::TrialState;
use crate::results::journal::RunRecord;
use crate::results::postgres::{Claim, Claimed, SharedStudy};
use crate::strategy::Strategy;
use crate::study::{spec_of, StudyUi};
use crate::train::{train_cohort, TrainConfig, TrialJob};

/// Renews this worker's leases every third of the lease until dropped.
struct Heartbeat {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    fn start(s: &SharedStudy) -> Result<Heartbeat> {
        let mut client = s.url.connect()?;
        let (id, worker, lease) = (s.id, s.worker.clone(), s.lease);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let every = lease / 3;
            let mut last = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50).min(every));
                if last.elapsed() >= every {
                    last = Instant::now();
                    if let Err(e) = SharedStudy::heartbeat(&mut client, id, &worker, lease) {
                        eprintln!(
                            "warning: heartbeat: {}; this worker's claims may expire",
                            crate::results::postgres::conn::describe(&e)
                        );
                    }
                }
            }
        });
        Ok(Heartbeat {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Works on the shared study until every run is recorded. `strategy` builds a fresh strategy of
/// the study (it is replayed from the database's events). Returns the runs this worker recorded.
pub fn work<B: Backend>(
    backend: &B,
    shared: &mut SharedStudy,
    strategy: &dyn Fn() -> Result<Box<dyn Strategy>>,
    cohort_size: usize,
    ui: &mut dyn StudyUi,
) -> Result<Vec<RunRecord>> {
    let cfg = shared.config.clone();
    let _heartbeat = Heartbeat::start(shared)?;
    let mut local = strategy()?;
    shared.reset_replay();
    let mut mine = vec![];
    let mut pause = Duration::from_millis(50);
    loop {
        let claim = match shared.claim(local.as_mut(), cohort_size.max(1)) {
            Ok(c) => c,
            Err(e) => {
                // The local strategy may have moved ahead of what was committed.
                shared.reset_replay();
                return Err(e);
            }
        };
        let runs = match claim {
            Claim::Done => break,
            Claim::Wait => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(250));
                continue;
            }
            Claim::Runs(r) => r,
        };
        pause = Duration::from_millis(50);
        // Cohorts: runs that start and end at the same epoch, in claim order.
        type Group = ((usize, usize), Vec<(Claimed, TrialJob)>);
        let mut groups: Vec<Group> = vec![];
        for c in runs {
            let spec = spec_of(&c.request, &cfg, backend);
            let state = match c.request.resume_from {
                Some(rid) => shared.checkpoint(rid)?,
                None => TrialState::init(&spec),
            };
            let key = (state.epochs, c.request.epochs);
            let job = TrialJob { spec, state };
            match groups
                .iter_mut()
                .find(|(k, g)| *k == key && g.len() < cohort_size)
            {
                Some((_, g)) => g.push((c, job)),
                None => groups.push((key, vec![(c, job)])),
            }
        }
        for ((first, last), group) in groups {
            ui.cohort_start(group.len(), first, last);
            let (claims, jobs): (Vec<Claimed>, Vec<TrialJob>) = group.into_iter().unzip();
            let train_cfg = TrainConfig {
                epochs: last,
                batch_size: cfg.batch_size,
                patience: cfg.patience,
                seed: cfg.seed,
            };
            let shown: &dyn StudyUi = &*ui;
            let outcomes =
                train_cohort(backend, jobs, &train_cfg, &mut |_| {}, &|n| shown.steps(n))?;
            let done: Vec<_> = claims
                .into_iter()
                .zip(outcomes)
                .map(|(c, o)| {
                    let rec = RunRecord {
                        request: c.request.clone(),
                        start_epoch: first,
                        status: o.status,
                        best_epoch: o.best_epoch,
                        epochs_trained: o.epochs_trained,
                        val_loss: o.val_loss,
                        val_accuracy: o.val_accuracy,
                        seconds: o.seconds,
                        study_seconds: 0.0,
                        study_epochs: 0,
                        history: o.history,
                    };
                    (c, rec, o.checkpoint)
                })
                .collect();
            for r in shared.record(done)? {
                ui.run_done(&r, false);
                mine.push(r);
            }
        }
    }
    Ok(mine)
}

/// Writes a finished shared study's results.csv, summary.json and best/ to `out`. The test split
/// is scored once per study: the first process to finish stores its summary in the database, and
/// later ones keep that score.
pub fn finish<B: Backend>(
    backend: &B,
    study: &mut SharedStudy,
    out: &std::path::Path,
) -> Result<crate::study::Summary> {
    let records = study.records()?;
    std::fs::create_dir_all(out).map_err(|e| crate::error::Error::io(out, e))?;
    crate::results::export::write_csv(out, &records)?;
    let best = records
        .iter()
        .min_by(|a, b| crate::study::rank_records(a, b))
        .ok_or_else(|| crate::error::Error::backend("study", "no run finished"))?;
    let state = study.checkpoint(best.request.run_id)?;
    let kept = study
        .summary()?
        .and_then(|v| serde_json::from_value::<crate::study::Summary>(v).ok());
    let cfg = study.config.clone();
    let mut s = crate::study::finish_with(backend, &cfg, out, &records, state, kept)?;
    let stored = study.store_summary(&serde_json::to_value(&s).expect("summary serialises"))?;
    if let Ok(first) = serde_json::from_value::<crate::study::Summary>(stored) {
        if first.best.run_id == s.best.run_id && first.test_accuracy != s.test_accuracy {
            // Another process finished first and scored the test split: its score is the study's.
            s.test_accuracy = first.test_accuracy;
            s.test_loss = first.test_loss;
            crate::results::model_io::write_json(&out.join("summary.json"), &s)?;
        }
    }
    Ok(s)
}
