//! Small-shape GEMM: the cohort's dense layers without a general sgemm's packing.
//!
//! The products a trial computes per step are tiny and of few shapes — a batch of 16–256 rows
//! times layers of ≤ 128 units (and the 10-class output) — where a general sgemm spends much of
//! its time packing operands into its own panels. Here one register-blocked microkernel reads the
//! operands where they are:
//!
//! `C[m, n] = init[n] + Σ_k A(m, k)·B[k, n]`, for m < M, n < N,
//!
//! with A read one element at a time (broadcast to a vector) through any strides, so Aᵀ costs
//! nothing, and B and C row-major. A tile is `MR` rows × `NV` vectors of C held in registers
//! while k runs (the last columns of a row in as few vectors as hold them); B's rows of a column
//! block (≤ 128·K bytes) stay in L1 across a strip's tiles. Each k step loads `NV` vectors of B
//! and broadcasts `MR` elements of A for `MR·NV` FMAs: with two vectors a row (12 × 32 on
//! AVX-512, 6 × 16 on AVX2) the loads stay below the two FMA ports' rate, where one vector a row
//! (12 loads and a vector for 12 FMAs) left the kernel waiting on the load ports.
//! After each strip of `MR` rows is complete over all N columns, an epilogue runs on it while it
//! is still in L1: the forward pass adds its activation and dropout there, the backward pass its
//! mask and activation derivative (`cpu::CpuTrial`).
//!
//! Every output element is one fused multiply-add chain over k in order, starting from `init`
//! (the bias, or 0): the AVX2 and AVX-512 kernels give the same bits (tests/ops/gemm.rs), and
//! the result does not depend on the thread count (a trial runs on one thread). A CPU without
//! AVX2 + FMA, or a shape outside [`MAX_N`] / [`MAX_K`], goes through `matrixmultiply`'s sgemm,
//! then the epilogue over all rows.

/// Widest C (columns) the microkernels take; wider goes to matrixmultiply.
pub const MAX_N: usize = 256;
/// Longest reduction they take (B's column block, 32 × K floats, is then 64 KiB: L2, not L1).
pub const MAX_K: usize = 512;

/// Which microkernel runs on this CPU (chosen once per call from std's cached feature checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// 2 zmm (32 columns) × 12 rows per tile.
    Avx512,
    /// 16 ymm columns × 6 rows per tile.
    Avx2,
    /// matrixmultiply's sgemm.
    Sgemm,
}

impl Isa {
    /// The best this CPU runs; `FASTFC_CPU_ISA=avx2|sgemm` caps it (benchmarks and tests compare
    /// kernels on one machine with it).
    pub fn detect() -> Isa {
        let best = best_isa();
        match std::env::var("FASTFC_CPU_ISA").as_deref() {
            Ok("sgemm") => Isa::Sgemm,
            Ok("avx2") if best != Isa::Sgemm => Isa::Avx2,
            _ => best,
        }
    }
}

/// `isa`, or the best this CPU runs when it asks for more: the kernels' safety rests on this, not
/// on callers having gone through [`Isa::detect`].
fn supported(isa: Isa) -> Isa {
    match (isa, best_isa()) {
        (Isa::Avx512, Isa::Avx512) => Isa::Avx512,
        (Isa::Avx512 | Isa::Avx2, Isa::Avx512 | Isa::Avx2) => Isa::Avx2,
        _ => Isa::Sgemm,
    }
}

fn best_isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") && super::simd::has_avx2() {
            return Isa::Avx512;
        }
        if super::simd::has_avx2() {
            return Isa::Avx2;
        }
    }
    Isa::Sgemm
}

/// A's element (m, k) is `a[m·rs + k·cs]`.
#[derive(Debug, Clone, Copy)]
pub struct Strided<'a> {
    pub a: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// `C = init + A·B` (see the module doc) with `epilogue(row0, strip)` called on each finished
/// strip of C's rows (`strip` = C's rows row0.. as a slice from row0's first element, each row
/// `ldc` apart, the last one `n` long). `init` is a row of N values added to every row (a
/// bias), or zero when `None`. Panics when an operand is shorter than the shape needs (a caller
/// bug: every shape here comes from a trial's layout).
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    isa: Isa,
    (m, n, k): (usize, usize, usize),
    a: Strided,
    b: &[f32],
    ldb: usize,
    init: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
    epilogue: &mut dyn FnMut(usize, &mut [f32]),
) {
    if m == 0 || n == 0 {
        return;
    }
    let isa = supported(isa);
    // The last element each operand is read or written at, overflow-checked (a wrapped product
    // would pass a bounds check it should fail).
    let last = |rows: usize, rs: usize, cols: usize, cs: usize| -> Option<usize> {
        (rows - 1)
            .checked_mul(rs)?
            .checked_add((cols - 1).checked_mul(cs)?)
    };
    assert!(
        k == 0 || last(m, a.rs, k, a.cs).is_some_and(|e| e < a.a.len()),
        "A too short"
    );
    assert!(
        k == 0 || last(k, ldb, n, 1).is_some_and(|e| e < b.len()),
        "B too short"
    );
    assert!(
        ldb >= n && ldc >= n && last(m, ldc, n, 1).is_some_and(|e| e < c.len()),
        "C too short"
    );
    assert!(init.is_none_or(|i| i.len() >= n), "init too short");
    let small = n <= MAX_N && k <= MAX_K && k > 0;
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if small => {
            // SAFETY: AVX-512F, AVX2 and FMA checked by `supported`; bounds asserted above.
            unsafe { avx512::gemm((m, n, k), a, b, ldb, init, c, ldc, epilogue) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if small => {
            // SAFETY: AVX2 and FMA checked by `supported`; bounds asserted above.
            unsafe { avx2::gemm((m, n, k), a, b, ldb, init, c, ldc, epilogue) }
        }
        _ => {
            sgemm((m, n, k), a, b, ldb, init, c, ldc);
            epilogue(0, &mut c[..(m - 1) * ldc + n]);
        }
    }
}

/// The fallback: matrixmultiply's sgemm, then `init` added to each row.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    (m, n, k): (usize, usize, usize),
    a: Strided,
    b: &[f32],
    ldb: usize,
    init: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
) {
    // SAFETY: bounds asserted by `gemm`.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.a.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.as_ptr(),
            ldb as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            ldc as isize,
            1,
        );
    }
    if let Some(init) = init {
        for r in 0..m {
            for (v, b) in c[r * ldc..r * ldc + n].iter_mut().zip(init) {
                *v += b;
            }
        }
    }
}

/// One microkernel family: `$mr` rows × `$nv` vectors of `$lanes` floats per tile. Its
/// module's `$helpers` define `mask_of(live)` (the first `live` lanes), `mload`, `mstore`
/// (masked) and `splat` for the vector type, compiled with the same features so they inline.
macro_rules! microkernel {
    (
        $module:ident, $features:literal, $vec:ty, $lanes:literal, $mr:literal, $nv:literal,
        $mask:ty, zero: $zero:path, load: $load:path, store: $store:path, fma: $fma:path,
        $($helpers:item)*
    ) => {
        #[cfg(target_arch = "x86_64")]
        mod $module {
            use super::Strided;
            use std::arch::x86_64::*;

            const MR: usize = $mr;
            const NR: usize = $nv * $lanes;

            $($helpers)*

            /// One tile: rows `R` × `V` vectors of C from `c`, columns `w` (FULL: `w` = V·lanes)
            /// from B's `b`.
            ///
            /// SAFETY: A's rows 0..R at `a` (strides rs, cs), B's rows 0..k at `b` (stride ldb)
            /// and C's rows 0..R at `c` (stride ldc) hold `w` columns; `init` holds `w` values.
            #[inline]
            #[target_feature(enable = $features)]
            #[allow(clippy::too_many_arguments)]
            unsafe fn tile<const R: usize, const V: usize, const FULL: bool>(
                k: usize,
                a: *const f32,
                (rs, cs): (usize, usize),
                b: *const f32,
                ldb: usize,
                init: Option<*const f32>,
                c: *mut f32,
                ldc: usize,
                w: usize,
            ) {
                unsafe {
                    let mut mask = [mask_of(0); V];
                    for (j, m) in mask.iter_mut().enumerate() {
                        *m = mask_of(w.saturating_sub(j * $lanes).min($lanes));
                    }
                    let mut acc: [[$vec; V]; R] = [[$zero(); V]; R];
                    if let Some(init) = init {
                        for j in 0..V {
                            let p = init.wrapping_add(j * $lanes);
                            let v = if FULL { $load(p) } else { mload(p, mask[j]) };
                            for row in acc.iter_mut() {
                                row[j] = v;
                            }
                        }
                    }
                    for kk in 0..k {
                        let bp = b.wrapping_add(kk * ldb);
                        let mut bv = [$zero(); V];
                        for j in 0..V {
                            let p = bp.wrapping_add(j * $lanes);
                            bv[j] = if FULL { $load(p) } else { mload(p, mask[j]) };
                        }
                        let ap = a.add(kk * cs);
                        for (r, row) in acc.iter_mut().enumerate() {
                            let av = splat(&*ap.add(r * rs));
                            for j in 0..V {
                                row[j] = $fma(av, bv[j], row[j]);
                            }
                        }
                    }
                    for (r, row) in acc.iter().enumerate() {
                        let cp = c.add(r * ldc);
                        for j in 0..V {
                            let p = cp.wrapping_add(j * $lanes);
                            if FULL {
                                $store(p, row[j]);
                            } else {
                                mstore(p, mask[j], row[j]);
                            }
                        }
                    }
                }
            }

            /// Rows `R` of C over all its columns.
            ///
            /// SAFETY: as [`tile`], for `n` columns.
            #[inline]
            #[target_feature(enable = $features)]
            #[allow(clippy::too_many_arguments)]
            unsafe fn strip<const R: usize>(
                (n, k): (usize, usize),
                a: *const f32,
                ars: (usize, usize),
                b: *const f32,
                ldb: usize,
                init: Option<*const f32>,
                c: *mut f32,
                ldc: usize,
            ) {
                unsafe {
                    let mut n0 = 0;
                    while n0 + NR <= n {
                        let i = init.map(|p| p.add(n0));
                        tile::<R, $nv, true>(k, a, ars, b.add(n0), ldb, i, c.add(n0), ldc, NR);
                        n0 += NR;
                    }
                    // The last columns in as few vectors as hold them: a 16-wide tail of a
                    // 48-wide product costs one vector a row, not two.
                    let w = n - n0;
                    if w > 0 {
                        let (i, b, c) = (init.map(|p| p.add(n0)), b.add(n0), c.add(n0));
                        match (w.div_ceil($lanes), w % $lanes == 0) {
                            (1, true) => tile::<R, 1, true>(k, a, ars, b, ldb, i, c, ldc, w),
                            (1, false) => tile::<R, 1, false>(k, a, ars, b, ldb, i, c, ldc, w),
                            _ => tile::<R, $nv, false>(k, a, ars, b, ldb, i, c, ldc, w),
                        }
                    }
                }
            }

            /// SAFETY: the CPU has this module's features; bounds checked by `super::gemm`.
            #[target_feature(enable = $features)]
            #[allow(clippy::too_many_arguments)]
            pub unsafe fn gemm(
                (m, n, k): (usize, usize, usize),
                a: Strided,
                b: &[f32],
                ldb: usize,
                init: Option<&[f32]>,
                c: &mut [f32],
                ldc: usize,
                epilogue: &mut dyn FnMut(usize, &mut [f32]),
            ) {
                let (ap, bp) = (a.a.as_ptr(), b.as_ptr());
                let ip = init.map(|i| i.as_ptr());
                let ars = (a.rs, a.cs);
                let mut m0 = 0;
                while m0 < m {
                    let rows = (m - m0).min(MR);
                    let end = (m0 + rows - 1) * ldc + n;
                    let strip_c = &mut c[m0 * ldc..end];
                    let (a0, c0) = (ap.wrapping_add(m0 * a.rs), strip_c.as_mut_ptr());
                    let nk = (n, k);
                    // Arms past MR are never taken (the strips of the AVX2 family have ≤ 6 rows).
                    unsafe {
                        match rows {
                            1 => strip::<1>(nk, a0, ars, bp, ldb, ip, c0, ldc),
                            2 => strip::<2>(nk, a0, ars, bp, ldb, ip, c0, ldc),
                            3 => strip::<3>(nk, a0, ars, bp, ldb, ip, c0, ldc),
                            4 => strip::<4>(nk, a0, ars, bp, ldb, ip, c0, ldc),
                            5 => strip::<5>(nk, a0, ars, bp, ldb, ip, c0, ldc),
                            6 => strip::<6>(nk, a0, ars, bp, ldb, ip, c0, ldc),
                            7 => strip::<7>(nk, a0, ars, bp, ldb, ip, c0, ldc),
                            8 => strip::<8>(nk, a0, ars, bp, ldb, ip, c0, ldc),
                            9 => strip::<9>(nk, a0, ars, bp, ldb, ip, c0, ldc),
                            10 => strip::<10>(nk, a0, ars, bp, ldb, ip, c0, ldc),
                            11 => strip::<11>(nk, a0, ars, bp, ldb, ip, c0, ldc),
                            12 => strip::<12>(nk, a0, ars, bp, ldb, ip, c0, ldc),
                            _ => unreachable!("strips have 1..={MR} rows"),
                        }
                    }
                    epilogue(m0, strip_c);
                    m0 += rows;
                }
            }
        }
    };
}

microkernel!(
    avx2, "avx2,fma", __m256, 8, 6, 2, __m256i,
    zero: _mm256_setzero_ps, load: _mm256_loadu_ps, store: _mm256_storeu_ps, fma: _mm256_fmadd_ps,
    /// The first `live` (≤ 8) lanes set.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn mask_of(live: usize) -> __m256i {
        const LANES: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
        // SAFETY: lanes 8 − live .. 16 − live of the table (live ≤ 8).
        unsafe { _mm256_loadu_si256(LANES.as_ptr().add(8 - live) as *const __m256i) }
    }
    /// SAFETY: the lanes of `m` are readable at `p`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn mload(p: *const f32, m: __m256i) -> __m256 {
        unsafe { _mm256_maskload_ps(p, m) }
    }
    /// SAFETY: the lanes of `m` are writable at `p`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn mstore(p: *mut f32, m: __m256i, v: __m256) {
        unsafe { _mm256_maskstore_ps(p, m, v) }
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn splat(x: &f32) -> __m256 {
        _mm256_broadcast_ss(x)
    }
    /// The 8 × 8 block at `x` (row stride `ldx`) transposed into `t` (row stride `ldt`).
    ///
    /// SAFETY: 8 rows of 8 floats readable at `x`, writable at `t`, with those strides.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn transpose8(x: *const f32, ldx: usize, t: *mut f32, ldt: usize) {
        unsafe {
            let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(x.add(i * ldx)));
            let lo = |a, b| _mm256_unpacklo_ps(a, b);
            let hi = |a, b| _mm256_unpackhi_ps(a, b);
            let u = [
                lo(r[0], r[1]), hi(r[0], r[1]), lo(r[2], r[3]), hi(r[2], r[3]),
                lo(r[4], r[5]), hi(r[4], r[5]), lo(r[6], r[7]), hi(r[6], r[7]),
            ];
            let v = [
                _mm256_shuffle_ps::<0x44>(u[0], u[2]),
                _mm256_shuffle_ps::<0xEE>(u[0], u[2]),
                _mm256_shuffle_ps::<0x44>(u[1], u[3]),
                _mm256_shuffle_ps::<0xEE>(u[1], u[3]),
                _mm256_shuffle_ps::<0x44>(u[4], u[6]),
                _mm256_shuffle_ps::<0xEE>(u[4], u[6]),
                _mm256_shuffle_ps::<0x44>(u[5], u[7]),
                _mm256_shuffle_ps::<0xEE>(u[5], u[7]),
            ];
            for j in 0..4 {
                _mm256_storeu_ps(t.add(j * ldt), _mm256_permute2f128_ps::<0x20>(v[j], v[j + 4]));
                _mm256_storeu_ps(t.add((j + 4) * ldt), _mm256_permute2f128_ps::<0x31>(v[j], v[j + 4]));
            }
        }
    }
);

microkernel!(
    avx512, "avx512f,avx2,fma", __m512, 16, 12, 2, __mmask16,
    zero: _mm512_setzero_ps, load: _mm512_loadu_ps, store: _mm512_storeu_ps, fma: _mm512_fmadd_ps,
    /// The first `live` (≤ 16) lanes set.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn mask_of(live: usize) -> __mmask16 {
        ((1u32 << live) - 1) as __mmask16
    }
    /// SAFETY: the lanes of `m` are readable at `p`.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn mload(p: *const f32, m: __mmask16) -> __m512 {
        unsafe { _mm512_maskz_loadu_ps(m, p) }
    }
    /// SAFETY: the lanes of `m` are writable at `p`.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn mstore(p: *mut f32, m: __mmask16, v: __m512) {
        unsafe { _mm512_mask_storeu_ps(p, m, v) }
    }
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn splat(x: &f32) -> __m512 {
        _mm512_set1_ps(*x)
    }
);

/// `t[j, i] = x[i, j]` for x (rows, cols) row-major: the forward pass's Wᵀ, each step. Blocks of
/// 8 × 8 go through eight AVX2 registers (24 shuffles); the edges, element by element.
pub fn transpose(isa: Isa, x: &[f32], rows: usize, cols: usize, t: &mut [f32]) {
    assert!(
        x.len() >= rows * cols && t.len() >= rows * cols,
        "transpose: operand too short"
    );
    let (r8, c8) = (rows / 8 * 8, cols / 8 * 8);
    #[cfg(target_arch = "x86_64")]
    if supported(isa) != Isa::Sgemm {
        for i in (0..r8).step_by(8) {
            for j in (0..c8).step_by(8) {
                // SAFETY: AVX2 checked by `supported`; rows i..i+8 × cols j..j+8 lie inside x
                // and cols × rows likewise inside t (asserted above).
                unsafe {
                    avx2::transpose8(
                        x.as_ptr().add(i * cols + j),
                        cols,
                        t.as_mut_ptr().add(j * rows + i),
                        rows,
                    )
                }
            }
        }
        // The edges: columns c8.. of the blocked rows, then the rows r8...
        for i in 0..r8 {
            for j in c8..cols {
                t[j * rows + i] = x[i * cols + j];
            }
        }
        for i in r8..rows {
            for j in 0..cols {
                t[j * rows + i] = x[i * cols + j];
            }
        }
        return;
    }
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = x[i * cols + j];
        }
    }
}

/// Multiply-adds the FMA loop of [`fma_peak_gflops`] keeps in flight: enough independent chains
/// to cover the latency of two FMA units (4 cycles × 2 ports × a margin).
const PEAK_CHAINS: usize = 16;

/// This core's FMA throughput in GFLOP/s with `isa`'s vectors, measured: independent FMA chains
/// for about 20 ms (2 FLOP per lane per FMA). `None` for the sgemm fallback (no vector FMA
/// known to run). What `fastfc bench --device cpu` compares an epoch against.
pub fn fma_peak_gflops(isa: Isa) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        #[target_feature(enable = "avx2,fma")]
        fn avx2(iters: usize) -> f32 {
            let mut acc = [_mm256_set1_ps(1.0); PEAK_CHAINS];
            let (m, c) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = _mm256_fmadd_ps(*a, m, c);
                }
            }
            let mut out = [0f32; 8];
            let sum = acc
                .iter()
                .fold(_mm256_setzero_ps(), |s, &a| _mm256_add_ps(s, a));
            // SAFETY: 8 floats of `out`.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
            out.iter().sum()
        }
        #[target_feature(enable = "avx512f,avx2,fma")]
        fn avx512(iters: usize) -> f32 {
            let mut acc = [_mm512_set1_ps(1.0); PEAK_CHAINS];
            let (m, c) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = _mm512_fmadd_ps(*a, m, c);
                }
            }
            let sum = acc
                .iter()
                .fold(_mm512_setzero_ps(), |s, &a| _mm512_add_ps(s, a));
            _mm512_reduce_add_ps(sum)
        }
        let (run, lanes): (fn(usize) -> f32, usize) = match supported(isa) {
            // SAFETY (both): the CPU has the features (`Isa::detect`).
            Isa::Avx512 => (|n| unsafe { avx512(n) }, 16),
            Isa::Avx2 => (|n| unsafe { avx2(n) }, 8),
            Isa::Sgemm => return None,
        };
        std::hint::black_box(run(10_000)); // warm-up (clock up, code in cache)
        let timed = |iters: usize| {
            let t = std::time::Instant::now();
            std::hint::black_box(run(std::hint::black_box(iters)));
            t.elapsed().as_secs_f64()
        };
        // Each run sizes the next to about 20 ms (every search measures it) until one lasts 10 ms
        // or more: a run sized too short by a probe that was preempted is sized again.
        let mut iters = 100_000;
        loop {
            let s = timed(iters);
            if s >= 0.01 || iters >= 1 << 30 {
                return Some((iters * PEAK_CHAINS * lanes * 2) as f64 / s / 1e9);
            }
            iters = ((iters as f64 * 0.02 / s.max(1e-6)) as usize).clamp(iters + 1, 1 << 30);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        None
    }
}
