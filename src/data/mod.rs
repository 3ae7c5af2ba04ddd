//! Fashion-MNIST in, leak-free splits out: train = training images 0..50,000, validation =
//! 50,000..60,000, test = t10k (scored once, for a chosen model). Sources, in order: `--data-dir`,
//! `$FASTFC_DATA`, `/usr/share/datasets/fashion-mnist` (Debian's `dataset-fashion-mnist`), then
//! the 8×8 copy embedded in the binary (`FASTFC_NO_SYSTEM_DATA=1` skips the middle two). Preprocessed splits are cached in a memory-mapped file.

pub mod batches;
pub mod cache;
pub mod embedded;
pub mod idx;
pub mod npy;
pub mod resize;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Training images used for fitting; the rest of the training file is the validation split.
pub const N_TRAIN: usize = 50_000;
/// Validation images: training-file indices `N_TRAIN..N_TRAIN + N_VAL`.
pub const N_VAL: usize = 10_000;
pub const N_CLASSES: usize = 10;
pub const SOURCE_SIZE: usize = 28;
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

/// One split: `x` is (n, dim) row-major in [0, 1]; `y` is (n,) class ids < 10.
#[derive(Debug, Clone, Default)]
pub struct Split {
    pub x: Vec<f32>, // (n, dim)
    pub y: Vec<u8>,  // (n,)
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
    pub fn class_counts(&self) -> [usize; N_CLASSES] {
        let mut c = [0; N_CLASSES];
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
        }
    }
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub image_size: usize,
    pub train: Split,
    pub val: Split,
    pub test: Split,
    pub origin: Origin,
}

impl Dataset {
    pub fn dim(&self) -> usize {
        self.image_size * self.image_size
    }

    /// What identifies this data among processes that must train on the same data (the workers
    /// of a shared study): image size, split sizes, and a CRC-32 of every value and label.
    pub fn fingerprint(&self) -> String {
        let mut h = crc32fast::Hasher::new();
        for s in [&self.train, &self.val, &self.test] {
            h.update(bytemuck::cast_slice(&s.x));
            h.update(&s.y);
        }
        format!(
            "{0}x{0}, train {1} / val {2} / test {3}, crc32 {4:08x}",
            self.image_size,
            self.train.len(),
            self.val.len(),
            self.test.len(),
            h.finalize()
        )
    }

    /// Splits the full training file (60,000) and the test file into the leak-free splits.
    pub fn from_full(
        s: usize,
        train_x: Vec<f32>,
        train_y: Vec<u8>,
        test_x: Vec<f32>,
        test_y: Vec<u8>,
        origin: Origin,
    ) -> Result<Self> {
        let dim = s * s;
        if train_y.len() < N_TRAIN + N_VAL {
            return Err(Error::Data(format!(
                "the training file has {} images; the leak-free split needs {} (train {N_TRAIN} + validation {N_VAL})",
                train_y.len(),
                N_TRAIN + N_VAL
            )));
        }
        let mut tx = train_x;
        let mut ty = train_y;
        let vx = tx.split_off(N_TRAIN * dim);
        let vy = ty.split_off(N_TRAIN);
        Ok(Dataset {
            image_size: s,
            train: Split { x: tx, y: ty, dim },
            val: Split {
                x: vx[..N_VAL * dim].to_vec(),
                y: vy[..N_VAL].to_vec(),
                dim,
            },
            test: Split {
                x: test_x,
                y: test_y,
                dim,
            },
            origin,
        })
    }
}

/// How to find and prepare the data.
#[derive(Debug, Clone)]
pub struct DataOptions {
    pub data_dir: Option<PathBuf>,
    pub image_size: usize,
    /// Read and write the preprocessing cache.
    pub cache: bool,
}

impl Default for DataOptions {
    fn default() -> Self {
        DataOptions {
            data_dir: None,
            image_size: 8,
            cache: true,
        }
    }
}

/// The four IDX files of Fashion-MNIST as found in a folder.
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

/// Finds the four files in `dir` (raw or `.gz`; also torchvision's `FashionMNIST/raw/` layout).
/// `Ok(None)` when none are there; an error naming the missing ones when only some are.
pub fn find_files(dir: &Path) -> Result<Option<IdxFiles>> {
    let candidates = |stem: &str| -> Option<PathBuf> {
        for sub in ["", "FashionMNIST/raw", "fashion-mnist", "fashion_mnist"] {
            for ext in ["", ".gz"] {
                let p = dir.join(sub).join(format!("{stem}{ext}"));
                if p.is_file() {
                    return Some(p);
                }
            }
        }
        None
    };
    let found: Vec<Option<PathBuf>> = STEMS.iter().map(|s| candidates(s)).collect();
    let n_found = found.iter().filter(|f| f.is_some()).count();
    if n_found == 0 {
        return Ok(None);
    }
    if n_found < 4 {
        let missing: Vec<String> = STEMS
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(s, _)| format!("{s}[.gz]"))
            .collect();
        return Err(Error::Data(format!(
            "{}: found {n_found} of the 4 Fashion-MNIST files; missing {}",
            dir.display(),
            missing.join(", ")
        )));
    }
    let mut it = found.into_iter().map(Option::unwrap);
    Ok(Some(IdxFiles {
        dir: dir.to_path_buf(),
        train_images: it.next().unwrap(),
        train_labels: it.next().unwrap(),
        test_images: it.next().unwrap(),
        test_labels: it.next().unwrap(),
    }))
}

/// `FASTFC_NO_SYSTEM_DATA=1` makes fastfc behave as on a machine with nothing installed:
/// `$FASTFC_DATA` and the Debian folder are not looked at (`--data-dir` still is). CI runs the
/// README's test command under it to prove that a fresh machine passes.
pub fn no_system_data() -> bool {
    std::env::var_os("FASTFC_NO_SYSTEM_DATA").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Where the data will come from, without loading it: explicit folders must hold the files.
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

/// Loads the splits at `opts.image_size` from the first source that has them.
pub fn load(opts: &DataOptions) -> Result<Dataset> {
    let s = opts.image_size;
    if s == 0 || s > SOURCE_SIZE {
        return Err(Error::flag(
            "--image-size",
            format!("{s}: expected 1..=28 (images are downsampled from 28x28)"),
        ));
    }
    match locate(opts)? {
        Some(files) => load_files(&files, s, opts.cache),
        None if s == embedded::IMAGE_SIZE => embedded::load(),
        None => Err(Error::Data(format!(
            "no Fashion-MNIST files found (looked at --data-dir, $FASTFC_DATA, {DEBIAN_DIR}); the copy \
             embedded in fastfc is {0}x{0} only. Install them (`apt-get install dataset-fashion-mnist`) \
             or pass --data-dir with the 4 IDX files",
            embedded::IMAGE_SIZE
        ))),
    }
}

/// Reads and checks the IDX files, then preprocesses (or takes the cached result).
pub fn load_files(files: &IdxFiles, s: usize, use_cache: bool) -> Result<Dataset> {
    let key = cache::key(files, s);
    if use_cache {
        if let Some((path, full)) = cache::read(&key) {
            return Dataset::from_full(
                s,
                full.train_x,
                full.train_y,
                full.test_x,
                full.test_y,
                Origin::Cache {
                    files: files.dir.clone(),
                    cache: path,
                },
            );
        }
    }
    let full = preprocess_files(files, s)?;
    if use_cache {
        cache::write(&key, &full);
    }
    Dataset::from_full(
        s,
        full.train_x,
        full.train_y,
        full.test_x,
        full.test_y,
        Origin::Files(files.dir.clone()),
    )
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

fn read_pair(images: &Path, labels: &Path) -> Result<(idx::IdxU8, Vec<u8>)> {
    let im = idx::read_u8(images, 3)?;
    let lb = idx::read_u8(labels, 1)?;
    if im.dims[1] != SOURCE_SIZE || im.dims[2] != SOURCE_SIZE {
        return Err(Error::file(
            images,
            format!(
                "images are {}x{}; expected Fashion-MNIST's {SOURCE_SIZE}x{SOURCE_SIZE}",
                im.dims[1], im.dims[2]
            ),
        ));
    }
    if im.dims[0] != lb.dims[0] {
        return Err(Error::file(
            labels,
            format!(
                "{} labels but {} has {} images",
                lb.dims[0],
                images.display(),
                im.dims[0]
            ),
        ));
    }
    if let Some((i, &l)) = lb
        .data
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= N_CLASSES)
    {
        return Err(Error::file(
            labels,
            format!("label {l} at index {i}; expected class ids 0..=9"),
        ));
    }
    Ok((im, lb.data))
}

pub fn preprocess_files(files: &IdxFiles, s: usize) -> Result<FullData> {
    let (tr, train_y) = read_pair(&files.train_images, &files.train_labels)?;
    let (te, test_y) = read_pair(&files.test_images, &files.test_labels)?;
    let n = SOURCE_SIZE;
    Ok(FullData {
        s,
        train_x: resize::preprocess_stack(&tr.data, tr.dims[0], n, n, s),
        train_y,
        test_x: resize::preprocess_stack(&te.data, te.dims[0], n, n, s),
        test_y,
    })
}
