//! `fastfc export optuna`: a study in Optuna's journal-file format. The mapping of fastfc's runs
//! to Optuna's trials is checked here; the real `optuna` package opens an export and checks every
//! trial in the ignored test, which `.ci/run` runs with Optuna installed (`FASTFC_PYTHON`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use fastfc::results::journal::RunRecord;
use fastfc::results::optuna::{trials, OptunaState};
use fastfc::study::StudyConfig;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fastfc"));
    c.env("FASTFC_NO_PROGRESS", "1")
        .env("FASTFC_NO_SYSTEM_DATA", "1");
    c
}

/// A space that exercises every kind of distribution: int layers, a width per layer (choice),
/// uniform dropout, loguniform learning rate, categorical activation and optimizer.
const SPACE: &str = "[layers]\nint = [1, 3]\n[units]\nchoice = [16, 32]\nper_layer = true\n\
[dropout]\nuniform = [0.0, 0.3]\n[learning_rate]\nloguniform = [5e-4, 3e-3]\n\
[activation]\nchoice = [\"relu\", \"silu\", \"gelu\"]\n";

fn cfg(strategy: &str) -> StudyConfig {
    StudyConfig {
        strategy: strategy.into(),
        seed: 1,
        trials: None,
        epochs: 3,
        max_epochs: 3,
        factor: 3,
        iterations: 1,
        patience: None,
        batch_size: 32,
        image_size: 8,
        space: fastfc::space::DEFAULT_TOML.to_string(),
        data: None,
        tpe: None,
        asha: None,
    }
}

fn rec(
    run: u64,
    trial: u64,
    epochs: usize,
    from: Option<u64>,
    status: &str,
    acc: f64,
) -> RunRecord {
    let start = from.map_or(0, |_| 1);
    let history: Vec<serde_json::Value> = (start + 1..=epochs)
        .map(|e| {
            serde_json::json!({"epoch": e, "loss": 1.0, "accuracy": 0.5,
            "val_loss": 1.0, "val_accuracy": acc - 0.01 * (epochs - e) as f64})
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "run_id": run, "trial_id": trial, "epochs": epochs, "resume_from": from,
        "hp": {"hidden": [32, 32], "activation": "relu", "dropout": 0.1,
               "learning_rate": 0.001, "optimizer": "adam"},
        "start_epoch": start, "status": status, "best_epoch": epochs, "epochs_trained": epochs,
        "val_loss": 0.5, "val_accuracy": if status == "diverged" { serde_json::json!("NaN") } else { serde_json::json!(acc) },
        "seconds": 1.0, "study_seconds": run as f64 + 1.0, "study_epochs": 1, "history": history
    }))
    .unwrap()
}

#[test]
fn runs_map_to_optuna_trials_and_states() {
    // Hyperband: trial 0 promoted to max_epochs (runs 0 → 3), trial 1 stopped at 1 epoch,
    // trial 2 diverged at once, trial 3 early-stopped at the full budget.
    // Trial 1 kept the weights of a better epoch than its last (0.72 against 0.70): pruned, its
    // value is the last intermediate value, as Optuna stores a pruned trial.
    let mut pruned = rec(1, 1, 1, None, "complete", 0.70);
    pruned.val_accuracy = 0.72;
    let records = vec![
        rec(0, 0, 1, None, "complete", 0.80),
        pruned,
        rec(2, 2, 1, None, "diverged", 0.0),
        rec(3, 0, 3, Some(0), "complete", 0.85),
        rec(4, 3, 3, None, "early_stopped", 0.83),
        // Diverged after good epochs: it kept its best weights, and their value.
        {
            let mut r = rec(5, 4, 3, None, "complete", 0.81);
            r.status = fastfc::train::TrialStatus::Diverged;
            r
        },
    ];
    let t = trials(&cfg("hyperband"), &records);
    let got: Vec<(u64, OptunaState, Option<f64>)> = t
        .iter()
        .map(|(x, _)| (x.trial_id, x.state, x.value))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, OptunaState::Complete, Some(0.85)),
            (1, OptunaState::Pruned, Some(0.70)),
            (2, OptunaState::Fail, None),
            (3, OptunaState::Complete, Some(0.83)),
            (4, OptunaState::Complete, Some(0.81)),
        ]
    );
    // Trial 0's intermediate values run over both of its runs, by epoch.
    let inter: Vec<(usize, f64)> = t[0].0.intermediate.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(inter, vec![(1, 0.80), (2, 0.84), (3, 0.85)]);
    assert_eq!(t[0].1.len(), 2, "both runs of trial 0");
    // Random search has no budget below the full one: nothing is pruned.
    let t = trials(&cfg("random"), &records[..3]);
    assert!(t.iter().all(|(x, _)| x.state != OptunaState::Pruned));
}

#[test]
fn export_reads_the_stored_space_and_refuses_another_space_or_an_existing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let space = tmp.path().join("space.toml");
    std::fs::write(&space, SPACE).unwrap();
    let dir = tmp.path().join("s");
    let st = bin()
        .args([
            "search",
            "--strategy",
            "random",
            "--trials",
            "2",
            "--epochs",
            "1",
            "--device",
            "cpu",
        ])
        .arg("--space")
        .arg(&space)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let export = |extra: &[&str], out: &Path| {
        let o = bin()
            .args(["export", "optuna"])
            .arg(&dir)
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let out = tmp.path().join("study.log");
    // study.json stores the space's TOML: no --space needed.
    let (ok, err) = export(&[], &out);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 4);
    std::fs::remove_file(&out).unwrap();
    let other = tmp.path().join("other.toml");
    std::fs::write(&other, "[layers]\nchoice = [2]\n").unwrap();
    let (ok, err) = export(&["--space", other.to_str().unwrap()], &out);
    assert!(
        !ok && err.contains("--space") && err.contains("other.toml"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written on an error");
    let (ok, err) = export(&["--space", space.to_str().unwrap()], &out);
    assert!(ok, "{err}");
    let lines = std::fs::read_to_string(&out).unwrap().lines().count();
    assert_eq!(
        lines,
        2 + 2,
        "create study, its settings, one line per trial"
    );
    let (ok, err) = export(&["--space", space.to_str().unwrap()], &out);
    assert!(
        !ok && err.contains("--out") && err.contains("already exists"),
        "{err}"
    );
}

fn python() -> PathBuf {
    std::env::var_os("FASTFC_PYTHON").map_or_else(|| "python3".into(), PathBuf::from)
}

/// What Optuna must show for each trial, read from fastfc's own journal.
fn expected(dir: &Path, name: &str) -> serde_json::Value {
    let records = fastfc::results::journal::read(dir).unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let mut by_trial: std::collections::BTreeMap<u64, Vec<&RunRecord>> = Default::default();
    for r in &records {
        by_trial.entry(r.request.trial_id).or_default().push(r);
    }
    let trials: Vec<serde_json::Value> = by_trial
        .iter()
        .map(|(&id, runs)| {
            let last = runs.iter().max_by_key(|r| r.request.epochs).unwrap();
            let hp = &last.request.hp;
            let mut params = serde_json::json!({
                "n_layers": hp.hidden.len(),
                "dropout": hp.dropout as f64,
                "learning_rate": hp.learning_rate as f64,
                "activation": hp.activation.name(),
                "optimizer": hp.optimizer.name(),
            });
            for (i, u) in hp.hidden.iter().enumerate() {
                params[format!("units_{i}")] = serde_json::json!(u);
            }
            let mut inter = serde_json::Map::new();
            for r in runs {
                for e in &r.history {
                    inter.insert(e.epoch.to_string(), serde_json::json!(e.val_accuracy));
                }
            }
            let state = if !last.val_accuracy.is_finite() || last.status.name() == "failed" {
                "fail"
            } else if last.request.epochs < 3 {
                "pruned"
            } else {
                "complete"
            };
            // A pruned trial's value is its last intermediate value, as Optuna keeps it.
            let last_epoch = runs.iter().flat_map(|r| &r.history).max_by_key(|e| e.epoch);
            let value = match state {
                "fail" => None,
                "pruned" => last_epoch.map(|e| e.val_accuracy),
                _ => Some(last.val_accuracy),
            };
            serde_json::json!({"trial_id": id, "state": state, "value": value,
                "params": params, "intermediate": inter})
        })
        .collect();
    serde_json::json!({"study_name": name, "strategy": "hyperband", "trials": trials,
        "best_trial_id": summary["best"]["trial_id"]})
}

#[test]
#[ignore = "needs python3 with optuna (pip install optuna; FASTFC_PYTHON names the interpreter)"]
fn optuna_opens_the_export_and_sees_every_trial() {
    let tmp = tempfile::tempdir().unwrap();
    let space = tmp.path().join("space.toml");
    std::fs::write(&space, SPACE).unwrap();
    let dir = tmp.path().join("hb");
    let st = bin()
        .args([
            "search",
            "--strategy",
            "hyperband",
            "--max-epochs",
            "3",
            "--factor",
            "3",
            "--iterations",
            "2",
            "--device",
            "cpu",
            "--seed",
            "2",
        ])
        .arg("--space")
        .arg(&space)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let out = tmp.path().join("study.log");
    let st = bin()
        .args(["export", "optuna"])
        .arg(&dir)
        .arg("--out")
        .arg(&out)
        .arg("--space")
        .arg(&space)
        .args(["--study-name", "fastfc 'quoted' \"study\""])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let want = tmp.path().join("expected.json");
    std::fs::write(
        &want,
        expected(&dir, "fastfc 'quoted' \"study\"").to_string(),
    )
    .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_optuna_export.py");
    let o = Command::new(python())
        .arg(&script)
        .arg(&out)
        .arg(&want)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (set FASTFC_PYTHON)", python().display()));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("PRUNED") && stdout.contains("COMPLETE"),
        "{stdout}"
    );
}

/// Numeric choices keep their type in the distributions Optuna reads: whole numbers as JSON
/// integers (a width of 32, not 32.0), fractions as they are; a parameter's value is the index of
/// its choice.
#[test]
fn numeric_choices_keep_their_type() {
    let tmp = tempfile::tempdir().unwrap();
    let space = tmp.path().join("space.toml");
    std::fs::write(
        &space,
        "[layers]\nchoice = [1, 2]\n[units]\nchoice = [16]\n[dropout]\nchoice = [0.05, 0.15]\n",
    )
    .unwrap();
    let dir = tmp.path().join("s");
    let st = bin()
        .args([
            "search",
            "--strategy",
            "random",
            "--trials",
            "3",
            "--epochs",
            "1",
            "--device",
            "cpu",
        ])
        .arg("--space")
        .arg(&space)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let out = tmp.path().join("s.log");
    let st = bin()
        .args(["export", "optuna"])
        .arg(&dir)
        .arg("--out")
        .arg(&out)
        .arg("--space")
        .arg(&space)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let records = fastfc::results::journal::read(&dir).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let trials: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["op_code"] == 4)
        .collect();
    assert_eq!(trials.len(), 3);
    for (t, r) in trials.iter().zip(&records) {
        let dist = |k: &str| -> serde_json::Value {
            serde_json::from_str(t["distributions"][k].as_str().unwrap()).unwrap()
        };
        assert_eq!(
            dist("n_layers")["attributes"]["choices"],
            serde_json::json!([1, 2])
        );
        assert_eq!(
            dist("units")["attributes"]["choices"],
            serde_json::json!([16])
        );
        assert_eq!(
            dist("dropout")["attributes"]["choices"],
            serde_json::json!([0.05, 0.15])
        );
        let hp = &r.request.hp;
        assert_eq!(
            t["params"]["n_layers"],
            serde_json::json!((hp.hidden.len() - 1) as f64)
        );
        let d = if (hp.dropout - 0.05).abs() < 1e-6 {
            0.0
        } else {
            1.0
        };
        assert_eq!(t["params"]["dropout"], serde_json::json!(d));
    }
}
