//! Command-line interface (clap derive). Names follow the contract in README.md (the commands and the study folder).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model::{Activation, Optimizer};

#[derive(Debug, Parser)]
#[command(
    name = "fastfc",
    version,
    about = "Hyperparameter search for small fully-connected networks, on CUDA or CPU"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Search hyperparameters (random, grid, Hyperband, TPE, BOHB or ASHA) and keep the best model.
    Search(SearchArgs),
    /// Join a study shared through PostgreSQL and train its runs until it is done.
    Worker(WorkerArgs),
    /// Train one configuration, report validation and test accuracy, save the model.
    Train(TrainArgs),
    /// Re-score a saved model on the validation and test splits.
    Eval(EvalArgs),
    /// Classify rows with a saved model: class ids, names and probabilities as CSV.
    Predict(PredictArgs),
    /// Inspect or export the preprocessed data.
    #[command(subcommand)]
    Data(DataCommand),
    /// Plot and compare studies: best-so-far accuracy vs time and epochs, accuracy by hyperparameter.
    Report(ReportArgs),
    /// Write a study in another tool's format.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Time one training epoch of a model on this machine (napkin math included).
    Bench(BenchArgs),
    /// List the compute devices fastfc can use.
    Devices,
}

/// `--device`: auto | cpu | cuda | cuda:N | cuda:all | cuda:N,M,… | emu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// CUDA device 0 when a usable GPU and kernels are present, else the CPU (with a note).
    Auto,
    Cpu,
    /// CUDA device N.
    Cuda(usize),
    /// Several CUDA devices, each cohort's trials spread over them: every device (`cuda:all`,
    /// `None`) or the listed ones (`cuda:0,2`).
    Cudas(Option<Vec<usize>>),
    /// The CUDA engine on the emulated executor (slow; checks the engine without a GPU).
    Emu,
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            "emu" => Ok(Device::Emu),
            "cuda:all" => Ok(Device::Cudas(None)),
            _ => {
                let bad = || {
                    format!(
                        "`{s}`: expected auto, cpu, cuda, cuda:N (N = 0, 1, ...), cuda:all, cuda:N,M,... or emu"
                    )
                };
                let list = s.strip_prefix("cuda:").ok_or_else(bad)?;
                let ns: Vec<usize> = list
                    .split(',')
                    .map(|n| n.trim().parse().map_err(|_| bad()))
                    .collect::<Result<_, _>>()?;
                if let Some(n) = ns
                    .iter()
                    .enumerate()
                    .find_map(|(i, n)| ns[..i].contains(n).then_some(n))
                {
                    return Err(format!("`{s}`: cuda:{n} is listed twice"));
                }
                Ok(match ns[..] {
                    [n] => Device::Cuda(n),
                    _ => Device::Cudas(Some(ns)),
                })
            }
        }
    }
}

/// Flags shared by the commands that train.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Compute device: auto, cpu, cuda (= cuda:0), cuda:N, cuda:all (every GPU, each cohort
    /// spread over them), cuda:0,2 (those GPUs), or emu.
    #[arg(long, default_value = "auto")]
    pub device: Device,
    /// Study seed: initialisation, batch order, dropout masks and proposals derive from it.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Mini-batch size.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[command(flatten)]
    pub data: DataArgs,
    /// CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct DataArgs {
    /// Your data: a .npz (x_train, y_train, optionally x_val/y_val, x_test/y_test), a CSV (a
    /// header row; see --label), or a folder of .npy files (same names) or of IDX files (any
    /// MNIST-family set). Default: Fashion-MNIST (see --data-dir).
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// CSV: the label column (default: the last column).
    #[arg(long, value_name = "COLUMN")]
    pub label: Option<String>,
    /// Images are resized to SIZE x SIZE (default: 8x8 for Fashion-MNIST, as the seed; other
    /// images keep their size).
    #[arg(long, value_name = "SIZE")]
    pub image_size: Option<usize>,
    /// Folder with the Fashion-MNIST IDX files (raw or .gz); default: $FASTFC_DATA, then
    /// /usr/share/datasets/fashion-mnist, then the embedded 8x8 copy.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Validation rows drawn from the training rows (stratified, from --seed) when the data
    /// brings no validation split [default: 0.2].
    #[arg(long, value_name = "F")]
    pub val_fraction: Option<f64>,
    /// Test rows drawn from the training rows when the data brings no test split [default: 0.2].
    #[arg(long, value_name = "F")]
    pub test_fraction: Option<f64>,
    /// Feature scaling fitted on the training split: standard, minmax or none [default: none
    /// for images, standard for tables].
    #[arg(long, value_parser = parse_from_str::<crate::data::Scale>)]
    pub scale: Option<crate::data::Scale>,
    /// Neither read nor write the preprocessing cache.
    #[arg(long)]
    pub no_cache: bool,
}

impl DataArgs {
    /// Whether any flag naming the data was given (else a resumed study or a model reloads the
    /// data it stored).
    pub fn given(&self) -> bool {
        self.data.is_some()
            || self.label.is_some()
            || self.image_size.is_some()
            || self.data_dir.is_some()
            || self.val_fraction.is_some()
            || self.test_fraction.is_some()
            || self.scale.is_some()
    }

    /// `base` (the options a study or model recorded) with the flags given laid over it: a new
    /// source replaces the old one, every other flag given replaces its own setting only.
    pub fn over(&self, base: &crate::data::DataOptions) -> crate::data::DataOptions {
        let mut o = base.clone();
        if self.data.is_some() || self.data_dir.is_some() {
            o.data = self.data.clone();
            o.data_dir = self.data_dir.clone();
        }
        if self.label.is_some() {
            o.label = self.label.clone();
        }
        if self.image_size.is_some() {
            o.image_size = self.image_size;
        }
        if self.val_fraction.is_some() {
            o.val_fraction = self.val_fraction;
        }
        if self.test_fraction.is_some() {
            o.test_fraction = self.test_fraction;
        }
        if self.scale.is_some() {
            o.scale = self.scale;
        }
        o.cache = !self.no_cache;
        o
    }

    /// The options these flags name, with the split drawn from `seed`.
    pub fn options(&self, seed: u64) -> crate::data::DataOptions {
        crate::data::DataOptions {
            data: self.data.clone(),
            data_dir: self.data_dir.clone(),
            label: self.label.clone(),
            image_size: self.image_size,
            val_fraction: self.val_fraction,
            test_fraction: self.test_fraction,
            scale: self.scale,
            seed,
            cache: !self.no_cache,
        }
    }
}

/// The data flags of `data info` and `data export`, with the seed the splits are drawn from.
#[derive(Debug, Clone, Args)]
pub struct DataCmdArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The seed the validation and test splits are drawn from (as `search --seed`).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Hidden layer widths, comma-separated.
    #[arg(long, value_delimiter = ',', required = true, value_name = "W,W,...")]
    pub hidden: Vec<usize>,
    #[arg(long, value_parser = parse_from_str::<Activation>)]
    pub activation: Activation,
    #[arg(long, value_parser = parse_from_str::<Optimizer>, default_value = "adam")]
    pub optimizer: Optimizer,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3, allow_hyphen_values = true)]
    pub lr: f32,
    /// Dropout rate after each hidden layer, in [0, 1).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub dropout: f32,
    #[command(flatten)]
    pub knobs: KnobArgs,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Early stopping: epochs without a lower val_loss before stopping (0 disables).
    #[arg(long, default_value_t = 3)]
    pub patience: usize,
    /// Write model.safetensors, config.json and metrics.json here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace a model that `--out` already holds (else train refuses that folder).
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub common: Common,
}

/// The optimizer's parameters and the learning-rate schedule of `fastfc train` (each left out
/// takes Keras' default for the optimizer; one the optimizer lacks is refused).
#[derive(Debug, Clone, Default, Args)]
pub struct KnobArgs {
    /// β1 (adam, adamw, lion).
    #[arg(long, allow_hyphen_values = true)]
    pub beta_1: Option<f64>,
    /// β2 (adam, adamw, lion).
    #[arg(long, allow_hyphen_values = true)]
    pub beta_2: Option<f64>,
    /// Momentum (sgd, rmsprop; default 0).
    #[arg(long, allow_hyphen_values = true)]
    pub momentum: Option<f64>,
    /// Nesterov momentum (sgd).
    #[arg(long)]
    pub nesterov: bool,
    /// ρ, the mean square's decay (rmsprop; default 0.9).
    #[arg(long, allow_hyphen_values = true)]
    pub rho: Option<f64>,
    /// Weight decay: decoupled for adamw (default 0.004), L2 added to the gradient otherwise.
    #[arg(long, allow_hyphen_values = true)]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule: constant, cosine, exponential or step.
    #[arg(long, default_value = "constant")]
    pub schedule: String,
    /// Cosine: epochs of linear warmup from 0 (default 0).
    #[arg(long, allow_hyphen_values = true)]
    pub warmup_epochs: Option<f64>,
    /// Cosine: epochs until the rate reaches 0 (default --epochs); exponential/step: epochs per
    /// decay by --decay-rate (defaults 1 and 3).
    #[arg(long, allow_hyphen_values = true)]
    pub decay_epochs: Option<f64>,
    /// Exponential/step: the factor per --decay-epochs (defaults 0.9 and 0.5).
    #[arg(long, allow_hyphen_values = true)]
    pub decay_rate: Option<f64>,
}

impl KnobArgs {
    /// Puts these flags into `hp` (`horizon`: the epochs a cosine schedule decays over by default).
    pub fn apply(
        &self,
        hp: &mut crate::model::Hyperparams,
        horizon: usize,
    ) -> crate::error::Result<()> {
        hp.beta_1 = self.beta_1;
        hp.beta_2 = self.beta_2;
        hp.momentum = self.momentum;
        hp.nesterov = self.nesterov.then_some(true);
        hp.rho = self.rho;
        hp.weight_decay = self.weight_decay;
        hp.schedule = crate::schedule::Schedule::build(
            &self.schedule,
            self.decay_epochs,
            self.warmup_epochs,
            self.decay_rate,
            horizon,
        )
        .map_err(|e| crate::error::Error::flag("--schedule", e))?;
        let given = |f: &str, v: bool| -> crate::error::Result<()> {
            if v {
                return Err(crate::error::Error::flag(
                    f,
                    format!("the {} schedule has no such parameter", hp.schedule.name()),
                ));
            }
            Ok(())
        };
        given(
            "--warmup-epochs",
            self.warmup_epochs.is_some() && hp.schedule.warmup_epochs().is_none(),
        )?;
        given(
            "--decay-epochs",
            self.decay_epochs.is_some() && hp.schedule.decay_epochs().is_none(),
        )?;
        given(
            "--decay-rate",
            self.decay_rate.is_some() && hp.schedule.decay_rate().is_none(),
        )?;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyName {
    Random,
    Grid,
    Hyperband,
    /// Tree-structured Parzen estimator (Optuna 4's default sampler), a cohort at a time.
    Tpe,
    /// Hyperband's brackets with configurations from TPE (Falkner et al. 2018).
    Bohb,
    /// Asynchronous successive halving (Li et al. 2020): promotes as soon as a run is in the
    /// top 1/factor of its rung.
    Asha,
}

/// The flags of `search` that only some strategies take: (flag, the strategies it applies to).
pub const STRATEGY_FLAGS: [(&str, &[StrategyName]); 9] = {
    use StrategyName::*;
    [
        ("--trials", &[Random, Grid, Tpe, Asha]),
        ("--epochs", &[Random, Grid, Tpe]),
        ("--max-epochs", &[Hyperband, Bohb, Asha]),
        ("--factor", &[Hyperband, Bohb, Asha]),
        ("--min-epochs", &[Asha]),
        ("--iterations", &[Hyperband, Bohb]),
        ("--startup-trials", &[Tpe]),
        ("--ei-candidates", &[Tpe, Bohb]),
        ("--random-fraction", &[Bohb]),
    ]
};

impl StrategyName {
    pub fn name(self) -> &'static str {
        match self {
            StrategyName::Random => "random",
            StrategyName::Grid => "grid",
            StrategyName::Hyperband => "hyperband",
            StrategyName::Tpe => "tpe",
            StrategyName::Bohb => "bohb",
            StrategyName::Asha => "asha",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct SearchArgs {
    #[arg(long, value_enum, default_value_t = StrategyName::Hyperband)]
    pub strategy: StrategyName,
    /// Random, TPE and ASHA: number of configurations (default 108); grid: keep the first N points.
    #[arg(long)]
    pub trials: Option<usize>,
    /// Random, grid and TPE: epochs per trial (early stopping may end a trial sooner) [default: 10].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Hyperband, BOHB and ASHA: epochs of a fully trained trial [default: 10].
    #[arg(long)]
    pub max_epochs: Option<usize>,
    /// Hyperband, BOHB and ASHA: reduction factor between rounds (rungs) [default: 3].
    #[arg(long)]
    pub factor: Option<usize>,
    /// ASHA: the lowest rung trains at least this many epochs [default: 1].
    #[arg(long)]
    pub min_epochs: Option<usize>,
    /// Hyperband and BOHB: how many times to run all brackets [default: 2].
    #[arg(long)]
    pub iterations: Option<usize>,
    /// TPE: configurations drawn at random before the model is used [default: 10].
    #[arg(long)]
    pub startup_trials: Option<usize>,
    /// TPE and BOHB: candidates drawn from l(x) per parameter; the one with the best l(x)/g(x)
    /// wins (default: 24 for TPE, as Optuna; 64 for BOHB, as its paper).
    #[arg(long)]
    pub ei_candidates: Option<usize>,
    /// BOHB: fraction of new configurations drawn at random instead of from the model
    /// [default: 1/3].
    #[arg(long)]
    pub random_fraction: Option<f64>,
    /// Search space (TOML); default: the seed's space (see `fastfc search --help` and README).
    #[arg(long, value_name = "FILE")]
    pub space: Option<PathBuf>,
    /// Early stopping patience in epochs (0 disables).
    #[arg(long, default_value_t = 3)]
    pub patience: usize,
    /// Study folder (journal.jsonl, results.csv, summary.json, best/); default runs/STRATEGY-seedSEED.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue the interrupted study in --out without retraining finished runs.
    #[arg(long)]
    pub resume: bool,
    /// Print the schedule (runs, epochs) and exit without training.
    #[arg(long)]
    pub dry_run: bool,
    /// Most trials trained together in one cohort (default: 32 on the CPU and in a shared study;
    /// on CUDA as many as the GPU's memory holds, all of a study's runs that start together). TPE proposes this many
    /// configurations at a time (default 8; 1 is the sequential algorithm), and ASHA this many
    /// jobs (default 8), so such a study resumes only with the same value.
    #[arg(long)]
    pub cohort_size: Option<usize>,
    #[command(flatten)]
    pub shared: SharedArgs,
    #[command(flatten)]
    pub common: Common,
}

/// A study shared by many processes through PostgreSQL.
#[derive(Debug, Clone, Args)]
pub struct SharedArgs {
    /// Keep the study (--study) in PostgreSQL, shared with `fastfc worker`s on this or other
    /// machines: postgresql://user:password@host:port/database[?sslmode=verify-full&sslrootcert=FILE].
    /// Better from the environment (FASTFC_STORAGE), where `ps` does not show the password.
    /// --out then only receives the final results.
    #[arg(
        long,
        value_name = "URL",
        env = "FASTFC_STORAGE",
        hide_env_values = true
    )]
    pub storage: Option<String>,
    /// The shared study's name (created, or joined if it exists with the same settings).
    #[arg(long, value_name = "NAME", requires = "storage")]
    pub study: Option<String>,
    /// A claim on runs lasts this long without a heartbeat (renewed every third of it); a dead
    /// worker's runs go back to the pool after it.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub lease: std::time::Duration,
}

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The study's database (as given to `fastfc search --storage`); better from the environment
    /// (FASTFC_STORAGE), where `ps` does not show the password.
    #[arg(
        long,
        value_name = "URL",
        env = "FASTFC_STORAGE",
        hide_env_values = true
    )]
    pub storage: String,
    /// The study to work on; it must exist.
    #[arg(long, value_name = "NAME")]
    pub study: String,
    /// A claim on runs lasts this long without a heartbeat.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub lease: std::time::Duration,
    /// Most trials trained together (default: the study's, else 32).
    #[arg(long)]
    pub cohort_size: Option<usize>,
    /// Compute device (as for search).
    #[arg(long, default_value = "auto")]
    pub device: Device,
    /// The data (as for search; default: the data the study recorded). It must be the study's.
    #[command(flatten)]
    pub data: DataArgs,
    /// CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Study folders written by `fastfc search --out`.
    #[arg(required_unless_present = "study", value_name = "DIR")]
    pub studies: Vec<PathBuf>,
    /// A PostgreSQL database holding shared studies (with --study; default FASTFC_STORAGE).
    #[arg(
        long,
        value_name = "URL",
        env = "FASTFC_STORAGE",
        hide_env_values = true
    )]
    pub storage: Option<String>,
    /// Shared studies to report, by name (repeatable).
    #[arg(long, value_name = "NAME")]
    pub study: Vec<String>,
    /// Where to write the plots (default: the first study's folder).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Optuna's journal file: open it with `optuna-dashboard FILE` or
    /// `optuna.load_study(storage=JournalStorage(JournalFileBackend(FILE)))`.
    Optuna(ExportOptunaArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ExportOptunaArgs {
    /// A study folder written by `fastfc search --out`.
    #[arg(value_name = "DIR")]
    pub study: PathBuf,
    /// The journal file to write (must not exist).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The search space file the study used, if it was not the default.
    #[arg(long, value_name = "FILE")]
    pub space: Option<PathBuf>,
    /// The Optuna study name (default: the folder's name).
    #[arg(long, value_name = "NAME")]
    pub study_name: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// A folder written by `fastfc train --out` (or a study's `best/`), or its model.safetensors.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The data (default: the data the model was trained on, as its config.json records it);
    /// other data is refused.
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// A folder written by `fastfc train --out` (or a study's `best/`).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The rows to classify: a CSV (with the training CSV's feature columns, by name; a label
    /// column, if there, is only compared), a .npy or .npz (x_test, else x) array, or an IDX
    /// images file. The model's stored scaling is applied.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Where to write the predictions (CSV: row, class_id, class, then one probability column
    /// per class); default predictions.csv. An existing file is refused unless --overwrite.
    #[arg(long, value_name = "FILE", default_value = "predictions.csv")]
    pub out: PathBuf,
    /// Replace --out if it exists.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Where the data comes from, split shapes and class counts.
    Info(DataCmdArgs),
    /// Write the splits as .npy: {train,val,test}_{x,y}.npy (x: float32, N rows of S*S; y: uint8, N labels).
    Export {
        #[command(flatten)]
        data: DataCmdArgs,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Write the embedded-data payload from real IDX files (maintainers).
    #[command(hide = true)]
    PackEmbedded {
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Hidden widths of the timed model (default: the seed's best, 64x4).
    #[arg(long, value_delimiter = ',', default_value = "64,64,64,64")]
    pub hidden: Vec<usize>,
    #[arg(long, value_parser = parse_from_str::<Activation>, default_value = "elu")]
    pub activation: Activation,
    #[arg(long, value_parser = parse_from_str::<Optimizer>, default_value = "adam")]
    pub optimizer: Optimizer,
    #[arg(long, default_value_t = 0.049)]
    pub dropout: f32,
    /// Trials trained together (a cohort of copies with different seeds).
    #[arg(long, default_value_t = 1)]
    pub trials: usize,
    /// Timed epochs (after one warm-up epoch).
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: Common,
}

fn parse_from_str<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, String> {
    s.parse()
}
