//! The dashboard's loader maps a run database (built here from the
//! migration SQL; a SQLite file or a PostgreSQL database) into the view
//! types, and picks up rows written meanwhile.

mod dash_common;
mod store_support;

use clickprompt::dashfeed::StoreSource;
use clickprompt::store::DbTarget;
use clickprompt_tui::{DataSource, LogLevel, RunStatus, Split, StageState};
use dash_common::{hostname, Writer};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use store_support::TestDb;

#[allow(clippy::too_many_arguments)]
fn run_row(
    w: &mut Writer,
    id: i64,
    name: &str,
    sweep: &str,
    status: &str,
    ended: &str,
    pid: i64,
    error: &str,
) {
    let host = hostname();
    w.exec(&format!(
        "INSERT INTO runs (id, experiment_id, name, sweep_point, status, started_at, ended_at, device, host, pid,
                           crate_version, seed, plan_yaml, error)
         VALUES ({id}, 1, '{name}', {sweep}, '{status}', '2026-11-29T18:00:00.000Z', {ended}, 'cpu', '{host}', {pid},
                 '0.1.0', 42, 'plan: {{}}', {error})"
    ));
}

fn fixture(db: &DbTarget) -> Writer {
    let mut w = Writer::create(db);
    w.exec(
        "INSERT INTO experiments (id, name, source_path, file_hash, source_text, created_at)
         VALUES (1, 'scratch', 'experiments/scratch.cp', 'abc', 'experiment scratch {}', '2026-11-29T18:00:00.000Z')",
    );
    let me = std::process::id() as i64;
    // 1: finished sweep point; 2: failed; 3: running (this process); 4: running
    // but its process is gone.
    run_row(
        &mut w,
        1,
        "sweep[prompts=5]",
        "'prompts=5'",
        "FINISHED",
        "'2026-11-29T18:02:30.500Z'",
        me,
        "NULL",
    );
    run_row(
        &mut w,
        2,
        "scratch",
        "NULL",
        "FAILED",
        "'2026-11-29T18:00:10.000Z'",
        me,
        "'data file train.csv: line 17: bad row'",
    );
    run_row(
        &mut w,
        3,
        "nan-probe",
        "NULL",
        "RUNNING",
        "NULL",
        me,
        "NULL",
    );
    run_row(
        &mut w,
        4,
        "ghost",
        "NULL",
        "RUNNING",
        "NULL",
        999_999_999,
        "NULL",
    );
    w.exec(
        "INSERT INTO params (run_id, key, value) VALUES
           (1, 'prompts', '5'), (1, 'ctr.backbone.name', 'dcnv2'), (3, 'lr', '0.5')",
    );
    w.stage(1, "pretrain", 0, "pa_mlm", 1, 2, "FINISHED", "NULL", "10.0");
    w.stage(1, "finetune", 1, "joint", 2, 2, "FINISHED", "2", "20.5");
    w.stage(2, "finetune", 0, "joint", 2, 5, "RUNNING", "NULL", "NULL");
    w.stage(3, "finetune", 0, "joint", 4, 5, "RUNNING", "NULL", "NULL");
    let mut metrics =
        String::from("INSERT INTO metrics (run_id, stage, epoch, step, key, value, ts) VALUES ");
    let mut rows = Vec::new();
    for (stage, steps) in [("pretrain", 2), ("finetune", 4)] {
        for s in 1..=steps {
            let epoch = (s - 1) / 2 + 1;
            rows.push(format!(
                "(1, '{stage}', {epoch}, {s}, 'loss', {}, '2026-11-29T18:01:0{s}.000Z')",
                1.0 / s as f64
            ));
            rows.push(format!(
                "(1, '{stage}', {epoch}, {s}, 'lr', 0.001, '2026-11-29T18:01:0{s}.000Z')"
            ));
            rows.push(format!(
                "(1, '{stage}', {epoch}, {s}, 'samples_per_s', {}, '2026-11-29T18:01:0{s}.000Z')",
                100 * s
            ));
        }
    }
    // Run 3: step 2's loss was NaN (stored as NULL).
    rows.push("(3, 'finetune', 1, 1, 'loss', 0.69, '2026-11-29T18:00:01.000Z')".into());
    rows.push("(3, 'finetune', 1, 2, 'loss', NULL, '2026-11-29T18:00:02.000Z')".into());
    rows.push("(3, 'finetune', 1, 3, 'loss', 0.61, '2026-11-29T18:00:03.000Z')".into());
    metrics.push_str(&rows.join(", "));
    w.exec(&metrics);
    w.exec(
        "INSERT INTO evaluations (run_id, stage, epoch, split, auc, logloss, ts) VALUES
           (1, 'finetune', 1, 'valid', 0.70, 0.60, '2026-11-29T18:02:00.000Z'),
           (1, 'finetune', 2, 'valid', 0.72, 0.58, '2026-11-29T18:02:10.000Z'),
           (1, 'finetune', 2, 'test', 0.7134, 0.5876, '2026-11-29T18:02:20.000Z'),
           (3, 'finetune', 1, 'valid', 0.66, NULL, '2026-11-29T18:00:03.000Z')",
    );
    w.exec(
        "INSERT INTO logs (run_id, ts, level, message) VALUES
           (1, '2026-11-29T18:00:00.500Z', 'warn', 'MLM head created, not loaded'),
           (1, '2026-11-29T18:02:30.000Z', 'info', 'run finished'),
           (2, '2026-11-29T18:00:10.000Z', 'error', 'data file train.csv: line 17: bad row')",
    );
    w
}

fn maps_a_run_database_into_the_view_types(db: &TestDb) {
    let mut w = fixture(&db.target);
    let mut src = StoreSource::open(&db.target).unwrap();

    let runs = src.runs().unwrap();
    assert_eq!(
        runs.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let r1 = &runs[0];
    assert_eq!(r1.experiment, "scratch");
    assert_eq!(r1.name, "sweep[prompts=5]");
    assert_eq!(r1.sweep_point.as_deref(), Some("prompts=5"));
    assert_eq!(r1.status, RunStatus::Finished);
    assert_eq!(r1.test_auc, Some(0.7134));
    assert_eq!(r1.test_logloss, Some(0.5876));
    assert_eq!(r1.duration_s, Some(150.5));
    assert_eq!(runs[1].status, RunStatus::Failed);
    assert_eq!(runs[1].duration_s, Some(10.0));
    assert_eq!(runs[2].status, RunStatus::Running, "this process is alive");
    assert!(runs[2].duration_s.unwrap() > 0.0);
    assert_eq!(runs[2].test_auc, None, "valid only, no test yet");
    assert_eq!(runs[3].status, RunStatus::Lost, "its process is gone");
    assert_eq!(runs[3].duration_s, None);

    let d = src.run_detail(1).unwrap();
    assert_eq!(d.summary, runs[0]);
    assert_eq!(d.stages.len(), 2);
    let ft = &d.stages[1];
    assert_eq!((ft.name.as_str(), ft.kind.as_str()), ("finetune", "joint"));
    assert_eq!(
        (ft.epochs, ft.steps_per_epoch, ft.epoch, ft.step),
        (2, 2, 2, 4)
    );
    assert_eq!(ft.state, StageState::Finished);
    assert_eq!(ft.best_epoch, Some(2));
    assert_eq!(ft.elapsed_s, Some(20.5));
    let s = d.series_for("finetune").unwrap();
    assert_eq!(
        s.loss,
        vec![(1.0, 1.0), (2.0, 0.5), (3.0, 1.0 / 3.0), (4.0, 0.25)]
    );
    assert_eq!(s.lr.len(), 4);
    assert_eq!(s.samples_per_s[3], (4.0, 400.0));
    assert_eq!(d.series_for("pretrain").unwrap().loss.len(), 2);
    let valid = d.valid_evals("finetune");
    assert_eq!(
        valid.iter().map(|e| (e.epoch, e.auc)).collect::<Vec<_>>(),
        vec![(1, Some(0.70)), (2, Some(0.72))]
    );
    assert!(d
        .evals
        .iter()
        .any(|e| e.split == Split::Test && e.epoch == 2 && e.auc == Some(0.7134)));
    assert_eq!(d.param("prompts"), Some("5"));
    assert_eq!(d.param("ctr.backbone.name"), Some("dcnv2"));
    assert_eq!(d.logs.len(), 2);
    assert_eq!(d.logs[0].level, LogLevel::Warn);
    assert_eq!(d.logs[0].message, "MLM head created, not loaded");
    assert_eq!(d.error, None);

    let failed = src.run_detail(2).unwrap();
    assert_eq!(
        failed.error.as_deref(),
        Some("data file train.csv: line 17: bad row")
    );
    assert_eq!(failed.stages[0].state, StageState::Stopped);
    assert_eq!(failed.logs[0].level, LogLevel::Error);

    // The running run: NaN step kept as NaN, progress from the newest step,
    // and the stage its plan has yet to run shown as pending.
    w.exec(
        "UPDATE runs SET plan_yaml = 'name: nan-probe
stages:
- name: finetune
  kind:
    kind: joint
  train:
    epochs: 4
- name: ctr_long
  kind:
    kind: ctr_only
    from: finetune
  train:
    epochs: 6
' WHERE id = 3",
    );
    let live = src.run_detail(3).unwrap();
    assert_eq!(live.stages.len(), 2);
    let pending = &live.stages[1];
    assert_eq!(
        (
            pending.name.as_str(),
            pending.kind.as_str(),
            pending.epochs,
            pending.state
        ),
        ("ctr_long", "ctr_only", 6, StageState::Pending)
    );
    let loss = &live.series_for("finetune").unwrap().loss;
    assert_eq!(loss.len(), 3);
    assert!(loss[1].1.is_nan());
    let st = &live.stages[0];
    assert_eq!(st.state, StageState::Running);
    assert_eq!((st.epoch, st.step, st.total_steps()), (1, 3, 20));
    assert!(st.elapsed_s.unwrap() > 0.0);

    // Rows written while watching show up on the next poll, and only once.
    w.exec(
        "INSERT INTO metrics (run_id, stage, epoch, step, key, value, ts) VALUES
           (3, 'finetune', 2, 6, 'loss', 0.55, '2026-11-29T18:00:06.000Z'),
           (3, 'finetune', 2, 6, 'lr', 0.001, '2026-11-29T18:00:06.000Z');
         INSERT INTO logs (run_id, ts, level, message)
           VALUES (3, '2026-11-29T18:00:06.000Z', 'warn', 'non-finite loss at step 2');",
    );
    let live = src.run_detail(3).unwrap();
    let s = live.series_for("finetune").unwrap();
    assert_eq!(s.loss.len(), 4);
    assert_eq!(s.loss[3], (6.0, 0.55));
    assert_eq!(s.lr, vec![(6.0, 0.001)]);
    assert_eq!((live.stages[0].epoch, live.stages[0].step), (2, 6));
    assert_eq!(
        live.logs.last().unwrap().message,
        "non-finite loss at step 2"
    );
    let again = src.run_detail(3).unwrap();
    assert_eq!(again.series_for("finetune").unwrap().loss.len(), 4);
    assert_eq!(again.logs.len(), 1);

    // The status flips when the run ends.
    w.exec(
        "UPDATE runs SET status = 'FINISHED', ended_at = '2026-11-29T18:00:30.000Z' WHERE id = 3",
    );
    let live = src.run_detail(3).unwrap();
    assert_eq!(live.summary.status, RunStatus::Finished);
    assert_eq!(live.summary.duration_s, Some(30.0));
    assert_eq!(
        live.stages[0].state,
        StageState::Stopped,
        "stage never marked finished"
    );
    assert_eq!(live.stages.len(), 1, "an ended run has no pending stages");
    assert!(src.run_detail(99).unwrap_err().contains("no run #99"));
}

fn renders_the_loaded_data(db: &TestDb) {
    let _w = fixture(&db.target);
    let mut src = StoreSource::open(&db.target).unwrap();
    let mut app =
        clickprompt_tui::App::new(clickprompt_tui::Follow::Run(1), clickprompt_tui::View::Live);
    app.refresh(&mut src);
    assert_eq!(app.error, None);
    let text = clickprompt_tui::render_text(&app, 120, 36);
    for want in [
        "sweep[prompts=5]",
        "FINISHED",
        "test @2",
        "0.7134",
        "MLM head created, not loaded",
    ] {
        assert!(text.contains(want), "missing {want:?}\n{text}");
    }
}

fn missing_or_foreign_databases(db: &TestDb) {
    let target = match &db.target {
        DbTarget::Sqlite(_) => {
            let path = db.dir.path().join("nope.db");
            let err = StoreSource::open(&path).err().unwrap();
            assert_eq!(clickprompt::error::exit_code(&err), 2);
            assert!(err.to_string().contains("no run database at"), "{err}");
            DbTarget::Sqlite(path)
        }
        pg => {
            // A database without the tables is not a run database.
            let err = StoreSource::open(pg).err().unwrap();
            assert_eq!(clickprompt::error::exit_code(&err), 2);
            assert!(
                err.to_string().contains("not a clickprompt run database"),
                "{err}"
            );
            pg.clone()
        }
    };

    // Watching a database that does not exist yet (or has no tables yet):
    // no runs, no error; the runs appear once `run` creates it.
    let mut src = StoreSource::watch(&target).unwrap();
    assert_eq!(src.runs().unwrap(), vec![]);
    assert_eq!(src.max_run_id(), 0);
    let _w = fixture(&target);
    assert_eq!(src.runs().unwrap().len(), 4);
    assert_eq!(src.max_run_id(), 4);
    if !db.is_postgres() {
        some_other_sqlite_file_is_refused(db);
    }
}

fn some_other_sqlite_file_is_refused(db: &TestDb) {
    let dir = &db.dir;

    // Some other SQLite file is refused with a clear message.
    let other = dir.path().join("other.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = SqliteConnectOptions::new()
            .filename(&other)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::raw_sql("CREATE TABLE t (x INTEGER)")
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    });
    let err = StoreSource::open(&other).err().unwrap();
    assert_eq!(clickprompt::error::exit_code(&err), 2);
    assert!(
        err.to_string().contains("not a clickprompt run database"),
        "{err}"
    );
}

#[test]
fn reads_a_wal_database_after_the_writer_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    let w = fixture(&DbTarget::Sqlite(path.clone()));
    w.rt.block_on(w.conn.close()).unwrap();
    let mut src = StoreSource::open(&path).unwrap();
    assert_eq!(src.runs().unwrap().len(), 4);
}

both_backends!(
    maps_a_run_database_into_the_view_types,
    renders_the_loaded_data,
    missing_or_foreign_databases,
);
