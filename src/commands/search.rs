//! `fastfc search`: builds the strategy, runs the study with a live view, prints the top 10 and
//! the best configuration with its validation and (once) test accuracy.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::backend::Backend;
use crate::cli::{SearchArgs, StrategyName};
use crate::data::batches::steps_per_epoch;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::results::journal::RunRecord;
use crate::space::SearchSpace;
use crate::strategy::tpe::{Tpe, TpeSettings};
use crate::strategy::{asha::Asha, grid, hyperband::Hyperband, random, Strategy};
use crate::study::{self, StudyConfig, StudyUi};

pub(crate) struct Ui {
    pub(crate) bar: Progress,
    steps_per_epoch: u64,
    done: usize,
    total: usize,
    best: f64,
    started: Instant,
}

impl Ui {
    pub(crate) fn new(plan: &crate::strategy::Plan, steps_per_epoch: u64) -> Ui {
        Ui {
            bar: Progress::new(plan.epochs as u64 * steps_per_epoch, "steps"),
            steps_per_epoch,
            done: 0,
            total: plan.runs,
            best: 0.0,
            started: Instant::now(),
        }
    }
}

impl StudyUi for Ui {
    fn steps(&self, n: u64) {
        self.bar.inc(n);
    }
    fn run_done(&mut self, r: &RunRecord, replayed: bool) {
        self.done += 1;
        if r.val_accuracy > self.best {
            self.best = r.val_accuracy;
        }
        if replayed {
            self.bar.inc(r.history.len() as u64 * self.steps_per_epoch);
        }
        let q = &r.request;
        let hb = q
            .bracket
            .map(|b| format!(" [it {} br {} rd {}]", b.iteration, b.bracket, b.round))
            .unwrap_or_default();
        self.bar.println(format!(
            "run {:>4}/{} trial {:>3} {:<10} {:<4} {:<4} drop {:.3} lr {:.2e} | epochs {:>2} val_acc {:.4} {}{}{} | best {:.4} | {:.1}s",
            self.done,
            self.total,
            q.trial_id,
            q.hp.hidden_label(),
            q.hp.activation.name(),
            q.hp.optimizer.name(),
            q.hp.dropout,
            q.hp.learning_rate,
            r.epochs_trained,
            r.val_accuracy,
            r.status.name(),
            hb,
            if replayed { " (from journal)" } else { "" },
            self.best,
            self.started.elapsed().as_secs_f64()
        ));
        self.bar.set_message(format!(
            "runs {}/{} best {:.4}",
            self.done, self.total, self.best
        ));
    }
}

/// The strategy a study's settings describe (a search builds it from its flags through the
/// settings, so a worker that only has the stored settings builds the same one).
pub fn strategy_for(
    cfg: &StudyConfig,
    space: &SearchSpace,
    space_path: &Path,
) -> Result<Box<dyn Strategy>> {
    let trials = cfg.trials.unwrap_or(108);
    let missing = |what: &str| {
        Error::backend(
            "study",
            format!("a {} study without its {what} settings", cfg.strategy),
        )
    };
    Ok(match cfg.strategy.as_str() {
        "random" => Box::new(random::new(space, trials, cfg.epochs, cfg.seed)?),
        "grid" => Box::new(grid::new(space, space_path, cfg.epochs, cfg.trials)?),
        "hyperband" => Box::new(Hyperband::new(
            space,
            cfg.max_epochs,
            cfg.factor,
            cfg.iterations,
            cfg.seed,
        )?),
        "tpe" => Box::new(Tpe::new(
            space,
            trials,
            cfg.epochs,
            cfg.seed,
            cfg.tpe.ok_or_else(|| missing("TPE"))?,
        )?),
        "asha" => {
            let (min_epochs, batch) = cfg.asha.ok_or_else(|| missing("ASHA"))?;
            Box::new(Asha::new(
                space,
                cfg.max_epochs,
                cfg.factor,
                min_epochs,
                trials,
                batch,
                cfg.seed,
            )?)
        }
        "bohb" => Box::new(Hyperband::bohb(
            space,
            cfg.max_epochs,
            cfg.factor,
            cfg.iterations,
            cfg.seed,
            cfg.tpe.ok_or_else(|| missing("BOHB"))?,
        )?),
        other => {
            return Err(Error::backend(
                "study",
                format!("unknown strategy {other:?} (made by another fastfc version?)"),
            ))
        }
    })
}

/// `--cohort-size`, or its default: 32, and 8 for TPE and ASHA (whose proposals learn from
/// each cohort).
fn cohort_size(a: &SearchArgs) -> usize {
    a.cohort_size.unwrap_or(match a.strategy {
        StrategyName::Tpe | StrategyName::Asha => 8,
        _ => 32,
    })
}

/// The model's settings of a TPE or BOHB study (None for the others).
fn tpe_settings(a: &SearchArgs) -> Option<TpeSettings> {
    match a.strategy {
        StrategyName::Tpe => Some(TpeSettings {
            batch: cohort_size(a),
            startup_trials: a.startup_trials.unwrap_or(10),
            candidates: a.ei_candidates.unwrap_or(24),
            random_fraction: 0.0,
        }),
        // BOHB's proposals do not depend on the cohort size.
        StrategyName::Bohb => Some(TpeSettings {
            batch: 0,
            startup_trials: 0,
            candidates: a.ei_candidates.unwrap_or(64),
            random_fraction: a.random_fraction.unwrap_or(1.0 / 3.0),
        }),
        _ => None,
    }
}

/// Refuses a flag that the chosen strategy does not take (it would be silently ignored).
fn check_strategy_flags(a: &SearchArgs) -> Result<()> {
    for flag in a.given_strategy_flags() {
        let (_, takes) = crate::cli::STRATEGY_FLAGS
            .iter()
            .find(|(f, _)| *f == flag)
            .expect("a listed flag");
        if !takes.contains(&a.strategy) {
            let names: Vec<&str> = takes.iter().map(|s| s.name()).collect();
            let instead = match flag {
                "--epochs" => "; Hyperband, BOHB and ASHA take --max-epochs",
                "--max-epochs" => "; random, grid and TPE take --epochs",
                _ => "",
            };
            return Err(Error::flag(
                flag,
                format!(
                    "does not apply to --strategy {} (only to {}){instead}",
                    a.strategy.name(),
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The settings a study folder holds, if it has them.
fn stored_config(out: &Path) -> Result<Option<StudyConfig>> {
    let p = out.join("study.json");
    if !p.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::file(&p, format!("not a fastfc study config: {e}")))
}

pub fn run(a: &SearchArgs) -> Result<()> {
    crate::device::init_threads(a.common.threads)?;
    check_strategy_flags(a)?;
    let epochs = a.epochs.unwrap_or(10);
    if epochs == 0 {
        return Err(Error::flag("--epochs", "0: expected at least 1"));
    }
    if a.cohort_size == Some(0) {
        return Err(Error::flag("--cohort-size", "0: expected at least 1"));
    }
    if a.common.batch_size == 0 {
        return Err(Error::flag("--batch-size", "0: expected at least 1"));
    }
    let name = a.strategy.name();
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{name}-seed{}", a.common.seed)));
    // A resumed study keeps its space and data unless the flags name them again (and then they
    // must be the same).
    let stored = if a.resume && a.shared.study.is_none() {
        stored_config(&out)?
    } else {
        None
    };
    let (space_text, space_path) = match (&a.space, &stored) {
        (Some(p), _) => (
            std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?,
            p.clone(),
        ),
        (None, Some(old)) => (old.space.clone(), out.join("study.json").join("space")),
        (None, None) => (
            crate::space::DEFAULT_TOML.to_string(),
            PathBuf::from("<default space>"),
        ),
    };
    let older = |out: &Path| {
        Error::flag(
            "--resume",
            format!(
                "{}: the study was made by an older fastfc (its study.json holds no search-space TOML and no data record), which this version cannot continue; start a new study in another folder",
                out.display()
            ),
        )
    };
    let (space_text, space) = match (&stored, SearchSpace::parse(&space_path, &space_text)) {
        (Some(old), Ok(sp)) if a.space.is_some() => {
            // The same space spelled otherwise (comments, order) is the same space.
            match SearchSpace::parse(&space_path, &old.space) {
                Ok(o) if o == sp => (old.space.clone(), sp),
                Ok(_) => (space_text, sp),
                Err(_) => return Err(older(&out)),
            }
        }
        (Some(old), Err(_)) if a.space.is_none() && old.data.is_none() => return Err(older(&out)),
        (_, r) => (space_text.clone(), r?),
    };
    let mut cfg = StudyConfig {
        strategy: name.to_string(),
        seed: a.common.seed,
        trials: a.trials,
        epochs,
        max_epochs: a.max_epochs.unwrap_or(10),
        factor: a.factor.unwrap_or(3),
        iterations: a.iterations.unwrap_or(2),
        patience: (a.patience > 0).then_some(a.patience),
        batch_size: a.common.batch_size,
        image_size: 0,
        space: space_text.clone(),
        data: None,
        tpe: tpe_settings(a),
        asha: (a.strategy == StrategyName::Asha)
            .then(|| (a.min_epochs.unwrap_or(1), cohort_size(a))),
    };
    let mut strategy = strategy_for(&cfg, &space, &space_path)?;
    let plan = strategy.plan();
    if a.dry_run {
        for l in &plan.lines {
            println!("{l}");
        }
        return Ok(());
    }
    if a.shared.study.is_none()
        && a.shared.storage.is_some()
        && std::env::var_os("FASTFC_STORAGE").is_none()
    {
        return Err(Error::flag(
            "--storage",
            "needs --study NAME: the shared study to create or join",
        ));
    }
    if let (Some(storage), Some(study_name)) = (&a.shared.storage, &a.shared.study) {
        if a.resume {
            eprintln!("note: --resume is implied for a shared study: finished runs are never trained again");
        }
        let space_text = match &a.space {
            Some(_) => space_text,
            None => String::new(),
        };
        let data = Arc::new(super::load_data(&a.common.data, a.common.seed)?);
        data.check_batch(cfg.batch_size)?;
        cfg.image_size = data.image_size();
        cfg.data = Some(data.record());
        return shared(a, data, storage, study_name, &cfg, &space_text, &plan, &out);
    }
    let what = format!("study {}", out.display());
    let data = match stored.as_ref().and_then(|o| o.data.as_ref()) {
        Some(r) => super::load_recorded(&a.common.data, Some(r), &what)?,
        None => super::load_data(&a.common.data, a.common.seed)?,
    };
    let data = Arc::new(data);
    data.check_batch(cfg.batch_size)?;
    cfg.image_size = data.image_size();
    cfg.data = Some(data.record());
    // The device first: a --device that cannot be used leaves no study folder behind.
    let backend = crate::device::backend(&a.common.device, data.clone())?;
    study::prepare_dir(&out, &cfg, a.resume)?;
    println!(
        "search: {} | {} runs planned, <= {} epochs | seed {} | {} | study in {}",
        plan.lines[0],
        plan.runs,
        plan.epochs,
        cfg.seed,
        backend.name(),
        out.display()
    );
    let mut ui = Ui::new(
        &plan,
        steps_per_epoch(data.train.len(), cfg.batch_size) as u64,
    );
    let records = study::run(
        &backend,
        strategy.as_mut(),
        &cfg,
        &out,
        cohort_size(a),
        &mut ui,
    )?;
    ui.bar.finish();
    let summary = study::finish(&backend, &cfg, &out, &records)?;
    print_top(&records);
    let b = &summary.best;
    println!(
        "\nbest: run {} (trial {}) hidden {:?} {} {} dropout {:.3} lr {:.2e}: val_accuracy {:.4}, test_accuracy {}",
        b.run_id,
        b.trial_id,
        b.config.hidden,
        b.config.activation,
        b.config.optimizer,
        b.config.dropout,
        b.config.learning_rate,
        b.val_accuracy,
        summary.test_accuracy.map_or("n/a".into(), |t| format!("{t:.4}"))
    );
    println!(
        "{} runs of {} trials, {} epochs trained, {:.1}s wall on {}",
        summary.runs, summary.trials, summary.epochs_trained, summary.wall_seconds, summary.device
    );
    let own = strategy.own_seconds();
    if own > 0.0 {
        println!(
            "{} spent {:.2}s proposing ({:.2}% of the wall time)",
            strategy.name(),
            own,
            100.0 * own / summary.wall_seconds.max(1e-9)
        );
    }
    let launches = crate::backend::cuda::launch::launches();
    if launches > 0 {
        println!(
            "{launches} kernel launches, {:.0} per second of wall time",
            launches as f64 / summary.wall_seconds.max(1e-9)
        );
    }
    println!(
        "wrote {}/{{journal.jsonl, results.csv, summary.json, best/}}",
        out.display()
    );
    Ok(())
}

/// The search space a shared study stored: its TOML, or the default space for "".
pub(crate) fn stored_space(study: &str, text: &str) -> Result<(SearchSpace, PathBuf)> {
    let path = PathBuf::from(format!("<the search space of study {study:?}>"));
    if text.is_empty() {
        return Ok((SearchSpace::default(), path));
    }
    Ok((SearchSpace::parse(&path, text)?, path))
}

/// `fastfc search --storage URL --study NAME`: creates or joins the shared study, works on it
/// as a worker does, then writes results.csv, summary.json and best/ to `out`.
#[allow(clippy::too_many_arguments)]
fn shared(
    a: &SearchArgs,
    data: Arc<crate::data::Dataset>,
    storage: &str,
    study_name: &str,
    cfg: &StudyConfig,
    space_text: &str,
    plan: &crate::strategy::Plan,
    out: &Path,
) -> Result<()> {
    let url = crate::results::postgres::PgUrl::parse(storage, "--storage")?;
    let backend = crate::device::backend(&a.common.device, data.clone())?;
    let mut study = crate::results::postgres::SharedStudy::open(
        &url,
        study_name,
        Some((cfg, space_text)),
        a.shared.lease,
    )?;
    study.check_data(&data.fingerprint())?;
    let (space, space_path) = stored_space(study_name, space_text)?;
    println!(
        "search: {} | {} runs planned | study {study_name:?} in {} as worker {} | {}",
        plan.lines[0],
        plan.runs,
        url.shown,
        study.worker,
        backend.name()
    );
    let mut ui = Ui::new(
        plan,
        steps_per_epoch(data.train.len(), cfg.batch_size) as u64,
    );
    let mine = crate::worker::work(
        &backend,
        &mut study,
        &|| strategy_for(cfg, &space, &space_path),
        cohort_size(a),
        &mut ui,
    )?;
    ui.bar.finish();
    let records = study.records()?;
    let summary = crate::worker::finish(&backend, &mut study, out)?;
    print_top(&records);
    let b = &summary.best;
    println!(
        "\nbest: run {} (trial {}) val_accuracy {:.4}, test_accuracy {}",
        b.run_id,
        b.trial_id,
        b.val_accuracy,
        summary
            .test_accuracy
            .map_or("n/a".into(), |t| format!("{t:.4}"))
    );
    println!(
        "this process trained {} of the study's {} runs; wrote {}/{{results.csv, summary.json, best/}}",
        mine.len(),
        records.len(),
        out.display()
    );
    Ok(())
}

fn print_top(records: &[RunRecord]) {
    let mut r: Vec<&RunRecord> = records.iter().collect();
    r.sort_by(|a, b| study::rank_records(a, b));
    println!("\ntop 10 by validation accuracy:");
    println!("rank  run  trial  hidden      activation  optimizer  dropout  lr        epochs  val_acc  val_loss  status");
    for (i, x) in r.iter().take(10).enumerate() {
        let q = &x.request;
        println!(
            "{:>4}  {:>3}  {:>5}  {:<10}  {:<10}  {:<9}  {:>7.3}  {:.2e}  {:>6}  {:.4}   {:.4}    {}",
            i + 1,
            q.run_id,
            q.trial_id,
            q.hp.hidden_label(),
            q.hp.activation.name(),
            q.hp.optimizer.name(),
            q.hp.dropout,
            q.hp.learning_rate,
            x.epochs_trained,
            x.val_accuracy,
            x.val_loss,
            x.status.name()
        );
    }
}
