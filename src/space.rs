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
//! choice = ["adam", "lion"]
//! ```

use std::path::Path;

use rand::Rng;

use crate::error::{Error, IoContext, Result};
use crate::model::{Activation, Hyperparams, Optimizer};

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
            activation: Activation::ALL.to_vec(),
            optimizer: Optimizer::ALL.to_vec(),
        }
    }
}

impl SearchSpace {
    /// Draws one configuration.
    pub fn sample(&self, rng: &mut impl Rng) -> Hyperparams {
        let layers = self.layers.sample(rng) as usize;
        let hidden = if self.per_layer {
            (0..layers)
                .map(|_| self.units.sample(rng) as usize)
                .collect()
        } else {
            vec![self.units.sample(rng) as usize; layers]
        };
        Hyperparams {
            hidden,
            dropout: self.dropout.sample(rng) as f32,
            learning_rate: self.learning_rate.sample(rng) as f32,
            activation: self.activation[rng.random_range(0..self.activation.len())],
            optimizer: self.optimizer[rng.random_range(0..self.optimizer.len())],
        }
    }

    /// Every configuration of the grid (cartesian product), or an error naming the continuous
    /// parameter that has neither `count` nor `step`.
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
                            });
                        }
                    }
                }
            }
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
        const KEYS: [&str; 6] = [
            "layers",
            "units",
            "dropout",
            "learning_rate",
            "activation",
            "optimizer",
        ];
        for (k, v) in &doc {
            if !KEYS.contains(&k.as_str()) {
                return Err(Error::space(
                    path,
                    k,
                    format!("unknown parameter; expected one of {}", KEYS.join(", ")),
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
                _ => unreachable!(),
            }
        }
        Ok(s)
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
