//! One function per subcommand; `main.rs` only parses and dispatches here.

pub mod bench;
pub mod data;
pub mod eval;
pub mod predict;
pub mod search;
pub mod train;
pub mod worker;

use crate::cli::{Cli, Command, DataArgs};
use crate::data::{DataOptions, Dataset};
use crate::error::Result;

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Search(a) => search::run(&a),
        Command::Worker(a) => worker::run(&a),
        Command::Train(a) => train::run(&a),
        Command::Eval(a) => eval::run(&a),
        Command::Predict(a) => predict::run(&a),
        Command::Data(c) => data::run(c),
        Command::Bench(a) => bench::run(&a),
        Command::Report(a) => {
            let mut studies = a
                .studies
                .iter()
                .map(|d| crate::report::load(d))
                .collect::<Result<Vec<_>>>()?;
            if !a.study.is_empty() {
                let Some(storage) = &a.storage else {
                    return Err(crate::error::Error::flag(
                        "--study",
                        "needs --storage URL (or FASTFC_STORAGE): the database that holds it",
                    ));
                };
                let url = crate::results::postgres::PgUrl::parse(storage, "--storage")?;
                for name in &a.study {
                    studies.push(crate::report::load_shared(&url, name)?);
                }
            }
            let out = match (&a.out, a.studies.first()) {
                (Some(o), _) => o.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) => {
                    return Err(crate::error::Error::flag(
                        "--out",
                        "missing: a report of shared studies needs a folder for its plots",
                    ))
                }
            };
            print!("{}", crate::report::table(&studies));
            print!("{}", crate::report::importance_table(&studies));
            for f in crate::report::draw(&studies, &out)? {
                println!("wrote {}", f.display());
            }
            Ok(())
        }
        Command::Export(crate::cli::ExportCommand::Optuna(a)) => {
            let n = crate::results::optuna::export(
                &a.study,
                &a.out,
                a.space.as_deref(),
                a.study_name.as_deref(),
            )?;
            println!(
                "wrote {} ({n} trials): optuna-dashboard {0}, or optuna.load_study(study_name=None, storage=JournalStorage(JournalFileBackend(\"{0}\")))",
                a.out.display()
            );
            Ok(())
        }
        Command::Devices => {
            crate::device::list();
            Ok(())
        }
    }
}

/// Loads the data named by the flags (splits drawn from `seed`) and says on stderr where it
/// came from.
pub fn load_data(a: &DataArgs, seed: u64) -> Result<Dataset> {
    load_options(&a.options(seed))
}

/// Loads the data `o` names and says on stderr where it came from.
pub fn load_options(o: &DataOptions) -> Result<Dataset> {
    let t = std::time::Instant::now();
    let d = crate::data::load(o)?;
    eprintln!(
        "data: {} ({}, {} classes, train {} / val {} / test {}, {:.0} ms)",
        d.origin,
        d.shape_label(),
        d.n_classes(),
        d.train.len(),
        d.val.len(),
        d.test.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(d)
}

/// The data a stored record names, reloaded: from `flags` when any is given (with the record's
/// seed), else from the record's own options; refused, naming both, when it is not the
/// record's data. `what` names the holder ("the model in runs/one", "study runs/hb").
pub fn load_recorded(
    flags: &DataArgs,
    record: Option<&crate::data::DataRecord>,
    what: &str,
) -> Result<Dataset> {
    let opts = match (record, flags.given()) {
        (Some(r), false) => {
            let mut o = r.options.clone();
            o.cache = !flags.no_cache;
            o
        }
        (Some(r), true) => flags.over(&r.options),
        (None, _) => flags.options(42),
    };
    let d = load_options(&opts)?;
    if let Some(r) = record {
        let now = d.record();
        if &now != r {
            return Err(crate::error::Error::flag(
                "--data",
                format!(
                    "{what} was trained on other data: {}; this is {}",
                    r.describe(),
                    now.describe()
                ),
            ));
        }
    }
    Ok(d)
}
