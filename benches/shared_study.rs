//! What sharing a study through PostgreSQL costs (`--storage`): one cohort's claim plus its record,
//! round trip, for cohorts of 1 and 8 runs with realistic records (10-epoch histories) and
//! checkpoints (the drawn configurations' parameters and optimizer moments: 40-200 KB each). Each iteration claims new runs
//! of a large random search and records them, as a worker does between two trainings.
//!
//! It also fills study `report-10k` with 10,000 recorded runs (once), for timing `fastfc report
//! --storage` on it (scripts/bench-coordination.sh does both).
//!
//! Needs a server: `FASTFC_BENCH_PG` = a database URL (for example from scripts/pg-start.sh's
//! FASTFC_TEST_PG with another database name); without it the group prints "not run".
//! Run: `FASTFC_BENCH_PG=… cargo bench --bench shared_study`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

use fastfc::model::{TrialSpec, TrialState};
use fastfc::results::journal::RunRecord;
use fastfc::results::postgres::{Claim, Claimed, PgUrl, SharedStudy};
use fastfc::space::SearchSpace;
use fastfc::strategy::{random, Strategy};
use fastfc::study::StudyConfig;
use fastfc::train::{EpochRecord, TrialStatus};

fn config(trials: usize) -> StudyConfig {
    StudyConfig {
        strategy: "random".into(),
        seed: 1,
        trials: Some(trials),
        epochs: 10,
        max_epochs: 10,
        factor: 3,
        iterations: 1,
        patience: Some(3),
        batch_size: 32,
        image_size: 8,
        space: fastfc::space::DEFAULT_TOML.to_string(),
        data: None,
        tpe: None,
        asha: None,
    }
}

/// A finished run as a worker would record it: 10 epochs, and the state of the configuration the
/// search drew (the seed's space: 2-4 layers of 32-64 units; Adam's two moments or Lion's one).
fn finished(c: Claimed) -> (Claimed, RunRecord, TrialState) {
    // The state's values do not matter, only its size: one initialised state per architecture,
    // so the timings are the database's and not Glorot initialisation's.
    thread_local! {
        static STATES: std::cell::RefCell<std::collections::HashMap<String, TrialState>> =
            Default::default();
    }
    let hp = &c.request.hp;
    let arch = format!("{:?} {}", hp.hidden, hp.optimizer);
    let st = STATES.with(|m| {
        m.borrow_mut()
            .entry(arch)
            .or_insert_with(|| {
                TrialState::init(&TrialSpec::new(c.request.trial_id, hp.clone(), 1, 64, 10))
            })
            .clone()
    });
    let acc = 0.8 + (c.request.run_id % 97) as f64 / 1000.0;
    let history = (1..=10)
        .map(|e| EpochRecord {
            epoch: e,
            loss: 0.5,
            accuracy: 0.8,
            val_loss: 0.45,
            val_accuracy: acc,
        })
        .collect();
    let rec = RunRecord {
        request: c.request.clone(),
        start_epoch: 0,
        status: TrialStatus::Complete,
        best_epoch: 10,
        epochs_trained: 10,
        val_loss: 0.45,
        val_accuracy: acc,
        seconds: 1.0,
        study_seconds: 0.0,
        study_epochs: 0,
        history,
    };
    (c, rec, st)
}

fn claim_and_record(s: &mut SharedStudy, strategy: &mut dyn Strategy, n: usize) -> usize {
    match s.claim(strategy, n).unwrap() {
        Claim::Runs(r) => s
            .record(r.into_iter().map(finished).collect())
            .unwrap()
            .len(),
        _ => 0,
    }
}

fn shared(c: &mut Criterion) {
    let Ok(url) = std::env::var("FASTFC_BENCH_PG") else {
        eprintln!(
            "shared_study benchmarks not run: set FASTFC_BENCH_PG to a PostgreSQL database URL"
        );
        return;
    };
    let url = PgUrl::parse(&url, "FASTFC_BENCH_PG").unwrap();
    let lease = Duration::from_secs(30);
    let space = SearchSpace::default();
    let mut g = c.benchmark_group("shared_study");
    g.sample_size(30);
    for n in [1usize, 8] {
        let name = format!("round-trip-{n}-{}", std::process::id());
        let trials = 40_000;
        let mut s = SharedStudy::open(&url, &name, Some((&config(trials), "")), lease).unwrap();
        let mut strategy = random::new(&space, trials, 10, 1).unwrap();
        g.bench_function(format!("claim+record/cohort_{n}"), |b| {
            b.iter(|| assert_eq!(claim_and_record(&mut s, &mut strategy, n), n))
        });
    }
    g.finish();
    // The 10,000-run study for `fastfc report --storage` (filled once).
    let mut s = SharedStudy::open(&url, "report-10k", Some((&config(10_000), "")), lease).unwrap();
    let mut strategy = random::new(&space, 10_000, 10, 1).unwrap();
    let t = std::time::Instant::now();
    while claim_and_record(&mut s, &mut strategy, 50) > 0 {}
    eprintln!(
        "report-10k: {} runs recorded ({:.1}s to fill)",
        s.records().unwrap().len(),
        t.elapsed().as_secs_f64()
    );
}

criterion_group!(benches, shared);
criterion_main!(benches);
