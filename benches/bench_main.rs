//! Criterion benchmarks, one group per op with ids `<op>/<device>/t108_w64_b32` (the seed's cohort:
//! 108 trials, width 64, batch 32; throughput in FLOP for dense, elements otherwise), plus one
//! training epoch. The CUDA ids run when a GPU opens; otherwise one line says they were skipped.
//! Run: `cargo bench --bench bench_main` (or `-- dense_fwd` for one group).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};

use fastfc::backend::cpu::{
    activation, adam, dense, dropout, lion, simd, softmax_xent, CpuBackend,
};
use fastfc::backend::cuda::driver::CudaGpu;
use fastfc::backend::cuda::launch::*;
use fastfc::backend::cuda::slot::{Slot, Stats};
use fastfc::backend::cuda::{AnyGpu, Gpu};
use fastfc::backend::Backend;
use fastfc::model::{Activation, Hyperparams, Optimizer, TrialSpec, TrialState};

fn rnd(n: usize, seed: u64) -> Vec<f32> {
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| r.random_range(-1.0..1.0)).collect()
}

/// The seed's cohort shape: 108 trials, hidden width 64, batch 32.
const T: usize = 108;
const W: usize = 64;
const B: usize = 32;
const NP: usize = 17_290; // parameters of 64 → [64]×4 → 10: 4·(64·64 + 64) + 64·10 + 10

fn id(dev: &str) -> String {
    format!("{dev}/t{T}_w{W}_b{B}")
}

/// Every op over a whole cohort on the CPU backend (one thread, trial after trial).
fn ops_cpu(c: &mut Criterion) {
    let (x, wt, bias) = (rnd(T * B * W, 1), rnd(T * W * W, 2), rnd(T * W, 3));
    let mut y = vec![0f32; T * B * W];
    let flop = (2 * T * B * W * W) as u64;
    let mut g = c.benchmark_group("dense_fwd");
    g.throughput(Throughput::Elements(flop));
    // As the engine runs it each step: the weights transposed into the workspace, then the GEMM.
    let mut scratch = vec![0f32; W * W];
    g.bench_function(id("cpu"), |bn| {
        bn.iter(|| {
            for t in 0..T {
                let (xs, ys) = (
                    &x[t * B * W..(t + 1) * B * W],
                    &mut y[t * B * W..(t + 1) * B * W],
                );
                dense::transpose(&wt[t * W * W..(t + 1) * W * W], W, W, &mut scratch);
                dense::fwd_fused(
                    xs,
                    &scratch,
                    &bias[t * W..(t + 1) * W],
                    ys,
                    B,
                    W,
                    W,
                    &mut |_, _| {},
                )
            }
        })
    });
    g.finish();
    let mut dx = vec![0f32; T * B * W];
    let mut g = c.benchmark_group("dense_bwd_x");
    g.throughput(Throughput::Elements(flop));
    g.bench_function(id("cpu"), |bn| {
        bn.iter(|| {
            for t in 0..T {
                let r = t * B * W..(t + 1) * B * W;
                dense::bwd_x_fast(
                    &y[r.clone()],
                    &wt[t * W * W..(t + 1) * W * W],
                    &mut dx[r],
                    B,
                    W,
                    W,
                )
            }
        })
    });
    g.finish();
    let (mut dw, mut db) = (vec![0f32; T * W * W], vec![0f32; T * W]);
    let mut g = c.benchmark_group("dense_bwd_w");
    g.throughput(Throughput::Elements(flop));
    g.bench_function(id("cpu"), |bn| {
        bn.iter(|| {
            for t in 0..T {
                let r = t * B * W..(t + 1) * B * W;
                dense::bwd_w_fast(
                    &y[r.clone()],
                    &x[r],
                    &mut dw[t * W * W..(t + 1) * W * W],
                    &mut db[t * W..(t + 1) * W],
                    B,
                    W,
                    W,
                )
            }
        })
    });
    g.finish();
    let n = T * B * W;
    let mut z = vec![0f32; n];
    let mut g = c.benchmark_group("activation_fwd");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(id("cpu"), |bn| {
        // Trial t uses activation t mod 6, as a mixed cohort does.
        bn.iter(|| {
            for t in 0..T {
                let r = t * B * W..(t + 1) * B * W;
                activation::fwd(Activation::ALL[t % 6], &x[r.clone()], &mut z[r])
            }
        })
    });
    g.finish();
    let mut g = c.benchmark_group("activation_bwd");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(id("cpu"), |bn| {
        bn.iter(|| {
            for t in 0..T {
                let r = t * B * W..(t + 1) * B * W;
                activation::bwd(
                    Activation::ALL[t % 6],
                    &x[r.clone()],
                    &y[r.clone()],
                    &wt[..B * W],
                    &mut dx[r],
                )
            }
        })
    });
    g.finish();
    let mut m = vec![0f32; n];
    let mut g = c.benchmark_group("dropout_fwd");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(id("cpu"), |bn| {
        bn.iter(|| {
            for t in 0..T {
                let r = t * B * W..(t + 1) * B * W;
                dropout::mask(t as u32, 2, 3, B, W, 0.2, &mut m[r.clone()]);
                simd::mul(&x[r.clone()], &m[r.clone()], &mut z[r]);
            }
        })
    });
    g.finish();
    let logits = rnd(T * B * 10, 5);
    let labels: Vec<u32> = (0..B).map(|i| (i % 10) as u32).collect();
    let mut d = vec![0f32; T * B * 10];
    let mut g = c.benchmark_group("softmax_xent");
    g.throughput(Throughput::Elements((T * B) as u64));
    g.bench_function(id("cpu"), |bn| {
        bn.iter(|| {
            for t in 0..T {
                let r = t * B * 10..(t + 1) * B * 10;
                softmax_xent::fwd_bwd_f32(
                    &logits[r.clone()],
                    &labels,
                    B,
                    10,
                    1.0 / B as f32,
                    &mut d[r],
                    true,
                );
            }
        })
    });
    g.finish();
    let (mut p, gr, mut m1, mut v1) = (
        rnd(T * NP, 6),
        rnd(T * NP, 7),
        vec![0f32; T * NP],
        vec![0f32; T * NP],
    );
    for (name, lion_step) in [("adam", false), ("lion", true)] {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements((T * NP) as u64));
        g.bench_function(id("cpu"), |bn| {
            bn.iter(|| {
                for t in 0..T {
                    let r = t * NP..(t + 1) * NP;
                    if lion_step {
                        lion::step(
                            &mut p[r.clone()],
                            &gr[r.clone()],
                            &mut m1[r],
                            1e-4,
                            0.9,
                            0.99,
                            0.0,
                        )
                    } else {
                        adam::step(
                            &mut p[r.clone()],
                            &gr[r.clone()],
                            &mut m1[r.clone()],
                            &mut v1[r],
                            adam::alpha(1e-3, 0.9, 0.999, 10),
                            0.9,
                            0.999,
                            1e-7,
                            0.0,
                            0.0,
                        )
                    }
                }
            })
        });
        g.finish();
    }
}

/// The CUDA device for the benchmarks, or None with a line saying why the groups are skipped.
fn cuda() -> Option<AnyGpu> {
    match CudaGpu::open(0) {
        Ok(g) if g.info.fake => {
            eprintln!(
                "cuda benchmarks not run: {} is fakecuda, the test driver (not a GPU); its times are no GPU figures",
                g.info.name
            );
            None
        }
        Ok(g) => Some(AnyGpu::Cuda(g)),
        Err(e) => {
            eprintln!("cuda benchmarks skipped: {e}");
            None
        }
    }
}

/// Every kernel over the same cohort shape on the GPU: `iters` launches queued, one sync.
fn ops_cuda(c: &mut Criterion) {
    let Some(gpu) = cuda() else { return };
    let g = &gpu;
    let hp = Hyperparams {
        hidden: vec![W; 4],
        activation: Activation::Elu,
        dropout: 0.1,
        learning_rate: 1e-3,
        optimizer: Optimizer::Adam,
        ..Default::default()
    };
    let slots: Vec<Slot> = (0..T)
        .map(|t| {
            let mut h = hp.clone();
            h.activation = Activation::ALL[t % 6];
            h.optimizer = Optimizer::ALL[t % 2];
            Slot::new(&TrialSpec::new(t as u64, h, 1, 64, 10), (t * NP) as u32, 0)
        })
        .collect();
    let up = |v: &[f32]| g.upload(v).unwrap();
    let sl = g.upload(&slots).unwrap();
    let (x, params, grads) = (
        up(&rnd(T * B * W, 1)),
        up(&rnd(T * NP, 2)),
        up(&rnd(T * NP, 3)),
    );
    let (z, y, dx, mask) = (
        up(&rnd(T * B * W, 4)),
        up(&rnd(T * B * W, 5)),
        up(&rnd(T * B * W, 6)),
        up(&rnd(T * B * W, 7)),
    );
    let (m, v) = (
        g.alloc::<f32>(T * NP).unwrap(),
        g.alloc::<f32>(T * NP).unwrap(),
    );
    let logits = up(&rnd(T * B * 10, 8));
    let labels = g
        .upload(&(0..B).map(|i| (i % 10) as u32).collect::<Vec<u32>>())
        .unwrap();
    let stats = g.alloc::<Stats>(T).unwrap();
    // The rate table for one step, as an epoch's first kernel fills it.
    let alpha = g.alloc::<fastfc::backend::cuda::slot::Rate>(T).unwrap();
    g.launch(
        &Rates {
            slots: sl.ptr(),
            steps: 1,
            table: alpha.ptr(),
        }
        .launch(T as u32),
    )
    .unwrap();
    let (w1, b1) = (64 * 64 + 64, 64 * 64 * 2 + 64); // layer 1 (64 → 64) of the padded layout
    let t = T as u32;
    let flop = (2 * T * B * W * W) as u64;
    let n = (T * B * W) as u64;
    let cases: Vec<(&str, u64, Launch)> = vec![
        (
            "dense_fwd",
            flop,
            DenseFwd {
                slots: sl.ptr(),
                w_off: w1,
                b_off: b1,
                rows: B as i32,
                n_in: W as i32,
                n_out: W as i32,
                x: x.ptr(),
                x_tstride: (B * W) as u32,
                params: params.ptr(),
                z: z.ptr(),
                y: y.ptr(),
                mode: 1,
                skip_inactive: 1,
            }
            .launch(t),
        ),
        (
            "dense_bwd_x",
            flop,
            DenseBwdX {
                slots: sl.ptr(),
                w_off: w1,
                rows: B as i32,
                n_in: W as i32,
                n_out: W as i32,
                dy: y.ptr(),
                params: params.ptr(),
                mask: mask.ptr(),
                z: z.ptr(),
                y: y.ptr(),
                dx: dx.ptr(),
                mode: 1,
            }
            .launch(t),
        ),
        (
            "dense_bwd_w",
            flop,
            DenseBwdW {
                slots: sl.ptr(),
                w_off: w1,
                b_off: b1,
                rows: B as i32,
                n_in: W as i32,
                n_out: W as i32,
                dy: y.ptr(),
                x: x.ptr(),
                x_tstride: (B * W) as u32,
                grads: grads.ptr(),
            }
            .launch(t),
        ),
        (
            "activation_fwd",
            n,
            ActivationFwd {
                slots: sl.ptr(),
                n: (B * W) as i32,
                z: z.ptr(),
                y: dx.ptr(),
            }
            .launch(t),
        ),
        (
            "activation_bwd",
            n,
            ActivationBwd {
                slots: sl.ptr(),
                n: (B * W) as i32,
                z: z.ptr(),
                y: y.ptr(),
                dy: x.ptr(),
                dz: dx.ptr(),
            }
            .launch(t),
        ),
        (
            "dropout_fwd",
            n,
            DropoutFwd {
                slots: sl.ptr(),
                step: 3,
                layer: 1,
                rows: B as i32,
                width: W as i32,
                x: x.ptr(),
                mask: mask.ptr(),
                y: dx.ptr(),
            }
            .launch(t),
        ),
        (
            "softmax_xent",
            (T * B) as u64,
            SoftmaxXent {
                slots: sl.ptr(),
                rows: B as i32,
                classes: 10,
                logits: logits.ptr(),
                labels: labels.ptr(),
                scale: 1.0 / B as f32,
                dlogits: z.ptr(),
                stats: stats.ptr(),
                train: 0,
            }
            .launch(t),
        ),
        (
            // Every optimizer of the cohort's slots in one launch (the trials cycle through them).
            "optimize",
            (T * NP) as u64,
            Optimize {
                slots: sl.ptr(),
                n: NP as i32,
                step: 0,
                table: alpha.ptr(),
                steps: 1,
                params: params.ptr(),
                grads: grads.ptr(),
                m: m.ptr(),
                v: v.ptr(),
            }
            .launch(t),
        ),
    ];
    for (name, work, l) in cases {
        let mut grp = c.benchmark_group(name);
        grp.throughput(Throughput::Elements(work));
        grp.bench_function(id("cuda"), |bn| {
            bn.iter_custom(|iters| {
                let t0 = std::time::Instant::now();
                for _ in 0..iters {
                    g.enqueue(&l).unwrap();
                }
                g.sync().unwrap();
                t0.elapsed()
            })
        });
        grp.finish();
    }
}

/// One epoch of the embedded 8×8 data for cohorts of 1 and 8 copies of the seed's best model.
fn epoch(c: &mut Criterion) {
    let data = Arc::new(fastfc::data::embedded::load().unwrap());
    let backend = CpuBackend::new(data.clone());
    let order = fastfc::data::batches::epoch_order(42, 0, data.train.len());
    let mut g = c.benchmark_group("epoch");
    g.sample_size(10);
    for trials in [1usize, 8] {
        let hp = Hyperparams {
            hidden: vec![64; 4],
            activation: Activation::Elu,
            dropout: 0.049,
            learning_rate: 1e-3,
            optimizer: Optimizer::Adam,
            ..Default::default()
        };
        let cohort: Vec<_> = (0..trials as u64)
            .map(|i| {
                let s = TrialSpec::new(i, hp.clone(), 42, 64, 10);
                let st = TrialState::init(&s);
                (s, st)
            })
            .collect();
        let mut co = backend.load(cohort).unwrap();
        let active = vec![true; trials];
        g.throughput(Throughput::Elements((trials * data.train.len()) as u64));
        g.bench_function(
            BenchmarkId::new("cpu", format!("t{trials}_w64x4_b32")),
            |bn| {
                bn.iter(|| {
                    backend
                        .train_epoch(&mut co, &order, 32, &active, &|_| {})
                        .unwrap()
                })
            },
        );
    }
    g.finish();
}

/// One trial's step, op by op, as training runs it: a 64 → 64 layer at batch 32 with its operands
/// in L1, repeated (the `dense_*` groups above stream 108 trials' operands through L2), and one
/// Adam step over the seed model's 17,290 parameters (277 KB: L2). Ids `dense_step/cpu/<op>`;
/// FLOP throughput for the products (compared with `fastfc bench`'s FMA peak), elements for
/// the rest.
fn one_trial_dense(c: &mut Criterion) {
    let (x, w, bias) = (rnd(B * W, 11), rnd(W * W, 12), rnd(W, 13));
    let (mut wt, mut y, mut dw, mut db) = (
        vec![0f32; W * W],
        vec![0f32; B * W],
        vec![0f32; W * W],
        vec![0f32; W],
    );
    dense::transpose(&w, W, W, &mut wt);
    let flop = (2 * B * W * W) as u64;
    let mut g = c.benchmark_group("dense_step");
    g.throughput(Throughput::Elements(flop));
    g.bench_function("cpu/fwd", |bn| {
        bn.iter(|| {
            dense::fwd_fused(&x, &wt, &bias, &mut y, B, W, W, &mut |_, _| {});
            std::hint::black_box(&y);
        })
    });
    g.bench_function("cpu/bwd_x", |bn| {
        bn.iter(|| {
            dense::bwd_x_fast(&x, &w, &mut y, B, W, W);
            std::hint::black_box(&y);
        })
    });
    g.bench_function("cpu/bwd_w", |bn| {
        bn.iter(|| {
            dense::bwd_w_fast(&x, &y, &mut dw, &mut db, B, W, W);
            std::hint::black_box((&dw, &db));
        })
    });
    // Not FLOP: the Wᵀ each forward pass builds, and the bias gradient inside bwd_w, per element.
    g.throughput(Throughput::Elements((W * W) as u64));
    g.bench_function("cpu/transpose", |bn| {
        bn.iter(|| {
            dense::transpose(&w, W, W, &mut wt);
            std::hint::black_box(&wt);
        })
    });
    g.throughput(Throughput::Elements((B * W) as u64));
    g.bench_function("cpu/bias_grad", |bn| {
        bn.iter(|| {
            simd::col_sums(&x, W, &mut db);
            std::hint::black_box(&db);
        })
    });
    // The elementwise work of one hidden layer's step, per element of the 32 × 64 strip: the
    // forward epilogue (f and f′ of elu, the bench's model), the dropout mask and the backward's
    // dy·mask·f′.
    let (mut a, mut d, mut m, mut h) = (
        vec![0f32; B * W],
        vec![0f32; B * W],
        vec![0f32; B * W],
        vec![0f32; B * W],
    );
    g.bench_function("cpu/act_fwd_train_elu", |bn| {
        bn.iter(|| {
            activation::fwd_train(Activation::Elu, &x, &mut a, &mut d);
            std::hint::black_box((&a, &d));
        })
    });
    g.bench_function("cpu/dropout_mask", |bn| {
        bn.iter(|| {
            dropout::mask(7, 3, 1, B, W, 0.049, &mut m);
            std::hint::black_box(&m);
        })
    });
    g.bench_function("cpu/mul2", |bn| {
        bn.iter(|| {
            simd::mul2(&x, &m, &d, &mut h);
            std::hint::black_box(&h);
        })
    });
    // One Adam step over the seed model's 17,290 parameters, per parameter.
    let (mut p, gr, mut m1, mut v1) = (rnd(NP, 21), rnd(NP, 22), rnd(NP, 23), rnd(NP, 24));
    v1.iter_mut().for_each(|v| *v = v.abs());
    g.throughput(Throughput::Elements(NP as u64));
    g.bench_function("cpu/adam_step", |bn| {
        bn.iter(|| {
            adam::step(
                &mut p, &gr, &mut m1, &mut v1, 1e-3, 0.9, 0.999, 1e-7, 0.0, 0.0,
            );
            std::hint::black_box(&p);
        })
    });
    g.finish();
}

criterion_group!(benches, ops_cpu, one_trial_dense, ops_cuda, epoch);
criterion_main!(benches);
