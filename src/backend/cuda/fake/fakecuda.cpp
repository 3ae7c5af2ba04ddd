// fakecuda: a libcuda.so that is not a GPU. It exports the CUDA driver entry points fastfc reaches
// through cudarc and runs every launched kernel through the emulated executor (../emu), so the
// real host path (src/backend/cuda/driver.rs, cudarc, dlopen) runs in CI on machines without a
// GPU. It is stricter than a GPU, and it says it is fake wherever a device is named.
//
// Rules it enforces (each has a planted-bug test in tests/fakecuda.rs):
// - Calls that need a context fail with CUDA_ERROR_INVALID_CONTEXT on a thread with none current.
// - Each stream is its own deferred queue, run only when the host synchronises (cuStreamSynchronize,
//   cuCtxSynchronize); non-blocking streams are ordered neither with the legacy default stream nor
//   with each other. Work on a buffer last written on another stream with no host synchronisation
//   of that stream in between is a hazard (CUDA_ERROR_ILLEGAL_STATE), named with both streams.
//   Device-to-host copies land at the synchronisation, not before; new memory holds 0xff bytes
//   (NaN floats), not zeros.
// - Capture follows CUDA's thread-local mode: an allocation, free, memset, copy or synchronisation
//   issued by the capturing thread fails (900) and invalidates the capture (901 at its end).
//   Kernel parameters are copied at capture time.
// - Every pointer argument is checked against live allocations of the launch's device at launch
//   and at each graph replay (use after free, out of range: CUDA_ERROR_ILLEGAL_ADDRESS). Freed
//   address ranges are never reused. Leaks and double frees are reported at context release.
// - cuMemFree of a buffer that queued, unsynchronised work still uses is reported: CUDA would
//   wait for that work, but code that relies on the implicit wait is one refactor from a race.
// - Dynamic shared memory: a launch may ask for up to 48 KiB, or up to what cuFuncSetAttribute
//   (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) opted the kernel in to, which is itself held
//   to the device's opt-in limit for its compute capability (sm_75 64 KiB, sm_80 163 KiB,
//   sm_86/89 99 KiB, sm_90 227 KiB); anything more fails as CUDA does (CUDA_ERROR_INVALID_VALUE).
// - Not modelled: overruns inside a kernel (pointers are checked where they start), the memory
//   model, timing.
// - Faults on demand: FAKECUDA_FAIL="cuMemAlloc_v2:3,cuLaunchKernel:10" fails the 3rd allocation
//   (out of memory) and the 10th launch; FAKECUDA_MEM_MIB sets each device's memory (default
//   4096), FAKECUDA_DEVICES the device count (default 2), FAKECUDA_CC the compute capability
//   (default 75), FAKECUDA_ARITH=plain|fma the kernels' arithmetic (default fma, as NVRTC compiles).
//   fakecuda_set_faults(device, spec) does the same from a test for one device.
//
// Every violation is printed to stderr ("fakecuda: ..."), kept for fakecuda_problems(), and its
// message is what cuGetErrorString returns for the failing call's code on that thread, so cudarc's
// error (and fastfc's) names the call, the buffer and the stream(s).
// The standard headers come first: ffc_emu.h defines CUDA's keywords (__noinline__ …) as macros.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ffc_emu.h"

namespace {

// CUresult values (cuda.h; cudarc's cuda-12020 bindings).
enum : int {
    OK = 0,
    INVALID_VALUE = 1,
    OUT_OF_MEMORY = 2,
    NOT_INITIALIZED = 3,
    NO_DEVICE = 100,
    INVALID_DEVICE = 101,
    INVALID_IMAGE = 200,
    INVALID_CONTEXT = 201,
    INVALID_HANDLE = 400,
    ILLEGAL_STATE = 401,
    NOT_FOUND = 500,
    ILLEGAL_ADDRESS = 700,
    LAUNCH_FAILED = 719,
    CAPTURE_UNSUPPORTED = 900,
    CAPTURE_INVALIDATED = 901,
    CAPTURE_WRONG_THREAD = 908,
    UNKNOWN = 999,
};

const char* generic_error(int code) {
    switch (code) {
        case OK: return "no error";
        case INVALID_VALUE: return "invalid argument";
        case OUT_OF_MEMORY: return "out of memory";
        case NOT_INITIALIZED: return "initialization error";
        case NO_DEVICE: return "no CUDA-capable device is detected";
        case INVALID_DEVICE: return "invalid device ordinal";
        case INVALID_IMAGE: return "device kernel image is invalid";
        case INVALID_CONTEXT: return "invalid device context";
        case INVALID_HANDLE: return "invalid resource handle";
        case ILLEGAL_STATE: return "the operation cannot be performed in the present state";
        case NOT_FOUND: return "named symbol not found";
        case ILLEGAL_ADDRESS: return "an illegal memory access was encountered";
        case LAUNCH_FAILED: return "unspecified launch failure";
        case CAPTURE_UNSUPPORTED: return "operation not permitted when stream is capturing";
        case CAPTURE_INVALIDATED: return "operation failed due to a previous error during capture";
        case CAPTURE_WRONG_THREAD: return "attempted to end capture on a thread other than the one that began it";
        default: return "unknown error";
    }
}

std::string fmt(const char* f, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, f);
    std::vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

struct Ctx;
struct Stream;

// A device allocation. Freed ones stay in the table (their range is never reused) to name a use
// after free.
struct Alloc {
    unsigned long long base = 0;
    std::size_t size = 0, mapped = 0;
    unsigned id = 0;
    int device = 0;
    bool live = true;
    // Last write: stream, its sequence number, the call.
    Stream* writer = nullptr;
    unsigned long long write_seq = 0;
    const char* write_call = "";
};

// One deferred operation on a stream.
struct Op {
    enum Kind { Kernel, HtoD, DtoH, Memset } kind;
    const char* call;
    unsigned long long seq;
    // Kernel
    const ffc_emu::Entry* entry = nullptr;
    unsigned grid[3] = {1, 1, 1}, block[3] = {1, 1, 1};
    unsigned shared = 0;  // dynamic shared memory, bytes
    std::vector<std::vector<unsigned char>> params;
    // Copies and memset
    unsigned long long dev = 0;
    void* host = nullptr;
    std::vector<unsigned char> data;  // HtoD: the source, snapshotted at the call (pageable memory)
    std::size_t bytes = 0;
    unsigned char value = 0;
};

struct Node {  // a captured kernel
    const ffc_emu::Entry* entry;
    unsigned grid[3], block[3];
    unsigned shared;
    std::vector<std::vector<unsigned char>> params;
};

struct Graph {
    Stream* origin;
    std::vector<Node> nodes;
    bool live = true;
};

struct GraphExec {
    Graph* from;
    std::vector<Node> nodes;
    bool live = true;
};

struct Stream {
    Ctx* ctx;
    unsigned id;  // 0: the context's legacy default stream
    bool blocking;
    bool live = true;
    std::vector<Op> queue;
    unsigned long long last_seq = 0;    // of the last op enqueued
    unsigned long long synced_upto = 0;  // host-synchronised through this seq
    // Capture
    bool capturing = false;
    bool invalidated = false;
    std::string invalid_why;
    std::thread::id capture_thread;
    unsigned capture_mode = 0;
    Graph* graph = nullptr;
    std::string name() const {
        if (id == 0) return "the legacy default stream";
        return fmt("stream %u (%s)", id, blocking ? "blocking" : "non-blocking");
    }
};

struct Module {
    Ctx* ctx;
    std::string image;  // searched for kernel names; empty for a manifest
    std::vector<std::string> manifest;
    bool live = true;
};

struct Function {
    Module* module;
    const ffc_emu::Entry* entry;
    int max_dynamic_shared = 48 * 1024;  // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
};

struct Ctx {
    int device;
    int refs = 0;
    Stream* legacy = nullptr;
    std::vector<std::string> double_frees;
    // A kernel that failed while running leaves the context unusable, as on a GPU: every later
    // call that needs it returns this error until the context is released.
    int sticky = 0;
    std::string sticky_why;
};

struct Faults {
    std::map<std::string, unsigned long long> at;  // call → the Nth call fails
    std::map<std::string, unsigned long long> seen;
};

struct State {
    std::mutex mu;
    bool initialized = false;
    int devices = 2;
    int cc = 75;
    unsigned mode = 1;  // fma
    std::size_t mem_default = 4096ull << 20;
    std::vector<std::size_t> mem_total;  // per device
    std::vector<Ctx*> primary;
    std::vector<std::size_t> live_bytes;
    std::map<unsigned long long, Alloc> allocs;  // by base
    std::vector<Stream*> streams;
    std::vector<Faults> faults;  // per device
    unsigned next_alloc = 1, next_stream = 1;
    unsigned long long seq = 0;
    std::vector<std::string> problems;
    // Counters for fakecuda_stats.
    unsigned long long calls = 0, launches = 0, replays = 0, syncs = 0, allocations = 0, faults_fired = 0;
    // What the host asks of the device: launch calls (cuLaunchKernel outside a capture, and
    // cuGraphLaunch), the kernels those graph launches hold, and bytes copied each way.
    unsigned long long host_launches = 0, graph_nodes = 0, htod_bytes = 0, dtoh_bytes = 0;
    // Every handle handed out, to tell a live one from a stale or foreign pointer.
    std::vector<void*> modules, functions, graphs, execs;
};

template <class T>
T* handle(const std::vector<void*>& known, void* h) {
    for (void* k : known)
        if (k == h) return static_cast<T*>(h);
    return nullptr;
}

State& S() {
    static State* s = new State;  // never destroyed: outlives every static that calls in
    return *s;
}

thread_local Ctx* t_ctx = nullptr;
thread_local int t_last_code = 0;
thread_local std::string t_last_msg;

// The last message of each code on any thread: what cuGetErrorString gives a thread that did not
// make the failing call itself (an error returned by a worker thread and printed by another).
std::mutex g_msg_mu;
std::map<int, std::string>& last_by_code() {
    static auto* m = new std::map<int, std::string>;
    return *m;
}

// Records a failure: the message becomes cuGetErrorString's text for `code` on this thread.
int fail(int code, const std::string& msg, bool problem = true) {
    t_last_code = code;
    t_last_msg = "fakecuda: " + msg;
    {
        std::lock_guard<std::mutex> l(g_msg_mu);
        last_by_code()[code] = t_last_msg;
    }
    if (problem) {
        S().problems.push_back(t_last_msg);
        std::fprintf(stderr, "%s\n", t_last_msg.c_str());
    }
    return code;
}

void parse_faults(Faults& f, const char* spec) {
    f.at.clear();
    f.seen.clear();
    std::string s = spec ? spec : "";
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t j = s.find(',', i);
        if (j == std::string::npos) j = s.size();
        std::string item = s.substr(i, j - i);
        std::size_t c = item.find(':');
        if (c != std::string::npos) f.at[item.substr(0, c)] = std::strtoull(item.c_str() + c + 1, nullptr, 10);
        i = j + 1;
    }
}

// Whether this call (the Nth of its name on `device`) is planted to fail.
bool planted(int device, const char* call) {
    State& s = S();
    if (device < 0 || device >= (int)s.faults.size()) return false;
    Faults& f = s.faults[device];
    auto it = f.at.find(call);
    if (it == f.at.end()) return false;
    bool hit = ++f.seen[call] == it->second;
    s.faults_fired += hit;
    return hit;
}

int env_int(const char* name, int dflt, int lo, int hi) {
    const char* v = std::getenv(name);
    if (!v || !*v) return dflt;
    int x = std::atoi(v);
    return x < lo ? lo : (x > hi ? hi : x);
}

bool cpu_has_fma() {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("fma");
#else
    return true;
#endif
}

int need_ctx(const char* call) {
    if (!t_ctx)
        return fail(INVALID_CONTEXT,
                    fmt("%s on a thread with no current context (cuCtxSetCurrent first, as CUDA requires)", call));
    if (t_ctx->refs == 0)
        return fail(INVALID_CONTEXT, fmt("%s: the current context (device %d) has been released", call, t_ctx->device));
    if (t_ctx->sticky)
        return fail(t_ctx->sticky, fmt("%s: device %d's context is unusable after an earlier failure: %s", call,
                                       t_ctx->device, t_ctx->sticky_why.c_str()));
    return OK;
}

// The stream a handle names: NULL and CU_STREAM_LEGACY (0x1) are the current context's legacy
// stream; anything else must be a live stream made by cuStreamCreate.
int resolve(void* h, Stream** out, const char* call) {
    if (h == nullptr || h == reinterpret_cast<void*>(0x1)) {
        if (int rc = need_ctx(call)) return rc;
        *out = t_ctx->legacy;
        return OK;
    }
    if (h == reinterpret_cast<void*>(0x2))
        return fail(INVALID_HANDLE, fmt("%s: the per-thread default stream is not modelled", call));
    for (Stream* st : S().streams)
        if (st == h) {
            if (!st->live) return fail(INVALID_HANDLE, fmt("%s on destroyed %s", call, st->name().c_str()));
            *out = st;
            return OK;
        }
    return fail(INVALID_HANDLE, fmt("%s: %p is not a stream", call, h));
}

int same_ctx(Ctx* c, const char* call, const char* what) {
    if (int rc = need_ctx(call)) return rc;
    if (t_ctx != c)
        return fail(INVALID_CONTEXT, fmt("%s: the %s belongs to device %d but the current context is device %d's",
                                         call, what, c->device, t_ctx->device));
    return OK;
}

// The capture a call from this thread would break (thread-local mode: the capturing thread's own
// calls; global mode: anyone's), or null.
Stream* capture_broken_by_this_thread() {
    for (Stream* st : S().streams)
        if (st->live && st->capturing && (st->capture_mode == 0 || st->capture_thread == std::this_thread::get_id()))
            return st;
    return nullptr;
}

int forbid_during_capture(const char* call) {
    Stream* st = capture_broken_by_this_thread();
    if (!st) return OK;
    if (!st->invalidated) {
        st->invalidated = true;
        st->invalid_why = fmt("%s was called by the capturing thread while %s was capturing", call, st->name().c_str());
    }
    return fail(CAPTURE_UNSUPPORTED, st->invalid_why);
}

std::string buf_name(const Alloc& a) {
    return fmt("buffer #%u (0x%llx, %zu bytes, device %d)", a.id, a.base, a.size, a.device);
}

// The allocation holding [p, p + n): live ones first; else why not.
int find_alloc(unsigned long long p, std::size_t n, Stream* st, Alloc** out, const std::string& call_only) {
    int device = st->ctx->device;
    const std::string call = call_only + " on " + st->name();
    State& s = S();
    auto it = s.allocs.upper_bound(p);
    if (it != s.allocs.begin()) {
        --it;
        Alloc& a = it->second;
        if (p >= a.base && p <= a.base + a.size) {
            if (!a.live)
                return fail(ILLEGAL_ADDRESS, fmt("%s: use after free: 0x%llx is in %s, freed earlier", call.c_str(), p,
                                                 buf_name(a).c_str()));
            if (p + n > a.base + a.size)
                return fail(ILLEGAL_ADDRESS, fmt("%s: out of range: %zu bytes at 0x%llx overrun %s", call.c_str(), n, p,
                                                 buf_name(a).c_str()));
            if (a.device != device)
                return fail(ILLEGAL_ADDRESS, fmt("%s: 0x%llx is %s, not on device %d", call.c_str(), p,
                                                 buf_name(a).c_str(), device));
            *out = &a;
            return OK;
        }
    }
    return fail(ILLEGAL_ADDRESS, fmt("%s: out of range: 0x%llx is in no allocation of device %d", call.c_str(), p, device));
}

// Checks one access by work on `st` against the buffer's last write; records a write.
int touch(Alloc& a, Stream* st, bool write, unsigned long long seq, const char* call, const std::string& what) {
    Stream* w = a.writer;
    // The legacy stream is ordered with blocking streams (each way); nothing else is ordered.
    bool ordered = (w && w->id == 0 && st->blocking) || (w && st->id == 0 && w->blocking);
    if (w && w != st && !ordered && a.write_seq > w->synced_upto) {
        return fail(ILLEGAL_STATE,
                    fmt("hazard: %s on %s %s %s, last written by %s on %s with no synchronisation in between "
                        "(streams are not ordered with each other)",
                        what.c_str(), st->name().c_str(), write ? "writes" : "reads", buf_name(a).c_str(),
                        a.write_call, w->name().c_str()));
    }
    (void)call;
    if (write) {
        a.writer = st;
        a.write_seq = seq;
        a.write_call = call;
    }
    return OK;
}

// The pointer parameters of a kernel launch: each checked against live allocations of the
// stream's device and against the last writer.
int check_kernel(const ffc_emu::Entry* e, const std::vector<std::vector<unsigned char>>& params, Stream* st,
                 unsigned long long seq, const std::string& call, bool record) {
    std::size_t n = std::strlen(e->access);
    // Everything is checked before anything is recorded: a launch that fails leaves no trace.
    std::vector<std::pair<Alloc*, char>> touched;
    for (std::size_t i = 0; i < n; i++) {
        char acc = e->access[i];
        if (acc == '-') continue;
        unsigned long long p = 0;
        std::memcpy(&p, params[i].data(), sizeof p);
        if (p == 0) continue;  // optional buffers are passed as null and not dereferenced
        std::string what = fmt("%s (kernel %s, argument %zu)", call.c_str(), e->name, i);
        Alloc* a = nullptr;
        if (int rc = find_alloc(p, 0, st, &a, what)) return rc;
        if (!record) continue;
        Stream* w = a->writer;
        bool ordered = (w && w->id == 0 && st->blocking) || (w && st->id == 0 && w->blocking);
        if (w && w != st && !ordered && a->write_seq > w->synced_upto) {
            Alloc copy = *a;
            return touch(copy, st, acc == 'w', seq, e->name, what);  // reports the hazard
        }
        touched.push_back({a, acc});
    }
    for (auto& [a, acc] : touched)
        if (acc == 'w') {
            a->writer = st;
            a->write_seq = seq;
            a->write_call = e->name;
        }
    return OK;
}

// Runs one queued operation (at a host synchronisation).
int execute(Op& op) {
    State& s = S();
    switch (op.kind) {
        case Op::Kernel: {
            std::vector<void*> ptrs;
            for (auto& p : op.params) ptrs.push_back(p.data());
            char err[1024] = {0};
            s.launches++;
            if (ffc_emu_run(op.entry, op.grid, op.block, op.shared, ptrs.data(), 0, 0, err, sizeof err) != 0)
                return fail(LAUNCH_FAILED, fmt("%s (kernel %s) failed in the emulator: %s", op.call, op.entry->name, err));
            return OK;
        }
        case Op::HtoD:
            std::memcpy(reinterpret_cast<void*>(op.dev), op.data.data(), op.bytes);
            return OK;
        case Op::DtoH:
            std::memcpy(op.host, reinterpret_cast<void*>(op.dev), op.bytes);
            return OK;
        case Op::Memset:
            std::memset(reinterpret_cast<void*>(op.dev), op.value, op.bytes);
            return OK;
    }
    return OK;
}

// Host synchronisation of one stream: runs its queue in order. A kernel that fails makes the
// context unusable (sticky), as on a GPU.
int drain(Stream* st) {
    S().syncs++;
    int rc = OK;
    for (Op& op : st->queue) {
        if (rc) break;  // after a failure nothing more runs
        rc = execute(op);
        if (rc == LAUNCH_FAILED && !st->ctx->sticky) {
            st->ctx->sticky = LAUNCH_FAILED;
            st->ctx->sticky_why = t_last_msg;
        }
    }
    st->queue.clear();
    st->synced_upto = st->last_seq;
    return rc;
}

int enqueue(Stream* st, Op op) {
    State& s = S();
    op.seq = ++s.seq;
    st->last_seq = op.seq;
    st->queue.push_back(std::move(op));
    return OK;
}

unsigned long long elf_size(const unsigned char* p) {
    // ELF64: e_shoff at 40, e_shentsize at 58, e_shnum at 60.
    unsigned long long shoff;
    unsigned short shentsize, shnum;
    std::memcpy(&shoff, p + 40, 8);
    std::memcpy(&shentsize, p + 58, 2);
    std::memcpy(&shnum, p + 60, 2);
    return shoff + (unsigned long long)shentsize * shnum;
}

void release_ctx(Ctx* c) {
    State& s = S();
    for (Stream* st : s.streams)
        if (st->live && st->ctx == c) {
            if (st->id != 0)
                fail(ILLEGAL_STATE, fmt("leak: %s was not destroyed before its context was released", st->name().c_str()));
            drain(st);
            st->live = false;
        }
    std::size_t leaked = 0, leaked_bytes = 0;
    std::string first;
    for (auto& [base, a] : s.allocs)
        if (a.live && a.device == c->device) {
            if (!leaked) first = buf_name(a);
            leaked++;
            leaked_bytes += a.size;
            a.live = false;
            munmap(reinterpret_cast<void*>(a.base), a.mapped);
            mmap(reinterpret_cast<void*>(a.base), a.mapped, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
                 -1, 0);
        }
    if (leaked)
        fail(ILLEGAL_STATE, fmt("leak: %zu allocation(s) of %zu bytes still live when device %d's context was released "
                                "(first: %s)",
                                leaked, leaked_bytes, c->device, first.c_str()));
    for (auto& d : c->double_frees)
        fail(ILLEGAL_STATE, fmt("at release of device %d's context: %s", c->device, d.c_str()), true);
    c->double_frees.clear();
    c->sticky = 0;
    c->sticky_why.clear();
    s.live_bytes[c->device] = 0;
}

}  // namespace

#define ENTER std::lock_guard<std::mutex> lock(S().mu); S().calls++
#define API extern "C" __attribute__((visibility("default"))) int

API cuInit(unsigned flags) {
    ENTER;
    State& s = S();
    if (flags != 0) return fail(INVALID_VALUE, "cuInit: flags must be 0");
    if (s.initialized) return OK;
    s.devices = env_int("FAKECUDA_DEVICES", 2, 1, 16);
    s.cc = env_int("FAKECUDA_CC", 75, 50, 120);
    s.mem_default = (std::size_t)env_int("FAKECUDA_MEM_MIB", 4096, 1, 1 << 20) << 20;
    const char* arith = std::getenv("FAKECUDA_ARITH");
    bool want_fma = !(arith && std::strcmp(arith, "plain") == 0);
    s.mode = want_fma && cpu_has_fma() ? 1 : 0;
    s.primary.assign(s.devices, nullptr);
    s.live_bytes.assign(s.devices, 0);
    s.mem_total.assign(s.devices, s.mem_default);
    s.faults.assign(s.devices, Faults{});
    for (auto& f : s.faults) parse_faults(f, std::getenv("FAKECUDA_FAIL"));
    s.initialized = true;
    return OK;
}

#define NEED_INIT \
    if (!S().initialized) return fail(NOT_INITIALIZED, fmt("%s before cuInit", __func__))

API cuDriverGetVersion(int* v) {
    ENTER;
    if (!v) return fail(INVALID_VALUE, "cuDriverGetVersion: null");
    *v = 12020;
    return OK;
}

API cuDeviceGetCount(int* n) {
    ENTER;
    NEED_INIT;
    *n = S().devices;
    return OK;
}

API cuDeviceGet(int* d, int ordinal) {
    ENTER;
    NEED_INIT;
    if (ordinal < 0 || ordinal >= S().devices)
        return fail(INVALID_DEVICE, fmt("cuDeviceGet: device %d of %d", ordinal, S().devices));
    *d = ordinal;
    return OK;
}

API cuDeviceGetName(char* name, int len, int dev) {
    ENTER;
    NEED_INIT;
    if (dev < 0 || dev >= S().devices) return fail(INVALID_DEVICE, fmt("cuDeviceGetName: device %d", dev));
    std::snprintf(name, (std::size_t)len, "fakecuda %d (CUDA emulated on the host CPU, %s arithmetic; not a GPU)", dev,
                  S().mode ? "fma" : "plain");
    return OK;
}

// The most dynamic shared memory one block may opt in to on a device of compute capability `cc`
// (CUDA C Programming Guide, "Technical Specifications per Compute Capability").
static int optin_shared(int cc) {
    if (cc >= 90) return 227 * 1024;
    if (cc >= 86) return 99 * 1024;
    if (cc >= 80) return 163 * 1024;
    if (cc >= 70) return cc == 75 ? 64 * 1024 : 96 * 1024;
    return 48 * 1024;
}

API cuDeviceGetAttribute(int* v, int attr, int dev) {
    ENTER;
    NEED_INIT;
    if (dev < 0 || dev >= S().devices) return fail(INVALID_DEVICE, fmt("cuDeviceGetAttribute: device %d", dev));
    switch (attr) {
        case 75: *v = S().cc / 10; break;        // compute capability major
        case 76: *v = S().cc % 10; break;        // minor
        case 16: *v = 1; break;                  // multiprocessors
        case 13: *v = 0; break;                  // clock: unknown (no peak FLOP/s for a fake)
        case 1: *v = 1024; break;                // max threads per block
        case 8: *v = 48 * 1024; break;           // shared memory per block
        case 97: *v = optin_shared(S().cc); break;  // shared memory per block, opt-in
        case 10: *v = 32; break;                 // warp size
        default:
            if (attr < 0 || attr > 140) return fail(INVALID_VALUE, fmt("cuDeviceGetAttribute: attribute %d", attr));
            *v = 0;
    }
    return OK;
}

API cuDevicePrimaryCtxRetain(void** out, int dev) {
    ENTER;
    NEED_INIT;
    State& s = S();
    if (dev < 0 || dev >= s.devices) return fail(INVALID_DEVICE, fmt("cuDevicePrimaryCtxRetain: device %d", dev));
    Ctx*& c = s.primary[dev];
    if (!c) {
        c = new Ctx{dev};
    }
    if (c->refs == 0) {
        auto* legacy = new Stream{c, 0, true};
        s.streams.push_back(legacy);
        c->legacy = legacy;
    }
    c->refs++;
    *out = c;
    return OK;
}

API cuDevicePrimaryCtxRelease_v2(int dev) {
    ENTER;
    NEED_INIT;
    State& s = S();
    if (dev < 0 || dev >= s.devices) return fail(INVALID_DEVICE, fmt("cuDevicePrimaryCtxRelease: device %d", dev));
    Ctx* c = s.primary[dev];
    if (!c || c->refs == 0) return fail(INVALID_CONTEXT, fmt("cuDevicePrimaryCtxRelease: device %d is not retained", dev));
    if (--c->refs == 0) {
        release_ctx(c);
        c->legacy = nullptr;
        // Threads whose current context this was keep the handle, as in CUDA (inactive).
    }
    return OK;
}

API cuCtxGetCurrent(void** out) {
    ENTER;
    *out = t_ctx;
    return OK;
}

API cuCtxSetCurrent(void* c) {
    ENTER;
    NEED_INIT;
    if (c) {
        bool known = false;
        for (Ctx* p : S().primary) known |= p == c;
        if (!known) return fail(INVALID_CONTEXT, fmt("cuCtxSetCurrent: %p is not a context", c));
        if (static_cast<Ctx*>(c)->refs == 0)
            return fail(INVALID_CONTEXT, fmt("cuCtxSetCurrent: device %d's context was released",
                                             static_cast<Ctx*>(c)->device));
    }
    t_ctx = static_cast<Ctx*>(c);
    return OK;
}

API cuCtxSynchronize() {
    ENTER;
    if (int rc = need_ctx("cuCtxSynchronize")) return rc;
    if (int rc = forbid_during_capture("cuCtxSynchronize")) return rc;
    int rc = OK;
    // Everything of this context, oldest first across streams.
    std::vector<std::pair<unsigned long long, Stream*>> order;
    for (Stream* st : S().streams)
        if (st->live && st->ctx == t_ctx && !st->queue.empty()) order.push_back({st->queue.front().seq, st});
    std::sort(order.begin(), order.end());
    for (auto& [seq, st] : order) {
        int r = drain(st);
        if (r && !rc) rc = r;
    }
    return rc;
}

API cuMemGetInfo_v2(std::size_t* free_b, std::size_t* total) {
    ENTER;
    if (int rc = need_ctx("cuMemGetInfo")) return rc;
    State& s = S();
    std::size_t t = s.mem_total[t_ctx->device], used = s.live_bytes[t_ctx->device];
    *total = t;
    *free_b = used < t ? t - used : 0;
    return OK;
}

API cuMemAlloc_v2(unsigned long long* out, std::size_t bytes) {
    ENTER;
    if (int rc = need_ctx("cuMemAlloc")) return rc;
    if (int rc = forbid_during_capture("cuMemAlloc")) return rc;
    State& s = S();
    int dev = t_ctx->device;
    if (bytes == 0) return fail(INVALID_VALUE, "cuMemAlloc of 0 bytes");
    if (planted(dev, "cuMemAlloc_v2"))
        return fail(OUT_OF_MEMORY, fmt("cuMemAlloc of %zu bytes on device %d: out of memory (planted by FAKECUDA_FAIL)",
                                       bytes, dev), false);
    if (s.live_bytes[dev] + bytes > s.mem_total[dev])
        return fail(OUT_OF_MEMORY, fmt("cuMemAlloc of %zu bytes on device %d: out of memory (%zu of %zu bytes in use)",
                                       bytes, dev, s.live_bytes[dev], s.mem_total[dev]), false);
    std::size_t page = (std::size_t)sysconf(_SC_PAGESIZE);
    std::size_t mapped = (bytes + page - 1) / page * page;
    void* m = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return fail(OUT_OF_MEMORY, fmt("cuMemAlloc of %zu bytes: the host is out of memory", bytes), false);
    std::memset(m, 0xff, bytes);  // not zero: a missing fill shows up as NaN
    Alloc a;
    a.base = reinterpret_cast<unsigned long long>(m);
    a.size = bytes;
    a.mapped = mapped;
    a.id = s.next_alloc++;
    a.device = dev;
    s.allocs[a.base] = a;
    s.live_bytes[dev] += bytes;
    s.allocations++;
    *out = a.base;
    return OK;
}

API cuMemFree_v2(unsigned long long p) {
    ENTER;
    if (int rc = need_ctx("cuMemFree")) return rc;
    if (int rc = forbid_during_capture("cuMemFree")) return rc;
    State& s = S();
    auto it = s.allocs.find(p);
    if (it == s.allocs.end()) return fail(INVALID_VALUE, fmt("cuMemFree: 0x%llx is not the start of an allocation", p));
    Alloc& a = it->second;
    if (!a.live) {
        std::string m = fmt("double free of %s", buf_name(a).c_str());
        if (Ctx* c = s.primary[a.device]) c->double_frees.push_back(m);
        return fail(INVALID_VALUE, "cuMemFree: " + m);
    }
    // Queued work that still uses it: freeing under it is a bug a GPU would not report.
    for (Stream* st : s.streams)
        for (Op& op : st->queue) {
            bool uses = false;
            if (op.kind == Op::Kernel) {
                for (std::size_t i = 0; i < op.params.size(); i++) {
                    if (op.entry->access[i] == '-') continue;
                    unsigned long long q;
                    std::memcpy(&q, op.params[i].data(), 8);
                    uses |= q >= a.base && q < a.base + a.size;
                }
            } else {
                uses = op.dev >= a.base && op.dev < a.base + a.size;
            }
            if (uses)
                return fail(ILLEGAL_STATE, fmt("cuMemFree of %s while %s queued on %s (not yet synchronised) uses it",
                                               buf_name(a).c_str(), op.call, st->name().c_str()));
        }
    a.live = false;
    s.live_bytes[a.device] -= a.size;
    // Keep the range reserved and inaccessible: never reused, so a stale pointer stays stale.
    mmap(reinterpret_cast<void*>(a.base), a.mapped, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
         0);
    return OK;
}

static int memset_on(Stream* st, unsigned long long p, unsigned char v, std::size_t n, const char* call) {
    Alloc* a = nullptr;
    if (int rc = find_alloc(p, n, st, &a, call)) return rc;
    Op op{Op::Memset, call, 0};
    op.dev = p;
    op.bytes = n;
    op.value = v;
    unsigned long long seq = S().seq + 1;
    if (int rc = touch(*a, st, true, seq, call, call)) return rc;
    return enqueue(st, std::move(op));
}

API cuMemsetD8_v2(unsigned long long p, unsigned char v, std::size_t n) {
    ENTER;
    if (int rc = need_ctx("cuMemsetD8")) return rc;
    if (int rc = forbid_during_capture("cuMemsetD8")) return rc;
    // The synchronous-looking memset goes on the legacy default stream and, like CUDA's for device
    // memory, returns before it has run.
    return memset_on(t_ctx->legacy, p, v, n, "cuMemsetD8 (legacy default stream)");
}

API cuMemsetD8Async(unsigned long long p, unsigned char v, std::size_t n, void* stream) {
    ENTER;
    Stream* st;
    if (int rc = resolve(stream, &st, "cuMemsetD8Async")) return rc;
    if (int rc = same_ctx(st->ctx, "cuMemsetD8Async", "stream")) return rc;
    if (int rc = forbid_during_capture("cuMemsetD8Async")) return rc;
    return memset_on(st, p, v, n, "cuMemsetD8Async");
}

API cuMemcpyHtoDAsync_v2(unsigned long long dst, const void* src, std::size_t n, void* stream) {
    ENTER;
    Stream* st;
    if (int rc = resolve(stream, &st, "cuMemcpyHtoDAsync")) return rc;
    if (int rc = same_ctx(st->ctx, "cuMemcpyHtoDAsync", "stream")) return rc;
    if (int rc = forbid_during_capture("cuMemcpyHtoDAsync")) return rc;
    Alloc* a = nullptr;
    if (int rc = find_alloc(dst, n, st, &a, "cuMemcpyHtoDAsync (destination)")) return rc;
    if (int rc = touch(*a, st, true, S().seq + 1, "cuMemcpyHtoDAsync", "cuMemcpyHtoDAsync")) return rc;
    Op op{Op::HtoD, "cuMemcpyHtoDAsync", 0};
    op.dev = dst;
    op.bytes = n;
    S().htod_bytes += n;
    // Pageable host memory: CUDA stages it before returning, so the caller may reuse it at once.
    op.data.assign(static_cast<const unsigned char*>(src), static_cast<const unsigned char*>(src) + n);
    return enqueue(st, std::move(op));
}

API cuMemcpyDtoHAsync_v2(void* dst, unsigned long long src, std::size_t n, void* stream) {
    ENTER;
    Stream* st;
    if (int rc = resolve(stream, &st, "cuMemcpyDtoHAsync")) return rc;
    if (int rc = same_ctx(st->ctx, "cuMemcpyDtoHAsync", "stream")) return rc;
    if (int rc = forbid_during_capture("cuMemcpyDtoHAsync")) return rc;
    Alloc* a = nullptr;
    if (int rc = find_alloc(src, n, st, &a, "cuMemcpyDtoHAsync (source)")) return rc;
    if (int rc = touch(*a, st, false, S().seq + 1, "cuMemcpyDtoHAsync", "cuMemcpyDtoHAsync")) return rc;
    S().dtoh_bytes += n;
    // Lands in host memory when the stream is synchronised: a read before that sees old bytes.
    Op op{Op::DtoH, "cuMemcpyDtoHAsync", 0};
    op.dev = src;
    op.host = dst;
    op.bytes = n;
    return enqueue(st, std::move(op));
}

API cuStreamCreate(void** out, unsigned flags) {
    ENTER;
    if (int rc = need_ctx("cuStreamCreate")) return rc;
    if (flags > 1) return fail(INVALID_VALUE, fmt("cuStreamCreate: flags %u", flags));
    auto* st = new Stream{t_ctx, S().next_stream++, flags == 0};
    S().streams.push_back(st);
    *out = st;
    return OK;
}

API cuStreamSynchronize(void* stream) {
    ENTER;
    Stream* st;
    if (int rc = resolve(stream, &st, "cuStreamSynchronize")) return rc;
    if (int rc = same_ctx(st->ctx, "cuStreamSynchronize", "stream")) return rc;
    if (int rc = forbid_during_capture("cuStreamSynchronize")) return rc;
    if (st->capturing) return fail(CAPTURE_UNSUPPORTED, fmt("cuStreamSynchronize on %s while it captures", st->name().c_str()));
    int rc = OK;
    // The legacy stream waits for all blocking streams' earlier work, and a blocking stream for
    // the legacy stream's: what a synchronisation must have run first.
    for (Stream* o : S().streams) {
        if (!o->live || o->ctx != st->ctx || o == st) continue;
        bool before = (st->id == 0 && o->blocking) || (st->blocking && o->id == 0);
        if (before) {
            int r = drain(o);
            if (r && !rc) rc = r;
        }
    }
    int r = drain(st);
    return rc ? rc : r;
}

API cuStreamDestroy_v2(void* stream) {
    ENTER;
    Stream* st;
    if (int rc = resolve(stream, &st, "cuStreamDestroy")) return rc;
    if (st->id == 0) return fail(INVALID_HANDLE, "cuStreamDestroy of the legacy default stream");
    if (int rc = same_ctx(st->ctx, "cuStreamDestroy", "stream")) return rc;
    if (planted(st->ctx->device, "cuStreamDestroy_v2"))
        return fail(UNKNOWN, fmt("cuStreamDestroy of %s failed (planted by FAKECUDA_FAIL)", st->name().c_str()), false);
    if (st->capturing) return fail(ILLEGAL_STATE, fmt("cuStreamDestroy of %s while it captures", st->name().c_str()));
    // CUDA lets queued work finish after a destroy; here it runs now.
    int rc = drain(st);
    st->live = false;
    return rc;
}

API cuModuleLoadData(void** out, const void* image) {
    ENTER;
    if (int rc = need_ctx("cuModuleLoadData")) return rc;
    if (!image) return fail(INVALID_VALUE, "cuModuleLoadData: null image");
    const auto* p = static_cast<const unsigned char*>(image);
    auto* m = new Module{t_ctx};
    static const char kManifest[] = "FAKECUDA-MANIFEST\n";
    if (std::memcmp(p, "\x7f" "ELF", 4) == 0) {
        unsigned short machine;
        std::memcpy(&machine, p + 18, 2);
        if (machine != 190) {
            delete m;
            return fail(INVALID_IMAGE, "cuModuleLoadData: an ELF file that is not a CUDA cubin");
        }
        m->image.assign(reinterpret_cast<const char*>(p), elf_size(p));
        m->image.insert(m->image.begin(), '\0');  // so every symbol name is NUL-delimited
    } else if (std::memcmp(p, kManifest, sizeof kManifest - 1) == 0) {
        // fastfc built without the CUDA toolchain hands the fake the kernel names it needs.
        std::string text(reinterpret_cast<const char*>(p) + sizeof kManifest - 1);
        std::size_t i = 0;
        while (i < text.size()) {
            std::size_t j = text.find('\n', i);
            if (j == std::string::npos) j = text.size();
            if (j > i) m->manifest.push_back(text.substr(i, j - i));
            i = j + 1;
        }
    } else {
        std::string text(reinterpret_cast<const char*>(p));
        if (text.find(".version") == std::string::npos || text.find(".target") == std::string::npos) {
            delete m;
            return fail(INVALID_IMAGE, "cuModuleLoadData: neither a cubin nor PTX text");
        }
        m->image = text;
    }
    S().modules.push_back(m);
    *out = m;
    return OK;
}

API cuModuleGetFunction(void** out, void* module, const char* name) {
    ENTER;
    auto* m = handle<Module>(S().modules, module);
    if (!m || !m->live) return fail(INVALID_HANDLE, fmt("cuModuleGetFunction(%s): not a loaded module", name));
    bool present;
    if (m->image.empty()) {
        present = false;
        for (auto& n : m->manifest) present |= n == name;
    } else {
        // A cubin's symbol table holds "\0name\0"; PTX has ".entry name(".
        std::string needle = m->image.compare(1, 4, "\x7f" "ELF") == 0 ? std::string(1, '\0') + name + '\0'
                                                                       : fmt(".entry %s(", name);
        present = m->image.find(needle) != std::string::npos;
    }
    const ffc_emu::Entry* e = ffc_emu_find(name, S().mode);
    if (!present || !e) return fail(NOT_FOUND, fmt("cuModuleGetFunction: no kernel %s in the module", name));
    auto* f = new Function{m, e};
    S().functions.push_back(f);
    *out = f;
    return OK;
}

// CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES (8) only: the opt-in above 48 KiB.
API cuFuncSetAttribute(void* f, int attr, int value) {
    ENTER;
    auto* fn = handle<Function>(S().functions, f);
    if (!fn) return fail(INVALID_HANDLE, fmt("cuFuncSetAttribute: %p is not a function handle", f));
    if (attr != 8) return fail(INVALID_VALUE, fmt("cuFuncSetAttribute(%s): attribute %d is not modelled", fn->entry->name, attr));
    if (value < 0 || value > optin_shared(S().cc))
        return fail(INVALID_VALUE, fmt("cuFuncSetAttribute(%s): %d bytes of dynamic shared memory; the device (sm_%d) "
                                       "allows at most %d",
                                       fn->entry->name, value, S().cc, optin_shared(S().cc)));
    fn->max_dynamic_shared = value;  // as CUDA: the new maximum, also when below 48 KiB
    return OK;
}

API cuModuleUnload(void* module) {
    ENTER;
    auto* m = handle<Module>(S().modules, module);
    if (!m || !m->live) return fail(INVALID_HANDLE, "cuModuleUnload: not a loaded module (unloaded twice?)");
    if (int rc = same_ctx(m->ctx, "cuModuleUnload", "module")) return rc;
    m->live = false;
    return OK;
}

API cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                   unsigned shared, void* stream, void** params, void** extra) {
    ENTER;
    auto* fn = handle<Function>(S().functions, f);
    if (!fn) return fail(INVALID_HANDLE, fmt("cuLaunchKernel: %p is not a function handle", f));
    const char* name = fn->entry->name;
    Stream* st;
    if (int rc = resolve(stream, &st, "cuLaunchKernel")) return rc;
    if (int rc = same_ctx(st->ctx, "cuLaunchKernel", "stream")) return rc;
    if (fn->module->ctx != st->ctx || !fn->module->live)
        return fail(INVALID_HANDLE, fmt("cuLaunchKernel(%s): its module is not loaded in this stream's context", name));
    if (extra) return fail(INVALID_VALUE, fmt("cuLaunchKernel(%s): `extra` is not supported", name));
    unsigned threads = bx * by * bz;
    if (!gx || !gy || !gz || gy > 65535 || gz > 65535 || gx > 0x7fffffffu || !threads || threads > 1024 || bz > 64)
        return fail(INVALID_VALUE, fmt("cuLaunchKernel(%s): grid (%u,%u,%u) block (%u,%u,%u) out of range", name, gx, gy,
                                       gz, bx, by, bz));
    if ((long long)shared > fn->max_dynamic_shared)
        return fail(INVALID_VALUE,
                    fmt("cuLaunchKernel(%s): %u bytes of dynamic shared memory, above the %d the kernel may use "
                        "(above 48 KiB a kernel must be opted in with cuFuncSetAttribute, up to the device's %d)",
                        name, shared, fn->max_dynamic_shared, optin_shared(S().cc)));
    if (planted(st->ctx->device, "cuLaunchKernel"))
        return fail(LAUNCH_FAILED, fmt("cuLaunchKernel(%s) on %s failed (planted by FAKECUDA_FAIL)", name,
                                       st->name().c_str()), false);
    std::size_t n = std::strlen(fn->entry->sig);
    if (n && !params) return fail(INVALID_VALUE, fmt("cuLaunchKernel(%s): no parameters for %zu arguments", name, n));
    Op op{Op::Kernel, "cuLaunchKernel", 0};
    op.entry = fn->entry;
    op.grid[0] = gx, op.grid[1] = gy, op.grid[2] = gz;
    op.block[0] = bx, op.block[1] = by, op.block[2] = bz;
    op.shared = shared;
    for (std::size_t i = 0; i < n; i++) {
        const auto* v = static_cast<const unsigned char*>(params[i]);
        std::vector<unsigned char> bytes(v, v + fn->entry->sizes[i]);
        bytes.resize(8, 0);
        op.params.push_back(std::move(bytes));
    }
    if (st->capturing) {
        // Recorded, not run; the parameters are copied now, device memory is read at each replay.
        if (int rc = check_kernel(fn->entry, op.params, st, 0, "cuLaunchKernel (captured)", false)) {
            if (!st->invalidated) {
                st->invalidated = true;
                st->invalid_why = t_last_msg;
            }
            return rc;
        }
        Node node{fn->entry, {gx, gy, gz}, {bx, by, bz}, shared, op.params};
        st->graph->nodes.push_back(std::move(node));
        return OK;
    }
    if (int rc = check_kernel(fn->entry, op.params, st, S().seq + 1, "cuLaunchKernel", true)) return rc;
    S().host_launches++;
    return enqueue(st, std::move(op));
}

API cuStreamBeginCapture_v2(void* stream, unsigned mode) {
    ENTER;
    Stream* st;
    if (int rc = resolve(stream, &st, "cuStreamBeginCapture")) return rc;
    if (int rc = same_ctx(st->ctx, "cuStreamBeginCapture", "stream")) return rc;
    if (st->id == 0) return fail(ILLEGAL_STATE, "cuStreamBeginCapture on the legacy default stream (not allowed)");
    if (st->capturing) return fail(ILLEGAL_STATE, fmt("cuStreamBeginCapture: %s is already capturing", st->name().c_str()));
    if (mode > 2) return fail(INVALID_VALUE, fmt("cuStreamBeginCapture: mode %u", mode));
    st->capturing = true;
    st->invalidated = false;
    st->invalid_why.clear();
    st->capture_thread = std::this_thread::get_id();
    st->capture_mode = mode;
    st->graph = new Graph{st};
    S().graphs.push_back(st->graph);
    return OK;
}

API cuStreamEndCapture(void* stream, void** graph) {
    ENTER;
    Stream* st;
    if (int rc = resolve(stream, &st, "cuStreamEndCapture")) return rc;
    if (!graph) return fail(INVALID_VALUE, "cuStreamEndCapture: null graph pointer");
    if (!st->capturing) return fail(ILLEGAL_STATE, fmt("cuStreamEndCapture: %s is not capturing", st->name().c_str()));
    if (st->capture_mode != 2 && st->capture_thread != std::this_thread::get_id())
        return fail(CAPTURE_WRONG_THREAD, fmt("cuStreamEndCapture on %s from a thread that did not begin it",
                                              st->name().c_str()));
    st->capturing = false;
    Graph* g = st->graph;
    st->graph = nullptr;
    if (st->invalidated) {
        g->live = false;
        *graph = nullptr;
        return fail(CAPTURE_INVALIDATED, fmt("cuStreamEndCapture on %s: the capture was invalidated: %s",
                                             st->name().c_str(), st->invalid_why.c_str()));
    }
    *graph = g;
    return OK;
}

API cuGraphInstantiateWithFlags(void** out, void* graph, unsigned long long flags) {
    ENTER;
    auto* g = handle<Graph>(S().graphs, graph);
    if (!g || !g->live) return fail(INVALID_HANDLE, "cuGraphInstantiateWithFlags: not a graph");
    if (flags != 0) return fail(INVALID_VALUE, fmt("cuGraphInstantiateWithFlags: flags %llu not modelled", flags));
    auto* x = new GraphExec{g, g->nodes};
    S().execs.push_back(x);
    *out = x;
    return OK;
}

API cuGraphLaunch(void* exec, void* stream) {
    ENTER;
    auto* x = handle<GraphExec>(S().execs, exec);
    if (!x || !x->live) return fail(INVALID_HANDLE, "cuGraphLaunch: not an instantiated graph (destroyed?)");
    Stream* st;
    if (int rc = resolve(stream, &st, "cuGraphLaunch")) return rc;
    if (int rc = same_ctx(st->ctx, "cuGraphLaunch", "stream")) return rc;
    if (st->capturing) return fail(ILLEGAL_STATE, "cuGraphLaunch into a capturing stream is not modelled");
    // Every node's pointers are checked again now (buffers freed since the capture are caught),
    // all of them before anything is recorded or queued: a refused replay leaves no trace.
    for (std::size_t k = 0; k < x->nodes.size(); k++) {
        Node& nd = x->nodes[k];
        if (int rc = check_kernel(nd.entry, nd.params, st, 0, fmt("cuGraphLaunch (node %zu)", k), false)) return rc;
    }
    unsigned long long seq0 = S().seq;
    for (std::size_t k = 0; k < x->nodes.size(); k++) {
        Node& nd = x->nodes[k];
        std::string call = fmt("cuGraphLaunch (node %zu)", k);
        if (int rc = check_kernel(nd.entry, nd.params, st, seq0 + k + 1, call, true)) return rc;
    }
    S().replays++;
    S().host_launches++;
    S().graph_nodes += x->nodes.size();
    for (std::size_t k = 0; k < x->nodes.size(); k++) {
        Node& nd = x->nodes[k];
        Op op{Op::Kernel, "cuGraphLaunch", 0};
        op.entry = nd.entry;
        std::memcpy(op.grid, nd.grid, sizeof op.grid);
        std::memcpy(op.block, nd.block, sizeof op.block);
        op.shared = nd.shared;
        op.params = nd.params;
        enqueue(st, std::move(op));
    }
    return OK;
}

API cuGraphExecDestroy(void* exec) {
    ENTER;
    auto* x = handle<GraphExec>(S().execs, exec);
    if (!x || !x->live) return fail(INVALID_HANDLE, "cuGraphExecDestroy: not a live instantiated graph (destroyed twice?)");
    x->live = false;
    x->nodes.clear();
    return OK;
}

API cuGraphDestroy(void* graph) {
    ENTER;
    auto* g = handle<Graph>(S().graphs, graph);
    if (!g || !g->live) return fail(INVALID_HANDLE, "cuGraphDestroy: not a live graph (destroyed twice?)");
    g->live = false;
    g->nodes.clear();
    return OK;
}

API cuGetErrorString(int code, const char** out) {
    // No lock: reads this thread's own last message.
    if (!out) return INVALID_VALUE;
    if (code == t_last_code && code != OK) {
        *out = t_last_msg.c_str();
        return OK;
    }
    std::lock_guard<std::mutex> l(g_msg_mu);
    auto it = last_by_code().find(code);
    // Map nodes are never erased, and a message is replaced only by assignment into its string:
    // keep a per-thread copy so the pointer stays valid while the caller reads it.
    static thread_local std::string copy;
    copy = it != last_by_code().end() ? it->second : generic_error(code);
    *out = copy.c_str();
    return OK;
}

API cuGetErrorName(int code, const char** out) {
    if (!out) return INVALID_VALUE;
    *out = generic_error(code);
    return OK;
}

// ---- fakecuda's own interface (for tests and reports; not part of CUDA) ----

// Says what this library is.
extern "C" __attribute__((visibility("default"))) const char* fakecuda_version() {
    return "fakecuda 1 (fastfc's strict stand-in driver: kernels run in the host emulator; not a GPU)";
}

// Plants faults for one device: "cuMemAlloc_v2:3,cuLaunchKernel:10" (counts restart now).
extern "C" __attribute__((visibility("default"))) int fakecuda_set_faults(int device, const char* spec) {
    std::lock_guard<std::mutex> lock(S().mu);
    State& s = S();
    if (!s.initialized || device < 0 || device >= (int)s.faults.size()) return INVALID_DEVICE;
    parse_faults(s.faults[device], spec);
    return OK;
}

// Sets one device's memory in bytes (what cuMemGetInfo reports and allocations are held to).
extern "C" __attribute__((visibility("default"))) int fakecuda_set_memory(int device, unsigned long long bytes) {
    std::lock_guard<std::mutex> lock(S().mu);
    State& s = S();
    if (!s.initialized || device < 0 || device >= (int)s.mem_total.size()) return INVALID_DEVICE;
    s.mem_total[device] = bytes ? (std::size_t)bytes : s.mem_default;
    return OK;
}

// Counters as "calls=N launches=N replays=N syncs=N allocations=N faults=N problems=N
// host_launches=N graph_nodes=N htod_bytes=N dtoh_bytes=N"; returns the length.
extern "C" __attribute__((visibility("default"))) std::size_t fakecuda_stats(char* buf, std::size_t len) {
    std::lock_guard<std::mutex> lock(S().mu);
    State& s = S();
    std::string t = fmt("calls=%llu launches=%llu replays=%llu syncs=%llu allocations=%llu faults=%llu problems=%zu "
                        "host_launches=%llu graph_nodes=%llu htod_bytes=%llu dtoh_bytes=%llu",
                        s.calls, s.launches, s.replays, s.syncs, s.allocations, s.faults_fired, s.problems.size(),
                        s.host_launches, s.graph_nodes, s.htod_bytes, s.dtoh_bytes);
    if (buf && len) std::snprintf(buf, len, "%s", t.c_str());
    return t.size();
}

// Every violation reported so far, one per line; returns the full length (call again with more
// room if it exceeds len).
extern "C" __attribute__((visibility("default"))) std::size_t fakecuda_problems(char* buf, std::size_t len) {
    std::lock_guard<std::mutex> lock(S().mu);
    std::string t;
    for (auto& p : S().problems) t += p + "\n";
    if (buf && len) std::snprintf(buf, len, "%s", t.c_str());
    return t.size();
}

// FAKECUDA_STATS=1 prints the counters when the process exits (for BENCHMARKS.md's figures).
__attribute__((destructor)) static void fakecuda_exit_report() {
    const char* v = std::getenv("FAKECUDA_STATS");
    if (!v || !*v || std::strcmp(v, "0") == 0) return;
    // Another thread may hold the lock at exit: report only if it is free.
    if (!S().mu.try_lock()) return;
    S().mu.unlock();
    char buf[512];
    fakecuda_stats(buf, sizeof buf);
    std::fprintf(stderr, "fakecuda stats at exit: %s\n", buf);
}
