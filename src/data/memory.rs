//! Arrays handed over in memory, as the Python package passes a notebook's numpy arrays: the
//! features already copied into the engine's own buffers (once, by the caller), the labels as
//! class ids of classes the caller has ordered. From here on they are data like any file's: the
//! validation split drawn when none is given (stratified, from the seed), scaling fitted on the
//! training split, a record with a CRC-32 so a resumed study refuses other arrays.

use std::path::PathBuf;

use super::labels::Coder;
use super::split::{assemble, Loaded, Part};
use super::{DataOptions, Dataset, Origin};
use crate::error::{Error, Result};

/// One split of in-memory arrays: `x` is (rows, dim) row-major, `y` class ids.
#[derive(Debug, Default)]
pub struct Arrays {
    pub x: Vec<f32>,
    pub y: Vec<u32>,
    /// Its name in messages (`x_train`, `validation_data`).
    pub name: String,
}

/// Everything about in-memory data besides the splits.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Features per row.
    pub dim: usize,
    /// (height, width) when the rows are images.
    pub image: Option<(usize, usize)>,
    /// Class names in class-id order.
    pub classes: Vec<String>,
    /// What the arrays are, in words (the data's source in records and messages).
    pub what: String,
}

fn part(a: Arrays, dim: usize, k: usize) -> Result<Part> {
    let path = PathBuf::from(&a.name);
    if dim == 0 || !a.x.len().is_multiple_of(dim) || a.x.len() / dim != a.y.len() {
        return Err(Error::file(
            &path,
            format!(
                "{} values for {} labels of {dim} features each",
                a.x.len(),
                a.y.len()
            ),
        ));
    }
    if let Some((row, &c)) = a.y.iter().enumerate().find(|(_, &c)| c as usize >= k) {
        return Err(Error::file(
            &path,
            format!("row {row}: class id {c}; expected < {k}"),
        ));
    }
    Ok(Part {
        x: a.x,
        y: a.y,
        path,
    })
}

/// The validation rows of a set of labels: `assign[i]` is 1 for a row drawn for validation, 0
/// for a training row; stratified, from `seed`, exactly as [`from_arrays`] draws them itself. A
/// caller that copies rows straight into the two splits with it never holds the features twice.
pub fn draw_validation(y: &[u32], classes: usize, fraction: f64, seed: u64) -> Vec<u8> {
    super::split::stratified(y, classes, fraction, 0.0, seed)
}

/// The validation split of in-memory data.
#[derive(Debug)]
pub enum Validation {
    /// The caller's own validation arrays.
    Given(Arrays),
    /// Rows the caller drew with [`draw_validation`] (`opts.val_fraction`, `opts.seed`) and
    /// copied out itself: recorded as drawn, not given.
    Drawn(Arrays),
    /// Draw them here, from `train`.
    Draw,
}

/// The data set of `train` and its validation split; with `opts.test_fraction == Some(0.0)` no
/// test split is made (the caller keeps its own), else one is drawn too.
pub fn from_arrays(
    train: Arrays,
    val: Validation,
    shape: Shape,
    opts: &DataOptions,
) -> Result<Dataset> {
    let k = shape.classes.len();
    let train = part(train, shape.dim, k)?;
    let n = train.y.len();
    let (val, drawn) = match val {
        Validation::Given(v) => (Some(part(v, shape.dim, k)?), false),
        Validation::Drawn(v) => (Some(part(v, shape.dim, k)?), true),
        Validation::Draw => (None, false),
    };
    if train.y.is_empty() {
        return Err(Error::file(&train.path, "no rows"));
    }
    let loaded = Loaded {
        train,
        val,
        test: None,
        coder: Coder::ordered(shape.classes),
        dim: shape.dim,
        image: shape.image,
        columns: None,
        label: None,
        origin: Origin::Memory(shape.what),
    };
    let mut opts = opts.clone();
    opts.data = None;
    opts.data_dir = None;
    if !drawn {
        return assemble(loaded, &opts);
    }
    let fraction = opts
        .val_fraction
        .take()
        .unwrap_or(super::split::DEFAULT_FRACTION);
    let mut d = assemble(loaded, &opts)?;
    // As assemble says it when it draws the rows itself.
    d.split = format!(
        "validation {fraction} of the {} rows, stratified, seed {}{}",
        n + d.val.len(),
        opts.seed,
        if d.test.is_empty() {
            "; no test split (the caller keeps its own)"
        } else {
            ""
        }
    );
    d.options.val_fraction = Some(fraction);
    Ok(d)
}
