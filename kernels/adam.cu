// adam.cu: one Adam step over a cohort's whole parameter arena, as Keras 3 computes it:
// α = lr·√(1 − β2ᵗ)/(1 − β1ᵗ) (in f64); m += (g − m)(1 − β1); v += (g² − v)(1 − β2);
// p −= α·m/(√v + ε). CPU twin: src/backend/cpu/adam.rs (tests/kernels/adam.rs).
// Trials that use Lion or are inactive are skipped (lion.cu covers the former). α comes from a
// table adam_alpha fills once per epoch, so no block of the hot loop evaluates f64 `pow`.
#include "common.cuh"

// alpha[k·steps + s] = α at step t = step0 + s + 1 of trial k, for the `steps` steps of an epoch.
// grid: (ceil(steps / blockDim.x), trials).
extern "C" __global__ void adam_alpha(const FfcSlot* __restrict__ slots, int steps, float* __restrict__ alpha) {
    const FfcSlot& s = slots[blockIdx.y];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= steps || s.opt != 0) return;
    alpha[(size_t)blockIdx.y * steps + i] = ffc_adam_alpha(s, s.step0 + (unsigned)i + 1u);
}

// grid: (ceil(n / blockDim.x), trials); n = parameters per trial; trial k's parameters, gradients
// and moments start at slots[k].param_off. α = alpha[k·steps + step] (adam_alpha's table).
extern "C" __global__ void adam(const FfcSlot* __restrict__ slots, int n, unsigned step,
                                const float* __restrict__ alpha_table, int steps,
                                float* __restrict__ params, const float* __restrict__ grads,
                                float* __restrict__ m, float* __restrict__ v) {
    const FfcSlot& s = slots[blockIdx.y];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (!s.active || s.opt != 0 || i >= n) return;
    const float alpha = alpha_table[(size_t)blockIdx.y * steps + step];
    const size_t at = (size_t)s.param_off + i;
    const float g = grads[at];
    float mi = m[at], vi = v[at];
    mi += (g - mi) * s.c1;
    vi += (g * g - vi) * s.c2;
    m[at] = mi;
    v[at] = vi;
    params[at] -= alpha * mi / (sqrtf(vi) + s.eps);
}
