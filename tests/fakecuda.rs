//! fakecuda, the strict stand-in libcuda (src/backend/cuda/fake/): each of its rules with a
//! planted misuse that it must catch, with a message naming the call, the buffer and the
//! stream(s); the defects of the real driver path it found, each with the test that failed before
//! the fix; and the CLI through it (`fastfc devices`, `bench`, a small `search --device cuda`).
//! The library is loaded by absolute path (never LD_LIBRARY_PATH), so cudarc in this process
//! talks to it and to nothing else.
//!
//! Device 0 is shared by the tests that run in parallel; device 1 is for the tests that watch a
//! context's release or plant faults, one at a time (DEVICE1).

mod common;

use std::sync::{Arc, Mutex};

use cudarc::driver::{result, sys, CudaContext};
use fastfc::backend::cuda::driver::CudaGpu;
use fastfc::backend::cuda::launch::DropoutHash;
use fastfc::backend::cuda::{fake, AnyGpu, Gpu};
use fastfc::Error;

static DEVICE1: Mutex<()> = Mutex::new(());

fn device1() -> std::sync::MutexGuard<'static, ()> {
    DEVICE1.lock().unwrap_or_else(|e| e.into_inner())
}

fn ctx(device: usize) -> Arc<CudaContext> {
    fake::load().unwrap();
    let c = CudaContext::new(device).unwrap();
    // As driver.rs does: cudarc's event tracking would call cuCtxSynchronize at the first stream,
    // which runs every stream of the shared context, other tests' deferred queues included.
    // SAFETY: before any allocation on this handle.
    unsafe { c.disable_event_tracking() };
    c
}

fn gpu(device: usize) -> CudaGpu {
    fake::load().unwrap();
    let g = CudaGpu::open(device).unwrap();
    assert!(g.info.fake);
    g
}

/// The message cudarc gives for a driver error: fakecuda's, through cuGetErrorString.
fn msg(e: &result::DriverError) -> String {
    format!("{e:?}")
}

fn assert_names(what: &str, text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "{what}: message lacks {n:?}:\n{text}");
    }
}

/// fakecuda's reports since `from` (an index into its process-wide list).
fn problems_since(from: usize) -> Vec<String> {
    fake::problems().unwrap().split_off(from)
}

#[test]
fn a_call_on_a_thread_without_a_current_context_fails_as_cuda_does() {
    let c = ctx(0);
    let e = std::thread::spawn(|| unsafe { result::malloc_sync(64) })
        .join()
        .unwrap()
        .unwrap_err();
    assert_eq!(e.0, sys::cudaError_enum::CUDA_ERROR_INVALID_CONTEXT);
    assert_names(
        "no context",
        &msg(&e),
        &["cuMemAlloc", "no current context"],
    );
    // Bound, the same call works.
    let c2 = c.clone();
    let p = std::thread::spawn(move || {
        c2.bind_to_thread().unwrap();
        unsafe { result::malloc_sync(64) }.unwrap()
    })
    .join()
    .unwrap();
    c.bind_to_thread().unwrap();
    unsafe { result::free_sync(p) }.unwrap();
}

/// Defect 4a planted: a zero fill with the synchronous cuMemsetD8 goes on the legacy default
/// stream, which the engine's non-blocking streams are not ordered with.
#[test]
fn a_legacy_stream_memset_before_a_copy_on_another_stream_is_a_hazard() {
    let c = ctx(0);
    let s = c.new_stream().unwrap();
    let p = unsafe { result::malloc_sync(256) }.unwrap();
    unsafe { result::memset_d8_sync(p, 0, 256) }.unwrap();
    let e = unsafe { result::memcpy_htod_async(p, &[1u8; 256][..], s.cu_stream()) }.unwrap_err();
    assert_eq!(e.0, sys::cudaError_enum::CUDA_ERROR_ILLEGAL_STATE);
    assert_names(
        "legacy memset",
        &msg(&e),
        &[
            "hazard",
            "cuMemcpyHtoDAsync",
            "buffer #",
            "256 bytes",
            "(non-blocking)",
            "cuMemsetD8",
            "the legacy default stream",
        ],
    );
    // Ordered by a host synchronisation of the legacy stream (not of the whole context, which
    // would run other tests' queues too), the same copy is fine.
    c.default_stream().synchronize().unwrap();
    unsafe { result::memcpy_htod_async(p, &[1u8; 256][..], s.cu_stream()) }.unwrap();
    s.synchronize().unwrap();
    unsafe { result::free_sync(p) }.unwrap();
}

/// What the engine does, through driver.rs: a buffer written by a kernel on one stream and read
/// by a kernel on another, with no synchronisation in between, is caught.
#[test]
fn a_kernel_reading_what_another_stream_wrote_unsynchronised_is_a_hazard() {
    let g = gpu(0);
    let g2 = g.fork().unwrap();
    let keys = g.upload(&[7u32; 5 * 64]).unwrap();
    let out = g.alloc::<u32>(5 * 64).unwrap();
    let hash = |keys: &fastfc::backend::cuda::Buf<u32>, out: &fastfc::backend::cuda::Buf<u32>| {
        DropoutHash {
            keys: keys.ptr(),
            n: 64,
            out: out.ptr(),
        }
        .launch(1)
    };
    g.enqueue(&hash(&keys, &out)).unwrap(); // writes `out` on g's stream, not synchronised
    let e = g2.enqueue(&hash(&out, &keys)).unwrap_err().to_string();
    assert_names(
        "cross-stream",
        &e,
        &[
            "hazard",
            "cuLaunchKernel",
            "kernel dropout_hash",
            "reads buffer #",
            "last written by dropout_hash on stream",
            "non-blocking",
        ],
    );
    g.sync().unwrap();
    g2.enqueue(&hash(&out, &keys)).unwrap(); // after the sync: ordered
    g2.sync().unwrap();
}

/// Device-to-host copies land when the stream is synchronised, not before: code that reads the
/// host buffer early sees stale bytes here, as it might on a GPU.
#[test]
fn streams_are_deferred_queues_run_at_synchronisation() {
    let c = ctx(0);
    let s = c.new_stream().unwrap();
    let p = unsafe { result::malloc_sync(16) }.unwrap();
    unsafe { result::memset_d8_async(p, 7, 16, s.cu_stream()) }.unwrap();
    let mut host = [0u8; 16];
    unsafe { result::memcpy_dtoh_async(&mut host[..], p, s.cu_stream()) }.unwrap();
    assert_eq!(host, [0u8; 16], "nothing runs before the host synchronises");
    s.synchronize().unwrap();
    assert_eq!(host, [7u8; 16]);
    unsafe { result::free_sync(p) }.unwrap();
}

/// Thread-local capture mode: the capturing thread may not allocate; the capture is invalidated
/// and its end says why. Another thread may allocate meanwhile.
#[test]
fn an_allocation_during_capture_invalidates_it() {
    let c = ctx(0);
    let s = c.new_stream().unwrap();
    s.begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
        .unwrap();
    let c2 = c.clone();
    let other = std::thread::spawn(move || {
        c2.bind_to_thread().unwrap();
        let p = unsafe { result::malloc_sync(32) }.unwrap();
        unsafe { result::free_sync(p) }.unwrap();
    });
    other.join().unwrap();
    let e = unsafe { result::malloc_sync(64) }.unwrap_err();
    assert_eq!(
        e.0,
        sys::cudaError_enum::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED
    );
    assert_names(
        "alloc in capture",
        &msg(&e),
        &["cuMemAlloc", "capturing thread", "stream"],
    );
    let e = s
        .end_capture(sys::CUgraphInstantiate_flags(0))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        e.0,
        sys::cudaError_enum::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
    );
    assert_names(
        "end capture",
        &msg(&e),
        &["invalidated", "cuMemAlloc", "capturing"],
    );
}

/// The same through driver.rs: a capture whose body fails reports the body's error, not the
/// invalidated end of capture (defect 4f), and a copy inside a capture is refused.
#[test]
fn a_failed_capture_body_reports_its_own_error() {
    let g = gpu(0);
    let keys = g.upload(&[3u32; 5 * 8]).unwrap();
    let out = g.alloc::<u32>(5 * 8).unwrap();
    let any = AnyGpu::Cuda(g.clone());
    let e = match any.capture(|| {
        g.enqueue(
            &DropoutHash {
                keys: keys.ptr(),
                n: 8,
                out: out.ptr(),
            }
            .launch(1),
        )?;
        g.write(&out, 0, &[1u32])
    }) {
        Ok(_) => panic!("a copy inside a capture must fail"),
        Err(e) => e.to_string(),
    };
    assert_names("copy in capture", &e, &["cuMemcpyHtoDAsync", "capturing"]);
    // The body's own error (900, the refused copy), not the end of capture's 901, which on a
    // GPU says only "operation failed due to a previous error during capture".
    assert!(
        e.contains("CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED") && !e.contains("INVALIDATED"),
        "{e}"
    );
}

/// Every pointer argument is checked at launch and at each replay of a captured graph.
#[test]
fn use_after_free_and_out_of_range_pointers_are_caught_at_launch_and_replay() {
    let g = gpu(0);
    let keys = g.upload(&[5u32; 5 * 16]).unwrap();
    let out = g.alloc::<u32>(5 * 16).unwrap();
    let launch = |keys: u64, out: u64| {
        DropoutHash {
            keys: fastfc::backend::cuda::Ptr(keys),
            n: 16,
            out: fastfc::backend::cuda::Ptr(out),
        }
        .launch(1)
    };
    // A graph captured with `out`, which is then freed.
    let any = AnyGpu::Cuda(g.clone());
    let graph = any
        .capture(|| g.enqueue(&launch(keys.ptr().0, out.ptr().0)))
        .unwrap();
    graph.launch().unwrap();
    g.sync().unwrap();
    let stale = out.ptr().0;
    drop(out);
    let e = g
        .launch(&launch(keys.ptr().0, stale))
        .unwrap_err()
        .to_string();
    assert_names(
        "use after free",
        &e,
        &[
            "cuLaunchKernel",
            "dropout_hash",
            "use after free",
            "buffer #",
        ],
    );
    let e = graph.launch().unwrap_err().to_string();
    assert_names(
        "replay after free",
        &e,
        &["cuGraphLaunch", "use after free", "buffer #"],
    );
    // A pointer into no allocation at all.
    let e = g
        .launch(&launch(0x1000, keys.ptr().0))
        .unwrap_err()
        .to_string();
    assert_names(
        "wild pointer",
        &e,
        &[
            "cuLaunchKernel",
            "out of range",
            "in no allocation of device 0",
        ],
    );
    // A copy that overruns its buffer.
    let c = ctx(0);
    let s = c.new_stream().unwrap();
    let p = unsafe { result::malloc_sync(256) }.unwrap();
    let e = unsafe { result::memcpy_htod_async(p, &[0u8; 300][..], s.cu_stream()) }.unwrap_err();
    assert_names(
        "overrun",
        &msg(&e),
        &[
            "cuMemcpyHtoDAsync",
            "out of range",
            "300 bytes",
            "overrun buffer #",
        ],
    );
    unsafe { result::free_sync(p) }.unwrap();
}

/// A context released with memory still allocated reports the leak; a second free of the same
/// memory fails and is reported again at release.
#[test]
fn leaks_and_double_frees_are_reported_at_context_release() {
    let _one = device1();
    let mark = fake::problems().unwrap().len();
    let c = ctx(1);
    let _leaked = unsafe { result::malloc_sync(96) }.unwrap();
    let p = unsafe { result::malloc_sync(64) }.unwrap();
    unsafe { result::free_sync(p) }.unwrap();
    let e = unsafe { result::free_sync(p) }.unwrap_err();
    assert_names(
        "double free",
        &msg(&e),
        &["cuMemFree", "double free of buffer #", "64 bytes"],
    );
    drop(c);
    let got = problems_since(mark).join("\n");
    assert_names(
        "at release",
        &got,
        &[
            "leak: 1 allocation(s) of 96 bytes still live when device 1's context was released",
            "at release of device 1's context: double free of buffer #",
        ],
    );
}

/// Defect 4f: `DeviceAlloc::drop` used `bind_to_thread`, which first hands back an error recorded
/// earlier on the context (here, a stream whose destruction failed); the free was skipped (a
/// leak) and the error swallowed. Now the memory is freed and the error still reaches the next
/// call that asks.
#[test]
fn a_recorded_context_error_neither_skips_a_free_nor_is_swallowed() {
    let _one = device1();
    let mark = fake::problems().unwrap().len();
    let g = gpu(1);
    let buf = g.alloc::<f32>(64).unwrap();
    fake::set_faults(1, "cuStreamDestroy_v2:1").unwrap();
    drop(g.fork().unwrap()); // its stream's destruction fails; cudarc records the error
    drop(buf);
    let e = g.mem_info().unwrap_err().to_string();
    assert_names("recorded error", &e, &["cuStreamDestroy", "planted"]);
    fake::set_faults(1, "").unwrap();
    drop(g);
    let got = problems_since(mark);
    assert!(
        !got.iter()
            .any(|p| p.contains("device 1") && p.contains("leak")),
        "{got:#?}"
    );
}

/// Planted out-of-memory reaches the trainer as Error::OutOfMemory, which splits the cohort and
/// trains both halves to the same results as an unsplit cohort; a planted launch failure is an
/// error naming the kernel.
#[test]
fn planted_faults_out_of_memory_splits_the_cohort_and_a_failed_launch_is_named() {
    use fastfc::backend::cuda::engine::CudaBackend;
    use fastfc::backend::Backend;
    use fastfc::model::{Activation, Hyperparams, Optimizer, TrialSpec};
    use fastfc::train::{train_cohort, Event, TrainConfig, TrialJob};
    let _one = device1();
    let g = gpu(1);
    fake::set_faults(1, "cuMemAlloc_v2:1").unwrap();
    assert!(matches!(g.alloc::<f32>(16), Err(Error::OutOfMemory { .. })));
    fake::set_faults(1, "").unwrap();

    let mut d = fastfc::data::embedded::load().unwrap();
    d.train.x.truncate(256 * 64);
    d.train.y.truncate(256);
    d.val.x.truncate(64 * 64);
    d.val.y.truncate(64);
    let data = Arc::new(d);
    let jobs = || -> Vec<TrialJob> {
        (0..4)
            .map(|k| {
                let hp = Hyperparams {
                    hidden: vec![16, 16],
                    activation: Activation::ALL[k],
                    dropout: 0.1,
                    learning_rate: 1e-3,
                    optimizer: Optimizer::ALL[k % 2],
                    ..Default::default()
                };
                TrialJob::fresh(TrialSpec::new(k as u64, hp, 3, 64, 10))
            })
            .collect()
    };
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 32,
        patience: None,
        seed: 3,
        stop: Default::default(),
    };
    let backend = CudaBackend::new(data.clone(), AnyGpu::Cuda(g.clone())).unwrap();
    // Trains the 4 jobs, returning the outcomes and the size of each cohort the trainer started.
    let train = || {
        let mut starts = vec![];
        let mut on_event = |e: Event| {
            if let Event::CohortStart { trials, .. } = e {
                starts.push(trials);
            }
        };
        let out = train_cohort(&backend, jobs(), &cfg, &mut on_event, &|_| {}).unwrap();
        (out, starts)
    };
    let (whole, starts) = train();
    assert_eq!(starts, [4], "one cohort of 4");
    // The cohort's first allocation fails: the trainer halves it and trains each half.
    fake::set_faults(1, "cuMemAlloc_v2:1").unwrap();
    let fired = fake::stats().unwrap().faults;
    let (split, starts) = train();
    assert_eq!(starts, [4, 2, 2], "the whole cohort, then each half");
    assert_eq!(
        fake::stats().unwrap().faults,
        fired + 1,
        "the planted out-of-memory fired"
    );
    fake::set_faults(1, "").unwrap();
    assert_eq!(whole.len(), split.len());
    for (a, b) in whole.iter().zip(&split) {
        assert_eq!(
            a.checkpoint, b.checkpoint,
            "trial {}: split cohorts differ",
            a.spec.id
        );
    }
    // A device whose free memory holds fewer trials than the cohort: max_cohort splits it
    // before loading, to the same results.
    let (free, total) = g.mem_info().unwrap();
    let used = (total - free) as u64;
    let specs: Vec<TrialSpec> = jobs().into_iter().map(|j| j.spec).collect();
    // max_cohort's own estimate of one trial: 80% of 64 MiB over the trials that fit there.
    fake::set_memory(1, used + (64 << 20)).unwrap();
    let per_trial = (64u64 << 20) * 8 / 10 / backend.max_cohort(&specs, 32).max(1) as u64;
    // Room for about 2.5 trials.
    fake::set_memory(1, used + per_trial * 25 / 8).unwrap();
    let max = backend.max_cohort(&specs, 32);
    assert!(
        (1..4).contains(&max),
        "max_cohort {max} with room for ~2 trials"
    );
    let (bounded, starts) = train();
    fake::set_memory(1, 0).unwrap();
    // Split before loading, into cohorts of max_cohort: no cohort of 4 ever started.
    let chunks: Vec<usize> = (0..4).step_by(max).map(|k| max.min(4 - k)).collect();
    assert_eq!(starts, chunks, "cohorts of at most {max}");
    for (a, b) in whole.iter().zip(&bounded) {
        assert_eq!(
            a.checkpoint, b.checkpoint,
            "trial {}: memory-bounded cohorts differ",
            a.spec.id
        );
    }
    // The 2nd launch: the fused engine launches twice an epoch (training, then validation).
    fake::set_faults(1, "cuLaunchKernel:2").unwrap();
    let e = train_cohort(&backend, jobs(), &cfg, &mut |_| {}, &|_| {})
        .unwrap_err()
        .to_string();
    fake::set_faults(1, "").unwrap();
    assert_names(
        "failed launch",
        &e,
        &["cuLaunchKernel", "failed", "planted"],
    );
}

/// Several devices by FAKECUDA_DEVICES (2 by default), so `cuda:1` is tested; one past the end
/// is a named flag error.
#[test]
fn several_devices_and_a_device_that_is_not_there() {
    let _one = device1();
    let g = gpu(1);
    assert_eq!(g.info.ordinal, 1);
    assert!(g.info.name.starts_with("fakecuda 1"), "{}", g.info.name);
    let e = CudaGpu::open(2).unwrap_err().to_string();
    assert_names("cuda:2", &e, &["--device", "cuda:2", "2 CUDA device(s)"]);
}

fn fastfc_cli(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fastfc"))
        .args(args)
        .env("FASTFC_NO_PROGRESS", "1")
        .env("FASTFC_NO_SYSTEM_DATA", "1")
        .env("FASTFC_CUDA_DRIVER", "fake")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// fakecuda never passes for a GPU: `fastfc devices` says so on every device, and `fastfc bench`
/// refuses to report its times as GPU figures.
#[test]
fn the_cli_says_fakecuda_is_fake_and_bench_refuses_its_times() {
    let (code, out, err) = fastfc_cli(&["devices"], &[]);
    assert_eq!(code, 0, "{err}");
    let cuda: Vec<&str> = out.lines().filter(|l| l.starts_with("cuda")).collect();
    assert_eq!(cuda.len(), 2, "{out}");
    for l in cuda {
        assert!(l.contains("FAKE") && l.contains("not a GPU"), "{l}");
    }
    let (code, _, err) = fastfc_cli(
        &[
            "bench", "--device", "cuda", "--trials", "2", "--epochs", "1",
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert_names("bench", &err, &["fakecuda", "not a GPU", "--device"]);
}

/// A small search through cudarc and fakecuda, end to end: the same study as on the CPU (runs,
/// epochs, and rankings within the float tolerance).
#[test]
fn a_small_search_runs_on_cuda_through_fakecuda() {
    let tmp = tempfile::tempdir().unwrap();
    let space = tmp.path().join("space.toml");
    std::fs::write(
        &space,
        "[layers]\nchoice = [2]\n[units]\nchoice = [16, 32]\n",
    )
    .unwrap();
    let mut records = vec![];
    for device in ["cuda", "cpu"] {
        let out = tmp.path().join(device);
        let (code, stdout, err) = fastfc_cli(
            &[
                "search",
                "--strategy",
                "random",
                "--trials",
                "6",
                "--epochs",
                "1",
                "--seed",
                "9",
                "--device",
                device,
                "--space",
                space.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(code, 0, "{stdout}\n{err}");
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        if device == "cuda" {
            assert!(s["device"].as_str().unwrap().contains("fakecuda"), "{s}");
        }
        records.push(fastfc::results::journal::read(&out).unwrap());
    }
    assert_eq!(records[0].len(), 6);
    fastfc::study::rankings_agree(&records[1], &records[0], 2.0 / 10_000.0 * 2.0)
        .unwrap_or_else(|e| panic!("cuda vs cpu: {e}"));
}

/// The other calls a capturing thread may not make: a free, a memset and a synchronisation each
/// invalidate the capture, named at its end.
#[test]
fn a_free_a_memset_or_a_sync_during_capture_invalidates_it() {
    let c = ctx(0);
    type Misuse = Box<dyn Fn(&Arc<cudarc::driver::CudaStream>, u64) -> result::DriverError>;
    let cases: Vec<(&str, Misuse)> = vec![
        (
            "cuMemFree",
            Box::new(|_, p| unsafe { result::free_sync(p) }.unwrap_err()),
        ),
        (
            "cuMemsetD8Async",
            Box::new(|s, p| {
                unsafe { result::memset_d8_async(p, 0, 8, s.cu_stream()) }.unwrap_err()
            }),
        ),
        (
            "cuStreamSynchronize",
            Box::new(|s, _| s.synchronize().unwrap_err()),
        ),
    ];
    for (call, misuse) in cases {
        let s = c.new_stream().unwrap();
        let p = unsafe { result::malloc_sync(64) }.unwrap();
        s.begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .unwrap();
        let e = misuse(&s, p);
        assert_eq!(
            e.0,
            sys::cudaError_enum::CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
            "{call}"
        );
        assert_names(call, &msg(&e), &[call, "capturing thread", "stream"]);
        let e = s
            .end_capture(sys::CUgraphInstantiate_flags(0))
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            e.0,
            sys::cudaError_enum::CUDA_ERROR_STREAM_CAPTURE_INVALIDATED
        );
        assert_names(call, &msg(&e), &["invalidated", call]);
        unsafe { result::free_sync(p) }.unwrap();
    }
}

/// Kernel parameters are copied when the launch is captured: the values the host passed (here
/// n = 3, from a Launch dropped long before the replay) are what every replay runs with.
#[test]
fn captured_kernel_parameters_are_copied_at_capture() {
    let g = gpu(0);
    let keys = g.upload(&[9u32; 5 * 8]).unwrap();
    let out = g.alloc::<u32>(8).unwrap();
    let any = AnyGpu::Cuda(g.clone());
    let graph = any
        .capture(|| {
            let l = DropoutHash {
                keys: keys.ptr(),
                n: 3,
                out: out.ptr(),
            }
            .launch(1);
            g.enqueue(&l)
        })
        .unwrap();
    // Overwrite the stack and heap the launch used, then replay.
    let noise: Vec<u32> = (0..4096).map(|i| i * 7919).collect();
    std::hint::black_box(&noise);
    graph.launch().unwrap();
    g.sync().unwrap();
    let got = g.read(&out).unwrap();
    assert!(got[..3].iter().all(|&h| h != 0), "{got:?}");
    assert_eq!(&got[3..], &[0u32; 5], "n = 3 at replay: the rest untouched");
}

/// The same rules and faults by environment variable, for a whole process: FAKECUDA_DEVICES,
/// FAKECUDA_MEM_MIB, FAKECUDA_CC, FAKECUDA_ARITH, FAKECUDA_FAIL.
#[test]
fn environment_variables_set_devices_memory_capability_arithmetic_and_faults() {
    let (code, out, err) = fastfc_cli(
        &["devices"],
        &[
            ("FAKECUDA_DEVICES", "3"),
            ("FAKECUDA_MEM_MIB", "512"),
            ("FAKECUDA_CC", "86"),
            ("FAKECUDA_ARITH", "plain"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let cuda: Vec<&str> = out.lines().filter(|l| l.starts_with("cuda")).collect();
    assert_eq!(cuda.len(), 3, "{out}");
    for l in &cuda {
        assert_names(
            "devices",
            l,
            &["sm_86", "0.5 GiB", "plain arithmetic", "FAKE"],
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = fastfc_cli(
        &[
            "train",
            "--hidden",
            "16",
            "--activation",
            "relu",
            "--epochs",
            "1",
            "--device",
            "cuda:2",
            "--out",
            tmp.path().to_str().unwrap(),
        ],
        &[
            ("FAKECUDA_DEVICES", "3"),
            // The validation pass after the fused engine's one training launch of the epoch.
            ("FAKECUDA_FAIL", "cuLaunchKernel:2"),
        ],
    );
    assert_ne!(code, 0, "{out}");
    assert_names(
        "planted launch failure",
        &err,
        &["cuLaunchKernel", "planted by FAKECUDA_FAIL"],
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// Dynamic shared memory as CUDA rules it: up to 48 KiB without asking; more only after
/// cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES), which refuses more than the device's opt-in
/// limit (64 KiB on fakecuda's default sm_75) and whose value is then the kernel's maximum. The
/// driver path opts the fused kernels in at load, so their launches may use the whole limit.
#[test]
fn dynamic_shared_memory_beyond_48_kib_needs_an_opt_in_within_the_device_limit() {
    use cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES as MAX_DYN;
    let g = gpu(0);
    assert_eq!(g.info.max_shared_optin, 64 << 10);
    let keys = g.upload(&[7u32; 64]).unwrap();
    let out = g.alloc::<u32>(64).unwrap();
    // dropout_hash has no dynamic shared memory, so the driver path does not opt it in.
    let mut l = DropoutHash {
        keys: keys.ptr(),
        n: 64,
        out: out.ptr(),
    }
    .launch(1);
    l.smem = 48 << 10;
    g.launch(&l).unwrap();
    l.smem = (48 << 10) + 4;
    let e = g.launch(&l).unwrap_err().to_string();
    assert_names(
        "no opt-in",
        &e,
        &[
            "cuLaunchKernel(dropout_hash)",
            "49156 bytes of dynamic shared memory",
            "opted in",
        ],
    );
    // Raw: the opt-in itself, on a module of fakecuda's own manifest.
    let c = ctx(0);
    let m = c
        .load_module(cudarc::nvrtc::Ptx::from_binary(
            b"FAKECUDA-MANIFEST\nfused_train\n\0".to_vec(),
        ))
        .unwrap();
    let f = m.load_function("fused_train").unwrap();
    let e = f.set_attribute(MAX_DYN, (64 << 10) + 1).unwrap_err();
    assert_names("above the device", &msg(&e), &["CUDA_ERROR_INVALID_VALUE"]);
    f.set_attribute(MAX_DYN, 64 << 10).unwrap();
}
