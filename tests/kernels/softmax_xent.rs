//! softmax_xent against src/backend/cpu/softmax_xent.rs (f64): per-trial loss sums and correct
//! counts accumulated into the stats, dlogits, divergence marking in training, evaluation mode.

use fastfc::backend::cpu::softmax_xent;
use fastfc::backend::cuda::launch::SoftmaxXent;
use fastfc::backend::cuda::slot::Stats;
use fastfc::backend::cuda::{Gpu, Ptr};
use rand::{Rng, SeedableRng};

use crate::{assert_cohort, each_gpu, rel_abs, Cohort};

fn inputs(trials: usize, rows: usize, classes: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let z: Vec<f32> = crate::common::nonzero(trials * rows * classes, seed)
        .iter()
        .map(|v| v * 3.0)
        .collect();
    let y: Vec<u32> = (0..rows)
        .map(|_| rng.random_range(0..classes as u32))
        .collect();
    (z, y)
}

/// The launch over (trials, rows, classes) logits; training when `dlogits` is given.
#[allow(clippy::too_many_arguments)]
fn xent(
    slots: Ptr,
    logits: Ptr,
    labels: Ptr,
    rows: usize,
    classes: usize,
    dlogits: Ptr,
    stats: Ptr,
    train: bool,
) -> SoftmaxXent {
    SoftmaxXent {
        slots,
        rows: rows as i32,
        classes: classes as i32,
        logits,
        labels,
        scale: if train { 1.0 / rows as f32 } else { 1.0 },
        dlogits,
        stats,
        train: train as i32,
    }
}

#[test]
fn softmax_xent_matches_cpu_and_accumulates() {
    let classes = 10;
    for rows in [1usize, 33, 200] {
        let trials = 5;
        let c = Cohort::mixed(trials, 1, &[8], 4, classes, rows as u64);
        let (z, y) = inputs(trials, rows, classes, rows as u64 + 1);
        let scale = 1.0 / rows as f32;
        let prior = Stats {
            loss_sum: 2.5,
            correct: 3,
            rows: 7,
            diverged: 0,
            reserved: 0,
        };
        let mut want_d = vec![];
        let mut want_stats = vec![];
        for t in 0..trials {
            let zt: Vec<f64> = z[t * rows * classes..(t + 1) * rows * classes]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let mut d = vec![0f64; rows * classes];
            let (loss, correct) =
                softmax_xent::fwd_bwd(&zt, &y, rows, classes, scale as f64, Some(&mut d));
            want_d.push(d);
            want_stats.push((loss, correct));
        }
        each_gpu(|g| {
            let dev = g.name();
            let slots = g.upload(&c.slots).unwrap();
            let zb = g.upload(&z).unwrap();
            let yb = g.upload(&y).unwrap();
            let d = g.upload(&vec![f32::NAN; z.len()]).unwrap();
            let stats = g.upload(&vec![prior; trials]).unwrap();
            let k = xent(
                slots.ptr(),
                zb.ptr(),
                yb.ptr(),
                rows,
                classes,
                d.ptr(),
                stats.ptr(),
                true,
            );
            g.launch(&k.launch(trials as u32)).unwrap();
            let dg = g.read(&d).unwrap();
            assert_cohort(
                &format!("softmax_xent dlogits rows={rows}"),
                &dev,
                &dg,
                &want_d,
                rows,
                classes,
                |_| classes,
                rel_abs(1e-5, 1e-7 * scale as f64),
                0.0,
            );
            let sg = g.read(&stats).unwrap();
            for t in 0..trials {
                let (loss, correct) = want_stats[t];
                let s = sg[t];
                assert!(
                    (s.loss_sum - (2.5 + loss)).abs() <= 1e-6 * (2.5 + loss) + 1e-6 * rows as f64,
                    "softmax_xent loss on {dev}: trial {t} rows {rows}: got {} want {}",
                    s.loss_sum,
                    2.5 + loss
                );
                assert_eq!(
                    s.correct as usize,
                    3 + correct,
                    "correct count, trial {t} rows {rows} on {dev}"
                );
                assert_eq!(s.rows as usize, 7 + rows, "rows accounted, trial {t}");
                assert_eq!(s.diverged, 0);
            }
        });
    }
}

#[test]
fn a_non_finite_loss_marks_the_trial_diverged_and_inactive() {
    let (trials, rows, classes) = (3, 40, 10);
    let c = Cohort::mixed(trials, 1, &[8], 4, classes, 8);
    let (mut z, y) = inputs(trials, rows, classes, 2);
    z[rows * classes + 17] = f32::NAN; // trial 1
    z[2 * rows * classes + 5] = f32::INFINITY; // trial 2
    each_gpu(|g| {
        let slots = g.upload(&c.slots).unwrap();
        let zb = g.upload(&z).unwrap();
        let yb = g.upload(&y).unwrap();
        let d = g.upload(&vec![f32::NAN; z.len()]).unwrap();
        let stats = g.alloc::<Stats>(trials).unwrap();
        let k = xent(
            slots.ptr(),
            zb.ptr(),
            yb.ptr(),
            rows,
            classes,
            d.ptr(),
            stats.ptr(),
            true,
        );
        g.launch(&k.launch(trials as u32)).unwrap();
        let (s, sl) = (g.read(&stats).unwrap(), g.read(&slots).unwrap());
        assert!(s[0].loss_sum > 0.0 && s[0].diverged == 0 && sl[0].active == 1);
        for t in [1, 2] {
            assert_eq!(
                s[t].diverged,
                1,
                "trial {t} not marked diverged on {}",
                g.name()
            );
            assert_eq!(sl[t].active, 0, "trial {t} still active");
            assert_eq!(
                (s[t].loss_sum, s[t].correct, s[t].rows),
                (0.0, 0, 0),
                "diverged step accumulated"
            );
        }
        // A second training launch leaves the now-inactive trials alone.
        g.launch(&k.launch(trials as u32)).unwrap();
        let s2 = g.read(&stats).unwrap();
        assert_eq!(s2[1], s[1]);
        assert_eq!(s2[0].rows, 2 * rows as u32);
    });
}

#[test]
fn evaluation_mode_counts_every_trial_without_gradients() {
    let (trials, rows, classes) = (4, 300, 10);
    let c = Cohort::mixed(trials, 1, &[8], 4, classes, 8);
    let mut slots = c.slots.clone();
    slots[3].active = 0; // evaluation ignores the flag
    let (z, y) = inputs(trials, rows, classes, 4);
    each_gpu(|g| {
        let sb = g.upload(&slots).unwrap();
        let zb = g.upload(&z).unwrap();
        let yb = g.upload(&y).unwrap();
        let stats = g.alloc::<Stats>(trials).unwrap();
        let k = xent(
            sb.ptr(),
            zb.ptr(),
            yb.ptr(),
            rows,
            classes,
            Ptr::NULL,
            stats.ptr(),
            false,
        );
        g.launch(&k.launch(trials as u32)).unwrap();
        let s = g.read(&stats).unwrap();
        for t in 0..trials {
            let zt = &z[t * rows * classes..(t + 1) * rows * classes];
            let (loss, correct) = softmax_xent::fwd_bwd(zt, &y, rows, classes, 1.0, None);
            assert!(
                (s[t].loss_sum - loss).abs() <= 1e-5 * loss,
                "eval loss trial {t}: {} vs {loss}",
                s[t].loss_sum
            );
            assert_eq!(s[t].correct as usize, correct);
            assert_eq!(s[t].rows as usize, rows);
        }
    });
}
