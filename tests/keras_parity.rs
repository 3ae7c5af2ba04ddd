//! Parity with the reference framework: for each optimizer (with its knobs) and each schedule, a
//! small network trained by fastfc's CPU engine and by Keras 3 (tests/python/keras_parity.py,
//! JAX backend) from the same initial weights on the same batches must end with the same weights.
//! Ignored unless asked for: it needs the interpreter `FASTFC_PYTHON` names with keras and jax
//! installed (`.ci/run` installs them). Each case also runs one of the activations beyond the
//! seed's six, so their Keras definitions are checked in training too.
//!
//! Tolerance: after 8 steps, |fastfc − keras| ≤ 2e-5 of the layer's largest weight plus 1e-6
//! of the weight, both sides in f32 (XLA sums in another order and fuses operations). A wrong rule
//! moves weights by the learning rate's order (1e-3..5e-2), 10-100× more.

use std::path::PathBuf;

use fastfc::backend::cpu::{CpuTrial, EpochRows};
use fastfc::model::{Activation, Hyperparams, Optimizer, Schedule, TrialSpec, TrialState};
use serde_json::json;

#[path = "common/mod.rs"]
mod common;

fn python() -> PathBuf {
    std::env::var_os("FASTFC_PYTHON").map_or_else(|| "python3".into(), PathBuf::from)
}

/// Trains `hp` for 2 epochs of 4 batches of 16 on the first 64 training rows, both ways, and
/// compares the weights.
fn case(name: &str, hp: Hyperparams) {
    hp.validate().unwrap();
    let data = common::embedded_subset(64, 16);
    let (rows, batch, epochs) = (64usize, 16usize, 2usize);
    let spec = TrialSpec::new(0, hp.clone(), 11, data.dim(), data.n_classes());
    let st = TrialState::init(&spec);
    let lay = spec.layout();
    let weights: Vec<_> = (0..lay.layers())
        .map(|l| {
            json!([
                st.params[lay.w_range(l)].to_vec(),
                st.params[lay.b_range(l)].to_vec()
            ])
        })
        .collect();
    let mut t = CpuTrial::new(spec.clone(), st).unwrap();
    let order: Vec<u32> = (0..rows as u32).collect();
    for _ in 0..epochs {
        let s = t.train_epoch(&EpochRows::new(&data.train, &order), batch, &|_| {});
        assert!(!s.diverged, "{name}: fastfc diverged");
    }
    let mut knobs = serde_json::Map::new();
    for (k, v) in hp.optimizer_params() {
        knobs.insert(
            k.into(),
            if k == "nesterov" {
                json!(v != 0.0)
            } else {
                json!(v)
            },
        );
    }
    let spec_json = json!({
        "inputs": data.dim(),
        "dims": lay.dims,
        "x": data.train.x[..rows * data.dim()].to_vec(),
        "y": data.train.y[..rows].to_vec(),
        "weights": weights,
        "optimizer": hp.optimizer.name(),
        "knobs": knobs,
        "schedule": serde_json::to_value(hp.schedule).unwrap(),
        "learning_rate": hp.learning_rate as f64,
        "activation": hp.activation.name(),
        "batch_size": batch,
        "epochs": epochs,
    });
    let dir = tempfile::tempdir().unwrap();
    let (inp, out) = (dir.path().join("case.json"), dir.path().join("out.json"));
    std::fs::write(&inp, spec_json.to_string()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/keras_parity.py");
    let o = std::process::Command::new(python())
        .arg(script)
        .arg(&inp)
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (set FASTFC_PYTHON)", python().display()));
    assert!(
        o.status.success(),
        "{name}: keras_parity.py failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let p = &t.state.params;
    let mut worst = 0f64;
    for l in 0..lay.layers() {
        for (which, range, k) in [("W", lay.w_range(l), 0), ("b", lay.b_range(l), 1)] {
            let want: Vec<f64> = got["weights"][l][k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let ours = &p[range];
            let scale = ours.iter().fold(0f64, |a, &v| a.max(v.abs() as f64));
            for (i, (&a, &b)) in ours.iter().zip(&want).enumerate() {
                let d = (a as f64 - b).abs();
                let tol = 2e-5 * scale + 1e-6 * b.abs();
                worst = worst.max(d / tol);
                assert!(
                    d <= tol,
                    "{name}: layer {l} {which}[{i}]: fastfc {a} vs keras {b} ({} ; tolerance {tol:e})",
                    got["keras"]
                );
            }
        }
    }
    eprintln!(
        "{name}: worst difference {worst:.3} of the tolerance (keras {})",
        got["keras"]
    );
}

fn hp(opt: Optimizer, act: Activation, lr: f32) -> Hyperparams {
    Hyperparams {
        hidden: vec![24, 16],
        activation: act,
        dropout: 0.0,
        learning_rate: lr,
        optimizer: opt,
        ..Default::default()
    }
}

#[test]
#[ignore = "needs python3 with keras and jax (pip install keras jax; FASTFC_PYTHON names the interpreter)"]
fn every_optimizer_and_schedule_trains_to_the_keras_weights() {
    case("sgd, tanh", hp(Optimizer::Sgd, Activation::Tanh, 0.05));
    let mut h = hp(Optimizer::Sgd, Activation::Sigmoid, 0.05);
    (h.momentum, h.nesterov, h.weight_decay) = (Some(0.9), Some(true), Some(1e-2));
    h.schedule = Schedule::Step {
        decay_rate: 0.5,
        decay_epochs: 1.0,
    };
    case("sgd nesterov + L2 + step decay, sigmoid", h);
    let mut h = hp(Optimizer::Rmsprop, Activation::Softplus, 2e-3);
    (h.rho, h.momentum) = (Some(0.8), Some(0.5));
    h.schedule = Schedule::Exponential {
        decay_rate: 0.7,
        decay_epochs: 1.0,
    };
    case("rmsprop momentum + exponential decay, softplus", h);
    let mut h = hp(Optimizer::Adamw, Activation::Mish, 3e-3);
    h.weight_decay = Some(0.05);
    h.schedule = Schedule::Cosine {
        decay_epochs: 2.0,
        warmup_epochs: 0.5,
    };
    case("adamw + cosine with warmup, mish", h);
    case(
        "adagrad, leaky_relu",
        hp(Optimizer::Adagrad, Activation::LeakyRelu, 0.05),
    );
    let mut h = hp(Optimizer::Adam, Activation::Gelu, 3e-3);
    (h.beta_1, h.weight_decay) = (Some(0.8), Some(1e-2));
    h.schedule = Schedule::Cosine {
        decay_epochs: 2.0,
        warmup_epochs: 0.0,
    };
    case("adam beta_1 + L2 + cosine, gelu", h);
    case("lion, silu", hp(Optimizer::Lion, Activation::Silu, 1e-3));
    // The paths the cases above leave out: plain momentum, RMSprop without it, L2 on the
    // optimizers with no decoupled decay, AdamW at its default decay, Lion under a schedule.
    let mut h = hp(Optimizer::Sgd, Activation::Elu, 0.05);
    h.momentum = Some(0.8);
    case("sgd momentum, elu", h);
    let mut h = hp(Optimizer::Rmsprop, Activation::Relu, 2e-3);
    h.weight_decay = Some(1e-2);
    case("rmsprop + L2, relu", h);
    let mut h = hp(Optimizer::Adagrad, Activation::Selu, 0.05);
    h.weight_decay = Some(1e-2);
    case("adagrad + L2, selu", h);
    case(
        "adamw (default decay), celu",
        hp(Optimizer::Adamw, Activation::Celu, 3e-3),
    );
    let mut h = hp(Optimizer::Lion, Activation::Tanh, 1e-3);
    (h.beta_1, h.weight_decay) = (Some(0.95), Some(1e-2));
    h.schedule = Schedule::Step {
        decay_rate: 0.5,
        decay_epochs: 1.0,
    };
    case("lion beta_1 + L2 + step decay, tanh", h);
}
