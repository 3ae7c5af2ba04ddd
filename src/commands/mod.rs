//! One function per subcommand; `main.rs` only parses and dispatches here.

pub mod bench;
pub mod data;
pub mod eval;
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

/// Loads the data named by the flags and says on stderr where it came from.
pub fn load_data(a: &DataArgs) -> Result<Dataset> {
    let t = std::time::Instant::now();
    let d = crate::data::load(&DataOptions {
        data_dir: a.data_dir.clone(),
        image_size: a.image_size,
        cache: !a.no_cache,
    })?;
    eprintln!(
        "data: {} ({}x{}, train {} / val {} / test {}, {:.0} ms)",
        d.origin,
        d.image_size,
        d.image_size,
        d.train.len(),
        d.val.len(),
        d.test.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(d)
}
