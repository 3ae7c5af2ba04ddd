//! The 8×8 splits shipped inside the binary, so `fastfc search` runs where no dataset is installed.
//! Made by fastfc's own pipeline (`fastfc data pack-embedded`) from the original Fashion-MNIST
//! files (© Zalando SE, MIT licence): pixels as IEEE f16 (|error| ≤ 2⁻¹² against the f32 pipeline),
//! gzipped. Layout after inflating: "FFCEMB01", u32 LE s, n_train, n_test, then f16 LE train_x,
//! test_x, then u8 train_y, test_y.

use std::io::{Read, Write};
use std::path::Path;

use super::{Dataset, FullData, Origin};
use crate::error::{Error, IoContext, Result};

pub const IMAGE_SIZE: usize = 8;
const MAGIC: &[u8; 8] = b"FFCEMB01";
static PAYLOAD: &[u8] = include_bytes!("../../assets/fashion-mnist-8x8.f16.gz");

pub fn decode(gz: &[u8]) -> Result<FullData> {
    let bad = |m: &str| Error::Data(format!("embedded dataset: {m} (rebuild fastfc)"));
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut raw)
        .map_err(|e| bad(&format!("cannot inflate: {e}")))?;
    if raw.len() < 20 || &raw[..8] != MAGIC {
        return Err(bad("missing header"));
    }
    let u = |at: usize| u32::from_le_bytes(raw[at..at + 4].try_into().unwrap()) as usize;
    let (s, n_train, n_test) = (u(8), u(12), u(16));
    let d = s * s;
    if raw.len() != 20 + 2 * d * (n_train + n_test) + n_train + n_test {
        return Err(bad("length does not match its header"));
    }
    let halves = |from: usize, n: usize| -> Vec<f32> {
        raw[from..from + 2 * n]
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect()
    };
    let mut at = 20;
    let train_x = halves(at, n_train * d);
    at += 2 * n_train * d;
    let test_x = halves(at, n_test * d);
    at += 2 * n_test * d;
    let train_y = raw[at..at + n_train].to_vec();
    let test_y = raw[at + n_train..].to_vec();
    Ok(FullData {
        s,
        train_x,
        train_y,
        test_x,
        test_y,
    })
}

/// The embedded splits as Fashion-MNIST's default options load them.
pub fn load() -> Result<Dataset> {
    load_with(&super::DataOptions::default())
}

/// The embedded splits, with `opts`' validation fraction and scaling.
pub fn load_with(opts: &super::DataOptions) -> Result<Dataset> {
    let full = decode(PAYLOAD)?;
    let here = Path::new("<embedded Fashion-MNIST>");
    let names = super::CLASS_NAMES.iter().map(|c| c.to_string()).collect();
    super::idx::from_full(full, Origin::Embedded, opts, here, here, Some(names))
}

/// Writes the embedded payload for `data` (used once to make `assets/`).
pub fn pack(data: &FullData, out: &Path) -> Result<()> {
    let mut raw = Vec::new();
    raw.extend_from_slice(MAGIC);
    for v in [data.s, data.train_y.len(), data.test_y.len()] {
        raw.extend_from_slice(&(v as u32).to_le_bytes());
    }
    for v in data.train_x.iter().chain(&data.test_x) {
        raw.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes());
    }
    raw.extend_from_slice(&data.train_y);
    raw.extend_from_slice(&data.test_y);
    let file = std::fs::File::create(out).ctx_io(out)?;
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    gz.write_all(&raw).ctx_io(out)?;
    gz.finish().ctx_io(out)?;
    Ok(())
}
