//! Criterion benchmarks, one group per op (ids `<op>/cpu/<shape>`), plus one training epoch.
//! CUDA groups join when the CUDA backend lands (issue: multi-trial CUDA engine).
//! Run: `cargo bench --bench bench_main` (or `-- dense` for one group).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};

use fastfc::backend::cpu::{activation, adam, dense, dropout, lion, softmax_xent, CpuBackend};
use fastfc::backend::Backend;
use fastfc::model::{Activation, Hyperparams, Optimizer, TrialSpec, TrialState};

fn rnd(n: usize, seed: u64) -> Vec<f32> {
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| r.random_range(-1.0..1.0)).collect()
}

fn ops(c: &mut Criterion) {
    let b = 32;
    for w in [32usize, 48, 64] {
        let (x, wt, bias) = (rnd(b * w, 1), rnd(w * w, 2), rnd(w, 3));
        let mut y = vec![0f32; b * w];
        let mut g = c.benchmark_group("dense_fwd");
        g.throughput(Throughput::Elements((2 * b * w * w) as u64)); // FLOP
        g.bench_function(BenchmarkId::new("cpu", format!("b{b}_w{w}")), |bn| {
            bn.iter(|| dense::fwd_fast(&x, &wt, &bias, &mut y, b, w, w))
        });
        g.finish();
        let (mut dw, mut db) = (vec![0f32; w * w], vec![0f32; w]);
        let mut g = c.benchmark_group("dense_bwd_w");
        g.throughput(Throughput::Elements((2 * b * w * w) as u64));
        g.bench_function(BenchmarkId::new("cpu", format!("b{b}_w{w}")), |bn| {
            bn.iter(|| dense::bwd_w_fast(&y, &x, &mut dw, &mut db, b, w, w))
        });
        g.finish();
    }
    let n = 32 * 64;
    let z = rnd(n, 4);
    let mut y = vec![0f32; n];
    let mut g = c.benchmark_group("activation_fwd");
    g.throughput(Throughput::Elements(n as u64));
    for act in Activation::ALL {
        g.bench_function(BenchmarkId::new("cpu", format!("{act}_{n}")), |bn| {
            bn.iter(|| activation::fwd(act, &z, &mut y))
        });
    }
    g.finish();
    let mut m = vec![0f32; n];
    let mut g = c.benchmark_group("dropout_mask");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::new("cpu", "b32_w64"), |bn| {
        bn.iter(|| dropout::mask(1, 2, 3, 32, 64, 0.2, &mut m))
    });
    g.finish();
    let logits = rnd(32 * 10, 5);
    let labels: Vec<u8> = (0..32).map(|i| (i % 10) as u8).collect();
    let mut d = vec![0f32; 320];
    let mut g = c.benchmark_group("softmax_xent");
    g.throughput(Throughput::Elements(32));
    g.bench_function(BenchmarkId::new("cpu", "b32_c10"), |bn| {
        bn.iter(|| softmax_xent::fwd_bwd(&logits, &labels, 32, 10, 1.0 / 32.0, Some(&mut d)))
    });
    g.finish();
    let np = 17_226; // parameters of 64 → [64]×4 → 10
    let (mut p, gr, mut m1, mut v1) = (rnd(np, 6), rnd(np, 7), vec![0f32; np], vec![0f32; np]);
    let mut g = c.benchmark_group("optimizer");
    g.throughput(Throughput::Elements(np as u64));
    g.bench_function(BenchmarkId::new("adam/cpu", np), |bn| {
        bn.iter(|| adam::step(&mut p, &gr, &mut m1, &mut v1, 1e-3, 0.9, 0.999, 1e-7, 10))
    });
    g.bench_function(BenchmarkId::new("lion/cpu", np), |bn| {
        bn.iter(|| lion::step(&mut p, &gr, &mut m1, 1e-4, 0.9, 0.99))
    });
    g.finish();
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

criterion_group!(benches, ops, epoch);
criterion_main!(benches);
