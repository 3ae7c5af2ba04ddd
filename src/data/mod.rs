//! Data in, leak-free splits out. A [`Dataset`] knows its source, its shape (features, classes and
//! their names, an image's height and width), its three splits and the scaling fitted on its
//! training split, and has a fingerprint ([`DataRecord`]) that studies and models store.
//!
//! Sources (`--data PATH`, see [`DataOptions`]):
//! - nothing given: Fashion-MNIST from `--data-dir`, `$FASTFC_DATA`, `/usr/share/datasets/fashion-mnist`
//!   (Debian's `dataset-fashion-mnist`), then the 8×8 copy embedded in the binary
//!   (`FASTFC_NO_SYSTEM_DATA=1` skips the middle two). Split: train = training images 0..50,000,
//!   validation = 50,000..60,000, test = t10k (scored once, for a chosen model).
//! - a folder of IDX files of any MNIST-family set ([`idx`]), a `.npz` file or a folder of `.npy`
//!   files ([`npy`]), a CSV file ([`table`]).
//!
//! Splits ([`split`]): validation and test sets a source brings are used as they are; the ones it
//! lacks are drawn once from its training rows, stratified by class, from the study seed
//! (`--val-fraction`, `--test-fraction`, 0.2 each). Scaling ([`scale`]) is fitted on the training
//! split only and kept with every model. Preprocessed IDX images are cached ([`cache`]).

pub mod batches;
pub mod cache;
pub mod embedded;
pub mod idx;
pub mod labels;
pub mod memory;
pub mod npy;
pub mod resize;
pub mod scale;
pub mod split;
pub mod table;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use scale::{Scale, Scaler};

/// Fashion-MNIST's training images used for fitting; the rest of the training file is the
/// validation split.
pub const N_TRAIN: usize = 50_000;
/// Validation images: training-file indices `N_TRAIN..N_TRAIN + N_VAL`.
pub const N_VAL: usize = 10_000;
/// Fashion-MNIST's (and MNIST's) class count.
pub const N_CLASSES: usize = 10;
pub const SOURCE_SIZE: usize = 28;
/// The most features and classes a data set may have.
pub const MAX_FEATURES: usize = 100_000;
pub const MAX_CLASSES: usize = 1000;
pub const DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";
pub const CLASS_NAMES: [&str; N_CLASSES] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// One split: `x` is (n, dim) row-major; `y` is (n,) class ids < the data set's class count.
#[derive(Debug, Clone, Default)]
pub struct Split {
    pub x: Vec<f32>, // (n, dim)
    pub y: Vec<u32>, // (n,)
    pub dim: usize,
}

impl Split {
    pub fn len(&self) -> usize {
        self.y.len()
    }
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }
    /// Rows per class id, for `classes` classes.
    pub fn class_counts(&self, classes: usize) -> Vec<usize> {
        let mut c = vec![0; classes];
        self.y.iter().for_each(|&l| c[l as usize] += 1);
        c
    }
}

/// Where the data came from, for `fastfc data info` and `summary.json`.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Preprocessed now from IDX files in this folder.
    Files(PathBuf),
    /// Loaded from the preprocessing cache made earlier from these IDX files.
    Cache { files: PathBuf, cache: PathBuf },
    /// The 8×8 copy embedded in the binary (f16, made by fastfc's own pipeline).
    Embedded,
    /// A `.npz` file, a folder of `.npy` files or a CSV file.
    Arrays { path: PathBuf, format: &'static str },
    /// Arrays handed over in memory (the Python package), described in words.
    Memory(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Files(d) => write!(f, "IDX files in {}", d.display()),
            Origin::Cache { files, cache } => write!(
                f,
                "IDX files in {} (preprocessed cache {})",
                files.display(),
                cache.display()
            ),
            Origin::Embedded => write!(
                f,
                "embedded 8x8 Fashion-MNIST (f16; no dataset files found, see `fastfc data info`)"
            ),
            Origin::Arrays { path, format } => write!(f, "{format} {}", path.display()),
            Origin::Memory(what) => write!(f, "{what}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub train: Split,
    pub val: Split,
    pub test: Split,
    /// Class names; a class id indexes them.
    pub classes: Vec<String>,
    /// (height, width) when the features are an image's pixels, row by row.
    pub image: Option<(usize, usize)>,
    /// The scaling fitted on the training split (already applied to all three).
    pub scaler: Scaler,
    /// The feature columns' names (CSV), in order.
    pub columns: Option<Vec<String>>,
    /// The CSV's label column.
    pub label: Option<String>,
    /// How the splits were made, in words.
    pub split: String,
    pub origin: Origin,
    /// The options it was loaded with (stored with studies and models to load it again).
    pub options: DataOptions,
}

impl Dataset {
    pub fn dim(&self) -> usize {
        self.train.dim
    }
    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }
    /// The side of a square image (the `--image-size`), 0 for anything else.
    pub fn image_size(&self) -> usize {
        match self.image {
            Some((h, w)) if h == w => h,
            _ => 0,
        }
    }
    /// "8x8 images" or "30 features", for messages.
    pub fn shape_label(&self) -> String {
        match self.image {
            Some((h, w)) => format!("{h}x{w} images"),
            None => format!("{} features", self.dim()),
        }
    }

    /// CRC-32 of every value and label of the three splits, in order.
    fn crc32(&self) -> u32 {
        let mut h = crc32fast::Hasher::new();
        for s in [&self.train, &self.val, &self.test] {
            h.update(bytemuck::cast_slice(&s.x));
            h.update(bytemuck::cast_slice(&s.y));
        }
        h.finalize()
    }

    /// What identifies this data among processes that must train on the same data (the workers
    /// of a shared study): shape, split sizes, and a CRC-32 of every value and label.
    pub fn fingerprint(&self) -> String {
        self.record().identity()
    }

    /// The data's record, stored in `study.json` and every model's `config.json`.
    pub fn record(&self) -> DataRecord {
        DataRecord {
            source: self.origin.to_string(),
            options: self.options.clone(),
            features: self.dim(),
            classes: self.classes.clone(),
            image: self.image.map(|(h, w)| [h, w]),
            rows: [self.train.len(), self.val.len(), self.test.len()],
            split: self.split.clone(),
            scale: self.scaler.kind().name().to_string(),
            crc32: format!("{:08x}", self.crc32()),
            columns: self.columns.clone(),
            label: self.label.clone(),
        }
    }

    /// Fashion-MNIST's fixed split of the full training file (60,000) and the test file.
    pub fn from_full(
        s: usize,
        train_x: Vec<f32>,
        train_y: Vec<u8>,
        test_x: Vec<f32>,
        test_y: Vec<u8>,
        origin: Origin,
    ) -> Result<Self> {
        if train_y.len() != N_TRAIN + N_VAL {
            return Err(Error::Data(format!(
                "the training file has {} images; Fashion-MNIST's split needs {} (train {N_TRAIN} + validation {N_VAL})",
                train_y.len(),
                N_TRAIN + N_VAL
            )));
        }
        let full = FullData {
            s,
            train_x,
            train_y,
            test_x,
            test_y,
        };
        let names = CLASS_NAMES.iter().map(|c| c.to_string()).collect();
        let here = Path::new("<Fashion-MNIST>");
        idx::from_full(
            full,
            origin,
            &DataOptions::default(),
            here,
            here,
            Some(names),
        )
    }

    /// Refuses a split smaller than one batch (training) or empty (validation, test).
    pub fn check_batch(&self, batch: usize) -> Result<()> {
        if self.train.len() < batch {
            return Err(Error::flag(
                "--batch-size",
                format!(
                    "{batch}: the training split of {} has only {} rows; expected at least one full batch (use a smaller --batch-size or more data)",
                    self.origin,
                    self.train.len()
                ),
            ));
        }
        Ok(())
    }
}

/// A data set's identity, as studies and models store it (`study.json`'s and `config.json`'s
/// `data`). Two records are the same data when their shape, class names, split sizes and CRC-32
/// agree, wherever the files were; the source and options say how to load it again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataRecord {
    pub source: String,
    pub options: DataOptions,
    pub features: usize,
    pub classes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<[usize; 2]>,
    /// Rows of train, validation, test.
    pub rows: [usize; 3],
    pub split: String,
    pub scale: String,
    pub crc32: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// The CSV's label column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl PartialEq for DataRecord {
    fn eq(&self, o: &Self) -> bool {
        self.features == o.features
            && self.classes == o.classes
            && self.rows == o.rows
            && self.crc32 == o.crc32
    }
}

impl DataRecord {
    /// One line naming the data: source, then [`DataRecord::identity`], the split and scaling.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}; split {}; scaling {})",
            self.source,
            self.identity(),
            self.split,
            self.scale
        )
    }

    /// What makes two records the same data, in words: shape, classes, split sizes, checksum
    /// (not where the files are).
    pub fn identity(&self) -> String {
        let shape = match self.image {
            Some([h, w]) => format!("{h}x{w}"),
            None => format!("{} features", self.features),
        };
        format!(
            "{shape}, {} classes, train {} / val {} / test {}, crc32 {}",
            self.classes.len(),
            self.rows[0],
            self.rows[1],
            self.rows[2],
            self.crc32
        )
    }
}

/// How to find and prepare the data: the data flags of every command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataOptions {
    /// `--data`: a `.npz` or CSV file, or a folder of `.npy` or IDX files. None: Fashion-MNIST
    /// (from `data_dir`, `$FASTFC_DATA`, Debian's folder, or the embedded copy).
    #[serde(default)]
    pub data: Option<PathBuf>,
    /// `--data-dir`: a folder with Fashion-MNIST's IDX files.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// `--label`: the CSV's label column (default: the last).
    #[serde(default)]
    pub label: Option<String>,
    /// `--image-size`: images resized to S×S (default 8 for Fashion-MNIST, else as they are).
    #[serde(default)]
    pub image_size: Option<usize>,
    #[serde(default)]
    pub val_fraction: Option<f64>,
    #[serde(default)]
    pub test_fraction: Option<f64>,
    /// `--scale` (default: none for images, standard for tables).
    #[serde(default)]
    pub scale: Option<Scale>,
    /// The seed the validation and test splits are drawn from (`--seed`).
    #[serde(default)]
    pub seed: u64,
    /// Read and write the preprocessing cache.
    #[serde(skip, default = "yes")]
    pub cache: bool,
}

fn yes() -> bool {
    true
}

impl Default for DataOptions {
    fn default() -> Self {
        DataOptions {
            data: None,
            data_dir: None,
            label: None,
            image_size: None,
            val_fraction: None,
            test_fraction: None,
            scale: None,
            seed: 42,
            cache: true,
        }
    }
}

impl DataOptions {
    /// Fashion-MNIST at `s`×`s` from `data_dir` (or the default chain).
    pub fn fashion(data_dir: Option<PathBuf>, s: usize) -> Self {
        DataOptions {
            data_dir,
            image_size: Some(s),
            ..DataOptions::default()
        }
    }
}

/// The four IDX files of an MNIST-family set as found in a folder (the test pair may be absent
/// for a set that has none).
#[derive(Debug, Clone)]
pub struct IdxFiles {
    pub dir: PathBuf,
    pub train_images: PathBuf,
    pub train_labels: PathBuf,
    pub test_images: PathBuf,
    pub test_labels: PathBuf,
}

const STEMS: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Finds the four files of an MNIST-family set in `dir` under the names people have them:
/// `train-images-idx3-ubyte[.gz]` (Zalando, LeCun, Debian), `train-images.idx3-ubyte` (Kaggle),
/// torchvision's `<Name>/raw/`, Keras' and Zalando's subfolders. `Ok(None)` when none are
/// there; an error naming the missing ones when only some are.
pub fn find_files(dir: &Path) -> Result<Option<IdxFiles>> {
    idx::find_set(dir)
}

/// `FASTFC_NO_SYSTEM_DATA=1` makes fastfc behave as on a machine with nothing installed:
/// `$FASTFC_DATA` and the Debian folder are not looked at (`--data-dir` still is). CI runs the
/// README's test command under it to prove that a fresh machine passes.
pub fn no_system_data() -> bool {
    std::env::var_os("FASTFC_NO_SYSTEM_DATA").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Where Fashion-MNIST will come from, without loading it: explicit folders must hold the files.
pub fn locate(opts: &DataOptions) -> Result<Option<IdxFiles>> {
    if let Some(dir) = &opts.data_dir {
        return find_files(dir)?.map(Some).ok_or_else(|| {
            Error::flag(
                "--data-dir",
                format!(
                    "{}: no Fashion-MNIST files there; expected {}[.gz] and the other 3 IDX files",
                    dir.display(),
                    STEMS[0]
                ),
            )
        });
    }
    if no_system_data() {
        return Ok(None);
    }
    if let Some(dir) = std::env::var_os("FASTFC_DATA") {
        let dir = PathBuf::from(dir);
        return find_files(&dir)?.map(Some).ok_or_else(|| {
            Error::Data(format!(
                "$FASTFC_DATA={}: no Fashion-MNIST files there; expected {}[.gz] and the other 3 IDX files",
                dir.display(),
                STEMS[0]
            ))
        });
    }
    find_files(Path::new(DEBIAN_DIR))
}

/// Loads the data `opts` name.
pub fn load(opts: &DataOptions) -> Result<Dataset> {
    if let Some(f) = opts.val_fraction {
        split::check_fraction("--val-fraction", f)?;
    }
    if let Some(f) = opts.test_fraction {
        split::check_fraction("--test-fraction", f)?;
    }
    // Recorded with absolute paths, so a study resumed (or a model scored) from another folder
    // finds its data again.
    let mut opts = opts.clone();
    let abs = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    opts.data = opts.data.as_ref().map(abs);
    opts.data_dir = opts.data_dir.as_ref().map(abs);
    let mut d = match &opts.data {
        Some(path) => load_path(path, &opts)?,
        None => load_fashion(&opts)?,
    };
    d.options = opts;
    Ok(d)
}

fn load_fashion(opts: &DataOptions) -> Result<Dataset> {
    if opts.label.is_some() {
        return Err(Error::flag(
            "--label",
            "applies to CSV files (--data FILE.csv); Fashion-MNIST has its labels",
        ));
    }
    let s = opts.image_size.unwrap_or(embedded::IMAGE_SIZE);
    if s == 0 || s > SOURCE_SIZE {
        return Err(Error::flag(
            "--image-size",
            format!("{s}: expected 1..=28 (images are downsampled from 28x28)"),
        ));
    }
    match locate(opts)? {
        Some(files) => idx::load_set(&files, opts, Some(s)),
        None if s == embedded::IMAGE_SIZE => embedded::load_with(opts),
        None => Err(Error::Data(format!(
                "no Fashion-MNIST files found (looked at --data-dir, $FASTFC_DATA, {DEBIAN_DIR}); the copy \
                 embedded in fastfc is {0}x{0} only. Install them (`apt-get install dataset-fashion-mnist`) \
                 or pass --data-dir with the 4 IDX files",
                embedded::IMAGE_SIZE
        ))),
    }
}

/// `--data PATH`: a file by its extension, or a folder by what it holds.
fn load_path(path: &Path, opts: &DataOptions) -> Result<Dataset> {
    if opts.data_dir.is_some() {
        return Err(Error::flag(
            "--data-dir",
            "give either --data or --data-dir (a folder of IDX files is also a --data)",
        ));
    }
    let is_csv = path.is_file()
        && path.extension().is_some_and(|e| {
            ["csv", "tsv", "txt"].contains(&e.to_string_lossy().to_ascii_lowercase().as_str())
        });
    if opts.label.is_some() && !is_csv {
        return Err(Error::flag(
            "--label",
            format!(
                "applies to CSV files; {} names its labels itself (y_train, …)",
                path.display()
            ),
        ));
    }
    if path.is_dir() {
        if npy::folder_has_arrays(path) {
            return split::assemble(npy::read_folder(path)?, opts);
        }
        if let Some(files) = idx::find_set(path)? {
            return idx::load_set(&files, opts, opts.image_size);
        }
        return Err(Error::flag(
            "--data",
            format!(
                "{}: a folder with neither .npy arrays (x_train.npy, y_train.npy, optionally x_val/y_val, x_test/y_test) \
                 nor IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...)",
                path.display()
            ),
        ));
    }
    if !path.exists() {
        return Err(Error::flag(
            "--data",
            format!("{}: no such file or folder", path.display()),
        ));
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "npz" => split::assemble(npy::read_npz(path)?, opts),
        "csv" | "tsv" | "txt" => split::assemble(table::read(path, opts.label.as_deref())?, opts),
        "npy" => Err(Error::flag(
            "--data",
            format!(
                "{}: one .npy holds one array; pass the folder with x_train.npy and y_train.npy (and optionally x_val/y_val, x_test/y_test), or an .npz",
                path.display()
            ),
        )),
        "parquet" | "pq" => Err(Error::flag(
            "--data",
            format!(
                "{}: Parquet is not built into fastfc (see README, \"Data\"); convert it once, e.g. in Python \
                 `pd.read_parquet(\"{0}\").to_csv(\"data.csv\", index=False)`",
                path.display()
            ),
        )),
        _ => Err(Error::flag(
            "--data",
            format!(
                "{}: unknown kind of file; expected .npz, .csv (or .tsv), or a folder of .npy or IDX files",
                path.display()
            ),
        )),
    }
}

/// Both files' images and labels, preprocessed to s×s (the cache and embedded payload).
#[derive(Debug, Clone)]
pub struct FullData {
    pub s: usize,
    pub train_x: Vec<f32>,
    pub train_y: Vec<u8>,
    pub test_x: Vec<f32>,
    pub test_y: Vec<u8>,
}

/// Fashion-MNIST's four files preprocessed to s×s (28×28 images expected; see [`idx::load_set`]
/// for other sets).
pub fn preprocess_files(files: &IdxFiles, s: usize) -> Result<FullData> {
    idx::preprocess(files, s)
}
