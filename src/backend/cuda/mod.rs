//! The CUDA side of fastfc: kernels from `kernels/*.cu`, declared once in [`launch`], run either on
//! a real GPU or on the emulated executor ([`emu`]), behind the [`Gpu`] trait.
//!
//! - [`slot`]: the per-trial slot table and accumulators (`#[repr(C)]` twins of common.cuh).
//! - [`launch`]: one declaration per kernel (name, arguments, launch shape) → [`launch::Launch`].
//! - [`engine`]: the CUDA backend; its per-op path (one launch per op per step, padded cohorts)
//!   and [`fused`], its fused path (one launch per epoch, true widths).
//! - [`emu`]: the same `.cu` sources compiled for the host through a model of the CUDA execution
//!   model (fibers, shared memory, barriers with diagnostics, shuffles, atomics).
//!
//! Ownership: a [`Gpu`] owns nothing but its context; buffers ([`Buf`]) own their allocation and
//! free it on drop. Synchronisation: every method of [`Gpu`] returns when its work is complete
//! (launches are synchronous from the caller's view), so host copies are always current.

pub mod driver;
pub mod engine;
pub mod fake;
pub mod fused;
pub mod launch;
pub mod slot;
pub mod toolchain;

#[cfg(feature = "emu")]
pub mod emu;

use std::any::Any;
use std::marker::PhantomData;

use bytemuck::Pod;

use crate::error::{Error, Result};
pub use launch::{Arg, Launch, Ptr};

/// An untyped device allocation: its address, size, and whatever keeps it alive.
pub struct RawBuf {
    pub ptr: u64,
    pub bytes: usize,
    _keep: Box<dyn Any + Send + Sync>,
}

impl RawBuf {
    pub fn new(ptr: u64, bytes: usize, keep: Box<dyn Any + Send + Sync>) -> RawBuf {
        RawBuf {
            ptr,
            bytes,
            _keep: keep,
        }
    }
}

impl std::fmt::Debug for RawBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawBuf({:#x}, {} bytes)", self.ptr, self.bytes)
    }
}

/// A typed device buffer of `len` elements.
#[derive(Debug)]
pub struct Buf<T> {
    raw: RawBuf,
    len: usize,
    _t: PhantomData<T>,
}

impl<T: Pod> Buf<T> {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The device address of element 0, as a kernel argument.
    pub fn ptr(&self) -> Ptr {
        Ptr(self.raw.ptr)
    }
    /// The device address of element `i`.
    pub fn at(&self, i: usize) -> Ptr {
        assert!(i <= self.len, "offset {i} past a buffer of {}", self.len);
        Ptr(self.raw.ptr + (i * std::mem::size_of::<T>()) as u64)
    }
}

/// A device that runs the kernels: real CUDA, or the emulated executor.
pub trait Gpu: Sync {
    /// What this device is, e.g. `NVIDIA H200 (sm_90)` or `emulated (fibers, forward order)`.
    fn name(&self) -> String;
    /// A zero-filled allocation of `bytes`.
    fn alloc_raw(&self, bytes: usize) -> Result<RawBuf>;
    /// Copies `src` to `dst` at byte `offset`.
    fn write_raw(&self, dst: &RawBuf, offset: usize, src: &[u8]) -> Result<()>;
    /// Copies `dst.len()` bytes from `src` at byte `offset`.
    fn read_raw(&self, src: &RawBuf, offset: usize, dst: &mut [u8]) -> Result<()>;
    /// Runs one kernel launch to completion.
    fn launch(&self, l: &Launch) -> Result<()> {
        self.enqueue(l)?;
        self.sync()
    }
    /// Queues a launch on the device's stream, in order after earlier ones (the emulator runs it
    /// at once). Pair with [`Gpu::sync`].
    fn enqueue(&self, l: &Launch) -> Result<()>;
    /// Waits until everything queued has finished.
    fn sync(&self) -> Result<()>;

    /// A zero-filled buffer of `len` elements.
    fn alloc<T: Pod>(&self, len: usize) -> Result<Buf<T>>
    where
        Self: Sized,
    {
        let raw = self.alloc_raw(len * std::mem::size_of::<T>())?;
        Ok(Buf {
            raw,
            len,
            _t: PhantomData,
        })
    }
    /// A buffer holding a copy of `src`.
    fn upload<T: Pod>(&self, src: &[T]) -> Result<Buf<T>>
    where
        Self: Sized,
    {
        let b = self.alloc::<T>(src.len())?;
        self.write(&b, 0, src)?;
        Ok(b)
    }
    /// Copies `src` into `dst` starting at element `at`.
    fn write<T: Pod>(&self, dst: &Buf<T>, at: usize, src: &[T]) -> Result<()>
    where
        Self: Sized,
    {
        check_range(dst.len, at, src.len())?;
        self.write_raw(
            &dst.raw,
            at * std::mem::size_of::<T>(),
            bytemuck::cast_slice(src),
        )
    }
    /// A host copy of elements `at..at + n`.
    fn read_range<T: Pod>(&self, src: &Buf<T>, at: usize, n: usize) -> Result<Vec<T>>
    where
        Self: Sized,
    {
        check_range(src.len, at, n)?;
        let mut out = vec![T::zeroed(); n];
        self.read_raw(
            &src.raw,
            at * std::mem::size_of::<T>(),
            bytemuck::cast_slice_mut(&mut out),
        )?;
        Ok(out)
    }
    /// A host copy of the whole buffer.
    fn read<T: Pod>(&self, src: &Buf<T>) -> Result<Vec<T>>
    where
        Self: Sized,
    {
        self.read_range(src, 0, src.len)
    }
}

/// Dynamic shared memory per block the emulated device allows: sm_75's opt-in limit.
pub const EMULATED_SHARED: usize = 64 * 1024;

/// Any device this build can drive, as one concrete type (tests and the engine take this).
#[derive(Debug, Clone)]
pub enum AnyGpu {
    Cuda(driver::CudaGpu),
    #[cfg(feature = "emu")]
    Emu(emu::EmuGpu),
}

macro_rules! each_variant {
    ($self:ident, $g:ident => $e:expr) => {
        match $self {
            AnyGpu::Cuda($g) => $e,
            #[cfg(feature = "emu")]
            AnyGpu::Emu($g) => $e,
        }
    };
}

impl Gpu for AnyGpu {
    fn name(&self) -> String {
        each_variant!(self, g => g.name())
    }
    fn alloc_raw(&self, bytes: usize) -> Result<RawBuf> {
        each_variant!(self, g => g.alloc_raw(bytes))
    }
    fn write_raw(&self, dst: &RawBuf, offset: usize, src: &[u8]) -> Result<()> {
        each_variant!(self, g => g.write_raw(dst, offset, src))
    }
    fn read_raw(&self, src: &RawBuf, offset: usize, dst: &mut [u8]) -> Result<()> {
        each_variant!(self, g => g.read_raw(src, offset, dst))
    }
    fn enqueue(&self, l: &Launch) -> Result<()> {
        each_variant!(self, g => g.enqueue(l))
    }
    fn sync(&self) -> Result<()> {
        each_variant!(self, g => g.sync())
    }
}

impl AnyGpu {
    /// The most dynamic shared memory one block may have, in bytes: the device's opt-in limit;
    /// under emulation a T4's (64 KiB), the smallest of the GPUs fastfc targets.
    pub fn max_dynamic_shared(&self) -> usize {
        match self {
            AnyGpu::Cuda(g) => g.info.max_shared_optin,
            #[cfg(feature = "emu")]
            AnyGpu::Emu(_) => EMULATED_SHARED,
        }
    }

    /// The same device on a stream of its own (for work that runs beside this stream's).
    pub fn fork(&self) -> Result<AnyGpu> {
        Ok(match self {
            AnyGpu::Cuda(g) => AnyGpu::Cuda(g.fork()?),
            #[cfg(feature = "emu")]
            AnyGpu::Emu(g) => AnyGpu::Emu(g.fork()),
        })
    }

    /// Captures the launches `body` enqueues on this stream as a graph, replayed by
    /// [`Graph::launch`]. Nothing runs during the capture, and copies, allocations and syncs on
    /// this stream are errors until it ends.
    pub fn capture(&self, body: impl FnOnce() -> Result<()>) -> Result<Graph> {
        Ok(match self {
            AnyGpu::Cuda(g) => Graph::Cuda(g.capture(|_| body())?),
            #[cfg(feature = "emu")]
            AnyGpu::Emu(g) => Graph::Emu(g.capture(body)?),
        })
    }
}

/// A captured sequence of launches (a CUDA graph, or its emulation).
pub enum Graph {
    Cuda(driver::CudaGraphRun),
    #[cfg(feature = "emu")]
    Emu(emu::EmuGraph),
}

impl Graph {
    /// Enqueues one replay on the stream it was captured from.
    pub fn launch(&self) -> Result<()> {
        match self {
            Graph::Cuda(g) => g.launch(),
            #[cfg(feature = "emu")]
            Graph::Emu(g) => g.launch(),
        }
    }
}

fn check_range(len: usize, at: usize, n: usize) -> Result<()> {
    if at.checked_add(n).is_none_or(|end| end > len) {
        return Err(Error::backend(
            "cuda",
            format!("copy of {n} elements at {at} overruns a buffer of {len}"),
        ));
    }
    Ok(())
}
