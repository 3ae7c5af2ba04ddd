// batch.cu: assembling a mini-batch on the device. The training split stays resident; each epoch
// uploads its order once, and every step gathers its rows from it. CPU twin: the gather in
// src/backend/cpu/mod.rs (Workspace::gather); tests/kernels/batch.rs.
#include "common.cuh"

// dst_x[r, :] = src_x[idx[r], :], dst_y[r] = src_y[idx[r]] for r < rows.
// grid: ceil(rows*dim / blockDim.x); one batch shared by every trial of the cohort.
extern "C" __global__ void batch_gather(const unsigned* __restrict__ idx, int rows, int dim,
                                        const float* __restrict__ src_x,
                                        const unsigned* __restrict__ src_y,
                                        float* __restrict__ dst_x, unsigned* __restrict__ dst_y) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= rows * dim) return;
    const int r = i / dim, c = i % dim;
    const unsigned src = idx[r];
    dst_x[i] = src_x[(size_t)src * dim + c];
    if (c == 0) dst_y[r] = src_y[src];
}
