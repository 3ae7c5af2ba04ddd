//! The backend contract: a backend trains and evaluates a *cohort* — N independent trials moved in
//! lockstep through the same epoch, each launch/loop covering every active trial.
//!
//! Implementations: [`cpu::CpuBackend`] (the reference and the no-GPU engine, trials spread over
//! cores). The CUDA backend implements the same trait with one launch per op per step covering the
//! whole cohort (see `kernels/`).

pub mod any;
pub mod cpu;
pub mod cuda;
pub mod spread;

use crate::data::Dataset;
use crate::error::Result;
use crate::model::{TrialSpec, TrialState};

/// Refuses a trial whose input or output layer does not fit the data (every backend's `load`).
pub fn check_fits(backend: &str, spec: &TrialSpec, data: &Dataset) -> Result<()> {
    if spec.classes != data.n_classes() {
        return Err(crate::error::Error::backend(
            backend,
            format!(
                "trial {} has {} outputs, the data has {} classes",
                spec.id,
                spec.classes,
                data.n_classes()
            ),
        ));
    }
    if spec.inputs != data.dim() {
        return Err(crate::error::Error::backend(
            backend,
            format!(
                "trial {} expects {} inputs, the data has {} ({})",
                spec.id,
                spec.inputs,
                data.dim(),
                data.shape_label()
            ),
        ));
    }
    Ok(())
}

/// One trial's training statistics over one epoch (over the steps it took before diverging).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TrainStats {
    /// Σ over samples of the cross-entropy (dropout active), for the epoch's mean training loss.
    pub loss_sum: f64,
    /// Samples whose argmax matched the label during training.
    pub correct: u64,
    pub samples: u64,
    /// A non-finite loss was met; the trial stopped at that step.
    pub diverged: bool,
}

impl TrainStats {
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.samples.max(1) as f64
    }
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.samples.max(1) as f64
    }
}

/// One trial's loss and accuracy over a whole split, without dropout.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EvalStats {
    pub loss: f64,
    pub accuracy: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitId {
    Train,
    Val,
    Test,
}

/// What every backend provides.
///
/// Ownership: the backend owns the dataset (uploaded once, at construction) and, through
/// [`Backend::Cohort`], every buffer of a cohort: parameters, gradients, optimizer moments and
/// workspaces. Callers only hold host copies they asked for with [`Backend::state`].
///
/// Synchronisation: every method returns only when its work is complete and its results are on
/// the host; no method leaves work in flight. A backend may overlap trials *inside* a call
/// (threads on the CPU, one grid dimension per trial and streams on CUDA).
///
/// Determinism: for a given backend, the same cohort, batch order and states give bit-identical
/// results, whatever the number of threads. Which cohort a trial runs in does not change its
/// result: trials never interact.
pub trait Backend: Sync {
    /// A cohort's state as this backend keeps it (host vectors, device arenas).
    type Cohort: Send;

    /// Human-readable device name, e.g. `cpu (2 threads)`.
    fn name(&self) -> String;

    /// The splits this backend holds.
    fn data(&self) -> &Dataset;

    /// The most trials of this kind one cohort may hold (device memory); the trainer splits
    /// larger cohorts. Unbounded by default.
    fn max_cohort(&self, _specs: &[TrialSpec], _batch: usize) -> usize {
        usize::MAX
    }

    /// How many trials a local random, grid, Hyperband or BOHB study trains together when the
    /// user does not say (`--cohort-size`): 32 by default (the CPU's threads are busy at 32); a
    /// backend that is faster the more trials it holds (CUDA) asks for all of them, and
    /// [`Backend::max_cohort`] then bounds the cohort by memory.
    fn default_cohort(&self) -> usize {
        32
    }

    /// Takes ownership of a cohort's trials, each from its spec and current state (a fresh init or
    /// a checkpoint).
    fn load(&self, trials: Vec<(TrialSpec, TrialState)>) -> Result<Self::Cohort>;

    /// One epoch of training for every trial with `active[i]`: mini-batches of `batch` samples in
    /// `order` (indices into the training split; the last batch may be partial). `progress` is
    /// called with the number of steps finished since its last call, from any thread.
    fn train_epoch(
        &self,
        cohort: &mut Self::Cohort,
        order: &[u32],
        batch: usize,
        active: &[bool],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<TrainStats>>;

    /// Loss and accuracy of every trial with `active[i]` on a split (others get defaults).
    fn evaluate(
        &self,
        cohort: &Self::Cohort,
        split: SplitId,
        active: &[bool],
    ) -> Result<Vec<EvalStats>>;

    /// A host copy of trial `i`'s parameters, moments and counters.
    fn state(&self, cohort: &Self::Cohort, i: usize) -> Result<TrialState>;

    /// Replaces trial `i`'s state (restoring best weights, continuing from a checkpoint).
    fn set_state(&self, cohort: &mut Self::Cohort, i: usize, state: TrialState) -> Result<()>;
}
