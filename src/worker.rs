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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::error::Result;
use crate::results::journal::RunRecord;
use crate::results::postgres::{Claim, Claimed, SharedStudy};
use crate::strategy::Strategy;
use crate::study::{cohorts, StudyUi};
use crate::train::{train_cohort, TrialJob};

/// Renews the leases of the runs this worker is training (`training`) every third of the lease,
/// on its own connection (reconnecting after a failure), until dropped.
struct Heartbeat {
    stop: Arc<AtomicBool>,
    training: Arc<Mutex<Vec<i64>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    fn start(s: &SharedStudy) -> Result<Heartbeat> {
        let mut client = Some(s.url.connect()?);
        let url = s.url.clone();
        let (id, worker, lease) = (s.id, s.worker.clone(), s.lease);
        let stop = Arc::new(AtomicBool::new(false));
        let training = Arc::new(Mutex::new(Vec::new()));
        let (flag, runs) = (stop.clone(), training.clone());
        let thread = std::thread::spawn(move || {
            let every = lease / 3;
            let mut last = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50).min(every));
                if last.elapsed() < every {
                    continue;
                }
                last = Instant::now();
                let now: Vec<i64> = runs.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if now.is_empty() {
                    continue;
                }
                if client.is_none() {
                    client = url.connect().ok();
                }
                let Some(c) = client.as_mut() else {
                    eprintln!(
                        "warning: heartbeat: cannot reach {}; this worker's claims may expire",
                        url.shown
                    );
                    continue;
                };
                if let Err(e) = SharedStudy::heartbeat(c, id, &worker, &now, lease) {
                    eprintln!(
                        "warning: heartbeat: {}; this worker's claims may expire",
                        crate::results::postgres::conn::describe(&e)
                    );
                    client = None;
                }
            }
        });
        Ok(Heartbeat {
            stop,
            training,
            thread: Some(thread),
        })
    }

    /// The runs being trained now (renewed by the heartbeat).
    fn set(&self, runs: Vec<i64>) {
        *self.training.lock().unwrap_or_else(|e| e.into_inner()) = runs;
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

/// After a failed claim or record: gives up on a permanent error, or after 6 transient ones in
/// a row; otherwise waits (1, 2, 4 … 16 s) and reconnects, until the server answers again.
fn recover(shared: &mut SharedStudy, e: &crate::error::Error, failures: &mut u32) -> Result<()> {
    if !e.is_transient() || *failures >= 6 {
        let msg = match e {
            crate::error::Error::Storage { msg, .. } => msg.clone(),
            other => other.to_string(),
        };
        return Err(crate::error::Error::Storage {
            msg,
            transient: false,
        });
    }
    *failures += 1;
    shared.reset_replay();
    loop {
        let wait = Duration::from_secs(1 << (*failures - 1).min(4));
        eprintln!("warning: {e}; trying again in {}s", wait.as_secs());
        std::thread::sleep(wait);
        match shared.reconnect() {
            Ok(()) => return Ok(()),
            Err(again) if *failures < 6 => {
                *failures += 1;
                eprintln!("warning: {again}");
            }
            Err(again) => return Err(again),
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
    let heartbeat = Heartbeat::start(shared)?;
    let mut local = strategy()?;
    shared.reset_replay();
    let mut mine = vec![];
    let mut pause = Duration::from_millis(50);
    let mut failures = 0;
    loop {
        let claim = match shared.claim(local.as_mut(), cohort_size.max(1)) {
            Ok(c) => {
                failures = 0;
                c
            }
            Err(e) => {
                // The local strategy may have moved ahead of what was committed: rebuild it
                // and replay the study from the start on a new connection.
                recover(shared, &e, &mut failures)?;
                local = strategy()?;
                continue;
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
        heartbeat.set(runs.iter().map(|c| c.request.run_id as i64).collect());
        let groups = cohorts(
            runs,
            |c| &c.request,
            &cfg,
            backend,
            cohort_size,
            |rid| shared.checkpoint(rid),
        )?;
        for ((first, last), group) in groups {
            ui.cohort_start(group.len(), first, last);
            let (claims, jobs): (Vec<Claimed>, Vec<TrialJob>) = group.into_iter().unzip();
            let shown: &dyn StudyUi = &*ui;
            let outcomes =
                train_cohort(backend, jobs, &cfg.train_config(last), &mut |_| {}, &|n| {
                    shown.steps(n)
                })?;
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
            // A record is accepted once, from the claim's holder: retrying after a lost
            // connection cannot record a run twice.
            let written = loop {
                match shared.record(done.clone()) {
                    Ok(w) => break w,
                    Err(e) => recover(shared, &e, &mut failures)?,
                }
            };
            for r in written {
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
