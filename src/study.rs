//! A study: a strategy's proposals trained cohort by cohort on a backend, every finished run
//! journaled (checkpoint first, then the fsynced journal line), and at the end the best run's
//! model saved and scored once on the test split.
//!
//! Resume works by replay: the strategy is rebuilt from the same settings and seed, and each run
//! it proposes that the journal already holds is answered from the journal instead of trained.
//! Since strategies are deterministic and trials independent of their cohort, an interrupted and
//! resumed study ends with the same results as an uninterrupted one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, SplitId};
use crate::error::{Error, Result};
use crate::model::{TrialSpec, TrialState};
use crate::results::journal::{self, Journal, RunRecord};
use crate::results::{export, model_io};
use crate::strategy::{Observation, Proposal, RunRequest, Strategy};
use crate::train::{train_cohort, TrainConfig, TrialJob};

/// The settings that define a study; `--resume` refuses to continue with different ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyConfig {
    pub strategy: String,
    pub seed: u64,
    pub trials: Option<usize>,
    pub epochs: usize,
    pub max_epochs: usize,
    pub factor: usize,
    pub iterations: usize,
    pub patience: Option<usize>,
    pub batch_size: usize,
    pub image_size: usize,
    /// The search space's TOML (the default space's when none was given).
    pub space: String,
    /// The data the study trains on (absent in studies made before fastfc recorded it: those are
    /// refused on --resume, with a message saying so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<crate::data::DataRecord>,
    /// TPE and BOHB settings (absent for the other strategies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpe: Option<crate::strategy::tpe::TpeSettings>,
    /// ASHA: (lowest rung's minimum epochs, jobs per cohort).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asha: Option<(usize, usize)>,
}

impl StudyConfig {
    /// How the trainer trains this study's runs up to `epochs`.
    pub fn train_config(&self, epochs: usize) -> TrainConfig {
        TrainConfig {
            epochs,
            batch_size: self.batch_size,
            patience: self.patience,
            seed: self.seed,
            stop: Default::default(),
        }
    }
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub strategy: String,
    pub trials: usize,
    pub runs: usize,
    pub epochs_trained: usize,
    pub wall_seconds: f64,
    pub device: String,
    pub data: String,
    pub best: BestRun,
    pub test_accuracy: Option<f64>,
    pub test_loss: Option<f64>,
    pub config: StudyConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BestRun {
    pub run_id: u64,
    pub trial_id: u64,
    pub config: crate::model::Hyperparams,
    #[serde(with = "crate::results::nonfinite")]
    pub val_accuracy: f64,
    #[serde(with = "crate::results::nonfinite")]
    pub val_loss: f64,
    pub epochs: usize,
}

/// What the runner reports to the user interface.
pub trait StudyUi: Sync {
    fn cohort_start(&mut self, _runs: usize, _first_epoch: usize, _last_epoch: usize) {}
    fn steps(&self, _n: u64) {}
    fn run_done(&mut self, _r: &RunRecord, _replayed: bool) {}
    /// The front end's stop request (Ctrl-C in Python), checked before each cohort and each
    /// epoch: a stopped study has journaled every run that finished, and `--resume` goes on.
    fn stop(&self) -> crate::train::Stop {
        crate::train::Stop::default()
    }
}

pub struct NoUi;
impl StudyUi for NoUi {}

/// Orders records best first (val_accuracy, then val_loss, then run id).
pub fn rank_records(a: &RunRecord, b: &RunRecord) -> std::cmp::Ordering {
    b.val_accuracy
        .total_cmp(&a.val_accuracy)
        .then(a.val_loss.total_cmp(&b.val_loss))
        .then(a.request.run_id.cmp(&b.request.run_id))
}

/// Whether two studies of the same runs (say CPU and GPU) rank them alike, up to `tol` in
/// validation accuracy: every pair of runs whose accuracies in `a` differ by more than `tol` must
/// be in the same order in `b`. Runs closer than that may trade places, since float reasons alone
/// (FMA contraction, a GPU's expf/erff, one validation sample of 1/512) can swap them. The error
/// names the first pair out of order.
pub fn rankings_agree(
    a: &[RunRecord],
    b: &[RunRecord],
    tol: f64,
) -> std::result::Result<(), String> {
    let by_id: HashMap<u64, &RunRecord> = b.iter().map(|r| (r.request.run_id, r)).collect();
    if a.len() != b.len() || a.iter().any(|r| !by_id.contains_key(&r.request.run_id)) {
        return Err(format!("different runs ({} vs {})", a.len(), b.len()));
    }
    let mut order: Vec<&RunRecord> = a.iter().collect();
    order.sort_by(|x, y| rank_records(x, y));
    let pos_b: HashMap<u64, usize> = {
        let mut v: Vec<&RunRecord> = b.iter().collect();
        v.sort_by(|x, y| rank_records(x, y));
        v.iter()
            .enumerate()
            .map(|(i, r)| (r.request.run_id, i))
            .collect()
    };
    for (i, hi) in order.iter().enumerate() {
        for lo in &order[i + 1..] {
            if hi.val_accuracy - lo.val_accuracy > tol
                && pos_b[&hi.request.run_id] > pos_b[&lo.request.run_id]
            {
                return Err(format!(
                    "run {} (val_accuracy {:.4}) ranks above run {} ({:.4}) in the first study but below it in the second ({:.4} vs {:.4}); tolerance {tol}",
                    hi.request.run_id,
                    hi.val_accuracy,
                    lo.request.run_id,
                    lo.val_accuracy,
                    by_id[&hi.request.run_id].val_accuracy,
                    by_id[&lo.request.run_id].val_accuracy
                ));
            }
        }
    }
    Ok(())
}

/// Checks the out folder: a new study needs an empty or absent folder; `--resume` needs the same
/// settings as the journaled study.
pub fn prepare_dir(dir: &Path, cfg: &StudyConfig, resume: bool) -> Result<()> {
    let study = dir.join("study.json");
    if study.exists() {
        if !resume {
            return Err(Error::Exists {
                flag: "--out".into(),
                msg: format!("{}: already holds a study; pass --resume to continue it, or choose another folder", dir.display()),
            });
        }
        let text = std::fs::read_to_string(&study).map_err(|e| Error::io(&study, e))?;
        let old: StudyConfig = serde_json::from_str(&text)
            .map_err(|e| Error::file(&study, format!("not a fastfc study config: {e}")))?;
        if &old != cfg {
            let a = serde_json::to_value(&old).unwrap();
            let b = serde_json::to_value(cfg).unwrap();
            let null = serde_json::Value::Null;
            let mut keys: Vec<&String> = a.as_object().unwrap().keys().collect();
            keys.extend(
                b.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| a.get(k.as_str()).is_none()),
            );
            let diffs: Vec<String> = keys
                .into_iter()
                .filter(|k| k.as_str() != "data")
                .filter(|k| a.get(k.as_str()) != b.get(k.as_str()))
                .map(|k| {
                    format!(
                        "{k} was {}, now {}",
                        a.get(k.as_str()).unwrap_or(&null),
                        b.get(k.as_str()).unwrap_or(&null)
                    )
                })
                .chain((old.data != cfg.data).then(|| {
                    let say = |d: &Option<crate::data::DataRecord>| {
                        d.as_ref()
                            .map_or("none recorded".to_string(), |d| d.describe())
                    };
                    format!("data was {}, now {}", say(&old.data), say(&cfg.data))
                }))
                .collect();
            return Err(Error::flag(
                "--resume",
                format!(
                    "{}: the study was started with other settings ({}); use the same flags",
                    dir.display(),
                    diffs.join("; ")
                ),
            ));
        }
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    model_io::write_json(&study, cfg)
}

/// Runs (or resumes) the study in `dir`. Returns the journal's records in run order.
pub fn run<B: Backend>(
    backend: &B,
    strategy: &mut dyn Strategy,
    cfg: &StudyConfig,
    dir: &Path,
    cohort_size: usize,
    ui: &mut dyn StudyUi,
) -> Result<Vec<RunRecord>> {
    // A journaled run whose checkpoint no longer checks out is trained again (it is
    // deterministic), so promotions and the best model never continue from damaged weights.
    let mut known: HashMap<u64, RunRecord> = HashMap::new();
    for r in journal::read(dir)? {
        match journal::read_checkpoint(dir, r.request.run_id) {
            Ok(_) => {
                known.insert(r.request.run_id, r);
            }
            Err(e) => eprintln!(
                "warning: {e}; run {} will be trained again",
                r.request.run_id
            ),
        }
    }
    let mut journal = Journal::open(dir)?;
    let base_seconds = known.values().map(|r| r.study_seconds).fold(0.0, f64::max);
    let mut study_epochs = known.values().map(|r| r.study_epochs).max().unwrap_or(0);
    let session = Instant::now();
    let mut all: Vec<RunRecord> = vec![];
    loop {
        let reqs = match strategy.propose(usize::MAX) {
            Proposal::Run(r) => r,
            Proposal::Done => break,
            Proposal::Wait => {
                return Err(Error::backend(
                    "study",
                    "strategy waits with no run outstanding",
                ))
            }
        };
        let mut todo: Vec<RunRequest> = vec![];
        let mut replayed = vec![];
        for q in reqs {
            match known.get(&q.run_id) {
                Some(r) if r.request == q => replayed.push(r.clone()),
                Some(_) => {
                    return Err(Error::file(
                        dir.join("journal.jsonl"),
                        format!("run {} differs from what the study proposes now; was it made by another fastfc version?", q.run_id),
                    ))
                }
                None => todo.push(q),
            }
        }
        if !replayed.is_empty() {
            for r in &replayed {
                ui.run_done(r, true);
            }
            strategy.observe(&replayed.iter().map(observation).collect::<Vec<_>>());
            all.extend(replayed);
        }
        let groups = cohorts(
            todo,
            |q| q,
            cfg,
            backend,
            cohort_size,
            |rid| journal::read_checkpoint(dir, rid),
        )?;
        let stop = ui.stop();
        for ((first, last), group) in groups {
            stop.check(|| format!("stopped before a cohort of {} runs", group.len()))?;
            ui.cohort_start(group.len(), first, last);
            let (reqs, jobs): (Vec<RunRequest>, Vec<TrialJob>) = group.into_iter().unzip();
            let shared: &dyn StudyUi = &*ui;
            let mut tc = cfg.train_config(last);
            tc.stop = stop.clone();
            let outcomes = train_cohort(backend, jobs, &tc, &mut |_| {}, &|n| shared.steps(n))?;
            let mut obs = vec![];
            for (q, o) in reqs.into_iter().zip(outcomes) {
                journal::write_checkpoint(dir, q.run_id, &o.checkpoint)?;
                study_epochs += o.history.len();
                let rec = RunRecord {
                    request: q,
                    start_epoch: first,
                    status: o.status,
                    best_epoch: o.best_epoch,
                    epochs_trained: o.epochs_trained,
                    val_loss: o.val_loss,
                    val_accuracy: o.val_accuracy,
                    seconds: o.seconds,
                    study_seconds: base_seconds + session.elapsed().as_secs_f64(),
                    study_epochs,
                    history: o.history,
                };
                journal.append(&rec)?;
                kill_point();
                ui.run_done(&rec, false);
                obs.push(observation(&rec));
                all.push(rec);
            }
            export::write_csv(dir, &all)?;
            strategy.observe(&obs);
        }
    }
    all.sort_by_key(|r| r.request.run_id);
    export::write_csv(dir, &all)?;
    Ok(all)
}

/// Runs grouped into cohorts: those that start and end at the same epoch, in the given order, at
/// most `cohort_size` each, keyed by (start epoch, end epoch), each with its starting state (a
/// fresh init, or the checkpoint `checkpoint` returns for the run it continues).
pub type Cohorts<T> = Vec<((usize, usize), Vec<(T, TrialJob)>)>;

pub fn cohorts<T, B: Backend>(
    runs: Vec<T>,
    request: impl Fn(&T) -> &RunRequest,
    cfg: &StudyConfig,
    backend: &B,
    cohort_size: usize,
    mut checkpoint: impl FnMut(u64) -> Result<TrialState>,
) -> Result<Cohorts<T>> {
    let mut groups: Cohorts<T> = vec![];
    for run in runs {
        let q = request(&run);
        let spec = spec_of(q, cfg, backend);
        let state = match q.resume_from {
            Some(rid) => checkpoint(rid)?,
            None => TrialState::init(&spec),
        };
        let key = (state.epochs, q.epochs);
        let job = TrialJob { spec, state };
        match groups
            .iter_mut()
            .find(|(k, g)| *k == key && g.len() < cohort_size)
        {
            Some((_, g)) => g.push((run, job)),
            None => groups.push((key, vec![(run, job)])),
        }
    }
    Ok(groups)
}

/// `FASTFC_KILL_AFTER_RUNS=N` aborts the process right after its Nth journal record (no
/// unwinding, no cleanup: as a SIGKILL would leave the study), so tests interrupt a search at an
/// exact point instead of racing a timer.
fn kill_point() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static WRITTEN: AtomicUsize = AtomicUsize::new(0);
    let n = WRITTEN.fetch_add(1, Ordering::Relaxed) + 1;
    if std::env::var("FASTFC_KILL_AFTER_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        == Some(n)
    {
        std::process::abort();
    }
}

pub fn spec_of<B: Backend>(q: &RunRequest, cfg: &StudyConfig, backend: &B) -> TrialSpec {
    TrialSpec::new(
        q.trial_id,
        q.hp.clone(),
        cfg.seed,
        backend.data().dim(),
        backend.data().n_classes(),
    )
}

pub fn observation(r: &RunRecord) -> Observation {
    Observation {
        run_id: r.request.run_id,
        trial_id: r.request.trial_id,
        objective: r.val_accuracy,
        val_loss: if r.val_loss.is_finite() {
            r.val_loss
        } else {
            f64::INFINITY
        },
        status: r.status,
    }
}

static TEST_SCORES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many times this process has scored a model on the test split (tests count it: once per
/// study, never again on a resume).
pub fn test_scores() -> u64 {
    TEST_SCORES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Saves the best run's model under `dir/best/`, scores it once on the test split, writes
/// `summary.json`.
pub fn finish<B: Backend>(
    backend: &B,
    cfg: &StudyConfig,
    dir: &Path,
    records: &[RunRecord],
) -> Result<Summary> {
    let best = best_of(records)?;
    let state = journal::read_checkpoint(dir, best.request.run_id)?;
    let kept = std::fs::read_to_string(dir.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Summary>(&t).ok());
    finish_with(backend, cfg, dir, records, state, kept)
}

fn best_of(records: &[RunRecord]) -> Result<&RunRecord> {
    records
        .iter()
        .min_by(|a, b| rank_records(a, b))
        .ok_or_else(|| Error::backend("study", "no run finished"))
}

/// [`finish`] with the best run's checkpoint given (`state`), and the summary written before, if
/// any (`kept`): when it chose the same run, its test score is kept instead of scoring again.
pub fn finish_with<B: Backend>(
    backend: &B,
    cfg: &StudyConfig,
    dir: &Path,
    records: &[RunRecord],
    state: TrialState,
    kept: Option<Summary>,
) -> Result<Summary> {
    let best = best_of(records)?;
    let spec = spec_of(&best.request, cfg, backend);
    let mc = model_io::ModelConfig::from_spec(&spec, backend.data(), cfg.seed, cfg.batch_size);
    let best_dir: PathBuf = dir.join("best");
    model_io::save(&best_dir, &mc, &state.params)?;
    // The test split is scored once, for the chosen model: a study resumed after it finished
    // (same best run) keeps the score it already has.
    let kept =
        kept.filter(|old| old.best.run_id == best.request.run_id && old.test_accuracy.is_some());
    let (test_accuracy, test_loss) = if let Some(old) = kept {
        eprintln!(
            "note: test accuracy of run {} kept from the study's summary (the test split is scored once)",
            best.request.run_id
        );
        (old.test_accuracy, old.test_loss)
    } else if best.best_epoch > 0 && !backend.data().test.is_empty() {
        let c = backend.load(vec![(spec, state)])?;
        let t = backend.evaluate(&c, SplitId::Test, &[true])?[0];
        TEST_SCORES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (Some(t.accuracy), Some(t.loss))
    } else {
        (None, None)
    };
    let mut trials: Vec<u64> = records.iter().map(|r| r.request.trial_id).collect();
    trials.sort();
    trials.dedup();
    let s = Summary {
        strategy: cfg.strategy.clone(),
        trials: trials.len(),
        runs: records.len(),
        epochs_trained: records.iter().map(|r| r.history.len()).sum(),
        wall_seconds: records.iter().map(|r| r.study_seconds).fold(0.0, f64::max),
        device: backend.name(),
        data: backend.data().origin.to_string(),
        best: BestRun {
            run_id: best.request.run_id,
            trial_id: best.request.trial_id,
            config: best.request.hp.clone(),
            val_accuracy: best.val_accuracy,
            val_loss: best.val_loss,
            epochs: best.epochs_trained,
        },
        test_accuracy,
        test_loss,
        config: cfg.clone(),
    };
    model_io::write_json(&dir.join("summary.json"), &s)?;
    Ok(s)
}
