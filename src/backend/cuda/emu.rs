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
//! from the kernel's C++ signature. Not modelled: timing, occupancy, the memory model, out-of-bounds
//! shared-memory access; f32 math is the host's (more accurate than `expf` on a GPU).

use std::alloc::Layout;
use std::ffi::{c_char, c_int, c_void, CString};

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
        sig: *const c_char,
        params: *mut *mut c_void,
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

/// The emulated GPU.
#[derive(Debug, Clone)]
pub struct EmuGpu {
    pub order: FiberOrder,
}

impl EmuGpu {
    pub fn new(order: FiberOrder) -> Self {
        EmuGpu { order }
    }
}

impl Default for EmuGpu {
    fn default() -> Self {
        EmuGpu::new(FiberOrder::Forward)
    }
}

impl Gpu for EmuGpu {
    fn name(&self) -> String {
        format!("emulated CUDA (host fibers, {:?} order)", self.order)
    }

    fn alloc_raw(&self, bytes: usize) -> Result<RawBuf> {
        let layout = Layout::from_size_align(bytes.max(16), 16)
            .map_err(|e| Error::backend("emu", format!("allocation of {bytes} bytes: {e}")))?;
        // SAFETY: non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(Error::backend(
                "emu",
                format!("out of memory allocating {bytes} bytes"),
            ));
        }
        Ok(RawBuf::new(
            ptr as u64,
            bytes,
            Box::new(HostAlloc { ptr, layout }),
        ))
    }

    fn write_raw(&self, dst: &RawBuf, offset: usize, src: &[u8]) -> Result<()> {
        assert!(offset + src.len() <= dst.bytes);
        // SAFETY: in bounds of a live allocation; no launch runs concurrently on it.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), (dst.ptr as *mut u8).add(offset), src.len())
        };
        Ok(())
    }

    fn read_raw(&self, src: &RawBuf, offset: usize, dst: &mut [u8]) -> Result<()> {
        assert!(offset + dst.len() <= src.bytes);
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
        Ok(())
    }

    fn enqueue(&self, l: &Launch) -> Result<()> {
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
        let mut err = vec![0u8; 1024];
        // SAFETY: params point at `values`, which outlive the call; every pointer argument is the
        // caller's responsibility (buffers from this Gpu, sized for the launch).
        let rc = unsafe {
            ffc_emu_launch(
                name.as_ptr(),
                l.grid.as_ptr(),
                l.block.as_ptr(),
                sig.as_ptr(),
                params.as_mut_ptr(),
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
