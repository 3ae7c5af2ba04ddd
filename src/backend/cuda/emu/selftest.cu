// selftest.cu: kernels that test the emulator itself (tests/kernels/emulator.rs), compiled only
// into the emulated build. Some are correct and must pass under every fiber order; others carry a
// deliberate bug that the emulator must diagnose.

// Block sum with warp shuffles and shared memory: out[blockIdx.x] = Σ x over the block's slice.
extern "C" __global__ void emu_selftest_reduce(const float* x, int n, float* out) {
    __shared__ float part[32];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    float v = i < n ? x[i] : 0.0f;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.0f;
        for (unsigned w = 0; w < blockDim.x / 32; w++) s += part[w];
        out[blockIdx.x] = s;
    }
}

// Every thread adds 1 to a counter and its index to a float sum.
extern "C" __global__ void emu_selftest_atomics(unsigned* counter, float* sum, unsigned* maxv) {
    atomicAdd(counter, 1u);
    atomicAdd(sum, (float)threadIdx.x);
    atomicMax(maxv, threadIdx.x * 7u % 101u);
}

// out[warp] = ballot of odd lanes; out2[lane] = value of lane (lane + 3) % 32 (shfl) per warp.
extern "C" __global__ void emu_selftest_ballot(unsigned* out, int* out2) {
    const unsigned lane = threadIdx.x & 31;
    const unsigned b = __ballot_sync(0xffffffffu, lane & 1u);
    if (lane == 0) out[threadIdx.x >> 5] = b;
    out2[threadIdx.x] = __shfl_sync(0xffffffffu, (int)threadIdx.x, (int)((lane + 3) & 31));
}

// BUG: threads of the upper half return before the barrier the others wait at.
extern "C" __global__ void emu_selftest_early_return(float* out) {
    __shared__ float s[64];
    if (threadIdx.x >= blockDim.x / 2) return;
    s[threadIdx.x] = (float)threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = s[(threadIdx.x + 1) % (blockDim.x / 2)];
}

// BUG: even and odd threads wait at different barriers.
extern "C" __global__ void emu_selftest_divergent(float* out) {
    if (threadIdx.x & 1) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1.0f;
}

// BUG: reads a neighbour's shared value without a barrier between the write and the read.
// With `sync` set the barrier is there and the result is right under every order.
extern "C" __global__ void emu_selftest_race(const float* in, float* out, int sync) {
    __shared__ float s[256];
    s[threadIdx.x] = in[threadIdx.x];
    if (sync) __syncthreads();
    out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

// sizeof and offsetof of the slot table and stats structs, for the #[repr(C)] twins' test.
#include "common.cuh"
#include <cstddef>
extern "C" __global__ void emu_selftest_layout(unsigned* out) {
    const unsigned v[] = {
        (unsigned)sizeof(FfcSlot),          (unsigned)offsetof(FfcSlot, b1),
        (unsigned)offsetof(FfcSlot, b2),     (unsigned)offsetof(FfcSlot, rate_a),
        (unsigned)offsetof(FfcSlot, rate_b), (unsigned)offsetof(FfcSlot, lr),
        (unsigned)offsetof(FfcSlot, dropout), (unsigned)offsetof(FfcSlot, eps),
        (unsigned)offsetof(FfcSlot, c1),     (unsigned)offsetof(FfcSlot, c2),
        (unsigned)offsetof(FfcSlot, b1f),    (unsigned)offsetof(FfcSlot, b2f),
        (unsigned)offsetof(FfcSlot, momentum), (unsigned)offsetof(FfcSlot, wd),
        (unsigned)offsetof(FfcSlot, param_off), (unsigned)offsetof(FfcSlot, act),
        (unsigned)offsetof(FfcSlot, opt),    (unsigned)offsetof(FfcSlot, seed),
        (unsigned)offsetof(FfcSlot, active), (unsigned)offsetof(FfcSlot, step0),
        (unsigned)offsetof(FfcSlot, hidden), (unsigned)offsetof(FfcSlot, sched),
        (unsigned)offsetof(FfcSlot, nesterov), (unsigned)offsetof(FfcSlot, reserved),
        (unsigned)sizeof(FfcStats),         (unsigned)offsetof(FfcStats, loss_sum),
        (unsigned)offsetof(FfcStats, correct), (unsigned)offsetof(FfcStats, rows),
        (unsigned)offsetof(FfcStats, diverged), (unsigned)offsetof(FfcStats, reserved),
        (unsigned)sizeof(FfcRate),          (unsigned)offsetof(FfcRate, alpha),
    };
    for (unsigned i = threadIdx.x; i < sizeof v / sizeof v[0]; i += blockDim.x) out[i] = v[i];
}

// Dynamic shared memory (the launch's size, NaN-filled by the emulator before each block):
// before[i] = what slot i held before this block wrote it, after[i] = the neighbour's value
// written by another thread, for n floats per block.
extern "C" __global__ void emu_selftest_dynamic(float* before, float* after, int n) {
    FFC_DYNAMIC_SHARED(float, s);
    for (int i = threadIdx.x; i < n; i += blockDim.x) before[blockIdx.x * n + i] = s[i];
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) s[i] = (float)(blockIdx.x * 1000 + i);
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) after[blockIdx.x * n + i] = s[(i + 1) % n];
}

// The barrier votes: out[0] = __syncthreads_or(thread k only), out[1] = __syncthreads_and(all but
// thread k), out[2] = __syncthreads_and(every thread), out[3] = __syncthreads_count(odd threads),
// out[4] = __syncthreads_or(no thread).
extern "C" __global__ void emu_selftest_votes(int* out, int k) {
    const int t = (int)threadIdx.x;
    const int a = __syncthreads_or(t == k);
    const int b = __syncthreads_and(t != k);
    const int c = __syncthreads_and(1);
    const int d = __syncthreads_count(t & 1);
    const int e = __syncthreads_or(0);
    if (t == 0) {
        out[0] = a;
        out[1] = b;
        out[2] = c;
        out[3] = d;
        out[4] = e;
    }
}
