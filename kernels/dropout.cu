// dropout.cu: inverted dropout over a cohort. CPU twin: src/backend/cpu/dropout.rs
// (tests/kernels/dropout.rs). Unit u of row r in layer l at optimizer step t of trial k is kept when
// ffc_unit(hash5(seed_k, t, l, r, u)) >= rate_k; kept units are scaled by 1/(1 - rate_k).
// seed_k, rate_k and t = step0_k + step come from the slot table. Keyed on (row, unit), not on the
// padded index, so padding a cohort to its widest layer does not change any trial's mask.
#include "common.cuh"

// ---- forward ----
// grid: (ceil(rows*width / blockDim.x), trials); x, mask, y: (trials, rows, width) row-major.
// Trials with `active == 0` are skipped (their buffers are left as they were).
extern "C" __global__ void dropout_fwd(const FfcSlot* __restrict__ slots, unsigned step, unsigned layer,
                                       int rows, int width, const float* __restrict__ x,
                                       float* __restrict__ mask, float* __restrict__ y) {
    const FfcSlot& s = slots[blockIdx.y];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (!s.active || i >= rows * width) return;
    const size_t at = (size_t)blockIdx.y * rows * width + i;
    const float p = s.dropout;
    float m = 1.0f;
    if (p > 0.0f) {
        const unsigned r = i / width, u = i % width;
        const unsigned h = ffc_hash5(s.seed, s.step0 + step, layer, r, u);
        m = ffc_unit(h) >= p ? 1.0f / (1.0f - p) : 0.0f;
    }
    mask[at] = m;
    y[at] = x[at] * m;
}

// ---- backward ----
// dx = dy ⊙ mask (the mask saved by dropout_fwd). grid as dropout_fwd. (dense_bwd_x fuses this.)
extern "C" __global__ void dropout_bwd(const FfcSlot* __restrict__ slots, int rows, int width,
                                       const float* __restrict__ dy, const float* __restrict__ mask,
                                       float* __restrict__ dx) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (!slots[blockIdx.y].active || i >= rows * width) return;
    const size_t at = (size_t)blockIdx.y * rows * width + i;
    dx[at] = dy[at] * mask[at];
}

// ---- the hash itself, for the shared test vectors (tests/kernels/dropout.rs) ----
// keys: (n, 5) = (seed, step, layer, row, unit); out[i] = ffc_hash5(keys[i]). grid: ceil(n/blockDim.x).
extern "C" __global__ void dropout_hash(const unsigned* __restrict__ keys, int n, unsigned* __restrict__ out) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const unsigned* k = keys + 5 * (size_t)i;
    out[i] = ffc_hash5(k[0], k[1], k[2], k[3], k[4]);
}
