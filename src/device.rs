//! `--device` resolution and `fastfc devices`.

use std::sync::Arc;

use crate::backend::any::AnyBackend;
use crate::backend::cpu::CpuBackend;
use crate::backend::cuda::driver::{probe, CudaGpu};
use crate::backend::cuda::engine::CudaBackend;
use crate::backend::cuda::AnyGpu;
use crate::backend::spread::Spread;
use crate::cli::Device;
use crate::data::Dataset;
use crate::error::{Error, Result};

/// The backend `--device` asks for. `auto` takes CUDA device 0 when it is usable, else the CPU
/// with a one-line note on stderr saying why.
pub fn backend(d: &Device, data: Arc<Dataset>) -> Result<AnyBackend> {
    match d {
        Device::Cpu => Ok(AnyBackend::Cpu(CpuBackend::new(data))),
        Device::Auto => match probe()
            .and_then(|_| CudaGpu::open(0).map_err(|e| e.to_string()))
            .and_then(|g| {
                // `auto` means the fastest real engine: fakecuda is never it.
                if g.info.fake {
                    Err(format!("{} is fakecuda, not a GPU", g.info.name))
                } else {
                    Ok(g)
                }
            }) {
            Ok(g) => Ok(AnyBackend::Cuda(Box::new(CudaBackend::new(
                data,
                AnyGpu::Cuda(g),
            )?))),
            Err(why) => {
                // Said once per process (a Python session fits many models).
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| eprintln!("note: --device auto: using the CPU ({why})"));
                Ok(AnyBackend::Cpu(CpuBackend::new(data)))
            }
        },
        Device::Cuda(n) => Ok(AnyBackend::Cuda(Box::new(CudaBackend::new(
            data,
            AnyGpu::Cuda(open(*n, &format!("cuda:{n}"))?),
        )?))),
        Device::Cudas(list) => {
            let flag = match list {
                None => "cuda:all".to_string(),
                Some(ns) => format!(
                    "cuda:{}",
                    ns.iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            };
            let ordinals = match list {
                Some(ns) => ns.clone(),
                None => {
                    let count = probe().map_err(|why| {
                        Error::flag(
                            format!("--device {flag}"),
                            format!("{why}; use --device cpu"),
                        )
                    })?;
                    (0..count).collect()
                }
            };
            let mut devices = vec![];
            for n in ordinals {
                let g = open(n, &flag)?;
                devices.push((
                    format!("cuda:{n}"),
                    CudaBackend::new(data.clone(), AnyGpu::Cuda(g))?,
                ));
            }
            Ok(match devices.len() {
                1 => AnyBackend::Cuda(Box::new(devices.pop().expect("one device").1)),
                _ => AnyBackend::Spread(Box::new(Spread::new(devices)?)),
            })
        }
        Device::Emu => emulated(data),
    }
}

/// Opens CUDA device `n` for `--device {flag}`; an error names the flag.
fn open(n: usize, flag: &str) -> Result<CudaGpu> {
    CudaGpu::open(n).map_err(|e| match e {
        Error::Flag { .. } => e,
        other => Error::flag(
            format!("--device {flag}"),
            format!("{other}; use --device cpu"),
        ),
    })
}

#[cfg(feature = "emu")]
fn emulated(data: Arc<Dataset>) -> Result<AnyBackend> {
    use crate::backend::cuda::emu::{EmuGpu, FiberOrder};
    eprintln!(
        "note: --device emu runs the CUDA engine on the emulated executor: correct, but slow"
    );
    Ok(AnyBackend::Cuda(Box::new(CudaBackend::new(
        data,
        AnyGpu::Emu(EmuGpu::new(FiberOrder::Forward)),
    )?)))
}

#[cfg(not(feature = "emu"))]
fn emulated(_: Arc<Dataset>) -> Result<AnyBackend> {
    Err(Error::flag(
        "--device emu",
        "this binary was built without the `emu` feature",
    ))
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

/// `fastfc devices`: the CPU, then every CUDA device (name, capability, memory, driver) or the
/// reason there is none.
pub fn list() {
    print!("{}", describe());
}

/// What `fastfc devices` prints: the CPU, each CUDA device (or why there is none), the kernels.
pub fn describe() -> String {
    let mut out = format!(
        "cpu     {} ({} cores available, {} threads in use)\n",
        cpu_name(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        rayon::current_num_threads()
    );
    match probe() {
        Err(why) => out += &format!("cuda    unavailable: {why}\n"),
        Ok(n) => {
            for i in 0..n {
                match CudaGpu::open(i) {
                    Ok(g) => out += &format!("cuda    {}\n", g.info),
                    Err(e) => out += &format!("cuda:{i}  unusable: {e}\n"),
                }
            }
        }
    }
    out += &match crate::backend::cuda::engine::Engine::from_env() {
        Ok(crate::backend::cuda::engine::Engine::Auto) => "engine  auto: each trial on the fused kernel where it fits (up to 8 hidden layers, activations in shared memory), the per-op path otherwise; FASTFC_CUDA_ENGINE=per-op for per-op only\n".to_string(),
        Ok(crate::backend::cuda::engine::Engine::PerOp) => "engine  per-op (FASTFC_CUDA_ENGINE=per-op): every trial on the per-op path\n".to_string(),
        Err(e) => format!("engine  {e}\n"),
    };
    out += &format!(
        "kernels {} compiled for sm_75, sm_80, sm_86, sm_89, sm_90 (+ compute_75 PTX){}\n",
        crate::kernels::KERNELS.len(),
        if cfg!(feature = "emu") {
            "; emulated executor built in (--device emu)"
        } else {
            ""
        }
    );
    out
}
