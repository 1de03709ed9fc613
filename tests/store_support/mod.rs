//! Shared fixtures for the store tests: plans built in Rust and a scripted run.
#![allow(dead_code)]

use clickprompt::plan::*;
use clickprompt::store::{NewRun, RunRecorder, RunStatus, Store};
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
        dataset: DatasetPlan {
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
        },
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
    sink.emit(Event::StageStarted {
        stage: "ctr_only".into(),
        kind: "ctr_only".into(),
        epochs: 2,
        steps_per_epoch: n,
        rows: n * 256,
    });
    for (e, auc) in valid.iter().enumerate() {
        steps(sink, "ctr_only", e + 1, e * n + 1, (e + 1) * n);
        sink.emit(Event::Eval {
            stage: "ctr_only".into(),
            epoch: e + 1,
            split: EvalSplit::Valid,
            auc: Some(*auc),
            logloss: Some(0.6 - auc / 10.0),
            metrics: vec![],
        });
    }
    let best = if valid[1] >= valid[0] { 2 } else { 1 };
    sink.emit(Event::Eval {
        stage: "ctr_only".into(),
        epoch: best,
        split: EvalSplit::Test,
        auc: Some(test_auc),
        logloss: Some(test_logloss),
        metrics: vec![],
    });
    sink.emit(Event::Checkpoint {
        stage: "ctr_only".into(),
        epoch: Some(best),
        path: "checkpoints/ctr_only.safetensors".into(),
        bytes: 123_456,
        sha256: "ab".repeat(32),
    });
    sink.emit(Event::StageFinished {
        stage: "ctr_only".into(),
        best_epoch: Some(best),
        seconds: 12.5,
        train_samples_per_s: 20480.0,
        infer_samples_per_s: Some(81920.0),
    });
    sink.emit(Event::Log {
        level: LogLevel::Info,
        message: "done".into(),
    });
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

/// Runs SQL directly against the file (tests only): its own runtime and connection.
pub fn sql(path: &Path, statements: &[&str]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("connect");
        for s in statements {
            sqlx::query(s)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        conn.close().await.expect("close");
    });
}

pub fn scalar_i64(path: &Path, query: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("connect");
        let v: i64 = sqlx::query_scalar(query)
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        conn.close().await.expect("close");
        v
    })
}

pub fn scalar_text(path: &Path, query: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("connect");
        let v: String = sqlx::query_scalar(query)
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        conn.close().await.expect("close");
        v
    })
}
