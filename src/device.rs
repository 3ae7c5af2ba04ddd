//! `--device` resolution and `fastfc devices`.

use crate::cli::Device;
use crate::error::{Error, Result};

/// What `--device` resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    Cpu,
}

/// Why this binary cannot use CUDA, if it cannot.
pub fn cuda_unavailable_reason() -> Option<String> {
    if crate::kernels::built() {
        Some(format!(
            "this build carries {} compiled CUDA kernels, but the CUDA backend that runs them is not implemented yet",
            crate::kernels::KERNELS.len()
        ))
    } else {
        Some("this binary was built without CUDA kernels (nvcc not found at build time) and has no CUDA backend yet".to_string())
    }
}

/// Resolves `--device`; `auto` falls back to the CPU with a one-line note on stderr.
pub fn resolve(d: Device) -> Result<Resolved> {
    match (d, cuda_unavailable_reason()) {
        (Device::Cpu, _) => Ok(Resolved::Cpu),
        (Device::Auto, Some(why)) => {
            eprintln!("note: --device auto: using the CPU ({why})");
            Ok(Resolved::Cpu)
        }
        (Device::Cuda, Some(why)) => Err(Error::flag(
            "--device cuda",
            format!("{why}; use --device cpu"),
        )),
        (_, None) => Ok(Resolved::Cpu),
    }
}

/// Sizes rayon's pool (`--threads`); the default is one thread per core.
pub fn init_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        if n == 0 {
            return Err(Error::flag("--threads", "0: expected at least 1"));
        }
        // A second call (tests running commands in-process) keeps the first pool.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    Ok(())
}

pub fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

pub fn list() {
    println!(
        "cpu     {} ({} cores available, {} threads in use)",
        cpu_name(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        rayon::current_num_threads()
    );
    match cuda_unavailable_reason() {
        Some(why) => println!("cuda    unavailable: {why}"),
        None => println!("cuda    available"),
    }
}
