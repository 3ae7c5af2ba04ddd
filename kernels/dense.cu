// dense.cu: the fully-connected layer over a cohort, W (out, in) row-major as nn.Linear stores it.
// CPU twin: src/backend/cpu/dense.rs (tests/kernels/dense.rs). Each block computes a 16×16 output
// tile of one trial (grid.z = trial) from 16-wide tiles of both operands staged in shared memory
// (rows padded to 17 floats so the transposed reads are free of bank conflicts). Trial k's weights
// are at params + slots[k].param_off + w_off, its bias at ... + b_off; activations are (trials,
// rows, width) row-major, except the network input, which every trial shares (x_tstride = 0).
#include "activation.cuh"

// ---- forward: z = x·Wᵀ + b, and with mode 1 + l also y = f(z) (the trial's activation) for
// hidden layer l: units at or beyond the trial's true width of layer l (padding) get y = 0, since
// sigmoid and softplus do not map their z = 0 to 0 ----
// grid: (ceil(n_out/16), ceil(rows/16), trials), block (16, 16). With skip_inactive, trials whose
// slot is inactive are skipped (training); evaluation passes 0.
extern "C" __global__ void dense_fwd(const FfcSlot* __restrict__ slots, unsigned w_off, unsigned b_off,
                                     int rows, int n_in, int n_out, const float* __restrict__ x,
                                     unsigned x_tstride, const float* __restrict__ params,
                                     float* __restrict__ z, float* __restrict__ y, int mode,
                                     int skip_inactive) {
    const FfcSlot& s = slots[blockIdx.z];
    if (skip_inactive && !s.active) return;  // uniform over the block: no barrier is split
    __shared__ float xs[FFC_TILE][FFC_TILE + 1];
    __shared__ float ws[FFC_TILE][FFC_TILE + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int r0 = blockIdx.y * FFC_TILE, o0 = blockIdx.x * FFC_TILE;
    const float* xk = x + (size_t)blockIdx.z * x_tstride;
    const float* w = params + s.param_off + w_off;
    float acc = 0.0f;
    for (int k0 = 0; k0 < n_in; k0 += FFC_TILE) {
        const int k = k0 + tx;
        xs[ty][tx] = (r0 + ty < rows && k < n_in) ? xk[(size_t)(r0 + ty) * n_in + k] : 0.0f;
        ws[ty][tx] = (o0 + ty < n_out && k < n_in) ? w[(size_t)(o0 + ty) * n_in + k] : 0.0f;
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < FFC_TILE; kk++) acc += xs[ty][kk] * ws[tx][kk];
        __syncthreads();
    }
    const int r = r0 + ty, o = o0 + tx;
    if (r < rows && o < n_out) {
        const float v = acc + params[s.param_off + b_off + o];
        const size_t at = ((size_t)blockIdx.z * rows + r) * n_out + o;
        z[at] = v;
        if (mode) y[at] = (unsigned)o < s.hidden[mode - 1] ? ffc_act(s.act, v) : 0.0f;
    }
}

// ---- backward for the data: dx = (dy·W) [⊙ mask] [⊙ f'(z)] ----
// dy (trials, rows, n_out); dx, mask, z, y (trials, rows, n_in). `mask` (the previous layer's
// dropout mask) may be null; with mode 1 + l the result goes back through the activation of hidden
// layer l, the previous one (z and y are its pre- and post-activation), and is 0 on its padded
// units. Inactive trials are skipped.
// grid: (ceil(n_in/16), ceil(rows/16), trials), block (16, 16).
extern "C" __global__ void dense_bwd_x(const FfcSlot* __restrict__ slots, unsigned w_off, int rows, int n_in,
                                       int n_out, const float* __restrict__ dy,
                                       const float* __restrict__ params, const float* __restrict__ mask,
                                       const float* __restrict__ z, const float* __restrict__ y,
                                       float* __restrict__ dx, int mode) {
    const FfcSlot& s = slots[blockIdx.z];
    if (!s.active) return;
    __shared__ float gs[FFC_TILE][FFC_TILE + 1];
    __shared__ float ws[FFC_TILE][FFC_TILE + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int r0 = blockIdx.y * FFC_TILE, i0 = blockIdx.x * FFC_TILE;
    const float* dyk = dy + (size_t)blockIdx.z * rows * n_out;
    const float* w = params + s.param_off + w_off;
    float acc = 0.0f;
    for (int o0 = 0; o0 < n_out; o0 += FFC_TILE) {
        gs[ty][tx] = (r0 + ty < rows && o0 + tx < n_out) ? dyk[(size_t)(r0 + ty) * n_out + o0 + tx] : 0.0f;
        ws[ty][tx] = (o0 + ty < n_out && i0 + tx < n_in) ? w[(size_t)(o0 + ty) * n_in + i0 + tx] : 0.0f;
        __syncthreads();
#pragma unroll
        for (int oo = 0; oo < FFC_TILE; oo++) acc += gs[ty][oo] * ws[oo][tx];
        __syncthreads();
    }
    const int r = r0 + ty, i = i0 + tx;
    if (r < rows && i < n_in) {
        const size_t at = ((size_t)blockIdx.z * rows + r) * n_in + i;
        float g = acc;
        if (mask) g *= mask[at];
        if (mode) g = (unsigned)i < s.hidden[mode - 1] ? g * ffc_dact(s.act, z[at], y[at]) : 0.0f;
        dx[at] = g;
    }
}

// ---- backward for the weights: dW = dyᵀ·x, db = Σ_rows dy (overwrites the trial's gradients) ----
// dy (trials, rows, n_out); x as in dense_fwd; grads shares the params layout (param_off, w_off,
// b_off). Inactive trials are skipped. grid: (ceil(n_in/16), ceil(n_out/16), trials), block (16, 16);
// the blocks with blockIdx.x == 0 also produce the bias gradient of their 16 outputs.
extern "C" __global__ void dense_bwd_w(const FfcSlot* __restrict__ slots, unsigned w_off, unsigned b_off,
                                       int rows, int n_in, int n_out, const float* __restrict__ dy,
                                       const float* __restrict__ x, unsigned x_tstride,
                                       float* __restrict__ grads) {
    const FfcSlot& s = slots[blockIdx.z];
    if (!s.active) return;
    __shared__ float gs[FFC_TILE][FFC_TILE + 1];  // gs[row][out]
    __shared__ float xs[FFC_TILE][FFC_TILE + 1];  // xs[row][in]
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int i0 = blockIdx.x * FFC_TILE, o0 = blockIdx.y * FFC_TILE;
    const float* dyk = dy + (size_t)blockIdx.z * rows * n_out;
    const float* xk = x + (size_t)blockIdx.z * x_tstride;
    float acc = 0.0f, acc_b = 0.0f;
    for (int r0 = 0; r0 < rows; r0 += FFC_TILE) {
        const bool row_ok = r0 + ty < rows;
        gs[ty][tx] = (row_ok && o0 + tx < n_out) ? dyk[(size_t)(r0 + ty) * n_out + o0 + tx] : 0.0f;
        xs[ty][tx] = (row_ok && i0 + tx < n_in) ? xk[(size_t)(r0 + ty) * n_in + i0 + tx] : 0.0f;
        __syncthreads();
#pragma unroll
        for (int rr = 0; rr < FFC_TILE; rr++) acc += gs[rr][ty] * xs[rr][tx];
        if (blockIdx.x == 0 && tx == 0) {
#pragma unroll
            for (int rr = 0; rr < FFC_TILE; rr++) acc_b += gs[rr][ty];
        }
        __syncthreads();
    }
    const int o = o0 + ty, i = i0 + tx;
    float* g = grads + s.param_off;
    if (o < n_out && i < n_in) g[w_off + (size_t)o * n_in + i] = acc;
    if (blockIdx.x == 0 && tx == 0 && o < n_out) g[b_off + o] = acc_b;
}
