//! `fastfc search`: builds the strategy, runs the study with a live view, prints the top 10 and
//! the best configuration with its validation and (once) test accuracy.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::backend::Backend;
use crate::cli::SearchArgs;
use crate::data::batches::steps_per_epoch;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::results::journal::RunRecord;
use crate::search::{self, Search};
use crate::space::SearchSpace;
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

/// The library's [`Search`] for these flags.
fn settings(a: &SearchArgs, out: PathBuf) -> Result<Search> {
    let space = match &a.space {
        Some(p) => Some((
            std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?,
            p.clone(),
        )),
        None => None,
    };
    Ok(Search {
        strategy: a.strategy,
        seed: a.common.seed,
        trials: a.trials,
        epochs: a.epochs,
        max_epochs: a.max_epochs,
        factor: a.factor,
        iterations: a.iterations,
        min_epochs: a.min_epochs,
        startup_trials: a.startup_trials,
        ei_candidates: a.ei_candidates,
        random_fraction: a.random_fraction,
        cohort_size: a.cohort_size,
        patience: a.patience,
        batch_size: a.common.batch_size,
        space,
        out,
        resume: a.resume && a.shared.study.is_none(),
    })
}

pub fn run(a: &SearchArgs) -> Result<()> {
    crate::device::init_threads(a.common.threads)?;
    let name = a.strategy.name();
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{name}-seed{}", a.common.seed)));
    let s = settings(a, out.clone())?;
    s.check_options(&|f| f.to_string())?;
    let mut p = search::prepare(&s)?;
    if a.dry_run {
        for l in &p.plan.lines {
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
            Some(_) => p.cfg.space.clone(),
            None => String::new(),
        };
        let data = Arc::new(super::load_data(&a.common.data, a.common.seed)?);
        data.check_batch(p.cfg.batch_size)?;
        let mut cfg = p.cfg.clone();
        cfg.image_size = data.image_size();
        cfg.data = Some(data.record());
        return shared(a, data, storage, study_name, &cfg, &space_text, &p, &out);
    }
    let what = format!("study {}", out.display());
    let data = match p.stored_data() {
        Some(r) => super::load_recorded(&a.common.data, Some(r), &what)?,
        None => super::load_data(&a.common.data, a.common.seed)?,
    };
    let data = Arc::new(data);
    data.check_batch(p.cfg.batch_size)?;
    // The device first: a --device that cannot be used leaves no study folder behind.
    let backend = crate::device::backend(&a.common.device, data.clone())?;
    p.bind(&data)?;
    println!("{}", p.header(&backend.name()));
    let mut ui = Ui::new(
        &p.plan,
        steps_per_epoch(data.train.len(), p.cfg.batch_size) as u64,
    );
    let (summary, records) = p.run(&backend, &mut ui)?;
    ui.bar.finish();
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
    let own = p.strategy.own_seconds();
    if own > 0.0 {
        println!(
            "{} spent {:.2}s proposing ({:.2}% of the wall time)",
            p.strategy.name(),
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
    // The napkin model over the whole search: the dense FLOP of every epoch the study's runs
    // trained (training and validation passes), over the wall time and, on a GPU, its peak FP32.
    let flop: f64 = records
        .iter()
        .map(|r| {
            let mut dims = vec![data.dim()];
            dims.extend(&r.request.hp.hidden);
            dims.push(data.n_classes());
            super::bench::epoch_flop(&dims, data.train.len(), data.val.len())
                * r.epochs_trained as f64
        })
        .sum();
    let rate = flop / 1e9 / summary.wall_seconds.max(1e-9);
    let share = backend.peak_gflops().map_or(String::new(), |p| {
        format!(
            " = {:.2}% of peak FP32 (floor {:.3} s)",
            100.0 * rate / p,
            super::bench::floor_seconds(flop, p)
        )
    });
    let paths = backend.paths().map_or(String::new(), |p| {
        format!(
            "cuda engine: {} trial loads fused, {} per-op; ",
            p.fused, p.per_op
        )
    });
    println!(
        "{paths}{:.2} TFLOP trained, {rate:.1} GFLOP/s of wall time{share}",
        flop / 1e12
    );
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
    p: &search::Prepared,
    out: &Path,
) -> Result<()> {
    let plan = &p.plan;
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
        &|| search::strategy_for(cfg, &space, &space_path),
        // Trials are claimed from the shared study a cohort at a time: one machine taking all of
        // them would leave the others idle, so a shared study keeps 32 unless told.
        p.cohort_size.unwrap_or(32),
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
