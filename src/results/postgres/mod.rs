//! A study shared through PostgreSQL (`--storage postgresql://… --study NAME`): the journal's
//! semantics across processes and machines.
//!
//! Tables (schema version [`SCHEMA`], kept in `fastfc_schema`):
//! - `fastfc_studies`: one row per study: its name, settings (`StudyConfig`), search space (TOML),
//!   and once finished, its summary (the test split is scored once, by whoever finishes first).
//! - `fastfc_runs`: one row per proposed run: the request, who holds it (`worker`, `attempt`,
//!   `lease_until`) while it trains, and once done its record and checkpoint, written together in
//!   one transaction. Checkpoints live in the database, so workers need no shared file system.
//! - `fastfc_events`: the strategy's history in order: each proposal (its run ids and the capacity
//!   asked for) and each batch of observations. A worker rebuilds the strategy by replaying it,
//!   as `--resume` replays a journal; proposals and records take the study's row lock, so the
//!   sequence numbers are the order of commits.
//!
//! Claims: a worker takes expired claims first (`FOR UPDATE SKIP LOCKED`: runs a dead worker
//! held, trained again from their start, or from their checkpoint if a promotion), then asks the
//! strategy for new runs. A heartbeat renews its leases. A record is accepted only from the
//! claim's current holder (worker and attempt), so a run is recorded once even if a worker that
//! lost its lease finishes it later. Every value reaches SQL as a parameter.

pub mod conn;

use std::time::Duration;

use postgres::{Client, Transaction};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::TrialState;
use crate::results::journal::{self, RunRecord};
use crate::strategy::{Observation, Proposal, RunRequest, Strategy};
use crate::study::StudyConfig;
pub use conn::PgUrl;

/// The schema this fastfc writes and reads.
pub const SCHEMA: i32 = 1;

/// Key of the advisory lock that serialises creating the tables.
const SCHEMA_LOCK: i64 = 0x0fa5_7fc0;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS fastfc_schema (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS fastfc_studies (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    config jsonb NOT NULL,
    space text NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    -- Epochs trained by the study's recorded runs (the records' study_epochs).
    epochs bigint NOT NULL DEFAULT 0,
    -- The data every worker must train on (Dataset::fingerprint), set by the first.
    data text,
    summary jsonb
);
CREATE TABLE IF NOT EXISTS fastfc_runs (
    study bigint NOT NULL REFERENCES fastfc_studies(id) ON DELETE CASCADE,
    run_id bigint NOT NULL,
    request jsonb NOT NULL,
    state text NOT NULL CHECK (state IN ('claimed', 'done')),
    worker text,
    attempt integer NOT NULL DEFAULT 1,
    lease_until timestamptz,
    record jsonb,
    checkpoint bytea,
    PRIMARY KEY (study, run_id)
);
-- Checkpoints are float32 arrays that do not compress: store them out of line uncompressed,
-- without spending CPU on a compression attempt at every record.
ALTER TABLE fastfc_runs ALTER COLUMN checkpoint SET STORAGE EXTERNAL;
CREATE INDEX IF NOT EXISTS fastfc_runs_claimed ON fastfc_runs (study, lease_until) WHERE state = 'claimed';
CREATE TABLE IF NOT EXISTS fastfc_events (
    study bigint NOT NULL REFERENCES fastfc_studies(id) ON DELETE CASCADE,
    seq bigserial NOT NULL,
    kind text NOT NULL CHECK (kind IN ('propose', 'observe')),
    run_ids bigint[] NOT NULL,
    capacity bigint,
    PRIMARY KEY (study, seq)
);
";

// The statements of a claim and a record, prepared once per connection.
const LOCK: &str = "SELECT id FROM fastfc_studies WHERE id = $1 FOR UPDATE";
const RECLAIM: &str = "UPDATE fastfc_runs r SET worker = $2, attempt = r.attempt + 1,
        lease_until = now() + make_interval(secs => $3)
   FROM (SELECT run_id FROM fastfc_runs
          WHERE study = $1 AND state = 'claimed' AND lease_until < now()
          ORDER BY run_id LIMIT $4 FOR UPDATE SKIP LOCKED) x
  WHERE r.study = $1 AND r.run_id = x.run_id
RETURNING r.request, r.attempt";
const INSERT_RUNS: &str =
    "INSERT INTO fastfc_runs (study, run_id, request, state, worker, lease_until)
SELECT $1, x.run_id, x.request, 'claimed', $4, now() + make_interval(secs => $5)
  FROM unnest($2::bigint[], $3::jsonb[]) AS x(run_id, request)";
const PROPOSED: &str = "INSERT INTO fastfc_events (study, kind, run_ids, capacity)
VALUES ($1, 'propose', $2, $3) RETURNING seq";
const EVENTS: &str = "SELECT seq, kind, run_ids, capacity FROM fastfc_events
 WHERE study = $1 AND seq > $2 ORDER BY seq";
const RECORDS_OF: &str =
    "SELECT record FROM fastfc_runs WHERE study = $1 AND run_id = ANY($2) ORDER BY run_id";
// Locks the study and reads its clock and epoch count; the commit does not wait for the disk
// (see `record`).
const RECORD_LOCK: &str = "SELECT extract(epoch FROM now() - created)::float8, epochs,
       set_config('synchronous_commit', 'off', true)
  FROM fastfc_studies WHERE id = $1 FOR UPDATE";
const DONE: &str =
    "UPDATE fastfc_runs r SET state = 'done', checkpoint = x.ckpt, lease_until = NULL
   FROM unnest($2::bigint[], $3::bytea[], $4::int[]) AS x(run_id, ckpt, attempt)
  WHERE r.study = $1 AND r.run_id = x.run_id AND r.state = 'claimed'
    AND r.worker = $5 AND r.attempt = x.attempt
RETURNING r.run_id";
const SET_RECORDS: &str = "UPDATE fastfc_runs r SET record = x.record
   FROM unnest($2::bigint[], $3::jsonb[]) AS x(run_id, record)
  WHERE r.study = $1 AND r.run_id = x.run_id";
const SET_EPOCHS: &str = "UPDATE fastfc_studies SET epochs = $2 WHERE id = $1";
const OBSERVED: &str =
    "INSERT INTO fastfc_events (study, kind, run_ids) VALUES ($1, 'observe', $2)";

fn db(url: &PgUrl, what: &str) -> impl Fn(postgres::Error) -> Error {
    let (shown, what) = (url.shown.clone(), what.to_string());
    move |e| Error::Storage {
        msg: format!("{shown}: {what}: {}", conn::describe(&e)),
        transient: conn::transient(&e),
    }
}

/// Creates the tables if absent, or checks that their version is this fastfc's. Nothing is
/// written when the version is another's.
pub fn ensure_schema(client: &mut Client, url: &PgUrl, create: bool) -> Result<()> {
    let e = db(url, "preparing the fastfc tables");
    let mut t = client.transaction().map_err(&e)?;
    t.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .map_err(&e)?;
    let exists: bool = t
        .query_one("SELECT to_regclass('fastfc_schema') IS NOT NULL", &[])
        .map_err(&e)?
        .get(0);
    if exists {
        let v: Option<i32> = t
            .query_opt("SELECT max(version) FROM fastfc_schema", &[])
            .map_err(&e)?
            .and_then(|r| r.get(0));
        match v {
            Some(v) if v > SCHEMA => {
                return Err(Error::backend(
                    "postgresql",
                    format!(
                        "{}: the fastfc tables were written by a newer fastfc (schema {v}; this one reads schema {SCHEMA}): upgrade fastfc, or use another database",
                        url.shown
                    ),
                ))
            }
            Some(v) if v < SCHEMA => {
                return Err(Error::backend(
                    "postgresql",
                    format!(
                        "{}: the fastfc tables have schema {v}, older than this fastfc's {SCHEMA}; use another database",
                        url.shown
                    ),
                ))
            }
            Some(_) => return t.commit().map_err(&e),
            None => {}
        }
    }
    if !create {
        // A worker or a report only reads: it never creates tables.
        return Err(Error::flag(
            "--study",
            format!("{}: holds no fastfc studies; start one with `fastfc search --storage … --study NAME …`", url.shown),
        ));
    }
    t.batch_execute(CREATE).map_err(&e)?;
    t.execute(
        "INSERT INTO fastfc_schema (version) VALUES ($1)",
        &[&SCHEMA],
    )
    .map_err(&e)?;
    t.commit().map_err(&e)
}

/// One process's handle on a shared study.
pub struct SharedStudy {
    client: Client,
    pub url: PgUrl,
    pub name: String,
    pub id: i64,
    pub config: StudyConfig,
    /// The search space's TOML ("" for the default space).
    pub space: String,
    /// This process's name in claims: host, process id and a random tag.
    pub worker: String,
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    /// The last event the local strategy has applied.
    applied: i64,
    /// Statements prepared on this connection (a claim or record is then one round trip per
    /// statement instead of two).
    prepared: Cache,
}

type Cache = std::collections::HashMap<&'static str, postgres::Statement>;

/// `sql` prepared once per connection.
fn prep(
    t: &mut Transaction,
    cache: &mut Cache,
    sql: &'static str,
) -> std::result::Result<postgres::Statement, postgres::Error> {
    if let Some(s) = cache.get(sql) {
        return Ok(s.clone());
    }
    let s = t.prepare(sql)?;
    cache.insert(sql, s.clone());
    Ok(s)
}

/// A claimed run: the request, and which attempt at it this is (records must name it).
#[derive(Debug, Clone)]
pub struct Claimed {
    pub request: RunRequest,
    pub attempt: i32,
}

pub enum Claim {
    Runs(Vec<Claimed>),
    /// Runs are out with other workers and the strategy waits for them.
    Wait,
    /// Every run is recorded.
    Done,
}

fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

fn observation(r: &RunRecord) -> Observation {
    crate::study::observation(r)
}

impl SharedStudy {
    /// Opens study `name`: with `create` = Some((settings, space TOML)), creates it or joins it if
    /// it exists with the same settings (other settings are refused, naming them, and nothing is
    /// written); with None (a worker), it must exist.
    pub fn open(
        url: &PgUrl,
        name: &str,
        create: Option<(&StudyConfig, &str)>,
        lease: Duration,
    ) -> Result<SharedStudy> {
        if name.is_empty() {
            return Err(Error::flag(
                "--study",
                "an empty name: expected a study name",
            ));
        }
        if lease < Duration::from_secs(1) {
            return Err(Error::flag(
                "--lease",
                format!("{lease:?}: expected at least 1s (the heartbeat renews it every third)"),
            ));
        }
        let mut client = url.connect()?;
        ensure_schema(&mut client, url, create.is_some())?;
        let e = db(url, "opening the study");
        if let Some((cfg, space)) = create {
            let v = serde_json::to_value(cfg).expect("config serialises");
            client
                .execute(
                    "INSERT INTO fastfc_studies (name, config, space) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
                    &[&name, &v, &space],
                )
                .map_err(&e)?;
        }
        let row = client
            .query_opt(
                "SELECT id, config, space FROM fastfc_studies WHERE name = $1",
                &[&name],
            )
            .map_err(&e)?
            .ok_or_else(|| {
                Error::flag(
                    "--study",
                    format!(
                        "{name:?}: no such study in {}; start it with `fastfc search --storage … --study {name:?} …`",
                        url.shown
                    ),
                )
            })?;
        let id: i64 = row.get(0);
        let stored: Value = row.get(1);
        let stored_space: String = row.get(2);
        let config: StudyConfig = serde_json::from_value(stored.clone()).map_err(|err| {
            Error::backend(
                "postgresql",
                format!("{}: study {name:?}: settings fastfc cannot read ({err}); was it made by another fastfc version?", url.shown),
            )
        })?;
        if let Some((cfg, space)) = create {
            let now = serde_json::to_value(cfg).expect("config serialises");
            if now != stored || space != stored_space {
                let mut diffs: Vec<String> = stored
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, v)| now.get(k.as_str()) != Some(v))
                    .map(|(k, v)| format!("{k} was {v}, now {}", now[k.as_str()]))
                    .collect();
                if space != stored_space {
                    diffs.push("the search space differs".into());
                }
                return Err(Error::flag(
                    "--study",
                    format!(
                        "{name:?} exists in {} with other settings ({}); use the same flags, or another --study name",
                        url.shown,
                        diffs.join("; ")
                    ),
                ));
            }
        }
        Ok(SharedStudy {
            client,
            url: url.clone(),
            name: name.to_string(),
            id,
            config,
            space: stored_space,
            worker: worker_name(),
            lease,
            applied: 0,
            prepared: Cache::new(),
        })
    }

    fn err(&self, what: &str) -> impl Fn(postgres::Error) -> Error {
        db(&self.url, what)
    }

    /// A new connection, after a transient failure (the old one may be gone).
    pub fn reconnect(&mut self) -> Result<()> {
        self.client = self.url.connect()?;
        self.prepared.clear();
        Ok(())
    }

    /// Forgets what the local strategy has applied (after a failed transaction it may be ahead
    /// of the database; the caller rebuilds it).
    pub fn reset_replay(&mut self) {
        self.applied = 0;
    }

    /// Claims up to `capacity` runs: expired claims first, then the strategy's new proposals.
    /// `strategy` is brought up to date with every event since its last call; it must be the
    /// same fresh-built strategy each time (after [`SharedStudy::reset_replay`], a new one).
    pub fn claim(&mut self, strategy: &mut dyn Strategy, capacity: usize) -> Result<Claim> {
        let lease = self.lease.as_secs_f64();
        let (id, worker) = (self.id, self.worker.clone());
        let url = self.url.clone();
        let e = db(&url, "claiming runs");
        let cache = &mut self.prepared;
        let mut t = self.client.transaction().map_err(&e)?;
        let lock = prep(&mut t, cache, LOCK).map_err(&e)?;
        t.query_one(&lock, &[&id]).map_err(&e)?;
        let cap = capacity.min(i64::MAX as usize) as i64;
        let reclaim = prep(&mut t, cache, RECLAIM).map_err(&e)?;
        let again = t
            .query(&reclaim, &[&id, &worker, &lease, &cap])
            .map_err(&e)?;
        if !again.is_empty() {
            let mut out = vec![];
            for row in again {
                out.push(Claimed {
                    request: request_of(&url, row.get(0))?,
                    attempt: row.get(1),
                });
            }
            out.sort_by_key(|c| c.request.run_id);
            t.commit().map_err(&e)?;
            return Ok(Claim::Runs(out));
        }
        let applied = catch_up(&mut t, cache, &url, id, self.applied, strategy);
        self.applied = applied?;
        match strategy.propose(capacity) {
            Proposal::Done => {
                t.commit().map_err(&e)?;
                Ok(Claim::Done)
            }
            Proposal::Wait => {
                t.commit().map_err(&e)?;
                Ok(Claim::Wait)
            }
            Proposal::Run(reqs) => {
                let ids: Vec<i64> = reqs.iter().map(|q| q.run_id as i64).collect();
                let values: Vec<Value> = reqs
                    .iter()
                    .map(|q| serde_json::to_value(q).expect("request serialises"))
                    .collect();
                let insert = prep(&mut t, cache, INSERT_RUNS).map_err(&e)?;
                t.execute(&insert, &[&id, &ids, &values, &worker, &lease])
                    .map_err(&e)?;
                let propose = prep(&mut t, cache, PROPOSED).map_err(&e)?;
                let seq: i64 = t
                    .query_one(&propose, &[&id, &ids, &cap])
                    .map_err(&e)?
                    .get(0);
                t.commit().map_err(&e)?;
                self.applied = seq;
                Ok(Claim::Runs(
                    reqs.into_iter()
                        .map(|request| Claimed {
                            request,
                            attempt: 1,
                        })
                        .collect(),
                ))
            }
        }
    }

    /// The checkpoint of a recorded run (a promotion continues from it).
    pub fn checkpoint(&mut self, run_id: u64) -> Result<TrialState> {
        let (id, url) = (self.id, self.url.clone());
        let row = self
            .client
            .query_opt(
                "SELECT checkpoint FROM fastfc_runs WHERE study = $1 AND run_id = $2 AND state = 'done'",
                &[&id, &(run_id as i64)],
            )
            .map_err(self.err("reading a checkpoint"))?;
        let bytes: Option<Vec<u8>> = row.and_then(|r| r.get(0));
        let bytes = bytes.ok_or_else(|| {
            Error::backend(
                "postgresql",
                format!(
                    "{}: study {:?}: run {run_id} has no checkpoint",
                    url.shown, self.name
                ),
            )
        })?;
        journal::parse_checkpoint(&bytes).map_err(|why| {
            Error::backend(
                "postgresql",
                format!(
                    "{}: study {:?}: the checkpoint of run {run_id} is damaged ({why})",
                    url.shown, self.name
                ),
            )
        })
    }

    /// Records a cohort's finished runs, each with its checkpoint, and one observation event for
    /// them, in one transaction. A run whose claim this worker no longer holds (its lease expired
    /// and another worker took it) is skipped; returns the records written, with their study
    /// counters filled in.
    pub fn record(
        &mut self,
        done: Vec<(Claimed, RunRecord, TrialState)>,
    ) -> Result<Vec<RunRecord>> {
        let (id, worker, url) = (self.id, self.worker.clone(), self.url.clone());
        let e = db(&url, "recording runs");
        let cache = &mut self.prepared;
        let mut t = self.client.transaction().map_err(&e)?;
        // The commit does not wait for the WAL to reach the disk (a cohort's checkpoints are
        // megabytes): RECORD_LOCK sets synchronous_commit off for this transaction. Atomicity is
        // kept: should the server crash within the next fraction of a second, the whole
        // transaction is lost, the runs are still claimed by this worker, and they are trained
        // again when the lease expires; never half recorded, never twice.
        // One statement for the whole cohort; a row is updated only for the claim's current holder.
        let (mut ids, mut ckpts, mut attempts) = (vec![], vec![], vec![]);
        let mut pending = vec![];
        for (c, rec, ckpt) in done {
            ids.push(rec.request.run_id as i64);
            attempts.push(c.attempt);
            ckpts.push(journal::encode_checkpoint(&ckpt));
            pending.push(rec);
        }
        let done_stmt = prep(&mut t, cache, DONE).map_err(&e)?;
        let accepted: std::collections::HashSet<i64> = t
            .query(&done_stmt, &[&id, &ids, &ckpts, &attempts, &worker])
            .map_err(&e)?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        // Then the study's lock, for its clock, its epoch count and its events: held from here to
        // the commit, not while the checkpoints upload.
        let lock = prep(&mut t, cache, RECORD_LOCK).map_err(&e)?;
        let row = t.query_one(&lock, &[&id]).map_err(&e)?;
        let study_seconds: f64 = row.get(0);
        let mut study_epochs = row.get::<_, i64>(1) as usize;
        let mut written = vec![];
        for mut rec in pending {
            rec.study_seconds = study_seconds;
            if accepted.contains(&(rec.request.run_id as i64)) {
                study_epochs += rec.history.len();
                rec.study_epochs = study_epochs;
                written.push(rec);
            } else {
                eprintln!(
                    "note: run {} was taken over by another worker (this worker's lease expired); its record is theirs",
                    rec.request.run_id
                );
            }
        }
        if !written.is_empty() {
            let ids: Vec<i64> = written.iter().map(|r| r.request.run_id as i64).collect();
            let values: Vec<Value> = written
                .iter()
                .map(|r| serde_json::to_value(r).expect("record serialises"))
                .collect();
            let set = prep(&mut t, cache, SET_RECORDS).map_err(&e)?;
            t.execute(&set, &[&id, &ids, &values]).map_err(&e)?;
            let epochs = prep(&mut t, cache, SET_EPOCHS).map_err(&e)?;
            t.execute(&epochs, &[&id, &(study_epochs as i64)])
                .map_err(&e)?;
            let observed = prep(&mut t, cache, OBSERVED).map_err(&e)?;
            t.execute(&observed, &[&id, &ids]).map_err(&e)?;
        }
        t.commit().map_err(&e)?;
        Ok(written)
    }

    /// Checks that this process trains on the study's data (the first process to ask sets it):
    /// workers that loaded other data (another folder, the embedded copy instead of the files)
    /// would record runs that are not comparable. Names `--data-dir` when they differ.
    pub fn check_data(&mut self, fingerprint: &str) -> Result<()> {
        let id = self.id;
        let e = self.err("checking the study's data");
        let stored: String = self
            .client
            .query_one(
                "UPDATE fastfc_studies SET data = coalesce(data, $2) WHERE id = $1 RETURNING data",
                &[&id, &fingerprint],
            )
            .map_err(e)?
            .get(0);
        if stored != fingerprint {
            return Err(Error::flag(
                "--data-dir",
                format!(
                    "study {:?} trains on other data ({stored}) than this process loaded ({fingerprint}); every worker needs the same data (the same --data file or Fashion-MNIST files, or all the embedded copy)",
                    self.name
                ),
            ));
        }
        Ok(())
    }

    /// Renews this worker's leases (the heartbeat, on its own connection).
    pub fn heartbeat(
        client: &mut Client,
        study: i64,
        worker: &str,
        runs: &[i64],
        lease: Duration,
    ) -> std::result::Result<u64, postgres::Error> {
        // Only the runs this worker is training now: a run whose record was lost (a server crash
        // right after an unflushed commit) then expires and is trained again, instead of staying
        // leased to a worker that thinks it is done. Rows being recorded right now are skipped,
        // so the heartbeat never waits on a record, nor deadlocks with one.
        client.execute(
            "UPDATE fastfc_runs r SET lease_until = now() + make_interval(secs => $4)
               FROM (SELECT run_id FROM fastfc_runs
                      WHERE study = $1 AND worker = $2 AND state = 'claimed' AND run_id = ANY($3)
                      FOR UPDATE SKIP LOCKED) x
              WHERE r.study = $1 AND r.run_id = x.run_id",
            &[&study, &worker, &runs, &lease.as_secs_f64()],
        )
    }

    /// Every recorded run, in run order.
    pub fn records(&mut self) -> Result<Vec<RunRecord>> {
        read_records(&mut self.client, &self.url, self.id)
    }

    /// The stored summary (after the first finisher scored the test split once).
    pub fn summary(&mut self) -> Result<Option<Value>> {
        let id = self.id;
        let row = self
            .client
            .query_one("SELECT summary FROM fastfc_studies WHERE id = $1", &[&id])
            .map_err(self.err("reading the summary"))?;
        Ok(row.get(0))
    }

    /// Stores the summary unless one is there already; returns the one that is stored.
    pub fn store_summary(&mut self, s: &Value) -> Result<Value> {
        let id = self.id;
        let e = self.err("storing the summary");
        let row = self
            .client
            .query_one(
                "UPDATE fastfc_studies SET summary = coalesce(summary, $2) WHERE id = $1 RETURNING summary",
                &[&id, s],
            )
            .map_err(e)?;
        Ok(row.get(0))
    }
}

fn request_of(url: &PgUrl, v: Value) -> Result<RunRequest> {
    serde_json::from_value(v).map_err(|err| {
        Error::backend(
            "postgresql",
            format!("{}: a run request fastfc cannot read ({err})", url.shown),
        )
    })
}

fn record_of(url: &PgUrl, v: Value) -> Result<RunRecord> {
    serde_json::from_value(v).map_err(|err| {
        Error::backend(
            "postgresql",
            format!("{}: a run record fastfc cannot read ({err})", url.shown),
        )
    })
}

/// Every recorded run of study `id`, in run order.
pub fn read_records(client: &mut Client, url: &PgUrl, id: i64) -> Result<Vec<RunRecord>> {
    let rows = client
        .query(
            "SELECT record FROM fastfc_runs WHERE study = $1 AND state = 'done' ORDER BY run_id",
            &[&id],
        )
        .map_err(db(url, "reading the records"))?;
    rows.into_iter().map(|r| record_of(url, r.get(0))).collect()
}

/// Applies the events after `applied` to the strategy, in order: a proposal must come out as it
/// did when it was made (same run ids), observations are fed as they were recorded. Returns the
/// last event applied.
fn catch_up(
    t: &mut Transaction,
    cache: &mut Cache,
    url: &PgUrl,
    id: i64,
    applied: i64,
    strategy: &mut dyn Strategy,
) -> Result<i64> {
    let e = db(url, "reading the study's events");
    let events_stmt = prep(t, cache, EVENTS).map_err(&e)?;
    let events = t.query(&events_stmt, &[&id, &applied]).map_err(&e)?;
    let mut last = applied;
    for ev in events {
        let seq: i64 = ev.get(0);
        let kind: String = ev.get(1);
        let ids: Vec<i64> = ev.get(2);
        if kind == "propose" {
            let cap: i64 = ev.get::<_, Option<i64>>(3).unwrap_or(i64::MAX);
            let got: Vec<i64> = match strategy.propose(cap as usize) {
                Proposal::Run(r) => r.iter().map(|q| q.run_id as i64).collect(),
                _ => vec![],
            };
            if got != ids {
                return Err(Error::backend(
                    "postgresql",
                    format!(
                        "{}: replaying the study, the strategy proposed runs {got:?} where the study holds {ids:?}; was it made by another fastfc version?",
                        url.shown
                    ),
                ));
            }
        } else {
            let records = prep(t, cache, RECORDS_OF).map_err(&e)?;
            let rows = t.query(&records, &[&id, &ids]).map_err(&e)?;
            let mut recs = rows
                .into_iter()
                .map(|r| record_of(url, r.get(0)))
                .collect::<Result<Vec<_>>>()?;
            // In the order they were recorded.
            recs.sort_by_key(|r| ids.iter().position(|&i| i == r.request.run_id as i64));
            strategy.observe(&recs.iter().map(observation).collect::<Vec<_>>());
        }
        last = seq;
    }
    Ok(last)
}
