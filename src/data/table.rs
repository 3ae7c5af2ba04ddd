//! CSV tables (through the csv crate, streamed row by row into one f32 buffer): a header row,
//! numeric feature columns, one label column (`--label NAME`, default the last) of integers or
//! strings. Comma-separated, or tab/semicolon when the header has those and no comma. Every bad
//! cell is reported with the file, its line and its column's name: a missing or non-numeric
//! value, NaN or inf, a row with too few or too many fields.

use std::path::Path;

use super::labels::Coder;
use super::split::{Loaded, Part};
use super::Origin;
use crate::error::{Error, IoContext, Result};

/// The delimiter a header line suggests.
fn delimiter(path: &Path, header: &str) -> u8 {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"))
    {
        return b'\t';
    }
    if header.contains(',') {
        b','
    } else if header.contains('\t') {
        b'\t'
    } else if header.contains(';') {
        b';'
    } else {
        b','
    }
}

/// A parsed table: features (rows × columns' count), the label cells, the feature names.
pub struct Table {
    pub x: Vec<f32>,
    pub labels: Option<Vec<u32>>,
    pub coder: Coder,
    pub columns: Vec<String>,
    /// The label column's name ("" when none was read).
    pub label: String,
}

/// Parses `path`. `label`: Some(name) → that column holds the labels (an error when absent, if
/// `need_label`); None → the last column does (when `need_label`). `want`: the feature columns
/// to take, in this order (predict: the model's), else every column but the label.
fn parse(
    path: &Path,
    label: Option<&str>,
    need_label: bool,
    want: Option<&[String]>,
) -> Result<Table> {
    let file = std::fs::File::open(path).ctx_io(path)?;
    let mut head = String::new();
    {
        use std::io::BufRead;
        let mut r = std::io::BufReader::new(std::fs::File::open(path).ctx_io(path)?);
        r.read_line(&mut head).ctx_io(path)?;
    }
    if head.trim().is_empty() {
        return Err(Error::file(
            path,
            "empty (or a blank first line); expected a header row naming the columns",
        ));
    }
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter(path, &head))
        .flexible(true)
        .has_headers(true)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| Error::file(path, format!("cannot read the header row: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let width = header.len();
    let label_at = match label {
        Some(name) => match header.iter().position(|h| h == name) {
            Some(i) => Some(i),
            None if need_label => {
                return Err(Error::flag(
                    "--label",
                    format!(
                        "{}: no column {name:?}; the header has {}",
                        path.display(),
                        header
                            .iter()
                            .map(|h| format!("{h:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ))
            }
            None => None,
        },
        None if need_label => Some(width - 1),
        None => None,
    };
    if need_label && width < 2 {
        return Err(Error::file(
            path,
            format!("{width} column; expected at least one feature and the label"),
        ));
    }
    let cols: Vec<usize> = match want {
        Some(names) => names
            .iter()
            .map(|n| {
                header.iter().position(|h| h == n).ok_or_else(|| {
                    Error::file(
                        path,
                        format!("no column {n:?}, which the model was trained on"),
                    )
                })
            })
            .collect::<Result<_>>()?,
        None => (0..width).filter(|&i| Some(i) != label_at).collect(),
    };
    let mut coder = Coder::new();
    let mut x = Vec::new();
    let mut labels = label_at.map(|_| Vec::new());
    let mut rec = csv::ByteRecord::new();
    let file_len = std::fs::metadata(path).map_or(0, |m| m.len());
    let mut rows = 0usize;
    loop {
        let more = rdr.read_byte_record(&mut rec).map_err(|e| {
            let at = e
                .position()
                .map_or(String::new(), |p| format!("line {}: ", p.line()));
            Error::file(path, format!("{at}{e}"))
        })?;
        if !more {
            break;
        }
        let line = rec.position().map_or(0, |p| p.line());
        if rec.len() == 1 && rec[0].iter().all(u8::is_ascii_whitespace) {
            continue; // a blank line
        }
        if rec.len() != width {
            return Err(Error::file(
                path,
                format!(
                    "line {line}: {} fields; the header has {width} columns",
                    rec.len()
                ),
            ));
        }
        for &c in &cols {
            let cell = std::str::from_utf8(&rec[c]).unwrap_or("\u{fffd}").trim();
            let bad = |what: &str| {
                Error::file(path, format!("line {line}, column {:?}: {what}", header[c]))
            };
            if cell.is_empty() {
                return Err(bad(
                    "missing value; expected a number (fill or drop missing values first)",
                ));
            }
            let v: f32 = cell
                .parse()
                .map_err(|_| bad(&format!("{cell:?} is not a number")))?;
            if !v.is_finite() {
                return Err(bad(&format!(
                    "{cell}; expected a finite number (fill or drop missing values first)"
                )));
            }
            x.push(v);
        }
        rows += 1;
        if rows == 4096 {
            // Reserve for the whole file from the first rows' length, so a large table grows
            // its buffer once instead of doubling past it.
            let per_row = rec.position().map_or(0, |p| p.byte()) / rows as u64;
            if let Some(est) = file_len.checked_div(per_row) {
                let est = est as usize * 21 / 20;
                x.reserve(est.saturating_sub(rows) * cols.len());
            }
        }
        if let (Some(l), Some(ys)) = (label_at, labels.as_mut()) {
            let cell = std::str::from_utf8(&rec[l]).unwrap_or("\u{fffd}").trim();
            if cell.is_empty() {
                return Err(Error::file(
                    path,
                    format!("line {line}, column {:?}: missing label", header[l]),
                ));
            }
            ys.push(coder.code(cell));
        }
    }
    x.shrink_to_fit();
    Ok(Table {
        x,
        labels,
        coder,
        columns: cols.iter().map(|&c| header[c].clone()).collect(),
        label: label_at.map_or(String::new(), |l| header[l].clone()),
    })
}

/// Reads a CSV for training.
pub fn read(path: &Path, label: Option<&str>) -> Result<Loaded> {
    let t = parse(path, label, true, None)?;
    let y = t.labels.unwrap_or_default();
    if y.is_empty() {
        return Err(Error::file(path, "no data rows after the header"));
    }
    Ok(Loaded {
        train: Part {
            x: t.x,
            y,
            path: path.to_path_buf(),
        },
        val: None,
        test: None,
        coder: t.coder,
        dim: t.columns.len(),
        image: None,
        columns: Some(t.columns),
        label: Some(t.label),
        origin: Origin::Arrays {
            path: path.to_path_buf(),
            format: "CSV",
        },
    })
}

/// Reads the model's feature columns of a CSV for `fastfc predict`; the label column, when the
/// file has it, comes back too (as the file spells the labels).
pub fn read_for_predict(
    path: &Path,
    columns: &[String],
    label: Option<&str>,
) -> Result<(Vec<f32>, Option<Vec<String>>)> {
    let t = parse(path, label, false, Some(columns))?;
    let labels = t.labels.map(|ys| {
        ys.iter()
            .map(|&c| t.coder.names()[c as usize].clone())
            .collect()
    });
    Ok((t.x, labels))
}
