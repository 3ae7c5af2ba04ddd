//! Search spaces: which hyperparameters a strategy may propose. The default is the seed's space
//! (2–4 layers of one width from {32, 48, 64}, dropout U(0, 0.4), learning rate U(5e-4, 2.5e-3),
//! six activations, Adam/Lion); `--space FILE.toml` replaces it:
//!
//! ```toml
//! [layers]        # number of hidden layers
//! int = [2, 4]    # or: choice = [2, 3, 4]
//! [units]
//! choice = [32, 48, 64]
//! per_layer = false   # true: each layer draws its own width
//! [dropout]
//! uniform = [0.0, 0.4]
//! count = 3           # grid only: 3 evenly spaced values (or `step = 0.2`)
//! [learning_rate]
//! loguniform = [5e-4, 2.5e-3]
//! [activation]
//! choice = ["elu", "celu", "gelu", "relu", "selu", "silu"]
//! [optimizer]
//! choice = ["adam", "lion"]   # or any of sgd, rmsprop, adamw, adagrad
//! ```
//!
//! Optional keys, each drawn only when the file names it (so the seed's space draws exactly what
//! it always drew): `batch_size` (integers), the optimizer parameters `beta_1`, `beta_2`
//! (adam, adamw, lion), `momentum` (sgd, rmsprop), `nesterov` (sgd; `choice = [true, false]`),
//! `rho` (rmsprop), `weight_decay` (every optimizer), and `schedule`
//! (`choice = ["constant", "cosine", "exponential", "step"]`) with its `warmup_epochs` (cosine),
//! `decay_epochs` (all but constant; cosine's default is the study's epochs) and `decay_rate`
//! (exponential, step). The optimizer and schedule parameters are conditional: a configuration
//! has one only when its optimizer or schedule does ([`applies`]); TPE and BOHB fit each on the
//! configurations that have it.

use std::path::Path;

use rand::Rng;

use crate::error::{Error, IoContext, Result};
use crate::model::{Activation, Hyperparams, Optimizer, Schedule};

/// A numeric parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Num {
    Choice(Vec<f64>),
    /// Integers low..=high, every `step`.
    Int {
        low: i64,
        high: i64,
        step: i64,
    },
    /// Continuous; `grid` holds the values a grid search uses (from `count` or `step`).
    Uniform {
        low: f64,
        high: f64,
        grid: Option<Vec<f64>>,
    },
    LogUniform {
        low: f64,
        high: f64,
        grid: Option<Vec<f64>>,
    },
}

impl Num {
    pub fn sample(&self, rng: &mut impl Rng) -> f64 {
        match self {
            Num::Choice(v) => v[rng.random_range(0..v.len())],
            Num::Int { low, high, step } => {
                (low + step * rng.random_range(0..=(high - low) / step)) as f64
            }
            Num::Uniform { low, high, .. } => rng.random_range(*low..=*high),
            Num::LogUniform { low, high, .. } => rng.random_range(low.ln()..=high.ln()).exp(),
        }
    }
    /// The largest value it can take.
    pub fn max(&self) -> f64 {
        match self {
            Num::Choice(v) => v.iter().cloned().fold(f64::MIN, f64::max),
            Num::Int { low, high, step } => (low + step * ((high - low) / step)) as f64,
            Num::Uniform { high, .. } | Num::LogUniform { high, .. } => *high,
        }
    }
    /// Drawn on a log scale (`loguniform`): plots and importance read its values as logarithms.
    pub fn is_log(&self) -> bool {
        matches!(self, Num::LogUniform { .. })
    }
    /// The values a grid search enumerates, or None for a continuous parameter without them.
    pub fn grid(&self) -> Option<Vec<f64>> {
        match self {
            Num::Choice(v) => Some(v.clone()),
            Num::Int { low, high, step } => Some(
                (0..=(high - low) / step)
                    .map(|i| (low + i * step) as f64)
                    .collect(),
            ),
            Num::Uniform { grid, .. } | Num::LogUniform { grid, .. } => grid.clone(),
        }
    }
}

/// The seed's space as a space file: what `study.json` stores for a search without `--space`
/// (`SearchSpace::default()` is the same space; a test holds them equal).
pub const DEFAULT_TOML: &str = r#"# The seed notebook's space.
[layers]
choice = [2, 3, 4]
[units]
choice = [32, 48, 64]
per_layer = false
[dropout]
uniform = [0.0, 0.4]
count = 3
[learning_rate]
uniform = [0.0005, 0.0025]
count = 3
[activation]
choice = ["elu", "celu", "gelu", "relu", "selu", "silu"]
[optimizer]
choice = ["adam", "lion"]
"#;

/// The optional parameters ([`Knobs`]), in the order a configuration draws them.
pub const KNOBS: [&str; 11] = [
    "batch_size",
    "beta_1",
    "beta_2",
    "momentum",
    "nesterov",
    "rho",
    "weight_decay",
    "schedule",
    "warmup_epochs",
    "decay_epochs",
    "decay_rate",
];

/// The optional parameters of a space: `None` when the space file leaves the key out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Knobs {
    pub batch_size: Option<Num>,
    pub beta_1: Option<Num>,
    pub beta_2: Option<Num>,
    pub momentum: Option<Num>,
    pub nesterov: Option<Vec<bool>>,
    pub rho: Option<Num>,
    pub weight_decay: Option<Num>,
    /// Schedule names (`Schedule::NAMES`).
    pub schedule: Option<Vec<String>>,
    pub warmup_epochs: Option<Num>,
    pub decay_epochs: Option<Num>,
    pub decay_rate: Option<Num>,
}

impl Knobs {
    /// The numeric knob `name`, if the space has it.
    pub fn num(&self, name: &str) -> Option<&Num> {
        match name {
            "batch_size" => self.batch_size.as_ref(),
            "beta_1" => self.beta_1.as_ref(),
            "beta_2" => self.beta_2.as_ref(),
            "momentum" => self.momentum.as_ref(),
            "rho" => self.rho.as_ref(),
            "weight_decay" => self.weight_decay.as_ref(),
            "warmup_epochs" => self.warmup_epochs.as_ref(),
            "decay_epochs" => self.decay_epochs.as_ref(),
            "decay_rate" => self.decay_rate.as_ref(),
            _ => None,
        }
    }
    /// The knobs the space has, in draw order.
    pub fn present(&self) -> Vec<&'static str> {
        KNOBS
            .into_iter()
            .filter(|&k| match k {
                "nesterov" => self.nesterov.is_some(),
                "schedule" => self.schedule.is_some(),
                k => self.num(k).is_some(),
            })
            .collect()
    }
}

/// Whether a configuration with `hp`'s optimizer and schedule has the knob `name`.
pub fn applies(hp: &Hyperparams, name: &str) -> bool {
    match name {
        "batch_size" | "schedule" => true,
        "warmup_epochs" => matches!(hp.schedule, Schedule::Cosine { .. }),
        "decay_epochs" => !hp.schedule.is_constant(),
        "decay_rate" => matches!(
            hp.schedule,
            Schedule::Exponential { .. } | Schedule::Step { .. }
        ),
        opt => hp.optimizer.has(opt),
    }
}

/// The value of knob `name` in `hp` as a number (nesterov 0/1, schedule its id), or None when
/// `hp` does not set it (conditional parameters of other optimizers and schedules, defaults).
pub fn knob(hp: &Hyperparams, name: &str) -> Option<f64> {
    match name {
        "batch_size" => hp.batch_size.map(|b| b as f64),
        "beta_1" => hp.beta_1,
        "beta_2" => hp.beta_2,
        "momentum" => hp.momentum,
        "nesterov" => hp.nesterov.map(|b| b as u8 as f64),
        "rho" => hp.rho,
        "weight_decay" => hp.weight_decay,
        "schedule" => Some(hp.schedule.id() as f64),
        "warmup_epochs" => hp.schedule.warmup_epochs(),
        "decay_epochs" => hp.schedule.decay_epochs(),
        "decay_rate" => hp.schedule.decay_rate(),
        _ => None,
    }
}

/// Sets knob `name` of `hp` to `v` (numbers; nesterov 0/1); a schedule's parameter goes into the
/// schedule `hp` has. `schedule` itself is set with [`Schedule::build`].
pub fn set_knob(hp: &mut Hyperparams, name: &str, v: f64) {
    match name {
        "batch_size" => hp.batch_size = Some(v.round().max(1.0) as usize),
        "beta_1" => hp.beta_1 = Some(v),
        "beta_2" => hp.beta_2 = Some(v),
        "momentum" => hp.momentum = Some(v),
        "nesterov" => hp.nesterov = Some(v != 0.0),
        "rho" => hp.rho = Some(v),
        "weight_decay" => hp.weight_decay = Some(v),
        "warmup_epochs" => {
            if let Schedule::Cosine { warmup_epochs, .. } = &mut hp.schedule {
                *warmup_epochs = v;
            }
        }
        "decay_epochs" => match &mut hp.schedule {
            Schedule::Cosine { decay_epochs, .. }
            | Schedule::Exponential { decay_epochs, .. }
            | Schedule::Step { decay_epochs, .. } => *decay_epochs = v,
            Schedule::Constant => {}
        },
        "decay_rate" => match &mut hp.schedule {
            Schedule::Exponential { decay_rate, .. } | Schedule::Step { decay_rate, .. } => {
                *decay_rate = v
            }
            _ => {}
        },
        _ => {}
    }
}

/// Sets one knob's value on a configuration (a grid's values of one knob).
type Setter<'a> = Box<dyn Fn(&mut Hyperparams) + 'a>;

#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpace {
    pub layers: Num,
    pub units: Num,
    /// Each hidden layer draws its own width (otherwise all share one).
    pub per_layer: bool,
    pub dropout: Num,
    pub learning_rate: Num,
    pub activation: Vec<Activation>,
    pub optimizer: Vec<Optimizer>,
    /// The optional parameters (none in the seed's space).
    pub knobs: Knobs,
    /// Epochs a trial of the study may train in all (`--epochs`, or Hyperband's largest budget):
    /// a cosine schedule's `decay_epochs` when the space leaves it out. Not part of the file.
    pub horizon: usize,
}

impl Default for SearchSpace {
    /// The seed notebook's space.
    fn default() -> Self {
        SearchSpace {
            layers: Num::Choice(vec![2.0, 3.0, 4.0]),
            units: Num::Choice(vec![32.0, 48.0, 64.0]),
            per_layer: false,
            dropout: Num::Uniform {
                low: 0.0,
                high: 0.4,
                grid: Some(vec![0.0, 0.2, 0.4]),
            },
            learning_rate: Num::Uniform {
                low: 5e-4,
                high: 2.5e-3,
                grid: Some(vec![5e-4, 1.5e-3, 2.5e-3]),
            },
            activation: Activation::SEED.to_vec(),
            optimizer: Optimizer::SEED.to_vec(),
            knobs: Knobs::default(),
            horizon: 10,
        }
    }
}

impl SearchSpace {
    /// The `Debug` text fastfc 0.1 stored in study.json for a space (its seven fields, before
    /// the knobs), for recognising such studies; None when the space has knobs 0.1 never had.
    pub fn legacy_debug(&self) -> Option<String> {
        (self.knobs == Knobs::default()).then(|| {
            format!(
                "SearchSpace {{ layers: {:?}, units: {:?}, per_layer: {:?}, dropout: {:?}, learning_rate: {:?}, activation: {:?}, optimizer: {:?} }}",
                self.layers,
                self.units,
                self.per_layer,
                self.dropout,
                self.learning_rate,
                self.activation,
                self.optimizer
            )
        })
    }

    /// Refuses a space whose cosine warmup can reach its decay (`warmup_epochs` at or beyond
    /// `decay_epochs`, or the horizon when the space leaves decay_epochs out): such a trial
    /// would train, but its model file would not load.
    pub fn check_horizon(&self, path: &Path) -> Result<()> {
        let Some(w) = &self.knobs.warmup_epochs else {
            return Ok(());
        };
        let decay_min = match &self.knobs.decay_epochs {
            Some(d) => match d {
                Num::Choice(v) => v.iter().cloned().fold(f64::INFINITY, f64::min),
                Num::Int { low, .. } => *low as f64,
                Num::Uniform { low, .. } | Num::LogUniform { low, .. } => *low,
            },
            None => self.horizon as f64,
        };
        if w.max() >= decay_min {
            return Err(Error::space(
                path,
                "warmup_epochs",
                format!(
                    "up to {} epochs of warmup, but a cosine schedule may decay over only {decay_min} (decay_epochs, or the study's epochs): keep the warmup below it",
                    w.max()
                ),
            ));
        }
        Ok(())
    }

    /// The space with `epochs` as its trials' horizon ([`SearchSpace::horizon`]).
    pub fn with_horizon(mut self, epochs: usize) -> Self {
        self.horizon = epochs.max(1);
        self
    }

    /// Draws one configuration: the seed's six parameters first, then each knob the space has
    /// and the configuration's optimizer and schedule take.
    pub fn sample(&self, rng: &mut impl Rng) -> Hyperparams {
        let layers = self.layers.sample(rng) as usize;
        let hidden = if self.per_layer {
            (0..layers)
                .map(|_| self.units.sample(rng) as usize)
                .collect()
        } else {
            vec![self.units.sample(rng) as usize; layers]
        };
        let mut hp = Hyperparams {
            hidden,
            dropout: self.dropout.sample(rng) as f32,
            learning_rate: self.learning_rate.sample(rng) as f32,
            activation: self.activation[rng.random_range(0..self.activation.len())],
            optimizer: self.optimizer[rng.random_range(0..self.optimizer.len())],
            ..Default::default()
        };
        for name in self.knobs.present() {
            if !applies(&hp, name) {
                continue;
            }
            match name {
                "nesterov" => {
                    let c = self.knobs.nesterov.as_ref().unwrap();
                    hp.nesterov = Some(c[rng.random_range(0..c.len())]);
                }
                "schedule" => {
                    let c = self.knobs.schedule.as_ref().unwrap();
                    self.set_schedule(&mut hp, &c[rng.random_range(0..c.len())]);
                }
                k => set_knob(&mut hp, k, self.knobs.num(k).unwrap().sample(rng)),
            }
        }
        hp
    }

    /// Gives `hp` the schedule `name` with default parameters (names were checked at parse).
    pub fn set_schedule(&self, hp: &mut Hyperparams, name: &str) {
        hp.schedule = Schedule::build(name, None, None, None, self.horizon).unwrap_or_default();
    }

    /// Every configuration of the grid (cartesian product, each conditional knob only under the
    /// optimizers or schedules that have it), or an error naming the continuous parameter that
    /// has neither `count` nor `step`.
    pub fn grid(&self, path: &Path) -> Result<Vec<Hyperparams>> {
        let need = |key: &str, n: &Num| {
            n.grid().ok_or_else(|| {
                Error::space(
                    path,
                    key,
                    "a grid needs `count = N` or `step = X` for a continuous parameter",
                )
            })
        };
        let layers = need("layers", &self.layers)?;
        let units = need("units", &self.units)?;
        let dropout = need("dropout", &self.dropout)?;
        let lr = need("learning_rate", &self.learning_rate)?;
        let mut hidden_sets: Vec<Vec<usize>> = vec![];
        for &l in &layers {
            let l = l as usize;
            if self.per_layer {
                let mut acc: Vec<Vec<usize>> = vec![vec![]];
                for _ in 0..l {
                    acc = acc
                        .into_iter()
                        .flat_map(|h| {
                            units
                                .iter()
                                .map(move |&u| [h.clone(), vec![u as usize]].concat())
                        })
                        .collect();
                }
                hidden_sets.extend(acc);
            } else {
                hidden_sets.extend(units.iter().map(|&u| vec![u as usize; l]));
            }
        }
        let mut out = vec![];
        for h in &hidden_sets {
            for &act in &self.activation {
                for &opt in &self.optimizer {
                    for &d in &dropout {
                        for &r in &lr {
                            out.push(Hyperparams {
                                hidden: h.clone(),
                                activation: act,
                                optimizer: opt,
                                dropout: d as f32,
                                learning_rate: r as f32,
                                ..Default::default()
                            });
                        }
                    }
                }
            }
        }
        for name in self.knobs.present() {
            let values: Vec<Setter> = match name {
                "nesterov" => self
                    .knobs
                    .nesterov
                    .clone()
                    .unwrap()
                    .into_iter()
                    .map(|b| Box::new(move |hp: &mut Hyperparams| hp.nesterov = Some(b)) as _)
                    .collect(),
                "schedule" => self
                    .knobs
                    .schedule
                    .clone()
                    .unwrap()
                    .into_iter()
                    .map(|n| Box::new(move |hp: &mut Hyperparams| self.set_schedule(hp, &n)) as _)
                    .collect(),
                k => need(k, self.knobs.num(k).unwrap())?
                    .into_iter()
                    .map(|v| Box::new(move |hp: &mut Hyperparams| set_knob(hp, k, v)) as _)
                    .collect(),
            };
            out = out
                .into_iter()
                .flat_map(|hp| {
                    if !applies(&hp, name) {
                        return vec![hp];
                    }
                    values
                        .iter()
                        .map(|set| {
                            let mut h = hp.clone();
                            set(&mut h);
                            h
                        })
                        .collect()
                })
                .collect();
        }
        Ok(out)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).ctx_io(path)?;
        Self::parse(path, &text)
    }

    /// Parses a space file; keys left out keep the default space's values.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            Error::file(path, format!("not valid TOML: {}", e.message()))
        })?;
        let mut s = SearchSpace::default();
        const BASE: [&str; 6] = [
            "layers",
            "units",
            "dropout",
            "learning_rate",
            "activation",
            "optimizer",
        ];
        let keys: Vec<&str> = BASE.iter().chain(KNOBS.iter()).copied().collect();
        for (k, v) in &doc {
            if !keys.contains(&k.as_str()) {
                return Err(Error::space(
                    path,
                    k,
                    format!("unknown parameter; expected one of {}", keys.join(", ")),
                ));
            }
            let t = v.as_table().ok_or_else(|| {
                Error::space(
                    path,
                    k,
                    "expected a table, e.g. [dropout] uniform = [0.0, 0.4]",
                )
            })?;
            match k.as_str() {
                "layers" => s.layers = num(path, k, t, true, Some((1.0, 64.0)))?,
                "units" => {
                    s.units = num(path, k, t, true, Some((1.0, 4096.0)))?;
                    s.per_layer = match t.get("per_layer") {
                        None => false,
                        Some(toml::Value::Boolean(b)) => *b,
                        Some(_) => {
                            return Err(Error::space(
                                path,
                                "units.per_layer",
                                "expected true or false",
                            ))
                        }
                    };
                }
                "dropout" => s.dropout = num(path, k, t, false, Some((0.0, 0.999)))?,
                "learning_rate" => s.learning_rate = num(path, k, t, false, Some((1e-12, 10.0)))?,
                "activation" => {
                    s.activation = names(path, k, t)?
                        .iter()
                        .map(|n| {
                            n.parse::<Activation>()
                                .map_err(|e| Error::space(path, k, e))
                        })
                        .collect::<Result<_>>()?
                }
                "optimizer" => {
                    s.optimizer = names(path, k, t)?
                        .iter()
                        .map(|n| n.parse::<Optimizer>().map_err(|e| Error::space(path, k, e)))
                        .collect::<Result<_>>()?
                }
                "batch_size" => {
                    s.knobs.batch_size = Some(num(path, k, t, true, Some((1.0, 65536.0)))?)
                }
                "beta_1" => s.knobs.beta_1 = Some(num(path, k, t, false, Some((0.0, 0.999_999)))?),
                "beta_2" => s.knobs.beta_2 = Some(num(path, k, t, false, Some((0.0, 0.999_999)))?),
                "momentum" => {
                    s.knobs.momentum = Some(num(path, k, t, false, Some((0.0, 0.999_999)))?)
                }
                "rho" => s.knobs.rho = Some(num(path, k, t, false, Some((0.0, 0.999_999)))?),
                "weight_decay" => {
                    s.knobs.weight_decay = Some(num(path, k, t, false, Some((0.0, 1.0)))?)
                }
                "warmup_epochs" => {
                    s.knobs.warmup_epochs = Some(num(path, k, t, false, Some((0.0, 1e4)))?)
                }
                "decay_epochs" => {
                    s.knobs.decay_epochs = Some(num(path, k, t, false, Some((1e-3, 1e6)))?)
                }
                "decay_rate" => {
                    s.knobs.decay_rate = Some(num(path, k, t, false, Some((1e-6, 1.0)))?)
                }
                "nesterov" => {
                    let c = t
                        .get("choice")
                        .and_then(|v| v.as_array())
                        .filter(|c| !c.is_empty())
                        .ok_or_else(|| {
                            Error::space(path, k, "expected `choice = [true, false]`")
                        })?;
                    s.knobs.nesterov = Some(
                        c.iter()
                            .map(|v| {
                                v.as_bool().ok_or_else(|| {
                                    Error::space(path, k, format!("{v} is not true or false"))
                                })
                            })
                            .collect::<Result<_>>()?,
                    );
                }
                "schedule" => {
                    let n = names(path, k, t)?;
                    for name in &n {
                        Schedule::build(name, None, None, None, 1)
                            .map_err(|e| Error::space(path, k, e))?;
                    }
                    s.knobs.schedule = Some(n);
                }
                _ => unreachable!(),
            }
        }
        s.check_conditions(path)?;
        Ok(s)
    }

    /// Refuses a conditional knob that no configuration of the space can have (momentum in a
    /// space of Adam and Lion, warmup_epochs without cosine), and schedule parameters no schedule
    /// of the space could run with.
    fn check_conditions(&self, path: &Path) -> Result<()> {
        let schedules: Vec<&str> = self
            .knobs
            .schedule
            .as_ref()
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_else(|| vec!["constant"]);
        for name in self.knobs.present() {
            let owners: Vec<&str> = match name {
                "batch_size" | "schedule" => continue,
                "warmup_epochs" => vec!["cosine"],
                "decay_epochs" => vec!["cosine", "exponential", "step"],
                "decay_rate" => vec!["exponential", "step"],
                opt => {
                    let owners: Vec<&str> = Optimizer::ALL
                        .iter()
                        .filter(|o| o.has(opt))
                        .map(|o| o.name())
                        .collect();
                    if !self.optimizer.iter().any(|o| o.has(opt)) {
                        return Err(Error::space(
                            path,
                            name,
                            format!(
                                "no optimizer of the space has it (it belongs to {}; the space has {})",
                                owners.join(", "),
                                self.optimizer.iter().map(|o| o.name()).collect::<Vec<_>>().join(", ")
                            ),
                        ));
                    }
                    continue;
                }
            };
            if !schedules.iter().any(|s| owners.contains(s)) {
                return Err(Error::space(
                    path,
                    name,
                    format!(
                        "no schedule of the space has it (it belongs to {}; add them to [schedule] choice)",
                        owners.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn names(path: &Path, key: &str, t: &toml::Table) -> Result<Vec<String>> {
    let c = t
        .get("choice")
        .and_then(|v| v.as_array())
        .ok_or_else(|| Error::space(path, key, "expected `choice = [\"…\", …]`"))?;
    if c.is_empty() {
        return Err(Error::space(path, key, "`choice` is empty"));
    }
    c.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| Error::space(path, key, format!("{v} is not a string")))
        })
        .collect()
}

fn float(v: &toml::Value) -> Option<f64> {
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
}

fn num(
    path: &Path,
    key: &str,
    t: &toml::Table,
    integer: bool,
    range: Option<(f64, f64)>,
) -> Result<Num> {
    let kinds: Vec<&str> = ["choice", "int", "uniform", "loguniform"]
        .into_iter()
        .filter(|k| t.contains_key(*k))
        .collect();
    if kinds.len() != 1 {
        return Err(Error::space(
            path,
            key,
            format!(
                "expected exactly one of `choice = [..]`, `int = [low, high]`, `uniform = [low, high]`, `loguniform = [low, high]`; found {}",
                if kinds.is_empty() { "none".to_string() } else { kinds.join(" and ") }
            ),
        ));
    }
    let kind = kinds[0];
    let arr: Vec<f64> = t[kind]
        .as_array()
        .ok_or_else(|| Error::space(path, format!("{key}.{kind}"), "expected an array"))?
        .iter()
        .map(|v| {
            float(v).ok_or_else(|| {
                Error::space(
                    path,
                    format!("{key}.{kind}"),
                    format!("{v} is not a number"),
                )
            })
        })
        .collect::<Result<_>>()?;
    let check = |v: f64| -> Result<()> {
        if let Some((lo, hi)) = range {
            if !(lo..=hi).contains(&v) {
                return Err(Error::space(
                    path,
                    format!("{key}.{kind}"),
                    format!("{v} is outside {lo}..={hi}"),
                ));
            }
        }
        if integer && v.fract() != 0.0 {
            return Err(Error::space(
                path,
                format!("{key}.{kind}"),
                format!("{v} is not an integer"),
            ));
        }
        Ok(())
    };
    arr.iter().try_for_each(|&v| check(v))?;
    let pair = || -> Result<(f64, f64)> {
        match arr[..] {
            [lo, hi] if lo <= hi => Ok((lo, hi)),
            _ => Err(Error::space(
                path,
                format!("{key}.{kind}"),
                format!("expected [low, high] with low <= high, found {arr:?}"),
            )),
        }
    };
    let step = t.get("step").map(|v| {
        float(v).ok_or_else(|| Error::space(path, format!("{key}.step"), "expected a number"))
    });
    let count = t.get("count").map(|v| {
        v.as_integer()
            .filter(|&c| c >= 1)
            .ok_or_else(|| Error::space(path, format!("{key}.count"), "expected an integer >= 1"))
    });
    Ok(match kind {
        "choice" => {
            if arr.is_empty() {
                return Err(Error::space(path, key, "`choice` is empty"));
            }
            Num::Choice(arr)
        }
        "int" => {
            let (lo, hi) = pair()?;
            let step = step.transpose()?.unwrap_or(1.0);
            if step < 1.0 || step.fract() != 0.0 {
                return Err(Error::space(
                    path,
                    format!("{key}.step"),
                    "expected an integer >= 1",
                ));
            }
            Num::Int {
                low: lo as i64,
                high: hi as i64,
                step: step as i64,
            }
        }
        _ => {
            if integer {
                return Err(Error::space(
                    path,
                    key,
                    "takes integers: use `choice` or `int`",
                ));
            }
            let (lo, hi) = pair()?;
            let log = kind == "loguniform";
            if log && lo <= 0.0 {
                return Err(Error::space(
                    path,
                    format!("{key}.{kind}"),
                    "log-uniform needs low > 0",
                ));
            }
            let grid = match (count.transpose()?, step.transpose()?) {
                (Some(_), Some(_)) => {
                    return Err(Error::space(path, key, "give `count` or `step`, not both"))
                }
                (Some(n), None) => Some(
                    (0..n)
                        .map(|i| {
                            let f = if n == 1 {
                                0.0
                            } else {
                                i as f64 / (n - 1) as f64
                            };
                            if log {
                                (lo.ln() + f * (hi.ln() - lo.ln())).exp()
                            } else {
                                lo + f * (hi - lo)
                            }
                        })
                        .collect(),
                ),
                (None, Some(st)) if st > 0.0 => {
                    let n = ((hi - lo) / st + 1e-9).floor() as usize;
                    Some((0..=n).map(|i| lo + i as f64 * st).collect())
                }
                (None, Some(_)) => {
                    return Err(Error::space(
                        path,
                        format!("{key}.step"),
                        "expected a step > 0",
                    ))
                }
                (None, None) => None,
            };
            if log {
                Num::LogUniform {
                    low: lo,
                    high: hi,
                    grid,
                }
            } else {
                Num::Uniform {
                    low: lo,
                    high: hi,
                    grid,
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fastfc 0.1 stored a space as its derived `Debug` text; the knobs must not change what
    /// the seed's space prints, so `export optuna` still recognises such studies.
    #[test]
    fn the_seed_space_prints_as_fastfc_0_1_stored_it() {
        assert_eq!(
            SearchSpace::default().legacy_debug().unwrap(),
            "SearchSpace { layers: Choice([2.0, 3.0, 4.0]), units: Choice([32.0, 48.0, 64.0]), per_layer: false, \
             dropout: Uniform { low: 0.0, high: 0.4, grid: Some([0.0, 0.2, 0.4]) }, \
             learning_rate: Uniform { low: 0.0005, high: 0.0025, grid: Some([0.0005, 0.0015, 0.0025]) }, \
             activation: [Elu, Celu, Gelu, Relu, Selu, Silu], optimizer: [Adam, Lion] }"
        );
        let p = Path::new("s.toml");
        let knobbed = SearchSpace::parse(p, "[batch_size]\nchoice = [32, 64]\n").unwrap();
        assert_eq!(knobbed.legacy_debug(), None);
    }

    /// A warmup that can reach the cosine's decay is refused once the horizon is known.
    #[test]
    fn a_warmup_reaching_the_decay_is_refused() {
        let p = Path::new("s.toml");
        let text = "[schedule]\nchoice = [\"cosine\"]\n[warmup_epochs]\nchoice = [0.0, 2.0]\n";
        let s = SearchSpace::parse(p, text).unwrap();
        let e = s
            .clone()
            .with_horizon(2)
            .check_horizon(p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("warmup_epochs") && e.contains("decay over only 2"),
            "{e}"
        );
        s.with_horizon(3).check_horizon(p).unwrap();
    }
}
