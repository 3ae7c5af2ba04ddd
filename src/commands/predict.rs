//! `fastfc predict --model DIR --data FILE`: class ids, names and probabilities of every row of
//! FILE, with the model's stored scaling applied, as CSV (`row,class_id,class,p_<name>…`).
//! FILE: a CSV with the training CSV's feature columns (matched by name, any order; the label
//! column, when present, is compared and the accuracy printed), a `.npy`/`.npz` array or an IDX
//! images file (resized to the model's image size by the seed's pipeline).

use std::io::Write;
use std::path::Path;

use crate::backend::cpu::CpuTrial;
use crate::cli::PredictArgs;
use crate::error::{Error, IoContext, Result};
use crate::model::TrialState;
use crate::results::model_io::{self, ModelConfig};

/// The rows of `path` as the model's inputs (before scaling), and their labels when the file
/// has them.
fn read_rows(path: &Path, cfg: &ModelConfig) -> Result<(Vec<f32>, Option<Vec<String>>)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let columns = cfg.data.as_ref().and_then(|d| d.columns.clone());
    let label = cfg.data.as_ref().and_then(|d| d.label.clone());
    if matches!(ext.as_str(), "csv" | "tsv" | "txt") {
        let Some(cols) = columns else {
            return Err(Error::flag(
                "--data",
                format!(
                    "{}: the model was trained on arrays, not a CSV, so its columns have no names; give a .npy or .npz of {} features",
                    path.display(),
                    cfg.inputs
                ),
            ));
        };
        return crate::data::table::read_for_predict(path, &cols, label.as_deref());
    }
    let (x, shape) = if name.contains("idx3-ubyte") {
        let im = crate::data::idx::read_u8(path, 3)?;
        let (n, h, w) = (im.dims[0], im.dims[1], im.dims[2]);
        let s = if cfg.image_size > 0 {
            cfg.image_size
        } else {
            h
        };
        if s > h || s > w {
            return Err(Error::file(
                path,
                format!("{h}x{w} images; the model takes {s}x{s}"),
            ));
        }
        (
            crate::data::resize::preprocess_stack(&im.data, n, h, w, s),
            vec![s, s],
        )
    } else if matches!(ext.as_str(), "npy" | "npz") {
        crate::data::npy::read_x(path)?
    } else {
        return Err(Error::flag(
            "--data",
            format!(
                "{}: unknown kind of file; expected .csv, .npy, .npz or an IDX images file (*-idx3-ubyte[.gz])",
                path.display()
            ),
        ));
    };
    let per_row: usize = shape.iter().product();
    let s = cfg.image_size;
    if per_row == cfg.inputs {
        return Ok((x, None));
    }
    // Images larger than the model's: resize them as training did.
    if s > 0 && shape.len() == 2 && shape[0] >= s && shape[1] >= s {
        let out = crate::data::resize::resize_stack(&x, shape[0], shape[1], s);
        return Ok((out, None));
    }
    Err(Error::file(
        path,
        format!(
            "rows of shape {shape:?} ({per_row} values); the model takes {}",
            cfg.inputs
        ),
    ))
}

pub fn run(a: &PredictArgs) -> Result<()> {
    if a.out.exists() && !a.overwrite {
        return Err(Error::flag(
            "--out",
            format!(
                "{}: exists; pass --overwrite to replace it, or choose another file",
                a.out.display()
            ),
        ));
    }
    let (cfg, params) = model_io::load(&a.model)?;
    let (mut x, truth) = read_rows(&a.data, &cfg)?;
    let n = x.len() / cfg.inputs.max(1);
    if n == 0 {
        return Err(Error::file(&a.data, "no rows to predict"));
    }
    if let Some(d) = cfg.scaling.dim() {
        if d != cfg.inputs {
            return Err(Error::file(
                &a.model,
                format!("scaling for {d} features, model of {}", cfg.inputs),
            ));
        }
    }
    cfg.scaling.apply(&mut x);
    let spec = cfg.spec();
    let mut state = TrialState::init(&spec);
    state.params = params;
    let trial = CpuTrial::new(spec, state)?;
    let p = trial.predict_proba(&x);
    let k = cfg.classes;
    let names: Vec<String> = if cfg.class_names.len() == k {
        cfg.class_names.clone()
    } else {
        (0..k).map(|c| c.to_string()).collect()
    };
    let tmp = a.out.with_extension("csv.tmp");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp).ctx_io(&tmp)?);
    let mut csv = csv::Writer::from_writer(&mut w);
    let mut head = vec!["row".to_string(), "class_id".into(), "class".into()];
    head.extend(names.iter().map(|c| format!("p_{c}")));
    let e = |e: csv::Error| Error::file(&tmp, e.to_string());
    csv.write_record(&head).map_err(e)?;
    let mut correct = 0usize;
    for (r, pr) in p.chunks_exact(k).enumerate() {
        let best = pr
            .iter()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |b, (i, &v)| if v > b.1 { (i, v) } else { b },
            )
            .0;
        if let Some(t) = &truth {
            correct += (t[r] == names[best]) as usize;
        }
        let mut rec = vec![r.to_string(), best.to_string(), names[best].clone()];
        rec.extend(pr.iter().map(|v| format!("{v:.6}")));
        csv.write_record(&rec).map_err(e)?;
    }
    csv.flush().ctx_io(&tmp)?;
    drop(csv);
    w.flush().ctx_io(&tmp)?;
    drop(w);
    std::fs::rename(&tmp, &a.out).ctx_io(&a.out)?;
    println!("wrote {} ({n} rows, {k} classes)", a.out.display());
    if truth.is_some() {
        println!(
            "accuracy {:.4} against the file's label column ({} of {n})",
            correct as f64 / n as f64,
            correct
        );
    }
    Ok(())
}
