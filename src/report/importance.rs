//! What mattered: each hyperparameter's importance by PED-ANOVA (Watanabe, Bansal and Hutter,
//! IJCAI 2023; Optuna's `PedAnovaImportanceEvaluator`), a closed-form stand-in for fANOVA.
//! A parameter matters as much as its distribution among the best trials (top 10% by
//! validation accuracy) differs from its distribution among all trials, measured by the Pearson
//! divergence E_all[(p_top(x)/p_all(x) − 1)²]. Categories (and numbers with at most 10 distinct
//! values: layers, widths) use the TPE's categorical Parzen estimator (`strategy::tpe`); other
//! numbers a kernel density on a 50-point grid over the values the study tried (on a log scale
//! where the study's space draws the parameter `loguniform`, else linear) with Scott's-rule
//! bandwidths, as Optuna's evaluator builds them. Importances are normalized to sum to 1.
//!
//! Each trial counts once, with its longest run (a Hyperband trial's last round). In a Hyperband
//! or BOHB study the top 10% are then mostly trials that were promoted to the full budget, so
//! the importance there also says what got a trial promoted. "width" is a trial's widest layer.

use crate::results::journal::RunRecord;
use crate::space::{Num, SearchSpace};
use crate::strategy::tpe::Parzen;

/// Share of trials that make the "top" set (PED-ANOVA's γ').
pub const TOP_QUANTILE: f64 = 0.1;
/// Finished trials an estimate needs: with fewer, the top 10% would be a single trial.
pub const MIN_TRIALS: usize = 10;
const GRID: usize = 50;

/// The parameters importance is measured over, and how to read each from a record.
pub const PARAMS: [&str; 6] = [
    "learning_rate",
    "dropout",
    "activation",
    "optimizer",
    "hidden layers",
    "width",
];

enum Value {
    Num(f64),
    Cat(String),
}

/// A record's value of parameter `name`, on the scale `space` draws it (log for `loguniform`);
/// None for a conditional knob the trial's optimizer or schedule does not have.
fn value(name: &str, r: &RunRecord, space: &SearchSpace) -> Option<Value> {
    let hp = &r.request.hp;
    let scaled = |x: f64, n: &Num| Value::Num(if n.is_log() { x.ln() } else { x });
    Some(match name {
        "learning_rate" => scaled(hp.learning_rate as f64, &space.learning_rate),
        "dropout" => scaled(hp.dropout as f64, &space.dropout),
        "activation" => Value::Cat(hp.activation.name().into()),
        "optimizer" => Value::Cat(hp.optimizer.name().into()),
        "hidden layers" => Value::Num(hp.hidden.len() as f64),
        "width" => Value::Num(*hp.hidden.iter().max().unwrap_or(&0) as f64),
        "schedule" => Value::Cat(hp.schedule.name().into()),
        "nesterov" if crate::space::applies(hp, name) => Value::Cat(hp.nesterov().to_string()),
        k if crate::space::applies(hp, k) => {
            let x = crate::space::knob(hp, k)?;
            match space.knobs.num(k) {
                Some(n) => scaled(x, n),
                None => Value::Num(x),
            }
        }
        _ => return None,
    })
}

/// The parameters a study's importance covers: [`PARAMS`], then the knobs its space searched.
pub fn params_of(space: &SearchSpace) -> Vec<&'static str> {
    let mut v = PARAMS.to_vec();
    v.extend(space.knobs.present());
    v
}

/// Each trial's longest run, with a finite validation accuracy.
pub fn final_runs(records: &[RunRecord]) -> Vec<&RunRecord> {
    let mut last: std::collections::BTreeMap<u64, &RunRecord> = Default::default();
    for r in records {
        let e = last.entry(r.request.trial_id).or_insert(r);
        if r.request.epochs > e.request.epochs {
            *e = r;
        }
    }
    last.into_values()
        .filter(|r| r.val_accuracy.is_finite())
        .collect()
}

/// Pearson divergence E_all[(p_top/p_all − 1)²] of two distributions on the same points.
fn pearson(p_all: &[f64], p_top: &[f64]) -> f64 {
    let (sa, st): (f64, f64) = (p_all.iter().sum(), p_top.iter().sum());
    p_all
        .iter()
        .zip(p_top)
        .map(|(a, t)| {
            let (a, t) = (a / sa, t / st);
            if a > 0.0 {
                a * (t / a - 1.0).powi(2)
            } else {
                0.0
            }
        })
        .sum()
}

/// A value as a category key: its name, or the number itself.
fn key(v: &Value) -> String {
    match v {
        Value::Cat(c) => c.clone(),
        Value::Num(x) => format!("{x}"),
    }
}

/// Pearson divergence of `top` from `all` for one parameter (0 when the study never varied it).
/// Categories, and numbers with at most 10 distinct values (layers, widths), are compared as
/// categories with the TPE's categorical estimator; other numbers by [`grid_pdf`] over the
/// values all trials tried.
fn divergence(name: &str, all: &[&RunRecord], top: &[&RunRecord], space: &SearchSpace) -> f64 {
    // A conditional parameter is compared over the trials that have it.
    let vals = |rs: &[&RunRecord]| -> Vec<Value> {
        rs.iter().filter_map(|r| value(name, r, space)).collect()
    };
    let (va, vt) = (vals(all), vals(top));
    if va.is_empty() || vt.is_empty() {
        return 0.0;
    }
    let mut distinct: Vec<String> = va.iter().map(key).collect();
    distinct.sort();
    distinct.dedup();
    if distinct.len() < 2 {
        return 0.0;
    }
    let numeric = matches!(va[0], Value::Num(_));
    if !numeric || distinct.len() <= 10 {
        let idx = |v: &[Value]| -> Vec<f64> {
            v.iter()
                .map(|x| distinct.iter().position(|d| *d == key(x)).unwrap() as f64)
                .collect()
        };
        let n = distinct.len();
        let p_all = Parzen::categorical(n, &idx(&va));
        let p_top = Parzen::categorical(n, &idx(&vt));
        let a: Vec<f64> = (0..n).map(|c| p_all.pdf(c as f64)).collect();
        let t: Vec<f64> = (0..n).map(|c| p_top.pdf(c as f64)).collect();
        return pearson(&a, &t);
    }
    let num = |v: &[Value]| -> Vec<f64> {
        v.iter()
            .map(|x| match x {
                Value::Num(x) => *x,
                Value::Cat(_) => f64::NAN,
            })
            .collect()
    };
    let xa = num(&va);
    let lo = xa.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = xa.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let a = grid_pdf(&xa, lo, hi);
    let t = grid_pdf(&num(&vt), lo, hi);
    pearson(&a, &t)
}

/// The density of `xs` on a grid of [`GRID`] points over [lo, hi]: each value counts in its
/// nearest grid point; a kernel per occupied point (weighted by its count) with one bandwidth by
/// Scott's rule, 1.059·min(IQR/1.34, σ)·n^(−1/5) in grid steps and at least 0.5/1.64 of one,
/// plus a prior kernel (weight 1) as wide as the grid, each a Gaussian discretized to the grid.
fn grid_pdf(xs: &[f64], lo: f64, hi: f64) -> Vec<f64> {
    let step = (hi - lo) / (GRID - 1) as f64;
    let mut counts = vec![0.0f64; GRID];
    for x in xs {
        let i = ((x - lo) / step).round().clamp(0.0, (GRID - 1) as f64) as usize;
        counts[i] += 1.0;
    }
    let occupied: Vec<(f64, f64)> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0.0)
        .map(|(i, c)| (i as f64, *c))
        .collect();
    let w: f64 = occupied.iter().map(|o| o.1).sum();
    let mean = occupied.iter().map(|(x, c)| x * c).sum::<f64>() / w;
    let sd = (occupied
        .iter()
        .map(|(x, c)| c * (x - mean).powi(2))
        .sum::<f64>()
        / (w - 1.0).max(1.0))
    .sqrt();
    let quantile = |q: f64| -> f64 {
        let mut acc = 0.0;
        for (x, c) in &occupied {
            acc += c;
            if acc >= q * w {
                return *x;
            }
        }
        occupied.last().map_or(0.0, |o| o.0)
    };
    let iqr = quantile(0.75) - quantile(0.25);
    let sigma = (1.059 * (iqr / 1.34).min(sd) * w.powf(-0.2)).max(0.5 / 1.64);
    let mut kernels: Vec<(f64, f64, f64)> = occupied.iter().map(|(x, c)| (*x, sigma, *c)).collect();
    let g = (GRID - 1) as f64;
    kernels.push((g / 2.0, g + 1.0, 1.0));
    let total: f64 = kernels.iter().map(|k| k.2).sum();
    let cdf = |z: f64| 0.5 * libm::erfc(-z / std::f64::consts::SQRT_2);
    (0..GRID)
        .map(|i| {
            let i = i as f64;
            kernels
                .iter()
                .map(|(mu, s, wk)| {
                    let mass = cdf((g + 0.5 - mu) / s) - cdf((-0.5 - mu) / s);
                    wk / total * (cdf((i + 0.5 - mu) / s) - cdf((i - 0.5 - mu) / s)) / mass
                })
                .sum::<f64>()
                + 1e-12
        })
        .collect()
}

/// (parameter, importance) for each of [`params_of`] the space, most important first, each numeric
/// parameter read on the scale the study's `space` draws it; None with fewer than
/// [`MIN_TRIALS`] finished trials.
pub fn importances(records: &[RunRecord], space: &SearchSpace) -> Option<Vec<(&'static str, f64)>> {
    let mut all = final_runs(records);
    if all.len() < MIN_TRIALS {
        return None;
    }
    all.sort_by(|a, b| crate::study::rank_records(a, b));
    let n_top = ((all.len() as f64 * TOP_QUANTILE).ceil() as usize).max(2);
    let top = &all[..n_top];
    let params = params_of(space);
    let raw: Vec<f64> = params
        .iter()
        .map(|p| divergence(p, &all, top, space))
        .collect();
    let total: f64 = raw.iter().sum();
    let mut out: Vec<(&'static str, f64)> = params
        .iter()
        .zip(raw)
        .map(|(p, d)| (*p, if total > 0.0 { d / total } else { 0.0 }))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    Some(out)
}
