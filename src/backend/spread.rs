//! Several devices as one backend (`--device cuda:all`, `--device cuda:0,2`): each cohort's trials
//! are dealt out to the devices, and every call runs on all of them at once, one host thread per
//! device. Trials never interact (the [`Backend`] contract), so a trial's result is the one a
//! single device gives it, whichever device it lands on and whoever its neighbours are.
//!
//! Dealing: biggest trials first, each to the device with the least work so far (longest
//! processing time first, a classic 4/3-approximation of the best balance), where a trial's work
//! is its parameter count: the matmuls of a step scale with it. The deal is deterministic.

use super::{Backend, EvalStats, SplitId, TrainStats};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{TrialSpec, TrialState};

/// Several backends of the same data, used as one.
pub struct Spread<B> {
    devices: Vec<B>,
    /// A short name per device for errors (`cuda:1`).
    labels: Vec<String>,
}

/// A cohort dealt out: each device's part (none for a device that got no trial), and where each
/// of the caller's trials went.
pub struct SpreadCohort<C> {
    parts: Vec<Option<C>>,
    /// Trial i of the cohort is trial `at[i].1` of device `at[i].0`'s part.
    at: Vec<(usize, usize)>,
}

impl<C> SpreadCohort<C> {
    /// The device each trial of the cohort was dealt to.
    pub fn devices(&self) -> Vec<usize> {
        self.at.iter().map(|&(d, _)| d).collect()
    }

    /// Each device's part of the cohort (None where a device got no trial).
    pub fn parts(&self) -> impl Iterator<Item = &C> {
        self.parts.iter().flatten()
    }
}

/// Deals trials of the given costs to `k` devices: biggest first, each to the least loaded device
/// (the lowest index among equals). Returns each trial's device.
pub fn deal(costs: &[usize], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by(|&a, &b| costs[b].cmp(&costs[a]).then(a.cmp(&b)));
    let mut load = vec![0usize; k.max(1)];
    let mut to = vec![0; costs.len()];
    for i in order {
        let d = (0..load.len()).min_by_key(|&d| (load[d], d)).unwrap_or(0);
        load[d] += costs[i];
        to[i] = d;
    }
    to
}

impl<B: Backend> Spread<B> {
    /// `devices` with their short labels (`cuda:0`, …); at least one.
    pub fn new(devices: Vec<(String, B)>) -> Result<Self> {
        if devices.is_empty() {
            return Err(Error::flag(
                "--device",
                "no device to spread the trials over",
            ));
        }
        let (labels, devices) = devices.into_iter().unzip();
        Ok(Spread { devices, labels })
    }

    pub fn devices(&self) -> &[B] {
        &self.devices
    }

    /// Runs `f` on every device that holds a part, each on its own host thread, and returns the
    /// per-device results (None for a device without a part). An error names its device.
    fn on_each<C, T, F>(&self, parts: &mut [Option<C>], f: F) -> Result<Vec<Option<T>>>
    where
        C: Send,
        T: Send,
        F: Fn(&B, &mut C, usize) -> Result<T> + Sync,
    {
        let f = &f;
        let results: Vec<Option<Result<T>>> = std::thread::scope(|sc| {
            let handles: Vec<_> = self
                .devices
                .iter()
                .zip(parts.iter_mut())
                .enumerate()
                .map(|(d, (b, part))| part.as_mut().map(|c| (d, sc.spawn(move || f(b, c, d)))))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.map(|(d, h)| {
                        h.join().unwrap_or_else(|_| {
                            Err(Error::backend(&self.labels[d], "a device thread panicked"))
                        })
                    })
                })
                .collect()
        });
        results
            .into_iter()
            .enumerate()
            .map(|(d, r)| r.map(|r| r.map_err(|e| self.named(d, e))).transpose())
            .collect()
    }

    /// The error with its device's label in front (an out-of-memory error stays one, so the
    /// trainer still splits the cohort).
    fn named(&self, d: usize, e: Error) -> Error {
        let label = &self.labels[d];
        match e {
            Error::OutOfMemory { backend, msg } => Error::OutOfMemory {
                backend: format!("{label} {backend}"),
                msg,
            },
            Error::Backend { backend, msg } => Error::Backend {
                backend: format!("{label} {backend}"),
                msg,
            },
            other => other,
        }
    }

    /// `per[d][k]` back in the caller's order; `missing` for trials not asked about.
    fn gather<T: Copy>(at: &[(usize, usize)], per: &[Option<Vec<T>>]) -> Result<Vec<T>> {
        at.iter()
            .map(|&(d, k)| {
                per[d]
                    .as_ref()
                    .and_then(|v| v.get(k).copied())
                    .ok_or_else(|| Error::backend("spread", "a device returned too few results"))
            })
            .collect()
    }

    /// Each device's slice of a per-trial flag vector.
    fn split_flags(c: &SpreadCohort<B::Cohort>, flags: &[bool]) -> Vec<Vec<bool>> {
        let mut per = vec![vec![]; c.parts.len()];
        for (i, &(d, k)) in c.at.iter().enumerate() {
            let v: &mut Vec<bool> = &mut per[d];
            if v.len() <= k {
                v.resize(k + 1, false);
            }
            v[k] = flags.get(i).copied().unwrap_or(false);
        }
        per
    }
}

impl<B: Backend> Backend for Spread<B>
where
    B::Cohort: Sync,
{
    type Cohort = SpreadCohort<B::Cohort>;

    fn name(&self) -> String {
        let names: Vec<String> = self.devices.iter().map(|b| b.name()).collect();
        format!("{} devices: {}", names.len(), names.join(" + "))
    }

    fn data(&self) -> &Dataset {
        self.devices[0].data()
    }

    /// The devices' own default, for each of them.
    fn default_cohort(&self) -> usize {
        self.devices
            .iter()
            .map(|b| b.default_cohort())
            .min()
            .unwrap_or(32)
            .saturating_mul(self.devices.len())
    }

    /// Each device holds its share; the smallest device bounds them all.
    fn max_cohort(&self, specs: &[TrialSpec], batch: usize) -> usize {
        self.devices
            .iter()
            .map(|b| b.max_cohort(specs, batch))
            .min()
            .unwrap_or(1)
            .saturating_mul(self.devices.len())
    }

    fn load(&self, trials: Vec<(TrialSpec, TrialState)>) -> Result<Self::Cohort> {
        let costs: Vec<usize> = trials.iter().map(|(s, _)| s.layout().len).collect();
        let to = deal(&costs, self.devices.len());
        let mut shares: Vec<Option<Vec<(TrialSpec, TrialState)>>> = vec![None; self.devices.len()];
        let mut at = Vec::with_capacity(trials.len());
        for (t, &d) in trials.into_iter().zip(&to) {
            let share = shares[d].get_or_insert_with(Vec::new);
            at.push((d, share.len()));
            share.push(t);
        }
        let loaded = self.on_each(&mut shares, |b, share, _| b.load(std::mem::take(share)))?;
        Ok(SpreadCohort { parts: loaded, at })
    }

    fn train_epoch(
        &self,
        c: &mut Self::Cohort,
        order: &[u32],
        batch: usize,
        active: &[bool],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<TrainStats>> {
        let flags = Self::split_flags(c, active);
        let per = self.on_each(&mut c.parts, |b, part, d| {
            b.train_epoch(part, order, batch, &flags[d], progress)
        })?;
        Self::gather(&c.at, &per)
    }

    fn evaluate(
        &self,
        c: &Self::Cohort,
        split: SplitId,
        active: &[bool],
    ) -> Result<Vec<EvalStats>> {
        let flags = Self::split_flags(c, active);
        // Shared references to each part, so the threads only read them.
        let mut parts: Vec<Option<&B::Cohort>> = c.parts.iter().map(Option::as_ref).collect();
        let per = self.on_each(&mut parts, |b, part, d| b.evaluate(part, split, &flags[d]))?;
        Self::gather(&c.at, &per)
    }

    fn state(&self, c: &Self::Cohort, i: usize) -> Result<TrialState> {
        let (d, k) = c.at[i];
        let part = c.parts[d].as_ref().ok_or_else(|| missing(d))?;
        self.devices[d].state(part, k).map_err(|e| self.named(d, e))
    }

    fn set_state(&self, c: &mut Self::Cohort, i: usize, state: TrialState) -> Result<()> {
        let (d, k) = c.at[i];
        let part = c.parts[d].as_mut().ok_or_else(|| missing(d))?;
        self.devices[d]
            .set_state(part, k, state)
            .map_err(|e| self.named(d, e))
    }
}

fn missing(d: usize) -> Error {
    Error::backend("spread", format!("device {d} holds no part of this cohort"))
}
