// common.cuh: what every fastfc kernel shares. Twin of src/rng.rs: the stateless hash that draws
// dropout masks must stay bit-identical to the CPU's (test vectors in tests/ops/dropout.rs).
#pragma once

#ifndef FFC_HD
#define FFC_HD __host__ __device__ __forceinline__
#endif

// One round of a 32-bit integer finaliser (xor-shift-multiply, Wellons' "lowbias32" constants).
FFC_HD unsigned ffc_mix32(unsigned x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

// hash5(seed, a, b, c, d) split as in src/rng.rs so loops can hoist the per-step/per-row parts.
FFC_HD unsigned ffc_hash_prefix(unsigned seed, unsigned a, unsigned b) {
    unsigned h = ffc_mix32(seed ^ 0x9e3779b9u);
    h = ffc_mix32(h ^ a);
    return ffc_mix32((h + 0x85ebca6bu) ^ b);
}
FFC_HD unsigned ffc_hash_row(unsigned prefix, unsigned c) { return ffc_mix32((prefix + 0xc2b2ae35u) ^ c); }
FFC_HD unsigned ffc_hash_last(unsigned row, unsigned d) { return ffc_mix32((row + 0x27d4eb2fu) ^ d); }
FFC_HD unsigned ffc_hash5(unsigned seed, unsigned a, unsigned b, unsigned c, unsigned d) {
    return ffc_hash_last(ffc_hash_row(ffc_hash_prefix(seed, a, b), c), d);
}

// Dynamic shared memory (the launch's byte count): `FFC_DYNAMIC_SHARED(float, smem);` declares
// `smem`. The emulator (src/backend/cuda/emu/ffc_emu.h) defines its own spelling first.
#ifndef FFC_DYNAMIC_SHARED
#define FFC_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif

// Test hooks for the planted-bug builds of the emulated suite (build.rs compiles fused.cu once
// more per bug with FFC_PLANTED=n): FFC_PLANT(n) is 1 in bug n's build and 0 everywhere else, so
// the kernels compiled for a GPU and the emulated engine never contain the bugs.
#ifndef FFC_PLANTED
#define FFC_PLANTED 0
#endif
#define FFC_PLANT(n) (FFC_PLANTED == (n))

// Uniform in [0, 1) with 24 bits, exactly representable in f32 (same as rng::unit_f32).
FFC_HD float ffc_unit(unsigned h) { return (float)(h >> 8) * (1.0f / 16777216.0f); }

// ---- the cohort slot table ----
// One FfcSlot per trial, read as slots[trial] by every kernel: one launch trains a cohort of mixed
// configurations. Twin: `Slot` in src/backend/cuda/slot.rs (#[repr(C)], size and offsets checked by
// tests/kernels/slot.rs). On the per-op path widths are padded to the cohort's widest layer (exact:
// padded units keep zero weights, zero activations and zero gradients), so layer offsets are
// uniform launch arguments; the fused kernel (fused.cu) reads each trial's true widths from
// `hidden`. `param_off` places the trial in the cohort's arenas (params, grads, Adam/Lion moments).
#define FFC_MAX_HIDDEN 8
struct FfcSlot {
    double b1, b2;        // β1, β2 (RMSprop: b1 = ρ) in f64 (Adam's bias correction is computed in f64)
    double rate_a, rate_b;  // schedule parameters (schedule.rs `Schedule::params`)
    float lr;             // base learning rate (the schedule scales it per step)
    float dropout;        // dropout rate of every hidden layer (0 = none)
    float eps;            // ε of Adam, AdamW, RMSprop, Adagrad
    float c1, c2;         // 1 - b1, 1 - b2, rounded from f64
    float b1f, b2f;       // b1, b2 rounded to f32 (Lion, RMSprop)
    float momentum;       // SGD / RMSprop momentum (0 = none)
    float wd;             // weight decay: decoupled for AdamW, L2 for every other optimizer
    unsigned param_off;   // offset of the trial's parameters in the arenas
    unsigned act;         // activation id: elu 0, celu 1, gelu 2, relu 3, selu 4, silu 5, tanh 6,
                          // sigmoid 7, leaky_relu 8, softplus 9, mish 10
    unsigned opt;         // optimizer id: adam 0, lion 1, sgd 2, rmsprop 3, adamw 4, adagrad 5
    unsigned seed;        // dropout seed
    unsigned active;      // 1 = training; 0 = early-stopped (host) or diverged (softmax_xent)
    unsigned step0;       // optimizer steps taken before this epoch
    unsigned hidden[FFC_MAX_HIDDEN];  // true hidden widths (0 = no such layer)
    unsigned sched;       // schedule id: constant 0, cosine 1, exponential 2, step 3
    unsigned nesterov;    // 1 = Nesterov momentum (SGD)
    unsigned reserved;
};

// Per-trial accumulators of softmax_xent (twin: `Stats` in slot.rs).
struct FfcStats {
    double loss_sum;      // Σ cross-entropy over the rows seen (finite steps only when training)
    unsigned correct;     // rows whose argmax is the label
    unsigned rows;        // rows accounted
    unsigned diverged;    // 1 once a training step's loss was not finite
    unsigned reserved;
};

#define FFC_TILE 16

// Softmax cross-entropy of one row of logits z against label y: adds −ln p_y to *loss and 1 to
// *correct when the first maximum is the label. With d, writes the gradient of scale·loss,
// scale·(p − onehot(y)), to d (which may be z itself: each logit is read before it is replaced).
// softmax_xent.cu and the fused kernel both score rows with this; the CPU twin is
// src/backend/cpu/softmax_xent.rs.
__device__ __forceinline__ void ffc_xent_row(const float* z, int classes, int y, float scale, float* d, double* loss,
                                             unsigned* correct) {
    int arg = 0;
    for (int c = 1; c < classes; c++)
        if (z[c] > z[arg]) arg = c;
    const float zmax = z[arg];
    float sum = 0.0f;
    for (int c = 0; c < classes; c++) sum += expf(z[c] - zmax);
    *correct += arg == y;
    // −ln p_y = ln Σ e^(z − max) − (z_y − max)
    *loss += (double)logf(sum) - (double)(z[y] - zmax);
    if (d) {
        const float inv = 1.0f / sum;
        for (int c = 0; c < classes; c++) {
            const float p = expf(z[c] - zmax) * inv;
            d[c] = scale * (p - (c == y ? 1.0f : 0.0f));
        }
    }
}
