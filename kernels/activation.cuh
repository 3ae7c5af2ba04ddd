// activation.cuh: the eleven activations and their derivatives as device functions, shared by
// activation.cu (standalone kernels), dense.cu (fused into the forward/backward epilogues) and
// fused.cu. CPU twin: src/backend/cpu/activation.rs, whose eˣ-only forms of tanh, softplus and mish
// these follow. sigmoid(0) = 0.5 and softplus(0) = ln 2, so on the per-op path (widths padded to
// the cohort's widest) dense.cu zeroes a padded unit's output instead of trusting f(0) = 0.
#pragma once
#include "common.cuh"

#define FFC_SELU_ALPHA 1.6732632423543772f
#define FFC_SELU_SCALE 1.0507009873554805f
#define FFC_SELU_SA 1.7580993408473766f  // scale·alpha, rounded once from f64 as the CPU does

#define FFC_LEAKY_SLOPE 0.2f  // model::LEAKY_RELU_SLOPE
#define FFC_MISH_SATURATES 20.0f

// tanh z = 1 − 2/(e²ᶻ + 1); softplus z = max(z, 0) + ln(1 + e^−|z|); tanh(softplus z) = w/(w + 2),
// w = eᶻ(eᶻ + 2), and 1 above FFC_MISH_SATURATES (as the CPU computes them).
FFC_HD float ffc_tanh(float z) { return 1.0f - 2.0f / (expf(z + z) + 1.0f); }
FFC_HD float ffc_softplus(float z) { return (z > 0.0f ? z : 0.0f) + logf(1.0f + expf(-fabsf(z))); }
FFC_HD float ffc_tanh_softplus(float z) {
    const float n = expf(z);
    const float w = n * (n + 2.0f);
    return z > FFC_MISH_SATURATES ? 1.0f : w / (w + 2.0f);
}

// y = f(z) for activation id `act`.
FFC_HD float ffc_act(unsigned act, float z) {
    switch (act) {
        case 0:  // elu
        case 1:  // celu (alpha = 1: identical to elu)
            return z > 0.0f ? z : expf(z) - 1.0f;
        case 2:  // gelu, exact erf form
            return 0.5f * z * (1.0f + erff(z * 0.70710678118654752f));
        case 3:  // relu
            return z > 0.0f ? z : 0.0f;
        case 4:  // selu
            return z > 0.0f ? FFC_SELU_SCALE * z : FFC_SELU_SA * (expf(z) - 1.0f);
        case 5:  // silu
            return z / (1.0f + expf(-z));
        case 6:  // tanh
            return ffc_tanh(z);
        case 7:  // sigmoid
            return 1.0f / (1.0f + expf(-z));
        case 8:  // leaky_relu
            return z > 0.0f ? z : FFC_LEAKY_SLOPE * z;
        case 9:  // softplus
            return ffc_softplus(z);
        default:  // 10: mish
            return z * ffc_tanh_softplus(z);
    }
}

// f'(z), given y = f(z) (elu/celu/selu reuse e^z = y + const).
FFC_HD float ffc_dact(unsigned act, float z, float y) {
    switch (act) {
        case 0:
        case 1:
            return z > 0.0f ? 1.0f : y + 1.0f;
        case 2: {
            float cdf = 0.5f * (1.0f + erff(z * 0.70710678118654752f));
            float pdf = 0.3989422804014327f * expf(-0.5f * z * z);
            return cdf + z * pdf;
        }
        case 3:
            return z > 0.0f ? 1.0f : 0.0f;
        case 4:
            return z > 0.0f ? FFC_SELU_SCALE : y + FFC_SELU_SA;
        case 5: {
            float s = 1.0f / (1.0f + expf(-z));
            return s + z * s * (1.0f - s);
        }
        case 6: {  // 1 − tanh² = s(2 − s), s = 2/(e^2|z| + 1) (1 − y² cancels as |y| → 1)
            const float a = fabsf(z);
            const float s = 2.0f / (expf(a + a) + 1.0f);
            return s * (2.0f - s);
        }
        case 7: {  // σ(1 − σ) = e/(1 + e)², e = e^−|z|
            const float e = expf(-fabsf(z));
            return e / ((1.0f + e) * (1.0f + e));
        }
        case 8:
            return z > 0.0f ? 1.0f : FFC_LEAKY_SLOPE;
        case 9:
            return 1.0f / (1.0f + expf(-z));
        default: {
            const float t = ffc_tanh_softplus(z);
            const float s = 1.0f / (1.0f + expf(-z));
            return t + z * (1.0f - t * t) * s;
        }
    }
}
