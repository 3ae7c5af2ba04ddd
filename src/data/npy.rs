//! numpy's formats, through npyz: a `.npz` (`np.savez` or `np.savez_compressed`, read through the
//! zip crate's deflate alone) or a folder of `.npy` files holding `x_train`, `y_train` and
//! optionally `x_val`/`y_val`, `x_test`/`y_test` (also spelled `train_x`…, as `fastfc data export`
//! writes them, or just `x`/`y`); and the export of the splits for numpy / PyTorch users.
//!
//! Features: float, integer or bool arrays of shape (n, d) (a table) or (n, h, w) / (n, h, w, 1)
//! (images; uint8 pixels are divided by 255 as the seed does), C or Fortran order, converted once
//! into f32 while streaming (no second copy). Labels: (n,) or (n, 1) integers, bools, integral
//! floats or fixed-width strings. Every value is checked: a NaN or inf names its row and column.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use npyz::{DType, NpyFile, Order, TypeChar, WriterBuilder};

use super::labels::Coder;
use super::split::{Loaded, Part};
use super::{Dataset, Origin, Split};
use crate::error::{Error, IoContext, Result};

/// The array names of each split, first match wins.
const NAMES: [(&str, [&str; 3], [&str; 3]); 3] = [
    (
        "train",
        ["x_train", "train_x", "x"],
        ["y_train", "train_y", "y"],
    ),
    (
        "val",
        ["x_val", "val_x", "x_valid"],
        ["y_val", "val_y", "y_valid"],
    ),
    (
        "test",
        ["x_test", "test_x", "x_test"],
        ["y_test", "test_y", "y_test"],
    ),
];

/// A features array as read: f32 values row-major, its shape, and where it came from.
struct Features {
    x: Vec<f32>,
    shape: Vec<usize>,
}

fn bad(what: &str, msg: impl std::fmt::Display) -> Error {
    Error::Data(format!("{what}: {msg}"))
}

/// Opens an array whose data can be at most `avail` bytes (the file's or zip entry's size), so a
/// header that claims more is refused before anything is allocated for it.
fn open_npy<R: Read>(
    mut r: R,
    what: &str,
    avail: u64,
) -> Result<NpyFile<std::io::Chain<std::io::Cursor<Vec<u8>>, R>>> {
    // The header's own length comes first (2 bytes in format 1, 4 in formats 2 and 3): one that
    // is longer than the file, or than numpy itself reads (its max_header_size is 10,000), is
    // refused before npyz allocates a buffer of that size.
    let mut prefix = vec![0u8; 12];
    let got = read_up_to(&mut r, &mut prefix).map_err(|e| bad(what, e))?;
    prefix.truncate(got);
    if got >= 10 && prefix.starts_with(b"\x93NUMPY") {
        let len = if prefix[6] == 1 {
            u16::from_le_bytes([prefix[8], prefix[9]]) as u64
        } else if got >= 12 {
            u32::from_le_bytes(prefix[8..12].try_into().unwrap()) as u64
        } else {
            0
        };
        if len > avail.min(MAX_HEADER) {
            return Err(bad(
                what,
                format!("its header claims {len} bytes; expected a .npy header (numpy reads at most {MAX_HEADER})"),
            ));
        }
        // npyz parses the header's Python literal with a backtracking parser that takes
        // exponential time on deep nesting: a plain array's header nests 2 deep ({(…)}).
        let start = prefix.len();
        prefix.resize(start + len as usize, 0);
        let got = read_up_to(&mut r, &mut prefix[start..]).map_err(|e| bad(what, e))?;
        prefix.truncate(start + got);
        let (mut depth, mut deepest) = (0i32, 0i32);
        for &b in &prefix[start..] {
            match b {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                _ => {}
            }
            deepest = deepest.max(depth);
        }
        if deepest > 4 {
            return Err(bad(
                what,
                format!("its header nests {deepest} deep; expected a plain array's header (a dict of a shape tuple)"),
            ));
        }
    }
    let r = std::io::Cursor::new(prefix).chain(r);
    let npy = NpyFile::new(r).map_err(|e| bad(what, format!("not a readable .npy array ({e})")))?;
    let item = match npy.dtype() {
        DType::Plain(t) => t.num_bytes().unwrap_or(1).max(1) as u64,
        _ => 1,
    };
    let need = npy.shape().iter().try_fold(item, |a, &d| a.checked_mul(d));
    match need {
        Some(n) if n <= avail => Ok(npy),
        _ => Err(bad(
            what,
            format!(
                "truncated: its header declares shape {:?} ({} bytes of data), the file holds {avail} bytes",
                npy.shape(),
                need.map_or("more than 2^64".to_string(), |n| n.to_string())
            ),
        )),
    }
}

fn type_of(npy: &NpyFile<impl Read>, what: &str) -> Result<npyz::TypeStr> {
    match npy.dtype() {
        DType::Plain(t) => Ok(t),
        d => Err(bad(
            what,
            format!(
                "dtype {}: a structured or nested array; expected plain numbers",
                d.descr()
            ),
        )),
    }
}

/// The longest `.npy` header read: numpy's own `max_header_size`.
const MAX_HEADER: u64 = 10_000;

/// Reads until `buf` is full or the input ends; the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Streams every value of `npy` as f64 into `put(storage index, value)`.
fn each_value<R: Read>(
    npy: NpyFile<R>,
    what: &str,
    mut put: impl FnMut(usize, f64) -> Result<()>,
) -> Result<()> {
    let t = type_of(&npy, what)?;
    let n = npy.len() as usize;
    let truncated = |i: usize, e: std::io::Error| {
        bad(
            what,
            format!("truncated or unreadable after {i} of {n} values ({e})"),
        )
    };
    macro_rules! go {
        ($t:ty) => {{
            let data = npy
                .data::<$t>()
                .map_err(|e| bad(what, format!("dtype {}: {e}", t)))?;
            for (i, v) in data.enumerate() {
                let v = v.map_err(|e| truncated(i, e))?;
                put(i, v as f64)?;
            }
        }};
    }
    match (t.type_char(), t.size_field()) {
        (TypeChar::Float, 4) => go!(f32),
        (TypeChar::Float, 8) => go!(f64),
        (TypeChar::Int, 1) => go!(i8),
        (TypeChar::Int, 2) => go!(i16),
        (TypeChar::Int, 4) => go!(i32),
        (TypeChar::Int, 8) => go!(i64),
        (TypeChar::Uint, 1) => go!(u8),
        (TypeChar::Uint, 2) => go!(u16),
        (TypeChar::Uint, 4) => go!(u32),
        (TypeChar::Uint, 8) => go!(u64),
        (TypeChar::Bool, 1) => {
            let data = npy
                .data::<bool>()
                .map_err(|e| bad(what, format!("dtype {}: {e}", t)))?;
            for (i, v) in data.enumerate() {
                put(i, v.map_err(|e| truncated(i, e))? as u8 as f64)?;
            }
        }
        _ => {
            return Err(bad(
                what,
                format!(
                    "dtype {t}: expected numbers (float32/64, int8..64, uint8..64 or bool){}",
                    if t.to_string().contains('O') {
                        "; object arrays are pickled Python objects, which fastfc does not read"
                    } else {
                        ""
                    }
                ),
            ))
        }
    }
    Ok(())
}

/// The C-order index of the element at storage position `k` of a Fortran-order array.
fn c_index(mut k: usize, shape: &[usize]) -> usize {
    let mut idx = 0;
    let mut stride: usize = shape.iter().product();
    for &len in shape {
        stride /= len.max(1);
        idx += (k % len.max(1)) * stride;
        k /= len.max(1);
    }
    idx
}

fn read_features<R: Read>(r: R, what: &str, avail: u64) -> Result<Features> {
    let npy = open_npy(r, what, avail)?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let ok_shape = match shape.len() {
        2 | 3 => true,
        4 => shape[3] == 1,
        _ => false,
    };
    if !ok_shape {
        return Err(bad(
            what,
            format!(
                "shape {shape:?}; expected features as (rows, features), or images as (rows, height, width) or (rows, height, width, 1){}",
                if shape.len() == 4 {
                    " (colour images: flatten them to (rows, height*width*channels))"
                } else {
                    ""
                }
            ),
        ));
    }
    let n = shape[0];
    let Some(dim) = shape[1..].iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
        return Err(bad(
            what,
            format!("shape {shape:?}: more values per row than any file holds"),
        ));
    };
    let image = shape.len() >= 3;
    let pixels = image
        && matches!(type_of(&npy, what)?, t if t.type_char() == TypeChar::Uint && t.size_field() == 1);
    let fortran = npy.order() == Order::Fortran;
    let mut x = vec![0f32; n * dim];
    each_value(npy, what, |k, v| {
        let i = if fortran { c_index(k, &shape) } else { k };
        let at = |why: String| {
            let (r, c) = (i / dim.max(1), i % dim.max(1));
            bad(what, format!("row {r}, column {c}: {why}"))
        };
        if !v.is_finite() {
            return Err(at(format!(
                "{v}; expected finite numbers (fill or drop missing values first)"
            )));
        }
        let f = if pixels { v as f32 / 255.0 } else { v as f32 };
        if !f.is_finite() {
            return Err(at(format!("{v:e} is out of float32's range")));
        }
        x[i] = f;
        Ok(())
    })?;
    Ok(Features { x, shape })
}

fn read_labels<R: Read>(r: R, what: &str, avail: u64, coder: &mut Coder) -> Result<Vec<u32>> {
    let npy = open_npy(r, what, avail)?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    if !(shape.len() == 1 || (shape.len() == 2 && shape[1] == 1)) {
        return Err(bad(
            what,
            format!("shape {shape:?}; expected labels as (rows,) or (rows, 1)"),
        ));
    }
    let t = type_of(&npy, what)?;
    let mut y = Vec::with_capacity(shape[0]);
    if matches!(t.type_char(), TypeChar::UnicodeStr | TypeChar::ByteStr) {
        let data = npy
            .data::<String>()
            .map_err(|e| bad(what, format!("dtype {t}: {e}")))?;
        for (i, v) in data.enumerate() {
            let v =
                v.map_err(|e| bad(what, format!("truncated or unreadable at label {i} ({e})")))?;
            if v.trim().is_empty() {
                return Err(bad(what, format!("row {i}: empty label")));
            }
            y.push(coder.code(&v));
        }
        return Ok(y);
    }
    each_value(npy, what, |i, v| {
        if !v.is_finite() || v.fract() != 0.0 {
            return Err(bad(
                what,
                format!("row {i}: label {v}; expected integers (or strings)"),
            ));
        }
        y.push(coder.code_int(v as i64));
        Ok(())
    })?;
    Ok(y)
}

/// Checks a split's features and labels agree, and takes it.
fn part(
    f: Features,
    y: Vec<u32>,
    xwhat: &str,
    ywhat: &str,
    path: PathBuf,
) -> Result<(Part, Vec<usize>)> {
    if f.shape[0] != y.len() {
        return Err(bad(
            ywhat,
            format!("{} labels, but {xwhat} has {} rows", y.len(), f.shape[0]),
        ));
    }
    if f.shape[0] == 0 {
        return Err(bad(xwhat, "no rows"));
    }
    Ok((Part { x: f.x, y, path }, f.shape))
}

/// Puts the splits found into a [`Loaded`], checking their shapes agree.
fn collect(
    found: Vec<(&'static str, Part, Vec<usize>, String)>,
    origin: Origin,
    coder: Coder,
) -> Result<Loaded> {
    let mut train = None;
    let mut val = None;
    let mut test = None;
    let shape0 = found[0].2.clone();
    for (split, p, shape, what) in found {
        if shape[1..] != shape0[1..] {
            return Err(bad(
                &what,
                format!(
                    "shape {shape:?}; the training features are {:?} per row",
                    &shape0[1..]
                ),
            ));
        }
        match split {
            "train" => train = Some(p),
            "val" => val = Some(p),
            _ => test = Some(p),
        }
    }
    let image = (shape0.len() >= 3).then(|| (shape0[1], shape0[2]));
    Ok(Loaded {
        train: train.unwrap(),
        val,
        test,
        coder,
        dim: shape0[1..].iter().product(),
        image,
        columns: None,
        label: None,
        origin,
    })
}

fn missing_train(path: &Path, have: &[String]) -> Error {
    Error::flag(
        "--data",
        format!(
            "{}: no training arrays; expected x_train and y_train (or train_x/train_y, or x/y), found {}",
            path.display(),
            if have.is_empty() { "none".to_string() } else { have.join(", ") }
        ),
    )
}

/// Reads a `.npz`.
pub fn read_npz(path: &Path) -> Result<Loaded> {
    let file = std::fs::File::open(path).ctx_io(path)?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| {
        Error::file(
            path,
            format!("not a readable .npz (a zip archive of .npy files): {e}"),
        )
    })?;
    let have: Vec<String> = zip
        .file_names()
        .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_string())
        .collect();
    let pick = |names: &[&str; 3]| {
        names
            .iter()
            .find(|n| have.iter().any(|h| h == *n))
            .map(|n| n.to_string())
    };
    let mut coder = Coder::new();
    let mut found = Vec::new();
    for (split, xs, ys) in NAMES {
        let (Some(xn), yn) = (pick(&xs), pick(&ys)) else {
            if let Some(yn) = pick(&ys) {
                return Err(Error::file(path, format!("has {yn} but no {}", xs[0])));
            }
            continue;
        };
        let Some(yn) = yn else {
            return Err(Error::file(path, format!("has {xn} but no {}", ys[0])));
        };
        let xwhat = format!("{}[{xn}]", path.display());
        let ywhat = format!("{}[{yn}]", path.display());
        let f = {
            let e = zip
                .by_name(&format!("{xn}.npy"))
                .map_err(|e| bad(&xwhat, e))?;
            let n = entry_bound(&e);
            read_features(BufReader::new(e), &xwhat, n)?
        };
        let y = {
            let e = zip
                .by_name(&format!("{yn}.npy"))
                .map_err(|e| bad(&ywhat, e))?;
            let n = entry_bound(&e);
            read_labels(BufReader::new(e), &ywhat, n, &mut coder)?
        };
        let (p, shape) = part(f, y, &xwhat, &ywhat, PathBuf::from(&xwhat))?;
        found.push((split, p, shape, xwhat));
    }
    if found.first().is_none_or(|f| f.0 != "train") {
        return Err(missing_train(path, &have));
    }
    collect(
        found,
        Origin::Arrays {
            path: path.to_path_buf(),
            format: "npz",
        },
        coder,
    )
}

/// The most bytes a zip entry can inflate to: its declared size, but no more than deflate's
/// largest ratio (1032:1) allows of its compressed size, so a tiny archive that declares
/// gigabytes cannot make fastfc allocate them.
fn entry_bound<R: Read>(e: &zip::read::ZipFile<'_, R>) -> u64 {
    e.size().min(e.compressed_size().saturating_mul(1032))
}

fn open_file(p: &Path) -> Result<BufReader<std::fs::File>> {
    Ok(BufReader::new(std::fs::File::open(p).ctx_io(p)?))
}

fn file_len(p: &Path) -> Result<u64> {
    Ok(std::fs::metadata(p).ctx_io(p)?.len())
}

fn npy_in(dir: &Path, names: &[&str; 3]) -> Option<PathBuf> {
    names
        .iter()
        .map(|n| dir.join(format!("{n}.npy")))
        .find(|p| p.is_file())
}

/// Whether `dir` holds training arrays as `.npy` files.
pub fn folder_has_arrays(dir: &Path) -> bool {
    NAMES
        .iter()
        .any(|(_, xs, ys)| npy_in(dir, xs).is_some() || npy_in(dir, ys).is_some())
}

/// Reads a folder of `.npy` files.
pub fn read_folder(dir: &Path) -> Result<Loaded> {
    let mut coder = Coder::new();
    let mut found = Vec::new();
    for (split, xs, ys) in NAMES {
        let (xp, yp) = (npy_in(dir, &xs), npy_in(dir, &ys));
        let (xp, yp) = match (xp, yp) {
            (None, None) => continue,
            (Some(x), Some(y)) => (x, y),
            (Some(x), None) => {
                return Err(Error::file(
                    &x,
                    format!("no labels beside it ({}.npy)", ys[0]),
                ))
            }
            (None, Some(y)) => {
                return Err(Error::file(
                    &y,
                    format!("no features beside it ({}.npy)", xs[0]),
                ))
            }
        };
        let (xwhat, ywhat) = (xp.display().to_string(), yp.display().to_string());
        let f = read_features(open_file(&xp)?, &xwhat, file_len(&xp)?)?;
        let y = read_labels(open_file(&yp)?, &ywhat, file_len(&yp)?, &mut coder)?;
        let (p, shape) = part(f, y, &xwhat, &ywhat, xp)?;
        found.push((split, p, shape, xwhat));
    }
    if found.first().is_none_or(|f| f.0 != "train") {
        return Err(missing_train(dir, &[]));
    }
    collect(
        found,
        Origin::Arrays {
            path: dir.to_path_buf(),
            format: ".npy folder",
        },
        coder,
    )
}

/// Reads the features of one array for `fastfc predict`: a `.npy` file, or an `.npz`'s
/// `x_test` (else `x`, `test_x`, `x_train`, else its only array). Returns the values and the per-row shape.
pub fn read_x(path: &Path) -> Result<(Vec<f32>, Vec<usize>)> {
    let what = path.display().to_string();
    let is_npz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"));
    let f = if is_npz {
        let file = std::fs::File::open(path).ctx_io(path)?;
        let mut zip = zip::ZipArchive::new(BufReader::new(file))
            .map_err(|e| Error::file(path, format!("not a readable .npz: {e}")))?;
        let names: Vec<String> = zip.file_names().map(str::to_string).collect();
        let name = ["x_test.npy", "x.npy", "test_x.npy", "x_train.npy"]
            .iter()
            .map(|n| n.to_string())
            .find(|n| names.contains(n))
            .or_else(|| (names.len() == 1).then(|| names[0].clone()))
            .ok_or_else(|| {
                Error::file(
                    path,
                    format!(
                        "expected an array x_test or x (or a single array); found {}",
                        names.join(", ")
                    ),
                )
            })?;
        let w = format!("{what}[{}]", name.trim_end_matches(".npy"));
        let e = zip.by_name(&name).map_err(|e| bad(&w, e))?;
        let n = entry_bound(&e);
        read_features(BufReader::new(e), &w, n)?
    } else {
        read_features(open_file(path)?, &what, file_len(path)?)?
    };
    Ok((f.x, f.shape[1..].to_vec()))
}

fn write_array<T: npyz::AutoSerialize + Copy>(
    path: &Path,
    shape: &[u64],
    v: impl Iterator<Item = T>,
) -> Result<()> {
    let f = std::io::BufWriter::new(std::fs::File::create(path).ctx_io(path)?);
    let mut w = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(shape)
        .writer(f)
        .begin_nd()
        .ctx_io(path)?;
    w.extend(v).ctx_io(path)?;
    w.finish().ctx_io(path)
}

/// Writes `{name}_x.npy` and `{name}_y.npy`; labels as uint8 up to 256 classes, else int32.
fn write_split(dir: &Path, name: &str, split: &Split, classes: usize) -> Result<()> {
    let xp = dir.join(format!("{name}_x.npy"));
    let yp = dir.join(format!("{name}_y.npy"));
    write_array(
        &xp,
        &[split.len() as u64, split.dim as u64],
        split.x.iter().copied(),
    )?;
    let shape = [split.len() as u64];
    if classes <= 256 {
        write_array(&yp, &shape, split.y.iter().map(|&c| c as u8))
    } else {
        write_array(&yp, &shape, split.y.iter().map(|&c| c as i32))
    }
}

/// Writes `{train,val,test}_{x,y}.npy` (x float32 `[N, features]`, y class ids as uint8 `[N]`,
/// int32 past 256 classes) and `classes.txt` (one class name a line, in class-id order) into
/// `dir`. Returns the labels' dtype.
pub fn export(data: &Dataset, dir: &Path) -> Result<&'static str> {
    std::fs::create_dir_all(dir).ctx_io(dir)?;
    let k = data.n_classes();
    write_split(dir, "train", &data.train, k)?;
    write_split(dir, "val", &data.val, k)?;
    write_split(dir, "test", &data.test, k)?;
    let names = dir.join("classes.txt");
    std::fs::write(&names, data.classes.join("\n") + "\n").ctx_io(&names)?;
    Ok(if k <= 256 { "uint8" } else { "int32" })
}
