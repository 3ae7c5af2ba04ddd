//! Runtime dispatch of elementwise loops to AVX2 code. The default x86-64 target has only SSE2,
//! so a loop compiled for it runs 4 floats at a time at best. [`dispatch!`] compiles the same
//! loop a second time with AVX2 and FMA enabled, and picks that copy when the CPU has them.
//! Rust never contracts `a * b + c` into an FMA on its own, so both copies compute bit-identical
//! results: a model trained on an AVX2 machine equals one trained without.

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

/// Defines `$name`, which runs the `#[inline(always)]` function `$body` (same arguments) through
/// a copy compiled for AVX2 + FMA when [`has_avx2`], else as it is.
macro_rules! avx2_dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident<$T:ident: Real>($($a:ident: $t:ty),* $(,)?) => $body:ident) => {
        $(#[$m])*
        $vis fn $name<$T: Real>($($a: $t),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2<$T: Real>($($a: $t),*) {
                    $body($($a),*)
                }
                if super::simd::has_avx2() {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    return unsafe { avx2($($a),*) };
                }
            }
            $body($($a),*)
        }
    };
}
pub(crate) use avx2_dispatch;
