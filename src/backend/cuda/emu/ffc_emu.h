// ffc_emu.h: the CUDA execution model on the host, so that the very same kernels/*.cu compile with
// g++ and run under `cargo test` on machines without a GPU (../../../../kernels, EMULATION notes in
// src/backend/cuda/emu.rs). Included before the kernels by the generated registry (build.rs); the
// kernels themselves contain no emulation-specific code.
//
// Model: one block at a time per OS thread; each CUDA thread of the block is a fiber with its own
// stack. Fibers switch only at __syncthreads, __syncwarp, shuffles and votes, in a configurable
// order (forward, reverse, seeded random), so order-dependent races show up as wrong results.
// `__shared__` is `thread_local`: at block scope that implies `static`, so the fibers of a block
// share one copy. Dynamic shared memory (FFC_DYNAMIC_SHARED, common.cuh) is the launch's byte
// count, filled with NaN at each block's start (CUDA leaves it undefined, so a kernel that reads
// what it never wrote computes NaN), and ends right before an unmapped page (an overrun faults). Barriers record file:line and the runtime aborts the launch with a diagnostic when
// threads wait at different barriers, or some exited while others wait.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ thread_local
#define __constant__ static

struct uint3 {
    unsigned x, y, z;
};
typedef uint3 dim3;

namespace ffc_emu {

enum class Wait { Run, Block, Warp, Done };

struct Fiber {
    void* sp = nullptr;       // saved stack pointer while switched out
    char* stack = nullptr;    // mmap'd stack (guard page at the low end)
    uint3 tid{};
    unsigned linear = 0;      // linear thread index in the block
    Wait wait = Wait::Run;
    int pred = 0;             // the predicate this thread brought to a __syncthreads_or/and/count
    unsigned mask = 0;        // warp-op participation mask
    const char* file = "";
    int line = 0;
};

struct Block {
    uint3 idx{}, dim{}, grid{};
    unsigned threads = 0;
    unsigned char* dyn = nullptr;  // dynamic shared memory of the launch (`dyn_bytes`)
    unsigned dyn_bytes = 0;
    int red_or = 0, red_and = 0, red_count = 0;  // the last barrier's reductions of `pred`
    unsigned long long exch[32][32];  // per-warp exchange slots for shuffles/votes (<= 1024 threads)
};

extern thread_local Fiber* t_fiber;
extern thread_local Block* t_block;

void sync_block(const char* file, int line, int pred = 0);
void sync_warp(const char* file, int line, unsigned mask);
[[noreturn]] void trap(const char* file, int line, const char* what);

inline unsigned lane() { return t_fiber->linear & 31u; }
inline unsigned warp() { return t_fiber->linear >> 5; }

template <class T>
inline T exchange(const char* file, int line, unsigned mask, T v, int src) {
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
    unsigned long long raw = 0;
    std::memcpy(&raw, &v, sizeof(T));
    unsigned w = warp();
    t_block->exch[w][lane()] = raw;
    sync_warp(file, line, mask);
    if (src < 0 || src > 31 || !((mask >> src) & 1u) || w * 32 + (unsigned)src >= t_block->threads) {
        // CUDA leaves this undefined; a kernel relying on it is a bug. Reading its own value
        // mirrors what hardware does for an out-of-range lane inside the mask's segment.
        src = (int)lane();
    }
    T out;
    raw = t_block->exch[w][src];
    std::memcpy(&out, &raw, sizeof(T));
    sync_warp(file, line, mask);
    return out;
}

inline unsigned vote(const char* file, int line, unsigned mask, bool p) {
    unsigned w = warp();
    t_block->exch[w][lane()] = p ? 1 : 0;
    sync_warp(file, line, mask);
    unsigned bits = 0;
    for (unsigned l = 0; l < 32; l++)
        if (((mask >> l) & 1u) && w * 32 + l < t_block->threads && t_block->exch[w][l]) bits |= 1u << l;
    sync_warp(file, line, mask);
    return bits;
}

inline int width_src(int lane_id, int src, int width) { return (lane_id & ~(width - 1)) + (src & (width - 1)); }

}  // namespace ffc_emu

#define threadIdx (::ffc_emu::t_fiber->tid)
#define blockIdx (::ffc_emu::t_block->idx)
#define blockDim (::ffc_emu::t_block->dim)
#define gridDim (::ffc_emu::t_block->grid)
#define warpSize 32

#define __syncthreads() ::ffc_emu::sync_block(__FILE__, __LINE__)
// A barrier that also reduces a predicate over the block, as CUDA's __syncthreads_or/and/count.
#define __syncthreads_or(p) (::ffc_emu::sync_block(__FILE__, __LINE__, (p) != 0), ::ffc_emu::t_block->red_or)
#define __syncthreads_and(p) (::ffc_emu::sync_block(__FILE__, __LINE__, (p) != 0), ::ffc_emu::t_block->red_and)
#define __syncthreads_count(p) (::ffc_emu::sync_block(__FILE__, __LINE__, (p) != 0), ::ffc_emu::t_block->red_count)
// `extern __shared__ T name[]` cannot name one buffer per launch on the host: the kernels declare
// dynamic shared memory through this macro (common.cuh gives CUDA's spelling).
#define FFC_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::ffc_emu::t_block->dyn)
#define __syncwarp(...) ::ffc_emu::sync_warp(__FILE__, __LINE__, ffc_emu_mask_or_all(__VA_ARGS__))
#define __trap() ::ffc_emu::trap(__FILE__, __LINE__, "__trap()")
inline unsigned ffc_emu_mask_or_all() { return 0xffffffffu; }
inline unsigned ffc_emu_mask_or_all(unsigned m) { return m; }

// Shuffles: (mask, value, lane/delta/laneMask[, width]) as in CUDA.
template <class T>
inline T ffc_shfl(const char* f, int l, unsigned mask, T v, int src, int width = 32) {
    return ::ffc_emu::exchange(f, l, mask, v, ::ffc_emu::width_src((int)::ffc_emu::lane(), src, width));
}
template <class T>
inline T ffc_shfl_xor(const char* f, int l, unsigned mask, T v, int lm, int width = 32) {
    int me = (int)::ffc_emu::lane();
    return ::ffc_emu::exchange(f, l, mask, v, ::ffc_emu::width_src(me, (me ^ lm) & (width - 1), width));
}
template <class T>
inline T ffc_shfl_down(const char* f, int l, unsigned mask, T v, unsigned d, int width = 32) {
    int me = (int)::ffc_emu::lane();
    int in_seg = (me & (width - 1)) + (int)d;
    return ::ffc_emu::exchange(f, l, mask, v, in_seg >= width ? me : me + (int)d);
}
template <class T>
inline T ffc_shfl_up(const char* f, int l, unsigned mask, T v, unsigned d, int width = 32) {
    int me = (int)::ffc_emu::lane();
    int in_seg = (me & (width - 1)) - (int)d;
    return ::ffc_emu::exchange(f, l, mask, v, in_seg < 0 ? me : me - (int)d);
}
#define __shfl_sync(...) ffc_shfl(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) ffc_shfl_xor(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) ffc_shfl_down(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) ffc_shfl_up(__FILE__, __LINE__, __VA_ARGS__)
#define __ballot_sync(m, p) ::ffc_emu::vote(__FILE__, __LINE__, (m), (p))
#define __any_sync(m, p) (::ffc_emu::vote(__FILE__, __LINE__, (m), (p)) != 0u)
#define __all_sync(m, p) (::ffc_emu::vote(__FILE__, __LINE__, (m), (p)) == ((m) & ::ffc_emu::present_mask()))

namespace ffc_emu {
inline unsigned present_mask() {
    unsigned base = warp() * 32, n = t_block->threads - base;
    return n >= 32 ? 0xffffffffu : ((1u << n) - 1u);
}
}  // namespace ffc_emu

// ---- atomics: exactly the overloads CUDA declares (no atomicMax(float*): nvcc would reject it) ----
#define FFC_ATOMIC_RMW(NAME, OP, T) \
    inline T NAME(T* a, T v) { return __atomic_##OP(a, v, __ATOMIC_SEQ_CST); }
FFC_ATOMIC_RMW(atomicAdd, fetch_add, int)
FFC_ATOMIC_RMW(atomicAdd, fetch_add, unsigned)
FFC_ATOMIC_RMW(atomicAdd, fetch_add, unsigned long long)
FFC_ATOMIC_RMW(atomicSub, fetch_sub, int)
FFC_ATOMIC_RMW(atomicSub, fetch_sub, unsigned)
FFC_ATOMIC_RMW(atomicOr, fetch_or, unsigned)
FFC_ATOMIC_RMW(atomicAnd, fetch_and, unsigned)
#undef FFC_ATOMIC_RMW
template <class T>
inline T ffc_atomic_float_add(T* a, T v) {
    T old = *a, seen;
    while (true) {
        T want = old + v;
        seen = old;
        if (__atomic_compare_exchange(a, &seen, &want, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return old;
        old = seen;
    }
}
inline float atomicAdd(float* a, float v) { return ffc_atomic_float_add(a, v); }
inline double atomicAdd(double* a, double v) { return ffc_atomic_float_add(a, v); }
template <class T>
inline T ffc_atomic_cas(T* a, T cmp, T val) {
    __atomic_compare_exchange(a, &cmp, &val, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return cmp;
}
inline int atomicCAS(int* a, int c, int v) { return ffc_atomic_cas(a, c, v); }
inline unsigned atomicCAS(unsigned* a, unsigned c, unsigned v) { return ffc_atomic_cas(a, c, v); }
inline unsigned long long atomicCAS(unsigned long long* a, unsigned long long c, unsigned long long v) {
    return ffc_atomic_cas(a, c, v);
}
inline int atomicExch(int* a, int v) { return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST); }
inline unsigned atomicExch(unsigned* a, unsigned v) { return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST); }
inline float atomicExch(float* a, float v) {
    float out;
    __atomic_exchange(a, &v, &out, __ATOMIC_SEQ_CST);
    return out;
}
template <class T>
inline T ffc_atomic_minmax(T* a, T v, bool want_max) {
    T old = __atomic_load_n(a, __ATOMIC_SEQ_CST);
    while ((want_max ? v > old : v < old) &&
           !__atomic_compare_exchange_n(a, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    }
    return old;
}
inline int atomicMax(int* a, int v) { return ffc_atomic_minmax(a, v, true); }
inline unsigned atomicMax(unsigned* a, unsigned v) { return ffc_atomic_minmax(a, v, true); }
inline int atomicMin(int* a, int v) { return ffc_atomic_minmax(a, v, false); }
inline unsigned atomicMin(unsigned* a, unsigned v) { return ffc_atomic_minmax(a, v, false); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// ---- device math that is not plain <cmath> ----
using std::isfinite;
using std::isinf;
using std::isnan;
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int __float_as_int(float f) { int u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }

// ---- the registry: how a launch turns CUDA-style `void** params` into a typed call ----
namespace ffc_emu {

template <class T>
constexpr char sig_char() {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_pointer_v<U>) return 'p';
    else if constexpr (std::is_same_v<U, int>) return 'i';
    else if constexpr (std::is_same_v<U, unsigned>) return 'u';
    else if constexpr (std::is_same_v<U, float>) return 'f';
    else if constexpr (std::is_same_v<U, double>) return 'd';
    else if constexpr (std::is_same_v<U, long long> || std::is_same_v<U, long>) return 'l';
    else if constexpr (std::is_same_v<U, unsigned long long> || std::is_same_v<U, unsigned long>) return 'L';
    else return '?';
}

// How a kernel uses each parameter: 'r' a pointer to const (read only), 'w' a pointer to mutable
// memory (may be written), '-' a value. fakecuda tracks buffer writes across streams with it.
template <class T>
constexpr char access_char() {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_pointer_v<U>) return std::is_const_v<std::remove_pointer_t<U>> ? 'r' : 'w';
    else return '-';
}

// The size in bytes of each parameter as the kernel receives it (what a `void**` entry points at).
template <class T>
constexpr unsigned char size_of_param() { return (unsigned char)sizeof(std::remove_cv_t<T>); }

struct Entry {
    const char* name;
    void (*fn)();
    void (*invoke)(void (*fn)(), void** params);
    const char* sig;
    const char* access;
    const unsigned char* sizes;
};

template <class F>
struct Invoker;
template <class... A>
struct Invoker<void (*)(A...)> {
    static constexpr char sig[sizeof...(A) + 1] = {sig_char<A>()..., '\0'};
    static constexpr char access[sizeof...(A) + 1] = {access_char<A>()..., '\0'};
    static constexpr unsigned char sizes[sizeof...(A) + 1] = {size_of_param<A>()..., 0};
    template <std::size_t... I>
    static void call(void (*f)(A...), void** p, std::index_sequence<I...>) {
        f(*static_cast<std::remove_cv_t<A>*>(p[I])...);
    }
    static void invoke(void (*fn)(), void** params) {
        call(reinterpret_cast<void (*)(A...)>(fn), params, std::index_sequence_for<A...>{});
    }
};

}  // namespace ffc_emu

#define FFC_EMU_ENTRY_AS(name, k)                                                             \
    ::ffc_emu::Entry {                                                                         \
        name, reinterpret_cast<void (*)()>(&k), &::ffc_emu::Invoker<decltype(&k)>::invoke,     \
            ::ffc_emu::Invoker<decltype(&k)>::sig, ::ffc_emu::Invoker<decltype(&k)>::access, \
            ::ffc_emu::Invoker<decltype(&k)>::sizes                                            \
    }
#define FFC_EMU_ENTRY(k) FFC_EMU_ENTRY_AS(#k, k)

// The kernels' arithmetic: 0 as written (no multiply-add contraction), 1 contracted into fused
// multiply-adds as nvcc and NVRTC do by default (--fmad=true). build.rs compiles the kernels once
// per mode; ffc_emu_find(name, mode) picks the build.
extern "C" const ::ffc_emu::Entry* ffc_emu_find(const char* name, unsigned mode);

// Runs one launch to completion on the calling thread (see runtime.cpp).
// `shared`: the launch's dynamic shared memory in bytes (at most kMaxDynamicShared).
extern "C" int ffc_emu_run(const ::ffc_emu::Entry* e, const unsigned grid[3], const unsigned block[3],
                           unsigned shared, void** params, unsigned order, unsigned long long seed,
                           char* err, std::size_t err_len);
