//! Runtime dispatch of elementwise loops to AVX2 or AVX-512 code. The default x86-64 target has
//! only SSE2, so a loop compiled for it runs 4 floats at a time at best. `simd_dispatch!` compiles
//! the same loop twice more, with AVX2 + FMA and with AVX-512 enabled, and runs the copy of
//! [`level`]. Rust never contracts `a * b + c` into an FMA on its own, so every copy computes
//! bit-identical results: a model trained on an AVX-512 machine equals one trained on an AVX2 one
//! or without either (tests/ops/ checks each op's `_at` copies against its `_portable` twin). Used
//! by the activation, dropout-mask, softmax, optimizer and product loops; the dense layers have
//! their own AVX2 and AVX-512 kernels (`gemm.rs`).

/// The copies of an elementwise loop, in order: each runs on any CPU that runs the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The loop as written for the build's target.
    Portable,
    /// 8 lanes of f32 (AVX2 + FMA).
    Avx2,
    /// 16 lanes of f32 (AVX-512 F/VL/BW/DQ, with AVX2 + FMA).
    Avx512,
}

impl Level {
    /// Every level this CPU runs, lowest first: what the tests compare against each other.
    pub fn available() -> Vec<Level> {
        [Level::Portable, Level::Avx2, Level::Avx512]
            .into_iter()
            .filter(|&l| l <= best())
            .collect()
    }
}

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

/// The highest level this CPU runs (detected once: every dispatched call asks).
pub fn best() -> Level {
    static BEST: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *BEST.get_or_init(detect)
}

fn detect() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2()
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512dq")
        {
            return Level::Avx512;
        }
    }
    if has_avx2() {
        Level::Avx2
    } else {
        Level::Portable
    }
}

/// The level the engine's loops run at: the GEMM kernels' choice (`dense::isa`, which
/// `FASTFC_CPU_ISA=avx2` caps), AVX2 under `FASTFC_CPU_ISA=sgemm` as before the GEMM kernels.
pub fn level() -> Level {
    use super::gemm::Isa;
    static LEVEL: std::sync::OnceLock<Level> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = match super::dense::isa() {
            Isa::Avx512 => Level::Avx512,
            Isa::Avx2 | Isa::Sgemm => Level::Avx2,
        };
        cap.min(best())
    })
}

/// Defines a function three times from one signature and body: `$portable`, the loop as written
/// (`#[inline(always)]`, public so tests can compare); `$at(level, …)`, the same body through a
/// copy compiled for `level` (or the best below it this CPU runs); and `$name`, which is `$at` at
/// [`level`].
macro_rules! simd_dispatch {
    (
        $(#[$m:meta])*
        $vis:vis fn $name:ident $(<$T:ident: Real>)? ($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? as $portable:ident, $at:ident
        $body:block
    ) => {
        $(#[$m])*
        #[inline]
        #[allow(clippy::too_many_arguments)]
        $vis fn $name $(<$T: Real>)? ($($a: $t),*) $(-> $r)? {
            $at(super::simd::level(), $($a),*)
        }

        #[doc = concat!("[`", stringify!($name), "`] through the copy compiled for `level`, or the best below it this CPU runs.")]
        #[allow(clippy::too_many_arguments)]
        $vis fn $at $(<$T: Real>)? (level: super::simd::Level, $($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx512 $(<$T: Real>)? ($($a: $t),*) $(-> $r)? {
                    $portable($($a),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx2 $(<$T: Real>)? ($($a: $t),*) $(-> $r)? {
                    $portable($($a),*)
                }
                match level.min(super::simd::best()) {
                    // SAFETY: the CPU has AVX-512 F/VL/BW/DQ, AVX2 and FMA (`best`).
                    super::simd::Level::Avx512 => return unsafe { avx512($($a),*) },
                    // SAFETY: the CPU has AVX2 and FMA (`best`).
                    super::simd::Level::Avx2 => return unsafe { avx2($($a),*) },
                    super::simd::Level::Portable => {}
                }
            }
            let _ = level;
            $portable($($a),*)
        }

        #[doc = concat!("[`", stringify!($name), "`] as written, without the dispatch.")]
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        $vis fn $portable $(<$T: Real>)? ($($a: $t),*) $(-> $r)? $body
    };
}
pub(crate) use simd_dispatch;

simd_dispatch! {
    /// `y[i] = x[i]·m[i]`: dropout's mask on the way forward and back, and dy·f'(z).
    pub fn mul(x: &[f32], m: &[f32], y: &mut [f32]) as mul_portable, mul_at {
        assert!(x.len() == m.len() && m.len() == y.len());
        for ((y, &x), &m) in y.iter_mut().zip(x).zip(m) {
            *y = x * m;
        }
    }
}

simd_dispatch! {
    /// `y[i] = (x[i]·m[i])·d[i]`: the backward pass through dropout's mask, then f'(z).
    pub fn mul2(x: &[f32], m: &[f32], d: &[f32], y: &mut [f32]) as mul2_portable, mul2_at {
        assert!(x.len() == m.len() && m.len() == d.len() && d.len() == y.len());
        for (((y, &x), &m), &d) in y.iter_mut().zip(x).zip(m).zip(d) {
            *y = x * m * d;
        }
    }
}

/// Columns [`col_sums`] keeps in registers at once: four AVX-512 vectors (eight AVX2 ones), so
/// four independent add chains run down the rows instead of one chain through memory per row.
const COL_BLOCK: usize = 64;

simd_dispatch! {
    /// `out[j] = Σ_r x[r·cols + j]` over the rows of `x` (rows × cols), each sum from 0 in row
    /// order: the bias gradient, dL/db = the column sums of dL/dz.
    pub fn col_sums(x: &[f32], cols: usize, out: &mut [f32]) as col_sums_portable, col_sums_at {
        assert!(cols > 0 && x.len().is_multiple_of(cols) && out.len() == cols);
        // acc[j] += x[r, c0 + j] for every row r, in row order.
        #[inline(always)]
        fn add_rows(x: &[f32], cols: usize, c0: usize, acc: &mut [f32]) {
            let w = acc.len();
            for row in x.chunks_exact(cols) {
                for (a, &v) in acc.iter_mut().zip(&row[c0..c0 + w]) {
                    *a += v;
                }
            }
        }
        for (c0, out) in (0..cols).step_by(COL_BLOCK).zip(out.chunks_mut(COL_BLOCK)) {
            if out.len() == COL_BLOCK {
                // A full block in registers (an array of constant length).
                let mut acc = [0f32; COL_BLOCK];
                add_rows(x, cols, c0, &mut acc);
                out.copy_from_slice(&acc);
            } else {
                out.fill(0.0);
                add_rows(x, cols, c0, out);
            }
        }
    }
}
