//! `fastfc worker --storage URL --study NAME`: joins a study shared through PostgreSQL and trains
//! its runs until the study is done (see [`crate::worker`]).

use std::sync::Arc;

use crate::backend::Backend;
use crate::cli::WorkerArgs;
use crate::data::batches::steps_per_epoch;
use crate::error::Result;
use crate::results::postgres::{PgUrl, SharedStudy};

pub fn run(a: &WorkerArgs) -> Result<()> {
    crate::device::init_threads(a.threads)?;
    let url = PgUrl::parse(&a.storage, "--storage")?;
    let mut study = SharedStudy::open(&url, &a.study, None, a.lease)?;
    let cfg = study.config.clone();
    let (space, space_path) = super::search::stored_space(&a.study, &study.space)?;
    let strategy = || crate::search::strategy_for(&cfg, &space, &space_path);
    let plan = strategy()?.plan();
    let what = format!("study {:?}", a.study);
    let data = Arc::new(super::load_recorded(&a.data, cfg.data.as_ref(), &what)?);
    study.check_data(&data.fingerprint())?;
    let backend = crate::device::backend(&a.device, data.clone())?;
    let cohort = a
        .cohort_size
        .or(cfg.tpe.as_ref().map(|t| t.batch).filter(|&b| b > 0))
        .or(cfg.asha.map(|(_, b)| b))
        .unwrap_or(32);
    println!(
        "worker {}: study {:?} in {} ({}) | {}",
        study.worker,
        a.study,
        url.shown,
        plan.lines.first().map_or("", |l| l.as_str()),
        backend.name()
    );
    let mut ui = super::search::Ui::new(
        &plan,
        steps_per_epoch(data.train.len(), cfg.batch_size) as u64,
    );
    let mine = crate::worker::work(&backend, &mut study, &strategy, cohort, &mut ui)?;
    ui.bar.finish();
    println!(
        "worker {}: recorded {} runs; study {:?} is done",
        study.worker,
        mine.len(),
        a.study
    );
    Ok(())
}
