//! A trained model on disk: `model.safetensors` with tensors `layers.{i}.weight` (out, in) and
//! `layers.{i}.bias` (out) — PyTorch nn.Linear's layout — and the config as JSON in the metadata
//! key `fastfc.config`; `config.json` holds the same config for people and scripts.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::{DataRecord, Dataset, Scaler};
use crate::error::{Error, IoContext, Result};
use crate::model::{Hyperparams, Layout, TrialSpec};

pub const CONFIG_KEY: &str = "fastfc.config";

/// Everything needed to rebuild and re-score a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    #[serde(flatten)]
    pub hp: Hyperparams,
    pub inputs: usize,
    pub classes: usize,
    /// The side of the square images it takes (0: not images).
    #[serde(default)]
    pub image_size: usize,
    pub trial_id: u64,
    pub seed: u64,
    pub fastfc_version: String,
    /// The class names, in class-id order (its outputs).
    #[serde(default)]
    pub class_names: Vec<String>,
    /// The scaling fitted on the training split, applied to every input before the first layer.
    #[serde(default)]
    pub scaling: Scaler,
    /// The data it was trained on (`eval` refuses other data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataRecord>,
}

impl ModelConfig {
    /// The model `spec` describes, trained on `data` in a study of seed `study_seed` whose batch
    /// size is `study_batch` (written as the model's `batch_size` when the trial has none of its
    /// own, so config.json alone says how it was trained).
    pub fn from_spec(
        spec: &TrialSpec,
        data: &Dataset,
        study_seed: u64,
        study_batch: usize,
    ) -> Self {
        let mut hp = spec.hp.clone();
        hp.batch_size = Some(hp.batch(study_batch));
        ModelConfig {
            hp,
            inputs: spec.inputs,
            classes: spec.classes,
            image_size: data.image_size(),
            trial_id: spec.id,
            seed: study_seed,
            fastfc_version: env!("CARGO_PKG_VERSION").to_string(),
            class_names: data.classes.clone(),
            scaling: data.scaler.clone(),
            data: Some(data.record()),
        }
    }
    pub fn spec(&self) -> TrialSpec {
        TrialSpec::new(
            self.trial_id,
            self.hp.clone(),
            self.seed,
            self.inputs,
            self.classes,
        )
    }
}

/// Writes `dir/model.safetensors` and `dir/config.json`.
pub fn save(dir: &Path, cfg: &ModelConfig, params: &[f32]) -> Result<()> {
    std::fs::create_dir_all(dir).ctx_io(dir)?;
    let path = dir.join("model.safetensors");
    let bytes = to_bytes(cfg, params)?;
    let tmp = path.with_extension("safetensors.tmp");
    std::fs::write(&tmp, bytes).ctx_io(&tmp)?;
    std::fs::rename(&tmp, &path).ctx_io(&path)?;
    write_json(&dir.join("config.json"), cfg)
}

/// The model as the bytes of a `model.safetensors` file (config in its metadata).
pub fn to_bytes(cfg: &ModelConfig, params: &[f32]) -> Result<Vec<u8>> {
    let spec = cfg.spec();
    let lay = spec.layout();
    if params.len() != lay.len {
        return Err(Error::backend(
            "save",
            format!("{} parameters for a layout of {}", params.len(), lay.len),
        ));
    }
    let bytes: Vec<u8> = params.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut views = Vec::new();
    for l in 0..lay.layers() {
        let (fi, fo) = (lay.dims[l], lay.dims[l + 1]);
        let w = lay.w_range(l);
        let b = lay.b_range(l);
        views.push((
            format!("layers.{l}.weight"),
            safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                vec![fo, fi],
                &bytes[4 * w.start..4 * w.end],
            )
            .map_err(|e| Error::backend("save", e.to_string()))?,
        ));
        views.push((
            format!("layers.{l}.bias"),
            safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                vec![fo],
                &bytes[4 * b.start..4 * b.end],
            )
            .map_err(|e| Error::backend("save", e.to_string()))?,
        ));
    }
    let json = serde_json::to_string(cfg).expect("config serialises");
    let meta = Some(HashMap::from([(CONFIG_KEY.to_string(), json)]));
    safetensors::serialize(views, meta).map_err(|e| Error::backend("save", e.to_string()))
}

/// Writes pretty JSON atomically (temp file + rename).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(value).expect("serialisable");
    std::fs::write(&tmp, text + "\n").ctx_io(&tmp)?;
    std::fs::rename(&tmp, path).ctx_io(path)
}

/// Reads a model written by [`save`]: its config (from the safetensors metadata) and the flat
/// parameter vector in fastfc's layout.
pub fn load(dir: &Path) -> Result<(ModelConfig, Vec<f32>)> {
    let path = if dir.is_file() {
        dir.to_path_buf()
    } else {
        dir.join("model.safetensors")
    };
    let buf = std::fs::read(&path).ctx_io(&path)?;
    from_bytes(&buf, &path)
}

/// Reads a model from the bytes of a `model.safetensors` file; `path` names it in errors.
pub fn from_bytes(buf: &[u8], path: &Path) -> Result<(ModelConfig, Vec<f32>)> {
    let bad = |m: String| Error::file(path, m);
    let (_, meta) = safetensors::SafeTensors::read_metadata(buf)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(CONFIG_KEY))
        .ok_or_else(|| {
            bad(format!(
                "no `{CONFIG_KEY}` metadata; was it written by fastfc?"
            ))
        })?;
    let cfg: ModelConfig =
        serde_json::from_str(json).map_err(|e| bad(format!("`{CONFIG_KEY}` metadata: {e}")))?;
    cfg.hp.validate()?;
    let st = safetensors::SafeTensors::deserialize(buf).map_err(|e| bad(e.to_string()))?;
    let lay: Layout = cfg.spec().layout();
    let mut params = vec![0f32; lay.len];
    for l in 0..lay.layers() {
        for (name, range, shape) in [
            (
                format!("layers.{l}.weight"),
                lay.w_range(l),
                vec![lay.dims[l + 1], lay.dims[l]],
            ),
            (
                format!("layers.{l}.bias"),
                lay.b_range(l),
                vec![lay.dims[l + 1]],
            ),
        ] {
            let t = st
                .tensor(&name)
                .map_err(|_| bad(format!("missing tensor `{name}`")))?;
            if t.dtype() != safetensors::Dtype::F32 || t.shape() != shape.as_slice() {
                return Err(bad(format!(
                    "tensor `{name}` is {:?} {:?}; expected F32 {shape:?}",
                    t.dtype(),
                    t.shape()
                )));
            }
            for (dst, c) in params[range].iter_mut().zip(t.data().chunks_exact(4)) {
                *dst = f32::from_le_bytes(c.try_into().unwrap());
            }
        }
    }
    Ok((cfg, params))
}
