//! Preprocessing cache: the resized splits of one set of IDX files at one image size, in a flat
//! little-endian file that is memory-mapped on the next run (milliseconds instead of a resize).
//! Location: `$FASTFC_CACHE`, else `$XDG_CACHE_HOME/fastfc`, else `~/.cache/fastfc`.
//! A cache that cannot be written is skipped silently. Every read is verified: the header carries
//! a CRC-32 of everything after it, so a file damaged in place (a bad sector, a stray writer) is
//! rebuilt with a one-line warning instead of being trained on.

use std::io::Write;
use std::path::PathBuf;

use super::{FullData, IdxFiles};

const MAGIC: &[u8; 8] = b"FFCCACHE";
const VERSION: u32 = 2;
/// Byte offset of the payload's CRC-32 in the header.
const CRC_AT: usize = 24;
const HEADER: usize = 64;

pub fn dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("FASTFC_CACHE") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("fastfc"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("fastfc"))
}

/// Cache file name: FNV-1a over (format version, size, each file's path, length and mtime).
pub fn key(files: &IdxFiles, s: usize) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&VERSION.to_le_bytes());
    eat(&(s as u64).to_le_bytes());
    for p in [
        &files.train_images,
        &files.train_labels,
        &files.test_images,
        &files.test_labels,
    ] {
        let p = p.canonicalize().unwrap_or_else(|_| p.clone());
        eat(p.to_string_lossy().as_bytes());
        if let Ok(m) = std::fs::metadata(&p) {
            eat(&m.len().to_le_bytes());
            if let Ok(t) = m.modified() {
                if let Ok(d) = t.duration_since(std::time::UNIX_EPOCH) {
                    eat(&d.as_nanos().to_le_bytes());
                }
            }
        }
    }
    format!("idx-{s}x{s}-{h:016x}.bin")
}

fn le_u32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// The cached data for `key`, if a complete, well-formed file is there whose checksum holds.
/// A file that is there but does not check out is reported in one line and ignored (the caller
/// rebuilds it).
pub fn read(key: &str) -> Option<(PathBuf, FullData)> {
    let path = dir()?.join(key);
    let file = std::fs::File::open(&path).ok()?;
    // SAFETY: read-only map of a file fastfc writes atomically (temp file + rename) and never
    // modifies in place; whatever else changed it is caught by the checksum below.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    match parse(&map) {
        Ok(full) => Some((path, full)),
        Err(why) => {
            eprintln!(
                "warning: preprocessing cache {} is damaged ({why}); rebuilding it",
                path.display()
            );
            None
        }
    }
}

/// Checks and decodes a cache file's bytes; the error says what did not check out.
fn parse(map: &[u8]) -> std::result::Result<FullData, String> {
    if map.len() < HEADER || &map[..8] != MAGIC {
        return Err("not a fastfc cache file".into());
    }
    if le_u32(map, 8) != VERSION as usize {
        return Err(format!(
            "format version {}, expected {VERSION}",
            le_u32(map, 8)
        ));
    }
    let (s, n_train, n_test) = (le_u32(map, 12), le_u32(map, 16), le_u32(map, 20));
    let d = s * s;
    let need = HEADER + 4 * d * (n_train + n_test) + n_train + n_test;
    if map.len() != need {
        return Err(format!("{} bytes, expected {need}", map.len()));
    }
    let (want, got) = (le_u32(map, CRC_AT) as u32, crc32fast::hash(&map[HEADER..]));
    if want != got {
        return Err(format!("checksum {got:08x}, expected {want:08x}"));
    }
    let floats = |from: usize, n: usize| -> Vec<f32> {
        map[from..from + 4 * n]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let mut at = HEADER;
    let train_x = floats(at, n_train * d);
    at += 4 * n_train * d;
    let test_x = floats(at, n_test * d);
    at += 4 * n_test * d;
    let train_y = map[at..at + n_train].to_vec();
    at += n_train;
    let test_y = map[at..at + n_test].to_vec();
    Ok(FullData {
        s,
        train_x,
        train_y,
        test_x,
        test_y,
    })
}

/// Writes the cache atomically; failures only cost the next run a resize.
pub fn write(key: &str, data: &FullData) {
    let Some(dir) = dir() else { return };
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let path = dir.join(key);
    let tmp = dir.join(format!("{key}.{}.tmp", std::process::id()));
    let mut buf = Vec::with_capacity(
        HEADER
            + 4 * (data.train_x.len() + data.test_x.len())
            + data.train_y.len()
            + data.test_y.len(),
    );
    buf.extend_from_slice(MAGIC);
    for v in [
        VERSION as usize,
        data.s,
        data.train_y.len(),
        data.test_y.len(),
    ] {
        buf.extend_from_slice(&(v as u32).to_le_bytes());
    }
    buf.resize(HEADER, 0);
    for v in data.train_x.iter().chain(&data.test_x) {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    buf.extend_from_slice(&data.train_y);
    buf.extend_from_slice(&data.test_y);
    let crc = crc32fast::hash(&buf[HEADER..]);
    buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    let ok = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&buf).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, &path));
    if ok.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}
