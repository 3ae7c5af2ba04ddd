// adam.cu: one Adam step over a cohort's whole parameter arena, as Keras 3 computes it:
// α = lr·√(1 − β2ᵗ)/(1 − β1ᵗ) (in f64); m += (g − m)(1 − β1); v += (g² − v)(1 − β2);
// p −= α·m/(√v + ε). CPU twin: src/backend/cpu/adam.rs (tests/kernels/adam.rs).
// Trials that use Lion or are inactive are skipped (lion.cu covers the former).
#include "common.cuh"

// grid: (ceil(n / blockDim.x), trials); n = parameters per trial; trial k's parameters, gradients
// and moments start at slots[k].param_off. t = step0 + step + 1 (1-based).
extern "C" __global__ void adam(const FfcSlot* __restrict__ slots, int n, unsigned step,
                                float* __restrict__ params, const float* __restrict__ grads,
                                float* __restrict__ m, float* __restrict__ v) {
    const FfcSlot& s = slots[blockIdx.y];
    if (!s.active || s.opt != 0) return;  // uniform over the block
    __shared__ float alpha;
    if (threadIdx.x == 0) {
        const double t = (double)(s.step0 + step + 1u);
        alpha = (float)((double)s.lr * sqrt(1.0 - pow(s.b2, t)) / (1.0 - pow(s.b1, t)));
    }
    __syncthreads();
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const size_t at = (size_t)s.param_off + i;
    const float g = grads[at];
    float mi = m[at], vi = v[at];
    mi += (g - mi) * s.c1;
    vi += (g * g - vi) * s.c2;
    m[at] = mi;
    v[at] = vi;
    params[at] -= alpha * mi / (sqrtf(vi) + s.eps);
}
