// runtime.cpp: the scheduler behind ffc_emu.h. One block at a time per OS thread; every CUDA thread
// is a fiber (own 64 KiB stack + guard page, created once per slot and reused), switched by a
// ~10-instruction context switch on x86-64 (glibc swapcontext elsewhere). Entry point:
// ffc_emu_launch(), called from Rust (src/backend/cuda/emu.rs) with CUDA-style `void** params`.
#include "ffc_emu.h"

#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace ffc_emu {

thread_local Fiber* t_fiber = nullptr;
thread_local Block* t_block = nullptr;

namespace {

constexpr std::size_t kStack = 64 * 1024;

#if defined(__x86_64__)
// ffc_emu_switch(save, to): pushes the callee-saved registers, stores rsp in *save, loads `to`,
// pops that context's registers and returns into it.
extern "C" void ffc_emu_switch(void** save, void* to);
asm(R"(
    .text
    .p2align 4
    .type ffc_emu_switch,@function
ffc_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size ffc_emu_switch, .-ffc_emu_switch
)");
#endif

struct Launch;

// The most dynamic shared memory one block may have here: sm_90's opt-in limit (227 KiB). The
// launchers hold a launch to its device's own limit before it gets here.
constexpr std::size_t kMaxDynamicShared = 227 * 1024;

struct Worker {
    std::vector<Fiber> fibers;
#if defined(__x86_64__)
    void* sched_sp = nullptr;
#else
    ucontext_t sched_ctx;
    std::vector<ucontext_t> ctx;
#endif
    Launch* launch = nullptr;
    std::string error;
    // Dynamic shared memory: kMaxDynamicShared rounded up to pages, then one unmapped page.
    unsigned char* dyn_map = nullptr;
    std::size_t dyn_len = 0;
    ~Worker() {
        for (auto& f : fibers)
            if (f.stack) munmap(f.stack, kStack + page());
        if (dyn_map) munmap(dyn_map, dyn_len + page());
    }
    static std::size_t page() { return (std::size_t)sysconf(_SC_PAGESIZE); }
};

struct Launch {
    const Entry* entry;
    void** params;
};

thread_local Worker t_worker;

void fiber_main() {
    Worker& w = t_worker;
    w.launch->entry->invoke(w.launch->entry->fn, w.launch->params);
    t_fiber->wait = Wait::Done;
#if defined(__x86_64__)
    void* dummy;
    ffc_emu_switch(&dummy, w.sched_sp);
#else
    setcontext(&w.sched_ctx);
#endif
    __builtin_unreachable();
}

void to_scheduler() {
    Worker& w = t_worker;
#if defined(__x86_64__)
    ffc_emu_switch(&t_fiber->sp, w.sched_sp);
#else
    swapcontext(&w.ctx[t_fiber - w.fibers.data()], &w.sched_ctx);
#endif
}

bool ensure_fibers(Worker& w, unsigned n) {
    std::size_t page = Worker::page();
    while (w.fibers.size() < n) {
        void* m = mmap(nullptr, kStack + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return false;
        mprotect(m, page, PROT_NONE);  // guard page: a stack overflow faults instead of corrupting
        Fiber f;
        f.stack = static_cast<char*>(m);
        w.fibers.push_back(f);
#if !defined(__x86_64__)
        w.ctx.emplace_back();
#endif
    }
    return true;
}

// The block's dynamic shared memory: `bytes` (rounded up to 16) ending at the guard page.
unsigned char* dynamic_shared(Worker& w, unsigned bytes) {
    if (!w.dyn_map) {
        std::size_t page = Worker::page();
        w.dyn_len = (kMaxDynamicShared + page - 1) / page * page;
        void* m = mmap(nullptr, w.dyn_len + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return nullptr;
        mprotect(static_cast<char*>(m) + w.dyn_len, page, PROT_NONE);
        w.dyn_map = static_cast<unsigned char*>(m);
    }
    std::size_t len = ((std::size_t)bytes + 15) / 16 * 16;
    return w.dyn_map + w.dyn_len - len;
}

void reset_fiber(Worker& w, unsigned i) {
    Fiber& f = w.fibers[i];
    char* top = f.stack + Worker::page() + kStack;
#if defined(__x86_64__)
    // Initial frame, popped by ffc_emu_switch: mxcsr/fpu word, 6 registers, return into fiber_main
    // (rsp ≡ 8 mod 16 at its entry, as after a call).
    auto* sp = reinterpret_cast<std::uint64_t*>(top);
    *--sp = 0;                                                    // fake return address of fiber_main
    *--sp = reinterpret_cast<std::uint64_t>(&fiber_main);         // ret target
    for (int r = 0; r < 6; r++) *--sp = 0;                        // rbp rbx r12..r15
    std::uint32_t csr[2];
    __asm__ volatile("stmxcsr %0" : "=m"(csr[0]));
    __asm__ volatile("fnstcw %0" : "=m"(csr[1]));
    *--sp = (std::uint64_t)csr[0] | ((std::uint64_t)(csr[1] & 0xffff) << 32);
    f.sp = sp;
#else
    ucontext_t& c = w.ctx[i];
    getcontext(&c);
    c.uc_stack.ss_sp = f.stack + Worker::page();
    c.uc_stack.ss_size = kStack;
    c.uc_link = nullptr;
    makecontext(&c, fiber_main, 0);
#endif
    f.wait = Wait::Run;
    f.mask = 0;
    f.file = "";
    f.line = 0;
}

void resume(Worker& w, unsigned i) {
    t_fiber = &w.fibers[i];
#if defined(__x86_64__)
    ffc_emu_switch(&w.sched_sp, t_fiber->sp);
#else
    swapcontext(&w.sched_ctx, &w.ctx[i]);
#endif
}

std::string where(const Fiber& f) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "thread (%u,%u,%u) at %s:%d", f.tid.x, f.tid.y, f.tid.z, f.file, f.line);
    return buf;
}

std::string block_name(const Block& b) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "block (%u,%u,%u)", b.idx.x, b.idx.y, b.idx.z);
    return buf;
}

// Runs one block to completion. Returns false (with t_worker.error set) on a diagnosed bug.
bool run_block(Worker& w, Block& b, unsigned order, std::uint64_t& rng) {
    const unsigned n = b.threads;
    if (b.dyn_bytes) {
        const float nan = std::nanf("");
        for (unsigned i = 0; i + 4 <= b.dyn_bytes; i += 4) std::memcpy(b.dyn + i, &nan, 4);
    }
    for (unsigned i = 0; i < n; i++) {
        reset_fiber(w, i);
        Fiber& f = w.fibers[i];
        f.linear = i;
        f.tid = uint3{i % b.dim.x, (i / b.dim.x) % b.dim.y, i / (b.dim.x * b.dim.y)};
    }
    std::vector<unsigned> seq(n);
    for (unsigned i = 0; i < n; i++) seq[i] = order == 1 ? n - 1 - i : i;
    while (true) {
        if (order == 2) {  // a fresh random permutation every round (xorshift64*)
            for (unsigned i = n; i > 1; i--) {
                rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
                unsigned j = (unsigned)((rng * 2685821657736338717ull) >> 33) % i;
                std::swap(seq[i - 1], seq[j]);
            }
        }
        for (unsigned i : seq) {
            if (w.fibers[i].wait == Wait::Run) resume(w, i);
            if (!w.error.empty()) return false;
        }
        // Nobody can run. Release complete warp operations first.
        bool released = false;
        for (unsigned base = 0; base < n; base += 32) {
            unsigned lanes = n - base < 32 ? n - base : 32;
            for (unsigned l = 0; l < lanes; l++) {
                Fiber& f = w.fibers[base + l];
                if (f.wait != Wait::Warp) continue;
                bool ready = true;
                for (unsigned m = 0; m < lanes; m++) {
                    if (!((f.mask >> m) & 1u)) continue;
                    Fiber& g = w.fibers[base + m];
                    if (g.wait == Wait::Warp && g.mask == f.mask && g.line == f.line && g.file == f.file) continue;
                    if (g.wait == Wait::Warp && (g.mask != f.mask || g.line != f.line || g.file != f.file)) {
                        w.error = "warp-synchronous operations do not match in " + block_name(b) + ": " +
                                  where(f) + " vs " + where(g);
                        return false;
                    }
                    if (g.wait == Wait::Done) {
                        w.error = "warp operation in " + block_name(b) + ": " + where(f) +
                                  " names a lane that has exited (thread (" + std::to_string(g.tid.x) + "," +
                                  std::to_string(g.tid.y) + "," + std::to_string(g.tid.z) + "))";
                        return false;
                    }
                    ready = false;  // g waits at a block barrier: checked below
                }
                if (ready) {
                    unsigned mask = f.mask;
                    for (unsigned m = 0; m < lanes; m++)
                        if ((mask >> m) & 1u) w.fibers[base + m].wait = Wait::Run;
                    released = true;
                }
            }
        }
        if (released) continue;
        const Fiber* at_block = nullptr;
        const Fiber* done = nullptr;
        for (unsigned i = 0; i < n; i++) {
            const Fiber& f = w.fibers[i];
            if (f.wait == Wait::Warp) {
                w.error = "deadlock in " + block_name(b) + ": " + where(f) +
                          " waits in a warp operation whose lanes wait at __syncthreads";
                return false;
            }
            if (f.wait == Wait::Done && !done) done = &f;
            if (f.wait == Wait::Block) {
                if (at_block && (at_block->line != f.line || std::strcmp(at_block->file, f.file) != 0)) {
                    w.error = "divergent __syncthreads in " + block_name(b) + ": " + where(*at_block) +
                              " but " + where(f);
                    return false;
                }
                if (!at_block) at_block = &f;
            }
        }
        if (!at_block) return true;  // every thread finished
        if (done) {
            char buf[96];
            std::snprintf(buf, sizeof buf, "thread (%u,%u,%u) has exited", done->tid.x, done->tid.y, done->tid.z);
            w.error = "__syncthreads in " + block_name(b) + " not reached by every thread: " + where(*at_block) +
                      " waits, but " + buf + " (early return before a barrier?)";
            return false;
        }
        int any = 0, all = 1, count = 0;
        for (unsigned i = 0; i < n; i++) {
            any |= w.fibers[i].pred;
            all &= w.fibers[i].pred;
            count += w.fibers[i].pred;
            w.fibers[i].wait = Wait::Run;
        }
        b.red_or = any, b.red_and = all, b.red_count = count;
    }
}

}  // namespace

void sync_block(const char* file, int line, int pred) {
    t_fiber->pred = pred;
    t_fiber->wait = Wait::Block;
    t_fiber->file = file;
    t_fiber->line = line;
    to_scheduler();
}

void sync_warp(const char* file, int line, unsigned mask) {
    unsigned me = lane();
    if (!((mask >> me) & 1u)) {
        t_worker.error = std::string("warp operation at ") + file + ":" + std::to_string(line) +
                         ": the calling lane " + std::to_string(me) + " is not in its mask";
        to_scheduler();
    }
    mask &= present_mask();
    t_fiber->wait = Wait::Warp;
    t_fiber->mask = mask;
    t_fiber->file = file;
    t_fiber->line = line;
    to_scheduler();
}

void trap(const char* file, int line, const char* what) {
    t_worker.error = std::string(what) + " at " + file + ":" + std::to_string(line) + " in " + where(*t_fiber);
    to_scheduler();
    __builtin_unreachable();
}

}  // namespace ffc_emu

// Launches kernel `name` over grid × block with `shared` bytes of dynamic shared memory and
// CUDA-style params. `sig` is the caller's argument
// kinds (p pointer, i int, u unsigned, f float, d double, l/L 64-bit), checked against the
// kernel's real C++ signature. mode: 0 plain arithmetic, 1 contracted (FMA). order: 0 forward,
// 1 reverse, 2 random (seeded). Returns 0, or 1 with a diagnostic in err.
extern "C" int ffc_emu_launch(const char* name, const unsigned grid[3], const unsigned block[3], unsigned shared,
                              const char* sig, void** params, unsigned mode, unsigned order,
                              unsigned long long seed, char* err, std::size_t err_len) {
    const ffc_emu::Entry* e = ffc_emu_find(name, mode);
    if (!e) {
        std::snprintf(err, err_len, "%s: no such kernel in the emulated build (mode %u)", name, mode);
        return 1;
    }
    if (std::strcmp(e->sig, sig) != 0) {
        std::snprintf(err, err_len, "%s: argument kinds differ: the kernel takes (%s), the launch passes (%s)", name,
                      e->sig, sig);
        return 1;
    }
    return ffc_emu_run(e, grid, block, shared, params, order, seed, err, err_len);
}

extern "C" int ffc_emu_run(const ffc_emu::Entry* e, const unsigned grid[3], const unsigned block[3], unsigned shared,
                           void** params, unsigned order, unsigned long long seed, char* err, std::size_t err_len) {
    using namespace ffc_emu;
    const char* name = e->name;
    auto fail = [&](const std::string& m) {
        std::snprintf(err, err_len, "%s: %s", name, m.c_str());
        return 1;
    };
    unsigned threads = block[0] * block[1] * block[2];
    if (threads == 0 || threads > 1024) return fail("block of " + std::to_string(threads) + " threads (1..=1024)");
    if (grid[0] == 0 || grid[1] == 0 || grid[2] == 0 || grid[1] > 65535 || grid[2] > 65535)
        return fail("grid dimensions out of range");
    Worker& w = t_worker;
    if (!ensure_fibers(w, threads)) return fail("cannot map fiber stacks");
    if (shared > kMaxDynamicShared)
        return fail(std::to_string(shared) + " bytes of dynamic shared memory (the emulator models at most " +
                    std::to_string(kMaxDynamicShared) + ")");
    Launch l{e, params};
    w.launch = &l;
    w.error.clear();
    Block b{};
    b.dim = uint3{block[0], block[1], block[2]};
    b.grid = uint3{grid[0], grid[1], grid[2]};
    b.threads = threads;
    b.dyn_bytes = shared;
    if (shared && !(b.dyn = dynamic_shared(w, shared))) return fail("cannot map dynamic shared memory");
    Block* prev_block = t_block;
    Fiber* prev_fiber = t_fiber;
    t_block = &b;
    std::uint64_t rng = seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;
    int rc = 0;
    for (unsigned z = 0; z < grid[2] && !rc; z++)
        for (unsigned y = 0; y < grid[1] && !rc; y++)
            for (unsigned x = 0; x < grid[0] && !rc; x++) {
                b.idx = uint3{x, y, z};
                if (!run_block(w, b, order, rng)) rc = fail(w.error);
            }
    t_block = prev_block;
    t_fiber = prev_fiber;
    w.launch = nullptr;
    return rc;
}
