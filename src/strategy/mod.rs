//! Search strategies. A strategy proposes runs and observes their outcomes; it never sees tensors,
//! so strategies test in milliseconds with a fake objective (tests/strategy.rs). Runs are
//! numbered by the strategy in proposal order, which makes a study replayable: `--resume` feeds
//! journaled outcomes back instead of training again.

pub mod asha;
pub mod grid;
pub mod hyperband;
pub mod random;
pub mod tpe;

use serde::{Deserialize, Serialize};

use crate::model::Hyperparams;
use crate::train::TrialStatus;

/// One trial run to train: from scratch, or continuing another run's checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    pub run_id: u64,
    pub trial_id: u64,
    pub hp: Hyperparams,
    /// Train until this many epochs in total.
    pub epochs: usize,
    /// Continue from the checkpoint of this earlier run (Hyperband promotion).
    pub resume_from: Option<u64>,
    /// Hyperband coordinates (iteration, bracket, round), if any.
    pub bracket: Option<BracketPos>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BracketPos {
    pub iteration: usize,
    pub bracket: usize,
    pub round: usize,
}

/// What a strategy learns about a finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub run_id: u64,
    pub trial_id: u64,
    /// Validation accuracy of the weights the run kept (higher is better).
    pub objective: f64,
    pub val_loss: f64,
    pub status: TrialStatus,
}

impl Observation {
    /// Whether the run may go on to a larger budget: a run that diverged or failed never does
    /// (Hyperband and ASHA alike): its kept weights come from before a blow-up that its
    /// settings would repeat.
    pub fn may_continue(&self) -> bool {
        !matches!(self.status, TrialStatus::Diverged | TrialStatus::Failed)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Proposal {
    /// Train these runs (at most the capacity asked for).
    Run(Vec<RunRequest>),
    /// Nothing to propose until outstanding runs are observed.
    Wait,
    /// The search is over.
    Done,
}

/// Planned work, for `--dry-run`, progress bars and ETAs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub runs: usize,
    /// Epochs trained in total if no run stops early.
    pub epochs: usize,
    /// Human-readable schedule lines.
    pub lines: Vec<String>,
}

pub trait Strategy {
    fn name(&self) -> &'static str;
    /// Up to `capacity` runs that can start now.
    fn propose(&mut self, capacity: usize) -> Proposal;
    fn observe(&mut self, outcomes: &[Observation]);
    fn plan(&self) -> Plan;
    /// Seconds the strategy itself has spent proposing and observing (model-based strategies
    /// report theirs, so a search can show that it is small next to training).
    fn own_seconds(&self) -> f64 {
        0.0
    }
}

/// A key that identifies a configuration (floats to 6 significant digits) for de-duplication.
pub fn config_key(hp: &Hyperparams) -> String {
    let mut k = format!(
        "{:?}|{}|{}|{:.5e}|{:.5e}",
        hp.hidden, hp.activation, hp.optimizer, hp.dropout, hp.learning_rate
    );
    // The knobs a configuration sets (none in the seed's space, whose keys stay as they were).
    if let Some(b) = hp.batch_size {
        k += &format!("|batch {b}");
    }
    for (name, v) in hp.optimizer_params() {
        k += &format!("|{name} {v:.5e}");
    }
    if !hp.schedule.is_constant() {
        let (a, b) = hp.schedule.params();
        k += &format!("|{} {a:.5e} {b:.5e}", hp.schedule.name());
    }
    k
}

/// Orders observations best first: higher objective, then lower val_loss, then lower run id.
pub fn rank(a: &Observation, b: &Observation) -> std::cmp::Ordering {
    // A NaN objective or loss (a run that diverged) ranks last, never first: total_cmp alone
    // would put a positive NaN above every number.
    let obj = |o: &Observation| {
        if o.objective.is_nan() {
            f64::NEG_INFINITY
        } else {
            o.objective
        }
    };
    let loss = |o: &Observation| {
        if o.val_loss.is_nan() {
            f64::INFINITY
        } else {
            o.val_loss
        }
    };
    obj(b)
        .total_cmp(&obj(a))
        .then(loss(a).total_cmp(&loss(b)))
        .then(a.run_id.cmp(&b.run_id))
}

/// A fixed list of independent runs (random and grid search): proposed in order, observed in any
/// order.
pub struct FixedRuns {
    name: &'static str,
    queue: std::collections::VecDeque<RunRequest>,
    outstanding: usize,
    total: usize,
    epochs: usize,
}

impl FixedRuns {
    pub fn new(name: &'static str, configs: Vec<Hyperparams>, epochs: usize) -> Self {
        let queue: std::collections::VecDeque<RunRequest> = configs
            .into_iter()
            .enumerate()
            .map(|(i, hp)| RunRequest {
                run_id: i as u64,
                trial_id: i as u64,
                hp,
                epochs,
                resume_from: None,
                bracket: None,
            })
            .collect();
        FixedRuns {
            name,
            total: queue.len(),
            queue,
            outstanding: 0,
            epochs,
        }
    }
}

impl Strategy for FixedRuns {
    fn name(&self) -> &'static str {
        self.name
    }
    fn propose(&mut self, capacity: usize) -> Proposal {
        if self.queue.is_empty() {
            return if self.outstanding == 0 {
                Proposal::Done
            } else {
                Proposal::Wait
            };
        }
        let n = capacity.min(self.queue.len());
        self.outstanding += n;
        Proposal::Run(self.queue.drain(..n).collect())
    }
    fn observe(&mut self, outcomes: &[Observation]) {
        self.outstanding -= outcomes.len().min(self.outstanding);
    }
    fn plan(&self) -> Plan {
        Plan {
            runs: self.total,
            epochs: self.total * self.epochs,
            lines: vec![format!(
                "{}: {} configurations x {} epochs (early stopping may end runs sooner)",
                self.name, self.total, self.epochs
            )],
        }
    }
}
