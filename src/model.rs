//! What one trial trains: an MLP spec (input → hidden Dense+activation+dropout … → Dense(10)), its
//! hyperparameters, the flat parameter layout every backend shares, and Glorot-uniform init from
//! the trial seed.

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::{derive_seed, stream};

/// The six activations of the seed's search space; ids are shared with `kernels/common.cuh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u32)]
pub enum Activation {
    Elu = 0,
    Celu = 1,
    Gelu = 2,
    Relu = 3,
    Selu = 4,
    Silu = 5,
}

impl Activation {
    pub const ALL: [Activation; 6] = [
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
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Activation::ALL
            .into_iter()
            .find(|a| a.name() == s.to_ascii_lowercase())
            .ok_or_else(|| format!("`{s}`: expected one of elu, celu, gelu, relu, selu, silu"))
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Optimizers with Keras 3 defaults: Adam (β1 0.9, β2 0.999, ε 1e-7), Lion (β1 0.9, β2 0.99).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u32)]
pub enum Optimizer {
    Adam = 0,
    Lion = 1,
}

impl Optimizer {
    pub const ALL: [Optimizer; 2] = [Optimizer::Adam, Optimizer::Lion];
    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Adam => "adam",
            Optimizer::Lion => "lion",
        }
    }
    /// (β1, β2, ε) as Keras 3 defines them (ε unused by Lion).
    pub fn betas(self) -> (f64, f64, f32) {
        match self {
            Optimizer::Adam => (0.9, 0.999, 1e-7),
            Optimizer::Lion => (0.9, 0.99, 0.0),
        }
    }
}

impl std::str::FromStr for Optimizer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Optimizer::ALL
            .into_iter()
            .find(|a| a.name() == s.to_ascii_lowercase())
            .ok_or_else(|| format!("`{s}`: expected adam or lion"))
    }
}

impl std::fmt::Display for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One configuration of the search space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hyperparams {
    /// Hidden layer widths, input side first (e.g. [64, 64, 64, 64]).
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub dropout: f32,
    pub learning_rate: f32,
    pub optimizer: Optimizer,
}

impl Hyperparams {
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
        Ok(())
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
    /// First moment (Adam m, Lion m).
    pub m: Vec<f32>,
    /// Second moment (Adam v; empty for Lion).
    pub v: Vec<f32>,
    /// Optimizer steps taken so far.
    pub step: u64,
    /// Epochs trained so far.
    pub epochs: usize,
}

impl TrialState {
    /// Glorot-uniform weights (limit √(6/(fan_in+fan_out))), zero biases, zero moments.
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
        let v = match spec.hp.optimizer {
            Optimizer::Adam => vec![0f32; lay.len],
            Optimizer::Lion => vec![],
        };
        TrialState {
            m: vec![0f32; lay.len],
            v,
            params,
            step: 0,
            epochs: 0,
        }
    }
}
