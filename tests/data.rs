//! Data pipeline: IDX parsing (good and bad files), resize against known answers and
//! scikit-image, the leak-free split, the cache (checksummed: damage is rebuilt, never trained on)
//! and the embedded copy. The real first 64 test images are committed fixtures; the tests that
//! need the full Debian files are marked and run in CI.

mod common;

use std::io::Write;
use std::path::Path;

use fastfc::data::{self, idx, resize, DataOptions};

fn idx_bytes(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(payload);
    b
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn idx_reads_raw_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let payload: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
    let raw = idx_bytes(idx::MAGIC_IDX3_U8, &[2, 3, 4], &payload);
    for (name, bytes) in [("a", raw.clone()), ("a.gz", gz(&raw))] {
        let p = write(dir.path(), name, &bytes);
        let a = idx::read_u8(&p, 3).unwrap();
        assert_eq!(a.dims, vec![2, 3, 4]);
        assert_eq!(a.data, payload);
    }
}

fn err(p: &Path, ndim: usize) -> String {
    idx::read_u8(p, ndim).unwrap_err().to_string()
}

#[test]
fn idx_rejects_bad_files_with_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let good = idx_bytes(idx::MAGIC_IDX1_U8, &[5], &[1, 2, 3, 4, 5]);

    let p = write(dir.path(), "truncated", &good[..good.len() - 2]);
    let e = err(&p, 1);
    assert!(
        e.contains("truncated") && e.contains("truncated:") && e.contains("file has 3"),
        "{e}"
    );
    assert!(e.starts_with(&p.display().to_string()), "{e}");

    let p = write(dir.path(), "magic", &idx_bytes(0x1234_5678, &[5], &[0; 5]));
    let e = err(&p, 1);
    assert!(
        e.contains("expected IDX magic 0x00000801, found 0x12345678"),
        "{e}"
    );

    let p = write(
        dir.path(),
        "swapped",
        &idx_bytes(idx::MAGIC_IDX3_U8, &[1, 1, 1], &[0]),
    );
    assert!(err(&p, 1).contains("images and labels swapped?"));

    let p = write(dir.path(), "twice.gz", &gz(&gz(&good)));
    assert!(err(&p, 1).contains("gzipped twice"), "{}", err(&p, 1));

    let mut long = good.clone();
    long.push(9);
    let p = write(dir.path(), "long", &long);
    assert!(err(&p, 1).contains("1 unexpected bytes"));

    let p = write(dir.path(), "empty", &[]);
    assert!(err(&p, 1).contains("empty"));

    // Short files, each refused for what it lacks (never read past their end).
    for (len, says) in [
        (2, "file is 2 bytes; expected at least a 4-byte IDX header"),
        (4, "truncated header: 4 bytes, expected 8"),
        (6, "truncated header: 6 bytes, expected 8"),
    ] {
        let p = write(dir.path(), "short", &good[..len]);
        assert!(err(&p, 1).contains(says), "{len} bytes: {}", err(&p, 1));
    }
    // A header for no labels is a well-formed, empty array.
    let p = write(
        dir.path(),
        "none",
        &idx_bytes(idx::MAGIC_IDX1_U8, &[0], &[]),
    );
    let a = idx::read_u8(&p, 1).unwrap();
    assert_eq!((a.dims, a.data.len()), (vec![0], 0));

    let mut cut = gz(&good);
    cut.truncate(cut.len() - 6);
    let p = write(dir.path(), "cut.gz", &cut);
    assert!(
        err(&p, 1).contains("gzip stream is corrupt or truncated"),
        "{}",
        err(&p, 1)
    );
}

/// A folder of four small IDX files (n train, m test images of 28×28).
fn fake_set(dir: &Path, n: u32, m: u32, bad_label: bool, label_count_off: u32) {
    let img = |k: u32| -> Vec<u8> { (0..k * 784).map(|i| (i * 7 % 251) as u8).collect() };
    write(
        dir,
        "train-images-idx3-ubyte.gz",
        &gz(&idx_bytes(idx::MAGIC_IDX3_U8, &[n, 28, 28], &img(n))),
    );
    let mut labels: Vec<u8> = (0..n - label_count_off).map(|i| (i % 10) as u8).collect();
    if bad_label {
        labels[3] = 10;
    }
    write(
        dir,
        "train-labels-idx1-ubyte",
        &idx_bytes(idx::MAGIC_IDX1_U8, &[n - label_count_off], &labels),
    );
    write(
        dir,
        "t10k-images-idx3-ubyte",
        &idx_bytes(idx::MAGIC_IDX3_U8, &[m, 28, 28], &img(m)),
    );
    let tl: Vec<u8> = (0..m).map(|i| (i % 10) as u8).collect();
    write(
        dir,
        "t10k-labels-idx1-ubyte.gz",
        &gz(&idx_bytes(idx::MAGIC_IDX1_U8, &[m], &tl)),
    );
}

fn opts(dir: &Path) -> DataOptions {
    DataOptions {
        data_dir: Some(dir.to_path_buf()),
        image_size: Some(8),
        cache: false,
        ..DataOptions::default()
    }
}

/// Labels are whatever the set has (EMNIST's letters go to 26): an eleventh label value is an
/// eleventh class, named by its value. A count that does not match the images is refused.
#[test]
fn label_problems_are_named() {
    let d = tempfile::tempdir().unwrap();
    fake_set(d.path(), 20, 10, true, 0);
    let ds = data::load(&opts(d.path())).unwrap();
    assert_eq!(ds.n_classes(), 11);
    assert_eq!(ds.classes[10], "10");

    let d = tempfile::tempdir().unwrap();
    fake_set(d.path(), 20, 10, false, 2);
    let e = data::load(&opts(d.path())).unwrap_err().to_string();
    assert!(
        e.contains("18 labels but") && e.contains("has 20 images"),
        "{e}"
    );
}

/// A set of any size splits: its test file is the test split, the validation split is drawn
/// from the training file (stratified, 20%), and the training rows keep their file order.
#[test]
fn a_small_idx_set_draws_its_validation_split() {
    let d = tempfile::tempdir().unwrap();
    fake_set(d.path(), 40, 10, false, 0);
    let ds = data::load(&opts(d.path())).unwrap();
    // 4 images a class, 0.8 of one to validation each: 8 = 0.2 x 40 go, one from each of the
    // first 8 classes (largest remainders, ties by class id).
    assert_eq!((ds.train.len(), ds.val.len(), ds.test.len()), (32, 8, 10));
    assert_eq!(ds.val.class_counts(10), [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    assert!(
        ds.split.contains("validation 0.2") && ds.split.contains("test = the test file"),
        "{}",
        ds.split
    );
    // Not Fashion-MNIST: its classes are named by their labels.
    assert_eq!(ds.classes[3], "3");
}

/// The split needs 60,000 training images, not one fewer; with exactly that many, train and
/// validation are the first 50,000 and the next 10,000 in file order.
#[test]
fn the_split_needs_sixty_thousand_images_and_keeps_their_order() {
    let n = data::N_TRAIN + data::N_VAL;
    let split = |n: usize| {
        let x: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let y: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        data::Dataset::from_full(1, x, y, vec![0.5; 3], vec![1, 2, 3], data::Origin::Embedded)
    };
    let e = split(n - 1).unwrap_err().to_string();
    assert!(
        e.contains("has 59999 images") && e.contains("needs 60000"),
        "{e}"
    );
    let d = split(n).unwrap();
    assert_eq!(
        (d.train.len(), d.val.len(), d.test.len()),
        (50_000, 10_000, 3)
    );
    assert_eq!(
        (d.train.x[49_999], d.val.x[0], d.val.x[9_999]),
        (49_999.0, 50_000.0, 59_999.0)
    );
    assert_eq!((d.val.y[0], d.test.y[2]), (0, 3));
}

/// Images of another size than the training images' are refused, naming the file, even when
/// one side is right.
#[test]
fn test_images_must_be_the_training_images_size() {
    for (h, w) in [(28u32, 27u32), (27, 28)] {
        let d = tempfile::tempdir().unwrap();
        fake_set(d.path(), 20, 10, false, 0);
        let px = vec![7u8; (10 * h * w) as usize];
        write(
            d.path(),
            "t10k-images-idx3-ubyte",
            &idx_bytes(idx::MAGIC_IDX3_U8, &[10, h, w], &px),
        );
        let files = data::find_files(d.path()).unwrap().unwrap();
        let e = data::preprocess_files(&files, 8).unwrap_err().to_string();
        assert!(
            e.contains("t10k-images-idx3-ubyte")
                && e.contains(&format!(
                    "images are {h}x{w}; the training images are 28x28"
                )),
            "{e}"
        );
    }
}

#[test]
fn missing_files_and_bad_sizes() {
    let d = tempfile::tempdir().unwrap();
    let e = data::load(&opts(d.path())).unwrap_err().to_string();
    assert!(
        e.starts_with("--data-dir") && e.contains("no Fashion-MNIST files"),
        "{e}"
    );
    write(d.path(), "train-images-idx3-ubyte", b"x");
    let e = data::load(&opts(d.path())).unwrap_err().to_string();
    assert!(
        e.contains("found 1 of the 4") && e.contains("test labels (t10k-*"),
        "{e}"
    );
    let mut o = opts(d.path());
    o.image_size = Some(29);
    assert!(data::load(&o)
        .unwrap_err()
        .to_string()
        .starts_with("--image-size"));
}

#[test]
fn resize_constant_image_stays_constant() {
    let img = vec![0.37f32; 28 * 28];
    for s in [1, 4, 7, 8, 14, 27, 28] {
        let out = resize::resize(&img, 28, 28, s, s);
        common::assert_close(
            &format!("constant {s}x{s}"),
            &out,
            &vec![0.37; s * s],
            1e-6,
            0.0,
        );
    }
}

#[test]
fn resize_preserves_a_linear_ramp_away_from_borders() {
    // A ramp is invariant under a symmetric blur and linear interpolation, so away from the
    // mirrored border each output equals the ramp at its source coordinate (o+0.5)·28/s − 0.5.
    let img: Vec<f32> = (0..28 * 28).map(|i| (i % 28) as f32 / 27.0).collect();
    let s = 14; // σ = 0.5, radius 2
    let out = resize::resize(&img, 28, 28, s, s);
    for ox in 2..s - 2 {
        let c = (ox as f64 + 0.5) * 2.0 - 0.5;
        let want = (c / 27.0) as f32;
        common::assert_close("ramp", &[out[5 * s + ox]], &[want], 1e-6, 0.0);
    }
}

#[test]
fn resize_impulse_matches_hand_computed_taps() {
    // 4×4 → 2×2 (σ = 0.5, radius 2; source coordinates 0.5 and 2.5): a unit impulse at (1,1)
    // lands in output (0,0) with weight w² where w = ½·blur[0] + ½·blur[1] along each axis and
    // g = normalised Gaussian taps (g[2] centre). The mirrored border folds index −1 onto 1, so
    // blur[0] = 2·g(±1) and blur[1] = g(0) + g(∓2) (index −1 again).
    let mut img = vec![0f32; 16];
    img[5] = 1.0;
    let g: Vec<f64> = (-2i32..=2)
        .map(|x| (-0.5 * (x * x) as f64 / 0.25).exp())
        .collect();
    let sum: f64 = g.iter().sum();
    let g: Vec<f64> = g.iter().map(|v| v / sum).collect();
    let w = 0.5 * (2.0 * g[1]) + 0.5 * (g[2] + g[0]);
    let out = resize::resize(&img, 4, 4, 2, 2);
    common::assert_close("impulse", &[out[0]], &[(w * w) as f32], 1e-7, 1e-6);
}

/// Each axis is blurred with its own σ, and an axis kept at its size is not blurred: an image
/// that varies only down its columns must come out the same whatever its width, because the blur
/// along rows sees constant rows. 8×8 → 2×2 (σ = 1.5 both ways), 8×4 → 2×2 (σ 1.5 down, 0.5
/// across) and 8×4 → 2×4 (σ 1.5 down, none across) must all give the same column.
#[test]
fn resize_blurs_each_axis_with_its_own_sigma() {
    let profile = [0.9f32, 0.1, 0.0, 0.7, 0.2, 1.0, 0.05, 0.4];
    let image = |w: usize| -> Vec<f32> { (0..8 * w).map(|i| profile[i / w]).collect() };
    let square = resize::resize(&image(8), 8, 8, 2, 2);
    let column = [square[0], square[2]];
    assert_ne!(column[0], column[1]);
    for (w, out_w) in [(4, 2), (4, 4)] {
        let out = resize::resize(&image(w), 8, w, 2, out_w);
        for x in 0..out_w {
            common::assert_close(
                &format!("8x{w} -> 2x{out_w}, column {x}"),
                &[out[x], out[out_w + x]],
                &column,
                1e-6,
                0.0,
            );
        }
    }
}

/// A stack is scaled to [0, 1] (÷255) and each image resized on its own, whatever its shape;
/// at its own size an image is only scaled.
#[test]
fn preprocess_stack_scales_and_resizes_each_image() {
    let (h, w) = (8, 4);
    let pixels: Vec<u8> = (0..3 * h * w).map(|i| (i * 97 % 256) as u8).collect();
    for s in [4, 8] {
        let got = resize::preprocess_stack(&pixels, 3, h, w, s);
        assert_eq!(got.len(), 3 * s * s);
        for i in 0..3 {
            let img: Vec<f32> = pixels[i * h * w..(i + 1) * h * w]
                .iter()
                .map(|&p| p as f32 / 255.0)
                .collect();
            let want = resize::resize(&img, h, w, s, s);
            assert_eq!(
                &got[i * s * s..(i + 1) * s * s],
                &want[..],
                "image {i} at {s}x{s}"
            );
        }
    }
    let got = resize::preprocess_stack(&pixels[..2 * 16], 2, 4, 4, 4);
    let want: Vec<f32> = pixels[..32].iter().map(|&p| p as f32 / 255.0).collect();
    assert_eq!(got, want);
}

/// The original 28×28 pixels and labels of the first 64 t10k images (committed fixtures, cut from
/// the Zalando files: images gzipped, labels raw, so both reader paths see real files).
fn first64_test_images() -> (Vec<u8>, Vec<u8>) {
    let a = idx::read_u8(&common::fixture("t10k-first64-images-idx3-ubyte.gz"), 3).unwrap();
    assert_eq!(a.dims, vec![64, 28, 28]);
    let l = idx::read_u8(&common::fixture("t10k-first64-labels-idx1-ubyte"), 1).unwrap();
    assert_eq!(l.dims, vec![64]);
    (a.data, l.data)
}

#[test]
fn resize_matches_scikit_image() {
    let (px, labels) = first64_test_images();
    // Fashion-MNIST's published first test labels: ankle boot, pullover, trouser, trouser, shirt…
    assert_eq!(&labels[..10], &[9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    for s in [8usize, 4, 14] {
        let (shape, want) =
            common::read_npy_f32(&format!("skimage_resize_t10k_first64_{s}x{s}.npy"));
        assert_eq!(shape, vec![64, s as u64, s as u64]);
        let got = resize::preprocess_stack(&px, 64, 28, 28, s);
        // f32 storage after each pass, as scipy: agreement to a few f32 ulps.
        common::assert_close(&format!("skimage {s}x{s}"), &got, &want, 2e-6, 1e-5);
    }
}

/// The embedded copy is this pipeline's output on the real files: checked here on the 64 fixture
/// images (labels exactly, pixels within f16's half ulp); the whole set in the marked test below.
#[test]
fn embedded_copy_matches_the_pipeline_on_the_fixture_images() {
    let (px, labels) = first64_test_images();
    let emb = data::embedded::load().unwrap();
    assert!(emb.test.y[..64]
        .iter()
        .zip(&labels)
        .all(|(&a, &b)| a == b as u32));
    let want = resize::preprocess_stack(&px, 64, 28, 28, 8);
    common::assert_close(
        "embedded test rows 0..64",
        &emb.test.x[..64 * 64],
        &want,
        2f32.powi(-12),
        0.0,
    );
}

#[test]
#[ignore = "needs dataset-fashion-mnist"]
fn real_data_split_is_leak_free() {
    let dir = common::require_real_data();
    let d = data::load(&DataOptions {
        data_dir: Some(dir.clone()),
        image_size: Some(8),
        cache: false,
        ..DataOptions::default()
    })
    .unwrap();
    assert_eq!(
        (d.train.len(), d.val.len(), d.test.len()),
        (50_000, 10_000, 10_000)
    );
    // Validation rows are exactly training-file rows 50,000..60,000, and no training row is one of
    // them: compare against the raw file.
    let raw = idx::read_u8(&dir.join("train-images-idx3-ubyte.gz"), 3).unwrap();
    let lab = idx::read_u8(&dir.join("train-labels-idx1-ubyte.gz"), 1).unwrap();
    let wide = |v: &[u8]| v.iter().map(|&l| l as u32).collect::<Vec<u32>>();
    assert_eq!(d.train.y, wide(&lab.data[..50_000]));
    assert_eq!(d.val.y, wide(&lab.data[50_000..60_000]));
    assert_eq!(
        d.classes[0], "T-shirt/top",
        "Fashion-MNIST keeps its class names"
    );
    let v0 = resize::preprocess_stack(&raw.data[50_000 * 784..50_001 * 784], 1, 28, 28, 8);
    assert_eq!(d.val.row(0), &v0[..]);
    let t_last = resize::preprocess_stack(&raw.data[49_999 * 784..50_000 * 784], 1, 28, 28, 8);
    assert_eq!(d.train.row(49_999), &t_last[..]);
    // Every class is present in every split.
    for counts in [
        d.train.class_counts(10),
        d.val.class_counts(10),
        d.test.class_counts(10),
    ] {
        assert!(counts.iter().all(|&c| c > 500), "{counts:?}");
    }
    assert!(d.train.x.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
#[ignore = "needs dataset-fashion-mnist"]
fn cache_round_trips_and_embedded_copy_matches_the_pipeline() {
    let dir = common::require_real_data();
    cache_dir();
    let o = DataOptions {
        data_dir: Some(dir),
        image_size: Some(8),
        cache: true,
        ..DataOptions::default()
    };
    let fresh = data::load(&o).unwrap();
    assert!(matches!(fresh.origin, data::Origin::Files(_)));
    let cached = data::load(&o).unwrap();
    assert!(
        matches!(cached.origin, data::Origin::Cache { .. }),
        "{}",
        cached.origin
    );
    assert_eq!(fresh.train.x, cached.train.x);
    assert_eq!(fresh.test.y, cached.test.y);

    let emb = data::embedded::load().unwrap();
    assert_eq!(emb.train.y, fresh.train.y);
    assert_eq!(emb.val.y, fresh.val.y);
    assert_eq!(emb.test.y, fresh.test.y);
    // f16 storage: half an ulp of f16 below 1 is 2^-12.
    common::assert_close(
        "embedded train",
        &emb.train.x,
        &fresh.train.x,
        2f32.powi(-12),
        0.0,
    );
    common::assert_close(
        "embedded test",
        &emb.test.x,
        &fresh.test.x,
        2f32.powi(-12),
        0.0,
    );
}

#[test]
fn npy_export_writes_six_arrays() {
    let d = data::embedded::load().unwrap();
    let out = tempfile::tempdir().unwrap();
    data::npy::export(&d, out.path()).unwrap();
    let bytes = std::fs::read(out.path().join("val_x.npy")).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(npy.shape(), &[10_000, 64]);
    let x = npy.into_vec::<f32>().unwrap();
    assert_eq!(x, d.val.x);
    let bytes = std::fs::read(out.path().join("test_y.npy")).unwrap();
    let y = npyz::NpyFile::new(&bytes[..])
        .unwrap()
        .into_vec::<u8>()
        .unwrap();
    assert!(y.iter().zip(&d.test.y).all(|(&a, &b)| a as u32 == b));
    assert_eq!(y.len(), d.test.y.len());
}

#[test]
fn batch_orders_are_permutations_and_seeded() {
    use fastfc::data::batches::epoch_order;
    let a = epoch_order(42, 0, 1000);
    let mut s = a.clone();
    s.sort();
    assert_eq!(s, (0..1000).collect::<Vec<u32>>());
    assert_eq!(a, epoch_order(42, 0, 1000));
    assert_ne!(a, epoch_order(42, 1, 1000));
    assert_ne!(a, epoch_order(43, 0, 1000));
}

/// An epoch's optimizer steps (progress bars count them): the last batch may be partial.
#[test]
fn steps_per_epoch_counts_a_partial_last_batch() {
    use fastfc::data::batches::steps_per_epoch;
    for (n, batch, steps) in [
        (50_000, 128, 391),
        (256, 128, 2),
        (257, 128, 3),
        (1, 128, 1),
        (0, 32, 0),
    ] {
        assert_eq!(
            steps_per_epoch(n, batch),
            steps,
            "{n} samples in batches of {batch}"
        );
    }
}

/// `pack` and `decode` are each other's inverse (pixels to f16 precision, everything else
/// exactly), and a payload that is not one is refused with what is wrong, never read past.
#[test]
fn embedded_payload_round_trips_and_bad_payloads_are_named() {
    use fastfc::data::{embedded, FullData};
    let (s, n_train, n_test) = (3usize, 5usize, 2usize);
    let px = |n: usize, k: u32| -> Vec<f32> {
        (0..n * s * s)
            .map(|i| ((i as u32 * 37 + k) % 101) as f32 / 100.0)
            .collect()
    };
    let full = FullData {
        s,
        train_x: px(n_train, 1),
        train_y: vec![3, 1, 4, 1, 5],
        test_x: px(n_test, 7),
        test_y: vec![9, 2],
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payload.gz");
    embedded::pack(&full, &path).unwrap();
    let gz_bytes = std::fs::read(&path).unwrap();
    let back = embedded::decode(&gz_bytes).unwrap();
    assert_eq!(
        (back.s, &back.train_y, &back.test_y),
        (s, &full.train_y, &full.test_y)
    );
    // f16 keeps 11 significant bits: within 2^-12 of values below 1.
    common::assert_close("train_x", &back.train_x, &full.train_x, 2f32.powi(-12), 0.0);
    common::assert_close("test_x", &back.test_x, &full.test_x, 2f32.powi(-12), 0.0);
    assert_ne!(back.train_x, back.test_x[..]);

    // The inflated layout: magic, s, n_train, n_test, then the f16 pixels and the labels.
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz_bytes[..]), &mut raw).unwrap();
    assert_eq!(
        raw.len(),
        20 + 2 * s * s * (n_train + n_test) + n_train + n_test
    );
    let refused = |raw: &[u8]| embedded::decode(&gz(raw)).unwrap_err().to_string();
    for (what, bad, says) in [
        (
            "no magic",
            {
                let mut r = raw.clone();
                r[0] = b'X';
                r
            },
            "missing header",
        ),
        ("header only", raw[..19].to_vec(), "missing header"),
        (
            "one byte short",
            raw[..raw.len() - 1].to_vec(),
            "length does not match",
        ),
        (
            "one byte long",
            [&raw[..], &[0]].concat(),
            "length does not match",
        ),
        (
            "another n_test",
            {
                let mut r = raw.clone();
                r[16] = 3;
                r
            },
            "length does not match",
        ),
    ] {
        let e = refused(&bad);
        assert!(
            e.contains("embedded dataset") && e.contains(says),
            "{what}: {e}"
        );
    }
    let e = embedded::decode(b"not gzip").unwrap_err().to_string();
    assert!(e.contains("cannot inflate"), "{e}");

    // The smallest well-formed payload, a 20-byte header for no images, decodes as such.
    let empty = FullData {
        s,
        train_x: vec![],
        train_y: vec![],
        test_x: vec![],
        test_y: vec![],
    };
    embedded::pack(&empty, &path).unwrap();
    let back = embedded::decode(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!((back.s, back.train_y.len(), back.test_x.len()), (s, 0, 0));
}

/// A split's accessors, and the fingerprint by which shared-study workers check they loaded the
/// same data: it names the sizes and changes with any one value or label.
#[test]
fn splits_and_the_data_fingerprint() {
    let d = data::embedded::load().unwrap();
    assert_eq!(
        (d.train.len(), d.val.len(), d.test.len()),
        (50_000, 10_000, 10_000)
    );
    assert!(!d.train.is_empty() && data::Split::default().is_empty());
    assert_eq!(d.train.row(7), &d.train.x[7 * 64..8 * 64]);
    let counts = d.test.class_counts(10);
    assert_eq!(
        counts, [1000; 10],
        "Fashion-MNIST's test set has 1,000 of each class"
    );

    let fp = d.fingerprint();
    assert!(
        fp.starts_with("8x8, 10 classes, train 50000 / val 10000 / test 10000, crc32 "),
        "{fp}"
    );
    assert_eq!(fp, d.clone().fingerprint());
    let mut x = d.clone();
    x.val.x[123] += 2f32.powi(-10);
    let mut y = d.clone();
    y.test.y[5] = (y.test.y[5] + 1) % 10;
    let mut t = d.clone();
    t.train.x[0] = -t.train.x[0] - 1.0;
    for (what, other) in [("a value", x), ("a label", y), ("a train value", t)] {
        assert_ne!(
            other.fingerprint(),
            fp,
            "{what} changed, the fingerprint did not"
        );
    }
}

/// The one preprocessing-cache folder of this test process (`$FASTFC_CACHE` is process-wide, so
/// every test that uses the cache shares it; their keys differ).
fn cache_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        std::env::set_var("FASTFC_CACHE", d.path());
        d
    })
    .path()
}

/// The cache key names the image size and changes with the files: another folder, another
/// length, another modification time. The same files give the same key.
#[test]
fn cache_keys_follow_the_files() {
    use fastfc::data::cache::key;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    fake_set(a.path(), 20, 10, false, 0);
    fake_set(b.path(), 20, 10, false, 0);
    let files = |d: &Path| data::find_files(d).unwrap().unwrap();
    let k = key(&files(a.path()), 8);
    assert!(k.starts_with("idx-8x8-") && k.ends_with(".bin"), "{k}");
    assert_eq!(k, key(&files(a.path()), 8));
    assert!(key(&files(a.path()), 14).starts_with("idx-14x14-"));
    assert_ne!(k, key(&files(b.path()), 8), "another folder");

    let labels = a.path().join("t10k-labels-idx1-ubyte.gz");
    let t = std::fs::metadata(&labels).unwrap().modified().unwrap();
    let f = std::fs::File::options().write(true).open(&labels).unwrap();
    f.set_modified(t + std::time::Duration::from_secs(1))
        .unwrap();
    let touched = key(&files(a.path()), 8);
    assert_ne!(k, touched, "another modification time");
    f.set_len(std::fs::metadata(&labels).unwrap().len() + 1)
        .unwrap();
    f.set_modified(t + std::time::Duration::from_secs(1))
        .unwrap();
    assert_ne!(
        touched,
        key(&files(a.path()), 8),
        "another length, same time"
    );
}

/// A cache file is used only when every check holds; each way it can be wrong makes `read` give
/// nothing (the caller rebuilds), never a panic or wrong data.
#[test]
fn cache_files_are_checked_before_use() {
    use fastfc::data::{cache, FullData};
    cache_dir();
    let full = FullData {
        s: 2,
        train_x: (0..12).map(|i| i as f32 / 11.0).collect(),
        train_y: vec![4, 0, 9],
        test_x: (0..8).map(|i| 1.0 - i as f32 / 7.0).collect(),
        test_y: vec![2, 7],
    };
    let key = "fastfc-test-checked.bin";
    cache::write(key, &full);
    let (path, back) = cache::read(key).expect("a cache file just written");
    assert_eq!(path, cache_dir().join(key));
    assert_eq!(
        (back.s, &back.train_x, &back.train_y),
        (2, &full.train_x, &full.train_y)
    );
    assert_eq!((&back.test_x, &back.test_y), (&full.test_x, &full.test_y));
    let good = std::fs::read(&path).unwrap();
    assert_eq!(good.len(), 64 + 4 * 20 + 5);

    let with_crc = |mut b: Vec<u8>| {
        let crc = crc32fast::hash(&b[64..]);
        b[24..28].copy_from_slice(&crc.to_le_bytes());
        b
    };
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("magic and version only", good[..16].to_vec()),
        ("the header alone", good[..64].to_vec()),
        ("one byte short", good[..good.len() - 1].to_vec()),
        ("one byte long", [&good[..], &[0]].concat()),
    ];
    let mut b = good.clone();
    b[0] = b'X';
    cases.push(("another magic", b));
    let mut b = good.clone();
    b[8] = 1;
    cases.push(("format version 1", b));
    let mut b = good.clone();
    b[64 + 7] ^= 0x10;
    cases.push(("a flipped pixel bit", b));
    let mut b = good.clone();
    b[20] = 3;
    cases.push(("another test count", with_crc(b)));
    for (what, bytes) in cases {
        std::fs::write(&path, &bytes).unwrap();
        assert!(cache::read(key).is_none(), "{what}: used");
    }
    // The checksum itself is what `read` checks: the good bytes, written back, are used again.
    std::fs::write(&path, &good).unwrap();
    assert!(cache::read(key).is_some());
    // The smallest well-formed file, a header for no images, is read as such.
    let empty = FullData {
        s: 2,
        train_x: vec![],
        train_y: vec![],
        test_x: vec![],
        test_y: vec![],
    };
    cache::write("fastfc-test-empty.bin", &empty);
    let (path, back) = cache::read("fastfc-test-empty.bin").expect("an empty cache");
    assert_eq!(
        (
            std::fs::metadata(path).unwrap().len(),
            back.s,
            back.train_y.len()
        ),
        (64, 2, 0)
    );
}
