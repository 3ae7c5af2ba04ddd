//! Training end to end on the CPU backend: accuracy on the real data, determinism, cohort
//! independence, divergence and early stopping, and a golden loss trajectory.

mod common;

use std::sync::Arc;

use fastfc::backend::cpu::CpuBackend;
use fastfc::backend::{Backend, SplitId};
use fastfc::data::{self, Dataset};
use fastfc::model::{Activation, Hyperparams, Optimizer, TrialSpec, TrialState};
use fastfc::train::{train_cohort, TrainConfig, TrialJob, TrialStatus};

/// Real Fashion-MNIST at 8×8: the copy embedded in the binary.
fn real() -> Dataset {
    data::embedded::load().unwrap()
}

/// The embedded data cut to `n` training and validation rows (fast tests).
fn small(n: usize) -> Arc<Dataset> {
    common::embedded_subset(n, n)
}

fn hp(hidden: &[usize], act: Activation, opt: Optimizer, lr: f32, dropout: f32) -> Hyperparams {
    Hyperparams {
        hidden: hidden.to_vec(),
        activation: act,
        dropout,
        learning_rate: lr,
        optimizer: opt,
        ..Default::default()
    }
}

fn job(id: u64, h: Hyperparams) -> TrialJob {
    TrialJob::fresh(TrialSpec::new(id, h, 42, 64, 10))
}

fn cfg(epochs: usize, patience: Option<usize>) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        patience,
        seed: 42,
        stop: Default::default(),
    }
}

#[test]
fn one_epoch_on_real_data_beats_075() {
    let b = CpuBackend::new(Arc::new(real()));
    let steps = std::sync::atomic::AtomicU64::new(0);
    let out = train_cohort(
        &b,
        vec![job(
            0,
            hp(&[64, 64], Activation::Elu, Optimizer::Adam, 1e-3, 0.1),
        )],
        &cfg(1, Some(3)),
        &mut |_| {},
        &|n| {
            steps.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        },
    )
    .unwrap();
    assert_eq!(out[0].status, TrialStatus::Complete);
    assert!(
        out[0].val_accuracy > 0.75,
        "val_accuracy {}",
        out[0].val_accuracy
    );
    // The epoch's own figures: every step reported to the progress callback, the training loss
    // and accuracy averaged over the 50,000 training rows, one epoch in the checkpoint.
    assert_eq!(
        steps.load(std::sync::atomic::Ordering::Relaxed),
        50_000u64.div_ceil(32),
        "progress steps"
    );
    let h = &out[0].history;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].epoch, 1);
    assert!(
        h[0].loss > 0.3 && h[0].loss < 1.5,
        "training loss {}",
        h[0].loss
    );
    assert!(
        h[0].accuracy > 0.6 && h[0].accuracy < 0.95,
        "training accuracy {}",
        h[0].accuracy
    );
    assert_eq!((out[0].epochs_trained, out[0].checkpoint.epochs), (1, 1));
}

#[test]
fn same_seed_same_weights_whatever_the_cohort_or_threads() {
    let d = small(2000);
    let b = CpuBackend::new(d.clone());
    let a_hp = hp(&[48, 48, 48], Activation::Gelu, Optimizer::Lion, 7e-4, 0.2);
    let others = [
        hp(&[32, 32], Activation::Selu, Optimizer::Adam, 1e-3, 0.0),
        hp(
            &[64, 64, 64, 64],
            Activation::Silu,
            Optimizer::Adam,
            2e-3,
            0.3,
        ),
    ];
    let alone = train_cohort(
        &b,
        vec![job(7, a_hp.clone())],
        &cfg(2, None),
        &mut |_| {},
        &|_| {},
    )
    .unwrap();
    let mixed = train_cohort(
        &b,
        vec![
            job(1, others[0].clone()),
            job(7, a_hp.clone()),
            job(2, others[1].clone()),
        ],
        &cfg(2, None),
        &mut |_| {},
        &|_| {},
    )
    .unwrap();
    assert_eq!(
        alone[0].checkpoint, mixed[1].checkpoint,
        "cohort mates changed a trial's weights"
    );
    assert_eq!(alone[0].history, mixed[1].history);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let one = pool.install(|| {
        train_cohort(
            &b,
            vec![job(7, a_hp.clone())],
            &cfg(2, None),
            &mut |_| {},
            &|_| {},
        )
        .unwrap()
    });
    assert_eq!(
        alone[0].checkpoint, one[0].checkpoint,
        "thread count changed the result"
    );
    // A different trial id (hence init and dropout seed) gives different weights.
    let other = train_cohort(&b, vec![job(8, a_hp)], &cfg(2, None), &mut |_| {}, &|_| {}).unwrap();
    assert_ne!(alone[0].checkpoint.params, other[0].checkpoint.params);
}

#[test]
fn loss_falls_for_every_activation_and_optimizer() {
    let d = small(3000);
    let b = CpuBackend::new(d);
    let mut jobs = vec![];
    for (i, act) in Activation::ALL.into_iter().enumerate() {
        for opt in Optimizer::ALL {
            // Rates at which three epochs of 3000 rows move each optimizer (SGD and Adagrad
            // take larger steps than the adaptive ones, as their Keras defaults say).
            let lr = match opt {
                Optimizer::Adam | Optimizer::Adamw | Optimizer::Rmsprop => 2e-3,
                Optimizer::Sgd => 5e-2,
                Optimizer::Adagrad => 2e-2,
                Optimizer::Lion => 3e-4,
            };
            // sigmoid's gradients are at most 1/4 of the others' and it saturates: it starts slower.
            let lr = if act == Activation::Sigmoid {
                lr * 10.0
            } else {
                lr
            };
            jobs.push(job(
                i as u64 * Optimizer::ALL.len() as u64 + opt as u64,
                hp(&[32, 32], act, opt, lr, 0.1),
            ));
        }
    }
    let out = train_cohort(&b, jobs, &cfg(3, None), &mut |_| {}, &|_| {}).unwrap();
    for o in out {
        let h = &o.history;
        assert!(
            h[2].loss < h[0].loss && h[2].val_loss < 2.0,
            "{} {}: losses {:?}",
            o.spec.hp.activation,
            o.spec.hp.optimizer,
            h.iter().map(|r| r.loss).collect::<Vec<_>>()
        );
    }
}

#[test]
fn divergence_is_a_status_not_a_crash() {
    let b = CpuBackend::new(small(1000));
    let out = train_cohort(
        &b,
        vec![
            job(
                0,
                hp(&[32, 32], Activation::Relu, Optimizer::Lion, 1e30, 0.0),
            ),
            job(
                1,
                hp(&[32, 32], Activation::Relu, Optimizer::Adam, 1e-3, 0.0),
            ),
        ],
        &cfg(3, Some(3)),
        &mut |_| {},
        &|_| {},
    )
    .unwrap();
    assert_eq!(out[0].status, TrialStatus::Diverged);
    assert!(out[0].history.len() <= 2);
    assert_eq!(
        out[1].status,
        TrialStatus::Complete,
        "a diverging cohort mate must not stop the others"
    );
    assert_eq!(out[1].history.len(), 3);
}

#[test]
fn early_stopping_keeps_the_best_epoch() {
    // A learning rate high enough to overfit/oscillate on 300 samples: val_loss stops improving.
    let b = CpuBackend::new(small(300));
    let out = train_cohort(
        &b,
        vec![job(
            0,
            hp(&[64, 64], Activation::Relu, Optimizer::Adam, 2.5e-2, 0.0),
        )],
        &cfg(40, Some(2)),
        &mut |_| {},
        &|_| {},
    )
    .unwrap();
    let o = &out[0];
    assert_eq!(
        o.status,
        TrialStatus::EarlyStopped,
        "history {:?}",
        o.history
    );
    let best = o
        .history
        .iter()
        .min_by(|a, b| a.val_loss.total_cmp(&b.val_loss))
        .unwrap();
    assert_eq!(o.best_epoch, best.epoch);
    assert_eq!(
        o.history.last().unwrap().epoch,
        best.epoch + 2,
        "stops after `patience` epochs without improvement"
    );
    // The kept weights reproduce the best epoch's validation score.
    let c = b
        .load(vec![(o.spec.clone(), o.checkpoint.clone())])
        .unwrap();
    let v = b.evaluate(&c, SplitId::Val, &[true]).unwrap()[0];
    assert!((v.loss - best.val_loss).abs() < 1e-9 && v.accuracy == best.val_accuracy);
    assert_eq!(o.epochs_trained, o.history.len());
}

#[test]
fn continuing_from_a_checkpoint_equals_training_straight_through() {
    let b = CpuBackend::new(small(1500));
    let h = hp(&[32, 32, 32], Activation::Celu, Optimizer::Adam, 1e-3, 0.1);
    let straight = train_cohort(
        &b,
        vec![job(3, h.clone())],
        &cfg(3, None),
        &mut |_| {},
        &|_| {},
    )
    .unwrap();
    let first = train_cohort(
        &b,
        vec![job(3, h.clone())],
        &cfg(1, None),
        &mut |_| {},
        &|_| {},
    )
    .unwrap();
    // Continue from the end-of-epoch-1 state (here also the best).
    let spec = first[0].spec.clone();
    let resumed = train_cohort(
        &b,
        vec![TrialJob {
            spec,
            state: first[0].checkpoint.clone(),
        }],
        &cfg(3, None),
        &mut |_| {},
        &|_| {},
    )
    .unwrap();
    assert_eq!(resumed[0].history, straight[0].history[1..].to_vec());
    assert_eq!(resumed[0].checkpoint, straight[0].checkpoint);
}

/// First ten mini-batch losses of a fixed trial on the embedded data: any change to init, batch
/// order, dropout masks or the math shows up here.
#[test]
fn golden_first_ten_step_losses() {
    let d = small(320);
    let spec = TrialSpec::new(
        5,
        hp(&[64, 64], Activation::Elu, Optimizer::Adam, 1e-3, 0.1),
        42,
        64,
        10,
    );
    let b = CpuBackend::new(d.clone());
    let mut c = b
        .load(vec![(spec.clone(), TrialState::init(&spec))])
        .unwrap();
    let order = data::batches::epoch_order(42, 0, 320);
    let mut losses = vec![];
    for chunk in order.chunks(32) {
        let s = b.train_epoch(&mut c, chunk, 32, &[true], &|_| {}).unwrap()[0];
        losses.push(s.loss());
    }
    let golden = GOLDEN;
    for (i, (l, g)) in losses.iter().zip(golden).enumerate() {
        assert!((l - g).abs() < 1e-5, "step {i}: loss {l} vs golden {g}");
    }
}

const GOLDEN: [f64; 10] = [
    2.3037384911440313,
    2.158023836556822,
    2.2777479011565447,
    2.2521574730053544,
    2.368909422773868,
    2.4393188101239502,
    2.188677572645247,
    2.214238171931356,
    2.2595544876530766,
    2.1576387118548155,
];

/// A trial's training workspace is sized by its first batch and reused: a later batch larger
/// than any before (a first step on a short batch, a changed batch size) must grow it, and every
/// step must compute, bit for bit, what a trial with a fresh workspace and the same state
/// computes, stale rows of a larger earlier batch included.
#[test]
fn train_steps_of_changing_batch_sizes_match_fresh_workspaces() {
    use fastfc::backend::cpu::CpuTrial;
    let data = real();
    let spec = TrialSpec::new(
        3,
        hp(&[16, 8], Activation::Gelu, Optimizer::Adam, 1e-2, 0.2),
        5,
        data.dim(),
        10,
    );
    let mut trial = CpuTrial::new(spec.clone(), TrialState::init(&spec)).unwrap();
    for n in [3u32, 8, 5, 8, 13, 1] {
        let idx: Vec<u32> = (0..n).map(|i| i * 41 + n).collect();
        let (mean, _) = trial.loss_and_gradient(&data.train, &idx, trial.state.step as u32);
        let mut fresh = CpuTrial::new(spec.clone(), trial.state.clone()).unwrap();
        let want = fresh.train_step(&data.train, &idx);
        let got = trial.train_step(&data.train, &idx);
        assert_eq!(got, want, "batch of {n}: (loss sum, correct)");
        assert_eq!(
            trial.state.params, fresh.state.params,
            "batch of {n}: parameters after the step"
        );
        assert_eq!(trial.state.step, fresh.state.step);
        assert_eq!(
            got.0 / n as f64,
            mean,
            "batch of {n}: the step's loss is the loss it differentiates"
        );
    }
    assert_eq!(trial.state.step, 6);
}

/// An epoch trained from the cohort's copy of its rows (`EpochRows::new`: one gather per epoch)
/// gives the bits that gathering each batch from the split gives (the path past
/// `EPOCH_COPY_BYTES`), and both the bits of one `train_step` per batch; with a short last batch,
/// dropout and a shuffled order.
#[test]
fn an_epoch_from_the_copied_rows_equals_one_gathered_batch_by_batch() {
    use fastfc::backend::cpu::{CpuTrial, EpochRows};
    let data = small(203);
    let spec = TrialSpec::new(
        4,
        hp(&[24, 16], Activation::Gelu, Optimizer::Adam, 3e-3, 0.2),
        11,
        data.dim(),
        10,
    );
    let fresh = || CpuTrial::new(spec.clone(), TrialState::init(&spec)).unwrap();
    let order = fastfc::data::batches::epoch_order(11, 0, 203);
    let copied = EpochRows::new(&data.train, &order);
    assert!(
        matches!(copied, EpochRows::Copied(_)),
        "203 rows are copied"
    );
    let gathered = EpochRows::Gathered {
        split: &data.train,
        order: &order,
    };
    let (mut a, mut b, mut c) = (fresh(), fresh(), fresh());
    for _ in 0..2 {
        a.train_epoch(&copied, 16, &|_| {});
        b.train_epoch(&gathered, 16, &|_| {});
        for idx in order.chunks(16) {
            c.train_step(&data.train, idx);
        }
    }
    let bits = |t: &CpuTrial| {
        t.state
            .params
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&a), bits(&b), "copied vs gathered per batch");
    assert_eq!(bits(&a), bits(&c), "an epoch vs its steps");
    assert_ne!(bits(&a), bits(&fresh()), "nothing trained");
    // The next epoch's copy in the last one's memory: its rows, nothing of the old order left.
    let next = fastfc::data::batches::epoch_order(11, 1, 150);
    let reused = EpochRows::reusing(&data.train, &next, copied.into_spare());
    match (reused, EpochRows::new(&data.train, &next)) {
        (EpochRows::Copied(r), EpochRows::Copied(n)) => {
            assert_eq!((r.x.len(), r.dim), (150 * data.dim(), data.dim()));
            assert!(
                r.x == n.x && r.y == n.y,
                "a reused copy differs from a fresh one"
            );
        }
        _ => panic!("150 rows are copied"),
    }
}

/// A trial's evaluation over a split is the mean loss and the fraction right, over evaluation
/// chunks of at most 512 rows: the same numbers, over the same rows, as one training step on the
/// whole split computes before it updates anything (no dropout, so the two forward passes agree).
#[test]
fn evaluation_is_the_mean_loss_and_the_fraction_right_over_chunks() {
    use fastfc::backend::cpu::CpuTrial;
    let data = common::embedded_subset(10, 1300);
    let spec = TrialSpec::new(
        9,
        hp(&[16, 8], Activation::Silu, Optimizer::Adam, 1e-2, 0.0),
        5,
        data.dim(),
        10,
    );
    let mut trial = CpuTrial::new(spec.clone(), TrialState::init(&spec)).unwrap();
    // Train a little, so the model is neither all right nor all wrong.
    let order: Vec<u32> = (0..10).collect();
    for _ in 0..20 {
        trial.train_step(&data.train, &order);
    }
    let got = trial.evaluate(&data.val);
    let all: Vec<u32> = (0..1300).collect();
    let (loss_sum, correct) = trial.clone().train_step(&data.val, &all);
    assert!(correct > 130 && correct < 1300, "{correct} of 1300 right");
    assert_eq!(got.accuracy, correct as f64 / 1300.0, "accuracy");
    let want = loss_sum / 1300.0;
    assert!(
        (got.loss - want).abs() <= 1e-6 * want,
        "mean loss {} vs {want}",
        got.loss
    );
}

/// The CPU backend names itself and its thread count (shown in progress lines and summaries).
#[test]
fn the_cpu_backend_names_its_threads() {
    let name = CpuBackend::new(small(10)).name();
    assert_eq!(
        name,
        format!("cpu ({} threads)", rayon::current_num_threads())
    );
}

/// The CPU backend's `state`/`set_state` (spread over devices, checkpoints): a state put back is
/// the state read, and one of the wrong size is refused with the counts, not kept.
#[test]
fn the_cpu_backend_puts_a_state_back_and_refuses_a_wrong_one() {
    let data = small(64);
    let backend = CpuBackend::new(data.clone());
    let specs: Vec<TrialSpec> = (0..2)
        .map(|id| {
            let h = hp(&[8], Activation::Relu, Optimizer::Adam, 1e-2, 0.0);
            TrialSpec::new(id, h, 42, data.dim(), 10)
        })
        .collect();
    let states: Vec<TrialState> = specs.iter().map(TrialState::init).collect();
    let mut c = backend
        .load(specs.iter().cloned().zip(states.iter().cloned()).collect())
        .unwrap();
    let order: Vec<u32> = (0..64).collect();
    backend
        .train_epoch(&mut c, &order, 16, &[true, true], &|_| {})
        .unwrap();
    let trained = backend.state(&c, 0).unwrap();
    assert_ne!(trained.params, states[0].params);
    // 4 steps of 16 rows, one epoch: the backend counts epochs itself (train_cohort and the
    // spread backend read them back).
    assert_eq!((trained.step, trained.epochs), (4, 1));
    backend.set_state(&mut c, 0, states[0].clone()).unwrap();
    assert_eq!(backend.state(&c, 0).unwrap(), states[0]);
    assert_eq!(
        backend.state(&c, 1).unwrap().step,
        4,
        "the other trial moved"
    );
    for cut in ["params", "m"] {
        let mut bad = trained.clone();
        match cut {
            "params" => bad.params.pop(),
            _ => bad.m.pop(),
        };
        let err = backend.set_state(&mut c, 0, bad).unwrap_err().to_string();
        assert!(err.contains("parameters"), "{cut}: {err}");
        assert_eq!(
            backend.state(&c, 0).unwrap(),
            states[0],
            "{cut}: a bad state was kept"
        );
    }
}
