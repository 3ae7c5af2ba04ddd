//! `fastfc._native`: the Python package's way into the fastfc library, in-process.
//!
//! - Arrays in: numpy features (float32/float64 or integer, C or Fortran order, 2-D tables or
//!   3-D images) are copied once, with the GIL held, into the engine's own buffers; nothing reads
//!   the caller's memory after that. Labels arrive as class ids of classes the Python layer has
//!   ordered (`np.unique`'s order, which its `classes_` keeps).
//! - Work off the calling thread: a search or a training runs on a thread of its own with the
//!   GIL released; the calling thread waits on it, relays progress to Python (Jupyter never
//!   shows what Rust prints to fd 1), and checks for signals, as pyo3's guide advises, so Ctrl-C
//!   raises `KeyboardInterrupt` after the engine stops at the next epoch, with every finished
//!   run journaled.
//! - Errors: the library's [`Error`] becomes the Python exception a user expects (`ValueError`,
//!   `FileExistsError`, `FileNotFoundError`, `MemoryError`, ...) with the core's message, its
//!   CLI flag names spelled as the Python arguments.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use numpy::{
    Element, IntoPyArray, PyArray1, PyArray2, PyArray3, PyArrayDyn, PyArrayMethods,
    PyReadonlyArray1, PyReadonlyArrayDyn,
};
use pyo3::exceptions::{
    PyConnectionError, PyFileExistsError, PyFileNotFoundError, PyKeyboardInterrupt, PyMemoryError,
    PyOSError, PyPermissionError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde::Deserialize;

use fastfc::backend::cpu::CpuTrial;
use fastfc::backend::Backend;
use fastfc::cli::{Device, StrategyName};
use fastfc::data::memory::{self, Arrays, Shape, Validation};
use fastfc::data::{DataOptions, Dataset, Scale};
use fastfc::error::Error;
use fastfc::model::{Hyperparams, TrialSpec, TrialState};
use fastfc::results::journal::RunRecord;
use fastfc::results::model_io::{self, ModelConfig};
use fastfc::search::Search;
use fastfc::study::StudyUi;
use fastfc::train::{train_cohort, Event, Stop, TrainConfig, TrialJob};

/// A CLI flag as the Python argument that sets it.
fn py_name(flag: &str) -> String {
    match flag {
        "--val-fraction" => "validation_split".into(),
        "--lr" => "learning_rate".into(),
        f if f.starts_with("--device ") => format!("device=\"{}\"", &f["--device ".len()..]),
        f => match f.strip_prefix("--") {
            Some(rest) => rest.replace('-', "_"),
            None => f.to_string(),
        },
    }
}

/// A core message with the CLI's flags spelled as the Python arguments ("pass --resume" is
/// "pass resume=True" here).
fn py_words(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find("--") {
        let before_ok = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
        let tail = &rest[i + 2..];
        let n = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(tail.len());
        out.push_str(&rest[..i]);
        if before_ok && n > 0 && tail.as_bytes()[0].is_ascii_alphabetic() {
            let flag = &rest[i..i + 2 + n];
            let after = &tail[n..];
            let word = match flag {
                "--resume" => "resume=True".to_string(),
                "--overwrite" => "overwrite=True".to_string(),
                "--device" if after.starts_with(" cpu") => {
                    rest = &after[4..];
                    out.push_str("device=\"cpu\"");
                    continue;
                }
                f => py_name(f),
            };
            out.push_str(&word);
            rest = after;
        } else {
            out.push_str("--");
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

fn to_py(e: Error) -> PyErr {
    match e {
        Error::Exists { flag, msg } => {
            PyFileExistsError::new_err(format!("{}: {}", py_name(&flag), py_words(&msg)))
        }
        Error::Flag { flag, msg } => {
            PyValueError::new_err(format!("{}: {}", py_name(&flag), py_words(&msg)))
        }
        Error::Io { path, source } => {
            let m = format!("{}: {source}", path.display());
            match source.kind() {
                std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(m),
                std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(m),
                _ => PyOSError::new_err(m),
            }
        }
        Error::OutOfMemory { .. } => PyMemoryError::new_err(e.to_string()),
        Error::Interrupted(m) => PyKeyboardInterrupt::new_err(m),
        Error::Backend { .. } => PyRuntimeError::new_err(e.to_string()),
        Error::Storage { .. } => PyConnectionError::new_err(e.to_string()),
        Error::File { .. } | Error::Space { .. } | Error::Data(_) => {
            PyValueError::new_err(py_words(&e.to_string()))
        }
    }
}

fn value_error(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

/// Features copied out of a numpy array.
struct Features {
    x: Vec<f32>,
    rows: usize,
    dim: usize,
    image: Option<(usize, usize)>,
    /// The rows `assign` marked 1 (a validation split drawn before copying).
    drawn: Vec<f32>,
}

/// An image's (height, width).
type Image = Option<(usize, usize)>;

/// (rows, features per row, image shape) of an array of `shape`.
fn row_shape(shape: &[usize], name: &str) -> PyResult<(usize, usize, Image)> {
    let (rows, dim, image) = match shape {
        [n, d] => (*n, *d, None),
        [n, h, w] => (*n, h * w, Some((*h, *w))),
        [n, h, w, 1] => (*n, h * w, Some((*h, *w))),
        _ => {
            return Err(value_error(format!(
                "{name}: an array of shape {shape:?}; expected (rows, features), or images as (rows, height, width)"
            )))
        }
    };
    if rows == 0 || dim == 0 {
        return Err(value_error(format!(
            "{name}: an array of shape {shape:?}; expected at least one row and one feature"
        )));
    }
    Ok((rows, dim, image))
}

fn reserve(n: usize, name: &str) -> PyResult<Vec<f32>> {
    let mut v: Vec<f32> = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| PyMemoryError::new_err(format!("{name}: no memory for {n} float32 values")))?;
    Ok(v)
}

/// Copies the rows of `a` (row i to the drawn rows when `assign[i] == 1`), refusing a value
/// that is not a finite f32, by row and column.
fn copy_features<T: Element + Copy>(
    a: &PyReadonlyArrayDyn<'_, T>,
    name: &str,
    conv: impl Fn(T) -> f32,
    assign: Option<&[u8]>,
) -> PyResult<Features> {
    let v = a.as_array();
    let (rows, dim, image) = row_shape(v.shape(), name)?;
    let n_drawn = assign.map_or(0, |a| a.iter().filter(|&&s| s == 1).count());
    let mut x = reserve((rows - n_drawn) * dim, name)?;
    let mut drawn = reserve(n_drawn * dim, name)?;
    let mut put = |i: usize, row: &mut dyn Iterator<Item = f32>| -> PyResult<()> {
        let dst = if assign.is_some_and(|a| a[i] == 1) {
            &mut drawn
        } else {
            &mut x
        };
        let start = dst.len();
        dst.extend(row);
        if let Some(j) = dst[start..].iter().position(|v| !v.is_finite()) {
            return Err(value_error(format!(
                "{name}: row {i}, column {j}: {}; expected finite numbers within float32's range (fill or drop missing values first)",
                dst[start + j]
            )));
        }
        Ok(())
    };
    match v.as_slice() {
        Some(s) => {
            for (i, row) in s.chunks_exact(dim).enumerate() {
                put(i, &mut row.iter().map(|&t| conv(t)))?;
            }
        }
        None => {
            for (i, row) in v.outer_iter().enumerate() {
                put(i, &mut row.iter().map(|&t| conv(t)))?;
            }
        }
    }
    Ok(Features {
        x,
        rows,
        dim,
        image,
        drawn,
    })
}

/// The features of `obj`, a numpy array of a real or integer dtype (see [`copy_features`]).
fn features(obj: &Bound<'_, PyAny>, name: &str, assign: Option<&[u8]>) -> PyResult<Features> {
    macro_rules! as_f32 {
        ($($t:ty),*) => {
            $(
                if let Ok(a) = obj.cast::<PyArrayDyn<$t>>() {
                    return copy_features(&a.readonly(), name, |v| v as f32, assign);
                }
            )*
        };
    }
    as_f32!(f32, f64, u8, i8, u16, i16, u32, i32, u64, i64);
    if let Ok(a) = obj.cast::<PyArrayDyn<bool>>() {
        return copy_features(&a.readonly(), name, |v| v as u8 as f32, assign);
    }
    let kind = match obj.getattr("dtype") {
        Ok(d) => format!("an array of dtype {d}"),
        Err(_) => format!("a {}", obj.get_type().name()?),
    };
    Err(value_error(format!(
        "{name}: {kind}; expected a numpy array of numbers (float32, float64, integers or bools)"
    )))
}

/// The rows of `obj` (a numpy array), read off its shape without copying anything.
fn rows_of(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<usize> {
    let shape: Vec<usize> = obj
        .getattr("shape")
        .and_then(|s| s.extract())
        .map_err(|_| value_error(format!("{name}: not a numpy array")))?;
    Ok(row_shape(&shape, name)?.0)
}

/// A data set in the engine's buffers (train and validation splits; the test split stays the
/// caller's).
#[pyclass(frozen, module = "fastfc._native")]
struct Data {
    inner: Arc<Dataset>,
}

#[pymethods]
impl Data {
    /// Class names in class-id order.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.inner.classes.clone()
    }
    /// Features per row.
    #[getter]
    fn features(&self) -> usize {
        self.inner.dim()
    }
    /// Rows of (train, validation, test).
    #[getter]
    fn rows(&self) -> (usize, usize, usize) {
        (
            self.inner.train.len(),
            self.inner.val.len(),
            self.inner.test.len(),
        )
    }
    /// How the splits were made, in words.
    #[getter]
    fn split(&self) -> String {
        self.inner.split.clone()
    }
    /// The data's record (what studies and models store), as JSON.
    fn record(&self) -> String {
        serde_json::to_string(&self.inner.record()).expect("a record serialises")
    }
    fn __repr__(&self) -> String {
        format!("<fastfc data: {}>", self.inner.record().describe())
    }
}

/// Copies the caller's arrays into a data set: `y`/`y_val` are class ids into `classes`.
#[pyfunction]
#[pyo3(signature = (x, y, classes, what, x_val=None, y_val=None, validation_split=None, scale=None, image_size=None, seed=42))]
#[allow(clippy::too_many_arguments)]
fn dataset(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    y: PyReadonlyArray1<'_, u32>,
    classes: Vec<String>,
    what: String,
    x_val: Option<&Bound<'_, PyAny>>,
    y_val: Option<PyReadonlyArray1<'_, u32>>,
    validation_split: Option<f64>,
    scale: Option<String>,
    image_size: Option<usize>,
    seed: u64,
) -> PyResult<Data> {
    let y = y.as_array().to_vec();
    let rows = rows_of(x, "x")?;
    if y.len() != rows {
        return Err(value_error(format!(
            "y: {} labels for the {rows} rows of x; expected one label per row",
            y.len()
        )));
    }
    let k = classes.len();
    if let Some((row, &c)) = y.iter().enumerate().find(|(_, &c)| c as usize >= k) {
        return Err(value_error(format!(
            "y: row {row}: class id {c}; expected < {k}"
        )));
    }
    if let Some(f) = validation_split {
        fastfc::data::split::check_fraction("validation_split", f).map_err(to_py)?;
    }
    // Without validation arrays, the validation rows are drawn first and copied straight into
    // their own buffer: the features are never held twice.
    let draw = match (&x_val, validation_split) {
        (None, f) if k >= 2 => Some(memory::draw_validation(
            &y,
            k,
            f.unwrap_or(fastfc::data::split::DEFAULT_FRACTION),
            seed,
        )),
        _ => None,
    };
    let mut tr = features(x, "x", draw.as_deref())?;
    let (y, y_drawn) = match &draw {
        Some(a) => {
            let (mut t, mut v) = (Vec::with_capacity(y.len()), vec![]);
            for (&c, &s) in y.iter().zip(a) {
                if s == 1 {
                    v.push(c)
                } else {
                    t.push(c)
                }
            }
            (t, v)
        }
        None => (y, vec![]),
    };
    let val = match (x_val, y_val) {
        (Some(xv), Some(yv)) => {
            let v = features(xv, "validation_data[0]", None)?;
            if v.dim != tr.dim || v.image != tr.image {
                return Err(value_error(format!(
                    "validation_data[0]: rows of {} features{}; x has {}{}",
                    v.dim,
                    v.image
                        .map_or(String::new(), |(h, w)| format!(" ({h}x{w})")),
                    tr.dim,
                    tr.image
                        .map_or(String::new(), |(h, w)| format!(" ({h}x{w})"))
                )));
            }
            let yv = yv.as_array().to_vec();
            if yv.len() != v.rows {
                return Err(value_error(format!(
                    "validation_data[1]: {} labels for the {} rows of validation_data[0]",
                    yv.len(),
                    v.rows
                )));
            }
            Validation::Given(Arrays {
                x: v.x,
                y: yv,
                name: "validation_data".into(),
            })
        }
        (None, None) if draw.is_some() => Validation::Drawn(Arrays {
            x: std::mem::take(&mut tr.drawn),
            y: y_drawn,
            name: "x (validation rows)".into(),
        }),
        (None, None) => Validation::Draw,
        _ => {
            return Err(value_error(
                "validation_data: expected a pair (x_val, y_val)",
            ))
        }
    };
    let scale = scale
        .map(|s| {
            s.parse::<Scale>()
                .map_err(|e| value_error(format!("scale: {e}")))
        })
        .transpose()?;
    let opts = DataOptions {
        val_fraction: match val {
            Validation::Drawn(_) => {
                Some(validation_split.unwrap_or(fastfc::data::split::DEFAULT_FRACTION))
            }
            _ => validation_split,
        },
        test_fraction: Some(0.0),
        scale,
        image_size,
        seed,
        ..DataOptions::default()
    };
    let shape = Shape {
        dim: tr.dim,
        image: tr.image,
        classes,
        what,
    };
    let train = Arrays {
        x: tr.x,
        y,
        name: "x".into(),
    };
    let d = py
        .detach(|| memory::from_arrays(train, val, shape, &opts))
        .map_err(to_py)?;
    Ok(Data { inner: Arc::new(d) })
}

/// Fashion-MNIST as the CLI finds it (Debian's files, `data_dir`, or the embedded 8x8 copy),
/// as ((x, y) train, (x, y) validation, (x, y) test) with x float32 (rows, size, size) in
/// [0, 1] and y int64, plus where it came from.
#[pyfunction]
#[pyo3(signature = (size=8, data_dir=None))]
#[allow(clippy::type_complexity)]
fn fashion_mnist<'py>(
    py: Python<'py>,
    size: usize,
    data_dir: Option<PathBuf>,
) -> PyResult<(
    Vec<(Bound<'py, PyArray3<f32>>, Bound<'py, PyArray1<i64>>)>,
    String,
)> {
    let d = py
        .detach(|| fastfc::data::load(&DataOptions::fashion(data_dir, size)))
        .map_err(to_py)?;
    let s = d.image_size();
    let mut out = vec![];
    for split in [&d.train, &d.val, &d.test] {
        let n = split.len();
        let x = split
            .x
            .clone()
            .into_pyarray(py)
            .reshape([n, s, s])
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        let y: Vec<i64> = split.y.iter().map(|&c| c as i64).collect();
        out.push((x, y.into_pyarray(py)));
    }
    Ok((out, d.origin.to_string()))
}

/// What the engine's thread tells the calling thread.
enum Msg {
    Start {
        header: String,
        runs: usize,
        steps: u64,
        per_epoch: u64,
    },
    Run {
        json: String,
        replayed: bool,
    },
    Epoch {
        json: String,
    },
    Done(Result<String, Error>),
}

/// The study's user interface on the engine's thread: steps counted, runs sent.
struct RelayUi {
    tx: mpsc::Sender<Msg>,
    steps: Arc<AtomicU64>,
    stop: Stop,
}

impl StudyUi for RelayUi {
    fn steps(&self, n: u64) {
        self.steps.fetch_add(n, Ordering::Relaxed);
    }
    fn run_done(&mut self, r: &RunRecord, replayed: bool) {
        let json = serde_json::to_string(r).expect("a run record serialises");
        let _ = self.tx.send(Msg::Run { json, replayed });
    }
    fn stop(&self) -> Stop {
        self.stop.clone()
    }
}

/// Runs `work` on a thread of its own (GIL released) and relays what it says to `on_event`
/// (`("start", header, runs, steps, steps_per_epoch)`, `("steps", n)`, `("run", json, replayed)`,
/// `("epoch", json)`), checking for signals in between. A signal or an exception raised by
/// `on_event` stops the engine (at its next epoch) and is raised once it has stopped.
fn relay(
    py: Python<'_>,
    on_event: &Bound<'_, PyAny>,
    threads: Option<usize>,
    work: impl FnOnce(mpsc::Sender<Msg>, Arc<AtomicU64>, Stop) -> Result<String, Error> + Send + 'static,
) -> PyResult<String> {
    let (tx, rx) = mpsc::channel::<Msg>();
    let steps = Arc::new(AtomicU64::new(0));
    let flag = Arc::new(AtomicBool::new(false));
    // `threads`: a pool of this call's own (the process-wide pool is the default), so each call
    // gets what it asks for.
    let pool = match threads {
        Some(0) => return Err(value_error("threads: 0: expected at least 1")),
        Some(n) => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("fastfc-worker-{i}"))
                .build()
                .map_err(|e| PyRuntimeError::new_err(format!("threads: {e}")))?,
        ),
        None => None,
    };
    let handle = {
        let (tx, steps, stop) = (tx.clone(), steps.clone(), Stop::new(flag.clone()));
        std::thread::Builder::new()
            .name("fastfc-engine".into())
            .spawn(move || {
                let r = match pool {
                    Some(p) => p.install(|| work(tx.clone(), steps, stop)),
                    None => work(tx.clone(), steps, stop),
                };
                let _ = tx.send(Msg::Done(r));
            })
            .map_err(|e| PyRuntimeError::new_err(format!("starting the engine's thread: {e}")))?
    };
    drop(tx);
    // A Receiver is Send but not Sync; the closures given to `detach` need Sync captures.
    let rx = std::sync::Mutex::new(rx);
    let recv = |t: Duration| rx.lock().expect("not poisoned").recv_timeout(t);
    let mut shown = 0u64;
    let mut handle = Some(handle);
    let joined = |h: &mut Option<std::thread::JoinHandle<()>>| -> PyResult<()> {
        match h.take().map(|h| h.join()) {
            Some(Err(p)) => {
                let why = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(PyRuntimeError::new_err(format!(
                    "fastfc's engine thread panicked: {why}"
                )))
            }
            _ => Ok(()),
        }
    };
    loop {
        let m = py.detach(|| recv(Duration::from_millis(100)));
        let now = steps.load(Ordering::Relaxed);
        let step = || -> PyResult<Option<Result<String, Error>>> {
            if now > shown {
                on_event.call1(("steps", now - shown))?;
                shown = now;
            }
            match m {
                Ok(Msg::Done(r)) => return Ok(Some(r)),
                Ok(Msg::Start {
                    header,
                    runs,
                    steps,
                    per_epoch,
                }) => {
                    on_event.call1(("start", header, runs, steps, per_epoch))?;
                }
                Ok(Msg::Run { json, replayed }) => {
                    on_event.call1(("run", json, replayed))?;
                }
                Ok(Msg::Epoch { json }) => {
                    on_event.call1(("epoch", json))?;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Ok(Some(Err(Error::backend(
                        "python",
                        "the engine's thread ended without a result",
                    ))))
                }
            }
            py.check_signals()?;
            Ok(None)
        };
        match step() {
            Ok(None) => {}
            Ok(Some(r)) => {
                joined(&mut handle)?;
                return r.map_err(to_py);
            }
            Err(e) => {
                // Stop the engine, wait for it (it finishes the epoch it is in), then raise.
                flag.store(true, Ordering::Relaxed);
                py.detach(|| {
                    while let Ok(m) = recv(Duration::from_secs(3600)) {
                        if matches!(m, Msg::Done(_)) {
                            break;
                        }
                    }
                });
                joined(&mut handle)?;
                return Err(e);
            }
        }
    }
}

/// `fastfc.search`'s settings, as the Python layer sends them (JSON).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchOpts {
    strategy: String,
    seed: u64,
    trials: Option<usize>,
    epochs: Option<usize>,
    max_epochs: Option<usize>,
    factor: Option<usize>,
    iterations: Option<usize>,
    min_epochs: Option<usize>,
    startup_trials: Option<usize>,
    ei_candidates: Option<usize>,
    random_fraction: Option<f64>,
    cohort_size: Option<usize>,
    patience: usize,
    batch_size: usize,
    /// The space's TOML and its name in messages.
    space: Option<(String, String)>,
    out: PathBuf,
    resume: bool,
    device: String,
    threads: Option<usize>,
}

fn parse_device(s: &str) -> PyResult<Device> {
    s.parse::<Device>()
        .map_err(|e| value_error(format!("device: {e}")))
}

fn settings(o: &SearchOpts) -> PyResult<Search> {
    use clap::ValueEnum;
    let strategy = StrategyName::from_str(&o.strategy, false).map_err(|_| {
        let names: Vec<String> = StrategyName::value_variants()
            .iter()
            .map(|s| s.name().to_string())
            .collect();
        value_error(format!(
            "strategy: {:?}; expected one of {}",
            o.strategy,
            names.join(", ")
        ))
    })?;
    let s = Search {
        strategy,
        seed: o.seed,
        trials: o.trials,
        epochs: o.epochs,
        max_epochs: o.max_epochs,
        factor: o.factor,
        iterations: o.iterations,
        min_epochs: o.min_epochs,
        startup_trials: o.startup_trials,
        ei_candidates: o.ei_candidates,
        random_fraction: o.random_fraction,
        cohort_size: o.cohort_size,
        patience: o.patience,
        batch_size: o.batch_size,
        space: o
            .space
            .as_ref()
            .map(|(text, name)| (text.clone(), PathBuf::from(name))),
        out: o.out.clone(),
        resume: o.resume,
    };
    s.check_options(&py_name).map_err(to_py)?;
    Ok(s)
}

/// The plan of a search (what `--dry-run` prints), without training.
#[pyfunction]
fn plan(opts: &str) -> PyResult<Vec<String>> {
    let o: SearchOpts =
        serde_json::from_str(opts).map_err(|e| value_error(format!("search settings: {e}")))?;
    let p = fastfc::search::prepare(&settings(&o)?).map_err(to_py)?;
    Ok(p.plan.lines)
}

/// Runs (or resumes) a search on `data`; returns `summary.json`'s text.
#[pyfunction]
fn search(
    py: Python<'_>,
    data: PyRef<'_, Data>,
    opts: &str,
    on_event: &Bound<'_, PyAny>,
) -> PyResult<String> {
    let o: SearchOpts =
        serde_json::from_str(opts).map_err(|e| value_error(format!("search settings: {e}")))?;
    let s = settings(&o)?;
    let device = parse_device(&o.device)?;
    let data = data.inner.clone();
    relay(py, on_event, o.threads, move |tx, steps, stop| {
        let mut p = fastfc::search::prepare(&s)?;
        data.check_batch(p.cfg.batch_size)?;
        // The device first: one that cannot be used leaves no study folder behind.
        let backend = fastfc::device::backend(&device, data.clone())?;
        p.bind(&data)?;
        let per_epoch =
            fastfc::data::batches::steps_per_epoch(data.train.len(), p.cfg.batch_size) as u64;
        let _ = tx.send(Msg::Start {
            header: p.header(&backend.name()),
            runs: p.plan.runs,
            steps: p.plan.epochs as u64 * per_epoch,
            per_epoch,
        });
        let mut ui = RelayUi { tx, steps, stop };
        let (summary, _) = p.run(&backend, &mut ui)?;
        Ok(serde_json::to_string(&summary).expect("a summary serialises"))
    })
}

/// One configuration to train (`FCNNClassifier.fit`), as the Python layer sends it (JSON).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainOpts {
    hidden: Vec<usize>,
    activation: String,
    optimizer: String,
    learning_rate: f32,
    dropout: f32,
    epochs: usize,
    batch_size: usize,
    patience: usize,
    seed: u64,
    device: String,
    threads: Option<usize>,
    /// The optimizer's parameters and the schedule (`fastfc train`'s flags).
    #[serde(default)]
    knobs: Option<Knobs>,
}

/// `FCNNClassifier`'s optimizer and schedule parameters (None: Keras' default).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Knobs {
    beta_1: Option<f64>,
    beta_2: Option<f64>,
    momentum: Option<f64>,
    #[serde(default)]
    nesterov: bool,
    rho: Option<f64>,
    weight_decay: Option<f64>,
    schedule: Option<String>,
    warmup_epochs: Option<f64>,
    decay_epochs: Option<f64>,
    decay_rate: Option<f64>,
}

/// A flag's error in the estimator's own words: `--weight-decay` is the parameter `weight_decay`.
fn param_error(e: fastfc::error::Error) -> PyErr {
    match e {
        fastfc::error::Error::Flag { flag, msg } => value_error(format!(
            "{}: {msg}",
            flag.trim_start_matches("--").replace('-', "_")
        )),
        e => to_py(e),
    }
}

/// A trained model: its config (with the classes and scaling) and its weights.
#[pyclass(frozen, module = "fastfc._native")]
struct Model {
    cfg: ModelConfig,
    params: Vec<f32>,
}

/// Trains one configuration on `data` (early stopping on its validation split, best weights
/// kept); returns the model and `metrics` (JSON: status, val_accuracy, val_loss, best_epoch,
/// epochs_trained, history, seconds, device).
#[pyfunction]
fn train(
    py: Python<'_>,
    data: PyRef<'_, Data>,
    opts: &str,
    on_event: &Bound<'_, PyAny>,
) -> PyResult<(Model, String)> {
    let o: TrainOpts =
        serde_json::from_str(opts).map_err(|e| value_error(format!("train settings: {e}")))?;
    let mut hp = Hyperparams {
        hidden: o.hidden.clone(),
        activation: o
            .activation
            .parse()
            .map_err(|e| value_error(format!("activation: {e}")))?,
        dropout: o.dropout,
        learning_rate: o.learning_rate,
        optimizer: o
            .optimizer
            .parse()
            .map_err(|e| value_error(format!("optimizer: {e}")))?,
        ..Default::default()
    };
    if let Some(k) = &o.knobs {
        fastfc::cli::KnobArgs {
            beta_1: k.beta_1,
            beta_2: k.beta_2,
            momentum: k.momentum,
            nesterov: k.nesterov,
            rho: k.rho,
            weight_decay: k.weight_decay,
            schedule: k.schedule.clone().unwrap_or_else(|| "constant".into()),
            warmup_epochs: k.warmup_epochs,
            decay_epochs: k.decay_epochs,
            decay_rate: k.decay_rate,
        }
        .apply(&mut hp, o.epochs)
        .map_err(param_error)?;
    }
    hp.validate().map_err(param_error)?;
    if o.epochs == 0 {
        return Err(value_error("epochs: 0: expected at least 1"));
    }
    if o.batch_size == 0 {
        return Err(value_error("batch_size: 0: expected at least 1"));
    }
    let device = parse_device(&o.device)?;
    let data = data.inner.clone();
    let out: Arc<std::sync::Mutex<Option<Model>>> = Arc::default();
    let slot = out.clone();
    let metrics = relay(py, on_event, o.threads, move |tx, steps, stop| {
        data.check_batch(o.batch_size)?;
        let backend = fastfc::device::backend(&device, data.clone())?;
        let cfg = TrainConfig {
            epochs: o.epochs,
            batch_size: o.batch_size,
            patience: (o.patience > 0).then_some(o.patience),
            seed: o.seed,
            stop,
        };
        let per_epoch =
            fastfc::data::batches::steps_per_epoch(data.train.len(), o.batch_size) as u64;
        let _ = tx.send(Msg::Start {
            header: cfg.describe(&hp, &backend.name()),
            runs: 1,
            steps: o.epochs as u64 * per_epoch,
            per_epoch,
        });
        let spec = TrialSpec::new(0, hp, o.seed, data.dim(), data.n_classes());
        let t0 = std::time::Instant::now();
        let outcome = train_cohort(
            &backend,
            vec![TrialJob::fresh(spec.clone())],
            &cfg,
            &mut |ev| {
                if let Event::Epoch { record, .. } = ev {
                    let json = serde_json::to_string(record).expect("an epoch serialises");
                    let _ = tx.send(Msg::Epoch { json });
                }
            },
            &|n| {
                steps.fetch_add(n, Ordering::Relaxed);
            },
        )?
        .pop()
        .expect("one trial in, one outcome out");
        let metrics = serde_json::json!({
            "status": outcome.status.name(),
            "val_accuracy": outcome.val_accuracy,
            "val_loss": if outcome.val_loss.is_finite() { Some(outcome.val_loss) } else { None },
            "best_epoch": outcome.best_epoch,
            "epochs_trained": outcome.epochs_trained,
            "history": outcome.history,
            "seconds": t0.elapsed().as_secs_f64(),
            "device": backend.name(),
        });
        let cfg = ModelConfig::from_spec(&spec, &data, o.seed, o.batch_size);
        *slot.lock().expect("not poisoned") = Some(Model {
            cfg,
            params: outcome.checkpoint.params,
        });
        Ok(metrics.to_string())
    })?;
    let model = out
        .lock()
        .expect("not poisoned")
        .take()
        .ok_or_else(|| PyRuntimeError::new_err("training returned no model"))?;
    Ok((model, metrics))
}

#[pymethods]
impl Model {
    /// Reads `model.safetensors` (a file, or a folder holding one).
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Model> {
        let (cfg, params) = model_io::load(&path).map_err(to_py)?;
        Ok(Model { cfg, params })
    }
    /// From the bytes of a `model.safetensors` file (pickling).
    #[staticmethod]
    fn from_bytes(b: &[u8]) -> PyResult<Model> {
        let (cfg, params) =
            model_io::from_bytes(b, std::path::Path::new("<model bytes>")).map_err(to_py)?;
        Ok(Model { cfg, params })
    }
    /// The bytes of a `model.safetensors` file.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = model_io::to_bytes(&self.cfg, &self.params).map_err(to_py)?;
        Ok(PyBytes::new(py, &b))
    }
    /// Writes `dir/model.safetensors` and `dir/config.json` (the CLI's layout).
    fn save_dir(&self, dir: PathBuf) -> PyResult<()> {
        model_io::save(&dir, &self.cfg, &self.params).map_err(to_py)
    }
    /// The config (hyperparameters, classes, scaling, data record) as JSON.
    #[getter]
    fn config(&self) -> String {
        serde_json::to_string(&self.cfg).expect("a config serialises")
    }
    /// Class names in output order.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.cfg.class_names.clone()
    }
    #[getter]
    fn features(&self) -> usize {
        self.cfg.inputs
    }
    /// The weights as PyTorch's nn.Linear names them: `layers.{i}.weight` (out, in) and
    /// `layers.{i}.bias`, as (name, array) pairs in order.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
        let lay = self.cfg.spec().layout();
        let mut out = vec![];
        for l in 0..lay.layers() {
            let (fi, fo) = (lay.dims[l], lay.dims[l + 1]);
            let w = self.params[lay.w_range(l)].to_vec().into_pyarray(py);
            let w = w
                .reshape([fo, fi])
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
            out.push((format!("layers.{l}.weight"), w.into_any()));
            let b = self.params[lay.b_range(l)].to_vec().into_pyarray(py);
            out.push((format!("layers.{l}.bias"), b.into_any()));
        }
        Ok(out)
    }
    /// Class probabilities (rows, classes) of `x` (scaled as the training data was).
    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let mut f = features(x, "x", None)?;
        let s = self.cfg.image_size;
        match f.image {
            // Images larger than the model's: resized as training resized them.
            Some((h, w)) if f.dim != self.cfg.inputs && s > 0 && h >= s && w >= s => {
                f.x = py.detach(|| fastfc::data::resize::resize_stack(&f.x, h, w, s));
                f.dim = s * s;
            }
            _ => {}
        }
        if f.dim != self.cfg.inputs {
            let want = if s > 0 {
                format!(
                    "{} ({s}x{s} images, or larger ones to resize)",
                    self.cfg.inputs
                )
            } else {
                self.cfg.inputs.to_string()
            };
            return Err(value_error(format!(
                "x: rows of {} features; the model takes {want}",
                f.dim
            )));
        }
        let spec = self.cfg.spec();
        let mut state = TrialState::init(&spec);
        state.params = self.params.clone();
        let scaling = self.cfg.scaling.clone();
        let mut x = f.x;
        let k = self.cfg.classes;
        let p = py
            .detach(move || -> Result<Vec<f32>, Error> {
                scaling.apply(&mut x);
                Ok(CpuTrial::new(spec, state)?.predict_proba(&x))
            })
            .map_err(to_py)?;
        p.into_pyarray(py)
            .reshape([f.rows, k])
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }
}

/// Whether this build carries CUDA kernels, and what `device="auto"` would use.
#[pyfunction]
fn devices() -> String {
    fastfc::device::describe()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Data>()?;
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(dataset, m)?)?;
    m.add_function(wrap_pyfunction!(fashion_mnist, m)?)?;
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_function(wrap_pyfunction!(search, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(devices, m)?)?;
    Ok(())
}
