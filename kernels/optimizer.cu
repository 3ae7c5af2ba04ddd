// optimizer.cu: the per-op path's optimizer step over a cohort's whole parameter arena, every trial
// with its own optimizer (slots[k].opt) and schedule; the rules are optimizer.cuh's, which the
// fused kernel shares. `rates` fills the epoch's table of per-trial, per-step rates at its start,
// so no block of the hot loop evaluates f64 `pow` or `cos`.
#include "optimizer.cuh"

// table[k·steps + i] = the rates at iteration step0 + i of trial k, for the `steps` steps of an
// epoch. grid: (ceil(steps / blockDim.x), trials).
extern "C" __global__ void rates(const FfcSlot* __restrict__ slots, int steps, FfcRate* __restrict__ table) {
    const FfcSlot& s = slots[blockIdx.y];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= steps) return;
    table[(size_t)blockIdx.y * steps + i] = ffc_rate(s, s.step0 + (unsigned)i, steps);
}

// grid: (ceil(n / blockDim.x), trials); n = parameters per trial; trial k's parameters, gradients
// and buffers start at slots[k].param_off; `step` indexes the epoch's rate table. Inactive trials
// are skipped. v may be null when no trial of the cohort has a second buffer.
extern "C" __global__ void optimize(const FfcSlot* __restrict__ slots, int n, unsigned step,
                                    const FfcRate* __restrict__ table, int steps, float* __restrict__ params,
                                    const float* __restrict__ grads, float* __restrict__ m, float* __restrict__ v) {
    const FfcSlot& s = slots[blockIdx.y];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (!s.active || i >= n) return;
    const FfcRate r = table[(size_t)blockIdx.y * steps + step];
    const size_t at = (size_t)s.param_off + i;
    float scratch = 0.0f;
    ffc_update(s, r, grads[at], params + at, m + at, v ? v + at : &scratch);
}
