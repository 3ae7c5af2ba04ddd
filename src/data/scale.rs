//! Feature scaling, fitted on the training split only and applied to every split (and, from the
//! stored statistics, to whatever `fastfc predict` is given). `standard` is scikit-learn's
//! `StandardScaler` (mean and population standard deviation, a constant feature divided by 1);
//! `minmax` its `MinMaxScaler` to [0, 1] (a constant feature divided by 1).

use serde::{Deserialize, Serialize};

/// `--scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    None,
    Standard,
    Minmax,
}

impl Scale {
    pub fn name(self) -> &'static str {
        match self {
            Scale::None => "none",
            Scale::Standard => "standard",
            Scale::Minmax => "minmax",
        }
    }
}

impl std::str::FromStr for Scale {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Scale::None),
            "standard" => Ok(Scale::Standard),
            "minmax" => Ok(Scale::Minmax),
            _ => Err(format!("`{s}`: expected standard, minmax or none")),
        }
    }
}

/// A fitted scaling: x' = (x − shift) / div, per feature.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Scaler {
    #[default]
    None,
    /// shift = the training mean, div = the training standard deviation (1 where it is 0).
    Standard { shift: Vec<f32>, div: Vec<f32> },
    /// shift = the training minimum, div = max − min (1 where it is 0).
    Minmax { shift: Vec<f32>, div: Vec<f32> },
}

impl Scaler {
    pub fn kind(&self) -> Scale {
        match self {
            Scaler::None => Scale::None,
            Scaler::Standard { .. } => Scale::Standard,
            Scaler::Minmax { .. } => Scale::Minmax,
        }
    }

    /// Fits `kind` on `x` (n rows of `dim`), in f64.
    pub fn fit(kind: Scale, x: &[f32], dim: usize) -> Scaler {
        let n = x.len() / dim.max(1);
        let or_one = |d: f64| if d > 0.0 && d.is_finite() { d } else { 1.0 };
        match kind {
            Scale::None => Scaler::None,
            Scale::Standard => {
                let mut mean = vec![0f64; dim];
                for r in x.chunks_exact(dim) {
                    for (m, &v) in mean.iter_mut().zip(r) {
                        *m += v as f64;
                    }
                }
                mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
                let mut var = vec![0f64; dim];
                for r in x.chunks_exact(dim) {
                    for ((s, &m), &v) in var.iter_mut().zip(&mean).zip(r) {
                        *s += (v as f64 - m) * (v as f64 - m);
                    }
                }
                Scaler::Standard {
                    shift: mean.iter().map(|&m| m as f32).collect(),
                    div: var
                        .iter()
                        .map(|&s| or_one((s / n.max(1) as f64).sqrt()) as f32)
                        .collect(),
                }
            }
            Scale::Minmax => {
                let mut lo = vec![f64::INFINITY; dim];
                let mut hi = vec![f64::NEG_INFINITY; dim];
                for r in x.chunks_exact(dim) {
                    for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(r) {
                        *l = l.min(v as f64);
                        *h = h.max(v as f64);
                    }
                }
                Scaler::Minmax {
                    shift: lo
                        .iter()
                        .map(|&l| if l.is_finite() { l as f32 } else { 0.0 })
                        .collect(),
                    div: lo
                        .iter()
                        .zip(&hi)
                        .map(|(&l, &h)| or_one(h - l) as f32)
                        .collect(),
                }
            }
        }
    }

    /// The number of features it was fitted on (None for no scaling).
    pub fn dim(&self) -> Option<usize> {
        match self {
            Scaler::None => None,
            Scaler::Standard { shift, .. } | Scaler::Minmax { shift, .. } => Some(shift.len()),
        }
    }

    /// Scales rows of `x` in place.
    pub fn apply(&self, x: &mut [f32]) {
        use rayon::prelude::*;
        let (shift, div) = match self {
            Scaler::None => return,
            Scaler::Standard { shift, div } | Scaler::Minmax { shift, div } => (shift, div),
        };
        let dim = shift.len();
        x.par_chunks_mut(dim * 256).for_each(|block| {
            for r in block.chunks_exact_mut(dim) {
                for ((v, &s), &d) in r.iter_mut().zip(shift).zip(div) {
                    *v = (*v - s) / d;
                }
            }
        });
    }
}
