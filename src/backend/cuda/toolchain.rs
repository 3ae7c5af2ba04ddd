//! Where the CUDA 12 toolchain that compiles `kernels/*.cu` is: NVRTC (`libnvrtc.so.12`, CUDA
//! source → PTX) and `ptxas` (PTX → one cubin per GPU architecture). Shared by `build.rs` (which
//! `include!`s this file) and the library (so the rules are unit-tested).
//!
//! Looked up, first found wins (none at all with `FASTFC_CUDA_TOOLCHAIN=none`):
//! `$FASTFC_NVRTC` + `$FASTFC_PTXAS` (explicit files),
//! `$CUDA_HOME`/`$CUDA_PATH` (a system toolkit), then `.venv-cuda` in the repository root, where
//! `scripts/cuda-toolchain.sh` installs NVIDIA's PyPI wheels. Only CUDA 12.x counts: code built by
//! CUDA 12 loads on drivers from 525 up, CUDA 13's needs 580+ (T4 machines commonly run 535-570).

use std::path::{Path, PathBuf};

/// The CUDA major version the shipped kernels are built with (and the driver floor follows).
pub const CUDA_MAJOR: u32 = 12;

/// A toolchain: the NVRTC library and the ptxas next to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    pub nvrtc: PathBuf,
    pub ptxas: PathBuf,
    /// Where it was found, for messages.
    pub from: String,
}

/// The candidates in lookup order, as (NVRTC library, ptxas, where from). `env` reads a variable.
pub fn candidates(root: &Path, env: &dyn Fn(&str) -> Option<String>) -> Vec<Toolchain> {
    let mut out = vec![];
    // As on a machine without one (CI builds this way once, to prove the CPU-only binary and
    // fakecuda's manifest path).
    if env("FASTFC_CUDA_TOOLCHAIN").as_deref() == Some("none") {
        return out;
    }
    if let (Some(n), Some(p)) = (env("FASTFC_NVRTC"), env("FASTFC_PTXAS")) {
        out.push(Toolchain {
            nvrtc: n.into(),
            ptxas: p.into(),
            from: "$FASTFC_NVRTC and $FASTFC_PTXAS".into(),
        });
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(d) = env(var) {
            let d = PathBuf::from(d);
            for lib in ["lib64", "lib", "targets/x86_64-linux/lib"] {
                out.push(Toolchain {
                    nvrtc: d.join(lib).join("libnvrtc.so.12"),
                    ptxas: d.join("bin/ptxas"),
                    from: format!("${var}"),
                });
            }
        }
    }
    let venv_lib = root.join(".venv-cuda/lib");
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(&venv_lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    pythons.sort();
    for py in pythons {
        let nv = py.join("site-packages/nvidia");
        out.push(Toolchain {
            nvrtc: nv.join("cuda_nvrtc/lib/libnvrtc.so.12"),
            ptxas: nv.join("cuda_nvcc/bin/ptxas"),
            from: ".venv-cuda (scripts/cuda-toolchain.sh)".into(),
        });
    }
    out
}

/// The first candidate whose two files exist; or why the build has no kernels. With `require`
/// (`FASTFC_REQUIRE_KERNELS=1`) a missing toolchain is an error for the build to fail on,
/// never a CPU-only binary found out on the GPU machine.
pub fn find(
    root: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    require: bool,
) -> Result<Option<Toolchain>, String> {
    let all = candidates(root, env);
    if let Some(t) = all.iter().find(|t| t.nvrtc.is_file() && t.ptxas.is_file()) {
        return Ok(Some(t.clone()));
    }
    if require {
        let looked: Vec<String> = all
            .iter()
            .map(|t| format!("{} + {}", t.nvrtc.display(), t.ptxas.display()))
            .collect();
        return Err(format!(
            "FASTFC_REQUIRE_KERNELS is set but no CUDA {CUDA_MAJOR} toolchain (libnvrtc.so.{CUDA_MAJOR} and ptxas) was found{}; run scripts/cuda-toolchain.sh",
            if looked.is_empty() {
                String::new()
            } else {
                format!(" (looked at: {})", looked.join("; "))
            }
        ));
    }
    Ok(None)
}

/// The PTX ISA version a PTX text declares (`.version 8.2` → (8, 2)).
pub fn ptx_isa(ptx: &str) -> Option<(u32, u32)> {
    let line = ptx
        .lines()
        .find(|l| l.trim_start().starts_with(".version"))?;
    let v = line.split_whitespace().nth(1)?;
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}
