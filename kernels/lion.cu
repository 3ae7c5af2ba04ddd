// lion.cu: one Lion step (Chen et al., 2023) over a cohort's whole parameter arena, as Keras 3
// computes it: p −= lr·sign(β1·m + (1 − β1)·g); m = β2·m + (1 − β2)·g. sign(0) = 0, so padded
// (zero) parameters stay zero. CPU twin: src/backend/cpu/lion.rs (tests/kernels/lion.rs).
// Trials that use Adam or are inactive are skipped.
#include "common.cuh"

// grid: (ceil(n / blockDim.x), trials); n = parameters per trial, at slots[k].param_off.
extern "C" __global__ void lion(const FfcSlot* __restrict__ slots, int n, float* __restrict__ params,
                                const float* __restrict__ grads, float* __restrict__ m) {
    const FfcSlot& s = slots[blockIdx.y];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (!s.active || s.opt != 1 || i >= n) return;
    const size_t at = (size_t)s.param_off + i;
    const float g = grads[at], mi = m[at];
    const float c = s.b1f * mi + s.c1 * g;
    const float sgn = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : 0.0f);
    params[at] -= s.lr * sgn;
    m[at] = s.b2f * mi + s.c2 * g;
}
