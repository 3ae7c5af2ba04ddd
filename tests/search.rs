//! `fastfc search` end to end through the CLI on the embedded 8×8 Fashion-MNIST (real data; the
//! system's files are hidden with `FASTFC_NO_SYSTEM_DATA`, so a fresh machine runs the same test): a small random search, and a
//! Hyperband study killed (SIGKILL) at several points and resumed, which must end with the same
//! results as an uninterrupted run; a torn journal line is dropped with a warning.

mod common;

use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fastfc"));
    c.env("FASTFC_NO_PROGRESS", "1")
        .env("FASTFC_NO_SYSTEM_DATA", "1");
    c
}

/// A small, fast space: 2 layers of 32, so each epoch takes a fraction of a second.
const SPACE: &str = "[layers]\nchoice = [2]\n[units]\nchoice = [32]\n";

fn search_args(out: &Path, space: &Path) -> Vec<String> {
    [
        "search",
        "--strategy",
        "hyperband",
        "--max-epochs",
        "3",
        "--factor",
        "3",
        "--iterations",
        "1",
        "--cohort-size",
        "1",
        "--threads",
        "1",
        "--device",
        "cpu",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "--out".into(),
        out.display().to_string(),
        "--space".into(),
        space.display().to_string(),
    ])
    .collect()
}

use common::journal_records as records;

fn journal_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("journal.jsonl")).map_or(0, |t| t.lines().count())
}

#[test]
fn small_random_search_writes_the_study() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("study");
    let st = bin()
        .args([
            "search",
            "--strategy",
            "random",
            "--trials",
            "6",
            "--epochs",
            "2",
            "--seed",
            "3",
            "--device",
            "cpu",
        ])
        .arg("--out")
        .arg(&o)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&st.stdout);
    assert!(
        st.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(
        stdout.contains("top 10 by validation accuracy") && stdout.contains("best: run"),
        "{stdout}"
    );
    let mut rdr = csv::Reader::from_path(o.join("results.csv")).unwrap();
    let headers = rdr.headers().unwrap().clone();
    for col in [
        "trial_id",
        "hidden",
        "dropout",
        "learning_rate",
        "activation",
        "optimizer",
        "epochs",
        "val_loss",
        "val_accuracy",
        "status",
        "seconds",
    ] {
        assert!(
            headers.iter().any(|h| h == col),
            "results.csv lacks {col}: {headers:?}"
        );
    }
    assert_eq!(rdr.records().count(), 6);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(o.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["strategy"], "random");
    assert_eq!(s["trials"], 6);
    assert!(s["best"]["val_accuracy"].as_f64().unwrap() > 0.7, "{s}");
    assert!(s["test_accuracy"].as_f64().unwrap() > 0.7, "{s}");
    assert!(o.join("best/model.safetensors").exists() && o.join("best/config.json").exists());
    assert_eq!(journal_lines(&o), 6);

    // `fastfc report` draws the comparison plots from the journal.
    let rep = bin().arg("report").arg(&o).output().unwrap();
    let stdout = String::from_utf8_lossy(&rep.stdout);
    assert!(
        rep.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&rep.stderr)
    );
    assert!(stdout.contains("random (study)"), "{stdout}");
    for f in [
        "convergence.svg",
        "convergence.png",
        "by_hyperparameter.svg",
        "by_hyperparameter.png",
        "parallel_coordinates.svg",
        "parallel_coordinates.png",
    ] {
        let bytes = std::fs::read(o.join(f)).unwrap();
        assert!(bytes.len() > 1000, "{f} is nearly empty");
        if f.ends_with(".png") {
            assert_eq!(&bytes[1..4], b"PNG");
        } else {
            assert!(String::from_utf8_lossy(&bytes).contains("<svg"));
        }
    }
    // 6 trials are too few for importance: no plot, and a line says why.
    assert!(
        stdout.contains("importance.{svg,png} not written") && stdout.contains("has 6"),
        "{stdout}"
    );
    assert!(!o.join("importance.svg").exists());
    let bad = bin().arg("report").arg(out.path()).output().unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("journal.jsonl: no finished runs"));

    // The same --out again without --resume is refused, naming the flag.
    let again = bin()
        .args([
            "search",
            "--strategy",
            "random",
            "--trials",
            "6",
            "--epochs",
            "2",
            "--seed",
            "3",
        ])
        .arg("--out")
        .arg(&o)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && err.contains("--out") && err.contains("--resume"),
        "{err}"
    );
    // --resume with other settings is refused, naming the setting.
    let other = bin()
        .args([
            "search",
            "--strategy",
            "random",
            "--trials",
            "6",
            "--epochs",
            "3",
            "--seed",
            "3",
            "--resume",
        ])
        .arg("--out")
        .arg(&o)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(
        !other.status.success() && err.contains("epochs was 2, now 3"),
        "{err}"
    );
    // --resume of the finished study trains nothing and keeps the test score it has: the test
    // split is scored once.
    let resumed = bin()
        .args(["search", "--strategy", "random", "--trials", "6"])
        .args([
            "--epochs", "2", "--seed", "3", "--device", "cpu", "--resume",
        ])
        .arg("--out")
        .arg(&o)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{err}");
    assert!(err.contains("kept from the study's summary"), "{err}");
    assert_eq!(journal_lines(&o), 6);
    let t = summary(&o);
    assert_eq!(t["test_accuracy"], s["test_accuracy"]);
    assert_eq!(t["best"], s["best"]);
}

/// The best model's files: its weights and its config.
fn best_model(dir: &Path) -> (Vec<u8>, String) {
    (
        std::fs::read(dir.join("best/model.safetensors")).unwrap(),
        std::fs::read_to_string(dir.join("best/config.json")).unwrap(),
    )
}

/// summary.json without the fields that measure time.
fn summary(dir: &Path) -> serde_json::Value {
    let mut s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    s.as_object_mut().unwrap().remove("wall_seconds");
    s
}

/// Killed right after its 1st and its 4th journal record (deterministically, by
/// FASTFC_KILL_AFTER_RUNS, which aborts as a SIGKILL would), the study resumes to the very
/// records, summary and best model of an uninterrupted run, without training a finished run twice.
#[test]
fn killed_search_resumes_to_the_same_results() {
    let tmp = tempfile::tempdir().unwrap();
    let space = tmp.path().join("space.toml");
    std::fs::write(&space, SPACE).unwrap();

    let full = tmp.path().join("full");
    let st = bin().args(search_args(&full, &space)).output().unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let want = records(&full);
    assert_eq!(want.len(), 6, "R=3, η=3: rounds 3→1 and 2");
    let best = best_model(&full);

    for kill_after in [1usize, 4] {
        let dir = tmp.path().join(format!("killed{kill_after}"));
        let st = bin()
            .args(search_args(&dir, &space))
            .env("FASTFC_KILL_AFTER_RUNS", kill_after.to_string())
            .output()
            .unwrap();
        assert!(!st.status.success(), "the kill point was not reached");
        assert_eq!(
            journal_lines(&dir),
            kill_after,
            "killed right after record {kill_after}"
        );
        assert!(!dir.join("summary.json").exists());
        let st = bin()
            .args(search_args(&dir, &space))
            .arg("--resume")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&st.stdout);
        assert!(
            st.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&st.stderr)
        );
        assert_eq!(
            stdout.matches("(from journal)").count(),
            kill_after,
            "finished runs must not train again"
        );
        assert_eq!(
            records(&dir),
            want,
            "resumed study differs (killed after {kill_after} runs)"
        );
        assert_eq!(summary(&dir), summary(&full), "summary.json differs");
        assert_eq!(best_model(&dir), best, "best/ differs");
    }
}

#[test]
fn torn_journal_line_is_dropped_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let space = tmp.path().join("space.toml");
    std::fs::write(&space, SPACE).unwrap();
    let dir = tmp.path().join("s");
    let st = bin().args(search_args(&dir, &space)).output().unwrap();
    assert!(st.status.success());
    let want = records(&dir);
    // Keep 2 complete lines and half of the third, as a kill during a write would leave it.
    let text = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let torn = format!(
        "{}\n{}\n{}",
        lines[0],
        lines[1],
        &lines[2][..lines[2].len() / 2]
    );
    std::fs::write(dir.join("journal.jsonl"), torn).unwrap();
    let st = bin()
        .args(search_args(&dir, &space))
        .arg("--resume")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(st.status.success(), "{err}");
    assert!(
        err.contains("line 3 is incomplete") && err.contains("dropping it"),
        "{err}"
    );
    assert_eq!(records(&dir), want);

    // A bad line in the middle is corruption, not a torn write: an error naming the line.
    let text = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[1] = "{\"not\": \"a record\"}".into();
    std::fs::write(dir.join("journal.jsonl"), lines.join("\n") + "\n").unwrap();
    let st = bin()
        .args(search_args(&dir, &space))
        .arg("--resume")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(
        !st.status.success() && err.contains("journal.jsonl: line 2 is not a run record"),
        "{err}"
    );
}

/// README's example space (the ```toml block after "Search spaces") is the default space, and
/// the README's own grid command runs on it, so the two cannot drift apart.
#[test]
fn readme_space_is_the_default_and_runs_the_readme_grid_command() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let after = &readme[readme
        .find("\nSearch spaces (`--space FILE.toml`")
        .expect("README has the section")..];
    let start = after.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let block = &after[start..start + after[start..].find("```").unwrap()];
    assert!(readme.contains("fastfc search --strategy grid --space my-space.toml --epochs 5"));
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("my-space.toml");
    std::fs::write(&file, block).unwrap();
    let mut grid = bin();
    grid.args(["search", "--strategy", "grid", "--space"])
        .arg(&file);
    let st = grid.args(["--epochs", "5", "--dry-run"]).output().unwrap();
    let out = String::from_utf8_lossy(&st.stdout);
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(st.status.success(), "{out}\n{err}\n{block}");
    // 3 depths x 3 widths x 6 activations x 2 optimizers x 3 dropouts x 3 learning rates.
    assert!(out.contains("grid: 972 configurations x 5 epochs"), "{out}");
    assert_eq!(
        fastfc::space::SearchSpace::parse(&file, block).unwrap(),
        fastfc::space::SearchSpace::default(),
        "README's space is not the default:\n{block}"
    );
}

#[test]
fn dry_run_prints_the_schedule() {
    let st = bin()
        .args(["search", "--strategy", "hyperband", "--dry-run"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&st.stdout);
    assert!(st.status.success());
    assert!(
        out.contains("total: 60 trial runs, 240 epochs trained"),
        "{out}"
    );
    let st = bin()
        .args([
            "search",
            "--strategy",
            "hyperband",
            "--factor",
            "1",
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&st.stderr)
        .contains("--factor: 1: Hyperband needs a factor of at least 2"));
}

/// Overwrites 4 KiB in the middle of a file (a bad sector, a stray writer), length unchanged.
fn damage_middle(path: &Path) {
    let mut b = std::fs::read(path).unwrap();
    let mid = b.len() / 2;
    let end = (mid + 4096).min(b.len());
    let start = end.saturating_sub(4096);
    b[start..end].fill(0xa5);
    std::fs::write(path, b).unwrap();
}

/// A damaged checkpoint is never used: reading it is an error naming the file and the run, and
/// `--resume` trains that run again (to the same result: trials are deterministic).
#[test]
fn damaged_checkpoint_is_an_error_and_resume_retrains_that_run() {
    use fastfc::results::journal;
    let tmp = tempfile::tempdir().unwrap();
    let space = tmp.path().join("space.toml");
    std::fs::write(&space, SPACE).unwrap();
    let dir = tmp.path().join("s");
    let st = bin().args(search_args(&dir, &space)).output().unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let want = records(&dir);
    // A run that a promotion continued from: its weights feed a later run.
    let parent = want
        .iter()
        .find_map(|r| r["resume_from"].as_u64())
        .expect("Hyperband 3/3 promotes a run");
    let ckpt = journal::checkpoint_path(&dir, parent);
    assert!(journal::read_checkpoint(&dir, parent).is_ok());
    damage_middle(&ckpt);

    let e = journal::read_checkpoint(&dir, parent)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&ckpt.display().to_string())
            && e.contains(&format!("checkpoint of run {parent} is damaged"))
            && e.contains("checksum"),
        "{e}"
    );
    // Cut short (a torn copy) is caught the same way.
    let b = std::fs::read(&ckpt).unwrap();
    std::fs::write(&ckpt, &b[..b.len() - 100]).unwrap();
    let e = journal::read_checkpoint(&dir, parent)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("checkpoint of run {parent} is damaged")),
        "{e}"
    );
    damage_middle(&ckpt);

    let st = bin()
        .args(search_args(&dir, &space))
        .arg("--resume")
        .output()
        .unwrap();
    let (stdout, err) = (
        String::from_utf8_lossy(&st.stdout),
        String::from_utf8_lossy(&st.stderr),
    );
    assert!(st.status.success(), "{stdout}\n{err}");
    assert!(
        err.contains(&format!("checkpoint of run {parent} is damaged"))
            && err.contains(&format!("run {parent} will be trained again")),
        "{err}"
    );
    assert_eq!(
        stdout.matches("(from journal)").count(),
        want.len() - 1,
        "only the damaged run trains again:\n{stdout}"
    );
    assert!(journal::read_checkpoint(&dir, parent).is_ok(), "rewritten");
    // The journal now holds that run twice; every reader counts its last record once.
    assert_eq!(journal_lines(&dir), want.len() + 1);
    let again: Vec<serde_json::Value> = journal::read(&dir)
        .unwrap()
        .iter()
        .map(|r| {
            // Through text, as the journal stores it (f32 fields print in their shortest form).
            let mut v: serde_json::Value =
                serde_json::from_str(&serde_json::to_string(r).unwrap()).unwrap();
            for k in ["seconds", "study_seconds", "study_epochs"] {
                v.as_object_mut().unwrap().remove(k);
            }
            v
        })
        .collect();
    let mut again = again;
    again.sort_by_key(|r| r["run_id"].as_u64().unwrap());
    assert_eq!(again, want, "the retrained run ends where it did");
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), want.len() + 1, "{csv}");
}

/// A run that diverges before its first good epoch has no validation loss (NaN). The journal
/// writes it so that it reads back: a resumed study replays it instead of calling the journal
/// corrupt, and `fastfc report` reads the study. (The CLI's spaces cap the learning rate, so the
/// study is driven in-process with a strategy that proposes a diverging configuration.)
#[test]
fn a_run_that_diverged_at_once_round_trips_through_the_journal() {
    use fastfc::backend::cpu::CpuBackend;
    use fastfc::model::{Activation, Hyperparams, Optimizer};
    use fastfc::strategy::{Observation, Plan, Proposal, RunRequest, Strategy};
    use fastfc::study::{self, NoUi, StudyConfig};
    struct Fixed(Vec<RunRequest>, bool);
    impl Strategy for Fixed {
        fn name(&self) -> &'static str {
            "random"
        }
        fn propose(&mut self, _capacity: usize) -> Proposal {
            if self.1 {
                return Proposal::Done;
            }
            self.1 = true;
            Proposal::Run(self.0.clone())
        }
        fn observe(&mut self, _outcomes: &[Observation]) {}
        fn plan(&self) -> Plan {
            Plan {
                runs: self.0.len(),
                epochs: 2 * self.0.len(),
                lines: vec![],
            }
        }
    }
    let req = |id: u64, lr: f32| RunRequest {
        run_id: id,
        trial_id: id,
        hp: Hyperparams {
            hidden: vec![32, 32],
            activation: Activation::Relu,
            dropout: 0.0,
            learning_rate: lr,
            optimizer: Optimizer::Lion,
            ..Default::default()
        },
        epochs: 2,
        resume_from: None,
        bracket: None,
    };
    let reqs = vec![req(0, 1e30), req(1, 1e-3)];
    let mut d = fastfc::data::embedded::load().unwrap();
    d.train.x.truncate(1000 * 64);
    d.train.y.truncate(1000);
    let backend = CpuBackend::new(std::sync::Arc::new(d));
    let cfg = StudyConfig {
        strategy: "random".into(),
        seed: 1,
        trials: Some(2),
        epochs: 2,
        max_epochs: 2,
        factor: 3,
        iterations: 1,
        patience: None,
        batch_size: 32,
        image_size: 8,
        space: "default".into(),
        data: None,
        tpe: None,
        asha: None,
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    study::prepare_dir(&dir, &cfg, false).unwrap();
    let first = study::run(
        &backend,
        &mut Fixed(reqs.clone(), false),
        &cfg,
        &dir,
        8,
        &mut NoUi,
    )
    .unwrap();
    assert_eq!(first[0].status, fastfc::train::TrialStatus::Diverged);
    assert!(first[0].val_loss.is_nan(), "{}", first[0].val_loss);
    let text = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    assert!(text.contains("\"val_loss\":\"NaN\""), "{text}");
    // Resumed: both runs come from the journal, none trains again.
    let again = study::run(&backend, &mut Fixed(reqs, false), &cfg, &dir, 8, &mut NoUi).unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(
        std::fs::read_to_string(dir.join("journal.jsonl")).unwrap(),
        text
    );
    assert!(again[0].val_loss.is_nan() && again[1].val_loss.is_finite());
    {
        let _one = FINISH.lock().unwrap_or_else(|e| e.into_inner());
        study::finish(&backend, &cfg, &dir, &again).unwrap();
        // A best run that never had a good epoch has no model to score: no test accuracy,
        // and the test split stays untouched.
        let before = study::test_scores();
        let s = study::finish(&backend, &cfg, &dir, &again[..1]).unwrap();
        assert_eq!(s.best.run_id, 0);
        assert_eq!(s.test_accuracy, None);
        assert_eq!(study::test_scores(), before);
    }
    let st = bin()
        .arg("report")
        .arg(&dir)
        .arg("--out")
        .arg(tmp.path().join("report"))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
}

/// A journal that cannot be read (here: a folder where the file should be) is an error naming
/// it, never an empty study; an absent journal is an empty one.
#[test]
fn an_unreadable_journal_is_an_error_and_an_absent_one_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    assert!(fastfc::results::journal::read(dir.path())
        .unwrap()
        .is_empty());
    std::fs::create_dir(dir.path().join("journal.jsonl")).unwrap();
    let e = fastfc::results::journal::read(dir.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("journal.jsonl"), "{e}");
}

/// A one-epoch run record with id `id` (a diverged relu run; the values do not matter).
fn run_record(id: u64) -> fastfc::results::journal::RunRecord {
    serde_json::from_value(serde_json::json!({
        "run_id": id, "trial_id": id, "epochs": 1, "resume_from": null,
        "hp": {"hidden": [16], "activation": "relu", "dropout": 0.0,
               "learning_rate": 0.001, "optimizer": "adam"},
        "start_epoch": 0, "status": "diverged", "best_epoch": 0, "epochs_trained": 1,
        "val_loss": 0.0, "val_accuracy": 0.0, "seconds": 1.0, "study_seconds": 1.0,
        "study_epochs": 1,
        "history": [{"epoch": 1, "loss": 1.0, "accuracy": 0.1, "val_loss": 1.0, "val_accuracy": 0.1}]
    }))
    .unwrap()
}

/// Blank (whitespace-only) lines in a journal, as an editor or a hand-joined journal leaves
/// them, are skipped, not corruption; a torn last line after them still cuts only itself, and
/// appends after a final blank line without its newline start a line of their own.
#[test]
fn blank_journal_lines_are_skipped() {
    use fastfc::results::journal::{self, Journal};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let line = |id| serde_json::to_string(&run_record(id)).unwrap();
    let ids = |d: &Path| -> Vec<u64> {
        journal::read(d)
            .unwrap()
            .iter()
            .map(|r| r.request.run_id)
            .collect()
    };
    let blank = format!("\n{}\n  \n\t\r\n{}\n\n{}\n \n", line(0), line(1), line(2));
    std::fs::write(&path, &blank).unwrap();
    assert_eq!(ids(dir.path()), [0, 1, 2]);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        blank,
        "left as it was"
    );

    // A torn record after the blank lines: only its own bytes go.
    let torn = line(3);
    std::fs::write(&path, format!("{blank}{}", &torn[..torn.len() / 2])).unwrap();
    assert_eq!(ids(dir.path()), [0, 1, 2]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), blank);

    // A last blank line without its newline is cut, so the next record gets a line of its own.
    std::fs::write(&path, format!("{blank}\t ")).unwrap();
    assert_eq!(ids(dir.path()), [0, 1, 2]);
    Journal::open(dir.path())
        .unwrap()
        .append(&run_record(3))
        .unwrap();
    assert_eq!(ids(dir.path()), [0, 1, 2, 3]);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{blank}{}\n", line(3))
    );
}

/// Every journal field round-trips, non-finite values included; `null` from older journals
/// reads as NaN.
#[test]
fn journal_floats_round_trip_non_finite_values() {
    use fastfc::results::journal::{self, Journal, RunRecord};
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path()).unwrap();
    let rec = |id: u64, loss: f64, acc: f64| -> RunRecord {
        let mut r = run_record(id);
        (r.val_loss, r.val_accuracy, r.history[0].loss) = (loss, acc, loss);
        r
    };
    let mut want = vec![
        rec(0, f64::NAN, 0.1),
        rec(1, f64::INFINITY, 0.0),
        rec(2, f64::NEG_INFINITY, 0.5),
        rec(3, 0.25, 0.75),
        // Finite values read back to the same bits: these two came back one ulp off when
        // serde_json parsed floats with its fast, not correctly rounded, algorithm.
        rec(5, 1.9829374316707253, 0.20666666666666667),
    ];
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for id in 6..206 {
        // Random bit patterns of finite, normal f64s over many magnitudes.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = f64::from_bits((x & 0x800f_ffff_ffff_ffff) | ((0x3c0 + (x >> 52) % 0x80) << 52));
        want.push(rec(id, v, v.abs().fract()));
    }
    // A negative zero keeps its sign.
    want.push(rec(206, -0.0, 0.5));
    // Every float of a record and of its epochs, not only the losses, may be non-finite.
    for (r, v) in want
        .iter_mut()
        .zip([f64::NAN, f64::INFINITY, f64::NEG_INFINITY])
    {
        r.val_accuracy = v;
        let h = &mut r.history[0];
        (h.accuracy, h.val_loss, h.val_accuracy) = (v, -v, v);
    }
    for r in &want {
        j.append(r).unwrap();
    }
    // An older journal's line with null.
    let old = serde_json::to_string(&want[3])
        .unwrap()
        .replace("\"val_loss\":0.25", "\"val_loss\":null");
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("journal.jsonl"))
        .and_then(|mut f| {
            std::io::Write::write_all(
                &mut f,
                format!("{}\n", old.replace("\"run_id\":3", "\"run_id\":4")).as_bytes(),
            )
        })
        .unwrap();
    let got = journal::read(dir.path()).unwrap();
    assert_eq!(got.len(), want.len() + 1);
    // Every field: `{:?}` prints each float's shortest exact form (and NaN, inf, -inf, -0.0).
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(
            format!("{g:?}"),
            format!("{w:?}"),
            "run {}",
            w.request.run_id
        );
    }
    assert!(format!("{:?}", want[0]).contains("val_accuracy: NaN"));
    assert!(format!("{:?}", want.last().unwrap()).contains("val_loss: -0.0"));
    let null = got.iter().find(|r| r.request.run_id == 4).unwrap();
    assert!(null.val_loss.is_nan(), "null reads as NaN");
}

/// In-process studies that finish (and so score the test split) run one at a time, so the
/// process-wide count of test scorings is theirs alone.
static FINISH: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The test split is scored once per study, for the chosen model, and it is the test split: a
/// second `finish` (as a `--resume` of a finished study runs it) keeps the score, and the
/// numbers in summary.json are the best model's accuracies on the validation and test splits,
/// not the other way round.
#[test]
fn the_test_split_is_scored_once_and_is_the_test_split() {
    use fastfc::backend::cpu::CpuBackend;
    use fastfc::backend::{Backend, SplitId};
    use fastfc::model::TrialState;
    use fastfc::space::SearchSpace;
    use fastfc::study::{self, NoUi, StudyConfig};
    let _one = FINISH.lock().unwrap_or_else(|e| e.into_inner());
    let mut d = fastfc::data::embedded::load().unwrap();
    d.train.x.truncate(2000 * 64);
    d.train.y.truncate(2000);
    let backend = CpuBackend::new(std::sync::Arc::new(d));
    let cfg = StudyConfig {
        strategy: "random".into(),
        seed: 4,
        trials: Some(3),
        epochs: 1,
        max_epochs: 1,
        factor: 3,
        iterations: 1,
        patience: None,
        batch_size: 32,
        image_size: 8,
        space: "default".into(),
        data: None,
        tpe: None,
        asha: None,
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    study::prepare_dir(&dir, &cfg, false).unwrap();
    let mut strategy =
        fastfc::strategy::random::new(&SearchSpace::default(), 3, 1, cfg.seed).unwrap();
    let records = study::run(&backend, &mut strategy, &cfg, &dir, 8, &mut NoUi).unwrap();
    let before = study::test_scores();
    let first = study::finish(&backend, &cfg, &dir, &records).unwrap();
    assert_eq!(study::test_scores(), before + 1, "scored once");
    let again = study::finish(&backend, &cfg, &dir, &records).unwrap();
    assert_eq!(
        study::test_scores(),
        before + 1,
        "a finished study is not scored again"
    );
    assert_eq!(first.test_accuracy, again.test_accuracy);
    // A summary.json of another best run (say the study changed) is not this model's score.
    let path = dir.join("summary.json");
    let mut other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    other["best"]["run_id"] = serde_json::json!(first.best.run_id + 1);
    std::fs::write(&path, other.to_string()).unwrap();
    study::finish(&backend, &cfg, &dir, &records).unwrap();
    assert_eq!(
        study::test_scores(),
        before + 2,
        "another best run is scored"
    );
    // The saved best model, scored here on each split.
    let (mc, params) = fastfc::results::model_io::load(&dir.join("best")).unwrap();
    let spec = mc.spec();
    let mut state = TrialState::init(&spec);
    state.params = params;
    let c = backend.load(vec![(spec.clone(), state.clone())]).unwrap();
    let val = backend.evaluate(&c, SplitId::Val, &[true]).unwrap()[0].accuracy;
    let test = backend.evaluate(&c, SplitId::Test, &[true]).unwrap()[0].accuracy;
    assert_ne!(val, test, "the check needs the splits to score apart");
    assert_eq!(
        first.best.val_accuracy, val,
        "summary's val_accuracy is the validation split's"
    );
    assert_eq!(
        first.test_accuracy,
        Some(test),
        "summary's test_accuracy is the test split's"
    );
    // And inside the backend each split is the one its name says: over data whose three splits
    // are all copies of split X, every split scores as X does on the real data.
    for x in [SplitId::Train, SplitId::Val, SplitId::Test] {
        let mut same = backend.data().clone();
        let pick = match x {
            SplitId::Train => same.train.clone(),
            SplitId::Val => same.val.clone(),
            SplitId::Test => same.test.clone(),
        };
        (same.train, same.val, same.test) = (pick.clone(), pick.clone(), pick);
        let b = CpuBackend::new(std::sync::Arc::new(same));
        let cx = b.load(vec![(spec.clone(), state.clone())]).unwrap();
        let want = &backend.evaluate(&c, x, &[true]).unwrap()[0];
        for y in [SplitId::Train, SplitId::Val, SplitId::Test] {
            let got = &b.evaluate(&cx, y, &[true]).unwrap()[0];
            assert_eq!(
                (got.loss, got.accuracy),
                (want.loss, want.accuracy),
                "{y:?} of copies of {x:?}"
            );
        }
    }
}

/// Defect 4e of #10 (the CUDA engine suite and gpu-check use this comparison): exact ranking
/// equality fails on a GPU for float reasons alone. Runs closer than the
/// tolerance may trade places (a 1/512 step of validation accuracy); a real reordering is still
/// caught, and named.
#[test]
fn rankings_are_compared_with_a_stated_tolerance() {
    use fastfc::results::journal::RunRecord;
    let rec = |id: u64, acc: f64| -> RunRecord {
        serde_json::from_value(serde_json::json!({
            "run_id": id, "trial_id": id, "epochs": 1, "resume_from": null,
            "hp": {"hidden": [32, 32], "activation": "relu", "dropout": 0.0,
                   "learning_rate": 0.001, "optimizer": "adam"},
            "start_epoch": 0, "status": "complete", "best_epoch": 1, "epochs_trained": 1,
            "val_loss": 0.5, "val_accuracy": acc, "seconds": 1.0, "study_seconds": 1.0,
            "study_epochs": 1, "history": []
        }))
        .unwrap()
    };
    let tol = 2.0 / 512.0;
    let cpu = vec![rec(0, 0.80), rec(1, 0.801), rec(2, 0.70)];
    // Runs 0 and 1 are 0.001 apart: a GPU may order them either way.
    let gpu_tie = vec![rec(0, 0.802), rec(1, 0.800), rec(2, 0.70)];
    assert!(fastfc::study::rankings_agree(&cpu, &gpu_tie, tol).is_ok());
    // The exact comparison this replaces would have failed here.
    let top = |r: &[RunRecord]| {
        let mut v: Vec<&RunRecord> = r.iter().collect();
        v.sort_by(|a, b| fastfc::study::rank_records(a, b));
        v[0].request.run_id
    };
    assert_ne!(top(&cpu), top(&gpu_tie));
    // Run 2 is 0.1 behind: ranking it first is a real difference.
    let gpu_wrong = vec![rec(0, 0.80), rec(1, 0.801), rec(2, 0.9)];
    let e = fastfc::study::rankings_agree(&cpu, &gpu_wrong, tol).unwrap_err();
    assert!(e.contains("run 2") || e.contains("run 1"), "{e}");
    assert!(fastfc::study::rankings_agree(&cpu, &cpu[..2], tol).is_err());
    // A subset the other way round, and the same count of different runs, are other runs too.
    assert!(fastfc::study::rankings_agree(&cpu[..2], &cpu, tol).is_err());
    let other = vec![rec(0, 0.80), rec(1, 0.801), rec(3, 0.70)];
    let e = fastfc::study::rankings_agree(&cpu, &other, tol).unwrap_err();
    assert!(e.contains("different runs"), "{e}");
    // Exactly `tol` apart (both exact in binary) may still trade places; a hair more may not.
    let a = vec![rec(0, 0.5), rec(1, 0.5 - tol)];
    let swapped = vec![rec(0, 0.5 - tol), rec(1, 0.5)];
    assert!(fastfc::study::rankings_agree(&a, &swapped, tol).is_ok());
    let a = vec![rec(0, 0.5), rec(1, 0.5 - tol - 1.0 / 1024.0)];
    assert!(fastfc::study::rankings_agree(&a, &swapped, tol).is_err());
}

/// `study::run` itself: runs that start and end at the same epochs share a cohort of at most
/// `cohort_size`, in proposal order; the journal's study-wide counters (`study_epochs`,
/// `study_seconds`) grow with each record and carry on across a resume; a resume replays every
/// journaled run without training; a journal record that no longer matches what the strategy
/// proposes is refused, naming the journal.
#[test]
fn study_run_groups_cohorts_counts_epochs_and_guards_replays() {
    use fastfc::backend::cpu::CpuBackend;
    use fastfc::results::journal::{self, RunRecord};
    use fastfc::space::SearchSpace;
    use fastfc::strategy::hyperband::Hyperband;
    use fastfc::study::{self, StudyConfig, StudyUi};

    #[derive(Default)]
    struct Seen {
        cohorts: Vec<(usize, usize, usize)>,
        done: Vec<(u64, bool)>,
    }
    impl StudyUi for Seen {
        fn cohort_start(&mut self, runs: usize, first: usize, last: usize) {
            self.cohorts.push((runs, first, last));
        }
        fn run_done(&mut self, r: &RunRecord, replayed: bool) {
            self.done.push((r.request.run_id, replayed));
        }
    }

    let mut d = fastfc::data::embedded::load().unwrap();
    d.train.x.truncate(300 * 64);
    d.train.y.truncate(300);
    d.val.x.truncate(200 * 64);
    d.val.y.truncate(200);
    let backend = CpuBackend::new(std::sync::Arc::new(d));
    let space = SearchSpace::parse(Path::new("space.toml"), SPACE).unwrap();
    let cfg = StudyConfig {
        strategy: "hyperband".into(),
        seed: 11,
        trials: None,
        epochs: 3,
        max_epochs: 3,
        factor: 3,
        iterations: 1,
        patience: None,
        batch_size: 32,
        image_size: 8,
        space: "test".into(),
        data: None,
        tpe: None,
        asha: None,
    };
    let hb = || Hyperband::new(&space, 3, 3, 1, cfg.seed).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    study::prepare_dir(&dir, &cfg, false).unwrap();
    let mut seen = Seen::default();
    let records = study::run(&backend, &mut hb(), &cfg, &dir, 2, &mut seen).unwrap();

    // Hyperband 3/3/1: bracket 1 trains 3 configs for 1 epoch, then promotes 1 to 3 epochs;
    // bracket 0 trains 2 configs for 3 epochs. With cohorts of at most 2, in proposal order.
    let sizes: Vec<(usize, usize, usize)> = seen.cohorts.clone();
    assert!(
        sizes.iter().all(|&(n, _, _)| (1..=2).contains(&n)),
        "a cohort exceeds --cohort-size 2: {sizes:?}"
    );
    assert_eq!(
        sizes,
        vec![(2, 0, 1), (1, 0, 1), (2, 0, 3), (1, 1, 3)],
        "cohorts by (runs, first epoch, last epoch)"
    );
    assert!(seen.done.iter().all(|&(_, replayed)| !replayed));

    // The journal, in the order written: study_epochs is the running total of epochs trained,
    // study_seconds never goes back.
    let written = journal::read(&dir).unwrap();
    assert_eq!(written.len(), records.len());
    let mut total = 0;
    let mut last_seconds = 0.0;
    for r in &written {
        total += r.history.len();
        assert_eq!(
            r.study_epochs, total,
            "study_epochs of run {}",
            r.request.run_id
        );
        assert!(
            r.study_seconds > 0.0 && r.study_seconds >= last_seconds,
            "study_seconds of run {} is {} after {last_seconds}",
            r.request.run_id,
            r.study_seconds
        );
        last_seconds = r.study_seconds;
    }
    assert_eq!(
        total,
        1 + 1 + 1 + 3 + 3 + 2,
        "epochs: 3×1, 2×3, one promotion of 2"
    );

    // A resume of the finished study trains nothing and replays every run, as recorded.
    let mut again = Seen::default();
    let replay = study::run(&backend, &mut hb(), &cfg, &dir, 2, &mut again).unwrap();
    assert!(
        again.cohorts.is_empty(),
        "a resume trained: {:?}",
        again.cohorts
    );
    assert_eq!(again.done.len(), records.len());
    assert!(again.done.iter().all(|&(_, replayed)| replayed));
    assert_eq!(
        serde_json::to_string(&replay).unwrap(),
        serde_json::to_string(&records).unwrap()
    );

    // A half-finished study carries its counters on: drop the last record and resume.
    let text = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines[..lines.len() - 1].join("\n") + "\n";
    std::fs::write(dir.join("journal.jsonl"), &cut).unwrap();
    let kept = journal::read(&dir).unwrap();
    let kept_seconds = kept.iter().map(|r| r.study_seconds).fold(0.0, f64::max);
    let mut third = Seen::default();
    study::run(&backend, &mut hb(), &cfg, &dir, 2, &mut third).unwrap();
    assert_eq!(
        third.cohorts.len(),
        1,
        "only the dropped run is trained again"
    );
    let resumed = journal::read(&dir).unwrap();
    let new = resumed.last().unwrap();
    assert_eq!(new.study_epochs, total, "the epoch counter carries on");
    assert!(
        new.study_seconds > kept_seconds,
        "the clock carries on: {} after {kept_seconds}",
        new.study_seconds
    );

    // A journaled run that differs from what the strategy proposes is refused.
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let mut changed = first.clone();
    changed["hp"]["learning_rate"] = serde_json::json!(0.5);
    let mut text = serde_json::to_string(&changed).unwrap() + "\n";
    text += &lines[1..].join("\n");
    text += "\n";
    std::fs::write(dir.join("journal.jsonl"), text).unwrap();
    let err = study::run(&backend, &mut hb(), &cfg, &dir, 2, &mut Seen::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("journal.jsonl")
            && err.contains(&format!("run {}", first["run_id"]))
            && err.contains("differs"),
        "{err}"
    );
}

/// TPE, BOHB and ASHA studies, killed mid-cohort (FASTFC_KILL_AFTER_RUNS), resume to the very
/// records and summary of an uninterrupted run: their proposals depend only on the seed and on
/// what was observed, which the journal replays. A TPE study does not resume with another cohort size.
#[test]
fn killed_tpe_and_bohb_searches_resume_to_the_same_results() {
    let tmp = tempfile::tempdir().unwrap();
    let space = tmp.path().join("space.toml");
    std::fs::write(&space, SPACE).unwrap();
    // One search's flags: the strategy's own, then the shared ones.
    let search = |own: &'static [&'static str]| {
        let space = space.clone();
        move |dir: &Path| -> Vec<String> {
            ["search"]
                .iter()
                .chain(own)
                .chain(&["--device", "cpu", "--threads", "1", "--seed", "5"])
                .map(|s| s.to_string())
                .chain(["--out".into(), dir.display().to_string()])
                .chain(["--space".into(), space.display().to_string()])
                .collect()
        }
    };
    let tpe = search(&[
        "--strategy",
        "tpe",
        "--trials",
        "9",
        "--epochs",
        "2",
        "--cohort-size",
        "3",
        "--startup-trials",
        "3",
    ]);
    // R = 9, η = 3: the first bracket's 9 one-epoch results (≥ 6 parameters + 3) let the later
    // brackets draw from the model, so the resume replays model-based draws.
    let bohb = search(&[
        "--strategy",
        "bohb",
        "--max-epochs",
        "9",
        "--factor",
        "3",
        "--iterations",
        "1",
        "--cohort-size",
        "4",
    ]);
    let asha = search(&[
        "--strategy",
        "asha",
        "--trials",
        "9",
        "--max-epochs",
        "3",
        "--factor",
        "3",
        "--cohort-size",
        "2",
    ]);
    for (name, args, runs, kill_after) in [
        ("tpe", &tpe as &dyn Fn(&Path) -> Vec<String>, Some(9), 5),
        ("bohb", &bohb, Some(23), 12),
        // ASHA's promotions depend on the results: at least the 9 configurations.
        ("asha", &asha, None, 5),
    ] {
        let full = tmp.path().join(format!("{name}-full"));
        let st = bin().args(args(&full)).output().unwrap();
        let stdout = String::from_utf8_lossy(&st.stdout);
        assert!(
            st.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&st.stderr)
        );
        if name != "asha" {
            assert!(stdout.contains(&format!("{name} spent")), "{stdout}");
        }
        let want = records(&full);
        match runs {
            Some(n) => assert_eq!(want.len(), n, "{name}"),
            None => assert!(
                want.len() > 9 && want.iter().any(|r| !r["resume_from"].is_null()),
                "{name}: {} runs, some promoted",
                want.len()
            ),
        }
        let dir = tmp.path().join(format!("{name}-killed"));
        let st = bin()
            .args(args(&dir))
            .env("FASTFC_KILL_AFTER_RUNS", kill_after.to_string())
            .output()
            .unwrap();
        assert!(
            !st.status.success(),
            "{name}: the kill point was not reached"
        );
        assert_eq!(journal_lines(&dir), kill_after);
        let st = bin().args(args(&dir)).arg("--resume").output().unwrap();
        let stdout = String::from_utf8_lossy(&st.stdout);
        assert!(
            st.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&st.stderr)
        );
        assert_eq!(
            stdout.matches("(from journal)").count(),
            kill_after,
            "{name}"
        );
        assert_eq!(records(&dir), want, "{name}: resumed study differs");
        assert_eq!(
            summary(&dir),
            summary(&full),
            "{name}: summary.json differs"
        );
        assert_eq!(best_model(&dir), best_model(&full), "{name}: best/ differs");
    }
    // Another cohort size would propose other TPE cohorts: refused, naming the setting.
    let mut other = tpe(&tmp.path().join("tpe-full"));
    let at = other.iter().position(|a| a == "--cohort-size").unwrap();
    other[at + 1] = "4".into();
    let st = bin().args(other).arg("--resume").output().unwrap();
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(!st.status.success() && err.contains("tpe was"), "{err}");
}

/// Trial `i` of a made-up study for importance: deterministic, well-spread values
/// (golden-ratio sequences), the learning rate drawn log-uniformly from [5e-4, 2.5e-3] and
/// driving the accuracy, the activation a little (silu +0.004), dropout not at all.
fn importance_record(i: u64) -> fastfc::results::journal::RunRecord {
    use fastfc::model::Activation;
    let u = (i as f64 * 0.618_034).fract();
    let v = (i as f64 * 0.414_214 + 0.3).fract();
    let mut r = run_record(i);
    let hp = &mut r.request.hp;
    hp.learning_rate = (5e-4 * 5f64.powf(u)) as f32;
    hp.dropout = (0.4 * v) as f32;
    hp.activation = [
        Activation::Relu,
        Activation::Silu,
        Activation::Gelu,
        Activation::Elu,
    ][(i % 4) as usize];
    let silu = hp.activation == Activation::Silu;
    r.val_accuracy = 0.85 - 0.3 * (u - 0.7).powi(2) + if silu { 0.004 } else { 0.0 };
    r
}

/// A search space from its TOML.
fn space(toml: &str) -> fastfc::space::SearchSpace {
    fastfc::space::SearchSpace::parse(Path::new("space.toml"), toml).unwrap()
}

/// What mattered: an objective driven by the learning rate (and a little by the activation)
/// makes the learning rate the most important parameter, the activation next; a parameter
/// the study never varied has importance 0; importances sum to 1; under 10 trials there is no
/// estimate.
#[test]
fn importance_ranks_what_drives_the_objective() {
    use fastfc::report::importance::importances;
    let records: Vec<_> = (0..200).map(importance_record).collect();
    let log = space("[learning_rate]\nloguniform = [5e-4, 2.5e-3]\n");
    let imp = importances(&records, &log).unwrap();
    let of = |p: &str| imp.iter().find(|x| x.0 == p).unwrap().1;
    assert_eq!(imp[0].0, "learning_rate", "{imp:?}");
    assert!(of("learning_rate") > 0.5, "{imp:?}");
    assert!(of("activation") > of("dropout"), "{imp:?}");
    for p in ["optimizer", "hidden layers", "width"] {
        assert_eq!(of(p), 0.0, "{p} never varied: {imp:?}");
    }
    assert!((imp.iter().map(|x| x.1).sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(importances(&records[..9], &log).is_none());
}

/// Each numeric parameter's density is estimated on the scale the study's space draws it: on
/// the logarithms of a `loguniform` parameter, on the values themselves of a `uniform` one. So
/// the same records give other importances under the two spaces, and each space's importances
/// are those of the other space on records whose values are the logarithms (or exponentials)
/// of these: the estimate depends on the values only up to an affine map.
#[test]
fn importance_follows_the_space_s_scale_of_each_parameter() {
    use fastfc::report::importance::importances;
    // Values snapped to 50-point grids (in ln for the learning rate, linear for dropout), so
    // none sits at the edge of an estimator's bin, where the f32 rounding of the maps below
    // could move it into the next.
    let records: Vec<_> = (0..200)
        .map(importance_record)
        .map(|mut r| {
            let hp = &mut r.request.hp;
            let k = ((hp.learning_rate as f64 / 5e-4).ln() / 5f64.ln() * 49.0).round();
            hp.learning_rate = (5e-4 * 5f64.powf(k / 49.0)) as f32;
            hp.dropout = (0.4 * ((hp.dropout as f64 / 0.4 * 49.0).round() + 1.0) / 50.0) as f32;
            r
        })
        .collect();
    let log = space(
        "[learning_rate]\nloguniform = [5e-4, 2.5e-3]\n[dropout]\nloguniform = [1e-3, 0.4]\n",
    );
    let uniform =
        space("[learning_rate]\nuniform = [5e-4, 2.5e-3]\n[dropout]\nuniform = [0.0, 0.4]\n");
    // Each value through `lr` and `dropout`, maps that keep the f32 rounding far below a grid step.
    let mapped = |lr: &dyn Fn(f64) -> f64, dropout: &dyn Fn(f64) -> f64| -> Vec<_> {
        let mut rs = records.clone();
        for r in &mut rs {
            let hp = &mut r.request.hp;
            hp.learning_rate = lr(hp.learning_rate as f64) as f32;
            hp.dropout = dropout(hp.dropout as f64) as f32;
        }
        rs
    };
    let on_log = importances(&records, &log).unwrap();
    let on_values = importances(&records, &uniform).unwrap();
    // ln(x) + 10 and exp(k x): positive, and affine in ln x and in x.
    let ln = |x: f64| x.ln() + 10.0;
    let logs = importances(&mapped(&ln, &ln), &uniform).unwrap();
    let exps = importances(&mapped(&|x| (1e3 * x).exp(), &|x| (10.0 * x).exp()), &log).unwrap();
    let close = |a: &[(&str, f64)], b: &[(&str, f64)]| {
        a.iter().all(|(p, v)| {
            let w = b.iter().find(|x| x.0 == *p).unwrap().1;
            (v - w).abs() < 1e-6
        })
    };
    assert!(close(&on_log, &logs), "{on_log:?}\nvs {logs:?}");
    assert!(close(&on_values, &exps), "{on_values:?}\nvs {exps:?}");
    let lr = |imp: &[(&str, f64)]| imp.iter().find(|x| x.0 == "learning_rate").unwrap().1;
    assert!(
        (lr(&on_log) - lr(&on_values)).abs() > 5e-4,
        "the scale made no difference: {on_log:?}\nvs {on_values:?}"
    );
}

/// `fastfc report` reads each study's space from study.json (TOML; none, "" or text of an older
/// fastfc, with a note, mean the default space): a log-uniform learning rate gets a log axis in
/// by_hyperparameter. Learning rate and dropout have panels there, and the studies' legend lies
/// below every point. Under 10 trials the importance plot is not written and a line says why.
#[test]
fn report_follows_the_study_space_and_needs_10_trials_for_importance() {
    use fastfc::results::journal::Journal;
    let tmp = tempfile::tempdir().unwrap();
    let study = |name: &str, space: Option<&str>, trials: u64| {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        let mut cfg = serde_json::json!({"strategy": "random"});
        if let Some(s) = space {
            cfg["space"] = s.into();
        }
        std::fs::write(dir.join("study.json"), cfg.to_string()).unwrap();
        let mut j = Journal::open(&dir).unwrap();
        for i in 0..trials {
            j.append(&importance_record(i)).unwrap();
        }
        dir
    };
    let report = |dir: &Path| {
        let st = bin().arg("report").arg(dir).output().unwrap();
        let (out, err) = (
            String::from_utf8_lossy(&st.stdout).into_owned(),
            String::from_utf8_lossy(&st.stderr).into_owned(),
        );
        assert!(st.status.success(), "{out}\n{err}");
        let svg = std::fs::read_to_string(dir.join("by_hyperparameter.svg")).unwrap();
        (out, err, svg)
    };
    let note = "reading learning rate and dropout on the default space's scales";
    let log = study(
        "log",
        Some("[learning_rate]\nloguniform = [5e-4, 2.5e-3]\n"),
        12,
    );
    let (out, err, svg) = report(&log);
    assert!(!err.contains(note), "{err}");
    assert!(log.join("importance.svg").is_file(), "{out}");
    assert!(!out.contains("not written"), "{out}");
    for panel in [
        "by learning rate (log scale)",
        "by dropout",
        "by activation",
    ] {
        assert!(
            svg.contains(&format!("validation accuracy {panel}")),
            "{panel}"
        );
    }
    // Every point (radius 3) lies above the legend's label.
    let attr = |tag: &str, key: &str| -> f64 {
        let at = tag.find(&format!(" {key}=\"")).unwrap() + key.len() + 3;
        tag[at..].split('"').next().unwrap().parse().unwrap()
    };
    let tags: Vec<&str> = svg.split('<').collect();
    let lowest_point = tags
        .iter()
        .filter(|t| t.starts_with("circle") && t.contains(" r=\"3\""))
        .map(|t| attr(t, "cy"))
        .fold(0.0, f64::max);
    let label = tags
        .iter()
        .find(|t| t.starts_with("text") && t.contains("random (log)"))
        .unwrap();
    assert!(lowest_point + 10.0 < attr(label, "y"), "{label}");

    for (name, space, noted) in [
        ("default", None, false),
        ("empty", Some(""), false),
        ("debug", Some("SearchSpace { layers: Choice([2.0]) }"), true),
        (
            "uniform",
            Some("[learning_rate]\nuniform = [5e-4, 2.5e-3]\n"),
            false,
        ),
    ] {
        let (_, err, svg) = report(&study(name, space, 12));
        assert_eq!(err.contains(note), noted, "{name}: {err}");
        assert!(
            svg.contains("validation accuracy by learning rate\n"),
            "{name}"
        );
        assert!(!svg.contains("(log scale)"), "{name}");
    }

    let few = study("few", None, 9);
    let (out, _, _) = report(&few);
    assert!(
        out.contains("importance.{svg,png} not written: importance needs at least 10 finished trials, and random (few) has 9"),
        "{out}"
    );
    assert!(
        out.contains("(9 finished trials; importance needs at least 10)"),
        "{out}"
    );
    assert!(!few.join("importance.svg").exists() && !few.join("importance.png").exists());
}

/// Every way a checkpoint can be wrong is an error that names the file, the run and the reason;
/// a valid one, even of zero parameters, reads back exactly.
#[test]
fn checkpoint_files_are_checked_before_use() {
    use fastfc::model::TrialState;
    use fastfc::results::journal::{checkpoint_path, read_checkpoint, write_checkpoint};
    let dir = tempfile::tempdir().unwrap();
    let state = TrialState {
        params: vec![1.5, -2.25, 3.0],
        m: vec![0.5; 3],
        v: vec![0.125; 3],
        step: 77,
        epochs: 4,
    };
    write_checkpoint(dir.path(), 3, &state).unwrap();
    let back = read_checkpoint(dir.path(), 3).unwrap();
    assert_eq!(
        (back.params, back.m, back.v, back.step, back.epochs),
        (
            state.params.clone(),
            state.m.clone(),
            state.v.clone(),
            77,
            4
        )
    );
    let path = checkpoint_path(dir.path(), 3);
    let good = std::fs::read(&path).unwrap();
    // A header, then a checksum over everything before it.
    let with_crc = |body: &[u8]| -> Vec<u8> {
        let mut b = body.to_vec();
        b.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        b
    };
    let header = |counts: [u64; 5]| -> Vec<u8> {
        let mut b = b"FFCCKPT2".to_vec();
        for c in counts {
            b.extend_from_slice(&c.to_le_bytes());
        }
        b
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("5 bytes", b"FFCCK".to_vec(), "not a fastfc checkpoint"),
        (
            "another file",
            b"PK\x03\x04 a zip file, say".to_vec(),
            "not a fastfc checkpoint",
        ),
        (
            "version 1",
            [b"FFCCKPT1".as_slice(), &good[8..]].concat(),
            "older fastfc",
        ),
        (
            "only the magic",
            b"FFCCKPT2".to_vec(),
            "shorter than a header",
        ),
        ("a cut header", good[..40].to_vec(), "shorter than a header"),
        (
            "a header without its checksum",
            good[..50].to_vec(),
            "shorter than a header",
        ),
        (
            "bad checksum",
            [&good[..good.len() - 1], &[good[good.len() - 1] ^ 1]].concat(),
            "checksum",
        ),
        (
            "a header claiming more than the file holds",
            with_crc(&[header([4, 3, 3, 77, 4]), good[48..good.len() - 4].to_vec()].concat()),
            "not what its header says",
        ),
    ];
    for (what, bytes, why) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let e = read_checkpoint(dir.path(), 3)
            .err()
            .unwrap_or_else(|| panic!("{what}: read as a checkpoint"))
            .to_string();
        assert!(
            e.contains(why) && e.contains("run 3") && e.contains("run-00003.bin"),
            "{what}: {e}"
        );
    }
    // The smallest valid checkpoint: a header of zero counts and its checksum.
    std::fs::write(&path, with_crc(&header([0, 0, 0, 5, 1]))).unwrap();
    let empty = read_checkpoint(dir.path(), 3).unwrap();
    assert!(empty.params.is_empty() && empty.m.is_empty() && empty.v.is_empty());
    assert_eq!((empty.step, empty.epochs), (5, 1));
}

/// TPE on a space of two configurations asked for four trials: the last two repeat one, and
/// stderr says so once, at the first repeat (not once per repeat, and not for a new one).
#[test]
fn tpe_on_a_space_smaller_than_its_trials_warns_once_and_repeats() {
    let tmp = tempfile::tempdir().unwrap();
    let space = tmp.path().join("space.toml");
    std::fs::write(
        &space,
        "[layers]\nchoice = [1]\n[units]\nchoice = [16]\n[dropout]\nchoice = [0.0, 0.2]\n\
         [learning_rate]\nchoice = [0.001]\n[activation]\nchoice = [\"relu\"]\n\
         [optimizer]\nchoice = [\"adam\"]\n",
    )
    .unwrap();
    let dir = tmp.path().join("tpe");
    let st = bin()
        .args([
            "search",
            "--strategy",
            "tpe",
            "--trials",
            "4",
            "--epochs",
            "1",
        ])
        .args(["--cohort-size", "1", "--startup-trials", "2", "--seed", "3"])
        .args(["--device", "cpu", "--threads", "1", "--out"])
        .arg(&dir)
        .arg("--space")
        .arg(&space)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(st.status.success(), "{err}");
    assert_eq!(
        err.matches("warning: tpe: no new configuration").count(),
        1,
        "{err}"
    );
    // Trials 0 and 1 are random draws, which find the two configurations; trial 2 is the
    // first that cannot.
    assert!(err.contains("100 draws (trial 2;"), "{err}");
    let recs = records(&dir);
    assert_eq!(recs.len(), 4);
    let dropouts: std::collections::BTreeSet<String> = recs
        .iter()
        .map(|r| r["hp"]["dropout"].to_string())
        .collect();
    assert_eq!(
        dropouts.len(),
        2,
        "both configurations are tried: {dropouts:?}"
    );
}
