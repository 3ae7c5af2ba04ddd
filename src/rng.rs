//! Stateless, counter-based randomness: every random bit fastfc draws during training is a pure
//! function of coordinates (seed, step, layer, row, unit), so the CPU backend, the emulated kernels
//! and a real GPU produce identical dropout masks. Twin: `kernels/common.cuh` (`ffc_hash*`).

/// One round of a 32-bit integer finaliser (xor-shift-multiply, constants from Wellons' "lowbias32").
#[inline(always)]
pub fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// Hash of five 32-bit words; each word is absorbed then mixed, so permuting the words changes the
/// result. Must stay bit-identical to `ffc_hash5` in `kernels/common.cuh` (test vectors in
/// `tests/rng.rs`).
#[inline(always)]
pub fn hash5(seed: u32, a: u32, b: u32, c: u32, d: u32) -> u32 {
    hash_last(hash_row(hash_prefix(seed, a, b), c), d)
}

/// The first three words of [`hash5`], hoisted out of loops (one per step and layer).
#[inline(always)]
pub fn hash_prefix(seed: u32, a: u32, b: u32) -> u32 {
    let h = mix32(seed ^ 0x9e37_79b9);
    let h = mix32(h ^ a);
    mix32(h.wrapping_add(0x85eb_ca6b) ^ b)
}

/// The fourth word of [`hash5`] (one per row).
#[inline(always)]
pub fn hash_row(prefix: u32, c: u32) -> u32 {
    mix32(prefix.wrapping_add(0xc2b2_ae35) ^ c)
}

/// The last word of [`hash5`] (one per element).
#[inline(always)]
pub fn hash_last(row: u32, d: u32) -> u32 {
    mix32(row.wrapping_add(0x27d4_eb2f) ^ d)
}

/// Uniform in [0, 1) with 24 bits of resolution (exactly representable in f32).
#[inline(always)]
pub fn unit_f32(h: u32) -> f32 {
    (h >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// 64-bit seed derivation for host-side generators (init, shuffles): splitmix64 finaliser over
/// (seed, stream, index).
pub fn derive_seed(seed: u64, stream: u64, index: u64) -> u64 {
    let mut z = seed
        ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Streams for [`derive_seed`], so that no two uses of one study seed collide.
pub mod stream {
    pub const SHUFFLE: u64 = 1;
    pub const INIT: u64 = 2;
    pub const DROPOUT: u64 = 3;
    pub const PROPOSE: u64 = 4;
    /// Model-based proposals (TPE, BOHB), indexed by trial id.
    pub const TPE: u64 = 5;
    /// The stratified validation and test draws, indexed by class id.
    pub const SPLIT: u64 = 6;
}
