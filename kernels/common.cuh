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

// Uniform in [0, 1) with 24 bits, exactly representable in f32 (same as rng::unit_f32).
FFC_HD float ffc_unit(unsigned h) { return (float)(h >> 8) * (1.0f / 16777216.0f); }
