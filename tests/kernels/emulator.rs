//! The emulated executor itself: shuffles, votes, atomics and barriers work under every fiber
//! order; the bugs it promises to diagnose (early return before a barrier, divergent barriers,
//! argument kinds that differ from the kernel's signature) fail the launch with the source line;
//! and a missing barrier gives wrong results. Also: the slot table's C layout equals the Rust twin.

use fastfc::backend::cuda::emu::{EmuGpu, FiberOrder};
use fastfc::backend::cuda::launch::selftest::*;
use fastfc::backend::cuda::launch::{Arg, Launch};
use fastfc::backend::cuda::slot::{Rate, Slot, Stats};
use fastfc::backend::cuda::Gpu;

const ORDERS: [FiberOrder; 3] = [
    FiberOrder::Forward,
    FiberOrder::Reverse,
    FiberOrder::Random(3),
];

#[test]
fn shuffle_reduction_and_votes_are_exact() {
    for order in ORDERS {
        let g = EmuGpu::new(order);
        let n = 1000;
        let x: Vec<f32> = (0..n).map(|i| (i % 17) as f32 - 8.0).collect();
        let xb = g.upload(&x).unwrap();
        let out = g.upload(&[f32::NAN; 4]).unwrap();
        g.launch(
            &Reduce {
                x: xb.ptr(),
                n: n as i32,
                out: out.ptr(),
            }
            .launch(4),
        )
        .unwrap();
        let got = g.read(&out).unwrap();
        for b in 0..4 {
            let want: f32 = x[(b * 256).min(n)..((b + 1) * 256).min(n)].iter().sum();
            assert_eq!(got[b], want, "block {b} under {order:?}");
        }
        let bal = g.alloc::<u32>(2).unwrap();
        let sh = g.alloc::<i32>(64).unwrap();
        g.launch(
            &Ballot {
                out: bal.ptr(),
                out2: sh.ptr(),
            }
            .launch(64),
        )
        .unwrap();
        assert_eq!(g.read(&bal).unwrap(), vec![0xaaaa_aaaa; 2]);
        let s = g.read(&sh).unwrap();
        for (t, &st) in s.iter().enumerate() {
            assert_eq!(
                st,
                ((t / 32) * 32 + (t % 32 + 3) % 32) as i32,
                "shfl lane {t}"
            );
        }
    }
}

#[test]
fn atomics_are_atomic() {
    let g = EmuGpu::new(FiberOrder::Random(9));
    let c = g.alloc::<u32>(1).unwrap();
    let s = g.alloc::<f32>(1).unwrap();
    let m = g.alloc::<u32>(1).unwrap();
    g.launch(
        &Atomics {
            counter: c.ptr(),
            sum: s.ptr(),
            maxv: m.ptr(),
        }
        .launch(200),
    )
    .unwrap();
    assert_eq!(g.read(&c).unwrap()[0], 200);
    assert_eq!(g.read(&s).unwrap()[0], (0..200).sum::<u32>() as f32);
    assert_eq!(
        g.read(&m).unwrap()[0],
        (0..200u32).map(|t| t * 7 % 101).max().unwrap()
    );
}

#[test]
fn an_early_return_before_a_barrier_is_diagnosed() {
    let g = EmuGpu::default();
    let out = g.alloc::<f32>(64).unwrap();
    let err = g
        .launch(&EarlyReturn { out: out.ptr() }.launch(64))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not reached by every thread") && err.contains("selftest.cu:"),
        "{err}"
    );
}

#[test]
fn divergent_barriers_are_diagnosed() {
    let g = EmuGpu::new(FiberOrder::Reverse);
    let out = g.alloc::<f32>(32).unwrap();
    let err = g
        .launch(&Divergent { out: out.ptr() }.launch(32))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("divergent __syncthreads") && err.contains("selftest.cu:"),
        "{err}"
    );
}

#[test]
fn argument_kinds_are_checked_against_the_kernel_signature() {
    let g = EmuGpu::default();
    let out = g.alloc::<f32>(4).unwrap();
    let l = Launch {
        kernel: "emu_selftest_reduce",
        sig: "pp",
        grid: [1, 1, 1],
        block: [32, 1, 1],
        smem: 0,
        args: vec![Arg::Ptr(out.ptr().0), Arg::Ptr(out.ptr().0)],
    };
    let err = g.launch(&l).unwrap_err().to_string();
    assert!(
        err.contains("argument kinds differ") && err.contains("(pip)"),
        "{err}"
    );
    let l = Launch {
        kernel: "no_such_kernel",
        ..l
    };
    assert!(g
        .launch(&l)
        .unwrap_err()
        .to_string()
        .contains("no such kernel"));
}

#[test]
fn every_declared_kernel_exists_with_the_declared_signature() {
    // A declaration whose kinds drift from the .cu fails here before any op test runs.
    use fastfc::backend::cuda::launch::*;
    let g = EmuGpu::default();
    for (name, sig) in [
        (DenseFwd::NAME, DenseFwd::SIG),
        (DenseBwdX::NAME, DenseBwdX::SIG),
        (DenseBwdW::NAME, DenseBwdW::SIG),
        (BatchGather::NAME, BatchGather::SIG),
        (ActivationFwd::NAME, ActivationFwd::SIG),
        (ActivationBwd::NAME, ActivationBwd::SIG),
        (DropoutFwd::NAME, DropoutFwd::SIG),
        (DropoutBwd::NAME, DropoutBwd::SIG),
        (DropoutHash::NAME, DropoutHash::SIG),
        (SoftmaxXent::NAME, SoftmaxXent::SIG),
        (Rates::NAME, Rates::SIG),
        (Optimize::NAME, Optimize::SIG),
        (FusedTrain::NAME, FusedTrain::SIG),
        (FusedEval::NAME, FusedEval::SIG),
    ] {
        // A zero-sized launch with null pointers is refused only on the grid, after the signature check.
        let l = Launch {
            kernel: name,
            sig,
            grid: [0, 1, 1],
            block: [1, 1, 1],
            smem: 0,
            args: vec![],
        };
        let err = g.launch(&l).unwrap_err().to_string();
        assert!(err.contains("grid dimensions"), "{name}: {err}");
    }
    assert_eq!(
        DECLARED.len(),
        14,
        "a kernel was declared but not listed here: {DECLARED:?}"
    );
    if fastfc::kernels::built() {
        let mut built: Vec<&str> = fastfc::kernels::KERNELS.to_vec();
        let mut declared = DECLARED.to_vec();
        built.sort();
        declared.sort();
        assert_eq!(
            built, declared,
            "kernels in the fatbin vs kernels declared in launch.rs"
        );
    }
}

#[test]
fn a_missing_barrier_gives_wrong_results_and_the_barrier_fixes_them() {
    let input: Vec<f32> = (0..128).map(|i| i as f32 * 1.5 + 0.25).collect();
    let want: Vec<f32> = (0..128).map(|i| input[(i + 1) % 128]).collect();
    let mut wrong_somewhere = false;
    for (seed, order) in ORDERS.into_iter().enumerate() {
        let g = EmuGpu::new(order);
        let shifted: Vec<f32> = input.iter().map(|v| v + seed as f32 * 1000.0).collect();
        let want_s: Vec<f32> = want.iter().map(|v| v + seed as f32 * 1000.0).collect();
        let ib = g.upload(&shifted).unwrap();
        let out = g.alloc::<f32>(128).unwrap();
        g.launch(
            &Race {
                input: ib.ptr(),
                out: out.ptr(),
                sync: 1,
            }
            .launch(128),
        )
        .unwrap();
        assert_eq!(
            g.read(&out).unwrap(),
            want_s,
            "with the barrier, under {order:?}"
        );
        let ib2 = g
            .upload(&shifted.iter().map(|v| -v).collect::<Vec<_>>())
            .unwrap();
        g.launch(
            &Race {
                input: ib2.ptr(),
                out: out.ptr(),
                sync: 0,
            }
            .launch(128),
        )
        .unwrap();
        let got = g.read(&out).unwrap();
        wrong_somewhere |= got != want_s.iter().map(|v| -v).collect::<Vec<_>>();
    }
    assert!(
        wrong_somewhere,
        "no fiber order exposed the missing barrier"
    );
}

#[test]
fn slot_table_layout_equals_the_c_struct() {
    use std::mem::{offset_of, size_of};
    let g = EmuGpu::default();
    let out = g.alloc::<u32>(32).unwrap();
    g.launch(&StructLayout { out: out.ptr() }.launch(32))
        .unwrap();
    let got = g.read(&out).unwrap();
    let want = [
        size_of::<Slot>(),
        offset_of!(Slot, b1),
        offset_of!(Slot, b2),
        offset_of!(Slot, rate_a),
        offset_of!(Slot, rate_b),
        offset_of!(Slot, lr),
        offset_of!(Slot, dropout),
        offset_of!(Slot, eps),
        offset_of!(Slot, c1),
        offset_of!(Slot, c2),
        offset_of!(Slot, b1f),
        offset_of!(Slot, b2f),
        offset_of!(Slot, momentum),
        offset_of!(Slot, wd),
        offset_of!(Slot, param_off),
        offset_of!(Slot, act),
        offset_of!(Slot, opt),
        offset_of!(Slot, seed),
        offset_of!(Slot, active),
        offset_of!(Slot, step0),
        offset_of!(Slot, hidden),
        offset_of!(Slot, sched),
        offset_of!(Slot, nesterov),
        offset_of!(Slot, reserved),
        size_of::<Stats>(),
        offset_of!(Stats, loss_sum),
        offset_of!(Stats, correct),
        offset_of!(Stats, rows),
        offset_of!(Stats, diverged),
        offset_of!(Stats, reserved),
        size_of::<Rate>(),
        offset_of!(Rate, alpha),
    ];
    assert_eq!(got, want.map(|v| v as u32).to_vec());
}

/// Graph capture on the emulator behaves as CUDA stream capture: captured launches do not run
/// until replayed, take their arguments by value but read device memory at each replay, run again
/// at every replay, and copies or syncs on the capturing stream are errors that end the capture.
#[test]
fn captured_graphs_run_at_replay_and_forbid_copies() {
    use fastfc::backend::cuda::AnyGpu;
    let g = AnyGpu::Emu(EmuGpu::new(FiberOrder::Random(4)));
    let n = 300;
    let xb = g.upload(&vec![1.5f32; n]).unwrap();
    let out = g.upload(&[f32::NAN; 2]).unwrap();
    let c = g.alloc::<u32>(1).unwrap();
    let s = g.alloc::<f32>(1).unwrap();
    let m = g.alloc::<u32>(1).unwrap();
    let graph = g
        .capture(|| {
            g.enqueue(
                &Reduce {
                    x: xb.ptr(),
                    n: n as i32,
                    out: out.ptr(),
                }
                .launch(2),
            )?;
            g.enqueue(
                &Atomics {
                    counter: c.ptr(),
                    sum: s.ptr(),
                    maxv: m.ptr(),
                }
                .launch(50),
            )
        })
        .unwrap();
    assert!(
        g.read(&out).unwrap().iter().all(|v| v.is_nan()),
        "a captured launch ran during the capture"
    );
    let x: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 2.5).collect();
    g.write(&xb, 0, &x).unwrap();
    graph.launch().unwrap();
    graph.launch().unwrap();
    let got = g.read(&out).unwrap();
    assert_eq!(
        got[0],
        x[..256].iter().sum::<f32>(),
        "replay read stale input"
    );
    assert_eq!(got[1], x[256..].iter().sum::<f32>());
    assert_eq!(g.read(&c).unwrap()[0], 100, "two replays, 50 threads each");

    // Another stream of the same device is not capturing.
    let other = g.fork().unwrap();
    for (what, body) in [
        ("a copy to the device", 0),
        ("a copy from the device", 1),
        ("a synchronisation", 2),
        ("an allocation", 3),
    ] {
        let err = g
            .capture(|| {
                other.write(&xb, 0, &x[..1])?;
                match body {
                    0 => g.write(&xb, 0, &x[..1]),
                    1 => g.read(&out).map(drop),
                    2 => g.sync(),
                    _ => g.alloc::<f32>(4).map(drop),
                }
            })
            .err()
            .unwrap_or_else(|| panic!("{what} during a capture was accepted"))
            .to_string();
        assert!(
            err.contains(what) && err.contains("capturing"),
            "{what}: {err}"
        );
    }
    // A failed capture ends it: the stream works again.
    g.sync().unwrap();
    assert_eq!(g.read(&c).unwrap()[0], 100);
}

/// Dynamic shared memory is the launch's size, poisoned with NaN before every block (a kernel
/// that reads what it did not write sees NaN, never a previous block's values), and shared by
/// the block's threads; a request above the emulated device's limit fails the launch.
#[test]
fn dynamic_shared_memory_is_poisoned_per_block_and_bounded() {
    for order in ORDERS {
        let g = EmuGpu::new(order);
        let (blocks, n) = (3u32, 700usize);
        let before = g.upload(&vec![0f32; blocks as usize * n]).unwrap();
        let after = g.upload(&vec![0f32; blocks as usize * n]).unwrap();
        let k = Dynamic {
            before: before.ptr(),
            after: after.ptr(),
            n: n as i32,
        };
        g.launch(&k.launch(blocks)).unwrap();
        let (b, a) = (g.read(&before).unwrap(), g.read(&after).unwrap());
        assert!(
            b.iter().all(|v| v.is_nan()),
            "unwritten dynamic shared memory is not NaN under {order:?}"
        );
        for blk in 0..blocks as usize {
            for i in 0..n {
                assert_eq!(a[blk * n + i], (blk * 1000 + (i + 1) % n) as f32);
            }
        }
        let too_big = Dynamic {
            n: (fastfc::backend::cuda::EMULATED_SHARED / 4 + 1) as i32,
            ..k
        };
        let err = g.launch(&too_big.launch(1)).unwrap_err().to_string();
        assert!(err.contains("shared memory"), "{err}");
    }
}

/// `__syncthreads_or/and/count` give every thread the block's vote, under every fiber order.
#[test]
fn barrier_votes_count_the_whole_block() {
    for order in ORDERS {
        let g = EmuGpu::new(order);
        for (threads, k) in [(256u32, 255), (64, 0), (96, 40)] {
            let out = g.upload(&[-1i32; 5]).unwrap();
            g.launch(&Votes { out: out.ptr(), k }.launch(threads))
                .unwrap();
            let got = g.read(&out).unwrap();
            assert_eq!(
                got,
                vec![1, 0, 1, threads as i32 / 2, 0],
                "{threads} threads, k = {k}, under {order:?}"
            );
        }
    }
}
