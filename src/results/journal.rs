//! The study journal: `journal.jsonl`, one JSON record per finished trial run, appended and
//! fsynced (after the run's checkpoint file) so a killed search loses no finished run. A torn last
//! line (a write cut by a kill) is detected and dropped with a warning; blank lines are skipped; a
//! bad line elsewhere is an error naming the line.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::model::TrialState;
use crate::strategy::RunRequest;
use crate::train::{EpochRecord, TrialStatus};

/// One finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    #[serde(flatten)]
    pub request: RunRequest,
    pub start_epoch: usize,
    pub status: TrialStatus,
    pub best_epoch: usize,
    pub epochs_trained: usize,
    #[serde(with = "crate::results::nonfinite")]
    pub val_loss: f64,
    #[serde(with = "crate::results::nonfinite")]
    pub val_accuracy: f64,
    pub seconds: f64,
    /// Study wall time (s) when the run finished, summed over resumed sessions.
    pub study_seconds: f64,
    /// Epochs trained in the study (all runs) when the run finished.
    pub study_epochs: usize,
    pub history: Vec<EpochRecord>,
}

pub struct Journal {
    path: PathBuf,
    file: std::fs::File,
}

impl Journal {
    /// Opens (creating) the journal for appending.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("journal.jsonl");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ctx_io(&path)?;
        Ok(Journal { path, file })
    }

    pub fn append(&mut self, r: &RunRecord) -> Result<()> {
        let mut line = serde_json::to_string(r).expect("record serialises");
        line.push('\n');
        self.file.write_all(line.as_bytes()).ctx_io(&self.path)?;
        self.file.sync_data().ctx_io(&self.path)
    }
}

/// Reads every record; a torn final line is dropped (with a warning) and cut off the file so
/// later appends start on a clean line. A run journaled twice (trained again on `--resume`
/// because its checkpoint was damaged) counts once, by its last record, in its first place.
pub fn read(dir: &Path) -> Result<Vec<RunRecord>> {
    let path = dir.join("journal.jsonl");
    let text = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let mut out = vec![];
    let mut good_len = 0usize;
    let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
    for (i, raw) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        let complete = raw.ends_with(b"\n");
        if raw.iter().all(u8::is_ascii_whitespace) {
            // A blank line (an editor's, or journals joined by hand) holds no run: kept and
            // skipped, but one without its newline is cut off so the next append starts a line.
            if complete {
                good_len += raw.len();
            } else {
                cut(&path, good_len)?;
            }
            continue;
        }
        let parsed = std::str::from_utf8(raw)
            .ok()
            .and_then(|s| serde_json::from_str::<RunRecord>(s.trim_end()).ok());
        match (parsed, complete) {
            (Some(r), true) => {
                out.push(r);
                good_len += raw.len();
            }
            (Some(_), false) | (None, _) if last => {
                eprintln!(
                    "warning: {}: line {} is incomplete (a write cut short by a kill); dropping it, that run will train again",
                    path.display(),
                    i + 1
                );
                cut(&path, good_len)?;
            }
            _ => {
                return Err(Error::file(
                    &path,
                    format!(
                    "line {} is not a run record; the journal is corrupt (fix or remove that line)",
                    i + 1
                ),
                ))
            }
        }
    }
    Ok(dedup_last(out))
}

/// Truncates the journal to its first `len` bytes, durably.
fn cut(path: &Path, len: usize) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .ctx_io(path)?;
    f.set_len(len as u64).ctx_io(path)?;
    f.sync_all().ctx_io(path)
}

fn dedup_last(records: Vec<RunRecord>) -> Vec<RunRecord> {
    let mut at: std::collections::HashMap<u64, usize> = Default::default();
    let mut out: Vec<RunRecord> = Vec::with_capacity(records.len());
    for r in records {
        match at.get(&r.request.run_id) {
            Some(&i) => out[i] = r,
            None => {
                at.insert(r.request.run_id, out.len());
                out.push(r);
            }
        }
    }
    out
}

/// Checkpoint of a run: `checkpoints/run-{id}.bin`: magic, five u64 counts (params, m, v, step,
/// epochs), params, m and v as f32 LE, then a CRC-32 of everything before it, checked on every read.
pub fn checkpoint_path(dir: &Path, run_id: u64) -> PathBuf {
    dir.join("checkpoints").join(format!("run-{run_id:05}.bin"))
}

const CKPT_MAGIC: &[u8; 8] = b"FFCCKPT2";
const CKPT_HEADER: usize = 48;

pub fn write_checkpoint(dir: &Path, run_id: u64, s: &TrialState) -> Result<()> {
    let path = checkpoint_path(dir, run_id);
    let parent = path.parent().unwrap();
    std::fs::create_dir_all(parent).ctx_io(parent)?;
    let buf = encode_checkpoint(s);
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).ctx_io(&tmp)?;
    f.write_all(&buf).ctx_io(&tmp)?;
    f.sync_all().ctx_io(&tmp)?;
    std::fs::rename(&tmp, &path).ctx_io(&path)
}

/// A checkpoint's bytes: magic, sizes and counters, the f32s, and a CRC-32 of all of it.
pub fn encode_checkpoint(s: &TrialState) -> Vec<u8> {
    let mut buf = CKPT_MAGIC.to_vec();
    for v in [
        s.params.len() as u64,
        s.m.len() as u64,
        s.v.len() as u64,
        s.step,
        s.epochs as u64,
    ] {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    for x in s.params.iter().chain(&s.m).chain(&s.v) {
        buf.extend_from_slice(&x.to_le_bytes());
    }
    let crc = crc32fast::hash(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}

/// Reads run `run_id`'s checkpoint; a missing, truncated or damaged file (checksum mismatch) is an
/// error naming the file and the run, never used.
pub fn read_checkpoint(dir: &Path, run_id: u64) -> Result<TrialState> {
    let path = checkpoint_path(dir, run_id);
    let b = std::fs::read(&path).ctx_io(&path)?;
    parse_checkpoint(&b).map_err(|why| {
        Error::file(
            &path,
            format!("the checkpoint of run {run_id} is damaged ({why}); it cannot be used"),
        )
    })
}

/// A checkpoint from its bytes ([`encode_checkpoint`]); why not, if they are not one.
pub fn parse_checkpoint(b: &[u8]) -> std::result::Result<TrialState, String> {
    if b.len() < 8 || &b[..8] != CKPT_MAGIC {
        let old = b.len() >= 8 && &b[..8] == b"FFCCKPT1";
        return Err(if old {
            "written by an older fastfc without a checksum".into()
        } else {
            "not a fastfc checkpoint".into()
        });
    }
    if b.len() < CKPT_HEADER + 4 {
        return Err(format!("{} bytes, shorter than a header", b.len()));
    }
    let u = |i: usize| u64::from_le_bytes(b[8 + 8 * i..16 + 8 * i].try_into().unwrap());
    let body = b.len() - 4;
    let (want, got) = (
        u32::from_le_bytes(b[body..].try_into().unwrap()),
        crc32fast::hash(&b[..body]),
    );
    if want != got {
        return Err(format!("checksum {got:08x}, expected {want:08x}"));
    }
    let (np, nm, nv) = (u(0) as usize, u(1) as usize, u(2) as usize);
    let need = np
        .checked_add(nm)
        .and_then(|n| n.checked_add(nv))
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| n.checked_add(CKPT_HEADER + 4));
    if need != Some(b.len()) {
        return Err(format!("{} bytes, not what its header says", b.len()));
    }
    let floats = |from: usize, n: usize| -> Vec<f32> {
        b[CKPT_HEADER + 4 * from..CKPT_HEADER + 4 * (from + n)]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    Ok(TrialState {
        params: floats(0, np),
        m: floats(np, nm),
        v: floats(np + nm, nv),
        step: u(3),
        epochs: u(4) as usize,
    })
}
