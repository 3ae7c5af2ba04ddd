// softmax_xent.cu: softmax + sparse categorical cross-entropy per row over a cohort, with the
// gradient of scale·Σ loss and the count of rows whose argmax (first maximum) is the label.
// CPU twin: src/backend/cpu/softmax_xent.rs (tests/kernels/softmax_xent.rs).
// One block per trial (grid (1, trials)) loops over the rows and reduces with warp shuffles, so the
// per-trial sums need no atomics and come out the same on every run.
#include "common.cuh"

// logits, dlogits: (trials, rows, classes); labels: (rows,) shared by every trial (one batch order
// per study). stats[k] accumulates loss_sum/correct/rows. With train = 1 inactive trials are
// skipped, and a step whose loss sum is not finite is not accumulated: the trial is marked
// diverged and its slot deactivated, so the backward and optimizer kernels of this step and every
// later step leave it alone. dlogits may be null (evaluation). blockDim.x: a multiple of 32, ≤ 1024.
extern "C" __global__ void softmax_xent(FfcSlot* __restrict__ slots, int rows, int classes,
                                        const float* __restrict__ logits,
                                        const unsigned* __restrict__ labels, float scale,
                                        float* __restrict__ dlogits, FfcStats* __restrict__ stats,
                                        int train) {
    const int k = blockIdx.y;
    if (train && !slots[k].active) return;
    const float* zk = logits + (size_t)k * rows * classes;
    double loss = 0.0;
    unsigned correct = 0;
    for (int r = threadIdx.x; r < rows; r += blockDim.x) {
        const float* z = zk + (size_t)r * classes;
        float* d = dlogits ? dlogits + ((size_t)k * rows + r) * classes : nullptr;
        ffc_xent_row(z, classes, (int)labels[r], scale, d, &loss, &correct);
    }
    for (int off = 16; off > 0; off >>= 1) {
        loss += __shfl_down_sync(0xffffffffu, loss, off);
        correct += __shfl_down_sync(0xffffffffu, correct, off);
    }
    __shared__ double warp_loss[32];
    __shared__ unsigned warp_correct[32];
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (lane == 0) {
        warp_loss[w] = loss;
        warp_correct[w] = correct;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double total = 0.0;
        unsigned hits = 0;
        for (int i = 0; i < (int)(blockDim.x >> 5); i++) {
            total += warp_loss[i];
            hits += warp_correct[i];
        }
        FfcStats& st = stats[k];
        if (train && !isfinite(total)) {
            st.diverged = 1;
            slots[k].active = 0;
        } else {
            st.loss_sum += total;
            st.correct += hits;
            st.rows += rows;
        }
    }
}
