//! Finite-difference gradient checks in f64 on the reference ops (dense, every activation,
//! dropout with a fixed mask, softmax cross-entropy) and through a whole 2-hidden-layer MLP
//! composed from them. The f32 engine then only has to match these references (tests/ops.rs).

mod common;

use fastfc::backend::cpu::{activation, dense, dropout, softmax_xent};
use fastfc::model::Activation;

const H: f64 = 1e-6;

/// Relative error of analytic vs numeric gradients, guarded for tiny values.
fn check(what: &str, analytic: &[f64], numeric: &[f64], tol: f64) {
    for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
        let err = (a - n).abs() / (a.abs().max(n.abs()).max(1e-3));
        assert!(
            err < tol,
            "{what}: index {i}: analytic {a:.9} vs numeric {n:.9} (rel err {err:.2e} > {tol:.0e})"
        );
    }
}

/// Central difference of a scalar function over each coordinate of x.
fn numeric(x: &[f64], f: &mut dyn FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let v = x[i];
            x[i] = v + H;
            let up = f(&x);
            x[i] = v - H;
            let dn = f(&x);
            x[i] = v;
            (up - dn) / (2.0 * H)
        })
        .collect()
}

/// Loss used to pull gradients through an op: L = Σ c[i]·y[i] with fixed random c.
fn weighted_sum(y: &[f64], c: &[f64]) -> f64 {
    y.iter().zip(c).map(|(a, b)| a * b).sum()
}

#[test]
fn dense_gradients() {
    let (rows, n_in, n_out) = (3, 5, 4);
    let x = common::nonzero64(rows * n_in, 1);
    let w = common::nonzero64(n_out * n_in, 2);
    let b = common::nonzero64(n_out, 3);
    let c = common::nonzero64(rows * n_out, 4);
    let fwd = |x: &[f64], w: &[f64], b: &[f64]| {
        let mut y = vec![0.0; rows * n_out];
        dense::fwd(x, w, b, &mut y, rows, n_in, n_out);
        weighted_sum(&y, &c)
    };
    let mut dx = vec![0.0; rows * n_in];
    dense::bwd_x(&c, &w, &mut dx, rows, n_in, n_out);
    let (mut dw, mut db) = (vec![0.0; n_out * n_in], vec![0.0; n_out]);
    dense::bwd_w(&c, &x, &mut dw, &mut db, rows, n_in, n_out);
    check("dense dx", &dx, &numeric(&x, &mut |x| fwd(x, &w, &b)), 1e-6);
    check("dense dw", &dw, &numeric(&w, &mut |w| fwd(&x, w, &b)), 1e-6);
    check("dense db", &db, &numeric(&b, &mut |b| fwd(&x, &w, b)), 1e-6);
}

#[test]
fn every_activation_gradient() {
    // Include points on both sides of 0 but not at the kink of relu/elu.
    let mut z = common::nonzero64(40, 5);
    z.extend([-3.5, -0.01, 0.01, 4.0]);
    let c = common::nonzero64(z.len(), 6);
    for act in Activation::ALL {
        let mut y = vec![0.0; z.len()];
        activation::fwd(act, &z, &mut y);
        let mut dz = vec![0.0; z.len()];
        activation::bwd(act, &z, &y, &c, &mut dz);
        let num = numeric(&z, &mut |z| {
            let mut y = vec![0.0; z.len()];
            activation::fwd(act, z, &mut y);
            weighted_sum(&y, &c)
        });
        check(act.name(), &dz, &num, 1e-6);
    }
}

#[test]
fn activation_values_match_keras_definitions() {
    let z = [-30.0f64, -1.5, -0.2, 0.0, 0.7, 2.0, 25.0];
    let erf = |x: f64| libm::erf(x);
    for act in Activation::ALL {
        let mut y = vec![0.0; z.len()];
        activation::fwd(act, &z, &mut y);
        for (i, &v) in z.iter().enumerate() {
            let want = match act {
                Activation::Elu | Activation::Celu => {
                    if v > 0.0 {
                        v
                    } else {
                        v.exp() - 1.0
                    }
                }
                Activation::Gelu => 0.5 * v * (1.0 + erf(v / 2f64.sqrt())),
                Activation::Relu => v.max(0.0),
                Activation::Selu => {
                    1.0507009873554805
                        * if v > 0.0 {
                            v
                        } else {
                            1.6732632423543772 * (v.exp() - 1.0)
                        }
                }
                Activation::Silu => v / (1.0 + (-v).exp()),
                Activation::Tanh => v.tanh(),
                Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
                Activation::LeakyRelu => {
                    if v > 0.0 {
                        v
                    } else {
                        0.2 * v
                    }
                }
                Activation::Softplus => v.exp().ln_1p(),
                Activation::Mish => v * v.exp().ln_1p().tanh(),
            };
            assert!(
                (y[i] - want).abs() < 1e-12,
                "{act}({v}) = {} want {want}",
                y[i]
            );
        }
    }
}

#[test]
fn dropout_gradient_with_a_fixed_mask() {
    let (rows, width, rate) = (4, 9, 0.3f32);
    let mut m32 = vec![0f32; rows * width];
    dropout::mask(7, 11, 1, rows, width, rate, &mut m32);
    assert!(
        m32.contains(&0.0) && m32.iter().any(|&v| v > 1.0),
        "mask should drop and keep some"
    );
    let m: Vec<f64> = m32.iter().map(|&v| v as f64).collect();
    let x = common::nonzero64(rows * width, 8);
    let c = common::nonzero64(rows * width, 9);
    let mut dx = vec![0.0; x.len()];
    dropout::apply(&c, &m, &mut dx);
    let num = numeric(&x, &mut |x| {
        let mut y = vec![0.0; x.len()];
        dropout::apply(x, &m, &mut y);
        weighted_sum(&y, &c)
    });
    check("dropout", &dx, &num, 1e-7);
}

#[test]
fn softmax_xent_gradient_and_value() {
    let (rows, classes) = (5, 10);
    let z = common::nonzero64(rows * classes, 10);
    let labels: Vec<u32> = vec![0, 3, 9, 3, 7];
    let mut d = vec![0.0; z.len()];
    let scale = 1.0 / rows as f64;
    let (loss, _) = softmax_xent::fwd_bwd(&z, &labels, rows, classes, scale, Some(&mut d));
    let num = numeric(&z, &mut |z| {
        softmax_xent::fwd_bwd(z, &labels, rows, classes, 1.0, None).0 * scale
    });
    check("softmax_xent", &d, &num, 1e-6);
    // The value is −ln softmax at the label, computed naively here.
    let mut want = 0.0;
    for r in 0..rows {
        let row = &z[r * classes..(r + 1) * classes];
        let s: f64 = row.iter().map(|v| v.exp()).sum();
        want -= (row[labels[r] as usize].exp() / s).ln();
    }
    assert!((loss - want).abs() < 1e-10, "{loss} vs {want}");
}

#[test]
fn softmax_xent_counts_first_argmax() {
    let z = [1.0f64, 3.0, 3.0, 0.0, /* row 2 */ 5.0, 1.0, 2.0, 2.0];
    let (_, correct) = softmax_xent::fwd_bwd(&z, &[1, 0], 2, 4, 1.0, None);
    assert_eq!(correct, 2);
    let (_, correct) = softmax_xent::fwd_bwd(&z, &[2, 3], 2, 4, 1.0, None);
    assert_eq!(correct, 0);
}

/// Whole MLP in, gradients of every parameter out: input 6 → 5 (act) → dropout → 4 (act) → 3.
fn mlp_loss_and_grads(
    p: &[f64],
    x: &[f64],
    y: &[u32],
    act: Activation,
    m1: &[f64],
    grads: Option<&mut Vec<f64>>,
) -> f64 {
    let rows = y.len();
    let dims = [6usize, 5, 4, 3];
    let lay = fastfc::model::Layout::new(&dims);
    let mut z = vec![];
    let mut a = vec![];
    let mut h: Vec<Vec<f64>> = vec![x.to_vec()];
    for l in 0..3 {
        let mut zl = vec![0.0; rows * dims[l + 1]];
        dense::fwd(
            &h[l],
            &p[lay.w_range(l)],
            &p[lay.b_range(l)],
            &mut zl,
            rows,
            dims[l],
            dims[l + 1],
        );
        if l == 2 {
            z.push(zl);
            break;
        }
        let mut al = vec![0.0; zl.len()];
        activation::fwd(act, &zl, &mut al);
        let mut hl = vec![0.0; zl.len()];
        if l == 0 {
            dropout::apply(&al, m1, &mut hl);
        } else {
            hl.copy_from_slice(&al);
        }
        z.push(zl);
        a.push(al);
        h.push(hl);
    }
    let mut g = vec![0.0; rows * 3];
    let (loss, _) = softmax_xent::fwd_bwd(&z[2], y, rows, 3, 1.0 / rows as f64, Some(&mut g));
    if let Some(grads) = grads {
        grads.resize(lay.len, 0.0);
        for l in (0..3).rev() {
            let (dw, rest) = grads[lay.w_off[l]..].split_at_mut(dims[l] * dims[l + 1]);
            dense::bwd_w(
                &g,
                &h[l],
                dw,
                &mut rest[..dims[l + 1]],
                rows,
                dims[l],
                dims[l + 1],
            );
            if l == 0 {
                break;
            }
            let mut dh = vec![0.0; rows * dims[l]];
            dense::bwd_x(&g, &p[lay.w_range(l)], &mut dh, rows, dims[l], dims[l + 1]);
            if l == 1 {
                let d2 = dh.clone();
                dropout::apply(&d2, m1, &mut dh);
            }
            let mut dz = vec![0.0; dh.len()];
            activation::bwd(act, &z[l - 1], &a[l - 1], &dh, &mut dz);
            g = dz;
        }
    }
    loss / rows as f64
}

#[test]
fn whole_mlp_gradient_for_every_activation() {
    let rows = 4;
    let lay = fastfc::model::Layout::new(&[6, 5, 4, 3]);
    let x = common::nonzero64(rows * 6, 11);
    let y = vec![0u32, 2, 1, 2];
    let mut m32 = vec![0f32; rows * 5];
    dropout::mask(3, 0, 0, rows, 5, 0.25, &mut m32);
    let m: Vec<f64> = m32.iter().map(|&v| v as f64).collect();
    for act in Activation::ALL {
        let p: Vec<f64> = common::nonzero64(lay.len, 12)
            .iter()
            .map(|v| v * 0.5)
            .collect();
        let mut g = vec![];
        mlp_loss_and_grads(&p, &x, &y, act, &m, Some(&mut g));
        let num = numeric(&p, &mut |p| mlp_loss_and_grads(p, &x, &y, act, &m, None));
        check(&format!("mlp {act}"), &g, &num, 1e-5);
    }
}

/// The engine's own backpropagation (`CpuTrial`: the f32 forward and backward passes the CPU
/// engine trains with, dropout masks included) against central differences of its own loss, on
/// every layer's weights and biases, for all six activations, with and without dropout. The
/// checks above cover the reference ops; this one covers how the engine composes them.
#[test]
fn the_engines_own_backprop_matches_finite_differences() {
    use fastfc::backend::cpu::CpuTrial;
    use fastfc::model::{Hyperparams, Optimizer, TrialSpec, TrialState};
    let data = fastfc::data::embedded::load().unwrap();
    let idx: Vec<u32> = (0..16).map(|i| i * 37).collect();
    let mut checked = 0;
    for (k, &act) in Activation::ALL.iter().enumerate() {
        for dropout in [0.0, 0.3] {
            let hp = Hyperparams {
                hidden: vec![12, 9],
                activation: act,
                dropout,
                learning_rate: 1e-3,
                optimizer: Optimizer::Adam,
                ..Default::default()
            };
            let spec = TrialSpec::new(k as u64, hp, 11, data.dim(), 10);
            let mut state = TrialState::init(&spec);
            // Non-zero biases, so their gradients and the activations' both sides are exercised.
            let lay = spec.layout();
            for l in 0..lay.layers() {
                for (i, b) in state.params[lay.b_range(l)].iter_mut().enumerate() {
                    *b = 0.05 * ((i % 7) as f32 - 3.0);
                }
            }
            let mut trial = CpuTrial::new(spec, state).unwrap();
            let (_, grad) = trial.loss_and_gradient(&data.train, &idx, 5);
            // ReLU and SELU have a kink at 0 (their derivatives jump there): a smaller step, so
            // fewer rows cross it; the f32 loss then carries more rounding noise.
            let h = if matches!(act, Activation::Relu | Activation::Selu) {
                1e-3
            } else {
                1e-2
            };
            let mut coords = vec![];
            for l in 0..lay.layers() {
                let (w, b) = (lay.w_range(l), lay.b_range(l));
                coords.extend(w.clone().step_by(w.len() / 7 + 1));
                coords.extend(b.clone().step_by(b.len() / 3 + 1));
            }
            // The absolute slack in the tolerance is for rounding noise; it must not be what lets
            // the check pass. Most sampled gradients are well above it, so there the check is the
            // relative 3%.
            let slack = if h < 1e-2 { 1e-3 } else { 2e-4 };
            let mut above_slack = 0;
            for &i in &coords {
                let v = trial.state.params[i];
                trial.state.params[i] = v + h;
                let up = trial.loss_and_gradient(&data.train, &idx, 5).0;
                trial.state.params[i] = v - h;
                let dn = trial.loss_and_gradient(&data.train, &idx, 5).0;
                trial.state.params[i] = v;
                let num = (up - dn) / (2.0 * h as f64);
                let ana = grad[i] as f64;
                let tol = 3e-2 * ana.abs().max(num.abs()) + slack;
                assert!(
                    (ana - num).abs() <= tol,
                    "{act:?} dropout {dropout}: parameter {i}: backprop {ana:.6} vs finite differences {num:.6}"
                );
                checked += 1;
                if num.abs() > 10.0 * slack {
                    above_slack += 1;
                }
            }
            assert!(
                2 * above_slack >= coords.len(),
                "{act:?} dropout {dropout}: only {above_slack} of {} sampled gradients exceed 10x the slack {slack}",
                coords.len()
            );
        }
    }
    assert!(checked > 300, "{checked} coordinates");
}
