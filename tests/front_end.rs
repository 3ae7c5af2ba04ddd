//! What the Python package relies on in the library, tested without Python: in-memory arrays
//! (`data::memory`), a search through `search::prepare` and `Prepared::run`, and a stop request
//! (Ctrl-C) that ends a study between epochs with every finished run journaled, so a resume ends
//! where an uninterrupted study does. The package's own tests are python/tests (pytest).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fastfc::backend::cpu::CpuBackend;
use fastfc::cli::StrategyName;
use fastfc::data::memory::{self, Arrays, Shape, Validation};
use fastfc::data::{DataOptions, Dataset};
use fastfc::error::Error;
use fastfc::results::journal::RunRecord;
use fastfc::search::{self, Search};
use fastfc::study::StudyUi;
use fastfc::train::Stop;

/// Embedded Fashion-MNIST's first `n` training rows as arrays a caller would hand over.
fn arrays(n: usize) -> (Vec<f32>, Vec<u32>) {
    let d = fastfc::data::embedded::load().unwrap();
    (d.train.x[..n * 64].to_vec(), d.train.y[..n].to_vec())
}

fn shape(k: usize) -> Shape {
    Shape {
        dim: 64,
        image: Some((8, 8)),
        classes: (0..k).map(|c| c.to_string()).collect(),
        what: "numpy arrays (test)".into(),
    }
}

fn opts(val: Option<f64>) -> DataOptions {
    DataOptions {
        val_fraction: val,
        test_fraction: Some(0.0),
        seed: 9,
        ..DataOptions::default()
    }
}

fn train(x: Vec<f32>, y: Vec<u32>) -> Arrays {
    Arrays {
        x,
        y,
        name: "x".into(),
    }
}

#[test]
fn rows_drawn_by_the_caller_make_the_data_set_the_library_would_draw() {
    let (x, y) = arrays(3000);
    let here = memory::from_arrays(
        train(x.clone(), y.clone()),
        Validation::Draw,
        shape(10),
        &opts(Some(0.25)),
    )
    .unwrap();
    // The caller's way: draw first, copy each row straight to its split.
    let assign = memory::draw_validation(&y, 10, 0.25, 9);
    let (mut xt, mut yt, mut xv, mut yv) = (vec![], vec![], vec![], vec![]);
    for (i, &a) in assign.iter().enumerate() {
        let row = &x[i * 64..(i + 1) * 64];
        if a == 1 {
            xv.extend_from_slice(row);
            yv.push(y[i]);
        } else {
            xt.extend_from_slice(row);
            yt.push(y[i]);
        }
    }
    let caller = memory::from_arrays(
        train(xt, yt),
        Validation::Drawn(Arrays {
            x: xv,
            y: yv,
            name: "x (validation rows)".into(),
        }),
        shape(10),
        &opts(Some(0.25)),
    )
    .unwrap();
    assert_eq!(here.train.x, caller.train.x);
    assert_eq!(here.val.y, caller.val.y);
    assert_eq!(here.split, caller.split);
    assert_eq!(here.record().crc32, caller.record().crc32);
    assert_eq!(here.options, caller.options);
    assert_eq!(here.val.len(), 750, "a quarter of 3000, stratified");
    assert!(here.test.is_empty(), "the caller keeps its own test set");
    assert!(here.split.contains("no test split"), "{}", here.split);
    // Stratified: every class in the validation rows in its training proportion.
    let counts = here.val.class_counts(10);
    let all = fastfc::data::Split {
        x: vec![],
        y: y.clone(),
        dim: 64,
    }
    .class_counts(10);
    for (c, (&v, &a)) in counts.iter().zip(&all).enumerate() {
        assert!(
            (v as f64 - a as f64 * 0.25).abs() <= 1.0,
            "class {c}: {v} of {a}"
        );
    }
}

#[test]
fn classes_keep_the_callers_order_and_bad_arrays_are_refused() {
    let (x, y) = arrays(200);
    // np.unique orders string labels "10" < "9"; the engine keeps that order (a Coder of its
    // own would sort them as numbers).
    let mut s = shape(10);
    s.classes = ["0", "1", "10", "2", "3", "4", "5", "6", "7", "9"]
        .map(String::from)
        .to_vec();
    let d = memory::from_arrays(
        train(x.clone(), y.clone()),
        Validation::Draw,
        s,
        &opts(None),
    )
    .unwrap();
    assert_eq!(d.classes[2], "10");
    assert_eq!(d.train.y.len() + d.val.y.len(), 200);
    let bad = |x: Vec<f32>, y: Vec<u32>, k: usize| {
        memory::from_arrays(train(x, y), Validation::Draw, shape(k), &opts(None))
            .unwrap_err()
            .to_string()
    };
    assert!(bad(x[..100].to_vec(), y.clone(), 10).contains("labels of 64 features"));
    assert!(bad(x.clone(), y.clone(), 3).contains("expected < 3"));
    let e = bad(x.clone(), vec![0; 200], 1);
    assert!(e.contains("only one class"), "{e}");
}

fn settings(out: &std::path::Path) -> Search {
    Search {
        strategy: StrategyName::Random,
        seed: 5,
        trials: Some(6),
        epochs: Some(2),
        max_epochs: None,
        factor: None,
        iterations: None,
        min_epochs: None,
        startup_trials: None,
        ei_candidates: None,
        random_fraction: None,
        cohort_size: Some(2),
        patience: 0,
        batch_size: 32,
        space: None,
        out: out.to_path_buf(),
        resume: false,
    }
}

fn data() -> Arc<Dataset> {
    common::embedded_subset(1500, 500)
}

/// Asks to stop once `after` runs have finished.
struct StopAfter {
    after: usize,
    done: usize,
    flag: Arc<AtomicBool>,
}

impl StudyUi for StopAfter {
    fn run_done(&mut self, _r: &RunRecord, _replayed: bool) {
        self.done += 1;
        if self.done == self.after {
            self.flag.store(true, Ordering::Relaxed);
        }
    }
    fn stop(&self) -> Stop {
        Stop::new(self.flag.clone())
    }
}

#[test]
fn a_stopped_search_keeps_its_finished_runs_and_resumes_to_the_same_study() {
    let tmp = tempfile::tempdir().unwrap();
    let d = data();
    let backend = CpuBackend::new(d.clone());
    let whole = tmp.path().join("whole");
    let mut p = search::prepare(&settings(&whole)).unwrap();
    p.bind(&d).unwrap();
    let (summary, _) = p.run(&backend, &mut fastfc::study::NoUi).unwrap();
    assert_eq!(summary.runs, 6);

    let cut = tmp.path().join("cut");
    let mut p = search::prepare(&settings(&cut)).unwrap();
    p.bind(&d).unwrap();
    let mut ui = StopAfter {
        after: 2,
        done: 0,
        flag: Arc::default(),
    };
    let err = p.run(&backend, &mut ui).unwrap_err();
    assert!(matches!(err, Error::Interrupted(_)), "{err}");
    // The first cohort (2 runs) finished and is journaled; the second stopped before training.
    assert_eq!(common::journal_records(&cut).len(), 2);
    assert!(!cut.join("summary.json").exists());
    let mut s = settings(&cut);
    s.resume = true;
    let mut p = search::prepare(&s).unwrap();
    p.bind(&d).unwrap();
    p.run(&backend, &mut fastfc::study::NoUi).unwrap();
    assert_eq!(
        common::journal_records(&cut),
        common::journal_records(&whole)
    );
}

#[test]
fn a_stop_within_a_cohort_ends_it_at_the_next_epoch_unjournaled() {
    let tmp = tempfile::tempdir().unwrap();
    let d = data();
    let backend = CpuBackend::new(d.clone());
    let out = tmp.path().join("s");
    let mut s = settings(&out);
    s.cohort_size = Some(6);
    s.epochs = Some(3);
    let mut p = search::prepare(&s).unwrap();
    p.bind(&d).unwrap();
    // Raised from the progress callback, mid-epoch, as Ctrl-C arrives while the engine trains.
    struct MidEpoch(Arc<AtomicBool>);
    impl StudyUi for MidEpoch {
        fn steps(&self, _n: u64) {
            self.0.store(true, Ordering::Relaxed);
        }
        fn stop(&self) -> Stop {
            Stop::new(self.0.clone())
        }
    }
    let err = p.run(&backend, &mut MidEpoch(Arc::default())).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("before epoch 2 of a cohort of 6 trials"),
        "{msg}"
    );
    assert!(
        !out.join("journal.jsonl").exists()
            || std::fs::read_to_string(out.join("journal.jsonl"))
                .unwrap()
                .is_empty()
    );
}

#[test]
fn options_a_strategy_does_not_take_are_refused_in_the_front_ends_words() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = settings(tmp.path());
    s.strategy = StrategyName::Hyperband;
    s.max_epochs = Some(3);
    let py = |f: &str| f.trim_start_matches("--").replace('-', "_");
    let e = s.check_options(&py).unwrap_err().to_string();
    assert!(
        e.starts_with("trials: does not apply to strategy hyperband"),
        "{e}"
    );
    let e = s.check_options(&|f| f.to_string()).unwrap_err().to_string();
    assert!(
        e.starts_with("--trials: does not apply to --strategy hyperband"),
        "{e}"
    );
    s.trials = None;
    s.epochs = None;
    s.cohort_size = None;
    s.check_options(&py).unwrap();
}
