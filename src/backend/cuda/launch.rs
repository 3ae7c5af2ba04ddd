//! Launch descriptions: the one place each kernel is declared (name, arguments, launch shape).
//! Both launchers — the real one ([`super::Gpu`] over cudarc) and the emulated one
//! ([`super::emu::EmuGpu`]) — take the [`Launch`] these declarations build, so argument order and
//! kinds are never written twice. The emulated launcher also checks the argument kinds against the
//! kernel's real C++ signature, so a declaration that drifts from its `.cu` fails every test.

use std::sync::atomic::{AtomicU64, Ordering};

static LAUNCHES: AtomicU64 = AtomicU64::new(0);

/// Kernel launches executed by this process so far (graph replays count each captured kernel).
pub fn launches() -> u64 {
    LAUNCHES.load(Ordering::Relaxed)
}

/// Adds `n` executed launches to [`launches`].
pub fn count_launches(n: u64) {
    LAUNCHES.fetch_add(n, Ordering::Relaxed);
}

/// A device address (a CUDA `CUdeviceptr`, or a host address under emulation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ptr(pub u64);

impl Ptr {
    /// The null pointer, for optional buffers.
    pub const NULL: Ptr = Ptr(0);
}

/// One kernel argument, by value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arg {
    Ptr(u64),
    I32(i32),
    U32(u32),
    F32(f32),
}

impl Arg {
    /// The argument as the bytes the kernel receives (what `void** params` entries point at).
    pub fn bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        match *self {
            Arg::Ptr(p) => b.copy_from_slice(&p.to_ne_bytes()),
            Arg::I32(v) => b[..4].copy_from_slice(&v.to_ne_bytes()),
            Arg::U32(v) => b[..4].copy_from_slice(&v.to_ne_bytes()),
            Arg::F32(v) => b[..4].copy_from_slice(&v.to_ne_bytes()),
        }
        b
    }
}

impl From<Ptr> for Arg {
    fn from(p: Ptr) -> Arg {
        Arg::Ptr(p.0)
    }
}
impl From<i32> for Arg {
    fn from(v: i32) -> Arg {
        Arg::I32(v)
    }
}
impl From<u32> for Arg {
    fn from(v: u32) -> Arg {
        Arg::U32(v)
    }
}
impl From<f32> for Arg {
    fn from(v: f32) -> Arg {
        Arg::F32(v)
    }
}

/// A kernel launch: which kernel, its grid and block, its dynamic shared memory, its arguments
/// in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub kernel: &'static str,
    /// Argument kinds, one letter each: p pointer, i i32, u u32, f f32.
    pub sig: &'static str,
    pub grid: [u32; 3],
    pub block: [u32; 3],
    /// Bytes of dynamic shared memory per block (`extern __shared__`; 0 for most kernels). Above
    /// 48 KiB a kernel must be opted in first, up to the device's limit (the driver path does).
    pub smem: u32,
    pub args: Vec<Arg>,
}

/// A launch shape: (grid, block) or (grid, block, dynamic shared bytes).
pub trait Shape {
    fn dims(self) -> ([u32; 3], [u32; 3], u32);
}
impl Shape for ([u32; 3], [u32; 3]) {
    fn dims(self) -> ([u32; 3], [u32; 3], u32) {
        (self.0, self.1, 0)
    }
}
impl Shape for ([u32; 3], [u32; 3], u32) {
    fn dims(self) -> ([u32; 3], [u32; 3], u32) {
        self
    }
}

/// ceil(n / d) as a grid dimension.
pub fn div_up(n: impl TryInto<u64>, d: u32) -> u32 {
    let n: u64 = n.try_into().unwrap_or(0);
    n.div_ceil(d as u64).max(1) as u32
}

macro_rules! sig_char {
    (Ptr) => {
        "p"
    };
    (i32) => {
        "i"
    };
    (u32) => {
        "u"
    };
    (f32) => {
        "f"
    };
}

/// Declares kernels: `Type = name(arg: ty, ...) |trials| (grid, block[, dynamic shared bytes]);`
macro_rules! kernels {
    ($(
        $(#[$doc:meta])*
        $ty:ident = $name:ident($($arg:ident: $t:tt),* $(,)?) |$trials:ident| $shape:expr;
    )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $ty { $(pub $arg: $t),* }

            impl $ty {
                pub const NAME: &'static str = stringify!($name);
                pub const SIG: &'static str = concat!($(sig_char!($t)),*);
                /// The launch of this kernel over a cohort of `trials`.
                pub fn launch(&self, $trials: u32) -> Launch {
                    let $ty { $($arg),* } = *self;
                    let (grid, block, smem) = Shape::dims($shape);
                    Launch {
                        kernel: Self::NAME,
                        sig: Self::SIG,
                        grid,
                        block,
                        smem,
                        args: vec![$(Arg::from($arg)),*],
                    }
                }
            }
        )*
        /// Every declared kernel's name.
        pub const DECLARED: &[&str] = &[$(stringify!($name)),*];
    };
}

/// Threads per block of the elementwise kernels.
pub const ELEMENTWISE_BLOCK: u32 = 256;
/// Threads per block of `softmax_xent` (one block per trial; a multiple of 32).
pub const XENT_BLOCK: u32 = 128;
/// Tile edge of the dense kernels (FFC_TILE).
pub const TILE: u32 = 16;

kernels! {
    /// A mini-batch gathered from the resident split by the epoch's order. kernels/batch.cu.
    BatchGather = batch_gather(idx: Ptr, rows: i32, dim: i32, src_x: Ptr, src_y: Ptr, dst_x: Ptr,
                               dst_y: Ptr)
        |_trials| ([div_up(rows as i64 * dim as i64, ELEMENTWISE_BLOCK), 1, 1], [ELEMENTWISE_BLOCK, 1, 1]);
    /// z = x·Wᵀ + b, and with `mode` 1 also y = f(z). kernels/dense.cu.
    DenseFwd = dense_fwd(slots: Ptr, w_off: u32, b_off: u32, rows: i32, n_in: i32, n_out: i32,
                         x: Ptr, x_tstride: u32, params: Ptr, z: Ptr, y: Ptr, mode: i32,
                         skip_inactive: i32)
        |trials| ([div_up(n_out, TILE), div_up(rows, TILE), trials], [TILE, TILE, 1]);
    /// dx = (dy·W) [⊙ mask] [⊙ f'(z)]. kernels/dense.cu.
    DenseBwdX = dense_bwd_x(slots: Ptr, w_off: u32, rows: i32, n_in: i32, n_out: i32, dy: Ptr,
                            params: Ptr, mask: Ptr, z: Ptr, y: Ptr, dx: Ptr, mode: i32)
        |trials| ([div_up(n_in, TILE), div_up(rows, TILE), trials], [TILE, TILE, 1]);
    /// dW = dyᵀ·x, db = Σ dy. kernels/dense.cu.
    DenseBwdW = dense_bwd_w(slots: Ptr, w_off: u32, b_off: u32, rows: i32, n_in: i32, n_out: i32,
                            dy: Ptr, x: Ptr, x_tstride: u32, grads: Ptr)
        |trials| ([div_up(n_in, TILE), div_up(n_out, TILE), trials], [TILE, TILE, 1]);
    /// y = f(z). kernels/activation.cu.
    ActivationFwd = activation_fwd(slots: Ptr, n: i32, z: Ptr, y: Ptr)
        |trials| ([div_up(n, ELEMENTWISE_BLOCK), trials, 1], [ELEMENTWISE_BLOCK, 1, 1]);
    /// dz = dy·f'(z). kernels/activation.cu.
    ActivationBwd = activation_bwd(slots: Ptr, n: i32, z: Ptr, y: Ptr, dy: Ptr, dz: Ptr)
        |trials| ([div_up(n, ELEMENTWISE_BLOCK), trials, 1], [ELEMENTWISE_BLOCK, 1, 1]);
    /// Inverted dropout. kernels/dropout.cu.
    DropoutFwd = dropout_fwd(slots: Ptr, step: u32, layer: u32, rows: i32, width: i32, x: Ptr,
                             mask: Ptr, y: Ptr)
        |trials| ([div_up(rows as i64 * width as i64, ELEMENTWISE_BLOCK), trials, 1],
                  [ELEMENTWISE_BLOCK, 1, 1]);
    /// dx = dy ⊙ mask. kernels/dropout.cu.
    DropoutBwd = dropout_bwd(slots: Ptr, rows: i32, width: i32, dy: Ptr, mask: Ptr, dx: Ptr)
        |trials| ([div_up(rows as i64 * width as i64, ELEMENTWISE_BLOCK), trials, 1],
                  [ELEMENTWISE_BLOCK, 1, 1]);
    /// ffc_hash5 of (n, 5) keys, for the shared test vectors. kernels/dropout.cu.
    DropoutHash = dropout_hash(keys: Ptr, n: i32, out: Ptr)
        |_trials| ([div_up(n, ELEMENTWISE_BLOCK), 1, 1], [ELEMENTWISE_BLOCK, 1, 1]);
    /// Softmax cross-entropy: loss sums, correct counts, dlogits. kernels/softmax_xent.cu.
    SoftmaxXent = softmax_xent(slots: Ptr, rows: i32, classes: i32, logits: Ptr, labels: Ptr,
                               scale: f32, dlogits: Ptr, stats: Ptr, train: i32)
        |trials| ([1, trials, 1], [XENT_BLOCK, 1, 1]);
    /// The scheduled rates (lr, Adam's α) of every trial and step of an epoch.
    /// kernels/optimizer.cu.
    Rates = rates(slots: Ptr, steps: i32, table: Ptr)
        |trials| ([div_up(steps, ELEMENTWISE_BLOCK), trials, 1], [ELEMENTWISE_BLOCK, 1, 1]);
    /// One optimizer step over the arena, each trial with its own optimizer, rates from
    /// [`Rates`]' table. kernels/optimizer.cu.
    Optimize = optimize(slots: Ptr, n: i32, step: u32, table: Ptr, steps: i32, params: Ptr,
                        grads: Ptr, m: Ptr, v: Ptr)
        |trials| ([div_up(n, ELEMENTWISE_BLOCK), trials, 1], [ELEMENTWISE_BLOCK, 1, 1]);
    /// One epoch of every trial, one CTA each, at the trials' own layouts. kernels/fused.cu.
    FusedTrain = fused_train(slots: Ptr, dim: i32, classes: i32, order: Ptr, n: i32, batch: i32,
                             src_x: Ptr, src_y: Ptr, params: Ptr, m: Ptr, v: Ptr, scratch: Ptr,
                             scratch_stride: u32, stats: Ptr, smem_floats: u32)
        |trials| ([trials, 1, 1], [FUSED_THREADS, 1, 1], smem_floats * 4);
    /// Loss and accuracy of every trial on a split, one CTA each. kernels/fused.cu.
    FusedEval = fused_eval(slots: Ptr, dim: i32, classes: i32, x: Ptr, y: Ptr, n: i32, params: Ptr,
                           stats: Ptr, chunk: i32, widest: i32, skip_inactive: i32)
        |trials| ([trials, 1, 1], [FUSED_THREADS, 1, 1],
                  fused_eval_floats(chunk, widest, classes) * 4);
}

/// Threads per CTA of the fused kernels (one CTA per trial).
pub const FUSED_THREADS: u32 = 256;

/// The kernels that take dynamic shared memory (opted in to the device's limit at load).
pub const DYNAMIC_SHARED: &[&str] = &[FusedTrain::NAME, FusedEval::NAME];

/// Floats of shared memory `fused_eval` uses: two `chunk` × `widest` buffers and the logits.
pub fn fused_eval_floats(chunk: i32, widest: i32, classes: i32) -> u32 {
    (chunk.max(0) as u32) * (2 * widest.max(0) as u32 + classes.max(0) as u32)
}

/// The emulator's self-test kernels (src/backend/cuda/emu/selftest.cu; emulated build only).
pub mod selftest {
    use super::*;
    kernels! {
        Reduce = emu_selftest_reduce(x: Ptr, n: i32, out: Ptr) |blocks| ([blocks, 1, 1], [256, 1, 1]);
        Atomics = emu_selftest_atomics(counter: Ptr, sum: Ptr, maxv: Ptr) |threads| ([1, 1, 1], [threads, 1, 1]);
        Ballot = emu_selftest_ballot(out: Ptr, out2: Ptr) |threads| ([1, 1, 1], [threads, 1, 1]);
        EarlyReturn = emu_selftest_early_return(out: Ptr) |threads| ([1, 1, 1], [threads, 1, 1]);
        Divergent = emu_selftest_divergent(out: Ptr) |threads| ([1, 1, 1], [threads, 1, 1]);
        Race = emu_selftest_race(input: Ptr, out: Ptr, sync: i32) |threads| ([1, 1, 1], [threads, 1, 1]);
        StructLayout = emu_selftest_layout(out: Ptr) |threads| ([1, 1, 1], [threads, 1, 1]);
        Dynamic = emu_selftest_dynamic(before: Ptr, after: Ptr, n: i32)
            |blocks| ([blocks, 1, 1], [96, 1, 1], n as u32 * 4);
        Votes = emu_selftest_votes(out: Ptr, k: i32) |threads| ([1, 1, 1], [threads, 1, 1]);
    }
}
