// optimizer.cuh: the learning-rate schedules and the six optimizers' per-parameter updates as
// device functions, shared by optimizer.cu (the per-op path: one launch a step over the cohort's
// arena) and fused.cu (each parameter updated from registers as its gradient is summed). Every
// rule follows Keras 3. CPU twins: src/schedule.rs (ffc_rate) and src/backend/cpu/{adam, lion, sgd,
// rmsprop, adagrad}.rs; tests: tests/ops/<optimizer>.rs, tests/kernels/optimizer.rs.
#pragma once
#include "common.cuh"

// The rates of one step: the scheduled learning rate and the update's step size (Adam's
// bias-corrected α for Adam/AdamW, the learning rate otherwise).
struct FfcRate {
    float lr, alpha;
};

// The rates at 0-based iteration t of a trial whose epochs take `steps` steps, in f64 and rounded
// once, as src/schedule.rs computes them. Evaluated once per trial and step (optimizer.cu's `rates`,
// fused_train's epoch start), never per parameter: FP64 is 1/32 of FP32 on a T4.
FFC_HD FfcRate ffc_rate(const FfcSlot& s, unsigned t, int steps) {
    const double S = (double)(steps > 1 ? steps : 1), T = (double)t;
    double f = 1.0;
    switch (s.sched) {
        case 1: {  // cosine with linear warmup from 0
            const double w = round(s.rate_a * S);
            const double d = fmax(round(s.rate_b * S) - w, 1.0);
            f = T < w ? T / w : 0.5 * (1.0 + cos(3.14159265358979323846 * fmin(T - w, d) / d));
            break;
        }
        case 2:  // exponential
            f = pow(s.rate_a, T / fmax(round(s.rate_b * S), 1.0));
            break;
        case 3:  // step (staircase)
            f = pow(s.rate_a, floor(T / fmax(round(s.rate_b * S), 1.0)));
            break;
        default:
            break;
    }
    const double lr = (double)s.lr * f;
    FfcRate r;
    r.lr = (float)lr;
    if (s.opt == 0 || s.opt == 4) {
        const double k = T + 1.0;
        r.alpha = (float)(lr * sqrt(1.0 - pow(s.b2, k)) / (1.0 - pow(s.b1, k)));
    } else {
        r.alpha = r.lr;
    }
    return r;
}

// A moment below f32's smallest normal is stored as 0, as the CPU twin does (src/backend/cpu/mod.rs,
// `flush`): the GPU would carry subnormals at full speed, but the CPU reference must not, and both
// must keep the same bits.
__device__ __forceinline__ float ffc_flush(float x) { return fabsf(x) < 1.17549435e-38f ? 0.0f : x; }

// One parameter's update from its gradient g: p = *p, m and v are the trial's buffers at the same
// index (v only for Adam, AdamW, RMSprop). AdamW decays p by wd·lr_t first (decoupled); every other
// optimizer adds wd·p to g (L2).
__device__ __forceinline__ void ffc_update(const FfcSlot& s, FfcRate r, float g, float* p, float* m, float* v) {
    float pi = *p;
    if (s.opt != 4) g += s.wd * pi;
    switch (s.opt) {
        case 4:  // adamw: decoupled decay, then Adam
            pi -= pi * (float)((double)s.wd * (double)r.lr);
            // fall through
        case 0: {  // adam
            const float mn = ffc_flush(*m + (g - *m) * s.c1);
            const float vn = ffc_flush(*v + (g * g - *v) * s.c2);
            *m = mn;
            *v = vn;
            pi -= r.alpha * mn / (sqrtf(vn) + s.eps);
            break;
        }
        case 1: {  // lion
            const float mi = *m;
            const float c = s.b1f * mi + s.c1 * g;
            const float sgn = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : 0.0f);
            pi -= r.lr * sgn;
            *m = ffc_flush(s.b2f * mi + s.c2 * g);
            break;
        }
        case 2: {  // sgd
            if (s.momentum == 0.0f) {
                pi -= r.lr * g;
            } else {
                const float mn = ffc_flush(s.momentum * *m - r.lr * g);
                *m = mn;
                pi += s.nesterov ? s.momentum * mn - r.lr * g : mn;
            }
            break;
        }
        case 3: {  // rmsprop (ρ in b1f, 1 − ρ in c1)
            const float vn = ffc_flush(s.b1f * *v + s.c1 * (g * g));
            *v = vn;
            const float inc = r.lr * g / sqrtf(vn + s.eps);
            if (s.momentum > 0.0f) {
                const float mn = ffc_flush(s.momentum * *m + inc);
                *m = mn;
                pi -= mn;
            } else {
                pi -= inc;
            }
            break;
        }
        default: {  // 5: adagrad
            const float a = *m + g * g;
            *m = a;
            pi -= r.lr * g / sqrtf(a + s.eps);
            break;
        }
    }
    *p = pi;
}
