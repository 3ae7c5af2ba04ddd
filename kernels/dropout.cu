// dropout.cu: inverted dropout over a cohort. CPU twin: src/backend/cpu/dropout.rs
// (tests/ops/dropout.rs). Unit u of row r in layer l at step t of trial k is kept when
// ffc_unit(hash5(seed[k], t, l, r, u)) >= rate[k]; kept units are scaled by 1/(1 - rate[k]).
// Keyed on (row, unit), not on the padded index, so padding a cohort to its widest layer does not
// change any trial's mask.
#include "common.cuh"

// ---- forward ----
// grid: (ceil(rows*width / blockDim.x), trials); x, mask, y: (trials, rows, width) row-major.
extern "C" __global__ void dropout_fwd(const unsigned* __restrict__ seed,  // (trials,)
                                       const float* __restrict__ rate,     // (trials,)
                                       unsigned step, unsigned layer, int rows, int width,
                                       const float* __restrict__ x, float* __restrict__ mask,
                                       float* __restrict__ y) {
    const int k = blockIdx.y;
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * width) return;
    const size_t at = (size_t)k * rows * width + i;
    const float p = rate[k];
    float m = 1.0f;
    if (p > 0.0f) {
        const unsigned r = i / width, u = i % width;
        const unsigned h = ffc_hash5(seed[k], step, layer, r, u);
        m = ffc_unit(h) >= p ? 1.0f / (1.0f - p) : 0.0f;
    }
    mask[at] = m;
    y[at] = x[at] * m;
}

// ---- backward ----
// dx = dy ⊙ mask (the mask saved by dropout_fwd). grid as dropout_fwd.
extern "C" __global__ void dropout_bwd(int rows, int width, const float* __restrict__ dy,
                                       const float* __restrict__ mask, float* __restrict__ dx) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * width) return;
    const size_t at = (size_t)blockIdx.y * rows * width + i;
    dx[at] = dy[at] * mask[at];
}
