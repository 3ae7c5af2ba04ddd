//! `fastfc export optuna DIR --out study.log`: a study in Optuna's journal-file format, so that
//! `optuna-dashboard study.log` and
//! `optuna.load_study(storage=JournalStorage(JournalFileBackend("study.log")))` open it.
//!
//! The file is one JSON object per line, each an operation Optuna's `JournalStorage` replays:
//! a `CREATE_STUDY` (op 0, direction maximize), the study's settings as user attributes
//! (op 2), then one `CREATE_TRIAL` (op 4) per fastfc trial that carries the whole finished trial:
//! state, value, parameters with their distributions, per-epoch validation accuracy as
//! intermediate values (step = epoch), start and completion times, and fastfc's own fields as
//! user attributes.
//!
//! A fastfc trial is a configuration; under Hyperband, BOHB or ASHA it has several runs, each
//! continuing the last. Its value is the validation accuracy of its longest run. States: a
//! trial without a value (diverged before its first good epoch, or failed) is `FAIL`; a
//! Hyperband/BOHB/ASHA trial not promoted to `max_epochs` is `PRUNED`, with its last
//! intermediate value as its value (as Optuna stores a pruned trial); every other trial is
//! `COMPLETE`, early-stopped and later-diverged ones included (`user_attrs.status` says which),
//! with the accuracy of the weights it kept. Optuna 4 and 5 read this format; Optuna 3
//! numbered the operations differently.
//!
//! Parameters: `n_layers`, `units` (or `units_0`, `units_1`, … with `per_layer`), `dropout`,
//! `learning_rate`, `activation`, `optimizer`, with the search space's distributions: a
//! `choice` is categorical, `int` an `IntDistribution`, `uniform`/`loguniform` a
//! `FloatDistribution` (log for the latter).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::error::{Error, IoContext, Result};
use crate::model::Hyperparams;
use crate::results::journal::{self, RunRecord};
use crate::space::{Num, SearchSpace};
use crate::study::StudyConfig;
use crate::train::TrialStatus;

const CREATE_STUDY: u32 = 0;
const SET_STUDY_USER_ATTR: u32 = 2;
const CREATE_TRIAL: u32 = 4;
const WORKER: &str = "fastfc-export";

/// Optuna's `StudyDirection.MAXIMIZE`.
const MAXIMIZE: u32 = 2;

/// Optuna's `TrialState` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptunaState {
    Complete = 1,
    Pruned = 2,
    Fail = 3,
}

/// A distribution as Optuna's `distribution_to_json` writes it, and a value's internal form.
struct Dist {
    json: String,
    /// Categorical choices (internal value = index), else None (internal value = the number).
    choices: Option<Vec<Value>>,
    bounds: (f64, f64),
}

fn dist_of(n: &Num) -> Dist {
    match n {
        Num::Choice(v) => categorical(v.iter().map(|&x| number(x)).collect()),
        Num::Int { low, high, step } => Dist {
            json: json!({"name": "IntDistribution",
                "attributes": {"log": false, "step": step, "low": low, "high": high}})
            .to_string(),
            choices: None,
            bounds: (*low as f64, *high as f64),
        },
        Num::Uniform { low, high, .. } | Num::LogUniform { low, high, .. } => Dist {
            json: json!({"name": "FloatDistribution", "attributes": {
                "step": null, "low": low, "high": high,
                "log": matches!(n, Num::LogUniform { .. })}})
            .to_string(),
            choices: None,
            bounds: (*low, *high),
        },
    }
}

fn categorical(choices: Vec<Value>) -> Dist {
    Dist {
        json: json!({"name": "CategoricalDistribution", "attributes": {"choices": choices}})
            .to_string(),
        choices: Some(choices),
        bounds: (0.0, 0.0),
    }
}

/// An integral value as a JSON integer (a choice of layer counts reads back as 2, not 2.0).
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// (name, distribution, value) of each parameter the configuration has.
fn params(space: &SearchSpace, hp: &Hyperparams) -> Vec<(String, Dist, Value)> {
    let mut out = vec![(
        "n_layers".to_string(),
        dist_of(&space.layers),
        number(hp.hidden.len() as f64),
    )];
    if space.per_layer {
        for (i, &u) in hp.hidden.iter().enumerate() {
            out.push((
                format!("units_{i}"),
                dist_of(&space.units),
                number(u as f64),
            ));
        }
    } else {
        out.push((
            "units".into(),
            dist_of(&space.units),
            number(hp.hidden[0] as f64),
        ));
    }
    out.push((
        "dropout".into(),
        dist_of(&space.dropout),
        json!(hp.dropout as f64),
    ));
    out.push((
        "learning_rate".into(),
        dist_of(&space.learning_rate),
        json!(hp.learning_rate as f64),
    ));
    out.push((
        "activation".into(),
        categorical(space.activation.iter().map(|a| json!(a.name())).collect()),
        json!(hp.activation.name()),
    ));
    out.push((
        "optimizer".into(),
        categorical(space.optimizer.iter().map(|o| json!(o.name())).collect()),
        json!(hp.optimizer.name()),
    ));
    // The knobs the space searched, each only for the trials that have it (conditional ones
    // belong to some optimizers or schedules; Optuna's define-by-run spaces allow that).
    for name in space.knobs.present() {
        if !crate::space::applies(hp, name) {
            continue;
        }
        match name {
            "nesterov" => out.push((
                name.into(),
                categorical(
                    space
                        .knobs
                        .nesterov
                        .iter()
                        .flatten()
                        .map(|b| json!(b))
                        .collect(),
                ),
                json!(hp.nesterov()),
            )),
            "schedule" => out.push((
                name.into(),
                categorical(
                    space
                        .knobs
                        .schedule
                        .iter()
                        .flatten()
                        .map(|n| json!(n))
                        .collect(),
                ),
                json!(hp.schedule.name()),
            )),
            k => {
                if let (Some(n), Some(v)) = (space.knobs.num(k), crate::space::knob(hp, k)) {
                    out.push((k.into(), dist_of(n), number(v)));
                }
            }
        }
    }
    out
}

/// A parameter's internal representation: a category's index, or the number (f32 values
/// widened to f64 are kept inside the distribution's bounds). Configurations hold dropout and
/// learning rate as f32, so a numeric choice matches at f32 precision (0.15 is 0.1500000006).
fn internal(name: &str, d: &Dist, v: &Value) -> Result<Value> {
    let same = |x: f64, y: f64| (x - y).abs() <= 1e-6 * x.abs().max(1.0);
    match &d.choices {
        Some(c) => c
            .iter()
            .position(|x| x == v || x.as_f64().zip(v.as_f64()).is_some_and(|(x, y)| same(x, y)))
            .map(|i| json!(i as f64))
            .ok_or_else(|| {
                Error::backend(
                    "export",
                    format!("{name} = {v} is not one of the space's choices {c:?}"),
                )
            }),
        None => {
            let x = v.as_f64().unwrap_or(f64::NAN);
            Ok(json!(x.clamp(d.bounds.0, d.bounds.1)))
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    // Python's datetime.fromisoformat reads "+00:00"; "Z" only from Python 3.11 on.
    humantime::format_rfc3339_micros(t)
        .to_string()
        .replace('Z', "+00:00")
}

/// One exported trial: what Optuna will show for it.
#[derive(Debug, Clone)]
pub struct ExportedTrial {
    pub trial_id: u64,
    pub state: OptunaState,
    pub value: Option<f64>,
    /// Validation accuracy by epoch.
    pub intermediate: BTreeMap<usize, f64>,
}

/// The trials of a study's records, in trial order, as they are exported.
pub fn trials<'a>(
    cfg: &StudyConfig,
    records: &'a [RunRecord],
) -> Vec<(ExportedTrial, Vec<&'a RunRecord>)> {
    let mut by_trial: BTreeMap<u64, Vec<&RunRecord>> = BTreeMap::new();
    for r in records {
        by_trial.entry(r.request.trial_id).or_default().push(r);
    }
    let brackets = matches!(cfg.strategy.as_str(), "hyperband" | "bohb" | "asha");
    by_trial
        .into_iter()
        .map(|(trial_id, mut runs)| {
            runs.sort_by_key(|r| (r.request.epochs, r.request.run_id));
            let last = *runs.last().unwrap();
            let mut intermediate = BTreeMap::new();
            for r in &runs {
                for e in &r.history {
                    if e.val_accuracy.is_finite() {
                        intermediate.insert(e.epoch, e.val_accuracy);
                    }
                }
            }
            // FAIL is a trial without a value: one that diverged before its first good epoch, or
            // that the backend failed. A run that diverged later kept the weights of its best
            // epoch, which fastfc ranks like any other (user_attrs.status says "diverged").
            let failed = last.status == TrialStatus::Failed || !last.val_accuracy.is_finite();
            let state = if failed {
                OptunaState::Fail
            } else if brackets && last.request.epochs < cfg.max_epochs {
                OptunaState::Pruned
            } else {
                OptunaState::Complete
            };
            let value = match state {
                OptunaState::Fail => None,
                OptunaState::Pruned => intermediate
                    .values()
                    .last()
                    .copied()
                    .or(Some(last.val_accuracy)),
                OptunaState::Complete => Some(last.val_accuracy),
            };
            (
                ExportedTrial {
                    trial_id,
                    state,
                    value,
                    intermediate,
                },
                runs,
            )
        })
        .collect()
}

/// The space a study was searched over: the TOML its study.json stores. `--space FILE`, if
/// given, must be that space. (Studies of fastfc 0.1 stored a Debug string instead; for them
/// `--space` is needed unless they searched the default space.)
pub fn study_space(cfg: &StudyConfig, space_file: Option<&Path>) -> Result<SearchSpace> {
    let legacy = |sp: &SearchSpace| sp.legacy_debug().as_deref() == Some(cfg.space.as_str());
    let stored = SearchSpace::parse(Path::new("study.json: space"), &cfg.space).ok();
    match (space_file, stored) {
        (None, Some(sp)) => Ok(sp),
        (None, None) if legacy(&SearchSpace::default()) => Ok(SearchSpace::default()),
        (None, None) => Err(Error::flag(
            "--space",
            "the study (made by an older fastfc) searched its own space: pass the file given to `fastfc search --space`",
        )),
        (Some(p), stored) => {
            let sp = SearchSpace::load(p)?;
            if stored.as_ref() == Some(&sp) || (stored.is_none() && legacy(&sp)) {
                Ok(sp)
            } else {
                Err(Error::flag(
                    "--space",
                    format!(
                        "{}: not the space this study searched (its study.json holds another)",
                        p.display()
                    ),
                ))
            }
        }
    }
}

/// Writes the study in `dir` to `out` (which must not exist) as Optuna's journal file.
/// Returns the number of trials written.
pub fn export(
    dir: &Path,
    out: &Path,
    space_file: Option<&Path>,
    study_name: Option<&str>,
) -> Result<usize> {
    let study_json = dir.join("study.json");
    let text = std::fs::read_to_string(&study_json).ctx_io(&study_json)?;
    let cfg: StudyConfig = serde_json::from_str(&text)
        .map_err(|e| Error::file(&study_json, format!("not a fastfc study config: {e}")))?;
    let space = study_space(&cfg, space_file)?;
    let records = journal::read(dir)?;
    if records.is_empty() {
        return Err(Error::file(
            dir.join("journal.jsonl"),
            "no finished runs (is this a study folder?)",
        ));
    }
    if out.exists() {
        return Err(Error::flag(
            "--out",
            format!(
                "{}: already exists; Optuna journals are append-only, so choose a new file",
                out.display()
            ),
        ));
    }
    // The study started when study.json was written; runs are placed by their study clock.
    let start = std::fs::metadata(&study_json)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let at = |s: f64| rfc3339(start + Duration::from_secs_f64(s.max(0.0)));
    let name = study_name.map(str::to_string).unwrap_or_else(|| {
        dir.file_name()
            .map_or("fastfc".into(), |n| n.to_string_lossy().into_owned())
    });
    let mut lines: Vec<Value> = vec![json!({
        "op_code": CREATE_STUDY, "worker_id": WORKER,
        "study_name": name, "directions": [MAXIMIZE]})];
    let settings = serde_json::to_value(&cfg).unwrap_or(Value::Null);
    lines.push(
        json!({"op_code": SET_STUDY_USER_ATTR, "worker_id": WORKER, "study_id": 0,
        "user_attr": {"fastfc": settings}}),
    );
    let exported = trials(&cfg, &records);
    for (t, runs) in &exported {
        let first = runs[0];
        let last = runs[runs.len() - 1];
        let mut p = serde_json::Map::new();
        let mut d = serde_json::Map::new();
        for (name, dist, v) in params(&space, &first.request.hp) {
            p.insert(name.clone(), internal(&name, &dist, &v)?);
            d.insert(name, json!(dist.json));
        }
        let inter: serde_json::Map<String, Value> = t
            .intermediate
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        lines.push(json!({
            "op_code": CREATE_TRIAL, "worker_id": WORKER, "study_id": 0,
            "state": t.state as u32,
            "values": t.value.map(|v| vec![v]),
            "params": p,
            "distributions": d,
            "intermediate_values": inter,
            "user_attrs": {
                "fastfc_trial_id": t.trial_id,
                "run_ids": runs.iter().map(|r| r.request.run_id).collect::<Vec<_>>(),
                "status": last.status.name(),
                "epochs": last.epochs_trained,
                "val_loss": if last.val_loss.is_finite() { json!(last.val_loss) } else { Value::Null },
            },
            "datetime_start": at(first.study_seconds - first.seconds),
            "datetime_complete": at(last.study_seconds),
        }));
    }
    let mut body = String::new();
    for l in &lines {
        body += &l.to_string();
        body.push('\n');
    }
    let tmp = out.with_extension("log.tmp");
    std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(body.as_bytes()).and_then(|_| f.sync_all()))
        .ctx_io(&tmp)?;
    std::fs::rename(&tmp, out).ctx_io(out)?;
    Ok(exported.len())
}
