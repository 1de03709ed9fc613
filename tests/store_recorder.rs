//! Recording: events land in the right tables; final statuses; polling API.

mod store_support;

use clickprompt::store::{default_db, DbTarget, NewRun, RunFilter, RunStatus};
use clickprompt::train::events::{EvalSplit, Event, EventSink, LogLevel};
use store_support::*;

fn a_full_run_is_recorded_in_every_table(db: &TestDb) {
    let store = db.open();
    let plan = plan("movielens", dcnv2(), 5);
    let rec = start(&store, &plan);
    let id = rec.run_id();
    full_run(&rec, [0.70, 0.75], 0.76, 0.52, 10);
    // A NaN loss and extra eval metrics.
    rec.emit(Event::Step {
        stage: "ctr_only".into(),
        epoch: 2,
        step: 21,
        loss: f64::NAN,
        lr: 0.0,
        samples_per_s: 1.0,
    });
    rec.emit(Event::Eval {
        stage: "ctr_only".into(),
        epoch: 2,
        split: EvalSplit::Train,
        auc: None,
        logloss: Some(0.4),
        metrics: vec![("mlm_acc".into(), 0.41), ("bad".into(), f64::INFINITY)],
    });
    // Running while recording.
    rec.flush().expect("flush");
    assert_eq!(store.run_summary(id).expect("summary").status, "RUNNING");
    rec.finish(RunStatus::Finished).expect("finish");

    let d = store.run_detail(id).expect("detail");
    assert_eq!(d.summary.status, "FINISHED");
    assert!(d.summary.ended_at.is_some());
    assert_eq!(d.summary.experiment, "movielens");
    assert_eq!(d.summary.device, "cpu");
    assert_eq!(d.summary.seed, 42);
    assert_eq!(d.summary.final_stage.as_deref(), Some("ctr_only"));
    assert_eq!(d.summary.best_valid_auc, Some(0.75));
    assert_eq!(d.summary.test_auc, Some(0.76));
    assert_eq!(d.summary.test_logloss, Some(0.52));
    assert_eq!(d.source_path, "exp/movielens.cp");
    assert_eq!(d.file_hash.len(), 64);
    assert_eq!(d.pid, std::process::id() as i64);

    let param = |k: &str| {
        d.params
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(param("ctr.backbone.name").as_deref(), Some("dcnv2"));
    assert_eq!(param("ctr.backbone.mlp").as_deref(), Some("[256,128]"));
    assert_eq!(param("prompts.count").as_deref(), Some("5"));
    assert_eq!(param("stages.ctr_only.lr").as_deref(), Some("0.001"));

    // The stored plan is the plan.
    let back: clickprompt::plan::ExperimentPlan =
        serde_yaml::from_str(&d.plan_yaml).expect("plan yaml");
    assert_eq!(back, plan);

    assert_eq!(d.stages.len(), 1);
    let st = &d.stages[0];
    assert_eq!(
        (st.stage.as_str(), st.ord, st.status.as_str()),
        ("ctr_only", 0, "FINISHED")
    );
    assert_eq!((st.epochs, st.steps_per_epoch, st.rows), (2, 10, 2560));
    assert_eq!(st.best_epoch, Some(2));
    assert_eq!(st.seconds, Some(12.5));
    assert_eq!(st.train_samples_per_s, Some(20480.0));
    assert_eq!(st.infer_samples_per_s, Some(81920.0));
    assert_eq!((st.last_step, st.last_epoch), (21, Some(2)));

    let evals: Vec<(String, i64, String)> = d
        .evaluations
        .iter()
        .map(|e| (e.stage.clone(), e.epoch, e.split.clone()))
        .collect();
    assert_eq!(
        evals,
        vec![
            ("ctr_only".into(), 1, "valid".into()),
            ("ctr_only".into(), 2, "train".into()),
            ("ctr_only".into(), 2, "valid".into()),
            ("ctr_only".into(), 2, "test".into()),
        ]
    );
    let train = &d.evaluations[1];
    assert_eq!(train.auc, None);
    assert_eq!(train.metrics.get("mlm_acc"), Some(&Some(0.41)));
    assert_eq!(train.metrics.get("bad"), Some(&None));

    assert_eq!(d.artifacts.len(), 1);
    assert_eq!(d.artifacts[0].bytes, 123_456);
    assert_eq!(d.artifacts[0].epoch, Some(2));
    assert_eq!(
        d.logs
            .iter()
            .map(|l| l.message.as_str())
            .collect::<Vec<_>>(),
        vec!["done"]
    );

    let loss = store
        .metric_series(id, Some("ctr_only"), Some("loss"))
        .expect("series");
    assert_eq!(loss.len(), 21);
    assert_eq!(loss[0].value, Some(1.0));
    assert_eq!(loss[9].step, 10);
    assert_eq!(loss[20].value, None, "NaN is stored as NULL");
    let all = store.metric_series(id, None, None).expect("all");
    assert_eq!(all.len(), 63);
    let sps = store
        .metric_series(id, None, Some("samples_per_s"))
        .expect("sps");
    assert_eq!(sps[4].value, Some(1005.0));
}

fn polling_returns_only_new_rows(db: &TestDb) {
    let store = db.open();
    let rec = start(&store, &plan("p", dnn(), 1));
    let id = rec.run_id();
    rec.emit(Event::StageStarted {
        stage: "s".into(),
        kind: "ctr_only".into(),
        epochs: 1,
        steps_per_epoch: 5,
        rows: 10,
    });
    steps(&rec, "s", 1, 1, 5);
    rec.emit(Event::Log {
        level: LogLevel::Warn,
        message: "first".into(),
    });
    rec.flush().expect("flush");
    let first = store.metrics_since(id, 0, 1000).expect("since 0");
    assert_eq!(first.len(), 15);
    let last = first.last().expect("rows").id;
    assert!(store
        .metrics_since(id, last, 1000)
        .expect("none")
        .is_empty());
    steps(&rec, "s", 1, 6, 7);
    rec.emit(Event::Log {
        level: LogLevel::Error,
        message: "second".into(),
    });
    rec.flush().expect("flush");
    let more = store.metrics_since(id, last, 1000).expect("more");
    assert_eq!(
        more.iter().map(|m| m.step).collect::<Vec<_>>(),
        vec![6, 6, 6, 7, 7, 7]
    );
    assert_eq!(store.metrics_since(id, last, 2).expect("limited").len(), 2);
    let logs = store.logs_tail(id, 1).expect("tail");
    assert_eq!(
        (logs[0].level.as_str(), logs[0].message.as_str()),
        ("error", "second")
    );
    let since = store.logs_since(id, logs[0].id - 1).expect("since");
    assert_eq!(since.len(), 1);
    rec.finish(RunStatus::Finished).expect("finish");
}

fn final_statuses_and_interrupt_handle(db: &TestDb) {
    let store = db.open();

    let failed = start(&store, &plan("f", dnn(), 1));
    let fid = failed.run_id();
    failed
        .finish(RunStatus::Failed("out of memory".into()))
        .expect("finish");
    let f = store.run_summary(fid).expect("f");
    assert_eq!(
        (f.status.as_str(), f.error.as_deref()),
        ("FAILED", Some("out of memory"))
    );

    // Ctrl-C: the handle flushes and marks INTERRUPTED; a later finish keeps that.
    let rec = start(&store, &plan("i", dnn(), 1));
    let iid = rec.run_id();
    rec.emit(Event::StageStarted {
        stage: "s".into(),
        kind: "joint".into(),
        epochs: 1,
        steps_per_epoch: 100,
        rows: 10,
    });
    steps(&rec, "s", 1, 1, 40);
    let handle = rec.interrupt_handle();
    std::thread::spawn(move || handle.interrupt())
        .join()
        .expect("thread")
        .expect("interrupt");
    let i = store.run_summary(iid).expect("i");
    assert_eq!(i.status, "INTERRUPTED");
    assert_eq!(
        i.error.as_deref(),
        Some("interrupted by a signal (Ctrl-C, SIGTERM or SIGHUP)")
    );
    assert_eq!(
        store
            .metric_series(iid, None, Some("loss"))
            .expect("loss")
            .len(),
        40
    );
    assert_eq!(store.stages(iid).expect("stages")[0].status, "INTERRUPTED");
    rec.finish(RunStatus::Finished)
        .expect("finish after interrupt");
    assert_eq!(store.run_summary(iid).expect("i").status, "INTERRUPTED");

    // Dropped without finish (panic, early return): FAILED, with the events kept.
    let dropped = start(&store, &plan("d", dnn(), 1));
    let did = dropped.run_id();
    dropped.emit(Event::Log {
        level: LogLevel::Info,
        message: "before the panic".into(),
    });
    drop(dropped);
    let d = store.run_summary(did).expect("d");
    assert_eq!(d.status, "FAILED");
    assert!(d
        .error
        .as_deref()
        .unwrap_or("")
        .contains("without a final status"));
    assert_eq!(store.logs_tail(did, 5).expect("logs").len(), 1);

    let running = store
        .list_runs(&RunFilter {
            status: Some("failed".into()),
            ..Default::default()
        })
        .expect("list");
    assert_eq!(
        running.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![did, fid]
    );
}

fn resume_reopens_and_appends(db: &TestDb) {
    let store = db.open();
    let rec = start(&store, &plan("r", dcnv2(), 2));
    let id = rec.run_id();
    rec.emit(Event::StageStarted {
        stage: "pretrain".into(),
        kind: "pa_mlm".into(),
        epochs: 1,
        steps_per_epoch: 3,
        rows: 30,
    });
    steps(&rec, "pretrain", 1, 1, 3);
    rec.emit(Event::StageFinished {
        stage: "pretrain".into(),
        best_epoch: None,
        seconds: 1.0,
        train_samples_per_s: 5.0,
        infer_samples_per_s: None,
    });
    rec.emit(Event::StageStarted {
        stage: "joint".into(),
        kind: "joint".into(),
        epochs: 3,
        steps_per_epoch: 4,
        rows: 40,
    });
    steps(&rec, "joint", 1, 1, 4);
    rec.emit(Event::Eval {
        stage: "joint".into(),
        epoch: 1,
        split: EvalSplit::Valid,
        auc: Some(0.7),
        logloss: Some(0.5),
        metrics: vec![],
    });
    rec.emit(Event::Checkpoint {
        stage: "joint".into(),
        epoch: Some(1),
        path: "ck/joint-1".into(),
        bytes: 10,
        sha256: "00".repeat(32),
    });
    steps(&rec, "joint", 2, 5, 6);
    rec.finish(RunStatus::Interrupted).expect("finish");

    // Finished runs and unknown ids cannot be resumed.
    let done = start(&store, &plan("done", dnn(), 1));
    let done_id = done.run_id();
    done.finish(RunStatus::Finished).expect("finish");
    let e = store.reopen_run(done_id).err().expect("finished run");
    assert!(e.to_string().contains("already FINISHED"), "{e}");
    assert!(store
        .reopen_run(9999)
        .err()
        .expect("missing")
        .to_string()
        .contains("no run 9999"));

    let info = store.resume_info(id).expect("info");
    assert_eq!(info.run.status, "INTERRUPTED");
    assert_eq!(info.next_stage().map(|s| s.stage.as_str()), Some("joint"));
    assert_eq!(
        info.last_checkpoint("joint").map(|a| a.path.as_str()),
        Some("ck/joint-1")
    );
    assert_eq!(info.last_evaluated_epoch("joint"), Some(1));
    let joint = &info.stages[1];
    assert_eq!(
        (joint.last_step, joint.last_epoch, joint.status.as_str()),
        (6, Some(2), "INTERRUPTED")
    );
    assert_eq!(info.stages[0].status, "FINISHED");

    let (rec, info) = store.reopen_run(id).expect("reopen");
    assert_eq!(info.run.status, "RUNNING");
    // A second resume while this one is live is refused.
    assert!(store
        .reopen_run(id)
        .err()
        .expect("twice")
        .to_string()
        .contains("still running"));
    rec.emit(Event::StageStarted {
        stage: "joint".into(),
        kind: "joint".into(),
        epochs: 3,
        steps_per_epoch: 4,
        rows: 40,
    });
    steps(&rec, "joint", 2, 5, 12);
    rec.emit(Event::StageStarted {
        stage: "extra".into(),
        kind: "ctr_only".into(),
        epochs: 1,
        steps_per_epoch: 1,
        rows: 1,
    });
    rec.finish(RunStatus::Finished).expect("finish");

    let d = store.run_detail(id).expect("detail");
    assert_eq!(d.summary.status, "FINISHED");
    assert_eq!(d.resumed, 1);
    let order: Vec<(&str, i64)> = d.stages.iter().map(|s| (s.stage.as_str(), s.ord)).collect();
    assert_eq!(order, vec![("pretrain", 0), ("joint", 1), ("extra", 2)]);
    assert_eq!(d.stages[1].last_step, 12);
    // Steps 5 and 6 were recorded twice (before and after the resume): both kept, in order.
    let joint_loss = store
        .metric_series(id, Some("joint"), Some("loss"))
        .expect("loss");
    assert_eq!(joint_loss.len(), 4 + 2 + 8);
    assert!(d
        .logs
        .iter()
        .any(|l| l.message.starts_with("resumed by process")));
}

/// NULLs (non-finite values, missing metrics) written before numbers through
/// the same statements: every value lands (PostgreSQL types a statement's
/// parameters when it is first prepared).
fn nulls_first_then_numbers(db: &TestDb) {
    let store = db.open();
    for round in 0..2 {
        let p = plan("nulls", dnn(), 1);
        let mut info = NewRun::new(&p, std::path::Path::new("n.cp"), SOURCE, "cpu");
        // A text param (num NULL) before a numeric one.
        info.params = vec![
            ("a.text".into(), format!("round {round}")),
            ("b.num".into(), "1.5".into()),
        ];
        let rec = store.start_run(info).expect("start");
        let id = rec.run_id();
        assert_eq!(
            db.scalar_text(&format!(
                "SELECT CAST(num AS TEXT) FROM params WHERE run_id = {id} AND key = 'b.num'"
            )),
            "1.5"
        );
        rec.emit(Event::StageStarted {
            stage: "s".into(),
            kind: "joint".into(),
            epochs: 1,
            steps_per_epoch: 4,
            rows: 4,
        });
        rec.emit(Event::Step {
            stage: "s".into(),
            epoch: 1,
            step: 1,
            loss: f64::NAN,
            lr: f64::INFINITY,
            samples_per_s: f64::NAN,
        });
        rec.flush().expect("flush");
        steps(&rec, "s", 1, 2, 3);
        rec.flush().expect("flush");
        rec.emit(Event::Step {
            stage: "s".into(),
            epoch: 1,
            step: 4,
            loss: f64::NAN,
            lr: 0.5,
            samples_per_s: 2.0,
        });
        for (epoch, auc) in [(1, None), (2, Some(0.75))] {
            rec.emit(Event::Eval {
                stage: "s".into(),
                epoch,
                split: EvalSplit::Valid,
                auc,
                logloss: auc.map(|a| 1.0 - a),
                metrics: vec![],
            });
            rec.flush().expect("flush");
        }
        rec.emit(Event::StageFinished {
            stage: "s".into(),
            best_epoch: None,
            seconds: f64::NAN,
            train_samples_per_s: 1.0,
            infer_samples_per_s: None,
        });
        rec.finish(RunStatus::Finished).expect("finish");
        let loss: Vec<Option<f64>> = store
            .metric_series(id, Some("s"), Some("loss"))
            .expect("loss")
            .iter()
            .map(|m| m.value)
            .collect();
        assert_eq!(loss, vec![None, Some(0.5), Some(1.0 / 3.0), None]);
        let lr = store.metric_series(id, None, Some("lr")).expect("lr");
        assert_eq!(lr[0].value, None);
        assert_eq!(lr[3].value, Some(0.5));
        let evals = store.evaluations(id).expect("evals");
        assert_eq!(evals[0].auc, None);
        assert_eq!(evals[1].auc, Some(0.75));
        assert_eq!(
            store.run_summary(id).expect("run").best_valid_auc,
            Some(0.75)
        );
        let st = &store.stages(id).expect("stages")[0];
        assert_eq!((st.seconds, st.train_samples_per_s), (None, Some(1.0)));
    }
}

both_backends!(
    nulls_first_then_numbers,
    a_full_run_is_recorded_in_every_table,
    polling_returns_only_new_rows,
    final_statuses_and_interrupt_handle,
    resume_reopens_and_appends,
);

#[test]
fn default_db_prefers_env_then_working_directory() {
    // The only test that touches CLICKPROMPT_DB.
    std::env::remove_var("CLICKPROMPT_DB");
    assert_eq!(default_db(), DbTarget::Sqlite("runs.db".into()));
    std::env::set_var("CLICKPROMPT_DB", "");
    assert_eq!(default_db(), DbTarget::Sqlite("runs.db".into()));
    std::env::set_var("CLICKPROMPT_DB", "/tmp/elsewhere.db");
    assert_eq!(default_db(), DbTarget::Sqlite("/tmp/elsewhere.db".into()));
    std::env::set_var("CLICKPROMPT_DB", "postgres://lab@db.lab/runs");
    assert_eq!(
        default_db(),
        DbTarget::Postgres("postgres://lab@db.lab/runs".into())
    );
    std::env::remove_var("CLICKPROMPT_DB");
}
