//! The binary as a user runs it: bad flags and files get messages naming them; `train --out`
//! writes a model that `eval` re-scores to the same numbers.

mod common;

use std::process::Command;

fn fastfc(args: &[&str]) -> (i32, String, String) {
    // No GPU is visible to these tests, even on a machine that has one: the device paths they
    // check are the ones without a GPU (tests/cuda_engine.rs and the kernel suite cover CUDA).
    let out = Command::new(env!("CARGO_BIN_EXE_fastfc"))
        .args(args)
        .env("FASTFC_NO_PROGRESS", "1")
        .env("CUDA_VISIBLE_DEVICES", "")
        .env("FASTFC_NO_SYSTEM_DATA", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fails_with(args: &[&str], needle: &str) {
    let (code, _, err) = fastfc(args);
    assert_ne!(code, 0, "{args:?} should fail");
    assert!(
        err.contains(needle),
        "{args:?}: stderr lacks {needle:?}:\n{err}"
    );
    assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
}

#[test]
fn bad_flags_are_named() {
    let base = ["train", "--hidden", "32,32", "--activation", "elu"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        base.iter().chain(extra).copied().collect()
    };
    fails_with(
        &with(&["--dropout", "1.5"]),
        "--dropout: 1.5: expected a rate in [0, 1)",
    );
    fails_with(&with(&["--lr", "-1"]), "--lr");
    fails_with(
        &with(&["--epochs", "0"]),
        "--epochs: 0: expected at least 1",
    );
    fails_with(
        &with(&["--image-size", "30"]),
        "--image-size: 30: expected 1..=28",
    );
    // 28 is a size (the originals); without files, only the embedded 8×8 exists.
    for size in ["28", "14"] {
        fails_with(
            &with(&["--image-size", size]),
            "the copy embedded in fastfc is 8x8 only",
        );
    }
    fails_with(
        &with(&["--data-dir", "/nonexistent/fm"]),
        "--data-dir: /nonexistent/fm: no Fashion-MNIST files",
    );
    fails_with(&with(&["--device", "cuda"]), "--device cuda:0: cuda: ");
    fails_with(&with(&["--device", "cuda:3"]), "--device cuda:3: cuda: ");
    fails_with(
        &with(&["--device", "tpu"]),
        "`tpu`: expected auto, cpu, cuda, cuda:N",
    );
    fails_with(&with(&["--device", "cuda:x"]), "`cuda:x`: expected");
    fails_with(&with(&["--batch-size", "0"]), "--batch-size: 0");
    fails_with(&with(&["--threads", "0"]), "--threads: 0");
    fails_with(
        &["train", "--hidden", "32,0", "--activation", "elu"],
        "--hidden",
    );
    fails_with(
        &["train", "--hidden", "32", "--activation", "swish"],
        "expected one of elu, celu, gelu, relu, selu, silu, tanh, sigmoid, leaky_relu, softplus, mish",
    );
    fails_with(
        &with(&["--optimizer", "adadelta"]),
        "expected one of adam, lion, sgd, rmsprop, adamw, adagrad",
    );
    // A knob the optimizer does not have, and a schedule parameter of another schedule.
    fails_with(
        &with(&["--momentum", "0.9"]),
        "adam has no momentum (it belongs to sgd, rmsprop)",
    );
    fails_with(
        &with(&["--optimizer", "sgd", "--rho", "0.9"]),
        "--rho: sgd has no rho (it belongs to rmsprop)",
    );
    fails_with(
        &with(&["--optimizer", "sgd", "--momentum", "1.5"]),
        "--momentum: 1.5",
    );
    fails_with(&with(&["--weight-decay", "-1"]), "--weight-decay: -1");
    fails_with(
        &with(&["--schedule", "linear"]),
        "--schedule: `linear`: expected one of",
    );
    fails_with(
        &with(&["--decay-rate", "0.5"]),
        "--decay-rate: the constant schedule",
    );
    fails_with(
        &with(&[
            "--schedule",
            "cosine",
            "--warmup-epochs",
            "20",
            "--epochs",
            "5",
        ]),
        "warmup_epochs 20",
    );
}

#[test]
fn eval_names_a_bad_model_file() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("model.safetensors"), b"not a model").unwrap();
    fails_with(
        &["eval", "--model", d.path().to_str().unwrap()],
        "model.safetensors: not a safetensors file",
    );
    fails_with(
        &["eval", "--model", "/nonexistent/run"],
        "/nonexistent/run/model.safetensors",
    );
}

#[test]
fn train_writes_a_model_that_eval_rescores() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let (code, stdout, err) = fastfc(&[
        "train",
        "--hidden",
        "32,32",
        "--activation",
        "selu",
        "--optimizer",
        "lion",
        "--lr",
        "0.0005",
        "--dropout",
        "0.1",
        "--epochs",
        "1",
        "--seed",
        "7",
        "--out",
        o,
        "--device",
        "cpu",
    ]);
    assert_eq!(code, 0, "{stdout}\n{err}");
    assert!(stdout.contains("epoch   1/1"), "{stdout}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("metrics.json")).unwrap())
            .unwrap();
    let val = metrics["val_accuracy"].as_f64().unwrap();
    let test = metrics["test_accuracy"].as_f64().unwrap();
    assert!(val > 0.7 && test > 0.7, "{metrics}");
    assert_eq!(metrics["best_epoch"], 1);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["hidden"], serde_json::json!([32, 32]));
    assert_eq!(config["activation"], "selu");

    let (code, stdout, err) = fastfc(&["eval", "--model", o]);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains(&format!("val_accuracy {val:.4}")),
        "{stdout} vs {val}"
    );
    assert!(
        stdout.contains(&format!("test_accuracy {test:.4}")),
        "{stdout} vs {test}"
    );

    // PyTorch layout: layers.{i}.weight is (out, in).
    let (cfg, params) = fastfc::results::model_io::load(out.path()).unwrap();
    assert_eq!(params.len(), cfg.spec().layout().len);
    let bytes = std::fs::read(out.path().join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("layers.0.weight").unwrap().shape(), &[32, 64]);
    assert_eq!(st.tensor("layers.2.weight").unwrap().shape(), &[10, 32]);
    assert_eq!(st.tensor("layers.2.bias").unwrap().shape(), &[10]);
}

/// `train --out` into a folder that holds a model (a study's `best/`, say) is refused before any
/// data loads, naming the folder and `--overwrite`; with `--overwrite`, or a folder of other
/// files, it trains and writes.
#[test]
fn train_refuses_an_out_folder_holding_a_model_unless_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let train = |out: &std::path::Path, extra: &[&str]| {
        let mut args: Vec<&str> = "train --hidden 16 --activation relu --epochs 1 --device cpu"
            .split(' ')
            .collect();
        args.extend_from_slice(&["--out", out.to_str().unwrap()]);
        args.extend_from_slice(extra);
        fastfc(&args)
    };
    for held in ["model.safetensors", "config.json", "metrics.json"] {
        let dir = tmp.path().join(held.replace('.', "_"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join(held), b"a study's best model").unwrap();
        // A data folder that does not exist: the refusal comes first, before any data loads.
        let (code, _, err) = train(&dir, &["--data-dir", "/nonexistent/fm"]);
        assert_ne!(code, 0, "{held}: {err}");
        let want = format!(
            "--out: {}: already holds a model ({held}); pass --overwrite",
            dir.display()
        );
        assert!(err.contains(&want), "{held}: stderr lacks {want:?}:\n{err}");
        assert!(
            !err.contains("--data-dir"),
            "{held}: data loaded first:\n{err}"
        );
        assert_eq!(
            std::fs::read(dir.join(held)).unwrap(),
            b"a study's best model"
        );
    }
    // --overwrite replaces the model; other files in the folder are never a reason to refuse.
    let dir = tmp.path().join("metrics_json");
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
    let (code, stdout, err) = train(&dir, &["--overwrite"]);
    assert_eq!(code, 0, "{stdout}\n{err}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["best_epoch"], 1, "{metrics}");
    assert!(dir.join("model.safetensors").is_file());
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"mine").unwrap();
    let (code, stdout, err) = train(&other, &[]);
    assert_eq!(code, 0, "{stdout}\n{err}");
}

#[test]
fn data_info_and_devices_run() {
    let (code, stdout, err) = fastfc(&["data", "info"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("train 50000 / val 10000 / test 10000") && stdout.contains("Ankle boot"),
        "{stdout}"
    );
    let (code, stdout, err) = fastfc(&[
        "bench",
        "--json",
        "--device",
        "cpu",
        "--trials",
        "2",
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--dropout",
        "0.1",
    ]);
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(j["hidden"], serde_json::json!([16]));
    assert_eq!(j["dropout"], 0.1);
    // The CPU's FMA peak, measured with the dense kernels' vectors (none for the sgemm fallback).
    use fastfc::backend::cpu::gemm::Isa;
    if Isa::detect() == Isa::Sgemm {
        assert_eq!(j["peak_gflops"], serde_json::Value::Null, "{j}");
    } else {
        let peak = j["peak_gflops"].as_f64().unwrap();
        assert!(peak > j["gflops"].as_f64().unwrap() && peak > 4.0, "{j}");
        assert!(j["floor_seconds"].as_f64().unwrap() > 0.0, "{j}");
    }
    assert!(j["gflops"].as_f64().unwrap() > 0.1, "{j}");
    let (code, stdout, _) = fastfc(&["devices"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("cpu") && stdout.contains("cuda"),
        "{stdout}"
    );
}

/// Without a GPU, `--device auto` is the CPU path, says so once, and gives the same model, byte
/// for byte, as `--device cpu`.
#[test]
fn device_auto_without_a_gpu_is_the_cpu_path() {
    let runs = tempfile::tempdir().unwrap();
    let mut out = vec![];
    for device in ["auto", "cpu"] {
        let dir = runs.path().join(device);
        let (code, stdout, err) = fastfc(&[
            "train",
            "--hidden",
            "32,48",
            "--activation",
            "gelu",
            "--dropout",
            "0.2",
            "--epochs",
            "1",
            "--seed",
            "11",
            "--device",
            device,
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{stdout}\n{err}");
        let note = "note: --device auto: using the CPU (";
        assert_eq!(
            err.matches(note).count(),
            (device == "auto") as usize,
            "{err}"
        );
        out.push((
            std::fs::read(dir.join("model.safetensors")).unwrap(),
            stdout
                .lines()
                .find(|l| l.starts_with("epoch"))
                .unwrap()
                .to_string(),
        ));
    }
    // The epoch line ends with its wall time; everything before it must match.
    let cut = |l: &str| l[..l.find("val_acc").unwrap() + 16].to_string();
    assert_eq!(cut(&out[0].1), cut(&out[1].1));
    assert!(out[0].0 == out[1].0, "the two models differ");
}

/// The preprocessing cache is verified on every read: 4 KiB overwritten in its middle is caught,
/// reported in one line and rebuilt, and the data fastfc then uses is the freshly made one.
#[test]
fn damaged_preprocessing_cache_is_rebuilt_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, cache) = (tmp.path().join("data"), tmp.path().join("cache"));
    std::fs::create_dir_all(&data).unwrap();
    // A full-size set (60,000 + 10 images) of synthetic 28×28 pixels, as raw IDX files.
    let idx = |magic: u32, dims: &[u32], payload: Vec<u8>| {
        let mut b = magic.to_be_bytes().to_vec();
        dims.iter()
            .for_each(|d| b.extend_from_slice(&d.to_be_bytes()));
        b.extend(payload);
        b
    };
    let px = |n: u32| {
        (0..n * 784)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect()
    };
    let lb = |n: u32| (0..n).map(|i| (i * 7 % 10) as u8).collect();
    for (name, bytes) in [
        (
            "train-images-idx3-ubyte",
            idx(0x803, &[60_000, 28, 28], px(60_000)),
        ),
        ("train-labels-idx1-ubyte", idx(0x801, &[60_000], lb(60_000))),
        ("t10k-images-idx3-ubyte", idx(0x803, &[10, 28, 28], px(10))),
        ("t10k-labels-idx1-ubyte", idx(0x801, &[10], lb(10))),
    ] {
        std::fs::write(data.join(name), bytes).unwrap();
    }
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_fastfc"))
            .args(args)
            .args(["--data-dir", data.to_str().unwrap()])
            .env("FASTFC_CACHE", &cache)
            .output()
            .unwrap();
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "{args:?}: {o}\n{e}");
        (o, e)
    };
    let export = |to: &str| {
        let d = tmp.path().join(to);
        run(&["data", "export", "--out", d.to_str().unwrap()]);
        std::fs::read(d.join("train_x.npy")).unwrap()
    };
    let fresh = export("fresh");
    let (info, _) = run(&["data", "info"]);
    assert!(info.contains("preprocessed cache"), "{info}");
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let mut b = std::fs::read(&files[0]).unwrap();
    let mid = b.len() / 2;
    b[mid..mid + 4096].fill(0x5a);
    std::fs::write(&files[0], b).unwrap();

    let (info, err) = run(&["data", "info"]);
    assert!(
        err.contains(&format!(
            "warning: preprocessing cache {} is damaged (checksum",
            files[0].display()
        )) && err.contains("rebuilding it"),
        "{err}"
    );
    assert_eq!(err.matches("warning").count(), 1, "one line: {err:?}");
    assert!(
        !info.contains("preprocessed cache"),
        "the damaged cache was used:\n{info}"
    );
    let (info, err) = run(&["data", "info"]);
    assert!(
        info.contains("preprocessed cache") && !err.contains("warning"),
        "rebuilt: {info}\n{err}"
    );
    assert_eq!(export("after"), fresh, "the rebuilt data is the fresh data");
}

/// FASTFC_NO_SYSTEM_DATA hides data that is there: a `$FASTFC_DATA` folder (and Debian's) is not
/// looked at, so the embedded copy is used, as on a machine with nothing installed.
#[test]
fn no_system_data_hides_fastfc_data() {
    let dir = tempfile::tempdir().unwrap();
    // A folder with all four files, too small to be Fashion-MNIST: used, it would fail.
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::write(dir.path().join(name), b"not idx").unwrap();
    }
    let run = |hide: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_fastfc"))
            .args(["data", "info"])
            .env("FASTFC_DATA", dir.path())
            .env("FASTFC_NO_SYSTEM_DATA", hide)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = run("1");
    assert!(ok && text.contains("embedded"), "{text}");
    let (ok, text) = run("0");
    assert!(
        !ok && text.contains(&dir.path().display().to_string()),
        "{text}"
    );
}

/// A model file whose tensors do not match its own config (a tensor of the wrong shape or the
/// wrong dtype) is refused, naming the tensor and what was expected; its own file loads.
#[test]
fn a_model_file_with_tensors_unlike_its_config_is_refused() {
    use fastfc::model::{Activation, Hyperparams, Optimizer, TrialSpec};
    use fastfc::results::model_io::{self, ModelConfig, CONFIG_KEY};
    let spec = |hidden: Vec<usize>| {
        TrialSpec::new(
            0,
            Hyperparams {
                hidden,
                activation: Activation::Relu,
                dropout: 0.0,
                learning_rate: 1e-3,
                optimizer: Optimizer::Adam,
                ..Default::default()
            },
            1,
            64,
            10,
        )
    };
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let data = fastfc::data::embedded::load().unwrap();
    let cfg_a = ModelConfig::from_spec(&spec(vec![32, 32]), &data, 1, 32);
    let cfg_b = ModelConfig::from_spec(&spec(vec![32, 48]), &data, 1, 32);
    let params = |c: &ModelConfig| -> Vec<f32> {
        (0..c.spec().layout().len)
            .map(|i| i as f32 * 0.01)
            .collect()
    };
    model_io::save(&a, &cfg_a, &params(&cfg_a)).unwrap();
    model_io::save(&b, &cfg_b, &params(&cfg_b)).unwrap();
    assert_eq!(model_io::load(&a).unwrap().1, params(&cfg_a));
    // a's config over b's tensors: layers.1.weight is F32 [48, 32] where a says [32, 32].
    let a_bytes = std::fs::read(a.join("model.safetensors")).unwrap();
    let b_bytes = std::fs::read(b.join("model.safetensors")).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&a_bytes).unwrap();
    let config = meta.metadata().as_ref().unwrap()[CONFIG_KEY].clone();
    let tb = safetensors::SafeTensors::deserialize(&b_bytes).unwrap();
    let mixed = safetensors::serialize(
        tb.tensors(),
        Some(std::collections::HashMap::from([(
            CONFIG_KEY.to_string(),
            config.clone(),
        )])),
    )
    .unwrap();
    let bad = tmp.path().join("mixed.safetensors");
    std::fs::write(&bad, &mixed).unwrap();
    let e = model_io::load(&bad).unwrap_err().to_string();
    assert!(
        e.contains("layers.1.weight") && e.contains("expected F32 [32, 32]"),
        "{e}"
    );
    // The right shapes in another dtype: F64 bytes of the right count.
    let ta = safetensors::SafeTensors::deserialize(&a_bytes).unwrap();
    let wide: Vec<(String, Vec<u8>, Vec<usize>)> = ta
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            let f64s: Vec<u8> = v
                .data()
                .chunks_exact(4)
                .flat_map(|c| (f32::from_le_bytes(c.try_into().unwrap()) as f64).to_le_bytes())
                .collect();
            (n, f64s, v.shape().to_vec())
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = wide
        .iter()
        .map(|(n, d, s)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F64, s.clone(), d)
                    .unwrap(),
            )
        })
        .collect();
    let f64_file = safetensors::serialize(
        views,
        Some(std::collections::HashMap::from([(
            CONFIG_KEY.to_string(),
            config,
        )])),
    )
    .unwrap();
    std::fs::write(&bad, &f64_file).unwrap();
    let e = model_io::load(&bad).unwrap_err().to_string();
    assert!(e.contains("F64") && e.contains("expected F32"), "{e}");
}

/// A flag for another strategy is refused, naming the flag, the strategies it applies to and,
/// for the epochs, the flag that does apply; one that applies is taken (dry runs: no training).
#[test]
fn flags_for_another_strategy_are_refused() {
    for (strategy, flag, value, says) in [
        (
            "hyperband",
            "--epochs",
            "3",
            "Hyperband, BOHB and ASHA take --max-epochs",
        ),
        (
            "hyperband",
            "--trials",
            "5",
            "only to random, grid, tpe, asha",
        ),
        (
            "random",
            "--max-epochs",
            "3",
            "random, grid and TPE take --epochs",
        ),
        ("random", "--iterations", "1", "only to hyperband, bohb"),
        ("tpe", "--factor", "2", "only to hyperband, bohb, asha"),
        ("asha", "--startup-trials", "4", "only to tpe"),
        ("bohb", "--min-epochs", "2", "only to asha"),
        ("grid", "--random-fraction", "0.5", "only to bohb"),
        ("random", "--ei-candidates", "8", "only to tpe, bohb"),
    ] {
        let (code, _, err) = fastfc(&["search", "--strategy", strategy, flag, value, "--dry-run"]);
        assert_ne!(code, 0, "{strategy} {flag}");
        assert!(
            err.contains(flag)
                && err.contains(&format!("--strategy {strategy}"))
                && err.contains(says),
            "{strategy} {flag}: {err}"
        );
    }
    for (strategy, flag, value) in [
        ("hyperband", "--max-epochs", "3"),
        ("random", "--epochs", "3"),
        ("asha", "--min-epochs", "2"),
        ("bohb", "--random-fraction", "0.5"),
    ] {
        let (code, stdout, err) =
            fastfc(&["search", "--strategy", strategy, flag, value, "--dry-run"]);
        assert_eq!(code, 0, "{strategy} {flag}: {err}");
        assert!(!stdout.is_empty());
    }
}
