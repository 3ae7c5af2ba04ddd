/* Throughput of the x86 divider for f32 vectors: vdivps and vsqrtps on 512-bit (zmm) and 256-bit
 * (ymm) registers, 8 independent chains each, values kept normal. What BENCHMARKS.md (issue #27)
 * quotes for Adam's one division and one square root per parameter per step. Then whether the
 * divider works beside the FMA units: 16 independent zmm FMAs per iteration, one vsqrtps and one
 * vdivps per iteration, and both in one loop (if they shared a unit, the last would take the sum
 * of the first two).
 * Run: cc -O3 -funroll-loops -mavx512f -mavx2 -mfma -o /tmp/divider benches/divider.c && /tmp/divider
 * Prints ns per instruction (per iteration for the last three); cycles = ns × the clock in GHz. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
    const long n = 100000000; /* instructions per measurement */
    __m512 a[8], one5 = _mm512_set1_ps(1.0001f);
    __m256 c[8], one2 = _mm256_set1_ps(1.0001f);
    for (int i = 0; i < 8; i++) {
        a[i] = _mm512_set1_ps(1 + i);
        c[i] = _mm256_set1_ps(1 + i);
    }
    double t = now();
    /* x → 1.0001 / x oscillates between two normal values: no subnormal slow path. */
    for (long i = 0; i < n / 8; i++)
        for (int j = 0; j < 8; j++) a[j] = _mm512_div_ps(one5, a[j]);
    double div5 = now() - t;
    t = now();
    for (long i = 0; i < n / 8; i++)
        for (int j = 0; j < 8; j++) c[j] = _mm256_div_ps(one2, c[j]);
    double div2 = now() - t;
    t = now();
    /* √x converges to 1: normal throughout. */
    for (long i = 0; i < n / 8; i++)
        for (int j = 0; j < 8; j++) a[j] = _mm512_sqrt_ps(a[j]);
    double sqrt5 = now() - t;
    t = now();
    for (long i = 0; i < n / 8; i++)
        for (int j = 0; j < 8; j++) c[j] = _mm256_sqrt_ps(c[j]);
    double sqrt2 = now() - t;
    /* The divider beside the FMA units. */
    const long m = n / 5;
    __m512 f[16], x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(0.001f);
    for (int i = 0; i < 16; i++) f[i] = _mm512_set1_ps(i);
    t = now();
    for (long i = 0; i < m; i++)
        for (int j = 0; j < 16; j++) f[j] = _mm512_fmadd_ps(f[j], x, y);
    double fma16 = now() - t;
    t = now();
    for (long i = 0; i < m; i++) {
        a[i & 7] = _mm512_sqrt_ps(a[i & 7]);
        a[(i + 4) & 7] = _mm512_div_ps(one5, a[(i + 4) & 7]);
    }
    double divsqrt = now() - t;
    t = now();
    for (long i = 0; i < m; i++) {
        a[i & 7] = _mm512_sqrt_ps(a[i & 7]);
        a[(i + 4) & 7] = _mm512_div_ps(one5, a[(i + 4) & 7]);
        for (int j = 0; j < 16; j++) f[j] = _mm512_fmadd_ps(f[j], x, y);
    }
    double both = now() - t;
    float sink = 0, lane[8];
    for (int i = 0; i < 16; i++) sink += _mm512_reduce_add_ps(f[i]);
    for (int i = 0; i < 8; i++) {
        sink += _mm512_reduce_add_ps(a[i]);
        _mm256_storeu_ps(lane, c[i]);
        sink += lane[0];
    }
    printf("vdivps  zmm %.2f ns (%.1f floats/ns), ymm %.2f ns (%.1f floats/ns)\n", div5 / n * 1e9,
           16 * n / div5 * 1e-9, div2 / n * 1e9, 8 * n / div2 * 1e-9);
    printf("vsqrtps zmm %.2f ns (%.1f floats/ns), ymm %.2f ns (%.1f floats/ns)\n", sqrt5 / n * 1e9,
           16 * n / sqrt5 * 1e-9, sqrt2 / n * 1e9, 8 * n / sqrt2 * 1e-9);
    printf("16 FMAs %.2f ns, vsqrtps + vdivps %.2f ns, all in one loop %.2f ns (per iteration, zmm)\n",
           fma16 / m * 1e9, divsqrt / m * 1e9, both / m * 1e9);
    return sink == 12345.0f; /* keeps the loops */
}
