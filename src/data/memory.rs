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
    if dim == 0 || a.x.len() % dim != 0 || a.x.len() / dim != a.y.len() {
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

/// The data set of `train` (and `val`, else a validation split drawn by `opts.val_fraction`
/// from `opts.seed`); with `opts.test_fraction == Some(0.0)` no test split is made (the caller
/// keeps its own), else one is drawn too.
pub fn from_arrays(
    train: Arrays,
    val: Option<Arrays>,
    shape: Shape,
    opts: &DataOptions,
) -> Result<Dataset> {
    let k = shape.classes.len();
    let train = part(train, shape.dim, k)?;
    let val = val.map(|v| part(v, shape.dim, k)).transpose()?;
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
    assemble(loaded, &opts)
}
