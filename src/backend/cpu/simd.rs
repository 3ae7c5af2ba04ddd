//! Runtime dispatch of elementwise loops to AVX2 code. The default x86-64 target has only SSE2,
//! so a loop compiled for it runs 4 floats at a time at best. `avx2_dispatch!` compiles the same
//! loop a second time with AVX2 and FMA enabled, and picks that copy when the CPU has them.
//! Rust never contracts `a * b + c` into an FMA on its own, so both copies compute bit-identical
//! results: a model trained on an AVX2 machine equals one trained without (tests/ops/ checks each
//! op's `_portable` twin against the dispatched one). Used by the activation, dropout-mask, Adam
//! and Lion loops; the dense layers have their own AVX2 and AVX-512 kernels (`gemm.rs`).

/// Whether this CPU runs AVX2 and FMA code (checked once, then cached by std).
#[inline]
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines a function twice from one signature and body: `$portable`, the loop as written
/// (`#[inline(always)]`, public so tests can compare), and `$name`, which runs the same body
/// through a copy compiled for AVX2 + FMA when [`has_avx2`], else `$portable`.
macro_rules! avx2_dispatch {
    (
        $(#[$m:meta])*
        $vis:vis fn $name:ident $(<$T:ident: Real>)? ($($a:ident: $t:ty),* $(,)?) / $portable:ident
        $body:block
    ) => {
        $(#[$m])*
        $vis fn $name $(<$T: Real>)? ($($a: $t),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx2 $(<$T: Real>)? ($($a: $t),*) {
                    $portable($($a),*)
                }
                if super::simd::has_avx2() {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    return unsafe { avx2($($a),*) };
                }
            }
            $portable($($a),*)
        }

        #[doc = concat!("[`", stringify!($name), "`] without the AVX2 dispatch.")]
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        $vis fn $portable $(<$T: Real>)? ($($a: $t),*) $body
    };
}
pub(crate) use avx2_dispatch;
