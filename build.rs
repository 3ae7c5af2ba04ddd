//! Compiles every `kernels/*.cu` with nvcc into one fatbin (SASS for sm_75, sm_80, sm_86, sm_89,
//! sm_90 and compute_75 PTX) embedded in the binary, keeps ptxas' register/spill report, and
//! writes `OUT_DIR/kernels.rs` (the image, the kernel names, the report). nvcc is looked up in
//! `$NVCC`, `$CUDA_HOME`/`$CUDA_PATH`, `PATH`, then `.venv-cuda` (ENVIRONMENT.md's pip recipe).
//! Without nvcc the crate builds CPU-only with a warning; a kernel that fails to compile fails
//! the build — never a silent CPU-only fallback.

use std::path::{Path, PathBuf};
use std::process::Command;

const ARCHS: [&str; 5] = ["75", "80", "86", "89", "90"];

fn find_nvcc(root: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NVCC") {
        return Some(PathBuf::from(p));
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(d) = std::env::var_os(var) {
            let p = PathBuf::from(d).join("bin/nvcc");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join("nvcc");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let lib = root.join(".venv-cuda/lib");
    for entry in std::fs::read_dir(&lib).into_iter().flatten().flatten() {
        let p = entry.path().join("site-packages/nvidia/cu13/bin/nvcc");
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let kdir = root.join("kernels");
    println!("cargo:rerun-if-changed=kernels");
    for v in ["NVCC", "CUDA_HOME", "CUDA_PATH", "PATH"] {
        println!("cargo:rerun-if-env-changed={v}");
    }
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&kdir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("cu" | "cuh")))
        .collect();
    sources.sort();
    for s in &sources {
        println!("cargo:rerun-if-changed={}", s.display());
    }
    let cu: Vec<&PathBuf> = sources
        .iter()
        .filter(|p| p.extension().unwrap() == "cu")
        .collect();
    // Kernel names, from `extern "C" __global__ void NAME(`.
    let mut names = vec![];
    for f in &cu {
        let text = std::fs::read_to_string(f).unwrap();
        for part in text.split("extern \"C\" __global__ void ").skip(1) {
            names.push(part.split('(').next().unwrap().trim().to_string());
        }
    }
    let rs = out.join("kernels.rs");
    let nvcc = find_nvcc(&root);
    let Some(nvcc) = nvcc.filter(|_| !cu.is_empty()) else {
        // After installing nvcc, `touch kernels` (or `cargo clean`) makes cargo look again.
        println!("cargo:warning=nvcc not found: building fastfc without CUDA kernels (CPU only); see ENVIRONMENT.md");
        std::fs::write(
            &rs,
            "/// No nvcc at build time: no kernels.\npub static FATBIN: &[u8] = &[];\npub const KERNELS: &[&str] = &[];\npub const PTXAS_REPORT: &str = \"\";\n",
        )
        .unwrap();
        return;
    };
    println!("cargo:rerun-if-changed={}", nvcc.display());
    // One translation unit including every kernel file: one fatbin, one module to load.
    let unit = out.join("all_kernels.cu");
    let body: String = cu
        .iter()
        .map(|f| format!("#include \"{}\"\n", f.display()))
        .collect();
    std::fs::write(&unit, body).unwrap();
    let fatbin = out.join("kernels.fatbin");
    let mut cmd = Command::new(&nvcc);
    cmd.arg("-fatbin")
        .arg("-O3")
        .arg("-std=c++17")
        .arg("-Xptxas")
        .arg("-v")
        .arg("-I")
        .arg(&kdir);
    for a in ARCHS {
        cmd.arg("-gencode")
            .arg(format!("arch=compute_{a},code=sm_{a}"));
    }
    cmd.arg("-gencode").arg("arch=compute_75,code=compute_75");
    cmd.arg("-o").arg(&fatbin).arg(&unit);
    let res = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", nvcc.display()));
    let report = String::from_utf8_lossy(&res.stderr).into_owned();
    if !res.status.success() {
        panic!(
            "nvcc failed to compile kernels/*.cu ({}):\n{report}",
            nvcc.display()
        );
    }
    std::fs::write(out.join("ptxas.txt"), &report).unwrap();
    // ptxas -v: "Compiling entry function 'NAME' for 'sm_XX'" then "... N bytes spill stores ...".
    let mut current = String::new();
    for line in report.lines() {
        if let Some(i) = line.find("entry function '") {
            current = line[i + 16..].split('\'').next().unwrap_or("").to_string();
        }
        if let Some(i) = line.find(" bytes spill stores") {
            let n: u64 = line[..i]
                .rsplit(' ')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if n > 0 {
                println!(
                    "cargo:warning=kernel {current} spills {n} bytes (see {}/ptxas.txt)",
                    out.display()
                );
            }
        }
    }
    std::fs::write(
        &rs,
        format!(
            "/// Fatbin of kernels/*.cu (sm_75..sm_90 SASS + compute_75 PTX).\npub static FATBIN: &[u8] = include_bytes!({:?});\n/// Every kernel in the fatbin.\npub const KERNELS: &[&str] = &{:?};\n/// ptxas -v output (registers, spills) of the build.\npub const PTXAS_REPORT: &str = include_str!({:?});\n",
            fatbin.display().to_string(),
            names,
            out.join("ptxas.txt").display().to_string()
        ),
    )
    .unwrap();
}
