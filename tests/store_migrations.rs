//! Schema migrations: a fresh file, a database created by an older schema
//! (migration 0001 only) holding runs, a database from a newer build, and
//! files that are not run databases.

mod store_support;

use clickprompt::store::{RunFilter, Store, MIGRATOR};
use std::path::Path;
use store_support::*;

fn migrations_applied(db: &Path) -> Vec<i64> {
    let n = scalar_i64(
        db,
        "SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1",
    );
    (0..n)
        .map(|i| {
            scalar_i64(
                db,
                &format!(
                    "SELECT version FROM _sqlx_migrations ORDER BY version LIMIT 1 OFFSET {i}"
                ),
            )
        })
        .collect()
}

#[test]
fn fresh_file_gets_every_migration_and_the_pragmas() {
    let dir = tempdir();
    let db = dir.path().join("nested/folder/runs.db");
    let store = Store::open(&db).expect("open creates the folder and file");
    assert!(db.exists());
    let all: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    assert_eq!(migrations_applied(&db), all);
    assert!(all.len() >= 2);
    for table in [
        "experiments",
        "runs",
        "params",
        "metrics",
        "evaluations",
        "stages",
        "artifacts",
        "logs",
    ] {
        assert_eq!(
            scalar_i64(
                &db,
                &format!(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
                )
            ),
            1,
            "{table}"
        );
    }
    assert_eq!(
        scalar_i64(
            &db,
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'view' AND name = 'run_summary'"
        ),
        1
    );
    assert_eq!(scalar_text(&db, "PRAGMA journal_mode"), "wal");
    assert!(store
        .list_runs(&RunFilter::default())
        .expect("list")
        .is_empty());
    drop(store);
    // Reopening is idempotent.
    Store::open(&db).expect("reopen");
    assert_eq!(migrations_applied(&db), all);
}

#[test]
fn an_older_schema_is_upgraded_with_its_runs_intact() {
    let dir = tempdir();
    let db = db_in(&dir);
    // A database as the first release left it: only migration 0001, with runs
    // written by that release (plain SQL, as the old binary would have).
    let only_first = dir.path().join("old_migrations");
    std::fs::create_dir(&only_first).expect("mkdir");
    let first = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .expect("migrations dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("0001_"))
        })
        .expect("0001 migration");
    std::fs::copy(&first, only_first.join(first.file_name().expect("name"))).expect("copy");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", db.display()))
                .await
                .expect("connect");
        let old = sqlx::migrate::Migrator::new(only_first.as_path())
            .await
            .expect("old migrator");
        old.run(&mut conn).await.expect("apply 0001");
        conn.close().await.expect("close");
    });
    assert_eq!(migrations_applied(&db), vec![1]);
    sql(
        &db,
        &[
            "INSERT INTO experiments VALUES (1, 'movielens', 'm.cp', 'abc', 'experiment movielens {}', '2026-01-01T00:00:00.000Z')",
            "INSERT INTO runs (id, experiment_id, name, sweep_point, status, started_at, ended_at, device, host, pid,
                proc_start, crate_version, seed, plan_yaml, error)
             VALUES (7, 1, 'movielens', NULL, 'FINISHED', '2026-01-01T00:00:00.000Z', '2026-01-01T00:10:00.000Z',
                'cpu', 'h', 1, NULL, '0.0.1', 42, 'name: movielens', NULL)",
            "INSERT INTO params VALUES (7, 'ctr.backbone.name', 'dcnv2', NULL)",
            "INSERT INTO stages VALUES (7, 'pretrain', 0, 'pa_mlm', 1, 10, 100, 'FINISHED', NULL, 5.0, 1.0, NULL,
                '2026-01-01T00:00:00.000Z', NULL)",
            "INSERT INTO stages VALUES (7, 'joint', 1, 'joint', 2, 10, 100, 'FINISHED', 2, 5.0, 1.0, 2.0,
                '2026-01-01T00:05:00.000Z', NULL)",
            "INSERT INTO evaluations VALUES (7, 'joint', 1, 'valid', 0.71, 0.55, '{}', '2026-01-01T00:06:00.000Z')",
            "INSERT INTO evaluations VALUES (7, 'joint', 2, 'valid', 0.74, 0.53, '{}', '2026-01-01T00:07:00.000Z')",
            "INSERT INTO evaluations VALUES (7, 'joint', 2, 'test', 0.73, 0.54, '{}', '2026-01-01T00:08:00.000Z')",
            "INSERT INTO evaluations VALUES (7, 'pretrain', 1, 'valid', NULL, NULL, '{\"mlm_acc\": 0.3}', '2026-01-01T00:04:00.000Z')",
            "INSERT INTO metrics (run_id, stage, epoch, step, key, value, ts) VALUES (7, 'joint', 1, 1, 'loss', 0.69, '2026-01-01T00:05:01.000Z')",
        ],
    );

    let store = Store::open(&db).expect("the current build opens the old file");
    assert_eq!(
        migrations_applied(&db),
        MIGRATOR.iter().map(|m| m.version).collect::<Vec<_>>()
    );
    let runs = store.list_runs(&RunFilter::default()).expect("list");
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(
        (r.id, r.experiment.as_str(), r.status.as_str()),
        (7, "movielens", "FINISHED")
    );
    assert_eq!(r.final_stage.as_deref(), Some("joint"));
    assert_eq!(
        (r.best_valid_auc, r.test_auc, r.test_logloss),
        (Some(0.74), Some(0.73), Some(0.54))
    );
    assert_eq!(r.duration_s.map(|d| d.round()), Some(600.0));
    assert_eq!(
        store.params(7).expect("params"),
        vec![("ctr.backbone.name".to_string(), "dcnv2".to_string())]
    );
    assert_eq!(
        store.metric_series(7, None, None).expect("metrics").len(),
        1
    );
    // New runs go in after the old ones.
    let rec = start(&store, &plan("new", dnn(), 1));
    assert_eq!(rec.run_id(), 8);
    finish_ok(rec);
}

#[test]
fn a_newer_schema_is_refused_clearly() {
    let dir = tempdir();
    let db = db_in(&dir);
    drop(Store::open(&db).expect("create"));
    sql(
        &db,
        &["INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time)
           VALUES (9999, 'from the future', '2030-01-01', 1, x'00', 1)"],
    );
    let err = Store::open(&db).err().expect("refused");
    let msg = err.to_string();
    assert!(msg.contains("written by a newer clickprompt"), "{msg}");
    assert!(msg.contains("migration 9999"), "{msg}");
    assert_eq!(clickprompt::error::exit_code(&err), 2);
}

#[test]
fn not_a_database_and_missing_files() {
    let dir = tempdir();
    let junk = dir.path().join("junk.db");
    std::fs::write(
        &junk,
        "this is not sqlite, just text that is long enough to have a header ......",
    )
    .expect("write");
    let err = Store::open(&junk).err().expect("not a database");
    let msg = format!("{err:#}");
    assert!(msg.contains("junk.db"), "{msg}");
    assert!(msg.contains("not a database"), "{msg}");

    let missing = dir.path().join("missing.db");
    let err = Store::open_existing(&missing).err().expect("missing");
    assert!(err.to_string().contains("no run database at"), "{err}");
    assert_eq!(clickprompt::error::exit_code(&err), 2);
    assert!(!missing.exists(), "open_existing must not create the file");
}
