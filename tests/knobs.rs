//! The knobs of issue #26 end to end: a space with batch size, all six optimizers with their
//! conditional parameters, weight decay, two schedules with their parameters and the five new
//! activations runs with every strategy on the CPU and through fakecuda (then resumes to the same
//! results, reports and exports to Optuna), and through fakecuda to the CPU's rankings. results.csv carries each knob
//! only where the trial's optimizer or schedule has it.

use std::path::Path;
use std::process::Command;

#[path = "common/mod.rs"]
mod common;

const WIDE: &str = r#"
[layers]
choice = [2]
[units]
choice = [16, 32]
[activation]
choice = ["tanh", "sigmoid", "leaky_relu", "softplus", "mish"]
[optimizer]
choice = ["adam", "lion", "sgd", "rmsprop", "adamw", "adagrad"]
[learning_rate]
loguniform = [1e-3, 1e-2]
[batch_size]
choice = [32, 64, 128]
[beta_1]
uniform = [0.85, 0.95]
[momentum]
uniform = [0.0, 0.9]
[nesterov]
choice = [true, false]
[rho]
uniform = [0.8, 0.95]
[weight_decay]
loguniform = [1e-5, 1e-2]
[schedule]
choice = ["constant", "cosine", "step"]
[warmup_epochs]
uniform = [0.0, 0.5]
[decay_rate]
uniform = [0.3, 0.7]
"#;

fn fastfc(args: &[&str], envs: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fastfc"))
        .args(args)
        .env("FASTFC_NO_PROGRESS", "1")
        .env("FASTFC_NO_SYSTEM_DATA", "1")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// results.csv as header + rows.
fn csv(dir: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(dir.join("results.csv")).unwrap();
    let h = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(str::to_string).collect())
        .collect();
    (h, rows)
}

/// Each row's knobs are set exactly where its optimizer / schedule has them.
fn check_conditional(dir: &Path, searched: &[&str]) {
    let (h, rows) = csv(dir);
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    assert!(!rows.is_empty());
    for r in &rows {
        let opt = r[col("optimizer")].as_str();
        let sched = r[col("schedule")].as_str();
        let has = |k: &str| -> bool {
            match k {
                "beta_1" => matches!(opt, "adam" | "adamw" | "lion"),
                "momentum" => matches!(opt, "sgd" | "rmsprop"),
                "nesterov" => opt == "sgd",
                "rho" => opt == "rmsprop",
                "weight_decay" | "batch_size" => true,
                "warmup_epochs" => sched == "cosine",
                "decay_rate" => sched == "step",
                _ => unreachable!(),
            }
        };
        for k in searched {
            let v = &r[col(k)];
            assert_eq!(!v.is_empty(), has(k), "{opt}/{sched}: {k} = {v:?} in {r:?}");
        }
        if searched.contains(&"batch_size") {
            assert!(["16", "32", "64", "128"].contains(&r[col("batch_size")].as_str()));
        }
        if sched != "constant" {
            assert!(!r[col("decay_epochs")].is_empty());
        }
    }
}

const SEARCHED: [&str; 8] = [
    "batch_size",
    "beta_1",
    "momentum",
    "nesterov",
    "rho",
    "weight_decay",
    "warmup_epochs",
    "decay_rate",
];

#[test]
fn every_strategy_searches_the_wide_space_resumes_reports_and_exports() {
    for device in ["cpu", "cuda"] {
        every_strategy_on(device);
    }
}

/// `cuda` runs the real cudarc path on fakecuda (`FASTFC_CUDA_DRIVER=fake`).
fn every_strategy_on(device: &str) {
    let env: &[(&str, &str)] = &[("FASTFC_CUDA_DRIVER", "fake")];
    let tmp = tempfile::tempdir().unwrap();
    let space = tmp.path().join("wide.toml");
    std::fs::write(&space, WIDE).unwrap();
    let sp = space.to_str().unwrap();
    let strategies: [(&str, &[&str]); 5] = [
        ("random", &["--trials", "8", "--epochs", "2"]),
        (
            "tpe",
            &[
                "--trials",
                "8",
                "--epochs",
                "2",
                "--startup-trials",
                "4",
                "--cohort-size",
                "4",
            ],
        ),
        (
            "hyperband",
            &["--max-epochs", "3", "--factor", "3", "--iterations", "1"],
        ),
        (
            "bohb",
            &["--max-epochs", "3", "--factor", "3", "--iterations", "1"],
        ),
        (
            "asha",
            &["--trials", "6", "--max-epochs", "3", "--factor", "3"],
        ),
    ];
    for (strategy, own) in strategies {
        let out = tmp.path().join(strategy);
        let o = out.to_str().unwrap();
        let mut args = vec![
            "search",
            "--strategy",
            strategy,
            "--device",
            device,
            "--seed",
            "3",
        ];
        args.extend(own);
        args.extend(["--space", sp, "--out", o]);
        let (ok, stdout, err) = fastfc(&args, env);
        assert!(ok, "{device} {strategy}: {stdout}\n{err}");
        let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
        if device == "cuda" {
            assert!(
                summary.contains("fakecuda"),
                "{device} {strategy}: {summary}"
            );
        }
        check_conditional(&out, &SEARCHED);
        let before = common::journal_records(&out);
        // Resuming a finished study trains nothing and changes nothing.
        let mut again = args.clone();
        again.push("--resume");
        let (ok, stdout, err) = fastfc(&again, env);
        assert!(ok, "{device} {strategy} --resume: {stdout}\n{err}");
        assert_eq!(
            common::journal_records(&out),
            before,
            "{device} {strategy}: resume changed the study"
        );
        let (ok, _, err) = fastfc(&["report", o], &[]);
        assert!(ok, "{device} {strategy} report: {err}");
        // The parallel coordinates get an axis per searched knob, with an n/a mark for the
        // trials whose optimizer or schedule lacks it.
        let svg = std::fs::read_to_string(out.join("parallel_coordinates.svg")).unwrap();
        for axis in SEARCHED.iter().chain(&["n/a"]) {
            assert!(
                svg.contains(&format!("\n{axis}\n")),
                "{strategy}: no {axis} axis"
            );
        }
        let journal = tmp.path().join(format!("{strategy}.optuna.jsonl"));
        let (ok, _, err) = fastfc(
            &[
                "export",
                "optuna",
                o,
                "--out",
                journal.to_str().unwrap(),
                "--space",
                sp,
            ],
            &[],
        );
        assert!(ok, "{device} {strategy} export: {err}");
        let text = std::fs::read_to_string(&journal).unwrap();
        // Optuna's journal names each conditional parameter only on the trials that have it.
        assert!(
            text.contains("\"batch_size\"") && text.contains("\"weight_decay\""),
            "{device} {strategy}"
        );
    }
}

/// A grid over conditional knobs enumerates each only under the optimizer or schedule that has
/// it: 2 activations × (sgd: 2 batch sizes × 2 momenta × 2 schedules + adamw: 2 × 2) = 24.
#[test]
fn a_grid_expands_conditional_knobs_only_where_they_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let space = tmp.path().join("grid.toml");
    std::fs::write(
        &space,
        r#"
[layers]
choice = [2]
[units]
choice = [16]
[dropout]
choice = [0.0]
[learning_rate]
choice = [0.01]
[activation]
choice = ["tanh", "mish"]
[optimizer]
choice = ["sgd", "adamw"]
[batch_size]
choice = [32, 64]
[momentum]
choice = [0.0, 0.9]
[schedule]
choice = ["constant", "cosine"]
"#,
    )
    .unwrap();
    let out = tmp.path().join("g");
    let (ok, stdout, err) = fastfc(
        &[
            "search",
            "--strategy",
            "grid",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--space",
            space.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok, "{stdout}\n{err}");
    let (h, rows) = csv(&out);
    assert_eq!(rows.len(), 24);
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    let mut seen: Vec<String> = rows
        .iter()
        .map(|r| {
            [
                "activation",
                "optimizer",
                "batch_size",
                "momentum",
                "schedule",
            ]
            .iter()
            .map(|c| r[col(c)].clone())
            .collect::<Vec<_>>()
            .join("/")
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 24, "a configuration repeated: {seen:?}");
    assert!(rows
        .iter()
        .all(|r| (r[col("optimizer")] == "sgd") != r[col("momentum")].is_empty()));
}

/// The wide space through cudarc and fakecuda (fused and per-op paths as the engine picks them):
/// the same runs as on the CPU, rankings within the float tolerance.
#[test]
fn the_wide_space_on_fakecuda_ranks_as_on_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let space = tmp.path().join("wide.toml");
    std::fs::write(&space, WIDE).unwrap();
    let mut records = vec![];
    for device in ["cuda", "cpu"] {
        let out = tmp.path().join(device);
        let (ok, stdout, err) = fastfc(
            &[
                "search",
                "--strategy",
                "random",
                "--trials",
                "8",
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
            ],
            &[("FASTFC_CUDA_DRIVER", "fake")],
        );
        assert!(ok, "{device}: {stdout}\n{err}");
        check_conditional(&out, &SEARCHED);
        records.push(fastfc::results::journal::read(&out).unwrap());
    }
    assert_eq!(records[0].len(), 8);
    fastfc::study::rankings_agree(&records[1], &records[0], 2.0 / 10_000.0 * 2.0)
        .unwrap_or_else(|e| panic!("cuda vs cpu: {e}"));
}
