//! Opening the database (a SQLite file or a PostgreSQL database), migrations,
//! and the recovery of runs whose process died.

use anyhow::{Context, Result};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::MigrateError;
use sqlx::AnyPool;
use sqlx::Executor;
use std::future::Future;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use super::dialect::{self, Dialect};
use super::process::{self, Liveness};
use super::target::DbTarget;

/// How long a statement waits for another writer's lock before failing
/// (SQLite's busy timeout).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections per process. SQLite: readers and the writer side by side.
/// PostgreSQL: a Slurm array or an indexed Job runs many processes against
/// one server (whose default `max_connections` is 100), and a run needs one
/// connection for its writer plus an occasional read.
const SQLITE_CONNECTIONS: u32 = 4;
const POSTGRES_CONNECTIONS: u32 = 2;

/// The run database. Cheap to clone (shared handle); every method blocks the
/// calling thread, so call it from plain threads, never from inside a tokio runtime.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    // Declared before the runtime so the pool is closed while the runtime is still alive.
    pub(crate) pool: AnyPool,
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) target: DbTarget,
    pub(crate) dialect: Dialect,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing checkpoints SQLite's WAL so `sqlite3 runs.db` sees a tidy file.
        let pool = self.pool.clone();
        self.rt.block_on(async move { pool.close().await });
    }
}

impl Inner {
    pub(crate) fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// How to open a SQLite file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SqliteMode {
    Create,
    Existing,
    ReadOnly,
    /// Read-only without locks or a `-shm` file: for a database on read-only
    /// storage whose WAL is empty (see [`readable_as_snapshot`]).
    Snapshot,
}

/// sqlx's `Any` driver takes a URL; the path is made absolute (a relative
/// one would parse as a host name) and percent-encoded byte by byte.
pub(crate) fn sqlite_url(path: &Path, mode: SqliteMode) -> Result<String> {
    let abs = std::path::absolute(path)
        .with_context(|| format!("resolving the path {}", path.display()))?;
    let text = abs.to_str().ok_or_else(|| {
        crate::error::invalid(format!(
            "the run database path {} is not valid UTF-8; use another --db",
            path.display()
        ))
    })?;
    let mut url = String::from("sqlite://");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'~') {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url.push_str(match mode {
        SqliteMode::Create => "?mode=rwc",
        SqliteMode::Existing => "?mode=rw",
        SqliteMode::ReadOnly => "?mode=ro",
        SqliteMode::Snapshot => "?mode=ro&immutable=true",
    });
    Ok(url)
}

/// The pragmas every SQLite connection of a writer gets: WAL (readers never
/// block the writer), a busy timeout, foreign keys for the cascades.
pub(crate) const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
     PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";

/// A runtime for one store or reader: one worker is plenty (the SQLite driver
/// runs statements on its own threads; PostgreSQL is network I/O).
pub(crate) fn runtime(name: &str) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .context("starting the run database's runtime")
}

/// Connection options for `target`, with a clear error for a build without
/// PostgreSQL or a URL sqlx cannot read.
pub(crate) fn connect_options(target: &DbTarget, mode: SqliteMode) -> Result<AnyConnectOptions> {
    dialect::install_drivers();
    let url = match target {
        DbTarget::Sqlite(path) => sqlite_url(path, mode)?,
        DbTarget::Postgres(url) => {
            if !dialect::POSTGRES_BUILT_IN {
                return Err(crate::error::invalid(format!(
                    "{target}: this clickprompt was built without PostgreSQL support \
                     (rebuild with the default features or `--features postgres`)"
                )));
            }
            url.clone()
        }
    };
    AnyConnectOptions::from_str(&url)
        .map_err(|e| crate::error::invalid(format!("invalid run database {target}: {e}")))
}

impl Store {
    /// Opens the run database (`&Path`, `PathBuf` and `&str` convert: a path
    /// or a `postgres://` URL), creating a missing SQLite file, applies
    /// pending migrations, and marks RUNNING runs of this host whose process
    /// is gone as INTERRUPTED.
    pub fn open(db: impl Into<DbTarget>) -> Result<Store> {
        Self::open_with(db.into(), true)
    }

    /// Like [`Store::open`] but refuses to create a missing SQLite file (read commands).
    pub fn open_existing(db: impl Into<DbTarget>) -> Result<Store> {
        let target = db.into();
        if let DbTarget::Sqlite(path) = &target {
            if !path.exists() {
                return Err(crate::error::invalid(format!(
                    "no run database at {} (runs are recorded by `clickprompt run`; pass --db PATH|URL or set CLICKPROMPT_DB)",
                    path.display()
                )));
            }
        }
        Self::open_with(target, false)
    }

    fn open_with(target: DbTarget, create: bool) -> Result<Store> {
        let dialect = target.dialect();
        if let DbTarget::Sqlite(path) = &target {
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
        }
        let mode = if create {
            SqliteMode::Create
        } else {
            SqliteMode::Existing
        };
        let options = connect_options(&target, mode)?;
        let rt = runtime("clickprompt-store")?;
        let shown = target.to_string();
        // One connection first: a pool retries failed connections until its
        // acquire timeout and then reports only that it timed out, hiding
        // "file is not a database" or "connection refused".
        if let Err(e) = rt.block_on(probe(&options, dialect)) {
            let e = open_error(&target, e);
            return match target.sqlite_path() {
                Some(path)
                    if !create
                        && crate::error::db_fault(&e) == Some(crate::error::DbFault::ReadOnly)
                        && readable_as_snapshot(path) =>
                {
                    Self::open_snapshot(target, rt)
                }
                _ => Err(e),
            };
        }
        let pool = rt
            .block_on(async {
                let pool = match dialect {
                    Dialect::Sqlite => AnyPoolOptions::new()
                        .max_connections(SQLITE_CONNECTIONS)
                        .after_connect(|conn, _| {
                            Box::pin(async move { conn.execute(SQLITE_PRAGMAS).await.map(|_| ()) })
                        }),
                    Dialect::Postgres => AnyPoolOptions::new()
                        .max_connections(POSTGRES_CONNECTIONS)
                        .idle_timeout(Duration::from_secs(60)),
                };
                pool.min_connections(0)
                    .acquire_timeout(BUSY_TIMEOUT * 3)
                    .connect_with(options)
                    .await
            })
            .map_err(|e| open_error(&target, e))?;
        rt.block_on(migrate(&pool, dialect, &shown))?;
        let store = Store {
            inner: Arc::new(Inner {
                pool,
                rt,
                target,
                dialect,
            }),
        };
        store.recover_dead_runs()?;
        Ok(store)
    }

    /// A SQLite database on read-only storage, for reading: nothing can be
    /// written there (no migrations, no marking of dead runs), and SQLite
    /// cannot create the `-shm` file its WAL mode needs, so it is opened
    /// immutable — exact because its WAL is empty (checked by the caller).
    fn open_snapshot(target: DbTarget, rt: tokio::runtime::Runtime) -> Result<Store> {
        let options = connect_options(&target, SqliteMode::Snapshot)?;
        let pool = rt
            .block_on(
                AnyPoolOptions::new()
                    .max_connections(SQLITE_CONNECTIONS)
                    .min_connections(0)
                    .acquire_timeout(BUSY_TIMEOUT * 3)
                    .connect_with(options),
            )
            .map_err(|e| open_error(&target, e))?;
        let shown = target.to_string();
        rt.block_on(check_schema_read_only(&pool, &shown))?;
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                rt,
                target,
                dialect: Dialect::Sqlite,
            }),
        })
    }

    /// Where the runs are: the file path or the URL (`Display` hides a password).
    pub fn target(&self) -> &DbTarget {
        &self.inner.target
    }

    /// SQLite or PostgreSQL.
    pub fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    pub(crate) fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.inner.block_on(f)
    }

    /// Marks RUNNING runs recorded on this host whose process no longer exists
    /// (or whose pid now belongs to another process) as INTERRUPTED, with a
    /// note in `error` and the run's log. Returns their ids. Runs recorded on
    /// other hosts, or in another pid namespace of this one (a container
    /// sharing the host name), are left alone: their liveness cannot be
    /// checked from here (`runs mark-interrupted ID` ends a stale one).
    pub fn recover_dead_runs(&self) -> Result<Vec<i64>> {
        let host = process::hostname();
        let candidates: Vec<(i64, i64, Option<String>)> = self
            .block_on(
                sqlx::query_as(
                    "SELECT id, pid, proc_start FROM runs WHERE status = 'RUNNING' AND host = $1",
                )
                .bind(&host)
                .fetch_all(self.pool()),
            )
            .context("looking for interrupted runs")?;
        let mut marked = Vec::new();
        for (id, pid, token) in candidates {
            if process::liveness(&host, pid, token.as_deref()) != Liveness::Dead {
                continue;
            }
            let note = format!(
                "process {pid} on {host} stopped without finishing the run (killed or crashed); \
                 marked INTERRUPTED by process {} at {}",
                std::process::id(),
                now()
            );
            let changed = self
                .block_on(mark_stopped(
                    self.pool(),
                    self.dialect(),
                    id,
                    Some(pid),
                    &note,
                ))
                .with_context(|| format!("marking run {id} as interrupted"))?;
            if changed {
                marked.push(id);
            }
        }
        Ok(marked)
    }

    /// `runs mark-interrupted`: marks a RUNNING run INTERRUPTED whatever host
    /// recorded it — for a run whose machine went away (a node lost, a
    /// preempted pod), which no liveness check can see. Refuses a run whose
    /// process is alive on this host unless `force`. Returns the note stored.
    pub fn mark_interrupted(&self, id: i64, force: bool) -> Result<String> {
        let run = self.run_summary(id)?;
        if run.status != "RUNNING" {
            return Err(crate::error::invalid(format!(
                "run {id} is {}, not RUNNING; nothing to mark",
                run.status
            )));
        }
        let (pid, token): (i64, Option<String>) = self
            .block_on(
                sqlx::query_as("SELECT pid, proc_start FROM runs WHERE id = $1")
                    .bind(id)
                    .fetch_one(self.pool()),
            )
            .context("reading a run")?;
        let here = process::hostname();
        let liveness = process::liveness(&run.host, pid, token.as_deref());
        if liveness == Liveness::Alive && !force {
            return Err(crate::error::invalid(format!(
                "run {id} is alive: process {pid} on this host ({here}) is still recording it; \
                 stop it (Ctrl-C, kill -TERM {pid}) or pass --force"
            )));
        }
        let why = match liveness {
            Liveness::Dead => "its process is gone",
            Liveness::Alive => "forced while its process was alive",
            Liveness::Unknown => "its process cannot be checked from here",
        };
        let note = format!(
            "marked INTERRUPTED with `runs mark-interrupted` by {} on {here} at {} ({why}; it was \
             RUNNING as process {pid} on {})",
            whoami(),
            now(),
            run.host
        );
        let changed = self
            .block_on(mark_stopped(self.pool(), self.dialect(), id, None, &note))
            .with_context(|| format!("marking run {id} as interrupted"))?;
        if !changed {
            return Err(crate::error::invalid(format!(
                "run {id} changed status meanwhile; see `clickprompt runs show {id}`"
            )));
        }
        Ok(note)
    }
}

fn whoami() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .map(|u| format!("user {u}"))
        .unwrap_or_else(|_| format!("process {}", std::process::id()))
}

/// How long opening a connection may take (an unreachable PostgreSQL host
/// would otherwise wait for the system's TCP timeout, minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

async fn probe(options: &AnyConnectOptions, dialect: Dialect) -> sqlx::Result<()> {
    use sqlx::{ConnectOptions, Connection};
    let connect = async {
        let mut conn = options.connect().await?;
        if dialect == Dialect::Sqlite {
            conn.execute(SQLITE_PRAGMAS).await?;
        }
        conn.close().await
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(r) => r,
        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
        ))),
    }
}

/// RUNNING → INTERRUPTED for run `id` (and its running stages), ended at its
/// last recorded activity, with `note` in `error` and the log. Guarded by
/// status (and `pid` when given): a concurrent resume or recovery wins cleanly.
async fn mark_stopped(
    pool: &AnyPool,
    dialect: Dialect,
    id: i64,
    pid: Option<i64>,
    note: &str,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin_with(dialect.begin_write()).await?;
    // The run ended at its last recorded activity, not when we noticed.
    let last: Option<String> = sqlx::query_scalar(
        "SELECT MAX(ts) FROM (
             SELECT MAX(ts) AS ts FROM metrics WHERE run_id = $1
             UNION ALL SELECT MAX(ts) FROM evaluations WHERE run_id = $1
             UNION ALL SELECT MAX(ts) FROM logs WHERE run_id = $1
             UNION ALL SELECT MAX(ts) FROM artifacts WHERE run_id = $1
             UNION ALL SELECT started_at FROM runs WHERE id = $1) AS activity",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let res = sqlx::query(
        "UPDATE runs SET status = 'INTERRUPTED', ended_at = $1, error = $2
         WHERE id = $3 AND status = 'RUNNING' AND ($4 < 0 OR pid = $4)",
    )
    .bind(&last)
    .bind(note)
    .bind(id)
    .bind(pid.unwrap_or(-1))
    .execute(&mut *tx)
    .await?;
    let changed = res.rows_affected() == 1;
    if changed {
        sqlx::query(
            "UPDATE stages SET status = 'INTERRUPTED', ended_at = $1 WHERE run_id = $2 AND status = 'RUNNING'",
        )
        .bind(&last)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO logs (run_id, ts, level, message) VALUES ($1, $2, 'warn', $3)")
            .bind(id)
            .bind(now())
            .bind(note)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// A connection failure as the user should read it: which database, and for
/// PostgreSQL the usual causes.
fn open_error(target: &DbTarget, e: sqlx::Error) -> anyhow::Error {
    let text = e.to_string();
    if let DbTarget::Sqlite(path) = target {
        // SQLite says only "unable to open database file" (code 14) when it
        // cannot create the WAL's `-shm`/`-wal` files next to the database.
        // A full disk shows as an I/O error (code 10, e.g. 4874 when the
        // `-shm` file cannot grow) when opening; SQLite's own FULL comes later.
        if crate::error::sqlite_primary_code(&text) == Some(10) && disk_full(path) {
            return crate::error::db_fault_error(
                crate::error::DbFault::Full,
                format!("opening the run database {target}: the disk is full ({text})"),
            );
        }
        if text.contains("(code: 14)") || text.contains("(code: 8)") {
            if let Some(why) = not_writable(path) {
                return crate::error::db_fault_error(
                    crate::error::DbFault::ReadOnly,
                    format!("opening the run database {target}: {why} ({text})"),
                );
            }
        }
    }
    if let DbTarget::Postgres(_) = target {
        if text.contains("does not exist") && text.contains("database") {
            return crate::error::invalid(format!(
                "opening the run database {target}: {text} (create it once with `createdb NAME` \
                 or `CREATE DATABASE name`; clickprompt creates the tables)"
            ));
        }
        if text.contains("password authentication failed") || text.contains("no password") {
            return crate::error::invalid(format!(
                "opening the run database {target}: {text} (put the password in the URL, \
                 postgres://user:PASSWORD@host/db, or in ~/.pgpass / $PGPASSWORD)"
            ));
        }
    }
    anyhow::Error::new(e).context(format!("opening the run database {target}"))
}

/// No free block left on the file system holding the database.
fn disk_full(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Some(dir) = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    else {
        return false;
    };
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statvfs fills the zeroed struct we own from a valid C path.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        libc::statvfs(c.as_ptr(), &mut st) == 0 && st.f_bavail == 0
    }
}

/// Why the database file or its folder cannot be written, if so: a
/// read-only file system (root too), or modes that deny this user.
fn not_writable(path: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let abs = std::path::absolute(path).ok()?;
    let dir = abs.parent()?.to_path_buf();
    for (p, what) in [(&abs, "the file"), (&dir, "its folder")] {
        if !p.exists() {
            continue;
        }
        let c = std::ffi::CString::new(p.as_os_str().as_bytes()).ok()?;
        // SAFETY: `c` is a valid NUL-terminated path for the call's duration.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
            let err = std::io::Error::last_os_error();
            return Some(if err.raw_os_error() == Some(libc::EROFS) {
                "it is on a read-only file system".to_string()
            } else {
                format!("{what} {} is not writable ({err})", p.display())
            });
        }
    }
    None
}

/// Whether a SQLite file that cannot be opened for writing can be read as an
/// immutable snapshot: its WAL holds nothing (no `-wal` file, or an empty
/// one), so the main file is the whole database. A clean close leaves it so.
pub(crate) fn readable_as_snapshot(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    match std::fs::metadata(Path::new(&wal)) {
        Ok(m) => m.len() == 0,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Whether a reader that failed to open `path` should read it as a snapshot:
/// it sits where nothing can be written, and its WAL is empty.
pub(crate) fn read_only_snapshot(path: &Path) -> bool {
    not_writable(path).is_some() && readable_as_snapshot(path)
}

/// A database that cannot be migrated must already have this build's schema.
async fn check_schema_read_only(pool: &AnyPool, shown: &str) -> Result<()> {
    let known = Dialect::Sqlite
        .migrator()
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    let (applied,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await
            .map_err(|e| {
                crate::error::invalid(format!("{shown} is not a clickprompt run database ({e})"))
            })?;
    let applied = applied.unwrap_or(0);
    if applied > known {
        return Err(crate::error::db_fault_error(
            crate::error::DbFault::NewerSchema,
            format!(
                "the run database {shown} was written by a newer clickprompt: it has schema migration {applied}, \
                 this build knows migrations up to {known}; upgrade clickprompt or use another --db"
            ),
        ));
    }
    if applied < known {
        return Err(crate::error::db_fault_error(
            crate::error::DbFault::ReadOnly,
            format!(
                "the run database {shown} is read-only and has an older schema (migration {applied}, \
                 this build needs {known}); copy it somewhere writable to read it"
            ),
        ));
    }
    Ok(())
}

async fn migrate(pool: &AnyPool, dialect: Dialect, shown: &str) -> Result<()> {
    let migrator = dialect.migrator();
    let mut attempt = 0;
    loop {
        match migrator.run(pool).await {
            Ok(()) => return Ok(()),
            Err(MigrateError::VersionMissing(v)) => {
                let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
                return Err(crate::error::db_fault_error(crate::error::DbFault::NewerSchema, format!(
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
            // Two processes opening a fresh SQLite file at once: the loser's CREATE
            // fails after the winner committed; a second pass sees the migration
            // applied. (PostgreSQL migrations hold an advisory lock instead.)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_are_absolute_and_encoded() {
        let url = sqlite_url(Path::new("/tmp/my runs/a%b?#.db"), SqliteMode::Create).unwrap();
        assert_eq!(url, "sqlite:///tmp/my%20runs/a%25b%3F%23.db?mode=rwc");
        let rel = sqlite_url(Path::new("runs.db"), SqliteMode::ReadOnly).unwrap();
        assert!(rel.starts_with("sqlite:///"), "{rel}");
        assert!(rel.ends_with("/runs.db?mode=ro"), "{rel}");
    }
}
