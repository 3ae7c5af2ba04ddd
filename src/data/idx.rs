//! IDX files (the format of MNIST, Fashion-MNIST, KMNIST, EMNIST…), raw or gzipped, found under
//! the names people have them, any image size and count. Raw files are memory-mapped; gzipped
//! ones are inflated with flate2. Every check names the file and what was expected.
//! Tests: `tests/data.rs`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::split::{self, Loaded, Part};
use super::{cache, labels, resize, DataOptions, Dataset, FullData, IdxFiles, Origin};
use crate::error::{Error, IoContext, Result};

/// IDX magic for unsigned bytes with 1 dimension (labels) and 3 dimensions (images).
pub const MAGIC_IDX1_U8: u32 = 0x0000_0801;
pub const MAGIC_IDX3_U8: u32 = 0x0000_0803;

/// An IDX array of unsigned bytes: `dims` (e.g. [60000, 28, 28]) and the row-major payload.
#[derive(Debug, Clone)]
pub struct IdxU8 {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads `path`, inflating it when it starts with the gzip magic, and checks it is an unsigned-byte
/// IDX array with `ndim` dimensions whose payload length matches its header exactly.
pub fn read_u8(path: &Path, ndim: usize) -> Result<IdxU8> {
    let file = File::open(path).ctx_io(path)?;
    let len = file.metadata().ctx_io(path)?.len();
    if len == 0 {
        return Err(Error::file(
            path,
            "file is empty; expected an IDX file (raw or gzipped)",
        ));
    }
    // SAFETY: the map is read-only and lives only inside this function; a file truncated by another
    // process while mapped could fault, which we accept for dataset files as every mmap reader does.
    let map = unsafe { memmap2::Mmap::map(&file) }.ctx_io(path)?;
    let bytes: std::borrow::Cow<[u8]> = if map.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&map[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::file(path, format!("gzip stream is corrupt or truncated: {e}")))?;
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(&map[..])
    };
    parse_u8(path, &bytes, ndim)
}

/// Parses IDX bytes already in memory (`path` is only used in messages).
pub fn parse_u8(path: &Path, bytes: &[u8], ndim: usize) -> Result<IdxU8> {
    let expected_magic = 0x0800 | ndim as u32;
    if bytes.len() < 4 {
        return Err(Error::file(
            path,
            format!(
                "file is {} bytes; expected at least a 4-byte IDX header",
                bytes.len()
            ),
        ));
    }
    let magic = u32::from_be_bytes(bytes[0..4].try_into().unwrap());
    if magic != expected_magic {
        let hint = if bytes.starts_with(&[0x1f, 0x8b]) {
            " (it is still gzip after inflating: is it gzipped twice?)"
        } else if magic & 0xffff_ff00 == 0x0000_0800 {
            " (an IDX file, but of another type or number of dimensions: images and labels swapped?)"
        } else {
            " (not an IDX file)"
        };
        return Err(Error::file(
            path,
            format!("expected IDX magic 0x{expected_magic:08x}, found 0x{magic:08x}{hint}"),
        ));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(Error::file(
            path,
            format!("truncated header: {} bytes, expected {header}", bytes.len()),
        ));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|d| u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().unwrap()) as usize)
        .collect();
    let have = bytes.len() - header;
    let Some(payload) = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
        return Err(Error::file(
            path,
            format!("header says {dims:?}: more data than any file holds"),
        ));
    };
    if have < payload {
        return Err(Error::file(
            path,
            format!(
                "truncated: header says {dims:?} = {payload} bytes of data, file has {have} (incomplete download?)"
            ),
        ));
    }
    if have > payload {
        return Err(Error::file(
            path,
            format!(
                "{} unexpected bytes after the {dims:?} array",
                have - payload
            ),
        ));
    }
    Ok(IdxU8 {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// CRC-32 of Fashion-MNIST's 10,000 test labels: how a set is recognised as Fashion-MNIST (and
/// given its class names) whatever its files are called.
pub const FASHION_TEST_LABELS_CRC: u32 = 0x242b_c73f;

/// What a file name says it is: (train?, images?), from names such as `train-images-idx3-ubyte`,
/// `train-images.idx3-ubyte`, `t10k-labels-idx1-ubyte.gz`, `emnist-letters-test-images-idx3-ubyte`.
fn classify(name: &str) -> Option<(bool, bool)> {
    let n = name.to_ascii_lowercase();
    let n = n.strip_suffix(".gz").unwrap_or(&n);
    let images = if n.ends_with("idx3-ubyte") {
        true
    } else if n.ends_with("idx1-ubyte") {
        false
    } else {
        return None;
    };
    let train = if n.contains("train") {
        true
    } else if n.contains("t10k") || n.contains("test") {
        false
    } else {
        return None;
    };
    Some((train, images))
}

/// The IDX files directly in `dir`: [train images, train labels, test images, test labels],
/// raw preferred to gzipped; an error when one role has two different files.
fn scan(dir: &Path) -> Result<[Option<PathBuf>; 4]> {
    let mut found: [Option<PathBuf>; 4] = Default::default();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(found);
    };
    let mut names: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    for p in names {
        let Some((train, images)) = p.file_name().and_then(|n| classify(&n.to_string_lossy()))
        else {
            continue;
        };
        let slot = &mut found[2 * (!train as usize) + (!images as usize)];
        let stem = |q: &Path| {
            let n = q.file_name().unwrap().to_string_lossy().to_string();
            n.strip_suffix(".gz").map(str::to_string).unwrap_or(n)
        };
        match slot {
            None => *slot = Some(p),
            Some(q) if stem(q) == stem(&p) => {
                // The same file raw and gzipped: take the raw one (memory-mapped, no inflating).
                if q.extension().is_some_and(|e| e == "gz") {
                    *slot = Some(p);
                }
            }
            Some(q) => {
                return Err(Error::flag(
                    "--data",
                    format!(
                        "{}: two IDX files for one role ({} and {}); keep one set per folder",
                        dir.display(),
                        q.file_name().unwrap().to_string_lossy(),
                        p.file_name().unwrap().to_string_lossy()
                    ),
                ))
            }
        }
    }
    Ok(found)
}

/// Finds an MNIST-family set in `dir`, in `dir/raw`, in torchvision's `dir/<Name>/raw`, or in
/// Keras' and Zalando's subfolders. `Ok(None)` when there is none; an error naming the missing
/// files when only some are there, or the sets when there are several.
pub fn find_set(dir: &Path) -> Result<Option<IdxFiles>> {
    let mut folders = vec![dir.to_path_buf(), dir.join("raw")];
    for sub in ["fashion-mnist", "fashion_mnist", "fashion"] {
        folders.push(dir.join(sub));
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        let mut subs: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path().join("raw")))
            .filter(|p| p.is_dir())
            .collect();
        subs.sort();
        folders.extend(subs);
    }
    let mut sets = Vec::new();
    for f in folders {
        let found = scan(&f)?;
        if found.iter().any(Option::is_some) && !sets.iter().any(|(g, _)| g == &f) {
            sets.push((f, found));
        }
    }
    if sets.is_empty() {
        return Ok(None);
    }
    if sets.len() > 1 {
        let all: Vec<String> = sets.iter().map(|(f, _)| f.display().to_string()).collect();
        return Err(Error::flag(
            "--data",
            format!(
                "{}: IDX files in several folders ({}); point --data at one of them",
                dir.display(),
                all.join(", ")
            ),
        ));
    }
    let (folder, found) = sets.pop().unwrap();
    const ROLES: [&str; 4] = [
        "training images (*train*-idx3-ubyte[.gz])",
        "training labels (*train*-idx1-ubyte[.gz])",
        "test images (t10k-* or *test*-idx3-ubyte[.gz])",
        "test labels (t10k-* or *test*-idx1-ubyte[.gz])",
    ];
    let missing: Vec<&str> = ROLES
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(r, _)| *r)
        .collect();
    if !missing.is_empty() {
        return Err(Error::Data(format!(
            "{}: found {} of the 4 IDX files of an MNIST-family set; missing the {}",
            folder.display(),
            4 - missing.len(),
            missing.join(", ")
        )));
    }
    let [a, b, c, d] = found.map(Option::unwrap);
    Ok(Some(IdxFiles {
        dir: folder,
        train_images: a,
        train_labels: b,
        test_images: c,
        test_labels: d,
    }))
}

/// Reads an images file and its labels file, checking they agree.
fn read_pair(images: &Path, labels: &Path) -> Result<(IdxU8, Vec<u8>)> {
    let im = read_u8(images, 3)?;
    let lb = read_u8(labels, 1)?;
    if im.dims[1] == 0 || im.dims[2] == 0 {
        return Err(Error::file(
            images,
            format!(
                "images are {}x{}; expected at least 1x1",
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
    Ok((im, lb.data))
}

/// Images of the set's four files as (h, w) → s×s floats in [0, 1] (pixels ÷ 255, then the
/// seed's anti-aliased resize when s is smaller than the images).
pub fn preprocess(files: &IdxFiles, s: usize) -> Result<FullData> {
    let (tr, train_y) = read_pair(&files.train_images, &files.train_labels)?;
    let (te, test_y) = read_pair(&files.test_images, &files.test_labels)?;
    for (im, p) in [(&tr, &files.train_images), (&te, &files.test_images)] {
        if s > im.dims[1] || s > im.dims[2] {
            return Err(Error::flag(
                "--image-size",
                format!(
                    "{s}: {} holds {}x{} images; expected a size up to {}",
                    p.display(),
                    im.dims[1],
                    im.dims[2],
                    im.dims[1].min(im.dims[2])
                ),
            ));
        }
    }
    if (tr.dims[1], tr.dims[2]) != (te.dims[1], te.dims[2]) {
        return Err(Error::file(
            &files.test_images,
            format!(
                "images are {}x{}; the training images are {}x{}",
                te.dims[1], te.dims[2], tr.dims[1], tr.dims[2]
            ),
        ));
    }
    let (h, w) = (tr.dims[1], tr.dims[2]);
    Ok(FullData {
        s,
        train_x: resize::preprocess_stack(&tr.data, tr.dims[0], h, w, s),
        train_y,
        test_x: resize::preprocess_stack(&te.data, te.dims[0], h, w, s),
        test_y,
    })
}

/// The image size of an images file, from its 16-byte header alone (inflating only that much
/// of a gzipped one); the whole file is checked when it is read.
fn image_dims(path: &Path) -> Result<(usize, usize)> {
    let mut f = File::open(path).ctx_io(path)?;
    let mut head = [0u8; 16];
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).ctx_io(path)?;
    let f = File::open(path).ctx_io(path)?;
    let mut r: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    };
    if r.read_exact(&mut head).is_err() {
        // Too short for a header: the full read names what is wrong.
        let im = read_u8(path, 3)?;
        return Ok((im.dims[1], im.dims[2]));
    }
    let magic = u32::from_be_bytes(head[0..4].try_into().unwrap());
    if magic != MAGIC_IDX3_U8 {
        let im = read_u8(path, 3)?;
        return Ok((im.dims[1], im.dims[2]));
    }
    let d = |i: usize| u32::from_be_bytes(head[4 * i..4 * i + 4].try_into().unwrap()) as usize;
    Ok((d(2), d(3)))
}

/// Loads an MNIST-family set: images at `size`×`size` (default: 8×8 for Fashion-MNIST, the
/// seed's, and the images' own size for any other set), through the preprocessing cache.
pub fn load_set(files: &IdxFiles, opts: &DataOptions, size: Option<usize>) -> Result<Dataset> {
    let test_labels = read_u8(&files.test_labels, 1)?;
    // By content, not by name: MNIST kept in a folder called "fashion-work" is still MNIST.
    let fashion = crc32fast::hash(&test_labels.data) == FASHION_TEST_LABELS_CRC;
    let (h, w) = image_dims(&files.train_images)?;
    let s = match size {
        Some(s) => s,
        None if fashion => super::embedded::IMAGE_SIZE,
        None if h == w => h,
        None => {
            return Err(Error::flag(
                "--image-size",
                format!(
                    "missing: {} holds {h}x{w} images; give the square size S to resize them to",
                    files.train_images.display()
                ),
            ))
        }
    };
    if s == 0 {
        return Err(Error::flag("--image-size", "0: expected at least 1"));
    }
    let key = cache::key(files, s);
    let (full, origin) = match opts.cache.then(|| cache::read(&key)).flatten() {
        Some((path, full)) => (
            full,
            Origin::Cache {
                files: files.dir.clone(),
                cache: path,
            },
        ),
        None => {
            let full = preprocess(files, s)?;
            if opts.cache {
                cache::write(&key, &full);
            }
            (full, Origin::Files(files.dir.clone()))
        }
    };
    let names = fashion.then(|| super::CLASS_NAMES.iter().map(|c| c.to_string()).collect());
    from_full(
        full,
        origin,
        opts,
        &files.train_images,
        &files.test_images,
        names,
    )
}

/// An image set's full training file and test file to a [`Dataset`]: the test file is the test
/// split; a training file of 60,000 (the MNIST family's) gives the seed's fixed validation split
/// (its last 10,000 images) unless `--val-fraction` asks for a stratified draw.
pub fn from_full(
    full: FullData,
    origin: Origin,
    opts: &DataOptions,
    train_path: &Path,
    test_path: &Path,
    names: Option<Vec<String>>,
) -> Result<Dataset> {
    let dim = full.s * full.s;
    let mut coder = labels::Coder::new();
    let mut table = [u32::MAX; 256];
    let mut code = |v: u8| {
        if table[v as usize] == u32::MAX {
            table[v as usize] = coder.code_int(v as i64);
        }
        table[v as usize]
    };
    let train_y: Vec<u32> = full.train_y.iter().map(|&v| code(v)).collect();
    let test_y: Vec<u32> = full.test_y.iter().map(|&v| code(v)).collect();
    let fixed = train_y.len() == super::N_TRAIN + super::N_VAL && opts.val_fraction.is_none();
    let (mut train_x, mut train_y) = (full.train_x, train_y);
    let val = fixed.then(|| Part {
        x: train_x.split_off(super::N_TRAIN * dim),
        y: train_y.split_off(super::N_TRAIN),
        path: train_path.to_path_buf(),
    });
    let l = Loaded {
        train: Part {
            x: train_x,
            y: train_y,
            path: train_path.to_path_buf(),
        },
        val,
        test: Some(Part {
            x: full.test_x,
            y: test_y,
            path: test_path.to_path_buf(),
        }),
        coder,
        dim,
        image: Some((full.s, full.s)),
        columns: None,
        label: None,
        origin,
    };
    let mut d = split::assemble(l, opts)?;
    if fixed {
        d.split = format!(
            "the MNIST family's: train = training file 0..{}, validation = {}..{}, test = the test file",
            super::N_TRAIN,
            super::N_TRAIN,
            super::N_TRAIN + super::N_VAL
        );
    } else {
        d.split = format!("{}; test = the test file", d.split);
    }
    if let Some(n) = names {
        if n.len() == d.classes.len() {
            d.classes = n;
        }
    }
    Ok(d)
}
