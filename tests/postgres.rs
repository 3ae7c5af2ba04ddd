//! Studies shared through a real PostgreSQL server (`--storage`, `fastfc worker`): workers that
//! share a study record what one process records; a worker SIGKILLed in the middle of a cohort
//! costs nothing (its runs return to the pool when its lease expires); Hyperband waits at its
//! barriers and ASHA promotes across workers; the failures a user meets are named (server
//! unreachable, wrong password, a newer schema, other settings) with nothing written; the
//! password appears nowhere; a hostile study name is only ever a parameter; TLS with
//! `sslmode=require`, `verify-ca` and `verify-full` against a certificate the test makes.
//!
//! They need a server: `eval "$(scripts/pg-start.sh)"` starts a private one and sets
//! `FASTFC_TEST_PG` (and `FASTFC_TEST_PG_DATA`); `.ci/run` does that and runs them with
//! `--include-ignored`. Each test works in a database of its own.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fastfc::results::journal::RunRecord;

const NEEDS: &str = "needs postgresql: FASTFC_TEST_PG from scripts/pg-start.sh";

fn admin_url() -> String {
    std::env::var("FASTFC_TEST_PG").unwrap_or_else(|_| {
        panic!("FASTFC_TEST_PG is not set: start a server with eval \"$(scripts/pg-start.sh)\"")
    })
}

fn password() -> String {
    let u = admin_url();
    let userinfo = u.split("://").nth(1).unwrap().split('@').next().unwrap();
    userinfo.split_once(':').unwrap().1.to_string()
}

fn admin() -> postgres::Client {
    postgres::Client::connect(&admin_url(), postgres::NoTls).expect("connect to FASTFC_TEST_PG")
}

/// A fresh database for one test; its URL. The name holds the process id, so two runs of the
/// suite against one server (cargo-mutants' `-j 2`) never share a database.
fn fresh_db(tag: &str) -> String {
    let name = format!("fastfc_t_{tag}_{}", std::process::id());
    let mut c = admin();
    // The name is the test's own constant tag and a number: DDL takes no parameters.
    c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    with_db(&admin_url(), &name)
}

/// The URL with another database name.
fn with_db(url: &str, db: &str) -> String {
    let (head, query) = url.split_once('?').unwrap_or((url, ""));
    let base = &head[..head.rfind('/').unwrap()];
    if query.is_empty() {
        format!("{base}/{db}")
    } else {
        format!("{base}/{db}?{query}")
    }
}

fn client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fastfc"));
    c.args(args)
        .env("FASTFC_NO_PROGRESS", "1")
        .env("FASTFC_NO_SYSTEM_DATA", "1")
        .env_remove("FASTFC_KILL_AFTER_RUNS");
    c
}

fn run(args: &[&str]) -> (i32, String) {
    let o: Output = cmd(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

fn spawn(args: &[&str]) -> Child {
    cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a process, at most 3 minutes (a study that never completes fails the test instead
/// of hanging it).
fn finish(mut c: Child) -> (i32, String) {
    let t = Instant::now();
    while c.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(180) {
            let _ = c.kill();
            let o = c.wait_with_output().unwrap();
            panic!(
                "still running after 3 minutes:\n{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = c.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// The runs a `fastfc worker` says it recorded.
fn recorded_by_worker(text: &str) -> usize {
    text.split("recorded ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'recorded N runs' in:\n{text}"))
}

/// What a run produced, without its clocks (wall times and study counters depend on who ran it
/// and when).
fn key(r: &RunRecord) -> String {
    format!(
        "{:?} start {} {:?} best {} epochs {} {} {} {:?}",
        r.request,
        r.start_epoch,
        r.status,
        r.best_epoch,
        r.epochs_trained,
        r.val_loss,
        r.val_accuracy,
        r.history
    )
}

fn shared_records(url: &str, study: &str) -> Vec<RunRecord> {
    let mut c = client(url);
    let rows = c
        .query(
            "SELECT r.record FROM fastfc_runs r JOIN fastfc_studies s ON s.id = r.study
              WHERE s.name = $1 AND r.state = 'done' ORDER BY r.run_id",
            &[&study],
        )
        .unwrap();
    rows.into_iter()
        .map(|r| serde_json::from_value(r.get::<_, serde_json::Value>(0)).unwrap())
        .collect()
}

/// Waits until `study` exists in the database (a worker may join only then).
fn wait_for_study(url: &str, study: &str) {
    let t = Instant::now();
    let mut c = client(url);
    loop {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE tablename = 'fastfc_studies'",
                &[],
            )
            .unwrap()
            .get(0);
        if n == 1 {
            let k: i64 = c
                .query_one(
                    "SELECT count(*) FROM fastfc_studies WHERE name = $1",
                    &[&study],
                )
                .unwrap()
                .get(0);
            if k == 1 {
                return;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "study {study} never appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const RANDOM: &[&str] = &[
    "--strategy",
    "random",
    "--trials",
    "16",
    "--epochs",
    "2",
    "--seed",
    "8",
    "--threads",
    "1",
];

/// The same search in one process with the file journal: the reference records.
fn reference(args: &[&str], dir: &Path) -> Vec<RunRecord> {
    let out = dir.join("reference");
    let mut a = vec!["search", "--out", out.to_str().unwrap()];
    a.extend_from_slice(args);
    let (code, text) = run(&a);
    assert_eq!(code, 0, "{text}");
    fastfc::results::journal::read(&out).unwrap()
}

fn assert_same_runs(what: &str, got: &[RunRecord], want: &[RunRecord]) {
    let g: Vec<String> = got.iter().map(key).collect();
    let w: Vec<String> = want.iter().map(key).collect();
    assert_eq!(g.len(), w.len(), "{what}: run counts");
    for (a, b) in g.iter().zip(&w) {
        assert_eq!(a, b, "{what}");
    }
}

#[test]
#[ignore = "needs postgresql: FASTFC_TEST_PG from scripts/pg-start.sh"]
fn two_workers_share_a_random_search_and_record_what_one_process_does() {
    let _ = NEEDS;
    let url = fresh_db("two_workers");
    let tmp = tempfile::tempdir().unwrap();
    let want = reference(RANDOM, tmp.path());
    let out = tmp.path().join("shared");
    // The shared search's flags, writing to `out`.
    fn search_args<'a>(url: &'a str, out: &'a Path) -> Vec<&'a str> {
        let mut a = vec!["search", "--storage", url, "--study", "random-2"];
        a.extend_from_slice(&["--cohort-size", "2", "--out", out.to_str().unwrap()]);
        a.extend_from_slice(RANDOM);
        a
    }
    let search = spawn(&search_args(&url, &out));
    wait_for_study(&url, "random-2");
    let worker = spawn(&[
        "worker",
        "--storage",
        &url,
        "--study",
        "random-2",
        "--cohort-size",
        "2",
        "--threads",
        "1",
    ]);
    let (wc, wtext) = finish(worker);
    let (sc, stext) = finish(search);
    assert_eq!(wc, 0, "worker: {wtext}");
    assert_eq!(sc, 0, "search: {stext}");
    let got = shared_records(&url, "random-2");
    assert_same_runs("2 workers vs 1 process", &got, &want);
    // Each run once, and the two processes split them.
    let mut c = client(&url);
    let per: BTreeMap<String, i64> = c
        .query(
            "SELECT worker, count(*) FROM fastfc_runs GROUP BY worker",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(per.values().sum::<i64>(), 16, "{per:?}");
    assert!(
        recorded_by_worker(&wtext) >= 1,
        "the worker trained nothing: {wtext}"
    );
    // The search wrote the study's results, the same as the single process's.
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 17, "{csv}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("reference/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(s["best"], r["best"]);
    assert_eq!(s["test_accuracy"], r["test_accuracy"]);
    assert!(out.join("best/model.safetensors").exists());
    // The finished study run again: nothing to train, and the test score is the stored one.
    let again = tmp.path().join("again");
    let (code, text) = run(&search_args(&url, &again));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("kept from the study's summary"), "{text}");
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(again.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(t["test_accuracy"], s["test_accuracy"]);
    // The report reads the shared study.
    let plots = tmp.path().join("plots");
    let (code, text) = run(&[
        "report",
        "--storage",
        &url,
        "--study",
        "random-2",
        "--out",
        plots.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(plots.join("convergence.svg").exists(), "{text}");
    assert!(text.contains("random (random-2)"), "{text}");
}

/// Three workers, one SIGKILLed while it holds a cohort: the others take its runs over when its
/// lease expires; the study completes with every run recorded once, equal to one process's.
#[test]
#[ignore = "needs postgresql: FASTFC_TEST_PG from scripts/pg-start.sh"]
fn a_worker_killed_in_the_middle_of_a_cohort_costs_nothing() {
    let url = fresh_db("kill");
    let tmp = tempfile::tempdir().unwrap();
    let want = reference(RANDOM, tmp.path());
    let out = tmp.path().join("shared");
    let mut a = vec![
        "search",
        "--storage",
        &url,
        "--study",
        "kill",
        "--cohort-size",
        "2",
        "--lease",
        "2s",
        "--out",
        out.to_str().unwrap(),
    ];
    a.extend_from_slice(RANDOM);
    let search = spawn(&a);
    wait_for_study(&url, "kill");
    let worker = |_: usize| {
        spawn(&[
            "worker",
            "--storage",
            &url,
            "--study",
            "kill",
            "--cohort-size",
            "2",
            "--lease",
            "2s",
            "--threads",
            "1",
        ])
    };
    let mut victim = worker(0);
    let other = worker(1);
    // Kill the victim once it holds a claim: in the middle of training a cohort.
    let pid = victim.id();
    let mut c = client(&url);
    let t = Instant::now();
    loop {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM fastfc_runs WHERE state = 'claimed' AND worker LIKE $1",
                &[&format!("%:{pid}:%")],
            )
            .unwrap()
            .get(0);
        if n > 0 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the victim never claimed a run"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    victim.kill().unwrap(); // SIGKILL
    let _ = victim.wait();
    let (oc, otext) = finish(other);
    let (sc, stext) = finish(search);
    assert_eq!(oc, 0, "worker: {otext}");
    assert_eq!(sc, 0, "search: {stext}");
    let got = shared_records(&url, "kill");
    assert_same_runs("after a killed worker", &got, &want);
    let rows = c
        .query(
            "SELECT run_id, attempt, worker FROM fastfc_runs WHERE state = 'done' ORDER BY run_id",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 16);
    // The victim's runs were taken over: recorded by another worker on a later attempt.
    let retaken = rows.iter().filter(|r| r.get::<_, i32>(1) > 1).count();
    assert!(retaken >= 1, "no run was taken over from the killed worker");
    assert!(rows
        .iter()
        .all(|r| !r.get::<_, String>(2).contains(&format!(":{pid}:")) || r.get::<_, i32>(1) == 1));
    let events: i64 = c
        .query_one(
            "SELECT count(*) FROM fastfc_events e, unnest(e.run_ids) AS id WHERE kind = 'observe'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(events, 16, "each run observed once");
}

/// A worker whose lease expired while it was still training (no heartbeat here) loses its runs
/// to the worker that took them over: its late record is refused, the new holder's is written,
/// and each run is recorded once.
#[test]
#[ignore = "needs postgresql: FASTFC_TEST_PG from scripts/pg-start.sh"]
fn a_late_record_from_an_expired_claim_is_refused() {
    use fastfc::results::postgres::{Claim, PgUrl, SharedStudy};
    use fastfc::space::SearchSpace;
    use fastfc::study::StudyConfig;
    let raw = fresh_db("lease");
    let url = PgUrl::parse(&raw, "--storage").unwrap();
    let cfg = StudyConfig {
        strategy: "random".into(),
        seed: 1,
        trials: Some(3),
        epochs: 1,
        max_epochs: 1,
        factor: 3,
        iterations: 1,
        patience: None,
        batch_size: 32,
        image_size: 8,
        space: fastfc::space::DEFAULT_TOML.to_string(),
        data: None,
        tpe: None,
        asha: None,
    };
    let strategy = || fastfc::strategy::random::new(&SearchSpace::default(), 3, 1, 1).unwrap();
    let lease = Duration::from_secs(1);
    let mut a = SharedStudy::open(&url, "lease", Some((&cfg, "")), lease).unwrap();
    let mut b = SharedStudy::open(&url, "lease", None, lease).unwrap();
    // The first process sets the study's data; one that loaded other data is refused.
    a.check_data("8x8, crc32 00000001").unwrap();
    b.check_data("8x8, crc32 00000001").unwrap();
    let e = b.check_data("8x8, crc32 00000002").unwrap_err().to_string();
    assert!(
        e.contains("--data-dir") && e.contains("other data") && e.contains("00000001"),
        "{e}"
    );
    let (mut sa, mut sb) = (strategy(), strategy());
    let Claim::Runs(mine) = a.claim(&mut sa, 2).unwrap() else {
        panic!("a claims the first two runs")
    };
    assert_eq!(mine.len(), 2);
    // b gets the third; then, with a's lease not yet expired, nothing but waiting.
    let Claim::Runs(third) = b.claim(&mut sb, 2).unwrap() else {
        panic!("b claims the third run")
    };
    assert_eq!(third[0].request.run_id, 2);
    assert!(matches!(b.claim(&mut sb, 2).unwrap(), Claim::Wait));
    // A heartbeat renews only its own worker's claimed runs, and says how many.
    let mut beat = url.connect().unwrap();
    let renewed = |c: &mut postgres::Client, s: &SharedStudy| {
        SharedStudy::heartbeat(c, s.id, &s.worker, &[0, 1, 2], lease).unwrap()
    };
    assert_eq!(renewed(&mut beat, &b), 1);
    assert_eq!(renewed(&mut beat, &a), 2);
    std::thread::sleep(Duration::from_millis(1300));
    let Claim::Runs(taken) = b.claim(&mut sb, 2).unwrap() else {
        panic!("b takes a's expired runs over")
    };
    assert_eq!(
        taken
            .iter()
            .map(|c| (c.request.run_id, c.attempt))
            .collect::<Vec<_>>(),
        vec![(0, 2), (1, 2)]
    );
    let record = |c: &fastfc::results::postgres::Claimed, acc: f64| {
        let hp = &c.request.hp;
        let spec = fastfc::model::TrialSpec::new(c.request.trial_id, hp.clone(), 1, 64, 10);
        let rec = RunRecord {
            request: c.request.clone(),
            start_epoch: 0,
            status: fastfc::train::TrialStatus::Complete,
            best_epoch: 1,
            epochs_trained: 1,
            val_loss: 0.5,
            val_accuracy: acc,
            seconds: 0.1,
            study_seconds: 0.0,
            study_epochs: 0,
            history: vec![fastfc::train::EpochRecord {
                epoch: 1,
                loss: 0.6,
                accuracy: 0.7,
                val_loss: 0.5,
                val_accuracy: acc,
            }],
        };
        (c.clone(), rec, fastfc::model::TrialState::init(&spec))
    };
    // a finishes late: refused. b's records are written.
    assert!(a
        .record(mine.iter().map(|c| record(c, 0.1)).collect())
        .unwrap()
        .is_empty());
    let written = b
        .record(taken.iter().map(|c| record(c, 0.9)).collect())
        .unwrap();
    assert_eq!(written.len(), 2);
    assert_eq!(b.record(vec![record(&third[0], 0.9)]).unwrap().len(), 1);
    // A second record of the same claim is refused too.
    assert!(b.record(vec![record(&third[0], 0.2)]).unwrap().is_empty());
    let recs = b.records().unwrap();
    assert_eq!(recs.len(), 3);
    assert!(recs.iter().all(|r| r.val_accuracy == 0.9));
    assert!(matches!(b.claim(&mut sb, 2).unwrap(), Claim::Done));
    // The study's epoch counter runs on across workers and counts refused records not at all.
    let mut epochs: Vec<usize> = recs.iter().map(|r| r.study_epochs).collect();
    epochs.sort();
    assert_eq!(epochs, vec![1, 2, 3]);
    // A fresh strategy replays the whole history (proposals, then observations) to the end.
    let mut fresh = strategy();
    a.reset_replay();
    assert!(matches!(a.claim(&mut fresh, 2), Ok(Claim::Done)));
    // An error of the query itself is not worth another try.
    let e = client(&raw).execute("SELECT 1 / 0", &[]).unwrap_err();
    assert!(!fastfc::results::postgres::conn::transient(&e), "{e}");
    // A connection the server closed: the error says another try may work, and a new
    // connection carries on where the old one was.
    client(&raw)
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .unwrap();
    let e = b.records().unwrap_err();
    assert!(e.is_transient(), "{e}");
    b.reconnect().unwrap();
    assert_eq!(b.records().unwrap(), recs);
}

/// Synchronous Hyperband across two processes: workers wait at its barriers; promotions continue
/// from checkpoints stored in the database; the records equal one process's.
#[test]
#[ignore = "needs postgresql: FASTFC_TEST_PG from scripts/pg-start.sh"]
fn hyperband_waits_at_its_barriers_across_workers() {
    let url = fresh_db("hyperband");
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "--strategy",
        "hyperband",
        "--max-epochs",
        "3",
        "--factor",
        "3",
        "--iterations",
        "1",
        "--seed",
        "3",
        "--threads",
        "1",
        "--cohort-size",
        "2",
    ];
    let want = reference(&args, tmp.path());
    let out = tmp.path().join("shared");
    let mut a = vec![
        "search",
        "--storage",
        &url,
        "--study",
        "hb",
        "--out",
        out.to_str().unwrap(),
    ];
    a.extend_from_slice(&args);
    let search = spawn(&a);
    wait_for_study(&url, "hb");
    let worker = spawn(&[
        "worker",
        "--storage",
        &url,
        "--study",
        "hb",
        "--cohort-size",
        "2",
        "--threads",
        "1",
    ]);
    let (wc, wtext) = finish(worker);
    let (sc, stext) = finish(search);
    assert_eq!(wc, 0, "worker: {wtext}");
    assert_eq!(sc, 0, "search: {stext}");
    let got = shared_records(&url, "hb");
    assert!(got.iter().any(|r| r.request.resume_from.is_some()));
    assert!(
        recorded_by_worker(&wtext) >= 1,
        "the worker trained nothing: {wtext}"
    );
    assert_same_runs("hyperband, 2 workers", &got, &want);
}

/// ASHA across two processes: every run recorded once, every promotion continues a recorded run
/// of its trial from the rung below, and the study ends with its trials.
#[test]
#[ignore = "needs postgresql: FASTFC_TEST_PG from scripts/pg-start.sh"]
fn asha_promotes_across_workers() {
    let url = fresh_db("asha");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("shared");
    let search = spawn(&[
        "search",
        "--storage",
        &url,
        "--study",
        "asha",
        "--strategy",
        "asha",
        "--trials",
        "12",
        "--max-epochs",
        "4",
        "--factor",
        "2",
        "--cohort-size",
        "2",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    wait_for_study(&url, "asha");
    let worker = spawn(&[
        "worker",
        "--storage",
        &url,
        "--study",
        "asha",
        "--threads",
        "1",
    ]);
    let (wc, wtext) = finish(worker);
    let (sc, stext) = finish(search);
    assert_eq!(wc, 0, "worker: {wtext}");
    assert_eq!(sc, 0, "search: {stext}");
    let got = shared_records(&url, "asha");
    assert!(
        recorded_by_worker(&wtext) >= 1,
        "the worker trained nothing: {wtext}"
    );
    let trials: std::collections::BTreeSet<u64> = got.iter().map(|r| r.request.trial_id).collect();
    assert_eq!(trials.len(), 12);
    let by_id: BTreeMap<u64, &RunRecord> = got.iter().map(|r| (r.request.run_id, r)).collect();
    let mut promoted = 0;
    for r in &got {
        if let Some(from) = r.request.resume_from {
            promoted += 1;
            let src = by_id
                .get(&from)
                .expect("a promotion continues a recorded run");
            assert_eq!(src.request.trial_id, r.request.trial_id);
            assert_eq!(r.start_epoch, src.epochs_trained);
            assert!(r.request.epochs > src.request.epochs);
        }
    }
    assert!(promoted >= 2, "{promoted} promotions");
}

/// The failures a user meets, each named, none showing the password, and none writing anything.
#[test]
#[ignore = "needs postgresql: FASTFC_TEST_PG from scripts/pg-start.sh"]
fn bad_storage_is_named_and_writes_nothing() {
    let url = fresh_db("errors");
    let pw = password();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let search = |url: &str, trials: &str| {
        run(&[
            "search",
            "--storage",
            url,
            "--study",
            "s",
            "--strategy",
            "random",
            "--trials",
            trials,
            "--epochs",
            "1",
            "--threads",
            "1",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let check = |what: &str, (code, text): (i32, String), needles: &[&str]| {
        assert_ne!(code, 0, "{what}: succeeded:\n{text}");
        for n in needles {
            assert!(text.contains(n), "{what}: lacks {n:?}:\n{text}");
        }
        assert!(!text.contains(&pw), "{what}: shows the password:\n{text}");
        assert!(!text.contains("panicked"), "{what}: {text}");
    };
    // Nothing listens on port 1.
    let port = url
        .split('@')
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    check(
        "unreachable",
        search(&url.replace(&port, "127.0.0.1:1"), "2"),
        &[
            "--storage",
            "127.0.0.1:1",
            "Connection refused",
            "fastfc:***@",
        ],
    );
    check(
        "wrong password",
        search(&url.replace(&format!(":{pw}@"), ":wrong-pass@"), "2"),
        &["password authentication failed", "fastfc:***@"],
    );
    check(
        "not a URL",
        search("mysql://x@y/z", "2"),
        &["--storage", "expected a PostgreSQL URL"],
    );
    check(
        "bad sslmode",
        search(&url.replace("sslmode=disable", "sslmode=sometimes"), "2"),
        &["--storage", "sslmode=sometimes", "verify-full"],
    );
    assert!(!out.exists(), "a failed connection wrote {}", out.display());
    // A study that exists with other settings: refused, naming the setting; nothing changes.
    let (code, text) = search(&url, "2");
    assert_eq!(code, 0, "{text}");
    let before = shared_records(&url, "s");
    let (code, text) = search(&url, "3");
    assert!(!text.contains("search space differs"), "{text}");
    check(
        "other settings",
        (code, text),
        &["--study", "\"s\" exists", "trials was 2, now 3"],
    );
    let mut c = client(&url);
    let cfg: serde_json::Value = c
        .query_one("SELECT config FROM fastfc_studies WHERE name = 's'", &[])
        .unwrap()
        .get(0);
    assert_eq!(cfg["trials"], 2);
    assert_eq!(shared_records(&url, "s"), before);
    // A worker for a study that does not exist.
    check(
        "no such study",
        run(&["worker", "--storage", &url, "--study", "nope"]),
        &["--study", "\"nope\": no such study"],
    );
    // A worker or a report against a database without fastfc's tables: named, nothing created.
    let empty = fresh_db("empty");
    check(
        "empty database",
        run(&["worker", "--storage", &empty, "--study", "s"]),
        &["--study", "holds no fastfc studies"],
    );
    check(
        "report of an empty database",
        run(&[
            "report",
            "--storage",
            &empty,
            "--study",
            "s",
            "--out",
            "/tmp/x",
        ]),
        &["holds no fastfc studies"],
    );
    let n: i64 = client(&empty)
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'fastfc_%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "a worker created tables");
    // Tables of a newer or an older fastfc: refused before anything is written.
    for (tag, version, needles) in [
        (
            "newer",
            99,
            &["newer fastfc", "schema 99", "fastfc:***@"][..],
        ),
        (
            "older",
            0,
            &["schema 0, older than this fastfc", "fastfc:***@"][..],
        ),
    ] {
        let other = fresh_db(tag);
        let mut c = client(&other);
        c.batch_execute(&format!(
            "CREATE TABLE fastfc_schema (version integer NOT NULL); INSERT INTO fastfc_schema VALUES ({version})"
        ))
        .unwrap();
        check(tag, search(&other, "2"), needles);
        let tables: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'fastfc_%'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(tables, 1, "{tag}: only the other fastfc's own table");
    }
    // The password is in no file the study wrote, and not in the database's copy of the study.
    let all: Vec<String> = client(&url)
        .query("SELECT config::text || space FROM fastfc_studies", &[])
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    assert!(all.iter().all(|t| !t.contains(&pw)));
    for entry in walk(&out) {
        let bytes = std::fs::read(&entry).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&pw),
            "{} holds the password",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A study name full of quotes, semicolons and unicode is a name like any other: every value
/// reaches SQL as a parameter.
#[test]
#[ignore = "needs postgresql: FASTFC_TEST_PG from scripts/pg-start.sh"]
fn a_hostile_study_name_is_only_a_name() {
    let url = fresh_db("names");
    let name = "x'); DROP TABLE fastfc_runs; -- \"ü ñ 🚀\" ' OR '1'='1 $1 \\";
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let (code, text) = run(&[
        "search",
        "--storage",
        &url,
        "--study",
        name,
        "--strategy",
        "random",
        "--trials",
        "2",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    let mut c = client(&url);
    let names: Vec<String> = c
        .query("SELECT name FROM fastfc_studies", &[])
        .unwrap()
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, vec![name.to_string()]);
    assert_eq!(shared_records(&url, name).len(), 2);
    let (code, text) = run(&["worker", "--storage", &url, "--study", name]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("recorded 0 runs"), "{text}");
}

/// TLS through rustls against the test server, with a CA and a server certificate made here:
/// `require` encrypts, `verify-full` checks the chain and the host name, `verify-ca` only the
/// chain; a certificate from another CA is refused. The connection is TLS (pg_stat_ssl says so).
#[test]
#[ignore = "needs postgresql: FASTFC_TEST_PG from scripts/pg-start.sh"]
fn tls_require_verify_ca_and_verify_full() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let data = std::path::PathBuf::from(
        std::env::var("FASTFC_TEST_PG_DATA").expect("FASTFC_TEST_PG_DATA (scripts/pg-start.sh)"),
    );
    let make_ca = |cn: &str| {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        (cert, rcgen::Issuer::new(p, key))
    };
    let (ca, issuer) = make_ca("fastfc test CA");
    let (other_ca, _) = make_ca("another CA");
    let mut sp = rcgen::CertificateParams::new(vec!["db.fastfc.test".to_string()]).unwrap();
    sp.subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = sp.signed_by(&server_key, &issuer).unwrap();
    // The server reads its key as itself: the files go in its data folder, owned by it, 0600.
    let owner = std::fs::metadata(&data).unwrap();
    for (name, pem) in [
        ("fastfc-test.crt", server.pem()),
        ("fastfc-test.key", server_key.serialize_pem()),
    ] {
        let p = data.join(name);
        std::fs::write(&p, pem).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&p, Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    let mut a = admin();
    for q in [
        "ALTER SYSTEM SET ssl_cert_file = 'fastfc-test.crt'",
        "ALTER SYSTEM SET ssl_key_file = 'fastfc-test.key'",
        "ALTER SYSTEM SET ssl = on",
        "SELECT pg_reload_conf()",
    ] {
        a.batch_execute(q).unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let ca_file = tmp.path().join("ca.pem");
    let other_file = tmp.path().join("other.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&other_file, other_ca.pem()).unwrap();
    let base = fresh_db("tls");
    let plain = base.replace("?sslmode=disable", "");
    let url = |q: &str| format!("{plain}?{q}");
    let ssl_in_use = |u: &str| -> Result<bool, String> {
        let pg =
            fastfc::results::postgres::PgUrl::parse(u, "--storage").map_err(|e| e.to_string())?;
        let mut c = pg.connect().map_err(|e| e.to_string())?;
        Ok(c.query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0))
    };
    // The server may take a moment to load the certificate after the reload.
    let t = Instant::now();
    while ssl_in_use(&url("sslmode=require")) != Ok(true) {
        assert!(t.elapsed() < Duration::from_secs(10), "TLS never came up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ca_q = format!("sslrootcert={}", ca_file.display());
    assert_eq!(ssl_in_use(&url("sslmode=disable")), Ok(false));
    assert_eq!(
        ssl_in_use(&url(&format!("sslmode=verify-full&{ca_q}"))),
        Ok(true)
    );
    assert_eq!(
        ssl_in_use(&url(&format!("sslmode=verify-ca&{ca_q}"))),
        Ok(true)
    );
    // The certificate names 127.0.0.1 and db.fastfc.test, not localhost.
    let localhost = |q: &str| url(q).replace("127.0.0.1", "localhost");
    let e = ssl_in_use(&localhost(&format!("sslmode=verify-full&{ca_q}"))).unwrap_err();
    assert!(
        e.contains("not valid for name") || e.contains("NotValidForName"),
        "{e}"
    );
    assert_eq!(
        ssl_in_use(&localhost(&format!("sslmode=verify-ca&{ca_q}"))),
        Ok(true)
    );
    let e = ssl_in_use(&url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        other_file.display()
    )))
    .unwrap_err();
    assert!(
        e.contains("UnknownIssuer") || e.contains("unknown issuer"),
        "{e}"
    );
    assert!(!e.contains(&password()), "{e}");
    // A whole search over verify-full.
    let (code, text) = run(&[
        "search",
        "--storage",
        &url(&format!("sslmode=verify-full&{ca_q}")),
        "--study",
        "tls",
        "--strategy",
        "random",
        "--trials",
        "2",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--out",
        tmp.path().join("out").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{text}");
    // verify modes need the CA file.
    let e = ssl_in_use(&url("sslmode=verify-full")).unwrap_err();
    assert!(e.contains("sslrootcert"), "{e}");
}
