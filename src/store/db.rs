//! Opening the database: file, pragmas, migrations, and the recovery of runs
//! whose process died.

use anyhow::{Context, Result};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::process;

/// Embedded schema migrations (`migrations/*.sql`).
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How long a statement waits for another writer's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The run database. Cheap to clone (shared handle); every method blocks the
/// calling thread, so call it from plain threads, never from inside a tokio runtime.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    // Declared before the runtime so the pool is closed while the runtime is still alive.
    pub(crate) pool: SqlitePool,
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) path: PathBuf,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing checkpoints the WAL so `sqlite3 runs.db` sees a tidy file.
        let pool = self.pool.clone();
        self.rt.block_on(async move { pool.close().await });
    }
}

impl Inner {
    pub(crate) fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// `$CLICKPROMPT_DB` when set, else `./runs.db`: one default for every
/// command, so `run` writes where `runs` and `dash` read.
pub fn default_db_path() -> PathBuf {
    match std::env::var_os("CLICKPROMPT_DB").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from("runs.db"),
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Opens (creating if needed) the database at `path`, applies pending
    /// migrations, and marks RUNNING runs whose process is gone as INTERRUPTED.
    pub fn open(path: &Path) -> Result<Store> {
        Self::open_with(path, true)
    }

    /// Like [`Store::open`] but refuses to create a missing file (read commands).
    pub fn open_existing(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(crate::error::invalid(format!(
                "no run database at {} (runs are recorded by `clickprompt run`; pass --db PATH or set CLICKPROMPT_DB)",
                path.display()
            )));
        }
        Self::open_with(path, false)
    }

    fn open_with(path: &Path, create: bool) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if create && !dir.exists() {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!(
                        "creating the folder for the run database {}",
                        path.display()
                    )
                })?;
            }
        }
        // One worker is plenty: sqlx's SQLite driver runs statements on its own
        // per-connection threads; the worker only shuttles batches.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("clickprompt-store")
            .enable_all()
            .build()
            .context("starting the run database's runtime")?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let shown = path.display().to_string();
        let pool = rt
            .block_on(async {
                SqlitePoolOptions::new()
                    .max_connections(4)
                    .min_connections(0)
                    .acquire_timeout(BUSY_TIMEOUT * 3)
                    .connect_with(options)
                    .await
            })
            .with_context(|| format!("opening the run database {shown}"))?;
        rt.block_on(migrate(&pool, &shown))?;
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                rt,
                path: path.to_path_buf(),
            }),
        };
        store.recover_dead_runs()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    pub(crate) fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.inner.block_on(f)
    }

    /// Marks RUNNING runs recorded on this host whose process no longer exists
    /// (or whose pid now belongs to another process) as INTERRUPTED, with a
    /// note in `error` and the run's log. Returns their ids. Runs recorded on
    /// other hosts are left alone: their liveness cannot be checked from here.
    pub fn recover_dead_runs(&self) -> Result<Vec<i64>> {
        let host = process::hostname();
        let candidates: Vec<(i64, i64, Option<String>)> = self
            .block_on(
                sqlx::query_as(
                    "SELECT id, pid, proc_start FROM runs WHERE status = 'RUNNING' AND host = ?",
                )
                .bind(&host)
                .fetch_all(self.pool()),
            )
            .context("looking for interrupted runs")?;
        let mut marked = Vec::new();
        for (id, pid, token) in candidates {
            if process::is_alive(pid, token.as_deref()) {
                continue;
            }
            let note = format!(
                "process {pid} on {host} stopped without finishing the run (killed or crashed); \
                 marked INTERRUPTED by process {} at {}",
                std::process::id(),
                now()
            );
            let changed = self
                .block_on(mark_dead(self.pool(), id, pid, &note))
                .with_context(|| format!("marking run {id} as interrupted"))?;
            if changed {
                marked.push(id);
            }
        }
        Ok(marked)
    }
}

async fn mark_dead(pool: &SqlitePool, id: i64, pid: i64, note: &str) -> sqlx::Result<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    // The run ended at its last recorded activity, not when we noticed.
    let last: Option<String> = sqlx::query_scalar(
        "SELECT MAX(ts) FROM (
             SELECT MAX(ts) AS ts FROM metrics WHERE run_id = ?1
             UNION ALL SELECT MAX(ts) FROM evaluations WHERE run_id = ?1
             UNION ALL SELECT MAX(ts) FROM logs WHERE run_id = ?1
             UNION ALL SELECT MAX(ts) FROM artifacts WHERE run_id = ?1
             UNION ALL SELECT started_at FROM runs WHERE id = ?1)",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    // Guarded by status and pid: a concurrent resume or recovery wins cleanly.
    let res = sqlx::query(
        "UPDATE runs SET status = 'INTERRUPTED', ended_at = ?, error = ?
         WHERE id = ? AND status = 'RUNNING' AND pid = ?",
    )
    .bind(&last)
    .bind(note)
    .bind(id)
    .bind(pid)
    .execute(&mut *tx)
    .await?;
    let changed = res.rows_affected() == 1;
    if changed {
        sqlx::query("UPDATE stages SET status = 'INTERRUPTED', ended_at = ? WHERE run_id = ? AND status = 'RUNNING'")
            .bind(&last)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO logs (run_id, ts, level, message) VALUES (?, ?, 'warn', ?)")
            .bind(id)
            .bind(now())
            .bind(note)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(changed)
}

async fn migrate(pool: &SqlitePool, shown: &str) -> Result<()> {
    let mut attempt = 0;
    loop {
        match MIGRATOR.run(pool).await {
            Ok(()) => return Ok(()),
            Err(MigrateError::VersionMissing(v)) => {
                let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
                return Err(crate::error::invalid(format!(
                    "the run database {shown} was written by a newer clickprompt: it has schema migration {v}, \
                     this build knows migrations up to {known}; upgrade clickprompt or use another --db"
                )));
            }
            Err(MigrateError::VersionMismatch(v)) => {
                return Err(crate::error::invalid(format!(
                    "the run database {shown} has a different schema migration {v} than this build \
                     (was it created by a development build?); use another --db"
                )));
            }
            // Two processes opening a fresh file at once: the loser's CREATE fails
            // after the winner committed; a second pass sees the migration applied.
            Err(e) if attempt < 3 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                if attempt == 3 {
                    return Err(anyhow::Error::new(e)
                        .context(format!("migrating the run database {shown}")));
                }
            }
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("migrating the run database {shown}"))
                )
            }
        }
    }
}
