//! NVTX ranges, so `nsys` timelines show cohorts, epochs, steps and validation (README
//! "Profiling with nsys"). With the `nvtx` feature (default) a range costs one small string
//! format and a call that does nothing unless a profiler has injected itself; without the
//! feature it compiles to nothing.

/// An open range; it ends when dropped.
#[must_use = "a range ends when this guard is dropped"]
pub struct Range {
    #[cfg(feature = "nvtx")]
    _guard: nvtx::RangeGuard,
}

/// Opens a range named by `args` (use with `format_args!`).
#[inline]
pub fn range(args: std::fmt::Arguments<'_>) -> Range {
    #[cfg(feature = "nvtx")]
    {
        Range {
            _guard: nvtx::range!("{}", args),
        }
    }
    #[cfg(not(feature = "nvtx"))]
    {
        let _ = args;
        Range {}
    }
}
