//! IDX reader (the format of MNIST and Fashion-MNIST), raw or gzipped. Raw files are memory-mapped;
//! gzipped ones are inflated with flate2. Every check names the file and what was expected.
//! Tests: `tests/data.rs`.

use std::fs::File;
use std::io::Read;
use std::path::Path;

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
    let payload: usize = dims.iter().product();
    let have = bytes.len() - header;
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
