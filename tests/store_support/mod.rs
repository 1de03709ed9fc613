//! Shared fixtures for the store tests: plans built in Rust and a scripted run.
#![allow(dead_code)]

use clickprompt::plan::*;
pub mod pg;

use clickprompt::store::{DbTarget, Dialect, NewRun, RunRecorder, RunStatus, Store};
use clickprompt::train::events::{EvalSplit, Event, EventSink, LogLevel};
use std::path::{Path, PathBuf};

pub fn plan(name: &str, backbone: Backbone, prompts: usize) -> ExperimentPlan {
    let train = TrainPlan {
        epochs: 2,
        batch: 256,
        lr: 1e-3,
        plm_lr: None,
        weight_decay: 0.0,
        warmup: 0.1,
        schedule: Schedule::Linear,
        patience: Some(2),
        grad_clip: Some(1.0),
        accumulate: 1,
        eval_batch: 512,
        max_rows: None,
        valid_rows: None,
        bucket_by_length: false,
    };
    ExperimentPlan {
        name: name.to_string(),
        experiment: "movielens".to_string(),
        sweep: None,
        group: String::new(),
        dataset: std::sync::Arc::new(DatasetPlan {
            name: "synthetic".into(),
            source: SourcePlan::Synthetic(SyntheticSource {
                users: 100,
                items: 50,
                rows: 5000,
                seed: 7,
                themes: 4,
                semantic: 1.5,
                collaborative: 1.0,
                noise: 1.0,
            }),
            label: LabelRule::Binary {
                column: "clicked".into(),
            },
            split: SplitPlan::Random {
                seed: 1,
                ratios: [0.8, 0.1, 0.1],
            },
            min_count: 1,
            skip_bad_rows: false,
            fields: vec![FieldPlan {
                name: "user_id".into(),
                column: "user_id".into(),
                display: "User".into(),
                kind: FieldKind::Id,
                map: vec![],
                ctr: true,
                text: false,
            }],
        }),
        template: None,
        plm: None,
        ctr: Some(CtrPlan {
            embed: 16,
            backbone,
        }),
        prompts: PromptPlan {
            count: prompts,
            mode: PromptMode::Deep,
        },
        fusion: FusionPlan::None,
        stages: vec![StagePlan {
            name: "ctr_only".into(),
            kind: StageKind::CtrOnly { from: None },
            from: vec![],
            train,
            pool: None,
        }],
        device: DeviceSpec::Cpu,
        seed: 42,
        metrics: vec![MetricKind::Auc, MetricKind::Logloss],
    }
}

pub fn dcnv2() -> Backbone {
    Backbone::DcnV2 {
        cross: 3,
        mlp: vec![256, 128],
        dropout: 0.1,
    }
}

pub fn dnn() -> Backbone {
    Backbone::Dnn {
        mlp: vec![64],
        dropout: 0.0,
    }
}

pub fn sweep_plan(backbone: Backbone, prompts: usize) -> ExperimentPlan {
    let mut p = plan(&format!("sweep[prompts={prompts}]"), backbone, prompts);
    p.sweep = Some(SweepPoint {
        sweep: "sweep".into(),
        assignments: vec![("prompts".into(), prompts.to_string())],
    });
    p
}

pub const SOURCE: &str = "experiment movielens { }\n";

pub fn start(store: &Store, plan: &ExperimentPlan) -> RunRecorder {
    store
        .start_run(NewRun::new(
            plan,
            Path::new("exp/movielens.cp"),
            SOURCE,
            "cpu",
        ))
        .expect("start run")
}

pub fn steps(sink: &dyn EventSink, stage: &str, epoch: usize, from: usize, to: usize) {
    for step in from..=to {
        sink.emit(Event::Step {
            stage: stage.into(),
            epoch,
            step,
            loss: 1.0 / step as f64,
            lr: 1e-3,
            samples_per_s: 1000.0 + step as f64,
        });
    }
}

/// A complete single-stage run: 2 epochs of `n` steps, valid AUC per epoch,
/// test at the best epoch, a checkpoint and a log line.
pub fn full_run(sink: &dyn EventSink, valid: [f64; 2], test_auc: f64, test_logloss: f64, n: usize) {
    stage_run(
        sink,
        "ctr_only",
        "ctr_only",
        valid,
        test_auc,
        test_logloss,
        n,
    );
    sink.emit(Event::Log {
        level: LogLevel::Info,
        message: "done".into(),
    });
}

/// One CTR stage of 2 epochs of `n` steps: valid AUC per epoch, test at the
/// best epoch, a checkpoint `checkpoints/<stage>.safetensors`.
pub fn stage_run(
    sink: &dyn EventSink,
    stage: &str,
    kind: &str,
    valid: [f64; 2],
    test_auc: f64,
    test_logloss: f64,
    n: usize,
) {
    sink.emit(Event::StageStarted {
        stage: stage.into(),
        kind: kind.into(),
        epochs: 2,
        steps_per_epoch: n,
        rows: n * 256,
    });
    for (e, auc) in valid.iter().enumerate() {
        steps(sink, stage, e + 1, e * n + 1, (e + 1) * n);
        sink.emit(Event::Eval {
            stage: stage.into(),
            epoch: e + 1,
            split: EvalSplit::Valid,
            auc: Some(*auc),
            logloss: Some(0.6 - auc / 10.0),
            metrics: vec![],
        });
    }
    let best = if valid[1] >= valid[0] { 2 } else { 1 };
    sink.emit(Event::Eval {
        stage: stage.into(),
        epoch: best,
        split: EvalSplit::Test,
        auc: Some(test_auc),
        logloss: Some(test_logloss),
        metrics: vec![],
    });
    sink.emit(Event::Checkpoint {
        stage: stage.into(),
        epoch: Some(best),
        path: format!("checkpoints/{stage}.safetensors"),
        bytes: 123_456,
        sha256: "ab".repeat(32),
    });
    sink.emit(Event::StageFinished {
        stage: stage.into(),
        best_epoch: Some(best),
        seconds: 12.5,
        train_samples_per_s: 20480.0,
        infer_samples_per_s: Some(81920.0),
    });
}

/// A ClickPrompt run: PA-MLM pretraining (MLM figures, no AUC), then joint
/// and CTR-only fine-tuning with (valid AUCs, test AUC) each.
pub fn clickprompt_run(sink: &dyn EventSink, joint: ([f64; 2], f64), ctr_only: ([f64; 2], f64)) {
    sink.emit(Event::StageStarted {
        stage: "pretrain".into(),
        kind: "pa_mlm".into(),
        epochs: 1,
        steps_per_epoch: 3,
        rows: 96,
    });
    steps(sink, "pretrain", 1, 1, 3);
    sink.emit(Event::Eval {
        stage: "pretrain".into(),
        epoch: 1,
        split: EvalSplit::Valid,
        auc: None,
        logloss: None,
        metrics: vec![("mlm_acc".into(), 0.41), ("mlm_loss".into(), 3.2)],
    });
    sink.emit(Event::StageFinished {
        stage: "pretrain".into(),
        best_epoch: None,
        seconds: 30.0,
        train_samples_per_s: 40.0,
        infer_samples_per_s: None,
    });
    stage_run(sink, "joint", "joint", joint.0, joint.1, 1.0 - joint.1, 3);
    stage_run(
        sink,
        "ctr_only",
        "ctr_only",
        ctr_only.0,
        ctr_only.1,
        1.0 - ctr_only.1,
        3,
    );
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

pub fn db_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("runs.db")
}

pub fn finish_ok(rec: RunRecorder) {
    rec.finish(RunStatus::Finished).expect("finish");
}

/// A run database for one test: a SQLite file in a temporary folder, or a
/// fresh database on the test PostgreSQL server.
pub struct TestDb {
    pub target: DbTarget,
    /// The folder of the SQLite file (and a scratch folder for either backend).
    pub dir: tempfile::TempDir,
    _pg: Option<pg::Database>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempdir();
        TestDb {
            target: DbTarget::Sqlite(db_in(&dir)),
            dir,
            _pg: None,
        }
    }

    /// A SQLite file at `path` (which may not exist yet).
    pub fn sqlite_at(path: PathBuf) -> TestDb {
        TestDb {
            target: DbTarget::Sqlite(path),
            dir: tempdir(),
            _pg: None,
        }
    }

    /// A fresh PostgreSQL database, or None (with the reason printed) when
    /// no server is available and none was promised.
    pub fn postgres(test: &str) -> Option<TestDb> {
        match pg::Database::create(test) {
            Ok(db) => Some(TestDb {
                target: DbTarget::Postgres(db.url.clone()),
                dir: tempdir(),
                _pg: Some(db),
            }),
            Err(why) if !pg::required() => {
                pg::skip(test, &why);
                None
            }
            Err(why) => panic!("{}: {why}", pg::ENV),
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.target.dialect()
    }

    pub fn is_postgres(&self) -> bool {
        self.dialect() == Dialect::Postgres
    }

    /// `--db` for the binary.
    pub fn arg(&self) -> String {
        self.target.as_arg()
    }

    pub fn open(&self) -> Store {
        Store::open(&self.target).expect("open the store")
    }

    /// Runs SQL directly (tests only): its own runtime and connection.
    pub fn sql(&self, statements: &[&str]) {
        let (rt, mut conn) = connect(&self.target);
        rt.block_on(async {
            use sqlx::{Connection, Executor};
            for s in statements {
                conn.execute(*s)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
            conn.close().await.expect("close");
        });
    }

    pub fn scalar_i64(&self, query: &str) -> i64 {
        let (rt, mut conn) = connect(&self.target);
        rt.block_on(async {
            use sqlx::Connection;
            let v: i64 = sqlx::query_scalar(query)
                .fetch_one(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{query}: {e}"));
            conn.close().await.expect("close");
            v
        })
    }

    pub fn scalar_text(&self, query: &str) -> String {
        let (rt, mut conn) = connect(&self.target);
        rt.block_on(async {
            use sqlx::Connection;
            let v: String = sqlx::query_scalar(query)
                .fetch_one(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{query}: {e}"));
            conn.close().await.expect("close");
            v
        })
    }
}

/// A runtime and a fresh connection to `target` (tests only).
pub fn connect(target: &DbTarget) -> (tokio::runtime::Runtime, sqlx::AnyConnection) {
    sqlx::any::install_default_drivers();
    let url = match target {
        DbTarget::Sqlite(p) => format!("sqlite://{}", p.display()),
        DbTarget::Postgres(u) => u.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let conn = rt.block_on(async {
        use sqlx::Connection;
        sqlx::AnyConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connect {target}: {e}"))
    });
    (rt, conn)
}

/// A SQLite file as a test database (for tests written against a path).
pub fn sql(path: &Path, statements: &[&str]) {
    file_db(path).sql(statements)
}

pub fn scalar_i64(path: &Path, query: &str) -> i64 {
    file_db(path).scalar_i64(query)
}

pub fn scalar_text(path: &Path, query: &str) -> String {
    file_db(path).scalar_text(query)
}

fn file_db(path: &Path) -> TestDb {
    TestDb::sqlite_at(path.to_path_buf())
}

/// Runs the test body `$name(&TestDb)` twice: `$name::sqlite` on a SQLite
/// file and `$name::postgres` on a fresh PostgreSQL database (skipped, and
/// said so, when there is no server and `CLICKPROMPT_TEST_PG` is unset).
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&super::store_support::TestDb::sqlite());
            }

            #[test]
            fn postgres() {
                if let Some(db) = super::store_support::TestDb::postgres(stringify!($name)) {
                    super::$name(&db);
                }
            }
        }
    )+};
}
