//! A PostgreSQL server for the tests: the one `CLICKPROMPT_TEST_PG` names
//! (an admin URL such as `postgres://postgres@127.0.0.1:5432/postgres`, as
//! `.ci/run` sets it), else a throw-away cluster started once per test
//! binary (initdb in a temporary folder, 127.0.0.1 on a free port, trust
//! authentication, durability off) and stopped by a watchdog when the test
//! process exits. Each test gets a fresh database, dropped at its end.
//!
//! Without PostgreSQL (and without the variable) the PostgreSQL half of a
//! test is skipped with the reason printed; with the variable set, a server
//! that cannot be reached fails the test instead.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub const ENV: &str = "CLICKPROMPT_TEST_PG";

pub struct Server {
    /// A URL to the server's `postgres` database, with superuser rights.
    admin_url: String,
}

/// The server, or why there is none.
pub fn server() -> Result<&'static Server, String> {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            if !cfg!(feature = "postgres") {
                return Err(
                    "this build has no PostgreSQL support (cargo feature `postgres`)".into(),
                );
            }
            match std::env::var(ENV).ok().filter(|v| !v.is_empty()) {
                Some(url) => Ok(Server { admin_url: url }),
                None => start_local(),
            }
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Whether a PostgreSQL server was promised (the variable is set): then no
/// test may be skipped.
pub fn required() -> bool {
    std::env::var(ENV).is_ok_and(|v| !v.is_empty())
}

/// Says loudly (past libtest's output capture) that a test's PostgreSQL
/// half did not run.
pub fn skip(test: &str, why: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test} on PostgreSQL: {why} (set {ENV}=postgres://… or install PostgreSQL)"
    );
}

/// `url` with its database (path) replaced by `db`, query kept.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{db}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A fresh database on the server, dropped (with its connections) on drop.
pub struct Database {
    pub url: String,
    name: String,
}

impl Database {
    pub fn create(test: &str) -> Result<Database, String> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let server = server()?;
        let slug: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(32)
            .collect();
        let name = format!(
            "cp_{slug}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        admin(&server.admin_url, &format!("CREATE DATABASE {name}"))
            .map_err(|e| format!("creating database {name} on {}: {e}", server.admin_url))?;
        Ok(Database {
            url: with_database(&server.admin_url, &name),
            name,
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(server) = server() {
            let _ = admin(
                &server.admin_url,
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            );
        }
    }
}

/// Runs one statement on the admin database.
fn admin(url: &str, sql: &str) -> Result<(), String> {
    sqlx::any::install_default_drivers();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::AnyConnection::connect(url)
            .await
            .map_err(|e| e.to_string())?;
        conn.execute(sql).await.map_err(|e| e.to_string())?;
        conn.close().await.map_err(|e| e.to_string())
    })
}

/// The folder holding `initdb`, `pg_ctl` and `postgres`: on PATH, else
/// Debian's /usr/lib/postgresql/<version>/bin (the newest).
fn bin_dir() -> Option<PathBuf> {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// uid and gid of `user`, from /etc/passwd.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user) && f.len() > 3)
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    })
}

/// `program args…`, as the `postgres` user when we are root (initdb and
/// the server refuse to run as root).
fn pg_command(bin: &Path, program: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    }
}

fn start_local() -> Result<Server, String> {
    let bin = bin_dir()
        .ok_or("PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin)")?;
    let as_postgres = is_root();
    let dir = tempfile::Builder::new()
        .prefix("clickprompt-pg-")
        .tempdir()
        .map_err(|e| format!("temporary folder: {e}"))?
        .keep();
    if as_postgres {
        let (uid, gid) = user_ids("postgres").ok_or(
            "running as root and there is no `postgres` user to run initdb as (apt-get install postgresql creates it)",
        )?;
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", dir.display()))?;
    }
    let data = dir.join("data");
    let out = pg_command(&bin, "initdb", as_postgres)
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("finding a free port: {e}"))?
        .port();
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=200",
        dir.display()
    );
    let out = pg_command(&bin, "pg_ctl", as_postgres)
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(dir.join("server.log"))
        .args(["-w", "-t", "60", "-o", &opts, "start"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running pg_ctl: {e}"))?;
    if !out.status.success() {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        return Err(format!(
            "the PostgreSQL server did not start: {}\n{log}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    // Stops the server and removes its folder once this test process is gone,
    // however it ends (a panic, a kill).
    let stop = format!(
        "{} {} -D {} -m immediate stop",
        if as_postgres {
            "runuser -u postgres --"
        } else {
            ""
        },
        bin.join("pg_ctl").display(),
        data.display()
    );
    let script = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
        parent = std::process::id(),
        dir = dir.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the watchdog: {e}"))?;
    Ok(Server {
        admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
    })
}
