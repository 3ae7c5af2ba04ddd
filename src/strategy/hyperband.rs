//! Hyperband (Li et al., JMLR 2018) with Keras Tuner's bracket sizes: for max_epochs R and factor
//! η there are B = ⌈number of divisions of R by η while ≥ 1⌉ brackets, b = B−1 … 0. Bracket b
//! has rounds r = 0..=b; round r trains ⌈(⌈1 + log_η R⌉ / (b+1))·η^(b−r)⌉ trials to
//! ⌈R/η^(b−r)⌉ epochs. After each round the best trials (by validation accuracy) are promoted
//! and continue from their checkpoints — never from scratch. R = 10, η = 3 gives rounds of
//! 12→4→2, 6→2 and 4: 30 runs and 120 epochs per iteration.
//!
//! All brackets of all iterations are independent, so their first rounds are proposed together
//! (one big cohort); promotions follow as rounds complete. Trial ids and configurations are
//! fixed at construction from the seed, so the order of execution never changes a result.
//!
//! BOHB (Falkner et al., ICML 2018) is the same schedule with model-based configurations
//! ([`Hyperband::bohb`]): a bracket's configurations are drawn when it starts, at most one new
//! bracket per proposal (so each starts with what the earlier ones measured). A fraction
//! `random_fraction` of them is drawn at random; the rest come from TPE ([`super::tpe`]) fitted
//! on the observations of the largest budget (epochs) that has at least n_min + 2 of them, with
//! n_min = the number of parameters + 1 and BOHB's good/bad split. Until some budget has that
//! many, configurations are random.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use super::tpe::{self, Dims, Split, TpeSettings};
use super::{config_key, rank, BracketPos, Observation, Plan, Proposal, RunRequest, Strategy};
use crate::error::{Error, Result};
use crate::model::Hyperparams;
use crate::rng::{derive_seed, stream};
use crate::space::SearchSpace;

/// One round of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub iteration: usize,
    pub bracket: usize,
    pub round: usize,
    pub trials: usize,
    /// Epochs each trial has after this round.
    pub epochs: usize,
    /// Epochs each trial trains in this round (continuing from the previous round).
    pub new_epochs: usize,
}

/// Keras Tuner's number of brackets: divide R by η until it drops below 1.
pub fn num_brackets(max_epochs: usize, factor: usize) -> usize {
    let mut e = max_epochs as f64;
    let mut n = 0;
    while e >= 1.0 {
        e /= factor as f64;
        n += 1;
    }
    n
}

pub fn round_size(max_epochs: usize, factor: usize, bracket: usize, round: usize) -> usize {
    let end0 = (1.0 + (max_epochs as f64).ln() / (factor as f64).ln()).ceil();
    let end = end0 / (bracket as f64 + 1.0);
    (end * (factor as f64).powi((bracket - round) as i32)).ceil() as usize
}

pub fn round_epochs(max_epochs: usize, factor: usize, bracket: usize, round: usize) -> usize {
    (max_epochs as f64 / (factor as f64).powi((bracket - round) as i32)).ceil() as usize
}

/// The whole schedule, in proposal order (iteration, bracket from most exploratory, round).
pub fn schedule(max_epochs: usize, factor: usize, iterations: usize) -> Vec<Round> {
    let mut out = vec![];
    for it in 0..iterations {
        for b in (0..num_brackets(max_epochs, factor)).rev() {
            let mut prev = 0;
            for r in 0..=b {
                let e = round_epochs(max_epochs, factor, b, r);
                out.push(Round {
                    iteration: it,
                    bracket: b,
                    round: r,
                    trials: round_size(max_epochs, factor, b, r),
                    epochs: e,
                    new_epochs: e - prev,
                });
                prev = e;
            }
        }
    }
    out
}

pub fn validate(max_epochs: usize, factor: usize, iterations: usize) -> Result<()> {
    if factor < 2 {
        return Err(Error::flag(
            "--factor",
            format!("{factor}: Hyperband needs a factor of at least 2"),
        ));
    }
    if max_epochs < 1 {
        return Err(Error::flag("--max-epochs", "0: expected at least 1"));
    }
    if iterations < 1 {
        return Err(Error::flag("--iterations", "0: expected at least 1"));
    }
    Ok(())
}

#[derive(Debug)]
struct Bracket {
    iteration: usize,
    bracket: usize,
    round: usize,
    /// (trial id, config, run id of its latest run) of the current round's members.
    members: Vec<(u64, Hyperparams, Option<u64>)>,
    /// Runs of the current round not yet observed.
    pending: HashSet<u64>,
    results: Vec<Observation>,
    proposed: bool,
    done: bool,
    /// The first round's configurations are drawn (always, except for BOHB's brackets not
    /// started yet).
    drawn: bool,
}

/// BOHB's model-based configuration source.
struct Bohb {
    space: SearchSpace,
    dims: Dims,
    settings: TpeSettings,
    seed: u64,
    seen: HashSet<String>,
    next_trial: u64,
    /// run id → (trial id, configuration, epochs) of proposed runs.
    runs: HashMap<u64, (u64, Hyperparams, usize)>,
    /// budget (epochs) → (trial id, configuration, objective) observed at that budget.
    by_budget: BTreeMap<usize, Vec<(u64, Hyperparams, f64)>>,
    own_time: Duration,
}

impl Bohb {
    /// `n` new configurations with their trial ids.
    fn draw(&mut self, n: usize) -> Vec<(u64, Hyperparams, Option<u64>)> {
        let n_min = self.dims.len() + 1;
        let mut history: Option<Vec<(Hyperparams, f64)>> = self
            .by_budget
            .values()
            .rev()
            .find(|obs| obs.len() >= n_min + 2)
            .map(|obs| {
                let mut obs = obs.clone();
                obs.sort_by_key(|(t, _, _)| *t);
                obs.into_iter().map(|(_, hp, v)| (hp, v)).collect()
            });
        (0..n)
            .map(|_| {
                let trial = self.next_trial;
                self.next_trial += 1;
                let mut rng = tpe::trial_rng(self.seed, trial);
                let random = rng.random::<f64>() < self.settings.random_fraction;
                let model = history.as_ref().filter(|_| !random).map(|h| {
                    tpe::Model::fit(
                        &self.dims,
                        h,
                        Split::Bohb { n_min },
                        self.settings.candidates,
                    )
                });
                let space = &self.space;
                let (hp, _) = tpe::draw_new(&mut self.seen, 100, || match &model {
                    Some(m) => m.sample(&mut rng),
                    None => space.sample(&mut rng),
                });
                // Constant liar, as in TPE's cohorts: the bracket's earlier draws count as the
                // worst results.
                if let Some(h) = history.as_mut() {
                    h.push((hp.clone(), f64::NAN));
                }
                (trial, hp, None)
            })
            .collect()
    }
}

pub struct Hyperband {
    max_epochs: usize,
    factor: usize,
    iterations: usize,
    brackets: Vec<Bracket>,
    next_run: u64,
    /// run id → bracket index
    owner: HashMap<u64, usize>,
    bohb: Option<Bohb>,
}

impl Hyperband {
    pub fn new(
        space: &SearchSpace,
        max_epochs: usize,
        factor: usize,
        iterations: usize,
        seed: u64,
    ) -> Result<Self> {
        validate(max_epochs, factor, iterations)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(derive_seed(seed, stream::PROPOSE, 0));
        let mut seen = HashSet::new();
        let mut next_trial = 0u64;
        let mut brackets = vec![];
        for it in 0..iterations {
            for b in (0..num_brackets(max_epochs, factor)).rev() {
                let n = round_size(max_epochs, factor, b, 0);
                let mut members = vec![];
                let mut misses = 0;
                while members.len() < n {
                    let hp = space.sample(&mut rng);
                    // Distinct configurations within the study while the space allows it.
                    if seen.insert(config_key(&hp)) || misses > 1000 {
                        members.push((next_trial, hp, None));
                        next_trial += 1;
                        misses = 0;
                    } else {
                        misses += 1;
                    }
                }
                brackets.push(Bracket {
                    iteration: it,
                    bracket: b,
                    round: 0,
                    members,
                    pending: HashSet::new(),
                    results: vec![],
                    proposed: false,
                    done: false,
                    drawn: true,
                });
            }
        }
        Ok(Hyperband {
            max_epochs,
            factor,
            iterations,
            brackets,
            next_run: 0,
            owner: HashMap::new(),
            bohb: None,
        })
    }

    /// BOHB: Hyperband's schedule with configurations from TPE (see the module's notes).
    pub fn bohb(
        space: &SearchSpace,
        max_epochs: usize,
        factor: usize,
        iterations: usize,
        seed: u64,
        settings: TpeSettings,
    ) -> Result<Self> {
        if !(0.0..=1.0).contains(&settings.random_fraction) {
            return Err(Error::flag(
                "--random-fraction",
                format!(
                    "{}: expected a fraction in [0, 1]",
                    settings.random_fraction
                ),
            ));
        }
        if settings.candidates == 0 {
            return Err(Error::flag("--ei-candidates", "0: expected at least 1"));
        }
        let mut hb = Hyperband::new(space, max_epochs, factor, iterations, seed)?;
        for br in &mut hb.brackets {
            br.members.clear();
            br.drawn = false;
        }
        hb.bohb = Some(Bohb {
            space: space.clone(),
            dims: Dims::new(space),
            settings,
            seed,
            seen: HashSet::new(),
            next_trial: 0,
            runs: HashMap::new(),
            by_budget: BTreeMap::new(),
            own_time: Duration::ZERO,
        });
        Ok(hb)
    }
}

impl Strategy for Hyperband {
    fn name(&self) -> &'static str {
        if self.bohb.is_some() {
            "bohb"
        } else {
            "hyperband"
        }
    }

    fn propose(&mut self, capacity: usize) -> Proposal {
        let t0 = Instant::now();
        let mut runs = vec![];
        let mut started = false;
        for (bi, br) in self.brackets.iter_mut().enumerate() {
            if br.done || br.proposed {
                continue;
            }
            let size = if br.drawn {
                br.members.len()
            } else {
                round_size(self.max_epochs, self.factor, br.bracket, 0)
            };
            if runs.len() + size > capacity && !runs.is_empty() {
                break;
            }
            if !br.drawn {
                // BOHB: one new bracket per proposal; the later ones are not started either.
                let Some(bohb) = self.bohb.as_mut().filter(|_| !started) else {
                    break;
                };
                br.members = bohb.draw(size);
                br.drawn = true;
                started = true;
            }
            let epochs = round_epochs(self.max_epochs, self.factor, br.bracket, br.round);
            for (trial, hp, last_run) in &br.members {
                let id = self.next_run;
                self.next_run += 1;
                self.owner.insert(id, bi);
                br.pending.insert(id);
                if let Some(bohb) = self.bohb.as_mut() {
                    bohb.runs.insert(id, (*trial, hp.clone(), epochs));
                }
                runs.push(RunRequest {
                    run_id: id,
                    trial_id: *trial,
                    hp: hp.clone(),
                    epochs,
                    resume_from: *last_run,
                    bracket: Some(BracketPos {
                        iteration: br.iteration,
                        bracket: br.bracket,
                        round: br.round,
                    }),
                });
            }
            br.proposed = true;
        }
        if let Some(bohb) = self.bohb.as_mut() {
            bohb.own_time += t0.elapsed();
        }
        if !runs.is_empty() {
            Proposal::Run(runs)
        } else if self.brackets.iter().all(|b| b.done) {
            Proposal::Done
        } else {
            Proposal::Wait
        }
    }

    fn observe(&mut self, outcomes: &[Observation]) {
        for o in outcomes {
            if let Some(bohb) = self.bohb.as_mut() {
                if let Some((trial, hp, epochs)) = bohb.runs.remove(&o.run_id) {
                    bohb.by_budget
                        .entry(epochs)
                        .or_default()
                        .push((trial, hp, o.objective));
                }
            }
            let Some(&bi) = self.owner.get(&o.run_id) else {
                continue;
            };
            let br = &mut self.brackets[bi];
            if br.pending.remove(&o.run_id) {
                br.results.push(o.clone());
            }
            if br.pending.is_empty() && br.proposed {
                // Round complete: promote the best into the next round, or finish the bracket.
                if br.round == br.bracket {
                    br.done = true;
                    continue;
                }
                let keep = round_size(self.max_epochs, self.factor, br.bracket, br.round + 1);
                let mut res = std::mem::take(&mut br.results);
                res.sort_by(rank);
                let hp_of: HashMap<u64, Hyperparams> =
                    br.members.iter().map(|(t, h, _)| (*t, h.clone())).collect();
                br.members = res
                    .iter()
                    .filter(|o| o.may_continue())
                    .take(keep)
                    .map(|o| (o.trial_id, hp_of[&o.trial_id].clone(), Some(o.run_id)))
                    .collect();
                if br.members.is_empty() {
                    // Nothing left to promote: the bracket ends here.
                    br.done = true;
                    continue;
                }
                br.round += 1;
                br.proposed = false;
            }
        }
    }

    fn plan(&self) -> Plan {
        let rounds = schedule(self.max_epochs, self.factor, self.iterations);
        let mut lines = vec![format!(
            "{}: max_epochs {}, factor {}, {} iteration(s), {} brackets{}",
            self.name(),
            self.max_epochs,
            self.factor,
            self.iterations,
            num_brackets(self.max_epochs, self.factor),
            match &self.bohb {
                Some(b) => format!(
                    "; configurations from TPE ({:.0}% at random, {} candidates)",
                    b.settings.random_fraction * 100.0,
                    b.settings.candidates
                ),
                None => String::new(),
            }
        )];
        lines.push("iteration  bracket  round  trials  epochs(total)  epochs(new)  trained".into());
        let mut total = 0;
        for r in &rounds {
            let t = r.trials * r.new_epochs;
            total += t;
            lines.push(format!(
                "{:>9}  {:>7}  {:>5}  {:>6}  {:>13}  {:>11}  {:>7}",
                r.iteration, r.bracket, r.round, r.trials, r.epochs, r.new_epochs, t
            ));
        }
        let runs = rounds.iter().map(|r| r.trials).sum();
        lines.push(format!("total: {runs} trial runs, {total} epochs trained"));
        Plan {
            runs,
            epochs: total,
            lines,
        }
    }

    fn own_seconds(&self) -> f64 {
        self.bohb.as_ref().map_or(0.0, |b| b.own_time.as_secs_f64())
    }
}
