//! Tree-structured Parzen estimator (Bergstra et al., NeurIPS 2011) as Optuna 4.x's
//! `TPESampler` implements it by default (independent sampling per parameter; Optuna 5 made its
//! multivariate mode the default), with its `constant_liar` for cohorts:
//!
//! - the first `startup_trials` configurations are drawn at random from the space;
//! - after that, the observations so far are ranked by validation accuracy and split into a good
//!   set (the best γ(n) = min(⌈0.1·n⌉, 25)) and a bad set (the rest);
//! - for each parameter, a Parzen estimator l(x) is fitted to the good set and g(x) to the bad
//!   set: a mixture with one kernel per observation plus a prior kernel. Numbers get truncated
//!   Gaussians on the parameter's range (log scale for `loguniform`, bins of `step` for `int`),
//!   with each bandwidth the larger gap to its sorted neighbours, clipped to
//!   [range / min(100, 1 + kernels), range]. Categories get a kernel that puts weight 1 on the
//!   observed choice and `prior_weight / kernels` on every choice. Older observations weigh less
//!   once there are more than 25 (Optuna's `default_weights`);
//! - `candidates` values are drawn from l, and the one with the largest l(x)/g(x) is proposed.
//!
//! A parameter that only some configurations have (the width of a third layer, with
//! `per_layer = true`) is fitted on the observations that have it.
//!
//! [`Tpe`] proposes a cohort of `batch` configurations at a time from every result observed so
//! far, so the engine stays full; with `batch = 1` it is the sequential algorithm. Within a
//! cohort, the configurations already proposed count as the worst results (Optuna's
//! `constant_liar`), so that a cohort spreads out instead of repeating one guess. Each
//! configuration's random draws come from its own stream (seed, trial id), so a study is
//! deterministic for a seed and replays from its journal. BOHB (`hyperband.rs`) uses the same
//! estimator with BOHB's split.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::{config_key, Observation, Plan, Proposal, RunRequest, Strategy};
use crate::error::{Error, Result};
use crate::model::Hyperparams;
use crate::rng::{derive_seed, stream};
use crate::space::{Num, SearchSpace};

/// The settings of a TPE (or BOHB) study, kept in study.json so that `--resume` proposes the same.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TpeSettings {
    /// Configurations proposed together (TPE: the cohort; 1 is sequential TPE).
    pub batch: usize,
    /// Configurations drawn at random before the model is used.
    pub startup_trials: usize,
    /// Candidates drawn from l(x) per parameter; the best l/g is proposed.
    pub candidates: usize,
    /// BOHB: fraction of new configurations drawn at random (0 for TPE).
    pub random_fraction: f64,
}

/// Weight of the prior kernel (Optuna's `prior_weight`).
const PRIOR_WEIGHT: f64 = 1.0;

/// How the ranked observations split into a good set (first) and a bad set (last).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Split {
    /// Optuna's default γ: the best min(⌈0.1·n⌉, 25) are good, the rest bad.
    Optuna,
    /// BOHB (Falkner et al. 2018): the best max(n_min, ⌈0.15·n⌉) are good, the worst
    /// max(n_min, n − good) bad (the two may overlap when n is small).
    Bohb { n_min: usize },
}

impl Split {
    /// (good, bad) counts for `n` ranked observations.
    pub fn sizes(self, n: usize) -> (usize, usize) {
        match self {
            Split::Optuna => {
                let good = n.div_ceil(10).min(25);
                (good, n - good)
            }
            Split::Bohb { n_min } => {
                let good = n_min.max((0.15 * n as f64).ceil() as usize).min(n);
                let bad = n_min.max(n - good).min(n);
                (good, bad)
            }
        }
    }
}

/// Optuna's `default_weights`: 1 for the newest 25 observations, a ramp from 1/n up to 1 for the
/// older ones (in trial order, oldest first).
pub fn default_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let mut w: Vec<f64> = (0..ramp)
        .map(|i| {
            if ramp == 1 {
                1.0 / n as f64
            } else {
                1.0 / n as f64 + (1.0 - 1.0 / n as f64) * i as f64 / (ramp - 1) as f64
            }
        })
        .collect();
    w.extend(std::iter::repeat_n(1.0, 25));
    w
}

/// One dimension of the space as the estimator sees it.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Index into `n` choices.
    Cat(usize),
    /// A number in [low, high] (ln of the value when `log`); `step` for integers.
    Num {
        low: f64,
        high: f64,
        log: bool,
        step: Option<f64>,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct Dim {
    name: String,
    kind: Kind,
    /// The values of a `choice`, which the index `Cat(i)` stands for.
    choices: Vec<f64>,
}

fn num_dim(name: &str, n: &Num) -> Dim {
    let (kind, choices) = match n {
        Num::Choice(v) => (Kind::Cat(v.len()), v.clone()),
        // The largest value the step reaches: int = [16, 100], step 16 ends at 96.
        Num::Int { low, high, step } => (
            Kind::Num {
                low: *low as f64,
                high: (low + step * ((high - low) / step)) as f64,
                log: false,
                step: Some(*step as f64),
            },
            vec![],
        ),
        Num::Uniform { low, high, .. } => (
            Kind::Num {
                low: *low,
                high: *high,
                log: false,
                step: None,
            },
            vec![],
        ),
        Num::LogUniform { low, high, .. } => (
            Kind::Num {
                low: low.ln(),
                high: high.ln(),
                log: true,
                step: None,
            },
            vec![],
        ),
    };
    Dim {
        name: name.to_string(),
        kind,
        choices,
    }
}

fn max_of(n: &Num) -> f64 {
    match n {
        Num::Choice(v) => v.iter().cloned().fold(f64::MIN, f64::max),
        Num::Int { high, .. } => *high as f64,
        Num::Uniform { high, .. } | Num::LogUniform { high, .. } => *high,
    }
}

/// The space's parameters in the order a configuration is built: layers, the width (one, or
/// one per possible layer), dropout, learning rate, activation, optimizer.
#[derive(Debug, Clone)]
pub struct Dims {
    dims: Vec<Dim>,
    per_layer: bool,
    space: SearchSpace,
}

impl Dims {
    pub fn new(space: &SearchSpace) -> Dims {
        let mut dims = vec![num_dim("layers", &space.layers)];
        if space.per_layer {
            for i in 0..max_of(&space.layers) as usize {
                dims.push(num_dim(&format!("units_{i}"), &space.units));
            }
        } else {
            dims.push(num_dim("units", &space.units));
        }
        dims.push(num_dim("dropout", &space.dropout));
        dims.push(num_dim("learning_rate", &space.learning_rate));
        let cat = |name: &str, n: usize| Dim {
            name: name.into(),
            kind: Kind::Cat(n),
            choices: (0..n).map(|i| i as f64).collect(),
        };
        dims.push(cat("activation", space.activation.len()));
        dims.push(cat("optimizer", space.optimizer.len()));
        // The knobs the space has; a conditional one is fitted on the configurations that have
        // it (`encode` gives None for the others).
        for name in space.knobs.present() {
            dims.push(match name {
                "nesterov" => cat(name, space.knobs.nesterov.as_ref().unwrap().len()),
                "schedule" => cat(name, space.knobs.schedule.as_ref().unwrap().len()),
                k => num_dim(k, space.knobs.num(k).unwrap()),
            });
        }
        Dims {
            dims,
            per_layer: space.per_layer,
            space: space.clone(),
        }
    }

    /// How many parameters the estimator models.
    pub fn len(&self) -> usize {
        self.dims.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dims.is_empty()
    }

    /// A configuration as the estimator's coordinates (None: the configuration lacks it).
    fn encode(&self, hp: &Hyperparams) -> Vec<Option<f64>> {
        self.dims
            .iter()
            .map(|d| {
                let raw = match d.name.as_str() {
                    "layers" => Some(hp.hidden.len() as f64),
                    "units" => hp.hidden.first().map(|&u| u as f64),
                    "dropout" => Some(hp.dropout as f64),
                    "learning_rate" => Some(hp.learning_rate as f64),
                    // Their `choices` are the indices 0..n, so the index goes through as it is.
                    "activation" => index_of(&self.space.activation, &hp.activation),
                    "optimizer" => index_of(&self.space.optimizer, &hp.optimizer),
                    "nesterov" => {
                        let b = hp.nesterov?;
                        index_of(self.space.knobs.nesterov.as_ref()?, &b)
                    }
                    "schedule" => {
                        let names = self.space.knobs.schedule.as_ref()?;
                        index_of(names, &hp.schedule.name().to_string())
                    }
                    units_i if units_i.starts_with("units_") => {
                        let i: usize = units_i["units_".len()..].parse().ok()?;
                        hp.hidden.get(i).map(|&u| u as f64)
                    }
                    k => crate::space::knob(hp, k),
                }?;
                Some(match &d.kind {
                    Kind::Cat(_) => {
                        d.choices
                            .iter()
                            .enumerate()
                            .min_by(|a, b| (a.1 - raw).abs().total_cmp(&(b.1 - raw).abs()))?
                            .0 as f64
                    }
                    Kind::Num { log: true, .. } => raw.ln(),
                    Kind::Num { .. } => raw,
                })
            })
            .collect()
    }

    /// The configuration from one coordinate per parameter (ignoring widths beyond `layers`).
    fn decode(&self, x: &[f64]) -> Hyperparams {
        let value = |i: usize| -> f64 {
            let d = &self.dims[i];
            match &d.kind {
                Kind::Cat(_) => d.choices[x[i] as usize],
                Kind::Num { log: true, .. } => x[i].exp(),
                Kind::Num { .. } => x[i],
            }
        };
        let at = |name: &str| self.dims.iter().position(|d| d.name == name).unwrap();
        let layers = value(0).round().max(1.0) as usize;
        let hidden = if self.per_layer {
            (0..layers)
                .map(|l| value(at(&format!("units_{l}"))).round() as usize)
                .collect()
        } else {
            vec![value(at("units")).round() as usize; layers]
        };
        let lr = value(at("learning_rate"));
        let mut hp = Hyperparams {
            hidden,
            dropout: value(at("dropout")) as f32,
            learning_rate: lr as f32,
            activation: self.space.activation[x[at("activation")] as usize],
            optimizer: self.space.optimizer[x[at("optimizer")] as usize],
            ..Default::default()
        };
        for name in self.space.knobs.present() {
            if !crate::space::applies(&hp, name) {
                continue;
            }
            let i = at(name);
            match name {
                "nesterov" => {
                    hp.nesterov = Some(self.space.knobs.nesterov.as_ref().unwrap()[x[i] as usize])
                }
                "schedule" => {
                    let n = &self.space.knobs.schedule.as_ref().unwrap()[x[i] as usize];
                    self.space.set_schedule(&mut hp, n);
                }
                k => crate::space::set_knob(&mut hp, k, value(i)),
            }
        }
        hp
    }
}

/// Position of `x` in `list`, as a coordinate.
fn index_of<T: PartialEq>(list: &[T], x: &T) -> Option<f64> {
    list.iter().position(|v| v == x).map(|i| i as f64)
}

fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

fn log_sum_exp(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.collect();
    let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// A Parzen estimator of one parameter: a weighted mixture of kernels.
#[derive(Debug, Clone)]
pub struct Parzen {
    weights: Vec<f64>,
    kernels: Kernels,
}

#[derive(Debug, Clone)]
enum Kernels {
    /// Truncated Gaussians on [low, high]; `step` makes the value discrete (bins of `step`).
    Num {
        mus: Vec<f64>,
        sigmas: Vec<f64>,
        low: f64,
        high: f64,
        step: Option<f64>,
    },
    /// One probability row per kernel.
    Cat(Vec<Vec<f64>>),
}

impl Parzen {
    /// The estimator of a number in [low, high] (PED-ANOVA importance uses it too).
    pub fn numeric(low: f64, high: f64, values: &[f64]) -> Parzen {
        Parzen::fit(
            &Kind::Num {
                low,
                high,
                log: false,
                step: None,
            },
            values,
        )
    }

    /// The estimator of an integer low, low + step, …, high: the mass of each value's bin of
    /// width `step` (what an `int` parameter gets).
    pub fn integer(low: f64, high: f64, step: f64, values: &[f64]) -> Parzen {
        Parzen::fit(
            &Kind::Num {
                low,
                high,
                log: false,
                step: Some(step),
            },
            values,
        )
    }

    /// The estimator of a category index in 0..n.
    pub fn categorical(n: usize, values: &[f64]) -> Parzen {
        Parzen::fit(&Kind::Cat(n), values)
    }

    /// The density (probability for categories) at `x`.
    pub fn pdf(&self, x: f64) -> f64 {
        self.log_pdf(x).exp()
    }

    /// Fits the estimator of a parameter of `kind` to `values` (in trial order, oldest first).
    fn fit(kind: &Kind, values: &[f64]) -> Parzen {
        let n = values.len();
        let mut weights = default_weights(n);
        weights.push(PRIOR_WEIGHT);
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        let kernels = match *kind {
            Kind::Cat(choices) => {
                let kernels = n + 1;
                let mut rows: Vec<Vec<f64>> = values
                    .iter()
                    .map(|&v| {
                        let mut row = vec![PRIOR_WEIGHT / kernels as f64; choices];
                        row[v as usize] += 1.0;
                        let s: f64 = row.iter().sum();
                        row.iter().map(|p| p / s).collect()
                    })
                    .collect();
                rows.push(vec![1.0 / choices as f64; choices]);
                Kernels::Cat(rows)
            }
            Kind::Num {
                low, high, step, ..
            } => {
                // Integers: the estimator lives on [low − step/2, high + step/2].
                let (low, high) = match step {
                    Some(s) => (low - s / 2.0, high + s / 2.0),
                    None => (low, high),
                };
                let range = high - low;
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
                let mut with_ends = vec![low];
                with_ends.extend(order.iter().map(|&i| values[i]));
                with_ends.push(high);
                let mut sorted_sigmas: Vec<f64> = (1..=n)
                    .map(|k| (with_ends[k] - with_ends[k - 1]).max(with_ends[k + 1] - with_ends[k]))
                    .collect();
                if n >= 2 {
                    // Optuna's consider_endpoints = false: the outer kernels look inwards only.
                    sorted_sigmas[0] = with_ends[2] - with_ends[1];
                    sorted_sigmas[n - 1] = with_ends[n] - with_ends[n - 1];
                }
                let min_sigma = range / (1.0 + (n + 1) as f64).min(100.0);
                let mut sigmas = vec![0.0; n];
                for (k, &i) in order.iter().enumerate() {
                    sigmas[i] = sorted_sigmas[k].clamp(min_sigma, range);
                }
                let mut mus = values.to_vec();
                mus.push((low + high) / 2.0);
                sigmas.push(range);
                Kernels::Num {
                    mus,
                    sigmas,
                    low,
                    high,
                    step,
                }
            }
        };
        Parzen { weights, kernels }
    }

    fn pick_kernel(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        let mut acc = 0.0;
        for (i, w) in self.weights.iter().enumerate() {
            acc += w;
            if u < acc {
                return i;
            }
        }
        self.weights.len() - 1
    }

    /// One draw: a kernel by weight, then a value from it.
    pub fn sample(&self, rng: &mut impl Rng) -> f64 {
        let k = self.pick_kernel(rng);
        match &self.kernels {
            Kernels::Cat(rows) => {
                let u: f64 = rng.random();
                let mut acc = 0.0;
                for (c, p) in rows[k].iter().enumerate() {
                    acc += p;
                    if u < acc {
                        return c as f64;
                    }
                }
                (rows[k].len() - 1) as f64
            }
            Kernels::Num {
                mus,
                sigmas,
                low,
                high,
                step,
            } => {
                // Truncated Gaussian by rejection: a kernel's centre lies in the range and its
                // width is at most the range, so about a third of the draws land inside at worst.
                let mut x = mus[k].clamp(*low, *high);
                for _ in 0..1000 {
                    let z: f64 = rng.sample(StandardNormal);
                    let v = mus[k] + sigmas[k] * z;
                    if (*low..=*high).contains(&v) {
                        x = v;
                        break;
                    }
                }
                match step {
                    Some(s) => snap(x, *low + s / 2.0, *high - s / 2.0, *s),
                    None => x,
                }
            }
        }
    }

    /// ln of the estimator's density (probability for categories and integers) at `x`.
    fn log_pdf(&self, x: f64) -> f64 {
        match &self.kernels {
            Kernels::Cat(rows) => self
                .weights
                .iter()
                .zip(rows)
                .map(|(w, r)| w * r[x as usize])
                .sum::<f64>()
                .ln(),
            Kernels::Num {
                mus,
                sigmas,
                low,
                high,
                step,
            } => log_sum_exp(self.weights.iter().zip(mus.iter().zip(sigmas)).map(
                |(w, (mu, sigma))| {
                    let z = |v: f64| (v - mu) / sigma;
                    let mass = normal_cdf(z(*high)) - normal_cdf(z(*low));
                    let density = match step {
                        // The mass of the integer's bin.
                        Some(s) => (normal_cdf(z(x + s / 2.0)) - normal_cdf(z(x - s / 2.0))).ln(),
                        None => {
                            -0.5 * z(x) * z(x)
                                - sigma.ln()
                                - 0.5 * (2.0 * std::f64::consts::PI).ln()
                        }
                    };
                    w.ln() + density - mass.ln()
                },
            )),
        }
    }
}

/// The integer grid point low, low + step, … nearest to x, within [low, high].
fn snap(x: f64, low: f64, high: f64, step: f64) -> f64 {
    (low + ((x - low) / step).round() * step).clamp(low, high)
}

/// A fitted TPE: l(x) and g(x) for each parameter.
#[derive(Debug, Clone)]
pub struct Model {
    dims: Dims,
    pairs: Vec<(Parzen, Parzen)>,
    candidates: usize,
}

impl Model {
    /// Fits l and g to `history` (configurations with their objective, higher is better, in
    /// trial order). A NaN objective (a diverged run) ranks last.
    pub fn fit(
        dims: &Dims,
        history: &[(Hyperparams, f64)],
        split: Split,
        candidates: usize,
    ) -> Model {
        let score = |v: f64| if v.is_nan() { f64::NEG_INFINITY } else { v };
        let mut ranked: Vec<usize> = (0..history.len()).collect();
        // Best first; ties keep trial order.
        ranked.sort_by(|&a, &b| {
            score(history[b].1)
                .total_cmp(&score(history[a].1))
                .then(a.cmp(&b))
        });
        let (n_good, n_bad) = split.sizes(history.len());
        let mut good: Vec<usize> = ranked[..n_good].to_vec();
        let mut bad: Vec<usize> = ranked[history.len() - n_bad..].to_vec();
        good.sort();
        bad.sort();
        let coords: Vec<Vec<Option<f64>>> = history.iter().map(|(hp, _)| dims.encode(hp)).collect();
        let pairs = dims
            .dims
            .iter()
            .enumerate()
            .map(|(d, dim)| {
                let of = |set: &[usize]| -> Vec<f64> {
                    set.iter().filter_map(|&i| coords[i][d]).collect()
                };
                (
                    Parzen::fit(&dim.kind, &of(&good)),
                    Parzen::fit(&dim.kind, &of(&bad)),
                )
            })
            .collect();
        Model {
            dims: dims.clone(),
            pairs,
            candidates: candidates.max(1),
        }
    }

    /// One configuration: for each parameter, the candidate from l with the largest l/g.
    pub fn sample(&self, rng: &mut impl Rng) -> Hyperparams {
        let x: Vec<f64> = self
            .pairs
            .iter()
            .map(|(l, g)| {
                let mut best = (f64::NEG_INFINITY, f64::NAN);
                for _ in 0..self.candidates {
                    let c = l.sample(rng);
                    let s = l.log_pdf(c) - g.log_pdf(c);
                    if s > best.0 || best.1.is_nan() {
                        best = (s, c);
                    }
                }
                best.1
            })
            .collect();
        self.dims.decode(&x)
    }
}

/// Draws a configuration not in `seen` (up to `tries` more draws, then accepts a repeat: a small
/// space may have no new configuration left) and records it.
/// Returns it and whether it is new.
pub fn draw_new(
    seen: &mut HashSet<String>,
    tries: usize,
    mut draw: impl FnMut() -> Hyperparams,
) -> (Hyperparams, bool) {
    let mut hp = draw();
    for _ in 0..tries {
        if !seen.contains(&config_key(&hp)) {
            break;
        }
        hp = draw();
    }
    let new = seen.insert(config_key(&hp));
    (hp, new)
}

/// The random generator of trial `trial`'s configuration.
pub fn trial_rng(seed: u64, trial: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive_seed(seed, stream::TPE, trial))
}

/// `--strategy tpe`: `trials` configurations, `batch` at a time, each trained for `epochs`.
pub struct Tpe {
    space: SearchSpace,
    dims: Dims,
    trials: usize,
    epochs: usize,
    seed: u64,
    settings: TpeSettings,
    next: u64,
    outstanding: HashMap<u64, Hyperparams>,
    /// (trial id, configuration, objective) of every observed run.
    history: Vec<(u64, Hyperparams, f64)>,
    seen: HashSet<String>,
    own_time: Duration,
    /// The space ran out of new configurations once (said once).
    warned: bool,
}

impl Tpe {
    pub fn new(
        space: &SearchSpace,
        trials: usize,
        epochs: usize,
        seed: u64,
        settings: TpeSettings,
    ) -> Result<Tpe> {
        if trials == 0 {
            return Err(Error::flag("--trials", "0: expected at least 1"));
        }
        if settings.batch == 0 {
            return Err(Error::flag("--cohort-size", "0: expected at least 1"));
        }
        if settings.candidates == 0 {
            return Err(Error::flag("--ei-candidates", "0: expected at least 1"));
        }
        Ok(Tpe {
            space: space.clone(),
            dims: Dims::new(space),
            trials,
            epochs,
            seed,
            settings,
            next: 0,
            outstanding: HashMap::new(),
            history: vec![],
            seen: HashSet::new(),
            own_time: Duration::ZERO,
            warned: false,
        })
    }
}

impl Strategy for Tpe {
    fn name(&self) -> &'static str {
        "tpe"
    }

    fn propose(&mut self, capacity: usize) -> Proposal {
        let left = self.trials - self.next as usize;
        if left == 0 {
            return if self.outstanding.is_empty() {
                Proposal::Done
            } else {
                Proposal::Wait
            };
        }
        // A cohort at a time, from every result recorded so far. One process asks after each
        // cohort is in; workers of a shared study ask whenever they are free, and the trials
        // still out with others count as the worst results (constant liar), as do this
        // cohort's earlier proposals.
        let n = self.settings.batch.min(capacity).min(left);
        if n == 0 {
            return Proposal::Wait;
        }
        let t0 = Instant::now();
        let mut h = self.history.clone();
        h.sort_by_key(|(t, _, _)| *t);
        let mut h: Vec<(Hyperparams, f64)> = h.into_iter().map(|(_, hp, v)| (hp, v)).collect();
        let mut pending: Vec<(&u64, &Hyperparams)> = self.outstanding.iter().collect();
        pending.sort_by_key(|(t, _)| **t);
        h.extend(pending.into_iter().map(|(_, hp)| (hp.clone(), f64::NAN)));
        let mut runs = vec![];
        for _ in 0..n {
            let trial = self.next;
            self.next += 1;
            let mut rng = trial_rng(self.seed, trial);
            let space = &self.space;
            // Constant liar (Optuna's `constant_liar`): the cohort's earlier proposals count as
            // the worst results, so one cohort does not pile onto a single spot.
            // The first `startup_trials` trials (by number, as Optuna counts running ones too) are
            // random, and so is any trial proposed before a single result is in.
            let use_model =
                trial as usize >= self.settings.startup_trials && !self.history.is_empty();
            let model = use_model
                .then(|| Model::fit(&self.dims, &h, Split::Optuna, self.settings.candidates));
            let (hp, new) = draw_new(&mut self.seen, 100, || match &model {
                Some(m) => m.sample(&mut rng),
                None => space.sample(&mut rng),
            });
            if !new && !self.warned {
                self.warned = true;
                eprintln!(
                    "warning: tpe: no new configuration found in 100 draws (trial {trial}; the space may have fewer than --trials {} configurations); repeating one",
                    self.trials
                );
            }
            h.push((hp.clone(), f64::NAN));
            self.outstanding.insert(trial, hp.clone());
            runs.push(RunRequest {
                run_id: trial,
                trial_id: trial,
                hp,
                epochs: self.epochs,
                resume_from: None,
                bracket: None,
            });
        }
        self.own_time += t0.elapsed();
        Proposal::Run(runs)
    }

    fn observe(&mut self, outcomes: &[Observation]) {
        let t0 = Instant::now();
        for o in outcomes {
            if let Some(hp) = self.outstanding.remove(&o.run_id) {
                self.history.push((o.trial_id, hp, o.objective));
            }
        }
        self.own_time += t0.elapsed();
    }

    fn plan(&self) -> Plan {
        Plan {
            runs: self.trials,
            epochs: self.trials * self.epochs,
            lines: vec![format!(
                "tpe: {} configurations x {} epochs, proposed {} at a time; the first {} at random, then l(x)/g(x) over {} candidates",
                self.trials, self.epochs, self.settings.batch, self.settings.startup_trials, self.settings.candidates
            )],
        }
    }

    fn own_seconds(&self) -> f64 {
        self.own_time.as_secs_f64()
    }
}
