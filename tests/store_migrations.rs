//! Schema migrations on both backends: a fresh database, a database created
//! by an older schema (migration 0001 only) holding runs, a database from a
//! newer build, and databases that are not run databases.

mod store_support;

use clickprompt::store::{Dialect, RunFilter, Store};
use store_support::*;

fn migrations_applied(db: &TestDb) -> Vec<i64> {
    let n = db.scalar_i64("SELECT COUNT(*) FROM _sqlx_migrations WHERE success");
    (0..n)
        .map(|i| {
            db.scalar_i64(&format!(
                "SELECT version FROM _sqlx_migrations ORDER BY version LIMIT 1 OFFSET {i}"
            ))
        })
        .collect()
}

fn all_versions(db: &TestDb) -> Vec<i64> {
    db.dialect().migrator().iter().map(|m| m.version).collect()
}

/// How many tables (`kind` table) or views named `name` the database has.
fn objects(db: &TestDb, kind: &str, name: &str) -> i64 {
    match db.dialect() {
        Dialect::Sqlite => db.scalar_i64(&format!(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = '{kind}' AND name = '{name}'"
        )),
        Dialect::Postgres => {
            let t = if kind == "view" { "VIEW" } else { "BASE TABLE" };
            db.scalar_i64(&format!(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = '{t}' AND table_name = '{name}'"
            ))
        }
    }
}

fn fresh_database_gets_every_migration(db: &TestDb) {
    // SQLite: the folders and the file are created.
    let nested;
    let db = match db.target.sqlite_path() {
        Some(_) => {
            nested = TestDb::sqlite_at(db.dir.path().join("nested/folder/runs.db"));
            &nested
        }
        None => db,
    };
    let store = db.open();
    if let Some(path) = db.target.sqlite_path() {
        assert!(path.exists());
        assert_eq!(db.scalar_text("PRAGMA journal_mode"), "wal");
    }
    let all = all_versions(db);
    assert_eq!(migrations_applied(db), all);
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
        assert_eq!(objects(db, "table", table), 1, "{table}");
    }
    assert_eq!(objects(db, "view", "run_summary"), 1);
    assert_eq!(objects(db, "view", "stage_summary"), 1);
    assert!(store
        .list_runs(&RunFilter::default())
        .expect("list")
        .is_empty());
    drop(store);
    // Reopening is idempotent.
    db.open();
    assert_eq!(migrations_applied(db), all);
}

fn an_older_schema_is_upgraded_with_its_runs_intact(db: &TestDb) {
    // A database as the first release left it: only migration 0001, with runs
    // written by that release (plain SQL, as the old binary would have).
    let folder = match db.dialect() {
        Dialect::Sqlite => "sqlite",
        Dialect::Postgres => "postgres",
    };
    let only_first = db.dir.path().join("old_migrations");
    std::fs::create_dir(&only_first).expect("mkdir");
    let first = std::fs::read_dir(format!(
        "{}/migrations/{folder}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("migrations dir")
    .filter_map(|e| e.ok())
    .map(|e| e.path())
    .find(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("0001_"))
    })
    .expect("0001 migration");
    std::fs::copy(&first, only_first.join(first.file_name().expect("name"))).expect("copy");
    if let Some(path) = db.target.sqlite_path() {
        std::fs::File::create(path).expect("create the file");
    }
    let (rt, mut conn) = connect(&db.target);
    rt.block_on(async {
        use sqlx::Connection;
        let old = sqlx::migrate::Migrator::new(only_first.as_path())
            .await
            .expect("old migrator");
        old.run(&mut conn).await.expect("apply 0001");
        conn.close().await.expect("close");
    });
    assert_eq!(migrations_applied(db), vec![1]);
    db.sql(&[
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
    ]);
    if db.is_postgres() {
        // The old binary's rows got their ids from the identity sequences;
        // the explicit ids above leave those behind.
        db.sql(&[
            "SELECT setval(pg_get_serial_sequence('experiments', 'id'), 1)",
            "SELECT setval(pg_get_serial_sequence('runs', 'id'), 7)",
        ]);
    }

    let store = db.open();
    assert_eq!(migrations_applied(db), all_versions(db));
    let runs = store.list_runs(&RunFilter::default()).expect("list");
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(
        (r.id, r.experiment.as_str(), r.status.as_str()),
        (7, "movielens", "FINISHED")
    );
    assert_eq!(r.final_stage.as_deref(), Some("joint"));
    assert_eq!(r.best_stage.as_deref(), Some("joint"));
    assert_eq!(
        (r.best_valid_auc, r.test_auc, r.test_logloss),
        (Some(0.74), Some(0.73), Some(0.54))
    );
    assert_eq!(r.duration_s, Some(600.0));
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

fn a_newer_schema_is_refused_clearly(db: &TestDb) {
    drop(db.open());
    let checksum = match db.dialect() {
        Dialect::Sqlite => "x'00'",
        Dialect::Postgres => "decode('00', 'hex')",
    };
    db.sql(&[&format!(
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time)
         VALUES (9999, 'from the future', '2030-01-01', TRUE, {checksum}, 1)"
    )]);
    let err = Store::open(&db.target).err().expect("refused");
    let msg = err.to_string();
    assert!(msg.contains("written by a newer clickprompt"), "{msg}");
    assert!(msg.contains("migration 9999"), "{msg}");
    assert_eq!(clickprompt::error::exit_code(&err), 4);
}

fn not_a_run_database(db: &TestDb) {
    match db.dialect() {
        Dialect::Sqlite => {
            let junk = db.dir.path().join("junk.db");
            std::fs::write(
                &junk,
                "this is not sqlite, just text that is long enough to have a header ......",
            )
            .expect("write");
            let err = Store::open(&junk).err().expect("not a database");
            let msg = format!("{err:#}");
            assert!(msg.contains("junk.db"), "{msg}");
            assert!(msg.contains("not a database"), "{msg}");

            let missing = db.dir.path().join("missing.db");
            let err = Store::open_existing(&missing).err().expect("missing");
            assert!(err.to_string().contains("no run database at"), "{err}");
            assert_eq!(clickprompt::error::exit_code(&err), 2);
            assert!(!missing.exists(), "open_existing must not create the file");
        }
        Dialect::Postgres => {
            // Another application's database: its `runs` table is left alone.
            db.sql(&[
                "CREATE TABLE runs (x INTEGER)",
                "INSERT INTO runs VALUES (1)",
            ]);
            let err = Store::open(&db.target).err().expect("foreign tables");
            let msg = format!("{err:#}");
            assert!(msg.contains("migrating the run database"), "{msg}");
            assert!(msg.contains("already exists"), "{msg}");
            assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM runs"), 1);
            // A database that is not there: a clear message, exit code 2.
            let url = db.arg().replace("/cp_", "/nonexistent_");
            let err = Store::open(url.as_str()).err().expect("missing");
            assert!(err.to_string().contains("createdb"), "{err}");
            assert_eq!(clickprompt::error::exit_code(&err), 2);
        }
    }
}

/// The views' columns, in order (`SELECT *` readers and `psql`/`sqlite3`
/// users see the same view on either backend).
fn view_columns(db: &TestDb, view: &str) -> String {
    db.scalar_text(&match db.dialect() {
        Dialect::Sqlite => format!(
            "SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_table_info('{view}') ORDER BY cid)"
        ),
        Dialect::Postgres => format!(
            "SELECT string_agg(column_name::text, ',' ORDER BY ordinal_position) FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{view}'"
        ),
    })
}

fn the_views_have_the_same_columns(db: &TestDb) {
    drop(db.open());
    assert_eq!(
        view_columns(db, "run_summary"),
        "id,experiment,name,sweep_point,status,started_at,ended_at,duration_s,device,host,seed,\
         crate_version,error,final_stage,best_stage,group_id,group_name,best_valid_auc,test_auc,test_logloss"
    );
    assert_eq!(
        view_columns(db, "stage_summary"),
        "run_id,stage,ord,kind,status,best_epoch,seconds,train_samples_per_s,infer_samples_per_s,\
         valid_auc,valid_logloss,test_auc,test_logloss"
    );
}

both_backends!(
    fresh_database_gets_every_migration,
    the_views_have_the_same_columns,
    an_older_schema_is_upgraded_with_its_runs_intact,
    a_newer_schema_is_refused_clearly,
    not_a_run_database,
);
