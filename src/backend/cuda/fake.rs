//! fakecuda from the Rust side: where the library is, and its own report (counters, the
//! violations it caught, planted faults). The library itself is `fake/fakecuda.cpp`, built by
//! build.rs with the `emu` feature; it is loaded like any driver, by absolute path
//! ([`load`], or `FASTFC_CUDA_DRIVER=fake`), never through `LD_LIBRARY_PATH`, so a process on a
//! machine with a real GPU cannot pick it up by accident.

use std::ffi::{c_char, c_int, CString};

use crate::error::{Error, Result};

/// The absolute path of the fakecuda library this build made, if it made one.
pub fn library_path() -> Option<&'static str> {
    #[cfg(feature = "emu")]
    {
        Some(env!("FASTFC_FAKECUDA"))
    }
    #[cfg(not(feature = "emu"))]
    {
        None
    }
}

/// Loads fakecuda as this process's CUDA driver: from now on cudarc talks to it.
pub fn load() -> Result<()> {
    let path = library_path()
        .ok_or_else(|| Error::backend("fakecuda", "this build has no fakecuda (feature `emu`)"))?;
    super::driver::load_driver(std::path::Path::new(path))
        .map_err(|e| Error::backend("fakecuda", e))?;
    if !super::driver::is_fake() {
        return Err(Error::backend(
            "fakecuda",
            format!("{path} was loaded but is not fakecuda (another driver came first)"),
        ));
    }
    Ok(())
}

fn lib() -> Result<&'static libloading::Library> {
    super::driver::explicit_driver()
        .filter(|_| super::driver::is_fake())
        .ok_or_else(|| Error::backend("fakecuda", "fakecuda is not loaded in this process"))
}

fn text(f: &str) -> Result<String> {
    let l = lib()?;
    // SAFETY: fakecuda's exported `size_t f(char*, size_t)` entry points.
    let get = unsafe { l.get::<unsafe extern "C" fn(*mut c_char, usize) -> usize>(f.as_bytes()) }
        .map_err(|e| Error::backend("fakecuda", format!("{f}: {e}")))?;
    // SAFETY: a null buffer asks for the length; the second call fills len + 1 bytes.
    let n = unsafe { get(std::ptr::null_mut(), 0) };
    let mut buf = vec![0u8; n + 1];
    unsafe { get(buf.as_mut_ptr() as *mut c_char, buf.len()) };
    buf.truncate(n);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// fakecuda's counters: driver calls, kernels run, graph replays, host synchronisations,
/// allocations, planted faults fired, violations reported; and what the host asked of the
/// device: launch calls (kernels outside a graph, and graph launches), the kernels those graph
/// launches held, bytes copied to and from the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub calls: u64,
    pub launches: u64,
    pub replays: u64,
    pub syncs: u64,
    pub allocations: u64,
    /// Faults planted by `FAKECUDA_FAIL` or [`set_faults`] that have fired.
    pub faults: u64,
    pub problems: u64,
    pub host_launches: u64,
    pub graph_nodes: u64,
    pub htod_bytes: u64,
    pub dtoh_bytes: u64,
}

impl Stats {
    /// The counts from `earlier` to `self`.
    pub fn since(&self, earlier: &Stats) -> Stats {
        Stats {
            calls: self.calls - earlier.calls,
            launches: self.launches - earlier.launches,
            replays: self.replays - earlier.replays,
            syncs: self.syncs - earlier.syncs,
            allocations: self.allocations - earlier.allocations,
            faults: self.faults - earlier.faults,
            problems: self.problems - earlier.problems,
            host_launches: self.host_launches - earlier.host_launches,
            graph_nodes: self.graph_nodes - earlier.graph_nodes,
            htod_bytes: self.htod_bytes - earlier.htod_bytes,
            dtoh_bytes: self.dtoh_bytes - earlier.dtoh_bytes,
        }
    }
}

/// The counters so far (process-wide).
pub fn stats() -> Result<Stats> {
    let t = text("fakecuda_stats")?;
    let mut s = Stats::default();
    for kv in t.split_whitespace() {
        let (k, v) = kv.split_once('=').unwrap_or((kv, "0"));
        let v: u64 = v.parse().unwrap_or(0);
        match k {
            "calls" => s.calls = v,
            "launches" => s.launches = v,
            "replays" => s.replays = v,
            "syncs" => s.syncs = v,
            "allocations" => s.allocations = v,
            "faults" => s.faults = v,
            "problems" => s.problems = v,
            "host_launches" => s.host_launches = v,
            "graph_nodes" => s.graph_nodes = v,
            "htod_bytes" => s.htod_bytes = v,
            "dtoh_bytes" => s.dtoh_bytes = v,
            _ => {}
        }
    }
    Ok(s)
}

/// Every violation fakecuda reported so far (hazards, leaks, double frees, misuse), one a line.
pub fn problems() -> Result<Vec<String>> {
    Ok(text("fakecuda_problems")?
        .lines()
        .map(String::from)
        .collect())
}

/// Plants faults on one device, e.g. `"cuMemAlloc_v2:3,cuLaunchKernel:10"` (the 3rd allocation
/// fails as out of memory, the 10th launch fails); `""` clears them. Counts restart now.
pub fn set_faults(device: usize, spec: &str) -> Result<()> {
    let l = lib()?;
    // SAFETY: fakecuda's exported `int fakecuda_set_faults(int, const char*)`.
    let f = unsafe {
        l.get::<unsafe extern "C" fn(c_int, *const c_char) -> c_int>(b"fakecuda_set_faults")
    }
    .map_err(|e| Error::backend("fakecuda", e.to_string()))?;
    let spec = CString::new(spec).map_err(|_| Error::backend("fakecuda", "fault spec with NUL"))?;
    // SAFETY: valid C string for the duration of the call.
    match unsafe { f(device as c_int, spec.as_ptr()) } {
        0 => Ok(()),
        rc => Err(Error::backend(
            "fakecuda",
            format!(
                "fakecuda_set_faults(device {device}): error {rc} (initialised? device exists?)"
            ),
        )),
    }
}

/// Sets one device's memory (what `cuMemGetInfo` reports and allocations are held to); 0
/// restores the default (`FAKECUDA_MEM_MIB`, else 4 GiB).
pub fn set_memory(device: usize, bytes: u64) -> Result<()> {
    let l = lib()?;
    // SAFETY: fakecuda's exported `int fakecuda_set_memory(int, unsigned long long)`.
    let f = unsafe { l.get::<unsafe extern "C" fn(c_int, u64) -> c_int>(b"fakecuda_set_memory") }
        .map_err(|e| Error::backend("fakecuda", e.to_string()))?;
    // SAFETY: plain values.
    match unsafe { f(device as c_int, bytes) } {
        0 => Ok(()),
        rc => Err(Error::backend(
            "fakecuda",
            format!("fakecuda_set_memory(device {device}): error {rc}"),
        )),
    }
}
