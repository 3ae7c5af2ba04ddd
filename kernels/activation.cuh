// activation.cuh: the six activations and their derivatives as device functions, shared by
// activation.cu (standalone kernels) and dense.cu (fused into the forward/backward epilogues).
// CPU twin: src/backend/cpu/activation.rs. Every activation maps 0 to 0 (padding stays exact).
#pragma once
#include "common.cuh"

#define FFC_SELU_ALPHA 1.6732632423543772f
#define FFC_SELU_SCALE 1.0507009873554805f
#define FFC_SELU_SA 1.7580993408473766f  // scale·alpha, rounded once from f64 as the CPU does

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
        default:  // 5: silu
            return z / (1.0f + expf(-z));
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
        default: {
            float s = 1.0f / (1.0f + expf(-z));
            return s + z * s * (1.0f - s);
        }
    }
}
