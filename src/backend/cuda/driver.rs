//! The real GPU: [`CudaGpu`] runs the embedded kernels through cudarc's driver API. libcuda is
//! loaded at run time (cudarc `dynamic-loading`), so the binary runs on machines without CUDA;
//! [`probe`] checks for the driver library before the first cudarc call, because cudarc panics
//! when it is missing.
//!
//! `FASTFC_CUDA_DRIVER` names the driver library explicitly: an absolute path, or `fake` for
//! fakecuda, the strict stand-in built with this crate (src/backend/cuda/fake/), which runs the
//! kernels in the host emulator and is never reported as a GPU. The library is loaded by that
//! path before cudarc's first call; glibc then hands cudarc the loaded library by its soname.
//!
//! Memory is raw device allocations (`cuMemAlloc`) freed on drop; copies and launches go on this
//! handle's stream, and copies synchronise it, so a host read always sees finished work.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{
    result, sys, CudaContext, CudaFunction, CudaModule, CudaStream, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::Ptx;

use super::{Arg, Gpu, Launch, RawBuf};
use crate::error::{Error, Result};

fn err(e: impl std::fmt::Display) -> Error {
    Error::backend("cuda", e.to_string())
}

/// A driver error, with out-of-memory as the variant the trainer splits cohorts on.
fn driver_err(what: impl std::fmt::Display, e: result::DriverError) -> Error {
    let msg = format!("{what}: {e}");
    if e.0 == sys::cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY {
        Error::OutOfMemory {
            backend: "cuda".into(),
            msg,
        }
    } else {
        Error::backend("cuda", msg)
    }
}

/// The driver library loaded by path (kept loaded for the life of the process), if any.
static EXPLICIT: OnceLock<std::result::Result<libloading::Library, String>> = OnceLock::new();

/// Loads the driver library at `path` (absolute) before cudarc looks for one, so cudarc uses it.
/// Once per process; a later call with another path is an error (cudarc is bound to the first).
pub fn load_driver(path: &std::path::Path) -> std::result::Result<(), String> {
    if !path.is_absolute() {
        return Err(format!(
            "{}: the driver library must be named by an absolute path",
            path.display()
        ));
    }
    static PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
    let first = PATH.get_or_init(|| path.to_path_buf());
    if first != path {
        return Err(format!(
            "{}: the CUDA driver of this process is already {}",
            path.display(),
            first.display()
        ));
    }
    let got = EXPLICIT.get_or_init(|| {
        // SAFETY: loading a CUDA driver library runs its initialisers only.
        unsafe { libloading::Library::new(path) }
            .map_err(|e| format!("loading the CUDA driver {}: {e}", path.display()))
    });
    match got {
        Ok(_) => Ok(()),
        Err(e) => Err(e.clone()),
    }
}

/// The library `FASTFC_CUDA_DRIVER` names, loaded (`fake`: fakecuda).
fn load_from_env() -> std::result::Result<(), String> {
    let Some(v) = std::env::var_os("FASTFC_CUDA_DRIVER").filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    if v == "fake" {
        let path = super::fake::library_path().ok_or(
            "FASTFC_CUDA_DRIVER=fake: this build has no fakecuda (it comes with the `emu` feature)",
        )?;
        return load_driver(std::path::Path::new(path));
    }
    load_driver(std::path::Path::new(&v)).map_err(|e| format!("FASTFC_CUDA_DRIVER: {e}"))
}

/// The explicitly loaded driver library, if one was loaded.
pub(crate) fn explicit_driver() -> Option<&'static libloading::Library> {
    EXPLICIT.get().and_then(|r| r.as_ref().ok())
}

/// True when the CUDA driver in use is fakecuda (the stand-in that is not a GPU).
pub fn is_fake() -> bool {
    // SAFETY: looks a symbol up; never called through this handle here.
    explicit_driver()
        .is_some_and(|l| unsafe { l.get::<unsafe extern "C" fn()>(b"fakecuda_version") }.is_ok())
}

/// Why no CUDA device can be used, or Ok with the device count.
pub fn probe() -> std::result::Result<usize, String> {
    load_from_env()?;
    if !crate::kernels::built() && !is_fake() {
        return Err(
            "this binary was built without CUDA kernels (no CUDA 12 toolchain at build time; see README, section \"Building the CUDA kernels\")"
                .into(),
        );
    }
    // SAFETY: only tries to dlopen libcuda.
    if !unsafe { sys::is_culib_present() } {
        return Err("no NVIDIA driver: libcuda.so could not be loaded".into());
    }
    result::init().map_err(|e| format!("the NVIDIA driver failed to initialise: {e}"))?;
    let n = result::device::get_count().map_err(|e| format!("cuDeviceGetCount: {e}"))?;
    if n <= 0 {
        return Err("the NVIDIA driver reports no CUDA device".into());
    }
    Ok(n as usize)
}

/// What `fastfc devices` prints about a GPU.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub ordinal: usize,
    pub name: String,
    pub capability: (i32, i32),
    pub total_mem: usize,
    pub free_mem: usize,
    pub driver: i32,
    /// Streaming multiprocessors.
    pub sms: i32,
    /// Peak SM clock in kHz (0 when the driver does not say).
    pub clock_khz: i32,
    /// The most dynamic shared memory one block may opt in to, in bytes.
    pub max_shared_optin: usize,
    /// fakecuda, not a GPU: its times are never GPU figures.
    pub fake: bool,
}

impl DeviceInfo {
    /// Peak FP32 throughput in GFLOP/s: SMs × FP32 lanes per SM × 2 (an FMA is two FLOP) × peak
    /// clock. Lanes per SM from NVIDIA's tables: 64 up to sm_80, 128 from sm_86 on. None when the
    /// clock is unknown.
    pub fn peak_fp32_gflops(&self) -> Option<f64> {
        let lanes = match self.capability {
            (major, _) if major < 7 => return None,
            (7, _) | (8, 0) => 64.0,
            _ => 128.0,
        };
        (self.clock_khz > 0)
            .then(|| self.sms as f64 * lanes * 2.0 * self.clock_khz as f64 * 1e3 / 1e9)
    }
}

impl std::fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cuda:{} {} (sm_{}{}, {:.1} GiB, {:.1} GiB free, driver CUDA {}.{})",
            self.ordinal,
            self.name,
            self.capability.0,
            self.capability.1,
            self.total_mem as f64 / (1u64 << 30) as f64,
            self.free_mem as f64 / (1u64 << 30) as f64,
            self.driver / 1000,
            (self.driver % 1000) / 10
        )?;
        if self.fake {
            write!(
                f,
                " [FAKE: fakecuda, the test driver; kernels run in the host emulator, not a GPU]"
            )?;
        }
        if let Some(p) = self.peak_fp32_gflops() {
            write!(
                f,
                ", {} SMs at {:.2} GHz: peak FP32 {:.1} TFLOP/s",
                self.sms,
                self.clock_khz as f64 / 1e6,
                p / 1e3
            )?;
        }
        // What the fused path can hold: activations and their gradients, 2·batch·Σ widths floats.
        write!(
            f,
            "; fused path: {} KiB shared memory per trial (4 x 64 fused up to batch {})",
            self.max_shared_optin / 1024,
            self.max_shared_optin / (4 * 2 * 4 * 64)
        )
    }
}

/// A device allocation, freed on drop.
struct DeviceAlloc {
    ptr: sys::CUdeviceptr,
    ctx: Arc<CudaContext>,
}

impl Drop for DeviceAlloc {
    fn drop(&mut self) {
        // Not bind_to_thread: it first returns any error recorded earlier on the context (by
        // another handle's drop), which would skip this free and leak the memory. Make the
        // context current directly, then free; a failure cannot be returned from drop, so it is
        // reported.
        // SAFETY: the context is alive (held by self.ctx); the pointer came from cuMemAlloc in
        // alloc_raw and is freed only here.
        let res = unsafe {
            result::ctx::set_current(self.ctx.cu_ctx()).and_then(|_| result::free_sync(self.ptr))
        };
        if let Err(e) = res {
            eprintln!("warning: cuda: freeing device memory {:#x}: {e}", self.ptr);
        }
    }
}

/// One CUDA device and one stream on it. [`CudaGpu::fork`] gives another stream on the same
/// context and module, for cohorts that run side by side.
#[derive(Clone)]
pub struct CudaGpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    _module: Arc<CudaModule>,
    funcs: Arc<HashMap<&'static str, CudaFunction>>,
    pub info: DeviceInfo,
    /// Kernels enqueued so far while this stream captures a graph; None when not capturing.
    /// Shared by clones (they share the stream); [`CudaGpu::fork`] starts a fresh one.
    capturing: Arc<Mutex<Option<u64>>>,
}

impl std::fmt::Debug for CudaGpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaGpu({})", self.info)
    }
}

impl CudaGpu {
    /// Opens device `ordinal`, loads the embedded fatbin and every declared kernel.
    pub fn open(ordinal: usize) -> Result<CudaGpu> {
        let count = probe().map_err(|why| Error::backend("cuda", why))?;
        if ordinal >= count {
            return Err(Error::flag(
                "--device",
                format!(
                    "cuda:{ordinal}: this machine has {count} CUDA device(s) (cuda:0..cuda:{})",
                    count - 1
                ),
            ));
        }
        let ctx = CudaContext::new(ordinal).map_err(err)?;
        // We order our streams ourselves and capture graphs: no per-buffer event tracking.
        // SAFETY: called before any allocation on this context.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(err)?;
        let capability = ctx.compute_capability().map_err(err)?;
        let name = ctx.name().map_err(err)?;
        // Loaded by path, or reached some other way (a fakecuda on the library path): its device
        // names say what it is.
        let fake = is_fake() || name.starts_with("fakecuda");
        let image = match crate::kernels::image_for(capability) {
            Some(crate::kernels::Image::Cubin(_, bytes)) => Ptx::from_binary(bytes.to_vec()),
            Some(crate::kernels::Image::Ptx(text)) => Ptx::from_src(text),
            // Built without the toolchain: fakecuda takes the kernel names it runs itself.
            None if fake && !crate::kernels::built() => Ptx::from_binary(
                format!(
                    "FAKECUDA-MANIFEST\n{}\n\0",
                    super::launch::DECLARED.join("\n")
                )
                .into_bytes(),
            ),
            None => {
                return Err(Error::backend(
                    "cuda",
                    format!(
                    "no kernels for this GPU (sm_{}{}): fastfc's kernels need sm_75 (T4) or newer",
                    capability.0, capability.1
                ),
                ))
            }
        };
        let module = ctx.load_module(image).map_err(|e| {
            Error::backend(
                "cuda",
                format!(
                    "loading the kernels (CUDA {} build) on sm_{}{}: {e} (a driver older than 525?)",
                    crate::kernels::TOOLKIT,
                    capability.0,
                    capability.1
                ),
            )
        })?;
        let attr = |a| ctx.attribute(a).unwrap_or(0);
        let max_shared_optin =
            attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
                .max(48 * 1024) as usize;
        let mut funcs = HashMap::new();
        for &name in super::launch::DECLARED {
            let f = module.load_function(name).map_err(|e| {
                Error::backend(
                    "cuda",
                    format!("kernel {name} missing from the fatbin: {e}"),
                )
            })?;
            // Kernels with dynamic shared memory may use all the device allows (beyond 48 KiB
            // only once opted in); the launches hold themselves to `max_shared_optin`.
            if super::launch::DYNAMIC_SHARED.contains(&name) {
                f.set_attribute(
                    sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    max_shared_optin as i32,
                )
                .map_err(|e| {
                    Error::backend(
                        "cuda",
                        format!(
                            "opting {name} in to {max_shared_optin} bytes of shared memory: {e}"
                        ),
                    )
                })?;
            }
            funcs.insert(name, f);
        }
        let (free_mem, total_mem) = ctx.mem_get_info().map_err(err)?;
        let mut driver = 0i32;
        // SAFETY: writes one int.
        unsafe { sys::cuDriverGetVersion(&mut driver) };
        let info = DeviceInfo {
            ordinal,
            name,
            capability,
            total_mem,
            free_mem,
            driver,
            sms: attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT),
            clock_khz: attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_CLOCK_RATE),
            max_shared_optin,
            fake,
        };
        Ok(CudaGpu {
            ctx,
            stream,
            _module: module,
            funcs: Arc::new(funcs),
            info,
            capturing: Arc::new(Mutex::new(None)),
        })
    }

    /// Another stream on the same device, context and kernels.
    pub fn fork(&self) -> Result<CudaGpu> {
        Ok(CudaGpu {
            stream: self.ctx.new_stream().map_err(err)?,
            capturing: Arc::new(Mutex::new(None)),
            ..self.clone()
        })
    }

    fn capture_count(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        self.capturing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Free and total device memory now, in bytes.
    pub fn mem_info(&self) -> Result<(usize, usize)> {
        self.ctx.mem_get_info().map_err(err)
    }

    /// Records every launch `body` enqueues into a CUDA graph instead of running it; the graph
    /// replays them with one launch.
    pub fn capture(&self, body: impl FnOnce(&CudaGpu) -> Result<()>) -> Result<CudaGraphRun> {
        self.stream
            .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(err)?;
        // Captured launches do not run now: they count at each replay, as many as were captured.
        *self.capture_count() = Some(0);
        let res = body(self);
        let kernels = self.capture_count().take().unwrap_or(0);
        // The capture always ends; when the body failed, its error is the one that says why (the
        // end of capture then fails too, as invalidated, and would hide it).
        let graph = self.stream.end_capture(sys::CUgraphInstantiate_flags(0));
        res?;
        let graph = graph.map_err(|e| driver_err("ending the graph capture", e))?;
        let graph = graph.ok_or_else(|| Error::backend("cuda", "the captured graph is empty"))?;
        Ok(CudaGraphRun { graph, kernels })
    }
}

/// An instantiated CUDA graph.
pub struct CudaGraphRun {
    graph: cudarc::driver::CudaGraph,
    /// Kernels in the graph.
    kernels: u64,
}

// SAFETY: CUDA graph handles belong to the context, not to a host thread; a CudaGraphRun is owned
// by one cohort group and launched only through `&self` while that group is borrowed mutably, so
// it is never launched from two threads at once.
unsafe impl Send for CudaGraphRun {}

impl CudaGraphRun {
    /// Enqueues one replay on the stream it was captured from.
    pub fn launch(&self) -> Result<()> {
        self.graph.launch().map_err(err)?;
        super::launch::count_launches(self.kernels);
        Ok(())
    }
}

impl Gpu for CudaGpu {
    fn name(&self) -> String {
        self.info.to_string()
    }

    fn alloc_raw(&self, bytes: usize) -> Result<RawBuf> {
        self.ctx.bind_to_thread().map_err(err)?;
        let n = bytes.max(16);
        // SAFETY: plain allocation, zeroed before use, freed by DeviceAlloc's drop.
        let ptr = unsafe { result::malloc_sync(n) }.map_err(|e| {
            driver_err(
                format_args!("allocating {bytes} bytes on {}", self.info.name),
                e,
            )
        })?;
        let alloc = DeviceAlloc {
            ptr,
            ctx: self.ctx.clone(),
        };
        // Zero it on this handle's stream and wait: a plain cuMemsetD8 would go on the legacy
        // default stream, which is not ordered with the engine's non-blocking streams.
        // SAFETY: within the allocation.
        unsafe { result::memset_d8_async(ptr, 0, n, self.stream.cu_stream()) }.map_err(err)?;
        self.sync()?;
        Ok(RawBuf::new(ptr, bytes, Box::new(alloc)))
    }

    fn write_raw(&self, dst: &RawBuf, offset: usize, src: &[u8]) -> Result<()> {
        assert!(offset + src.len() <= dst.bytes);
        self.ctx.bind_to_thread().map_err(err)?;
        // SAFETY: in bounds; the stream is synchronised before `src` goes out of scope.
        unsafe { result::memcpy_htod_async(dst.ptr + offset as u64, src, self.stream.cu_stream()) }
            .map_err(err)?;
        self.sync()
    }

    fn read_raw(&self, src: &RawBuf, offset: usize, dst: &mut [u8]) -> Result<()> {
        assert!(offset + dst.len() <= src.bytes);
        self.ctx.bind_to_thread().map_err(err)?;
        // SAFETY: in bounds; synchronised before returning.
        unsafe { result::memcpy_dtoh_async(dst, src.ptr + offset as u64, self.stream.cu_stream()) }
            .map_err(err)?;
        self.sync()
    }

    fn enqueue(&self, l: &Launch) -> Result<()> {
        let f = self
            .funcs
            .get(l.kernel)
            .ok_or_else(|| Error::backend("cuda", format!("kernel {} was not loaded", l.kernel)))?;
        let mut b = self.stream.launch_builder(f);
        for a in &l.args {
            match a {
                Arg::Ptr(p) => b.arg(p),
                Arg::I32(v) => b.arg(v),
                Arg::U32(v) => b.arg(v),
                Arg::F32(v) => b.arg(v),
            };
        }
        let cfg = LaunchConfig {
            grid_dim: (l.grid[0], l.grid[1], l.grid[2]),
            block_dim: (l.block[0], l.block[1], l.block[2]),
            shared_mem_bytes: l.smem,
        };
        // SAFETY: the declaration in launch.rs matches the kernel's signature (checked against
        // the C++ signature by the emulated suite); buffers outlive the launch (callers sync).
        unsafe { b.launch(cfg) }
            .map_err(|e| Error::backend("cuda", format!("launching {}: {e}", l.kernel)))?;
        match self.capture_count().as_mut() {
            Some(n) => *n += 1,
            None => super::launch::count_launches(1),
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.stream.synchronize().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::DeviceInfo;

    fn info(capability: (i32, i32), sms: i32, clock_khz: i32) -> DeviceInfo {
        DeviceInfo {
            ordinal: 0,
            name: "test".into(),
            capability,
            total_mem: 16 << 30,
            free_mem: 15 << 30,
            driver: 13000,
            sms,
            clock_khz,
            max_shared_optin: 64 << 10,
            fake: false,
        }
    }

    /// NVIDIA's published FP32 peaks: T4 8.1 TFLOP/s, A100 19.5, H100/H200 SXM 67.
    #[test]
    fn peak_fp32_matches_the_data_sheets() {
        let t4 = info((7, 5), 40, 1_590_000).peak_fp32_gflops().unwrap();
        let a100 = info((8, 0), 108, 1_410_000).peak_fp32_gflops().unwrap();
        let h200 = info((9, 0), 132, 1_980_000).peak_fp32_gflops().unwrap();
        assert!((t4 - 8141.0).abs() < 1.0, "{t4}");
        assert!((a100 - 19492.0).abs() < 1.0, "{a100}");
        assert!((h200 - 66908.0).abs() < 1.0, "{h200}");
        assert_eq!(info((9, 0), 132, 0).peak_fp32_gflops(), None);
        let line = info((7, 5), 40, 1_590_000).to_string();
        assert!(
            line.contains("40 SMs at 1.59 GHz: peak FP32 8.1 TFLOP/s"),
            "{line}"
        );
        assert!(
            line.ends_with(
                "fused path: 64 KiB shared memory per trial (4 x 64 fused up to batch 32)"
            ),
            "{line}"
        );
    }
}
