//! A run database that cannot be used as asked: not SQLite, written by a
//! newer build, locked past the busy timeout, read-only, on a full disk.
//! Each gets a message naming the file and the condition and its own exit
//! code (3–7, `clickprompt --help`), and what was committed before stays
//! intact.
//!
//! Read-only and disk-full need a small tmpfs (`mount`, so root): root
//! ignores file modes, so `chmod` cannot make a file read-only for it. Where
//! mounting is refused (an unprivileged CI runner), those two tests use
//! `chmod` when not root and otherwise say they were skipped.

mod store_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clickprompt::error::{db_fault, exit_code, DbFault};
use clickprompt::store::{RunStatus, Store, BUSY_TIMEOUT};
use store_support::*;

fn cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_clickprompt"))
        .args(args)
        .output()
        .expect("run clickprompt");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A database holding one finished run of 40 steps: its id and metric rows.
fn db_with_one_run(path: &Path) -> (i64, i64) {
    let store = Store::open(path).expect("open");
    let rec = start(&store, &plan("before", dcnv2(), 3));
    full_run(&rec, [0.7, 0.5], 0.71, 0.5, 40);
    let id = rec.run_id();
    finish_ok(rec);
    drop(store);
    let rows = metric_rows(path, id);
    assert!(rows >= 120, "{rows} metric rows");
    (id, rows)
}

fn metric_rows(path: &Path, id: i64) -> i64 {
    scalar_i64(
        path,
        &format!("SELECT COUNT(*) FROM metrics WHERE run_id = {id}"),
    )
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_with_exit_code_3() {
    let dir = tempdir();
    let junk = dir.path().join("notes.db");
    std::fs::write(
        &junk,
        "plain text, not a database; long enough to fill a header ....",
    )
    .unwrap();
    let err = Store::open(&junk).err().expect("refused");
    assert_eq!(db_fault(&err), Some(DbFault::NotADatabase), "{err:#}");
    assert_eq!(exit_code(&err), 3);
    for args in [
        vec!["runs", "list", "--db"],
        vec!["runs", "show", "1", "--db"],
    ] {
        let mut a = args.clone();
        a.push(junk.to_str().unwrap());
        let (code, stderr) = cli(&a);
        assert_eq!(code, 3, "{a:?}: {stderr}");
        assert!(stderr.contains("notes.db"), "{stderr}");
        assert!(stderr.contains("not a database"), "{stderr}");
        assert!(
            stderr.contains("hint: the run database is not a SQLite database"),
            "{stderr}"
        );
    }
    // The file is left as it was.
    assert!(std::fs::read_to_string(&junk)
        .unwrap()
        .starts_with("plain text"));
}

#[test]
fn a_newer_schema_is_refused_with_exit_code_4_and_left_alone() {
    let dir = tempdir();
    let db = db_in(&dir);
    let (id, rows) = db_with_one_run(&db);
    sql(&db, &["INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
                VALUES (9999, 'from the future', '2030-01-01', TRUE, x'00', 1)"]);
    let (code, stderr) = cli(&["runs", "list", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("runs.db") && stderr.contains("newer clickprompt"),
        "{stderr}"
    );
    assert_eq!(metric_rows(&db, id), rows);
}

#[test]
fn a_lock_held_past_the_busy_timeout_gives_exit_code_7_and_loses_nothing() {
    let dir = tempdir();
    let db = db_in(&dir);
    let (id, rows) = db_with_one_run(&db);
    let store = Store::open(&db).expect("open while unlocked");
    // Another connection takes the write lock and keeps it.
    let (rt, mut holder) = connect(&clickprompt::store::DbTarget::Sqlite(db.clone()));
    rt.block_on(async {
        use sqlx::Executor;
        holder.execute("BEGIN EXCLUSIVE").await.expect("lock");
    });
    let t0 = Instant::now();
    let err = store
        .start_run(clickprompt::store::NewRun::new(
            &plan("blocked", dcnv2(), 3),
            Path::new("exp/movielens.cp"),
            SOURCE,
            "cpu",
        ))
        .err()
        .expect("the lock outlasts the busy timeout");
    let waited = t0.elapsed();
    assert!(
        waited >= BUSY_TIMEOUT - Duration::from_millis(500),
        "gave up after {waited:?}"
    );
    assert_eq!(db_fault(&err), Some(DbFault::Locked), "{err:#}");
    assert_eq!(exit_code(&err), 7);
    assert!(format!("{err:#}").contains("runs.db"), "{err:#}");
    rt.block_on(async {
        use sqlx::Executor;
        holder.execute("ROLLBACK").await.expect("unlock");
    });
    drop(store);
    assert_eq!(metric_rows(&db, id), rows);
    assert_eq!(scalar_i64(&db, "SELECT COUNT(*) FROM runs"), 1);
}

/// A tmpfs of `size` mounted at a fresh folder, unmounted on drop (before
/// the folder holding the mount point is removed).
struct Tmpfs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempdir();
        let at = dir.path().join("mnt");
        std::fs::create_dir(&at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(at, dir))
    }

    fn remount(&self, opts: &str) {
        let s = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .status()
            .expect("mount");
        assert!(s.success(), "remount {opts}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_read_only_database_gives_exit_code_5_to_writers_and_keeps_its_runs() {
    let fs = Tmpfs::mount("8m");
    let dir = tempdir();
    let folder = match &fs {
        Some(t) => t.0.clone(),
        None if !is_root() => dir.path().to_path_buf(),
        None => {
            eprintln!("skipped: root cannot make a file read-only without mounting, and mount was refused");
            return;
        }
    };
    let db = folder.join("runs.db");
    let (id, rows) = db_with_one_run(&db);
    let read_only = |on: bool| match &fs {
        Some(t) => t.remount(if on { "ro" } else { "rw" }),
        None => {
            use std::os::unix::fs::PermissionsExt;
            for p in [&db, &folder] {
                let mode = match (p.is_dir(), on) {
                    (true, true) => 0o555,
                    (true, false) => 0o755,
                    (false, true) => 0o444,
                    (false, false) => 0o644,
                };
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
            }
        }
    };
    read_only(true);
    let err = Store::open(&db)
        .and_then(|s| {
            s.start_run(clickprompt::store::NewRun::new(
                &plan("ro", dcnv2(), 3),
                Path::new("exp/movielens.cp"),
                SOURCE,
                "cpu",
            ))
            .map(|_| ())
        })
        .expect_err("writing to a read-only database fails");
    assert_eq!(db_fault(&err), Some(DbFault::ReadOnly), "{err:#}");
    assert_eq!(exit_code(&err), 5);
    assert!(format!("{err:#}").contains("runs.db"), "{err:#}");
    // Reading works: a clean close leaves the WAL empty, so the file alone
    // is the database and is read as an immutable snapshot (SQLite cannot
    // create the `-shm` file its WAL mode needs there).
    let db_arg = db.to_str().unwrap();
    let (code, out) = cli(&["runs", "list", "--db", db_arg]);
    assert_eq!(code, 0, "runs list: {out}");
    assert!(out.contains("FINISHED") && out.contains("0.7100"), "{out}");
    let (code, out) = cli(&["runs", "show", &id.to_string(), "--db", db_arg]);
    assert_eq!(code, 0, "runs show: {out}");
    use clickprompt_tui::model::DataSource as _;
    let mut feed = clickprompt::dashfeed::StoreSource::open(&db).expect("the dashboard reads it");
    assert_eq!(feed.runs().expect("runs").len(), 1);
    // Something in the WAL would make a snapshot stale: refused, exit 5.
    read_only(false);
    let wal = folder.join("runs.db-wal");
    std::fs::write(&wal, [0u8; 64]).unwrap();
    read_only(true);
    let (code, out) = cli(&["runs", "list", "--db", db_arg]);
    assert_eq!(code, 5, "runs list with a WAL: {out}");
    assert!(out.contains("runs.db"), "{out}");
    read_only(false);
    std::fs::remove_file(&wal).unwrap();
    assert_eq!(metric_rows(&db, id), rows);
}

#[test]
fn a_full_disk_gives_exit_code_6_and_the_committed_runs_stay_readable() {
    let Some(fs) = Tmpfs::mount("4m") else {
        eprintln!("skipped: mounting a small tmpfs was refused (needs root)");
        return;
    };
    let db = fs.0.join("runs.db");
    let (id, rows) = db_with_one_run(&db);
    // Fill the rest of the file system.
    let filler = fs.0.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![7u8; 64 << 10];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    // Opening may already fail (the WAL index cannot grow); else the new
    // run's row, or its steps, do not fit.
    let err = match Store::open(&db) {
        Err(e) => e,
        Ok(store) => {
            let started = store.start_run(clickprompt::store::NewRun::new(
                &plan("full", dcnv2(), 3),
                Path::new("exp/movielens.cp"),
                &"x".repeat(1 << 20),
                "cpu",
            ));
            match started {
                Err(e) => e,
                Ok(rec) => {
                    full_run(&rec, [0.7, 0.5], 0.7, 0.5, 4000);
                    rec.finish(RunStatus::Finished)
                        .expect_err("steps on a full disk fail")
                }
            }
        }
    };
    assert_eq!(db_fault(&err), Some(DbFault::Full), "{err:#}");
    assert_eq!(exit_code(&err), 6);
    assert!(format!("{err:#}").contains("runs.db"), "{err:#}");
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(scalar_text(&db, "PRAGMA integrity_check"), "ok");
    assert_eq!(metric_rows(&db, id), rows);
    let (code, stderr) = cli(&["runs", "list", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
}
