//! Learning-rate schedules, per trial and per optimizer step, as Keras 3's schedules compute them
//! (`keras.optimizers.schedules`): the rate at a step is a function of the trial's step count
//! alone, so a Hyperband promotion that continues from a checkpoint continues its schedule where
//! it was. Lengths are given in epochs (a trial's batch size fixes its steps per epoch `S`) and
//! become steps as round(epochs · S).
//!
//! - `constant`: lr.
//! - `cosine` (`CosineDecay` with `warmup_target = lr`, `initial_learning_rate = 0`, `alpha = 0`):
//!   lr·t/W during the W warmup steps, then lr·½(1 + cos(π·min(t − W, D)/D)) with
//!   D = round(decay_epochs·S) − W, so the rate reaches 0 at `decay_epochs` (the study's epochs
//!   when the space leaves it out).
//! - `exponential` (`ExponentialDecay`): lr·rate^(t/N), N = round(decay_epochs·S).
//! - `step` (`ExponentialDecay(staircase=True)`): lr·rate^⌊t/N⌋.
//!
//! A trial continued from a checkpoint (a Hyperband/BOHB/ASHA promotion) continues from the
//! checkpoint's step count: the checkpoint holds the best epoch's weights, moments and step, as
//! Keras' `restore_best_weights` would leave the optimizer, so a promoted trial whose best epoch
//! was not its last resumes its schedule from that epoch's step.
//!
//! `t` is the 0-based iteration (Keras evaluates the schedule at `optimizer.iterations` before it
//! increments). Adam and AdamW take α = lr_t·√(1 − β2ᵗ⁺¹)/(1 − β1ᵗ⁺¹). Everything is computed in
//! f64 and rounded once to f32. Device twin: `ffc_rate` in `kernels/optimizer.cuh`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Hyperparams;

/// A trial's learning-rate schedule and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Schedule {
    #[default]
    Constant,
    Cosine {
        decay_epochs: f64,
        #[serde(default)]
        warmup_epochs: f64,
    },
    Exponential {
        decay_rate: f64,
        decay_epochs: f64,
    },
    Step {
        decay_rate: f64,
        decay_epochs: f64,
    },
}

/// Defaults of a schedule's parameters when the space or the flags leave them out.
pub const DEFAULT_EXPONENTIAL_RATE: f64 = 0.9;
pub const DEFAULT_STEP_RATE: f64 = 0.5;
pub const DEFAULT_STEP_EPOCHS: f64 = 3.0;

impl Schedule {
    pub const NAMES: [&'static str; 4] = ["constant", "cosine", "exponential", "step"];

    pub fn name(&self) -> &'static str {
        Self::NAMES[self.id() as usize]
    }

    /// The id `kernels/optimizer.cuh` switches on.
    pub fn id(&self) -> u32 {
        match self {
            Schedule::Constant => 0,
            Schedule::Cosine { .. } => 1,
            Schedule::Exponential { .. } => 2,
            Schedule::Step { .. } => 3,
        }
    }

    pub fn is_constant(&self) -> bool {
        *self == Schedule::Constant
    }

    /// The schedule `name` with its parameters: each left out takes its default
    /// (`decay_epochs` of cosine: `horizon`, the epochs a trial may train).
    pub fn build(
        name: &str,
        decay_epochs: Option<f64>,
        warmup_epochs: Option<f64>,
        decay_rate: Option<f64>,
        horizon: usize,
    ) -> std::result::Result<Schedule, String> {
        Ok(match name {
            "constant" => Schedule::Constant,
            "cosine" => Schedule::Cosine {
                decay_epochs: decay_epochs.unwrap_or(horizon.max(1) as f64),
                warmup_epochs: warmup_epochs.unwrap_or(0.0),
            },
            "exponential" => Schedule::Exponential {
                decay_rate: decay_rate.unwrap_or(DEFAULT_EXPONENTIAL_RATE),
                decay_epochs: decay_epochs.unwrap_or(1.0),
            },
            "step" => Schedule::Step {
                decay_rate: decay_rate.unwrap_or(DEFAULT_STEP_RATE),
                decay_epochs: decay_epochs.unwrap_or(DEFAULT_STEP_EPOCHS),
            },
            other => {
                return Err(format!(
                    "`{other}`: expected one of {}",
                    Self::NAMES.join(", ")
                ))
            }
        })
    }

    /// The two parameters as the device slot carries them (`rate_a`, `rate_b`).
    pub fn params(&self) -> (f64, f64) {
        match *self {
            Schedule::Constant => (0.0, 0.0),
            Schedule::Cosine {
                decay_epochs,
                warmup_epochs,
            } => (warmup_epochs, decay_epochs),
            Schedule::Exponential {
                decay_rate,
                decay_epochs,
            }
            | Schedule::Step {
                decay_rate,
                decay_epochs,
            } => (decay_rate, decay_epochs),
        }
    }

    pub fn warmup_epochs(&self) -> Option<f64> {
        match *self {
            Schedule::Cosine { warmup_epochs, .. } => Some(warmup_epochs),
            _ => None,
        }
    }
    pub fn decay_epochs(&self) -> Option<f64> {
        match *self {
            Schedule::Constant => None,
            _ => Some(self.params().1),
        }
    }
    pub fn decay_rate(&self) -> Option<f64> {
        match *self {
            Schedule::Exponential { decay_rate, .. } | Schedule::Step { decay_rate, .. } => {
                Some(decay_rate)
            }
            _ => None,
        }
    }

    /// Refuses parameters no schedule can run with, naming `flag`.
    pub fn validate(&self, flag: &str) -> Result<()> {
        let bad = |what: String| Err(Error::flag(flag, what));
        match *self {
            Schedule::Constant => Ok(()),
            Schedule::Cosine {
                decay_epochs,
                warmup_epochs,
            } => {
                if !(decay_epochs > 0.0 && decay_epochs.is_finite()) {
                    return bad(format!("cosine: decay_epochs {decay_epochs}: expected > 0"));
                }
                if !(0.0..decay_epochs).contains(&warmup_epochs) {
                    return bad(format!(
                        "cosine: warmup_epochs {warmup_epochs}: expected 0 <= warmup < decay_epochs ({decay_epochs})"
                    ));
                }
                Ok(())
            }
            Schedule::Exponential {
                decay_rate,
                decay_epochs,
            }
            | Schedule::Step {
                decay_rate,
                decay_epochs,
            } => {
                if !(decay_rate > 0.0 && decay_rate <= 1.0) {
                    return bad(format!(
                        "{}: decay_rate {decay_rate}: expected in (0, 1]",
                        self.name()
                    ));
                }
                if !(decay_epochs > 0.0 && decay_epochs.is_finite()) {
                    return bad(format!(
                        "{}: decay_epochs {decay_epochs}: expected > 0",
                        self.name()
                    ));
                }
                Ok(())
            }
        }
    }

    /// The factor on the base learning rate at 0-based iteration `t`, epochs of `steps` steps.
    pub fn factor(&self, t: u64, steps: usize) -> f64 {
        let s = steps.max(1) as f64;
        let t = t as f64;
        match *self {
            Schedule::Constant => 1.0,
            Schedule::Cosine {
                decay_epochs,
                warmup_epochs,
            } => {
                let w = (warmup_epochs * s).round();
                let d = ((decay_epochs * s).round() - w).max(1.0);
                if t < w {
                    t / w
                } else {
                    0.5 * (1.0 + (std::f64::consts::PI * (t - w).min(d) / d).cos())
                }
            }
            Schedule::Exponential {
                decay_rate,
                decay_epochs,
            } => decay_rate.powf(t / (decay_epochs * s).round().max(1.0)),
            Schedule::Step {
                decay_rate,
                decay_epochs,
            } => decay_rate.powf((t / (decay_epochs * s).round().max(1.0)).floor()),
        }
    }
}

/// The two rates of one optimizer step: the scheduled learning rate, and the step size the update
/// multiplies by (Adam's bias-corrected α; the learning rate for every other optimizer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub lr: f32,
    pub alpha: f32,
}

/// The rates of `hp`'s optimizer at 0-based iteration `t` (epochs of `steps` steps).
pub fn rate(hp: &Hyperparams, t: u64, steps: usize) -> Rate {
    let lr = hp.learning_rate as f64 * hp.schedule.factor(t, steps);
    let alpha = if hp.optimizer.is_adam() {
        let (b1, b2) = hp.betas();
        let k = (t + 1) as f64;
        lr * (1.0 - b2.powf(k)).sqrt() / (1.0 - b1.powf(k))
    } else {
        lr
    };
    Rate {
        lr: lr as f32,
        alpha: alpha as f32,
    }
}
