//! The emulated executor: `kernels/*.cu` compiled for the host by build.rs through
//! `emu/ffc_emu.h` (a model of the CUDA execution model) and `emu/runtime.cpp` (its scheduler),
//! driven through the same [`Launch`] descriptions as the real GPU. "Device" memory is host memory.
//!
//! What it models: grid/blocks/threads (each thread a fiber, one block at a time), `__shared__`
//! shared by a block's fibers, `__syncthreads` as a real barrier, warp shuffles and votes with
//! their masks, atomics. Fibers switch only at barriers and warp operations, in the order chosen by
//! [`FiberOrder`], so code that depends on an order CUDA does not promise gives different results
//! under different orders. It diagnoses, and fails the launch with the thread and source line: an
//! early return before a barrier, threads waiting at different barriers, warp operations whose
//! masks or call sites differ, a lane missing from a warp operation, and argument kinds that differ
//! from the kernel's C++ signature. Dynamic shared memory is NaN-filled at each block's start and
//! ends at an unmapped page. Not modelled: timing, occupancy, the memory model, out-of-bounds
//! shared-memory access; f32 math is the host's (more accurate than `expf` on a GPU).

use std::alloc::Layout;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::{Arc, Mutex};

use super::{Gpu, Launch, RawBuf};
use crate::error::{Error, Result};

/// The order in which runnable fibers are resumed between barriers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FiberOrder {
    Forward,
    Reverse,
    /// A fresh permutation every round, from this seed.
    Random(u64),
}

extern "C" {
    fn ffc_emu_launch(
        name: *const c_char,
        grid: *const u32,
        block: *const u32,
        shared: u32,
        sig: *const c_char,
        params: *mut *mut c_void,
        mode: u32,
        order: u32,
        seed: u64,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
}

/// Host memory standing in for a device allocation (16-byte aligned, zero-filled).
struct HostAlloc {
    ptr: *mut u8,
    layout: Layout,
}

// SAFETY: the allocation is plain memory; kernels and copies reach it only through `Gpu` methods,
// which run one at a time on the calling thread.
unsafe impl Send for HostAlloc {}
unsafe impl Sync for HostAlloc {}

impl Drop for HostAlloc {
    fn drop(&mut self) {
        // SAFETY: allocated in `alloc_raw` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

/// The kernels' float arithmetic under emulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    /// As written: every multiply and add rounded on its own.
    Plain,
    /// `a*b + c` contracted into one fused multiply-add, as nvcc and NVRTC compile kernels by
    /// default (`--fmad=true`): what a real GPU computes.
    Fma,
}

impl Arith {
    /// Whether this machine can run the mode (the contracted build uses the CPU's FMA unit).
    pub fn available(self) -> bool {
        match self {
            Arith::Plain => true,
            #[cfg(target_arch = "x86_64")]
            Arith::Fma => std::arch::is_x86_feature_detected!("fma"),
            #[cfg(not(target_arch = "x86_64"))]
            Arith::Fma => true,
        }
    }
}

/// The emulated GPU. Clones share one "stream"; [`EmuGpu::fork`] makes another. Launches run at
/// once, except while the stream captures a graph ([`EmuGpu::capture`]).
#[derive(Debug, Clone)]
pub struct EmuGpu {
    pub order: FiberOrder,
    pub arith: Arith,
    /// The launches recorded so far while this stream captures a graph; None when not capturing.
    capturing: Arc<Mutex<Option<Vec<Launch>>>>,
}

impl EmuGpu {
    pub fn new(order: FiberOrder) -> Self {
        EmuGpu::with_arith(order, Arith::Plain)
    }

    /// An executor running the kernels' arithmetic as `arith` says.
    pub fn with_arith(order: FiberOrder, arith: Arith) -> Self {
        EmuGpu {
            order,
            arith,
            capturing: Arc::new(Mutex::new(None)),
        }
    }

    /// The same executor on a stream of its own.
    pub fn fork(&self) -> EmuGpu {
        EmuGpu::with_arith(self.order, self.arith)
    }

    fn recording(&self) -> std::sync::MutexGuard<'_, Option<Vec<Launch>>> {
        self.capturing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the launches `body` enqueues on this stream instead of running them, as CUDA stream
    /// capture does: arguments are taken by value now, device memory is read at each replay.
    /// Copies and syncs on a capturing stream are errors here, because they are on a real GPU.
    pub fn capture(&self, body: impl FnOnce() -> Result<()>) -> Result<EmuGraph> {
        {
            let mut r = self.recording();
            if r.is_some() {
                return Err(Error::backend(
                    "emu",
                    "capture begun on a stream that is capturing",
                ));
            }
            *r = Some(vec![]);
        }
        let res = body();
        let launches = self.recording().take().unwrap_or_default();
        res?;
        if launches.is_empty() {
            return Err(Error::backend("emu", "the captured graph is empty"));
        }
        Ok(EmuGraph {
            gpu: self.clone(),
            launches,
        })
    }

    fn not_capturing(&self, what: &str) -> Result<()> {
        if self.recording().is_some() {
            return Err(Error::backend(
                "emu",
                format!("{what} on a stream that is capturing a graph (not allowed by CUDA)"),
            ));
        }
        Ok(())
    }
}

/// A captured sequence of launches, replayed on the stream it was captured from.
pub struct EmuGraph {
    gpu: EmuGpu,
    launches: Vec<Launch>,
}

impl EmuGraph {
    /// Runs every captured launch in order.
    pub fn launch(&self) -> Result<()> {
        self.gpu.not_capturing("a graph replay")?;
        self.launches.iter().try_for_each(|l| self.gpu.run(l))
    }
}

impl Default for EmuGpu {
    fn default() -> Self {
        EmuGpu::new(FiberOrder::Forward)
    }
}

impl Gpu for EmuGpu {
    fn name(&self) -> String {
        format!(
            "emulated CUDA (host fibers, {:?} order, {:?} arithmetic)",
            self.order, self.arith
        )
    }

    fn alloc_raw(&self, bytes: usize) -> Result<RawBuf> {
        self.not_capturing("an allocation")?;
        let layout = Layout::from_size_align(bytes.max(16), 16)
            .map_err(|e| Error::backend("emu", format!("allocation of {bytes} bytes: {e}")))?;
        // SAFETY: non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(Error::OutOfMemory {
                backend: "emu".into(),
                msg: format!("allocating {bytes} bytes"),
            });
        }
        Ok(RawBuf::new(
            ptr as u64,
            bytes,
            Box::new(HostAlloc { ptr, layout }),
        ))
    }

    fn write_raw(&self, dst: &RawBuf, offset: usize, src: &[u8]) -> Result<()> {
        assert!(offset + src.len() <= dst.bytes);
        self.not_capturing("a copy to the device")?;
        // SAFETY: in bounds of a live allocation; no launch runs concurrently on it.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), (dst.ptr as *mut u8).add(offset), src.len())
        };
        Ok(())
    }

    fn read_raw(&self, src: &RawBuf, offset: usize, dst: &mut [u8]) -> Result<()> {
        assert!(offset + dst.len() <= src.bytes);
        self.not_capturing("a copy from the device")?;
        // SAFETY: as in write_raw.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (src.ptr as *const u8).add(offset),
                dst.as_mut_ptr(),
                dst.len(),
            )
        };
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        self.not_capturing("a synchronisation")
    }

    fn enqueue(&self, l: &Launch) -> Result<()> {
        if let Some(rec) = self.recording().as_mut() {
            rec.push(l.clone());
            return Ok(());
        }
        self.run(l)
    }
}

impl EmuGpu {
    /// Runs one launch to completion on the calling thread.
    fn run(&self, l: &Launch) -> Result<()> {
        let mut values: Vec<[u8; 8]> = l.args.iter().map(|a| a.bytes()).collect();
        let mut params: Vec<*mut c_void> = values
            .iter_mut()
            .map(|v| v.as_mut_ptr() as *mut c_void)
            .collect();
        let name = CString::new(l.kernel).expect("kernel names have no NUL");
        let sig = CString::new(l.sig).expect("signatures have no NUL");
        let (order, seed) = match self.order {
            FiberOrder::Forward => (0, 0),
            FiberOrder::Reverse => (1, 0),
            FiberOrder::Random(s) => (2, s),
        };
        if l.smem as usize > super::EMULATED_SHARED {
            return Err(Error::backend(
                "emu",
                format!(
                    "{}: {} bytes of dynamic shared memory; the emulated device (a T4's limits) allows {}",
                    l.kernel,
                    l.smem,
                    super::EMULATED_SHARED
                ),
            ));
        }
        if !self.arith.available() {
            return Err(Error::backend(
                "emu",
                "this CPU has no FMA unit: the contracted (Fma) emulation cannot run here",
            ));
        }
        let mode = match self.arith {
            Arith::Plain => 0,
            Arith::Fma => 1,
        };
        let mut err = vec![0u8; 1024];
        // SAFETY: params point at `values`, which outlive the call; every pointer argument is the
        // caller's responsibility (buffers from this Gpu, sized for the launch).
        let rc = unsafe {
            ffc_emu_launch(
                name.as_ptr(),
                l.grid.as_ptr(),
                l.block.as_ptr(),
                l.smem,
                sig.as_ptr(),
                params.as_mut_ptr(),
                mode,
                order,
                seed,
                err.as_mut_ptr() as *mut c_char,
                err.len(),
            )
        };
        super::launch::count_launches(1);
        if rc != 0 {
            let end = err.iter().position(|&b| b == 0).unwrap_or(err.len());
            return Err(Error::backend(
                "emu",
                String::from_utf8_lossy(&err[..end]).into_owned(),
            ));
        }
        Ok(())
    }
}
