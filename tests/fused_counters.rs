//! What the host does per epoch and per step of the seed's search (108 random configurations of
//! the default space, batch 32, one cohort as the CUDA engine's default), on the per-op and the
//! fused engine, counted by fakecuda: kernel launches and graph launches from the host, the
//! kernels replayed graphs run (their nodes), host↔device bytes. Its own test binary, because fakecuda's counters are
//! process-wide and the other suites' tests would run beside it.
//!
//! Each count is split into a fixed part, a part per epoch and a part per step by running the
//! study at two epoch counts and two training-set sizes (3 and 6 steps an epoch). The fused
//! engine must do no per-step host work (no launch, no node; the only bytes that grow with the
//! steps are the epoch's order, 4 a row, copied once an epoch) and at most 2 launches an epoch
//! per cohort (training and validation). `cargo test --release --test fused_counters -- --nocapture` prints the table
//! that BENCHMARKS.md quotes.

mod common;

use fastfc::backend::cuda::engine::{CudaBackend, Engine};
use fastfc::backend::cuda::fake::{self, Stats};
use fastfc::backend::cuda::AnyGpu;
use fastfc::backend::Backend;
use fastfc::space::SearchSpace;
use fastfc::strategy::random;
use fastfc::study::{self, NoUi, StudyConfig};

const TRIALS: usize = 108;

/// One of fakecuda's counters.
type Counter = fn(&Stats) -> u64;

/// Counts of one study of `epochs` epochs on `rows` training rows.
fn counts(
    engine: Engine,
    cohort: Option<usize>,
    rows: usize,
    epochs: usize,
) -> (Stats, fastfc::backend::cuda::engine::Paths) {
    let (g, real) = common::cuda_under_test();
    assert!(!real, "fakecuda's counters are fakecuda's");
    let data = common::embedded_subset(rows, 64);
    let cfg = StudyConfig {
        strategy: "random".into(),
        seed: 42,
        trials: Some(TRIALS),
        epochs,
        max_epochs: epochs,
        factor: 3,
        iterations: 1,
        patience: None,
        batch_size: 32,
        image_size: 8,
        space: "default".into(),
        data: None,
        tpe: None,
        asha: None,
    };
    let b = CudaBackend::new(data.clone(), AnyGpu::Cuda(g))
        .unwrap()
        .with_engine(engine);
    let mut strategy = random::new(&SearchSpace::default(), TRIALS, epochs, cfg.seed).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let before = fake::stats().unwrap();
    let runs = study::run(
        &b,
        &mut strategy,
        &cfg,
        dir.path(),
        cohort.unwrap_or(b.default_cohort()),
        &mut NoUi,
    )
    .unwrap();
    let after = fake::stats().unwrap();
    assert_eq!(runs.len(), TRIALS);
    (after.since(&before), b.paths())
}

/// (fixed, per epoch, per step) of one counter, from runs at (3 steps, 1 epoch), (3 steps, 2
/// epochs) and (6 steps, 2 epochs).
fn split(f: impl Fn(&Stats) -> u64, a: &Stats, b: &Stats, c: &Stats) -> (f64, f64, f64) {
    let (a, b, c) = (f(a) as f64, f(b) as f64, f(c) as f64);
    let per_step = (c - b) / (2.0 * 3.0);
    let per_epoch = (b - a) - 3.0 * per_step;
    let fixed = a - per_epoch - 3.0 * per_step;
    (fixed, per_epoch, per_step)
}

#[test]
fn the_fused_engine_launches_at_most_twice_an_epoch_and_nothing_per_step() {
    let mut table = vec![];
    // Before: the per-op engine in cohorts of 32 (the old default); then the per-op engine and
    // the fused one with the whole search in one cohort.
    for (engine, cohort) in [
        (Engine::PerOp, Some(32)),
        (Engine::PerOp, None),
        (Engine::Auto, None),
    ] {
        let (a, pa) = counts(engine, cohort, 96, 1);
        let (b, _) = counts(engine, cohort, 96, 2);
        let (c, _) = counts(engine, cohort, 192, 2);
        let name = match cohort {
            Some(n) => format!("{engine:?}, cohorts of {n}"),
            None => format!("{engine:?}, one cohort"),
        };
        match engine {
            Engine::Auto => assert_eq!((pa.fused, pa.per_op), (TRIALS, 0)),
            Engine::PerOp => assert_eq!((pa.fused, pa.per_op), (0, TRIALS)),
        }
        let rows: [(&str, Counter); 5] = [
            ("host launches (kernels + graphs)", |s| s.host_launches),
            ("graph launches", |s| s.replays),
            ("kernels run inside graphs (graph nodes × replays)", |s| {
                s.graph_nodes
            }),
            ("host-to-device bytes", |s| s.htod_bytes),
            ("device-to-host bytes", |s| s.dtoh_bytes),
        ];
        for (what, f) in rows {
            let (fixed, epoch, step) = split(f, &a, &b, &c);
            table.push(format!(
                "| {name} | {what} | {fixed:.0} | {epoch:.0} | {step:.1} |"
            ));
            // The epoch's order (4 bytes a row) is copied once an epoch; nothing else grows
            // with the steps.
            let allowed = if what.starts_with("host-to-device") {
                4.0 * 32.0
            } else {
                0.0
            };
            if engine == Engine::Auto {
                assert!(step <= allowed, "fused: {what} grow by {step} a step");
            }
        }
        if engine == Engine::Auto {
            let (_, epoch, _) = split(|s| s.host_launches, &a, &b, &c);
            assert!(
                epoch <= 2.0,
                "fused: {epoch} launches an epoch for one cohort"
            );
            let (_, nodes, _) = split(|s| s.graph_nodes, &a, &b, &c);
            assert_eq!(nodes, 0.0, "fused: graph nodes replayed");
        }
    }
    println!("| engine | counter | fixed | per epoch | per step |");
    println!("| --- | --- | ---: | ---: | ---: |");
    for l in table {
        println!("{l}");
    }
}
