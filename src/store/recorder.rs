//! Recording a run: the run row at start, then events through a channel to a
//! writer task that batches them into transactions, then the final status.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use sqlx::pool::PoolConnection;
use sqlx::AnyPool;
use sqlx::{Any, Connection, Transaction};
use std::path::{Path, PathBuf};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::db::{now, Inner, Store};
use super::dialect::Dialect;
use super::params::numeric;
use super::process;
use crate::plan::{flatten_params, ExperimentPlan};
use crate::train::events::{Event, EventSink};

/// A batch is written when it is this old or this large, whichever comes first.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
pub const MAX_BATCH: usize = 2000;
/// How long `finish`, `flush` and `interrupt` wait for the writer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// Waits between attempts at writing a batch (about 31 s in all).
const WRITE_RETRIES_MS: [u64; 6] = [500, 1000, 2000, 4000, 8000, 16000];
/// Statements that bind an `Option<f64>` are not kept prepared. sqlx 0.8's
/// `Any` driver types a `None` f64 as PostgreSQL `float4`; a statement first
/// prepared with such a NULL would then refuse every later 8-byte value
/// ("incorrect binary data format"). Unnamed statements are typed per
/// execution, which costs one extra round trip per statement — once per
/// batch, every 200 ms.
const NULLABLE_REALS_PERSISTENT: bool = false;
/// Steps per multi-row INSERT: 7 parameters each, well under SQLite's limit
/// of 32 766 bound parameters and PostgreSQL's 65 535.
const STEPS_PER_INSERT: usize = 256;

/// What `Store::start_run` records about a new run. [`NewRun::new`] fills
/// everything from the plan; fields are public to override.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    /// The declared experiment (`plan.experiment`).
    pub experiment: String,
    pub source_path: PathBuf,
    pub source_text: String,
    pub plan: &'a ExperimentPlan,
    /// Flattened plan (`flatten_params(plan)`).
    pub params: Vec<(String, String)>,
    /// `k=v,k=v` for sweep points.
    pub sweep_point: Option<String>,
    /// The run's group (`plan.group_name()`): its name without the seed.
    pub group: String,
    /// The resolved device ("cpu", "cuda:0").
    pub device: String,
    pub seed: u64,
}

impl<'a> NewRun<'a> {
    pub fn new(
        plan: &'a ExperimentPlan,
        source_path: &Path,
        source_text: &str,
        device: &str,
    ) -> Self {
        NewRun {
            experiment: plan.experiment.clone(),
            source_path: source_path.to_path_buf(),
            source_text: source_text.to_string(),
            plan,
            params: flatten_params(plan),
            sweep_point: plan.sweep.as_ref().map(|s| {
                s.assignments
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            }),
            group: plan.group_name().to_string(),
            device: device.to_string(),
            seed: plan.seed,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunStatus {
    Finished,
    Failed(String),
    Interrupted,
}

impl RunStatus {
    fn parts(&self) -> (&'static str, Option<String>) {
        match self {
            RunStatus::Finished => ("FINISHED", None),
            RunStatus::Failed(msg) => ("FAILED", Some(msg.clone())),
            RunStatus::Interrupted => ("INTERRUPTED", Some("interrupted by the user".into())),
        }
    }
}

enum Msg {
    Event(Event, chrono::DateTime<chrono::Utc>),
    Flush(std_mpsc::SyncSender<Result<(), String>>),
    /// `close`: the recorder is done; `false` for an interrupt from a handle.
    Finish {
        status: RunStatus,
        note: Option<String>,
        reply: std_mpsc::SyncSender<Result<(), String>>,
        close: bool,
    },
}

/// Records one run. Implements [`EventSink`]: `emit` only queues the event.
/// Call [`RunRecorder::finish`] at the end; dropping it unfinished marks the
/// run FAILED (a panic or early return).
pub struct RunRecorder {
    run_id: i64,
    tx: mpsc::UnboundedSender<Msg>,
    // Keeps the runtime (and so the writer task) alive while recording.
    inner: Arc<Inner>,
    error: Arc<Mutex<Option<String>>>,
    finished: bool,
}

/// A cloneable handle for a Ctrl-C handler: flushes what was emitted and
/// marks the run INTERRUPTED. Usage with the `ctrlc` crate:
///
/// ```ignore
/// let handle = recorder.interrupt_handle();
/// ctrlc::set_handler(move || {
///     let _ = handle.interrupt();
///     std::process::exit(130);
/// })?;
/// ```
///
/// After an interrupt the run keeps its INTERRUPTED status: a later
/// `finish` only flushes remaining events.
#[derive(Clone)]
pub struct InterruptHandle {
    run_id: i64,
    tx: mpsc::UnboundedSender<Msg>,
}

impl InterruptHandle {
    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    /// Flushes queued events and marks the run INTERRUPTED; blocks until committed.
    pub fn interrupt(&self) -> Result<()> {
        self.interrupt_with("interrupted by a signal (Ctrl-C, SIGTERM or SIGHUP)")
    }

    /// Same with a custom note (stored in `runs.error`).
    pub fn interrupt_with(&self, note: &str) -> Result<()> {
        let (reply, rx) = std_mpsc::sync_channel(1);
        let msg = Msg::Finish {
            status: RunStatus::Interrupted,
            note: Some(note.into()),
            reply,
            close: false,
        };
        request(&self.tx, msg, rx, self.run_id)
    }
}

fn request(
    tx: &mpsc::UnboundedSender<Msg>,
    msg: Msg,
    rx: std_mpsc::Receiver<Result<(), String>>,
    run_id: i64,
) -> Result<()> {
    tx.send(msg)
        .map_err(|_| anyhow::anyhow!("the writer of run {run_id} has already stopped"))?;
    match rx.recv_timeout(REPLY_TIMEOUT) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(anyhow::anyhow!("recording run {run_id}: {e}")),
        Err(_) => Err(anyhow::anyhow!(
            "the writer of run {run_id} did not answer within {REPLY_TIMEOUT:?}"
        )),
    }
}

impl RunRecorder {
    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle {
            run_id: self.run_id,
            tx: self.tx.clone(),
        }
    }

    /// Blocks until every event emitted so far is committed.
    pub fn flush(&self) -> Result<()> {
        let (reply, rx) = std_mpsc::sync_channel(1);
        request(&self.tx, Msg::Flush(reply), rx, self.run_id)?;
        self.take_error()
    }

    /// Flushes everything, then records the final status and end time.
    /// Returns an error if any write failed during the run.
    pub fn finish(mut self, status: RunStatus) -> Result<()> {
        self.finished = true;
        let (reply, rx) = std_mpsc::sync_channel(1);
        request(
            &self.tx,
            Msg::Finish {
                status,
                note: None,
                reply,
                close: true,
            },
            rx,
            self.run_id,
        )?;
        self.take_error()
    }

    fn take_error(&self) -> Result<()> {
        match self.error.lock().ok().and_then(|mut e| e.take()) {
            Some(e) => Err(anyhow::anyhow!(
                "writing run {} to the run database {}: {e}",
                self.run_id,
                self.inner.target
            )),
            None => Ok(()),
        }
    }
}

impl Drop for RunRecorder {
    fn drop(&mut self) {
        if !self.finished {
            let (reply, rx) = std_mpsc::sync_channel(1);
            let status = RunStatus::Failed(
                "the run ended without a final status (panic or early return)".into(),
            );
            let _ = request(
                &self.tx,
                Msg::Finish {
                    status,
                    note: None,
                    reply,
                    close: true,
                },
                rx,
                self.run_id,
            );
        }
    }
}

impl EventSink for RunRecorder {
    fn emit(&self, event: Event) {
        // A closed writer (after finish) drops late events; nothing to slow down.
        let _ = self.tx.send(Msg::Event(event, chrono::Utc::now()));
    }
}

impl EventSink for InterruptHandle {
    fn emit(&self, event: Event) {
        let _ = self.tx.send(Msg::Event(event, chrono::Utc::now()));
    }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A group's identity across processes and machines: the experiment file's
/// hash and the group name (as migration 0003 computes it for old runs).
pub fn group_key(file_hash: &str, group: &str) -> String {
    format!("{file_hash}/{group}")
}

impl Store {
    /// Inserts the run as RUNNING (with its experiment and params) and starts
    /// its writer.
    pub fn start_run(&self, info: NewRun<'_>) -> Result<RunRecorder> {
        let plan_yaml = serde_yaml::to_string(info.plan).context("rendering the plan as YAML")?;
        let pool = self.pool().clone();
        let run_id = self
            .block_on(insert_run(&pool, self.dialect(), &info, &plan_yaml))
            .with_context(|| format!("recording a new run in {}", self.target()))?;
        Ok(self.spawn_writer(run_id))
    }

    pub(crate) fn spawn_writer(&self, run_id: i64) -> RunRecorder {
        let (tx, rx) = mpsc::unbounded_channel();
        let error = Arc::new(Mutex::new(None));
        let writer = Writer {
            pool: self.pool().clone(),
            dialect: self.dialect(),
            run_id,
            error: error.clone(),
            final_set: false,
        };
        self.inner.rt.spawn(writer.run(rx));
        RunRecorder {
            run_id,
            tx,
            inner: self.inner.clone(),
            error,
            finished: false,
        }
    }
}

async fn insert_run(
    pool: &AnyPool,
    dialect: Dialect,
    info: &NewRun<'_>,
    plan_yaml: &str,
) -> sqlx::Result<i64> {
    let mut tx = pool.begin_with(dialect.begin_write()).await?;
    let ts = now();
    let hash = sha256_hex(&info.source_text);
    // Inserted only when missing, so PostgreSQL's identity is not spent on
    // every run of a known file (ids stay dense: g1, g2, … as on SQLite);
    // ON CONFLICT covers the race with another process.
    sqlx::query(
        "INSERT INTO experiments (name, source_path, file_hash, source_text, created_at)
         SELECT $1, $2, $3, $4, $5
         WHERE NOT EXISTS (SELECT 1 FROM experiments WHERE name = $1 AND file_hash = $3)
         ON CONFLICT (name, file_hash) DO NOTHING",
    )
    .bind(&info.experiment)
    .bind(info.source_path.display().to_string())
    .bind(&hash)
    .bind(&info.source_text)
    .bind(&ts)
    .execute(&mut *tx)
    .await?;
    let experiment_id: i64 =
        sqlx::query_scalar("SELECT id FROM experiments WHERE name = $1 AND file_hash = $2")
            .bind(&info.experiment)
            .bind(&hash)
            .fetch_one(&mut *tx)
            .await?;
    // Another process running the same file's other seeds may create the group first.
    let key = group_key(&hash, &info.group);
    sqlx::query(
        "INSERT INTO run_groups (key, name, experiment_id, created_at)
         SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM run_groups WHERE key = $1)
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(&key)
    .bind(&info.group)
    .bind(experiment_id)
    .bind(&ts)
    .execute(&mut *tx)
    .await?;
    let group_id: i64 = sqlx::query_scalar("SELECT id FROM run_groups WHERE key = $1")
        .bind(&key)
        .fetch_one(&mut *tx)
        .await?;
    let pid = std::process::id();
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO runs (experiment_id, name, sweep_point, status, started_at, device, host, pid, proc_start,
                           crate_version, seed, plan_yaml, group_id)
         VALUES ($1, $2, $3, 'RUNNING', $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(experiment_id)
    .bind(&info.plan.name)
    .bind(&info.sweep_point)
    .bind(&ts)
    .bind(&info.device)
    .bind(process::hostname())
    .bind(i64::from(pid))
    .bind(process::own_token())
    .bind(env!("CARGO_PKG_VERSION"))
    // Seeds above i64::MAX keep their bits (read back as u64).
    .bind(info.seed as i64)
    .bind(plan_yaml)
    .bind(group_id)
    .fetch_one(&mut *tx)
    .await?;
    for (key, value) in &info.params {
        sqlx::query(
            "INSERT INTO params (run_id, key, value, num) VALUES ($1, $2, $3, $4)
             ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, num = excluded.num",
        )
        .persistent(NULLABLE_REALS_PERSISTENT)
        .bind(run_id)
        .bind(key)
        .bind(value)
        .bind(numeric(value))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(run_id)
}

struct Writer {
    pool: AnyPool,
    dialect: Dialect,
    run_id: i64,
    error: Arc<Mutex<Option<String>>>,
    /// A final status was recorded (by an interrupt); later ones don't override it.
    final_set: bool,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut batch: Vec<(Event, chrono::DateTime<chrono::Utc>)> = Vec::new();
        loop {
            let Some(first) = rx.recv().await else {
                self.write(&mut batch).await;
                return;
            };
            let mut control = None;
            let mut closed = false;
            match first {
                Msg::Event(e, ts) => batch.push((e, ts)),
                other => control = Some(other),
            }
            if control.is_none() {
                let deadline = Instant::now() + FLUSH_EVERY;
                while batch.len() < MAX_BATCH {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(Msg::Event(e, ts))) => batch.push((e, ts)),
                        Ok(Some(other)) => {
                            control = Some(other);
                            break;
                        }
                        Ok(None) => {
                            closed = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            self.write(&mut batch).await;
            match control {
                Some(Msg::Flush(reply)) => {
                    let _ = reply.send(Ok(()));
                }
                Some(Msg::Finish {
                    status,
                    note,
                    reply,
                    close,
                }) => {
                    let res = self.finish(&status, note).await.map_err(|e| e.to_string());
                    let _ = reply.send(res);
                    if close {
                        return;
                    }
                }
                _ => {}
            }
            if closed {
                return;
            }
        }
    }

    async fn write(&mut self, batch: &mut Vec<(Event, chrono::DateTime<chrono::Utc>)>) {
        if batch.is_empty() {
            return;
        }
        // A transient failure (SQLite: a lock held past the busy timeout;
        // PostgreSQL: a dropped connection, a server restart) should not lose
        // rows: the batch is retried whole (it is one transaction) with
        // backoff for about half a minute while new events queue up.
        let mut result = self.write_once(batch).await;
        for wait_ms in WRITE_RETRIES_MS {
            if result.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            result = self.write_once(batch).await;
        }
        if let Err(e) = result {
            if let Ok(mut slot) = self.error.lock() {
                slot.get_or_insert_with(|| format!("{} events lost: {e}", batch.len()));
            }
        }
        batch.clear();
    }

    async fn write_once(
        &self,
        batch: &[(Event, chrono::DateTime<chrono::Utc>)],
    ) -> sqlx::Result<()> {
        let mut conn = self.pool.acquire().await?;
        let result = self.write_on(&mut conn, batch).await;
        if result.is_err() {
            discard(conn).await;
        }
        result
    }

    async fn write_on(
        &self,
        conn: &mut PoolConnection<Any>,
        batch: &[(Event, chrono::DateTime<chrono::Utc>)],
    ) -> sqlx::Result<()> {
        let mut tx = conn.begin_with(self.dialect.begin_write()).await?;
        let mut i = 0;
        while i < batch.len() {
            // Consecutive steps go in multi-row INSERTs: one round trip for
            // many rows matters over a network (PostgreSQL) and costs nothing
            // locally. Ids still follow emission order.
            let run = batch[i..]
                .iter()
                .take(STEPS_PER_INSERT)
                .take_while(|(e, _)| matches!(e, Event::Step { .. }))
                .count();
            if run > 1 {
                self.write_steps(&mut tx, &batch[i..i + run]).await?;
                i += run;
                continue;
            }
            let (event, ts) = &batch[i];
            let ts = ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            self.write_event(&mut tx, event, &ts).await?;
            i += 1;
        }
        tx.commit().await
    }

    /// Step events (only) as one INSERT of three rows each.
    async fn write_steps(
        &self,
        tx: &mut Transaction<'_, Any>,
        steps: &[(Event, chrono::DateTime<chrono::Utc>)],
    ) -> sqlx::Result<()> {
        let mut sql = String::from(
            "INSERT INTO metrics (run_id, stage, epoch, step, key, value, ts) VALUES ",
        );
        for n in 0..steps.len() {
            // Per step: $1 run, then stage, epoch, step, ts, loss, lr, samples/s.
            let p = 2 + n * 7;
            if n > 0 {
                sql.push_str(", ");
            }
            for (k, key) in ["loss", "lr", "samples_per_s"].iter().enumerate() {
                if k > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "($1, ${}, ${}, ${}, '{key}', ${}, ${})",
                    p,
                    p + 1,
                    p + 2,
                    p + 4 + k,
                    p + 3
                ));
            }
        }
        let mut q = sqlx::query(&sql)
            .persistent(NULLABLE_REALS_PERSISTENT)
            .bind(self.run_id);
        for (event, ts) in steps {
            if let Event::Step {
                stage,
                epoch,
                step,
                loss,
                lr,
                samples_per_s,
            } = event
            {
                q = q
                    .bind(stage.clone())
                    .bind(*epoch as i64)
                    .bind(*step as i64)
                    .bind(ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .bind(finite(*loss))
                    .bind(finite(*lr))
                    .bind(finite(*samples_per_s));
            }
        }
        q.execute(&mut **tx).await?;
        Ok(())
    }

    async fn write_event(
        &self,
        tx: &mut Transaction<'_, Any>,
        event: &Event,
        ts: &str,
    ) -> sqlx::Result<()> {
        let run_id = self.run_id;
        match event {
            Event::StageStarted {
                stage,
                kind,
                epochs,
                steps_per_epoch,
                rows,
            } => {
                // A resumed stage keeps its place in the order.
                sqlx::query(
                    "INSERT INTO stages (run_id, stage, ord, kind, epochs, steps_per_epoch, rows, status, started_at)
                     VALUES ($1, $2, (SELECT COALESCE(MAX(ord) + 1, 0) FROM stages WHERE run_id = $1),
                             $3, $4, $5, $6, 'RUNNING', $7)
                     ON CONFLICT (run_id, stage) DO UPDATE SET
                        kind = excluded.kind, epochs = excluded.epochs,
                        steps_per_epoch = excluded.steps_per_epoch, rows = excluded.rows,
                        status = 'RUNNING', ended_at = NULL",
                )
                .bind(run_id)
                .bind(stage)
                .bind(kind)
                .bind(*epochs as i64)
                .bind(*steps_per_epoch as i64)
                .bind(*rows as i64)
                .bind(ts)
                .execute(&mut **tx)
                .await?;
            }
            Event::Step {
                stage,
                epoch,
                step,
                loss,
                lr,
                samples_per_s,
            } => {
                sqlx::query(
                    "INSERT INTO metrics (run_id, stage, epoch, step, key, value, ts) VALUES
                     ($1, $2, $3, $4, 'loss', $5, $8),
                     ($1, $2, $3, $4, 'lr', $6, $8),
                     ($1, $2, $3, $4, 'samples_per_s', $7, $8)",
                )
                .persistent(NULLABLE_REALS_PERSISTENT)
                .bind(run_id)
                .bind(stage)
                .bind(*epoch as i64)
                .bind(*step as i64)
                .bind(finite(*loss))
                .bind(finite(*lr))
                .bind(finite(*samples_per_s))
                .bind(ts)
                .execute(&mut **tx)
                .await?;
            }
            Event::Eval {
                stage,
                epoch,
                split,
                auc,
                logloss,
                metrics,
            } => {
                let extra: serde_json::Map<String, serde_json::Value> = metrics
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            finite(*v)
                                .map(serde_json::Value::from)
                                .unwrap_or(serde_json::Value::Null),
                        )
                    })
                    .collect();
                sqlx::query(
                    "INSERT INTO evaluations (run_id, stage, epoch, split, auc, logloss, extra_json, ts)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (run_id, stage, epoch, split) DO UPDATE SET
                        auc = excluded.auc, logloss = excluded.logloss,
                        extra_json = excluded.extra_json, ts = excluded.ts",
                )
                .persistent(NULLABLE_REALS_PERSISTENT)
                .bind(run_id)
                .bind(stage)
                .bind(*epoch as i64)
                .bind(split.as_str())
                .bind(auc.and_then(finite))
                .bind(logloss.and_then(finite))
                .bind(serde_json::Value::Object(extra).to_string())
                .bind(ts)
                .execute(&mut **tx)
                .await?;
            }
            Event::StageFinished {
                stage,
                best_epoch,
                seconds,
                train_samples_per_s,
                infer_samples_per_s,
            } => {
                sqlx::query(
                    "UPDATE stages SET status = 'FINISHED', best_epoch = $1, seconds = $2, train_samples_per_s = $3,
                        infer_samples_per_s = $4, ended_at = $5
                     WHERE run_id = $6 AND stage = $7",
                )
                .persistent(NULLABLE_REALS_PERSISTENT)
                .bind(best_epoch.map(|e| e as i64))
                .bind(finite(*seconds))
                .bind(finite(*train_samples_per_s))
                .bind(infer_samples_per_s.and_then(finite))
                .bind(ts)
                .bind(run_id)
                .bind(stage)
                .execute(&mut **tx)
                .await?;
            }
            Event::Checkpoint {
                stage,
                epoch,
                path,
                bytes,
                sha256,
            } => {
                sqlx::query(
                    "INSERT INTO artifacts (run_id, stage, epoch, path, bytes, sha256, ts) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(run_id)
                .bind(stage)
                .bind(epoch.map(|e| e as i64))
                .bind(path)
                .bind(i64::try_from(*bytes).unwrap_or(i64::MAX))
                .bind(sha256)
                .bind(ts)
                .execute(&mut **tx)
                .await?;
            }
            Event::Log { level, message } => {
                let level = match level {
                    crate::train::events::LogLevel::Info => "info",
                    crate::train::events::LogLevel::Warn => "warn",
                    crate::train::events::LogLevel::Error => "error",
                };
                sqlx::query(
                    "INSERT INTO logs (run_id, ts, level, message) VALUES ($1, $2, $3, $4)",
                )
                .bind(run_id)
                .bind(ts)
                .bind(level)
                .bind(message)
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(())
    }

    async fn finish(&mut self, status: &RunStatus, note: Option<String>) -> sqlx::Result<()> {
        if self.final_set {
            return Ok(());
        }
        // A run whose events could not all be written is not FINISHED: its
        // record has gaps. Say why (when the database takes writes again).
        let lost = self.error.lock().ok().and_then(|e| e.clone());
        let status = match (status, lost) {
            (RunStatus::Finished, Some(e)) => {
                RunStatus::Failed(format!("the run database refused writes: {e}"))
            }
            (s, _) => s.clone(),
        };
        let (name, default_note) = status.parts();
        let note = note.or(default_note);
        let mut conn = self.pool.acquire().await?;
        let result = self.finish_on(&mut conn, name, note.as_deref()).await;
        if result.is_ok() {
            self.final_set = true;
        } else {
            discard(conn).await;
        }
        result
    }

    async fn finish_on(
        &self,
        conn: &mut PoolConnection<Any>,
        name: &str,
        note: Option<&str>,
    ) -> sqlx::Result<()> {
        let ts = now();
        let mut tx = conn.begin_with(self.dialect.begin_write()).await?;
        sqlx::query("UPDATE runs SET status = $1, ended_at = $2, error = $3 WHERE id = $4")
            .bind(name)
            .bind(&ts)
            .bind(note)
            .bind(self.run_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE stages SET status = $1, ended_at = $2 WHERE run_id = $3 AND status = 'RUNNING'",
        )
        .bind(name)
        .bind(&ts)
        .bind(self.run_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }
}

/// Closes a connection whose write failed instead of returning it to the
/// pool. A COMMIT that fails (SQLite: the disk is full) leaves the connection
/// inside its transaction, and the pool would hand it to the retry, whose
/// BEGIN then fails with "non-zero transaction depth" and hides the real
/// cause; a fresh connection starts clean.
async fn discard(conn: PoolConnection<Any>) {
    let _ = conn.close().await;
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}
