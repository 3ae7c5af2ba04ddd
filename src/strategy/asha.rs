//! ASHA, asynchronous successive halving (Li et al., MLSys 2020, Algorithm 2). Rungs k = 0..=K
//! train to ⌈R/η^(K−k)⌉ epochs, where R is `--max-epochs`, η `--factor`, and K the largest
//! number with R/η^K ≥ `--min-epochs` (R = 10, η = 3: rungs of 2, 4 and 10 epochs, Hyperband's
//! most exploratory bracket). Each job is chosen as the paper's `get_job`: from the top rung
//! down, the best run recorded at rung k that is in the top ⌊n_k/η⌋ of the n_k runs recorded
//! there and not yet promoted goes on to rung k+1, continuing from its checkpoint (weights and
//! optimizer state); when no run can be promoted, a new configuration starts at rung 0. Nothing
//! waits for a rung to fill.
//!
//! In one process the study trains `batch` jobs at a time (`--cohort-size`): each proposal is up
//! to `batch` jobs chosen one after another from what is recorded so far, so a smaller cohort
//! promotes sooner. A run that diverged or failed is never promoted. `--trials N` configurations
//! start in all; the search ends when they have and nothing more can be promoted.
//! Configurations are drawn from the seed (one stream per trial), distinct while the space
//! allows, so a study is deterministic and replays from its journal.

use std::collections::{HashMap, HashSet};

use rand::SeedableRng;

use super::{rank, Observation, Plan, Proposal, RunRequest, Strategy};
use crate::error::{Error, Result};
use crate::model::Hyperparams;
use crate::rng::{derive_seed, stream};
use crate::space::SearchSpace;

/// The epochs of each rung, lowest first.
pub fn rungs(max_epochs: usize, factor: usize, min_epochs: usize) -> Vec<usize> {
    let (r, eta) = (max_epochs as f64, factor as f64);
    let mut k: i32 = 0;
    while r / eta.powi(k + 1) >= min_epochs as f64 {
        k += 1;
    }
    (0..=k)
        .map(|i| (r / eta.powi(k - i)).ceil() as usize)
        .collect()
}

pub fn validate(max_epochs: usize, factor: usize, min_epochs: usize, trials: usize) -> Result<()> {
    if factor < 2 {
        return Err(Error::flag(
            "--factor",
            format!("{factor}: ASHA needs a factor of at least 2"),
        ));
    }
    if min_epochs < 1 {
        return Err(Error::flag("--min-epochs", "0: expected at least 1"));
    }
    if max_epochs < min_epochs {
        return Err(Error::flag(
            "--max-epochs",
            format!("{max_epochs}: expected at least --min-epochs ({min_epochs})"),
        ));
    }
    if trials == 0 {
        return Err(Error::flag("--trials", "0: expected at least 1"));
    }
    Ok(())
}

/// A run recorded at a rung.
#[derive(Debug, Clone)]
struct Recorded {
    obs: Observation,
    promoted: bool,
}

pub struct Asha {
    space: SearchSpace,
    seed: u64,
    trials: usize,
    batch: usize,
    rungs: Vec<usize>,
    max_epochs: usize,
    factor: usize,
    /// Runs recorded at each rung.
    recorded: Vec<Vec<Recorded>>,
    /// run id → rung of runs proposed and not yet observed.
    outstanding: HashMap<u64, usize>,
    /// trial id → configuration.
    configs: HashMap<u64, Hyperparams>,
    seen: HashSet<String>,
    next_trial: u64,
    next_run: u64,
}

impl Asha {
    pub fn new(
        space: &SearchSpace,
        max_epochs: usize,
        factor: usize,
        min_epochs: usize,
        trials: usize,
        batch: usize,
        seed: u64,
    ) -> Result<Asha> {
        validate(max_epochs, factor, min_epochs, trials)?;
        if batch == 0 {
            return Err(Error::flag("--cohort-size", "0: expected at least 1"));
        }
        let rungs = rungs(max_epochs, factor, min_epochs);
        Ok(Asha {
            space: space.clone(),
            seed,
            trials,
            batch,
            recorded: vec![vec![]; rungs.len()],
            rungs,
            max_epochs,
            factor,
            outstanding: HashMap::new(),
            configs: HashMap::new(),
            seen: HashSet::new(),
            next_trial: 0,
            next_run: 0,
        })
    }

    /// The best run that may leave rung k: in the top ⌊n/η⌋ of rung k, not promoted, not
    /// diverged or failed. Returns its index in `recorded[k]`.
    fn promotable(&self, k: usize) -> Option<usize> {
        let rung = &self.recorded[k];
        let mut order: Vec<usize> = (0..rung.len()).collect();
        order.sort_by(|&a, &b| rank(&rung[a].obs, &rung[b].obs));
        order
            .into_iter()
            .take(rung.len() / self.factor)
            .find(|&i| !rung[i].promoted && rung[i].obs.may_continue())
    }

    /// The paper's `get_job`, or None when every configuration has started and no run can be
    /// promoted.
    fn job(&mut self) -> Option<RunRequest> {
        let top = self.rungs.len() - 1;
        for k in (0..top).rev() {
            if let Some(i) = self.promotable(k) {
                let r = &mut self.recorded[k][i];
                r.promoted = true;
                let (trial, from) = (r.obs.trial_id, r.obs.run_id);
                let hp = self.configs[&trial].clone();
                return Some(self.request(trial, hp, k + 1, Some(from)));
            }
        }
        if (self.next_trial as usize) < self.trials {
            let trial = self.next_trial;
            self.next_trial += 1;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(derive_seed(
                self.seed,
                stream::PROPOSE,
                trial,
            ));
            let space = &self.space;
            let (hp, _) = super::tpe::draw_new(&mut self.seen, 1000, || space.sample(&mut rng));
            self.configs.insert(trial, hp.clone());
            return Some(self.request(trial, hp, 0, None));
        }
        None
    }

    fn request(
        &mut self,
        trial: u64,
        hp: Hyperparams,
        rung: usize,
        from: Option<u64>,
    ) -> RunRequest {
        let id = self.next_run;
        self.next_run += 1;
        self.outstanding.insert(id, rung);
        RunRequest {
            run_id: id,
            trial_id: trial,
            hp,
            epochs: self.rungs[rung],
            resume_from: from,
            bracket: None,
        }
    }
}

impl Strategy for Asha {
    fn name(&self) -> &'static str {
        "asha"
    }

    fn propose(&mut self, capacity: usize) -> Proposal {
        // Each job is chosen from what is recorded when it is asked for, whatever is still out
        // (the paper's get_job for a free worker): one process asks after each cohort is in, so
        // its cohorts see every earlier result; workers of a shared study ask whenever they are
        // free, and never wait for each other.
        let mut runs = vec![];
        while runs.len() < self.batch.min(capacity) {
            match self.job() {
                Some(r) => runs.push(r),
                None => break,
            }
        }
        match (runs.is_empty(), self.outstanding.is_empty()) {
            (false, _) => Proposal::Run(runs),
            // Nothing to start now, but results still out may promote someone.
            (true, false) => Proposal::Wait,
            (true, true) => Proposal::Done,
        }
    }

    fn observe(&mut self, outcomes: &[Observation]) {
        for o in outcomes {
            if let Some(rung) = self.outstanding.remove(&o.run_id) {
                self.recorded[rung].push(Recorded {
                    obs: o.clone(),
                    promoted: false,
                });
            }
        }
    }

    fn plan(&self) -> Plan {
        // At most: every configuration at rung 0, and ⌊n/η⌋ of each rung promoted to the next.
        let mut n = self.trials;
        let mut runs = 0;
        let mut epochs = 0;
        let mut prev = 0;
        for &e in &self.rungs {
            runs += n;
            epochs += n * (e - prev);
            prev = e;
            n /= self.factor;
        }
        Plan {
            runs,
            epochs,
            lines: vec![format!(
                "asha: {} configurations, rungs of {:?} epochs (max {}, factor {}), {} job(s) at a time; at most {} runs, {} epochs",
                self.trials, self.rungs, self.max_epochs, self.factor, self.batch, runs, epochs
            )],
        }
    }
}
