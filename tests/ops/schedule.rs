//! The learning-rate schedules (src/schedule.rs) against Keras 3's formulas written out in f64,
//! and Adam's α through them.

use fastfc::model::{Hyperparams, Optimizer, Schedule};
use fastfc::schedule::rate;

fn hp(opt: Optimizer, schedule: Schedule) -> Hyperparams {
    Hyperparams {
        learning_rate: 0.01,
        optimizer: opt,
        schedule,
        ..Default::default()
    }
}

#[test]
fn cosine_warms_up_from_zero_then_decays_to_zero() {
    // 10 steps an epoch: warmup 1 epoch = 10 steps, decay to epoch 5 = 40 steps after it.
    let s = Schedule::Cosine {
        decay_epochs: 5.0,
        warmup_epochs: 1.0,
    };
    let h = hp(Optimizer::Sgd, s);
    let lr = |t| rate(&h, t, 10).lr as f64;
    assert_eq!(lr(0), 0.0);
    assert!((lr(5) - 0.005).abs() < 1e-9);
    assert!((lr(10) - 0.01).abs() < 1e-9);
    // Halfway through the decay: ½(1 + cos(π/2)) = ½.
    assert!((lr(30) - 0.005).abs() < 1e-9);
    let want = 0.01 * 0.5 * (1.0 + (std::f64::consts::PI * 13.0 / 40.0).cos());
    assert!((lr(23) - want).abs() < 1e-9);
    assert_eq!(lr(50), 0.0);
    assert_eq!(lr(80), 0.0, "past decay_epochs the rate stays at alpha = 0");
}

#[test]
fn exponential_and_step_decay_per_epoch() {
    let e = hp(
        Optimizer::Sgd,
        Schedule::Exponential {
            decay_rate: 0.5,
            decay_epochs: 2.0,
        },
    );
    let st = hp(
        Optimizer::Sgd,
        Schedule::Step {
            decay_rate: 0.5,
            decay_epochs: 2.0,
        },
    );
    // 4 steps an epoch: N = 8 steps per decay.
    for t in [0u64, 3, 8, 13, 24] {
        let want_e = 0.01 * 0.5f64.powf(t as f64 / 8.0);
        let want_s = 0.01 * 0.5f64.powi((t / 8) as i32);
        assert!(
            (rate(&e, t, 4).lr as f64 - want_e).abs() < 1e-9,
            "exponential at {t}"
        );
        assert!(
            (rate(&st, t, 4).lr as f64 - want_s).abs() < 1e-9,
            "step at {t}"
        );
    }
}

#[test]
fn constant_keeps_the_rate_and_adam_corrects_it() {
    let c = hp(Optimizer::Sgd, Schedule::Constant);
    assert_eq!(rate(&c, 1234, 7).lr, 0.01);
    assert_eq!(rate(&c, 1234, 7).alpha, 0.01);
    // Adam at iteration t uses step t + 1 in its correction, on the scheduled rate.
    let a = hp(
        Optimizer::Adamw,
        Schedule::Step {
            decay_rate: 0.1,
            decay_epochs: 1.0,
        },
    );
    let r = rate(&a, 5, 5); // second epoch: lr 0.001, step 6
    let want = 0.01f32 as f64 * 0.1 * (1.0 - 0.999f64.powi(6)).sqrt() / (1.0 - 0.9f64.powi(6));
    assert_eq!(r.lr, (0.01f32 as f64 * 0.1) as f32);
    assert!((r.alpha as f64 - want).abs() < 1e-7 * want.abs());
}

#[test]
fn bad_schedule_parameters_are_refused_by_flag() {
    for s in [
        Schedule::Cosine {
            decay_epochs: 0.0,
            warmup_epochs: 0.0,
        },
        Schedule::Cosine {
            decay_epochs: 3.0,
            warmup_epochs: 3.0,
        },
        Schedule::Step {
            decay_rate: 1.5,
            decay_epochs: 1.0,
        },
        Schedule::Exponential {
            decay_rate: 0.5,
            decay_epochs: -1.0,
        },
    ] {
        let e = s.validate("--schedule").unwrap_err().to_string();
        assert!(e.contains("--schedule"), "{e}");
    }
    assert!(Schedule::build("linear", None, None, None, 10)
        .unwrap_err()
        .contains("constant, cosine, exponential, step"));
}
