//! `.npy` export of the splits for numpy / PyTorch users (`fastfc data export`), through npyz.

use std::path::Path;

use npyz::WriterBuilder;

use super::{Dataset, Split};
use crate::error::{Error, IoContext, Result};

fn write_split(dir: &Path, name: &str, split: &Split) -> Result<()> {
    let xp = dir.join(format!("{name}_x.npy"));
    let yp = dir.join(format!("{name}_y.npy"));
    let npy_err = |p: &Path, e: std::io::Error| Error::io(p, e);
    let f = std::io::BufWriter::new(std::fs::File::create(&xp).ctx_io(&xp)?);
    let mut w = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&[split.len() as u64, split.dim as u64])
        .writer(f)
        .begin_nd()
        .map_err(|e| npy_err(&xp, e))?;
    w.extend(split.x.iter().copied())
        .map_err(|e| npy_err(&xp, e))?;
    w.finish().map_err(|e| npy_err(&xp, e))?;
    let f = std::io::BufWriter::new(std::fs::File::create(&yp).ctx_io(&yp)?);
    let mut w = npyz::WriteOptions::<u8>::new()
        .default_dtype()
        .shape(&[split.len() as u64])
        .writer(f)
        .begin_nd()
        .map_err(|e| npy_err(&yp, e))?;
    w.extend(split.y.iter().copied())
        .map_err(|e| npy_err(&yp, e))?;
    w.finish().map_err(|e| npy_err(&yp, e))?;
    Ok(())
}

/// Writes `{train,val,test}_{x,y}.npy` (x float32 `[N, S·S]`, y uint8 `[N]`) into `dir`.
pub fn export(data: &Dataset, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).ctx_io(dir)?;
    write_split(dir, "train", &data.train)?;
    write_split(dir, "val", &data.val)?;
    write_split(dir, "test", &data.test)?;
    Ok(())
}
