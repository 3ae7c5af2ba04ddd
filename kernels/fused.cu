// fused.cu: the fused engine. One CTA trains one trial for a whole epoch (one launch per epoch per
// cohort), at the trial's true widths and depth (from its slot: no padding), with its own activation
// and optimizer; fused_eval scores every trial of a cohort on a split in one more launch.
// CPU twin: the training step of src/backend/cpu/mod.rs (forward, softmax_xent, backward, the
// optimizer), which tests/fused.rs checks this against through the emulator and fakecuda.
//
// Per step, inside the CTA: the batch rows are gathered (into shared memory when they fit, else
// read in place through the epoch's order); every layer's forward runs with bias, activation and
// dropout fused into its epilogue (masks from the stateless hash of common.cuh, keyed as the CPU
// keys them); warp 0 computes the softmax cross-entropy, its loss and accuracy; the backward pass
// goes layer by layer: first the gradient for the layer's input (through the old weights), then,
// after a barrier, the weight and bias gradients, which update the parameters in place (any of
// the six optimizers, optimizer.cuh) straight from registers. No gradient buffer exists.
//
// Memory: activations and their gradients live in dynamic shared memory; weights and optimizer
// moments stay in global memory (small enough to stay in L1/L2). For hidden layer l, with w_l its
// width and R the batch: H_l (R × w_l: the layer's output after dropout) and D_l (R × w_l: f'(z),
// later overwritten in place by the gradient for the layer's pre-activation). That is the
// minimum, 2·R·Σw floats (the engine only fuses trials for which it fits); the logits (R ×
// classes) and the batch (R × inputs) follow when they fit in what the launch gave, and otherwise
// go to the trial's global scratch / are read in place. Each thread owns a register tile of
// outputs (FFC_FUSED_TR × FFC_FUSED_TC for the forward and input-gradient products, 4 × 4 for the
// weight gradient), assigned cyclically (rows rt, rt + NRT, …) so that the lanes of a warp read
// neighbouring columns. Statistics stay in warp 0's registers and are written once per epoch; a
// step whose loss is not finite stops the CTA (the trial is marked diverged; that step is not
// counted). Trials run in blockIdx.x order, which the engine sorts heaviest first.
#include "activation.cuh"
#include "optimizer.cuh"

#define FFC_FUSED_TR 2
#define FFC_FUSED_TC 4
#define FFC_FUSED_GW 4  // weight-gradient tile edge

// A thread's register tile of FFC_FUSED_TR × FFC_FUSED_TC outputs (rows rt, rt + NRT, …; columns
// ct, ct + NCT, …), accumulated one outer product per term of the dot products.
struct FfcTile {
    float v[FFC_FUSED_TR][FFC_FUSED_TC];
    __device__ __forceinline__ FfcTile() {
#pragma unroll
        for (int i = 0; i < FFC_FUSED_TR; i++)
#pragma unroll
            for (int j = 0; j < FFC_FUSED_TC; j++) v[i][j] = 0.0f;
    }
    // v += a ⊗ b.
    __device__ __forceinline__ void add_outer(const float (&a)[FFC_FUSED_TR], const float (&b)[FFC_FUSED_TC]) {
#pragma unroll
        for (int i = 0; i < FFC_FUSED_TR; i++)
#pragma unroll
            for (int j = 0; j < FFC_FUSED_TC; j++) v[i][j] += a[i] * b[j];
    }
};

// Where a layer reads its input rows: row r at base + r·stride, or, for the network input read in
// place, at base + idx[r]·stride (the epoch order).
struct FfcRows {
    const float* base;
    int stride;
    const unsigned* idx;
    __device__ __forceinline__ const float* row(int r) const {
        return base + (size_t)(idx ? idx[r] : (unsigned)r) * stride;
    }
};

// The dropout multiplier of unit u of row r in hidden layer l at optimizer step t (0-based), as
// src/backend/cpu/dropout.rs draws it: 1/(1 − p) when kept, 0 when dropped.
__device__ __forceinline__ float ffc_fused_mask(const FfcSlot& s, unsigned t, unsigned l, unsigned r, unsigned u) {
    if (FFC_PLANT(1)) l += 1;  // planted bug 1: the wrong mask key
    const unsigned h = ffc_hash5(s.seed, t, l, r, u);
    return ffc_unit(h) >= s.dropout ? 1.0f / (1.0f - s.dropout) : 0.0f;
}

// out = in·Wᵀ + b over `rows` rows (W: n_out × n_in row-major at W, bias at B). mode 0: the
// output layer (logits into Out, stride n_out); mode 1: a hidden layer in training (H = f(z)·mask,
// D = f'(z)); mode 2: a hidden layer in evaluation (H = f(z), no D).
__device__ __forceinline__ void ffc_fused_forward(const FfcSlot& s, int mode, unsigned t, unsigned layer, FfcRows in,
                                                  int rows, int n_in, int n_out, const float* W, const float* B,
                                                  float* Out, float* D) {
    const int NRT = (rows + FFC_FUSED_TR - 1) / FFC_FUSED_TR, NCT = (n_out + FFC_FUSED_TC - 1) / FFC_FUSED_TC;
    const bool dropout = mode == 1 && s.dropout > 0.0f;
    for (int tile = threadIdx.x; tile < NRT * NCT; tile += blockDim.x) {
        const int rt = tile / NCT, ct = tile % NCT;
        const float* a[FFC_FUSED_TR];
        const float* w[FFC_FUSED_TC];
#pragma unroll
        for (int i = 0; i < FFC_FUSED_TR; i++) {
            const int r = rt + i * NRT;
            a[i] = in.row(r < rows ? r : 0);
        }
#pragma unroll
        for (int j = 0; j < FFC_FUSED_TC; j++) {
            const int o = ct + j * NCT;
            w[j] = W + (size_t)(o < n_out ? o : 0) * n_in;
        }
        FfcTile acc;
        for (int k = 0; k < n_in; k++) {
            float av[FFC_FUSED_TR], bv[FFC_FUSED_TC];
#pragma unroll
            for (int i = 0; i < FFC_FUSED_TR; i++) av[i] = a[i][k];
#pragma unroll
            for (int j = 0; j < FFC_FUSED_TC; j++) bv[j] = w[j][k];
            acc.add_outer(av, bv);
        }
#pragma unroll
        for (int i = 0; i < FFC_FUSED_TR; i++) {
            const int r = rt + i * NRT;
            if (r >= rows) continue;
#pragma unroll
            for (int j = 0; j < FFC_FUSED_TC; j++) {
                const int o = ct + j * NCT;
                if (o >= n_out) continue;
                const float z = acc.v[i][j] + B[o];
                const size_t at = (size_t)r * n_out + o;
                if (mode == 0) {
                    Out[at] = z;
                    continue;
                }
                const float y = ffc_act(s.act, z);
                Out[at] = dropout ? y * ffc_fused_mask(s, t, layer, r, o) : y;
                if (mode == 1) D[at] = ffc_dact(s.act, z, y);
            }
        }
    }
}

// Softmax cross-entropy of `rows` rows of logits (stride classes) against labels src_y[idx[r]]
// (idx null: src_y[r]), by warp 0 (lane r takes rows r, r + 32, …), as softmax_xent.cu computes
// it. With `grad`, the logits are replaced by the gradient of scale·Σ loss. Returns, in every lane
// of warp 0, the loss sum and the count of rows whose argmax is the label.
__device__ __forceinline__ void ffc_fused_xent(float* logits, int rows, int classes, const unsigned* src_y,
                                               const unsigned* idx, bool grad, float scale, double* loss_out,
                                               unsigned* correct_out) {
    double loss = 0.0;
    unsigned correct = 0;
    for (int r = (int)threadIdx.x; r < rows; r += 32) {
        float* z = logits + (size_t)r * classes;
        ffc_xent_row(z, classes, (int)src_y[idx ? idx[r] : (unsigned)r], scale, grad ? z : nullptr, &loss, &correct);
    }
    for (int off = 16; off > 0; off >>= 1) {
        loss += __shfl_xor_sync(0xffffffffu, loss, off);
        correct += __shfl_xor_sync(0xffffffffu, correct, off);
    }
    *loss_out = loss;
    *correct_out = correct;
}

// The gradient for the input of layer l+1 (= the output of hidden layer l), in place over D_l:
// D[r][k] ← (Σ_o G[r][o]·W[o][k]) · mask · f'(z) (D held f'(z)), in the CPU's order of products.
__device__ __forceinline__ void ffc_fused_backward_input(const FfcSlot& s, unsigned t, unsigned layer, const float* G,
                                                         int rows, int n_in, int n_out, const float* W, float* D) {
    const int NRT = (rows + FFC_FUSED_TR - 1) / FFC_FUSED_TR, NCT = (n_in + FFC_FUSED_TC - 1) / FFC_FUSED_TC;
    const bool dropout = s.dropout > 0.0f;
    for (int tile = threadIdx.x; tile < NRT * NCT; tile += blockDim.x) {
        const int rt = tile / NCT, ct = tile % NCT;
        const float* g[FFC_FUSED_TR];
        int col[FFC_FUSED_TC];
#pragma unroll
        for (int i = 0; i < FFC_FUSED_TR; i++) {
            const int r = rt + i * NRT;
            g[i] = G + (size_t)(r < rows ? r : 0) * n_out;
        }
#pragma unroll
        for (int j = 0; j < FFC_FUSED_TC; j++) {
            const int k = ct + j * NCT;
            col[j] = k < n_in ? k : 0;
        }
        FfcTile acc;
        for (int o = 0; o < n_out; o++) {
            const float* w = W + (size_t)o * n_in;
            float av[FFC_FUSED_TR], bv[FFC_FUSED_TC];
#pragma unroll
            for (int i = 0; i < FFC_FUSED_TR; i++) av[i] = g[i][o];
#pragma unroll
            for (int j = 0; j < FFC_FUSED_TC; j++) bv[j] = w[col[j]];
            acc.add_outer(av, bv);
        }
#pragma unroll
        for (int i = 0; i < FFC_FUSED_TR; i++) {
            const int r = rt + i * NRT;
            if (r >= rows) continue;
#pragma unroll
            for (int j = 0; j < FFC_FUSED_TC; j++) {
                const int k = ct + j * NCT;
                if (k >= n_in) continue;
                float v = acc.v[i][j];
                if (dropout) v *= ffc_fused_mask(s, t, layer, r, k);
                const size_t at = (size_t)r * n_in + k;
                D[at] = v * D[at];
            }
        }
    }
}

// One parameter's optimizer update from its gradient g (optimizer.cuh's rule, as optimizer.cu).
__device__ __forceinline__ void ffc_fused_update(const FfcSlot& s, FfcRate r, float* params, float* m, float* v,
                                                 size_t at, float g) {
    ffc_update(s, r, g, params + at, m + at, v + at);
}

// dW = Gᵀ·In and db = Σ_rows G for one layer, each applied at once to the parameters (W at
// w_off, b at b_off of the arenas).
__device__ __forceinline__ void ffc_fused_weights(const FfcSlot& s, FfcRate alpha, const float* G, FfcRows in, int rows,
                                                  int n_in, int n_out, size_t w_off, size_t b_off, float* params,
                                                  float* m, float* v) {
    const int NOT = (n_out + FFC_FUSED_GW - 1) / FFC_FUSED_GW, NKT = (n_in + FFC_FUSED_GW - 1) / FFC_FUSED_GW;
    for (int tile = threadIdx.x; tile < NOT * NKT; tile += blockDim.x) {
        const int ot = tile / NKT, kt = tile % NKT;
        int oc[FFC_FUSED_GW], kc[FFC_FUSED_GW];
#pragma unroll
        for (int i = 0; i < FFC_FUSED_GW; i++) {
            const int o = ot + i * NOT, k = kt + i * NKT;
            oc[i] = o < n_out ? o : 0;
            kc[i] = k < n_in ? k : 0;
        }
        float acc[FFC_FUSED_GW][FFC_FUSED_GW], accb[FFC_FUSED_GW];
#pragma unroll
        for (int i = 0; i < FFC_FUSED_GW; i++) {
            accb[i] = 0.0f;
#pragma unroll
            for (int j = 0; j < FFC_FUSED_GW; j++) acc[i][j] = 0.0f;
        }
        for (int r = 0; r < rows; r++) {
            const float* g = G + (size_t)r * n_out;
            const float* x = in.row(r);
            float av[FFC_FUSED_GW], bv[FFC_FUSED_GW];
#pragma unroll
            for (int i = 0; i < FFC_FUSED_GW; i++) {
                av[i] = g[oc[i]];
                bv[i] = x[kc[i]];
            }
#pragma unroll
            for (int i = 0; i < FFC_FUSED_GW; i++) {
                accb[i] += av[i];
#pragma unroll
                for (int j = 0; j < FFC_FUSED_GW; j++) acc[i][j] += av[i] * bv[j];
            }
        }
#pragma unroll
        for (int i = 0; i < FFC_FUSED_GW; i++) {
            const int o = ot + i * NOT;
            if (o >= n_out) continue;
#pragma unroll
            for (int j = 0; j < FFC_FUSED_GW; j++) {
                const int k = kt + j * NKT;
                if (k < n_in) ffc_fused_update(s, alpha, params, m, v, w_off + (size_t)o * n_in + k, acc[i][j]);
            }
            if (kt == 0 && !FFC_PLANT(2)) ffc_fused_update(s, alpha, params, m, v, b_off + o, accb[i]);  // bug 2: no bias step
        }
    }
}

// A trial's layer dimensions (inputs, true hidden widths, classes) and parameter offsets.
struct FfcNet {
    int depth;
    int dims[FFC_MAX_HIDDEN + 2];
    size_t w_off[FFC_MAX_HIDDEN + 1], b_off[FFC_MAX_HIDDEN + 1];
    __device__ __forceinline__ FfcNet(const FfcSlot& s, int inputs, int classes) {
        depth = 0;
        dims[0] = inputs;
        while (depth < FFC_MAX_HIDDEN && s.hidden[depth]) {
            dims[depth + 1] = (int)s.hidden[depth];
            depth++;
        }
        dims[depth + 1] = classes;
        size_t at = s.param_off;
        for (int l = 0; l <= depth; l++) {
            w_off[l] = at;
            at += (size_t)dims[l] * dims[l + 1];
            b_off[l] = at;
            at += dims[l + 1];
        }
    }
};

// One epoch of every trial (grid: trials, one CTA each; block: FFC_FUSED_THREADS, a multiple of
// 32). order[0..n) is the epoch's order over the resident training split (src_x: rows × dim,
// src_y), taken `batch` rows a step. params, m, v: the cohort's arenas at the trials' own layouts.
// scratch: per trial `scratch_stride` floats: the rates (FfcRate) of each step of the epoch, then room for
// the logits. smem_floats: the launch's dynamic shared memory in floats. stats[trial] is
// overwritten with the epoch's totals. Inactive trials return at once.
extern "C" __global__ void __launch_bounds__(256)
    fused_train(const FfcSlot* __restrict__ slots, int dim, int classes, const unsigned* __restrict__ order, int n,
                int batch, const float* __restrict__ src_x, const unsigned* __restrict__ src_y, float* params,
                float* m, float* v, float* scratch, unsigned scratch_stride, FfcStats* __restrict__ stats,
                unsigned smem_floats) {
    const FfcSlot s = slots[blockIdx.x];
    if (!s.active) return;  // uniform over the block
    FFC_DYNAMIC_SHARED(float, smem);
    const FfcNet net(s, dim, classes);
    const int depth = net.depth;
    const int steps = (n + batch - 1) / batch;
    float* H[FFC_MAX_HIDDEN];
    float* D[FFC_MAX_HIDDEN];
    unsigned off = 0;
    for (int l = 0; l < depth; l++) {
        H[l] = smem + off;
        off += (unsigned)(batch * net.dims[l + 1]);
        D[l] = smem + off;
        off += (unsigned)(batch * net.dims[l + 1]);
    }
    float* mine = scratch + (size_t)blockIdx.x * scratch_stride;
    FfcRate* rate_table = reinterpret_cast<FfcRate*>(mine);
    float* logits = mine + 2 * steps;
    if (off + (unsigned)(batch * classes) <= smem_floats) {
        logits = smem + off;
        off += (unsigned)(batch * classes);
    }
    float* xs = off + (unsigned)(batch * dim) <= smem_floats ? smem + off : nullptr;
    for (int i = threadIdx.x; i < steps; i += blockDim.x) {
        FfcRate r = ffc_rate(s, s.step0 + (unsigned)i, steps);
        if (FFC_PLANT(4)) r.alpha = r.lr;  // bug 4: no bias correction
        rate_table[i] = r;
    }
    __syncthreads();
    const bool lane0 = threadIdx.x == 0, warp0 = threadIdx.x < 32;
    double loss_sum = 0.0;
    unsigned correct = 0, seen = 0, diverged = 0;
    for (int step = 0; step < steps; step++) {
        const int start = step * batch;
        const int rows = min(batch, n - start);
        const unsigned* idx = order + start;
        const unsigned t = s.step0 + (unsigned)step;
        FfcRows x0{src_x, dim, idx};
        if (xs) {
            for (int i = threadIdx.x; i < rows * dim; i += blockDim.x) {
                const int r = i / dim, c = i % dim;
                xs[i] = src_x[(size_t)idx[r] * dim + c];
            }
            x0 = FfcRows{xs, dim, nullptr};
            __syncthreads();
        }
        // Forward.
        for (int l = 0; l <= depth; l++) {
            const FfcRows in = l == 0 ? x0 : FfcRows{H[l - 1], net.dims[l], nullptr};
            const float* W = params + net.w_off[l];
            const float* B = params + net.b_off[l];
            if (l < depth)
                ffc_fused_forward(s, 1, t, (unsigned)l, in, rows, net.dims[l], net.dims[l + 1], W, B, H[l], D[l]);
            else
                ffc_fused_forward(s, 0, t, (unsigned)l, in, rows, net.dims[l], classes, W, B, logits, nullptr);
            __syncthreads();
        }
        // Loss, accuracy and dL/dlogits (of the batch mean).
        int bad = 0;
        double step_loss = 0.0;
        unsigned step_correct = 0;
        if (warp0) {
            ffc_fused_xent(logits, rows, classes, src_y, idx, true, 1.0f / (float)rows, &step_loss, &step_correct);
            bad = !isfinite(step_loss);
        }
        if (__syncthreads_or(bad)) {
            diverged = 1;
            break;
        }
        loss_sum += step_loss;
        correct += step_correct;
        seen += (unsigned)rows;
        const FfcRate alpha = rate_table[step];
        // Backward, layer by layer: the input's gradient through the old weights first, then the
        // update (planted bug 3 updates first: the backward pass reads a stale-by-one-step W).
        for (int l = depth; l >= 0; l--) {
            const float* G = l == depth ? logits : D[l];
            const int n_in = net.dims[l], n_out = net.dims[l + 1];
            const FfcRows in = l == 0 ? x0 : FfcRows{H[l - 1], n_in, nullptr};
            if (FFC_PLANT(3)) {
                ffc_fused_weights(s, alpha, G, in, rows, n_in, n_out, net.w_off[l], net.b_off[l], params, m, v);
                __syncthreads();
            }
            if (l > 0) {
                ffc_fused_backward_input(s, t, (unsigned)(l - 1), G, rows, n_in, n_out, params + net.w_off[l],
                                         D[l - 1]);
                __syncthreads();
            }
            if (!FFC_PLANT(3))
                ffc_fused_weights(s, alpha, G, in, rows, n_in, n_out, net.w_off[l], net.b_off[l], params, m, v);
        }
        __syncthreads();
    }
    if (lane0) {
        FfcStats st;
        st.loss_sum = loss_sum;
        st.correct = correct;
        st.rows = seen;
        st.diverged = diverged;
        st.reserved = 0;
        stats[blockIdx.x] = st;
    }
}

// Loss and accuracy of every trial on a split (x: n × dim, y), no dropout, `chunk` rows at a time
// (the launch's shared memory holds two chunk × widest-layer buffers and chunk × classes logits).
// grid: trials; block: FFC_FUSED_THREADS. stats[trial] is overwritten; with skip_inactive, inactive
// trials are skipped (their stats left as they were).
extern "C" __global__ void __launch_bounds__(256)
    fused_eval(const FfcSlot* __restrict__ slots, int dim, int classes, const float* __restrict__ x,
               const unsigned* __restrict__ y, int n, const float* __restrict__ params, FfcStats* __restrict__ stats,
               int chunk, int widest, int skip_inactive) {
    const FfcSlot s = slots[blockIdx.x];
    if (skip_inactive && !s.active) return;
    FFC_DYNAMIC_SHARED(float, smem);
    const FfcNet net(s, dim, classes);
    float* buf[2] = {smem, smem + (size_t)chunk * widest};
    float* logits = smem + (size_t)2 * chunk * widest;
    double loss_sum = 0.0;
    unsigned correct = 0;
    for (int start = 0; start < n; start += chunk) {
        const int rows = min(chunk, n - start);
        for (int l = 0; l <= net.depth; l++) {
            const FfcRows in = l == 0 ? FfcRows{x + (size_t)start * dim, dim, nullptr}
                                      : FfcRows{buf[(l - 1) & 1], net.dims[l], nullptr};
            const float* W = params + net.w_off[l];
            const float* B = params + net.b_off[l];
            if (l < net.depth)
                ffc_fused_forward(s, 2, 0, (unsigned)l, in, rows, net.dims[l], net.dims[l + 1], W, B, buf[l & 1],
                                  nullptr);
            else
                ffc_fused_forward(s, 0, 0, (unsigned)l, in, rows, net.dims[l], classes, W, B, logits, nullptr);
            __syncthreads();
        }
        if (threadIdx.x < 32) {
            double l;
            unsigned c;
            ffc_fused_xent(logits, rows, classes, y + start, nullptr, false, 1.0f, &l, &c);
            loss_sum += l;
            correct += c;
        }
        __syncthreads();  // the next chunk's layers overwrite what warp 0 read
    }
    if (threadIdx.x == 0) {
        FfcStats st;
        st.loss_sum = loss_sum;
        st.correct = correct;
        st.rows = (unsigned)n;
        st.diverged = 0;
        st.reserved = 0;
        stats[blockIdx.x] = st;
    }
}
