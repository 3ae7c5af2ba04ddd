//! Shared test helpers: seeded non-zero inputs, loud comparisons, fixture paths.
#![allow(dead_code)]

use rand::{Rng, SeedableRng};

pub const SEED: u64 = 0x5eed;

/// Values in ±[0.1, 2]: random, never zero.
pub fn nonzero(n: usize, seed: u64) -> Vec<f32> {
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let v: f32 = r.random_range(0.1..2.0);
            if r.random::<bool>() {
                v
            } else {
                -v
            }
        })
        .collect()
}

pub fn nonzero64(n: usize, seed: u64) -> Vec<f64> {
    nonzero(n, seed).into_iter().map(|v| v as f64).collect()
}

/// Asserts |a − b| ≤ abs + rel·|b| everywhere; reports the count and the first mismatch.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], abs: f32, rel: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let bad: Vec<usize> = (0..got.len())
        .filter(|&i| {
            // NaN (a poisoned, unwritten output) must count as a mismatch.
            let ok = (got[i] - want[i]).abs() <= abs + rel * want[i].abs();
            !ok
        })
        .collect();
    if let Some(&i) = bad.first() {
        panic!(
            "{what}: {} mismatches of {}; first at index {i}: got {} vs want {} (tol {} + {}·|want|)",
            bad.len(),
            got.len(),
            got[i],
            want[i],
            abs,
            rel
        );
    }
}

pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Reads a float32 .npy fixture.
pub fn read_npy_f32(name: &str) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(fixture(name)).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec::<f32>().unwrap())
}

/// The Debian Fashion-MNIST folder, if installed (CI installs it; tests needing it say so).
pub fn real_data_dir() -> Option<std::path::PathBuf> {
    let d = std::path::PathBuf::from(fastfc::data::DEBIAN_DIR);
    d.join("train-images-idx3-ubyte.gz").exists().then_some(d)
}

pub fn require_real_data() -> std::path::PathBuf {
    real_data_dir()
        .expect("Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist (CI does)")
}

/// The CUDA device the suites test through cudarc: with `FASTFC_TEST_GPU=cuda` the real GPU (a
/// missing one, or fakecuda, is a failure), otherwise fakecuda loaded by absolute path. The flag
/// says which.
pub fn cuda_under_test() -> (fastfc::backend::cuda::driver::CudaGpu, bool) {
    use fastfc::backend::cuda::driver::CudaGpu;
    if std::env::var("FASTFC_TEST_GPU").as_deref() == Ok("cuda") {
        let g = CudaGpu::open(0)
            .unwrap_or_else(|e| panic!("FASTFC_TEST_GPU=cuda but no usable GPU: {e}"));
        assert!(
            !g.info.fake,
            "FASTFC_TEST_GPU=cuda is for a real GPU, not fakecuda"
        );
        return (g, true);
    }
    fastfc::backend::cuda::fake::load().unwrap();
    let g = CudaGpu::open(0).unwrap();
    assert!(g.info.fake);
    (g, false)
}

/// The embedded 8×8 data cut to its first `n_train` training and `n_val` validation rows (fast
/// tests).
pub fn embedded_subset(n_train: usize, n_val: usize) -> std::sync::Arc<fastfc::data::Dataset> {
    let mut d = fastfc::data::embedded::load().unwrap();
    let dim = d.dim();
    d.train.x.truncate(n_train * dim);
    d.train.y.truncate(n_train);
    d.val.x.truncate(n_val * dim);
    d.val.y.truncate(n_val);
    std::sync::Arc::new(d)
}

/// A study's journal records without their timing fields, sorted by run id: what an
/// interrupted and resumed study must equal of an uninterrupted one.
pub fn journal_records(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    let mut v: Vec<serde_json::Value> = text
        .lines()
        .map(|l| {
            let mut r: serde_json::Value = serde_json::from_str(l).unwrap();
            for k in ["seconds", "study_seconds", "study_epochs"] {
                r.as_object_mut().unwrap().remove(k);
            }
            r
        })
        .collect();
    v.sort_by_key(|r| r["run_id"].as_u64().unwrap());
    v
}

/// max |a − b| / (1 + max |b|) over a vector.
pub fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = 1.0 + b.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() as f64)
        .fold(0.0, f64::max)
        / scale
}

/// max over elements of |a − b| / max(|b|, 1e-3 · max |b|): relative element by element, except
/// for elements under a thousandth of the largest. For Adam's second moment, whose elements span
/// orders of magnitude that [`rel_diff`] would flatten into one absolute bound.
pub fn elem_rel_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let floor = 1e-3 * b.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() as f64 / (y.abs() as f64).max(floor).max(f64::MIN_POSITIVE))
        .fold(0.0, f64::max)
}
