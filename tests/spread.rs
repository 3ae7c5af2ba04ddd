//! Several devices as one backend (`--device cuda:all`, `cuda:0,2`, src/backend/spread.rs): the
//! deal balances work and is deterministic; every trial's result is bit for bit what one device
//! gives it, on CPU backends and on fakecuda's two devices through cudarc (a study with
//! checkpoints continued, so trials move between devices); an error names its device; the CLI
//! spreads a search and refuses bad device lists, naming the flag.

mod common;

use std::sync::Arc;

use fastfc::backend::cpu::CpuBackend;
use fastfc::backend::cuda::driver::CudaGpu;
use fastfc::backend::cuda::engine::CudaBackend;
use fastfc::backend::cuda::{fake, AnyGpu};
use fastfc::backend::spread::{deal, Spread};
use fastfc::backend::Backend;
use fastfc::cli::Device;
use fastfc::data::Dataset;
use fastfc::model::{Activation, Hyperparams, Optimizer, TrialSpec};
use fastfc::results::journal::RunRecord;
use fastfc::train::{train_cohort, TrainConfig, TrialJob, TrialOutcome, TrialStatus};

use common::embedded_subset as small;

/// Trials of different sizes, depths, activations, optimizers and learning rates (the largest
/// ones overshoot, so some stop early or diverge while the others go on), with dropout.
fn jobs(data: &Dataset, n: usize) -> Vec<TrialJob> {
    (0..n)
        .map(|k| {
            let depth = 2 + k % 2;
            let hp = Hyperparams {
                hidden: vec![[16, 48, 32, 24][k % 4]; depth],
                activation: Activation::ALL[k % 6],
                dropout: [0.0, 0.2][k % 2],
                learning_rate: [2e-3, 0.05, 5e-4, 0.3][k % 4],
                optimizer: Optimizer::ALL[k % 2],
                ..Default::default()
            };
            TrialJob::fresh(TrialSpec::new(k as u64, hp, 3, data.dim(), 10))
        })
        .collect()
}

fn cfg(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        patience: Some(1),
        seed: 3,
        stop: Default::default(),
    }
}

/// Everything a trial's training produced, except its wall time.
fn assert_same(what: &str, a: &[TrialOutcome], b: &[TrialOutcome]) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.spec, y.spec, "{what}");
        assert_eq!(x.history, y.history, "{what}: trial {}", x.spec.id);
        assert_eq!(x.status, y.status, "{what}: trial {}", x.spec.id);
        assert_eq!(x.best_epoch, y.best_epoch, "{what}: trial {}", x.spec.id);
        assert_eq!(x.checkpoint, y.checkpoint, "{what}: trial {}", x.spec.id);
    }
}

#[test]
fn the_deal_balances_work_biggest_first_and_is_deterministic() {
    // Equal trials alternate; a big one gets a device of its own.
    assert_eq!(deal(&[5, 5, 5, 5, 5], 2), vec![0, 1, 0, 1, 0]);
    assert_eq!(deal(&[1, 1, 9, 1, 1], 2), vec![1, 1, 0, 1, 1]);
    // Fewer trials than devices: one each, the rest idle.
    assert_eq!(deal(&[3, 7], 4), vec![1, 0]);
    assert_eq!(deal(&[], 3), Vec::<usize>::new());
    // Longest processing time first is within 4/3 of the best possible makespan, which is at
    // least max(total / k, largest).
    let mut r = 0x9e37_79b9_7f4a_7c15u64;
    for k in 2..=5 {
        let costs: Vec<usize> = (0..40)
            .map(|_| {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                1 + (r % 1000) as usize
            })
            .collect();
        let to = deal(&costs, k);
        assert_eq!(to, deal(&costs, k), "deterministic");
        let mut load = vec![0; k];
        for (c, d) in costs.iter().zip(&to) {
            load[*d] += c;
        }
        let total: usize = costs.iter().sum();
        let bound = (total as f64 / k as f64).max(*costs.iter().max().unwrap() as f64);
        let makespan = *load.iter().max().unwrap() as f64;
        assert!(
            makespan <= bound * 4.0 / 3.0,
            "k={k}: makespan {makespan} vs lower bound {bound}"
        );
    }
}

/// CPU backends as the devices: the spread cohort trains every trial to exactly the weights,
/// histories and checkpoints of one backend, with 2 and 3 devices, and with more devices than
/// trials.
#[test]
fn spread_over_cpu_backends_every_trial_is_what_one_backend_gives() {
    let data = small(512, 256);
    let one = CpuBackend::new(data.clone());
    let want = train_cohort(&one, jobs(&data, 7), &cfg(4), &mut |_| {}, &|_| {}).unwrap();
    // The per-device flags of stopped trials matter only if some stop while others go on.
    let statuses: Vec<_> = want.iter().map(|o| o.status).collect();
    assert!(
        statuses.contains(&TrialStatus::Complete)
            && statuses.iter().any(|s| *s != TrialStatus::Complete),
        "{statuses:?}"
    );
    for k in [2, 3, 9] {
        let spread = Spread::new(
            (0..k)
                .map(|d| (format!("cpu#{d}"), CpuBackend::new(data.clone())))
                .collect(),
        )
        .unwrap();
        let got = train_cohort(&spread, jobs(&data, 7), &cfg(4), &mut |_| {}, &|_| {}).unwrap();
        assert_same(&format!("{k} devices"), &got, &want);
        let c = spread
            .load(
                jobs(&data, 7)
                    .into_iter()
                    .map(|j| (j.spec, j.state))
                    .collect(),
            )
            .unwrap();
        let used: std::collections::BTreeSet<usize> = c.devices().into_iter().collect();
        assert_eq!(used.len(), k.min(7), "{k} devices: {:?}", c.devices());
    }
    assert!(Spread::<CpuBackend>::new(vec![]).is_err());
}

/// The two devices of fakecuda (through cudarc, each context used from its own host thread,
/// which fakecuda checks) against device 0 alone; on a real GPU (`FASTFC_TEST_GPU=cuda`) two
/// handles of device 0 stand in, since one GPU is what the lent machine has.
fn two_devices(data: &Arc<Dataset>) -> (CudaBackend, Spread<CudaBackend>) {
    let (g0, real) = common::cuda_under_test();
    let g1 = if real {
        g0.fork().unwrap()
    } else {
        fake::load().unwrap();
        CudaGpu::open(1).unwrap()
    };
    let one = CudaBackend::new(data.clone(), AnyGpu::Cuda(g0.fork().unwrap())).unwrap();
    let spread = Spread::new(vec![
        (
            "cuda:0".into(),
            CudaBackend::new(data.clone(), AnyGpu::Cuda(g0)).unwrap(),
        ),
        (
            "cuda:1".into(),
            CudaBackend::new(data.clone(), AnyGpu::Cuda(g1)).unwrap(),
        ),
    ])
    .unwrap();
    (one, spread)
}

#[test]
fn a_cohort_spread_over_two_cuda_devices_trains_as_on_one() {
    // Faults planted on device 1 by the test below are process-wide: not while this one runs.
    let _guard = DEVICE1.lock().unwrap_or_else(|e| e.into_inner());
    let data = small(384, 200);
    let (one, spread) = two_devices(&data);
    let want = train_cohort(&one, jobs(&data, 5), &cfg(2), &mut |_| {}, &|_| {}).unwrap();
    let got = train_cohort(&spread, jobs(&data, 5), &cfg(2), &mut |_| {}, &|_| {}).unwrap();
    assert_same("cuda spread", &got, &want);
    // Both devices held trials, and continuing from checkpoints works across them: a cohort of
    // the checkpoints, dealt again, trains on to the single device's epoch 3.
    let c = spread
        .load(
            jobs(&data, 5)
                .into_iter()
                .map(|j| (j.spec, j.state))
                .collect(),
        )
        .unwrap();
    assert!(
        c.devices().contains(&0) && c.devices().contains(&1),
        "{:?}",
        c.devices()
    );
    let next = |o: &[TrialOutcome]| -> Vec<TrialJob> {
        o.iter()
            .rev()
            .map(|o| TrialJob {
                spec: o.spec.clone(),
                state: o.checkpoint.clone(),
            })
            .collect()
    };
    let want3 = train_cohort(&one, next(&want), &cfg(3), &mut |_| {}, &|_| {}).unwrap();
    let got3 = train_cohort(&spread, next(&got), &cfg(3), &mut |_| {}, &|_| {}).unwrap();
    assert_same("cuda spread, continued", &got3, &want3);
    if !common::cuda_under_test().1 {
        assert_eq!(fake::problems().unwrap(), Vec::<String>::new());
    }
}

/// A launch that fails on device 1 fails the cohort with an error that names cuda:1.
#[test]
fn an_error_on_one_device_names_it() {
    if common::cuda_under_test().1 {
        return; // faults are planted through fakecuda only
    }
    let data = small(256, 128);
    let (_, spread) = two_devices(&data);
    let _guard = DEVICE1.lock().unwrap_or_else(|e| e.into_inner());
    fake::set_faults(1, "cuLaunchKernel:2").unwrap();
    let e = train_cohort(&spread, jobs(&data, 4), &cfg(1), &mut |_| {}, &|_| {});
    fake::set_faults(1, "").unwrap();
    let e = e.unwrap_err().to_string();
    assert!(
        e.contains("cuda:1") && e.contains("cuLaunchKernel"),
        "the error should name the device and the call: {e}"
    );
}

static DEVICE1: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn device_lists_parse_and_bad_ones_are_named() {
    let p = |s: &str| s.parse::<Device>();
    assert_eq!(p("cuda:all"), Ok(Device::Cudas(None)));
    assert_eq!(p("cuda:0,2"), Ok(Device::Cudas(Some(vec![0, 2]))));
    assert_eq!(p("cuda:1"), Ok(Device::Cuda(1)));
    assert_eq!(p("cuda"), Ok(Device::Cuda(0)));
    for bad in ["cuda:", "cuda:0,", "cuda:a", "cuda:0;1", "gpu:0"] {
        let e = p(bad).unwrap_err();
        assert!(e.contains(bad) && e.contains("cuda:all"), "{bad}: {e}");
    }
    let e = p("cuda:1,0,1").unwrap_err();
    assert!(e.contains("cuda:1 is listed twice"), "{e}");
}

fn fastfc_cli(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fastfc"))
        .args(args)
        .env("FASTFC_NO_PROGRESS", "1")
        .env("FASTFC_NO_SYSTEM_DATA", "1")
        .env("FASTFC_CUDA_DRIVER", "fake")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// `fastfc search --device cuda:all` on fakecuda's two devices: the same records as on cuda:0
/// alone, and summary.json names both devices (the emulator is slow on the full training split,
/// so this is a small random search; continued checkpoints are tested in-process above). A device
/// that is not there is a flag error.
#[test]
fn a_search_spread_over_every_device_records_what_one_device_does() {
    let tmp = tempfile::tempdir().unwrap();
    let space = tmp.path().join("space.toml");
    std::fs::write(
        &space,
        "[layers]\nchoice = [2, 3]\n[units]\nchoice = [16, 32]\n",
    )
    .unwrap();
    let mut records: Vec<Vec<RunRecord>> = vec![];
    for device in ["cuda:0", "cuda:all"] {
        let out = tmp.path().join(device.replace(':', "-"));
        let (code, text) = fastfc_cli(&[
            "search",
            "--strategy",
            "random",
            "--trials",
            "4",
            "--epochs",
            "1",
            "--seed",
            "4",
            "--device",
            device,
            "--space",
            space.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{device}: {text}");
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        let name = s["device"].as_str().unwrap();
        if device == "cuda:all" {
            assert!(
                name.starts_with("2 devices: cuda:0") && name.contains("cuda:1"),
                "{name}"
            );
        }
        records.push(fastfc::results::journal::read(&out).unwrap());
    }
    let strip = |rs: &[RunRecord]| -> Vec<String> {
        rs.iter()
            .map(|r| {
                format!(
                    "{:?} {:?} {} {} {:?}",
                    r.request, r.status, r.val_loss, r.val_accuracy, r.history
                )
            })
            .collect()
    };
    assert_eq!(records[0].len(), 4);
    assert_eq!(strip(&records[1]), strip(&records[0]));

    // A device that is not there: a flag error, and no study folder left behind to block the
    // corrected command.
    let out = tmp.path().join("bad");
    let (code, text) = fastfc_cli(&[
        "search",
        "--strategy",
        "random",
        "--trials",
        "1",
        "--epochs",
        "1",
        "--device",
        "cuda:0,2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(
        text.contains("--device") && text.contains("cuda:2") && text.contains("2 CUDA device(s)"),
        "{text}"
    );
    assert!(!out.exists(), "a failed --device left {}", out.display());
}
