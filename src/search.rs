//! A whole search as a front end asks for it: settings in ([`Search`]), the study's settings,
//! space and strategy made from them ([`prepare`]), then the study run on a backend and finished
//! (best model saved, test split scored once). The CLI's `fastfc search` and the Python package's
//! `fastfc.search` are both this, with their own ways of naming options and showing progress.

use std::path::{Path, PathBuf};

use crate::backend::Backend;
use crate::cli::StrategyName;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::results::journal::RunRecord;
use crate::space::SearchSpace;
use crate::strategy::tpe::{Tpe, TpeSettings};
use crate::strategy::{asha::Asha, grid, hyperband::Hyperband, random, Plan, Strategy};
use crate::study::{self, StudyConfig, StudyUi, Summary};

/// What a search is asked to do. `None` is "the strategy's default".
#[derive(Debug, Clone)]
pub struct Search {
    pub strategy: StrategyName,
    pub seed: u64,
    pub trials: Option<usize>,
    pub epochs: Option<usize>,
    pub max_epochs: Option<usize>,
    pub factor: Option<usize>,
    pub iterations: Option<usize>,
    pub min_epochs: Option<usize>,
    pub startup_trials: Option<usize>,
    pub ei_candidates: Option<usize>,
    pub random_fraction: Option<f64>,
    /// Trials trained together; default 32, and 8 for TPE and ASHA (whose proposals learn from
    /// each cohort).
    pub cohort_size: Option<usize>,
    /// Early-stopping patience in epochs (0: never).
    pub patience: usize,
    pub batch_size: usize,
    /// The space file's text and its path (for messages); None: on `resume` the stored space,
    /// else the default one.
    pub space: Option<(String, PathBuf)>,
    pub out: PathBuf,
    pub resume: bool,
}

/// The options that only some strategies take, by their CLI flag, with those strategies.
pub use crate::cli::STRATEGY_FLAGS as STRATEGY_OPTIONS;

impl Search {
    /// The strategy-specific options given (by their CLI flag names).
    pub fn given_options(&self) -> Vec<&'static str> {
        let given = [
            self.trials.is_some(),
            self.epochs.is_some(),
            self.max_epochs.is_some(),
            self.factor.is_some(),
            self.min_epochs.is_some(),
            self.iterations.is_some(),
            self.startup_trials.is_some(),
            self.ei_candidates.is_some(),
            self.random_fraction.is_some(),
        ];
        STRATEGY_OPTIONS
            .iter()
            .zip(given)
            .filter(|(_, g)| *g)
            .map(|((f, _), _)| *f)
            .collect()
    }

    /// Refuses an option the chosen strategy does not take (it would be silently ignored).
    /// `name` spells an option as the front end does (`--max-epochs`, `max_epochs=`).
    pub fn check_options(&self, name: &dyn Fn(&str) -> String) -> Result<()> {
        for flag in self.given_options() {
            let (_, takes) = STRATEGY_OPTIONS
                .iter()
                .find(|(f, _)| *f == flag)
                .expect("a listed option");
            if !takes.contains(&self.strategy) {
                let names: Vec<&str> = takes.iter().map(|s| s.name()).collect();
                let instead = match flag {
                    "--epochs" => {
                        format!("; Hyperband, BOHB and ASHA take {}", name("--max-epochs"))
                    }
                    "--max-epochs" => format!("; random, grid and TPE take {}", name("--epochs")),
                    _ => String::new(),
                };
                return Err(Error::flag(
                    name(flag),
                    format!(
                        "does not apply to {} {} (only to {}){instead}",
                        name("--strategy"),
                        self.strategy.name(),
                        names.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The cohort size the user asked for, or the strategy's own (TPE's batch of proposals and
    /// ASHA's jobs: 8); None leaves it to the backend ([`Backend::default_cohort`]).
    fn cohort_size(&self) -> Option<usize> {
        self.cohort_size.or(match self.strategy {
            StrategyName::Tpe | StrategyName::Asha => Some(8),
            _ => None,
        })
    }

    /// The model's settings of a TPE or BOHB study (None for the others).
    fn tpe_settings(&self) -> Option<TpeSettings> {
        match self.strategy {
            StrategyName::Tpe => Some(TpeSettings {
                batch: self.cohort_size().unwrap_or(8),
                startup_trials: self.startup_trials.unwrap_or(10),
                candidates: self.ei_candidates.unwrap_or(24),
                random_fraction: 0.0,
            }),
            // BOHB's proposals do not depend on the cohort size.
            StrategyName::Bohb => Some(TpeSettings {
                batch: 0,
                startup_trials: 0,
                candidates: self.ei_candidates.unwrap_or(64),
                random_fraction: self.random_fraction.unwrap_or(1.0 / 3.0),
            }),
            _ => None,
        }
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

/// A search made ready: the study's settings (data filled in by [`Prepared::bind`]), its space,
/// the strategy and its plan.
pub struct Prepared {
    pub cfg: StudyConfig,
    pub space: SearchSpace,
    /// Where the space came from, for messages.
    pub space_path: PathBuf,
    /// The settings the study folder already held (`resume`).
    pub stored: Option<StudyConfig>,
    pub plan: Plan,
    pub out: PathBuf,
    pub resume: bool,
    /// Trials trained together: the user's or the strategy's; None: the backend's default.
    pub cohort_size: Option<usize>,
    pub strategy: Box<dyn Strategy>,
}

/// The settings a study folder holds, if it has them.
pub fn stored_config(out: &Path) -> Result<Option<StudyConfig>> {
    let p = out.join("study.json");
    if !p.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::file(&p, format!("not a fastfc study config: {e}")))
}

/// The study's settings, space and strategy for `s` (nothing is written yet). A resumed study
/// keeps its stored space unless `s.space` names one again (then it must be the same).
pub fn prepare(s: &Search) -> Result<Prepared> {
    let epochs = s.epochs.unwrap_or(10);
    if epochs == 0 {
        return Err(Error::flag("--epochs", "0: expected at least 1"));
    }
    if s.cohort_size == Some(0) {
        return Err(Error::flag("--cohort-size", "0: expected at least 1"));
    }
    if s.batch_size == 0 {
        return Err(Error::flag("--batch-size", "0: expected at least 1"));
    }
    let out = s.out.clone();
    let stored = if s.resume { stored_config(&out)? } else { None };
    let (space_text, space_path) = match (&s.space, &stored) {
        (Some((text, p)), _) => (text.clone(), p.clone()),
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
        (Some(old), Ok(sp)) if s.space.is_some() => {
            // The same space spelled otherwise (comments, order) is the same space.
            match SearchSpace::parse(&space_path, &old.space) {
                Ok(o) if o == sp => (old.space.clone(), sp),
                Ok(_) => (space_text, sp),
                Err(_) => return Err(older(&out)),
            }
        }
        (Some(old), Err(_)) if s.space.is_none() && old.data.is_none() => return Err(older(&out)),
        (_, r) => (space_text.clone(), r?),
    };
    let cfg = StudyConfig {
        strategy: s.strategy.name().to_string(),
        seed: s.seed,
        trials: s.trials,
        epochs,
        max_epochs: s.max_epochs.unwrap_or(10),
        factor: s.factor.unwrap_or(3),
        iterations: s.iterations.unwrap_or(2),
        patience: (s.patience > 0).then_some(s.patience),
        batch_size: s.batch_size,
        image_size: 0,
        space: space_text,
        data: None,
        tpe: s.tpe_settings(),
        asha: (s.strategy == StrategyName::Asha)
            .then(|| (s.min_epochs.unwrap_or(1), s.cohort_size().unwrap_or(8))),
    };
    // A schedule's horizon: the most epochs a trial of this study trains.
    let horizon = match s.strategy {
        StrategyName::Random | StrategyName::Grid | StrategyName::Tpe => cfg.epochs,
        _ => cfg.max_epochs,
    };
    let space = space.with_horizon(horizon);
    space.check_horizon(&space_path)?;
    let strategy = strategy_for(&cfg, &space, &space_path)?;
    let plan = strategy.plan();
    Ok(Prepared {
        cfg,
        space,
        space_path,
        stored,
        plan,
        out,
        resume: s.resume,
        cohort_size: s.cohort_size(),
        strategy,
    })
}

impl Prepared {
    /// The data record the resumed study stored, if any.
    pub fn stored_data(&self) -> Option<&crate::data::DataRecord> {
        self.stored.as_ref().and_then(|o| o.data.as_ref())
    }

    /// Records `data` in the settings and makes the study folder (a new study needs an empty or
    /// absent folder; a resumed one the same settings and data, else the error names both).
    pub fn bind(&mut self, data: &Dataset) -> Result<()> {
        data.check_batch(self.cfg.batch_size)?;
        if let Some(b) = &self.space.knobs.batch_size {
            let largest = b.max() as usize;
            if data.train.len() < largest {
                return Err(Error::space(
                    &self.space_path,
                    "batch_size",
                    format!(
                        "{largest}: the training split has only {} rows; expected at least one full batch",
                        data.train.len()
                    ),
                ));
            }
        }
        self.cfg.image_size = data.image_size();
        self.cfg.data = Some(data.record());
        study::prepare_dir(&self.out, &self.cfg, self.resume)
    }

    /// One line saying what will run where.
    pub fn header(&self, backend: &str) -> String {
        format!(
            "search: {} | {} runs planned, <= {} epochs | seed {} | {} | study in {}",
            self.plan.lines[0],
            self.plan.runs,
            self.plan.epochs,
            self.cfg.seed,
            backend,
            self.out.display()
        )
    }

    /// Runs (or resumes) the study bound by [`Prepared::bind`] and finishes it: `results.csv`,
    /// `summary.json`, `best/`. Returns the summary and the records in run order.
    pub fn run<B: Backend>(
        &mut self,
        backend: &B,
        ui: &mut dyn StudyUi,
    ) -> Result<(Summary, Vec<RunRecord>)> {
        if self.cfg.data.is_none() {
            return Err(Error::backend(
                "study",
                "search run before its data was bound",
            ));
        }
        let records = study::run(
            backend,
            self.strategy.as_mut(),
            &self.cfg,
            &self.out,
            self.cohort_size.unwrap_or_else(|| backend.default_cohort()),
            ui,
        )?;
        let summary = study::finish(backend, &self.cfg, &self.out, &records)?;
        Ok((summary, records))
    }
}
