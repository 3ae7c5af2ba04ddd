//! The CUDA kernels as built by `build.rs` from `kernels/*.cu`: the embedded fatbin, the kernel
//! names and ptxas' register/spill report. Empty when nvcc was not found at build time.

include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

/// True when this binary carries compiled kernels.
pub fn built() -> bool {
    !FATBIN.is_empty()
}
