//! What one trial trains: an MLP spec (input → hidden Dense+activation+dropout … → Dense(10)), its
//! hyperparameters, the flat parameter layout every backend shares, and Glorot-uniform init from
//! the trial seed.

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::{derive_seed, stream};
pub use crate::schedule::Schedule;

/// Activations: the seed's six, then five more (ids shared with `kernels/activation.cuh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
pub enum Activation {
    Elu = 0,
    Celu = 1,
    Gelu = 2,
    Relu = 3,
    Selu = 4,
    Silu = 5,
    Tanh = 6,
    Sigmoid = 7,
    /// max(z, α·z) with α = [`LEAKY_RELU_SLOPE`] (`keras.activations.leaky_relu`'s default).
    LeakyRelu = 8,
    Softplus = 9,
    /// z·tanh(softplus(z)) (Misra, 2019).
    Mish = 10,
}

/// The negative slope of `leaky_relu` (Keras 3's `keras.activations.leaky_relu` default).
pub const LEAKY_RELU_SLOPE: f64 = 0.2;

impl Activation {
    /// Every activation, in id order.
    pub const ALL: [Activation; 11] = [
        Activation::Elu,
        Activation::Celu,
        Activation::Gelu,
        Activation::Relu,
        Activation::Selu,
        Activation::Silu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::LeakyRelu,
        Activation::Softplus,
        Activation::Mish,
    ];
    /// The seed notebook's six (the default space).
    pub const SEED: [Activation; 6] = [
        Activation::Elu,
        Activation::Celu,
        Activation::Gelu,
        Activation::Relu,
        Activation::Selu,
        Activation::Silu,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Activation::Elu => "elu",
            Activation::Celu => "celu",
            Activation::Gelu => "gelu",
            Activation::Relu => "relu",
            Activation::Selu => "selu",
            Activation::Silu => "silu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Softplus => "softplus",
            Activation::Mish => "mish",
        }
    }
    /// f(0) = 0: a padded unit (zero weights, zero bias) stays zero without being masked.
    pub fn maps_zero_to_zero(self) -> bool {
        !matches!(self, Activation::Sigmoid | Activation::Softplus)
    }
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Activation::ALL
            .into_iter()
            .find(|a| a.name() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                let names: Vec<&str> = Activation::ALL.iter().map(|a| a.name()).collect();
                format!("`{s}`: expected one of {}", names.join(", "))
            })
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Optimizers, each as Keras 3 computes it and with its defaults (ids shared with
/// `kernels/optimizer.cuh`): Adam (β1 0.9, β2 0.999, ε 1e-7), Lion (β1 0.9, β2 0.99), SGD
/// (momentum 0, Nesterov off), RMSprop (ρ 0.9, momentum 0, ε 1e-7), AdamW (Adam with decoupled
/// weight decay 0.004), Adagrad (accumulators start at 0.1, ε 1e-7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u32)]
pub enum Optimizer {
    Adam = 0,
    Lion = 1,
    Sgd = 2,
    Rmsprop = 3,
    Adamw = 4,
    Adagrad = 5,
}

/// ε of Adam, AdamW, RMSprop and Adagrad (Keras 3's default for each).
pub const EPSILON: f32 = 1e-7;
/// Where Adagrad's accumulators start (Keras' `initial_accumulator_value`).
pub const ADAGRAD_INITIAL: f32 = 0.1;

impl Optimizer {
    pub const ALL: [Optimizer; 6] = [
        Optimizer::Adam,
        Optimizer::Lion,
        Optimizer::Sgd,
        Optimizer::Rmsprop,
        Optimizer::Adamw,
        Optimizer::Adagrad,
    ];
    /// The seed notebook's two (the default space).
    pub const SEED: [Optimizer; 2] = [Optimizer::Adam, Optimizer::Lion];
    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Adam => "adam",
            Optimizer::Lion => "lion",
            Optimizer::Sgd => "sgd",
            Optimizer::Rmsprop => "rmsprop",
            Optimizer::Adamw => "adamw",
            Optimizer::Adagrad => "adagrad",
        }
    }
    /// (β1, β2) as Keras 3 defines them, for the optimizers that have betas.
    pub fn default_betas(self) -> Option<(f64, f64)> {
        match self {
            Optimizer::Adam | Optimizer::Adamw => Some((0.9, 0.999)),
            Optimizer::Lion => Some((0.9, 0.99)),
            _ => None,
        }
    }
    /// Whether this optimizer has the conditional parameter `name` (beta_1, beta_2, momentum,
    /// nesterov, rho; weight_decay belongs to every one).
    pub fn has(self, name: &str) -> bool {
        match name {
            "beta_1" | "beta_2" => self.default_betas().is_some(),
            "momentum" => matches!(self, Optimizer::Sgd | Optimizer::Rmsprop),
            "nesterov" => self == Optimizer::Sgd,
            "rho" => self == Optimizer::Rmsprop,
            "weight_decay" => true,
            _ => false,
        }
    }
    /// The second moment buffer `v` (Adam, AdamW: v; RMSprop: the mean square).
    pub fn has_v(self) -> bool {
        matches!(
            self,
            Optimizer::Adam | Optimizer::Adamw | Optimizer::Rmsprop
        )
    }
    /// Adam's bias-corrected step size α (Adam and AdamW).
    pub fn is_adam(self) -> bool {
        matches!(self, Optimizer::Adam | Optimizer::Adamw)
    }
}

impl std::str::FromStr for Optimizer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Optimizer::ALL
            .into_iter()
            .find(|a| a.name() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                format!("`{s}`: expected one of adam, lion, sgd, rmsprop, adamw, adagrad")
            })
    }
}

impl std::fmt::Display for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One configuration of the search space. The optimizer's parameters are conditional: each is
/// `None` (the optimizer's Keras default) or set only for an optimizer that has it
/// ([`Optimizer::has`]); [`Hyperparams::validate`] refuses the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hyperparams {
    /// Hidden layer widths, input side first (e.g. [64, 64, 64, 64]).
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub dropout: f32,
    pub learning_rate: f32,
    pub optimizer: Optimizer,
    /// This trial's mini-batch size; `None`: the study's (or `train`'s) `--batch-size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// β1 of Adam, AdamW and Lion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta_1: Option<f64>,
    /// β2 of Adam, AdamW and Lion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta_2: Option<f64>,
    /// Momentum of SGD and RMSprop (Keras default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
    /// Nesterov momentum (SGD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nesterov: Option<bool>,
    /// ρ of RMSprop (Keras default 0.9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    /// AdamW: decoupled decay p −= lr_t·wd·p before the step (Keras, default 0.004); every other
    /// optimizer: L2, wd·p added to the gradient (PyTorch's `weight_decay`; default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    #[serde(default, skip_serializing_if = "Schedule::is_constant")]
    pub schedule: Schedule,
}

impl Default for Hyperparams {
    /// `fastfc train`'s defaults: two hidden layers of 64, relu, Adam at 1e-3, no dropout.
    fn default() -> Self {
        Hyperparams {
            hidden: vec![64, 64],
            activation: Activation::Relu,
            dropout: 0.0,
            learning_rate: 1e-3,
            optimizer: Optimizer::Adam,
            batch_size: None,
            beta_1: None,
            beta_2: None,
            momentum: None,
            nesterov: None,
            rho: None,
            weight_decay: None,
            schedule: Schedule::Constant,
        }
    }
}

/// Keras' default decoupled weight decay of AdamW.
pub const ADAMW_WEIGHT_DECAY: f64 = 0.004;

impl Hyperparams {
    /// (β1, β2) the optimizer runs with (Keras' defaults where not set; (0, 0) without betas).
    pub fn betas(&self) -> (f64, f64) {
        let (d1, d2) = self.optimizer.default_betas().unwrap_or((0.0, 0.0));
        (self.beta_1.unwrap_or(d1), self.beta_2.unwrap_or(d2))
    }
    pub fn momentum(&self) -> f64 {
        self.momentum.unwrap_or(0.0)
    }
    pub fn nesterov(&self) -> bool {
        self.nesterov.unwrap_or(false)
    }
    pub fn rho(&self) -> f64 {
        self.rho.unwrap_or(0.9)
    }
    pub fn weight_decay(&self) -> f64 {
        self.weight_decay.unwrap_or(match self.optimizer {
            Optimizer::Adamw => ADAMW_WEIGHT_DECAY,
            _ => 0.0,
        })
    }
    /// The batch size this trial trains with, given the study's.
    pub fn batch(&self, study: usize) -> usize {
        self.batch_size.unwrap_or(study)
    }

    /// The conditional optimizer parameters that are set, as (name, value) (CSV, Optuna, report).
    pub fn optimizer_params(&self) -> Vec<(&'static str, f64)> {
        let mut v = vec![];
        for (name, x) in [
            ("beta_1", self.beta_1),
            ("beta_2", self.beta_2),
            ("momentum", self.momentum),
            ("nesterov", self.nesterov.map(|b| b as u8 as f64)),
            ("rho", self.rho),
            ("weight_decay", self.weight_decay),
        ] {
            if let Some(x) = x {
                v.push((name, x));
            }
        }
        v
    }

    pub fn validate(&self) -> Result<()> {
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err(Error::flag(
                "--hidden",
                format!(
                    "{:?}: expected one or more positive widths, e.g. 64,64",
                    self.hidden
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::flag(
                "--dropout",
                format!("{}: expected a rate in [0, 1)", self.dropout),
            ));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::flag(
                "--lr",
                format!("{}: expected a positive learning rate", self.learning_rate),
            ));
        }
        if self.batch_size == Some(0) {
            return Err(Error::flag("--batch-size", "0: expected at least 1"));
        }
        let opt = self.optimizer;
        let set = [
            ("beta_1", self.beta_1.is_some()),
            ("beta_2", self.beta_2.is_some()),
            ("momentum", self.momentum.is_some()),
            ("nesterov", self.nesterov.is_some()),
            ("rho", self.rho.is_some()),
        ];
        for (name, is_set) in set {
            if is_set && !opt.has(name) {
                let owners: Vec<&str> = Optimizer::ALL
                    .iter()
                    .filter(|o| o.has(name))
                    .map(|o| o.name())
                    .collect();
                return Err(Error::flag(
                    format!("--{}", name.replace('_', "-")),
                    format!(
                        "{} has no {name} (it belongs to {})",
                        opt.name(),
                        owners.join(", ")
                    ),
                ));
            }
        }
        for (name, x) in [
            ("beta_1", self.beta_1),
            ("beta_2", self.beta_2),
            ("momentum", self.momentum),
            ("rho", self.rho),
        ] {
            if let Some(x) = x {
                if !(0.0..1.0).contains(&x) {
                    return Err(Error::flag(
                        format!("--{}", name.replace('_', "-")),
                        format!("{x}: expected a value in [0, 1)"),
                    ));
                }
            }
        }
        if let Some(w) = self.weight_decay {
            if !(w >= 0.0 && w.is_finite()) {
                return Err(Error::flag(
                    "--weight-decay",
                    format!("{w}: expected a finite value >= 0"),
                ));
            }
        }
        self.schedule.validate("--schedule")
    }

    /// `64x4`, `32-48`: short label for tables.
    pub fn hidden_label(&self) -> String {
        let w = &self.hidden;
        if w.iter().all(|&x| x == w[0]) {
            format!("{}x{}", w[0], w.len())
        } else {
            w.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("-")
        }
    }
}

/// A trial as a backend sees it: the network's shape, its hyperparameters and its seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialSpec {
    /// Study-wide trial id (stable across resume; names the trial in results).
    pub id: u64,
    pub hp: Hyperparams,
    /// Seed for Glorot init and dropout masks, derived from (study seed, trial id).
    pub seed: u64,
    pub inputs: usize,
    pub classes: usize,
}

impl TrialSpec {
    pub fn new(id: u64, hp: Hyperparams, study_seed: u64, inputs: usize, classes: usize) -> Self {
        TrialSpec {
            id,
            hp,
            seed: derive_seed(study_seed, stream::INIT, id),
            inputs,
            classes,
        }
    }
    /// Layer widths including input and output: [in, h1, …, hk, classes].
    pub fn dims(&self) -> Vec<usize> {
        let mut d = vec![self.inputs];
        d.extend(&self.hp.hidden);
        d.push(self.classes);
        d
    }
    pub fn layout(&self) -> Layout {
        Layout::new(&self.dims())
    }
    /// The 32-bit key of this trial's dropout masks.
    pub fn dropout_seed(&self) -> u32 {
        derive_seed(self.seed, stream::DROPOUT, 0) as u32
    }
}

/// Where layer l's weight (out, in) row-major — PyTorch's nn.Linear layout — and bias (out) sit
/// in a trial's flat parameter vector: [W0, b0, W1, b1, …, WL, bL].
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub dims: Vec<usize>,
    pub w_off: Vec<usize>,
    pub b_off: Vec<usize>,
    pub len: usize,
}

impl Layout {
    pub fn new(dims: &[usize]) -> Self {
        let mut w_off = vec![];
        let mut b_off = vec![];
        let mut at = 0;
        for l in 0..dims.len() - 1 {
            w_off.push(at);
            at += dims[l] * dims[l + 1];
            b_off.push(at);
            at += dims[l + 1];
        }
        Layout {
            dims: dims.to_vec(),
            w_off,
            b_off,
            len: at,
        }
    }
    /// Number of Dense layers (hidden + output).
    pub fn layers(&self) -> usize {
        self.dims.len() - 1
    }
    pub fn w_range(&self, l: usize) -> std::ops::Range<usize> {
        self.w_off[l]..self.b_off[l]
    }
    pub fn b_range(&self, l: usize) -> std::ops::Range<usize> {
        self.b_off[l]..self.b_off[l] + self.dims[l + 1]
    }
}

/// Everything needed to continue training a trial: parameters, optimizer moments and step count.
/// This is also the checkpoint a promoted Hyperband trial resumes from.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialState {
    pub params: Vec<f32>,
    /// First buffer: Adam/AdamW/Lion m, SGD/RMSprop momentum, Adagrad's accumulator.
    pub m: Vec<f32>,
    /// Second moment (Adam/AdamW v, RMSprop's mean square; empty for the others).
    pub v: Vec<f32>,
    /// Optimizer steps taken so far.
    pub step: u64,
    /// Epochs trained so far.
    pub epochs: usize,
}

impl TrialState {
    /// Glorot-uniform weights (limit √(6/(fan_in+fan_out))), zero biases, zero moments (Adagrad's
    /// accumulators at 0.1).
    pub fn init(spec: &TrialSpec) -> Self {
        let lay = spec.layout();
        let mut params = vec![0f32; lay.len];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(spec.seed);
        for l in 0..lay.layers() {
            let (fi, fo) = (lay.dims[l], lay.dims[l + 1]);
            let lim = (6.0 / (fi + fo) as f64).sqrt() as f32;
            for w in &mut params[lay.w_range(l)] {
                *w = rng.random_range(-lim..lim);
            }
        }
        let opt = spec.hp.optimizer;
        let v = if opt.has_v() {
            vec![0f32; lay.len]
        } else {
            vec![]
        };
        let m0 = if opt == Optimizer::Adagrad {
            ADAGRAD_INITIAL
        } else {
            0.0
        };
        TrialState {
            m: vec![m0; lay.len],
            v,
            params,
            step: 0,
            epochs: 0,
        }
    }
}
