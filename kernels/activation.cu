// activation.cu: y = f(z) and dz = dy·f'(z) over a cohort, each trial with its own activation
// (slots[trial].act). The dense kernels fuse the same functions (activation.cuh) into their
// epilogues; these standalone kernels serve where no dense kernel precedes or follows.
// CPU twin: src/backend/cpu/activation.rs (tests/kernels/activation.rs).
#include "activation.cuh"

// grid: (ceil(n / blockDim.x), trials); z, y: (trials, n).
extern "C" __global__ void activation_fwd(const FfcSlot* __restrict__ slots, int n,
                                          const float* __restrict__ z, float* __restrict__ y) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const size_t at = (size_t)blockIdx.y * n + i;
    y[at] = ffc_act(slots[blockIdx.y].act, z[at]);
}

// grid as activation_fwd; dz = dy·f'(z), with y = f(z) from the forward pass.
extern "C" __global__ void activation_bwd(const FfcSlot* __restrict__ slots, int n,
                                          const float* __restrict__ z, const float* __restrict__ y,
                                          const float* __restrict__ dy, float* __restrict__ dz) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const size_t at = (size_t)blockIdx.y * n + i;
    dz[at] = dy[at] * ffc_dact(slots[blockIdx.y].act, z[at], y[at]);
}
