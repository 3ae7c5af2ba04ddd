//! From what a reader found to a [`Dataset`]: classes ordered, the missing validation and test
//! splits drawn once from the training rows (stratified by class, from the study seed), the
//! scaling fitted on the training split alone and applied to all three. A split a source brings
//! is used as it is: a fraction flag for it is refused rather than silently ignored.
//!
//! Memory: the rows drawn out for validation and test are copied into their own buffers and the
//! training rows are compacted in place, so the peak is the data plus those two splits (1.4× the
//! data at the default fractions), never a second full copy.

use std::path::PathBuf;

use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::labels::Coder;
use super::{DataOptions, Dataset, Origin, Scale, Scaler, Split, MAX_CLASSES, MAX_FEATURES};
use crate::error::{Error, Result};
use crate::rng::{derive_seed, stream};

/// One split as read: features (rows × dim) and label codes of the reader's [`Coder`].
#[derive(Debug, Default)]
pub struct Part {
    pub x: Vec<f32>,
    pub y: Vec<u32>,
    /// The file (or array) it came from, for messages.
    pub path: PathBuf,
}

/// What a reader hands over.
#[derive(Debug)]
pub struct Loaded {
    pub train: Part,
    pub val: Option<Part>,
    pub test: Option<Part>,
    pub coder: Coder,
    pub dim: usize,
    pub image: Option<(usize, usize)>,
    pub columns: Option<Vec<String>>,
    /// The CSV's label column.
    pub label: Option<String>,
    pub origin: Origin,
}

pub const DEFAULT_FRACTION: f64 = 0.2;

pub fn check_fraction(flag: &str, f: f64) -> Result<()> {
    if !(f > 0.0 && f < 1.0) {
        return Err(Error::flag(
            flag,
            format!("{f}: expected a fraction strictly between 0 and 1"),
        ));
    }
    Ok(())
}

/// How many of each class's rows (`counts`) go to a split of `fraction`: round(n·fraction) in
/// all, shared out by largest remainder (ties to the lower class id), never taking a class's
/// last `keep[c]` rows.
fn allocate(counts: &[usize], keep: &[usize], fraction: f64) -> Vec<usize> {
    let n: usize = counts.iter().sum();
    let want = (n as f64 * fraction).round() as usize;
    let cap: Vec<usize> = counts
        .iter()
        .zip(keep)
        .map(|(&c, &k)| c.saturating_sub(k))
        .collect();
    let exact: Vec<f64> = counts.iter().map(|&c| c as f64 * fraction).collect();
    let mut take: Vec<usize> = exact
        .iter()
        .zip(&cap)
        .map(|(&e, &c)| (e.floor() as usize).min(c))
        .collect();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    let mut left = want.saturating_sub(take.iter().sum());
    // Largest remainders first; then, where caps held some back, any class with room.
    for pass in 0..2 {
        for &c in &order {
            if left == 0 {
                break;
            }
            if take[c] < cap[c] && (pass == 1 || (take[c] as f64) < exact[c]) {
                take[c] += 1;
                left -= 1;
            }
        }
    }
    take
}

/// Which split each training row goes to (0 train, 1 validation, 2 test): stratified, so each
/// split holds the classes in the proportions of the whole (round(n·fraction) rows in all); per
/// class a seeded shuffle decides which rows. Every class keeps at least one training row.
pub fn stratified(y: &[u32], classes: usize, val: f64, test: f64, seed: u64) -> Vec<u8> {
    let mut by_class: Vec<Vec<u32>> = vec![Vec::new(); classes];
    for (i, &c) in y.iter().enumerate() {
        by_class[c as usize].push(i as u32);
    }
    let counts: Vec<usize> = by_class.iter().map(Vec::len).collect();
    let keep: Vec<usize> = counts.iter().map(|&c| c.min(1)).collect();
    let nt = allocate(&counts, &keep, test);
    let keep_v: Vec<usize> = keep.iter().zip(&nt).map(|(k, t)| k + t).collect();
    let nv = allocate(&counts, &keep_v, val);
    let mut assign = vec![0u8; y.len()];
    for (c, rows) in by_class.iter_mut().enumerate() {
        let mut rng =
            rand_chacha::ChaCha8Rng::seed_from_u64(derive_seed(seed, stream::SPLIT, c as u64));
        rows.shuffle(&mut rng);
        for &r in &rows[..nt[c]] {
            assign[r as usize] = 2;
        }
        for &r in &rows[nt[c]..nt[c] + nv[c]] {
            assign[r as usize] = 1;
        }
    }
    assign
}

/// Splits `part` by `assign`: validation and test rows copied out, training rows compacted in
/// place (row order kept within each split).
fn take(part: Part, dim: usize, assign: &[u8]) -> (Split, Split, Split) {
    let Part { mut x, mut y, .. } = part;
    let count = |k: u8| assign.iter().filter(|&&a| a == k).count();
    let mut out = [1u8, 2].map(|k| Split {
        x: Vec::with_capacity(count(k) * dim),
        y: Vec::with_capacity(count(k)),
        dim,
    });
    let mut w = 0;
    for (i, &a) in assign.iter().enumerate() {
        if a == 0 {
            x.copy_within(i * dim..(i + 1) * dim, w * dim);
            y[w] = y[i];
            w += 1;
        } else {
            let s = &mut out[a as usize - 1];
            s.x.extend_from_slice(&x[i * dim..(i + 1) * dim]);
            s.y.push(y[i]);
        }
    }
    x.truncate(w * dim);
    x.shrink_to_fit();
    y.truncate(w);
    y.shrink_to_fit();
    let [val, test] = out;
    (Split { x, y, dim }, val, test)
}

/// The default scaling: none for images (already in [0, 1]), standard for tables.
pub fn default_scale(image: bool) -> Scale {
    if image {
        Scale::None
    } else {
        Scale::Standard
    }
}

/// `--image-size S`: images resized to S×S by the seed's pipeline (a table is refused).
fn resize_images(l: &mut Loaded, s: usize) -> Result<()> {
    let Some((h, w)) = l.image else {
        return Err(Error::flag(
            "--image-size",
            format!(
                "{}: a table of {} features, not images (arrays of shape (rows, height, width))",
                l.train.path.display(),
                l.dim
            ),
        ));
    };
    if (h, w) == (s, s) {
        return Ok(());
    }
    if s == 0 || s > h || s > w {
        return Err(Error::flag(
            "--image-size",
            format!(
                "{s}: {} holds {h}x{w} images; expected 1..={}",
                l.train.path.display(),
                h.min(w)
            ),
        ));
    }
    for p in [Some(&mut l.train), l.val.as_mut(), l.test.as_mut()]
        .into_iter()
        .flatten()
    {
        p.x = super::resize::resize_stack(&p.x, h, w, s);
    }
    l.image = Some((s, s));
    l.dim = s * s;
    Ok(())
}

/// Orders the classes, draws the missing splits, fits and applies the scaling.
pub fn assemble(mut l: Loaded, opts: &DataOptions) -> Result<Dataset> {
    if let Some(s) = opts.image_size {
        resize_images(&mut l, s)?;
    }
    let dim = l.dim;
    let name = l.train.path.display().to_string();
    if dim == 0 || dim > MAX_FEATURES {
        return Err(Error::file(
            &l.train.path,
            format!("{dim} features; expected 1..={MAX_FEATURES}"),
        ));
    }
    let classes = l.coder.finish();
    let k = classes.names.len();
    if k < 2 {
        return Err(Error::file(
            &l.train.path,
            format!(
                "only one class ({}); a classifier needs at least 2",
                classes.names.first().map_or("none", String::as_str)
            ),
        ));
    }
    if k > MAX_CLASSES {
        return Err(Error::file(
            &l.train.path,
            format!("{k} classes; fastfc takes 2..={MAX_CLASSES} (is the label column a feature?)"),
        ));
    }
    for (p, given, flag, what) in [
        (&l.val, opts.val_fraction, "--val-fraction", "validation"),
        (&l.test, opts.test_fraction, "--test-fraction", "test"),
    ] {
        if let (Some(p), Some(_)) = (p, given) {
            return Err(Error::flag(
                flag,
                format!(
                    "the data brings its own {what} split ({}); it is used as given",
                    p.path.display()
                ),
            ));
        }
    }
    let mut train = l.train;
    classes.apply(&mut train.y);
    let fix = |p: Option<Part>| {
        p.map(|mut p| {
            classes.apply(&mut p.y);
            Split {
                x: p.x,
                y: p.y,
                dim,
            }
        })
    };
    let (val, test) = (fix(l.val), fix(l.test));
    let vf = if val.is_none() {
        opts.val_fraction.unwrap_or(DEFAULT_FRACTION)
    } else {
        0.0
    };
    // A caller that keeps its own test set (the Python package: the user scores it) asks for
    // none with a test fraction of exactly 0, which the flags refuse.
    let no_test = test.is_none() && opts.test_fraction == Some(0.0);
    let tf = if test.is_none() {
        opts.test_fraction.unwrap_or(DEFAULT_FRACTION)
    } else {
        0.0
    };
    if vf + tf >= 1.0 {
        return Err(Error::flag(
            "--val-fraction",
            format!("validation {vf} + test {tf} leave no training rows"),
        ));
    }
    let n = train.y.len();
    let assign = stratified(&train.y, k, vf, tf, opts.seed);
    let (tr, dv, dt) = take(train, dim, &assign);
    let mut drawn = Vec::new();
    if val.is_none() {
        drawn.push(format!("validation {vf}"));
    }
    if test.is_none() && !no_test {
        drawn.push(format!("test {tf}"));
    }
    let how = if drawn.is_empty() {
        if no_test {
            "as given, no test split (the caller keeps its own)".to_string()
        } else {
            "as given".to_string()
        }
    } else {
        format!(
            "{} of the {n} rows, stratified, seed {}{}",
            drawn.join(" and "),
            opts.seed,
            if no_test {
                "; no test split (the caller keeps its own)"
            } else {
                ""
            }
        )
    };
    let (val, test) = (val.unwrap_or(dv), test.unwrap_or(dt));
    for (s, what) in [(&tr, "training"), (&val, "validation"), (&test, "test")] {
        if s.is_empty() && !(no_test && what == "test") {
            return Err(Error::Data(format!(
                "{name}: the {what} split is empty ({n} training rows, {k} classes); give more rows or other --val-fraction/--test-fraction"
            )));
        }
    }
    let scale = opts.scale.unwrap_or(default_scale(l.image.is_some()));
    let mut d = Dataset {
        train: tr,
        val,
        test,
        classes: classes.names,
        image: l.image,
        scaler: Scaler::None,
        columns: l.columns,
        label: l.label,
        split: how,
        origin: l.origin,
        options: opts.clone(),
    };
    scale_all(&mut d, scale);
    Ok(d)
}

/// Fits `kind` on the training split and applies it to all three.
pub fn scale_all(d: &mut Dataset, kind: Scale) {
    let s = Scaler::fit(kind, &d.train.x, d.dim());
    for split in [&mut d.train, &mut d.val, &mut d.test] {
        s.apply(&mut split.x);
    }
    d.scaler = s;
}
