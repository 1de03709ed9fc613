//! Stage figures in the history: the best stage (chosen on validation AUC)
//! in `runs list`, its JSON and the `run_summary` view; any stage's figures
//! by name (`--stage`, `--columns`, `--where`, `--sort`); the dashboard's
//! loader agreeing with the database; and `runs export --format mlflow`.
//! Each test runs on SQLite and on PostgreSQL.

mod store_support;

use clickprompt::dashfeed::StoreSource;
use clickprompt::store::{CheckpointMode, RunFilter};
use clickprompt_tui::DataSource;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use store_support::*;

/// 1: ClickPrompt whose joint stage wins on validation (0.78 > 0.77);
/// 2: ClickPrompt whose CTR-only stage wins (0.80 > 0.76);
/// 3: a single-stage scratch run.
fn fixture(db: &TestDb) -> String {
    let store = db.open();
    let a = start(&store, &sweep_plan(dcnv2(), 5));
    clickprompt_run(&a, ([0.74, 0.78], 0.775), ([0.76, 0.77], 0.768));
    finish_ok(a);
    let b = start(&store, &sweep_plan(dcnv2(), 10));
    clickprompt_run(&b, ([0.75, 0.76], 0.755), ([0.79, 0.80], 0.795));
    finish_ok(b);
    let c = start(&store, &plan("movielens", dnn(), 0));
    full_run(&c, [0.70, 0.72], 0.71, 0.55, 4);
    finish_ok(c);
    drop(store);
    // Run i started at 09:00 + i hours and took 10 minutes.
    let updates: Vec<String> = (1..=3)
        .map(|id| {
            format!(
                "UPDATE runs SET started_at = '2026-11-29T{h:02}:00:00.000Z', \
                 ended_at = '2026-11-29T{h:02}:10:00.000Z' WHERE id = {id}",
                h = 9 + id
            )
        })
        .collect();
    db.sql(&updates.iter().map(String::as_str).collect::<Vec<_>>());
    db.arg()
}

fn cp_in(cwd: &Path, db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clickprompt"))
        .arg("runs")
        .args(args)
        .arg("--db")
        .arg(db)
        .current_dir(cwd)
        .env_remove("CLICKPROMPT_DB")
        .stdin(Stdio::null())
        .output()
        .expect("run clickprompt")
}

fn ok(db: &str, args: &[&str]) -> String {
    let out = cp_in(Path::new("."), db, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn fails(db: &str, args: &[&str]) -> String {
    let out = cp_in(Path::new("."), db, args);
    assert_eq!(out.status.code(), Some(2), "{args:?} should be refused");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ids(text: &str) -> Vec<i64> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

fn list_shows_the_best_stage_and_any_stage_by_name(test_db: &TestDb) {
    let db = &fixture(test_db);
    assert_eq!(
        ok(db, &["list"]),
        "\
ID  EXPERIMENT  SWEEP       SEED  STATUS    STARTED (UTC)        DURATION  BEST STAGE  VALID AUC  TEST AUC  TEST LOGLOSS
 3  movielens   -             42  FINISHED  2026-11-29 12:00:00    10m00s  ctr_only       0.7200    0.7100        0.5500
 2  movielens   prompts=10    42  FINISHED  2026-11-29 11:00:00    10m00s  ctr_only       0.8000    0.7950        0.2050
 1  movielens   prompts=5     42  FINISHED  2026-11-29 10:00:00    10m00s  joint          0.7800    0.7750        0.2250
"
    );
    assert_eq!(
        ok(db, &["list", "--stage", "joint,ctr_only", "--sort", "ctr_only.test_auc"]),
        "\
ID  EXPERIMENT  SWEEP       SEED  STATUS    STARTED (UTC)        DURATION  joint.valid_auc  joint.test_auc  joint.test_logloss  ctr_only.valid_auc  ctr_only.test_auc  ctr_only.test_logloss
 2  movielens   prompts=10    42  FINISHED  2026-11-29 11:00:00    10m00s           0.7600          0.7550              0.2450              0.8000             0.7950                 0.2050
 1  movielens   prompts=5     42  FINISHED  2026-11-29 10:00:00    10m00s           0.7800          0.7750              0.2250              0.7700             0.7680                 0.2320
 3  movielens   -             42  FINISHED  2026-11-29 12:00:00    10m00s                -               -                   -              0.7200             0.7100                 0.5500
"
    );
    // --where and --sort reach stages by name; plain test_auc is the best stage's.
    assert_eq!(
        ids(&ok(db, &["list", "--where", "joint.test_auc > 0.77"])),
        vec![1]
    );
    assert_eq!(
        ids(&ok(
            db,
            &[
                "list",
                "--where",
                "best_stage = joint or ctr_only.valid_auc >= 0.8"
            ]
        )),
        vec![2, 1]
    );
    assert_eq!(
        ids(&ok(db, &["list", "--where", "test_auc > 0.77"])),
        vec![2, 1]
    );
    assert_eq!(
        ids(&ok(db, &["list", "--sort", "joint.test_auc", "--asc"])),
        vec![2, 1, 3],
        "missing values last"
    );
    let out = ok(db, &["best", "--metric", "test_auc"]);
    assert!(
        out.starts_with("best by test_auc (higher is better): run 2 with 0.7950\n"),
        "{out}"
    );
    let out = ok(db, &["best", "--metric", "joint.test_auc"]);
    assert!(
        out.starts_with("best by joint.test_auc (higher is better): run 1 with 0.7750\n"),
        "{out}"
    );

    // Extra columns: any field, text or number, in the table and the JSON.
    let out = ok(
        db,
        &[
            "list",
            "--columns",
            "final_stage,params.prompts.count,pretrain.seconds",
        ],
    );
    let head = out.lines().next().expect("header");
    assert!(
        head.ends_with("TEST LOGLOSS  final_stage  params.prompts.count  pretrain.seconds"),
        "{out}"
    );
    let row1 = out.lines().last().expect("run 1");
    assert!(
        row1.ends_with("ctr_only                        5                30"),
        "{out}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(
        db,
        &[
            "list",
            "--json",
            "--stage",
            "joint",
            "--columns",
            "params.ctr.backbone.name",
        ],
    ))
    .expect("json");
    let run1 = &json[2];
    assert_eq!(run1["id"], 1);
    assert_eq!(run1["best_stage"], "joint");
    assert_eq!(run1["final_stage"], "ctr_only");
    assert_eq!(run1["test_auc"], 0.775);
    assert_eq!(run1["best_valid_auc"], 0.78);
    assert_eq!(run1["fields"]["joint.test_auc"], 0.775);
    assert_eq!(run1["fields"]["joint.valid_auc"], 0.78);
    assert_eq!(run1["fields"]["params.ctr.backbone.name"], "dcnv2");
    assert_eq!(json[0]["fields"]["joint.test_auc"], serde_json::Value::Null);
    let plain: serde_json::Value =
        serde_json::from_str(&ok(db, &["list", "--json"])).expect("json");
    assert!(plain[0].get("fields").is_none(), "no fields unless asked");
}

fn a_stage_no_run_has_is_named_with_the_stages_there_are(test_db: &TestDb) {
    let db = &fixture(test_db);
    let err = fails(
        db,
        &["list", "--where", "test_auc > 0.7 and jiont.test_auc > 0.7"],
    );
    assert_eq!(
        err,
        "invalid --where expression: no run has a stage `jiont` (did you mean `joint`?); stages: ctr_only, joint, pretrain
  test_auc > 0.7 and jiont.test_auc > 0.7
                     ^^^^^^^^^^^^^^
"
    );
    let err = fails(db, &["list", "--stage", "jiont"]);
    assert!(
        err.contains("invalid --stage `jiont`: no run has a stage `jiont` (did you mean `joint`?)"),
        "{err}"
    );
    let err = fails(db, &["list", "--sort", "ctronly.test_auc"]);
    assert!(err.contains("invalid --sort `ctronly.test_auc`: no run has a stage `ctronly` (did you mean `ctr_only`?)"), "{err}");
    let err = fails(db, &["list", "--columns", "joint.test_acu"]);
    assert!(err.contains("unknown stage metric `test_acu`"), "{err}");
    let err = fails(db, &["best", "--metric", "pretrian.seconds"]);
    assert!(
        err.contains("no run has a stage `pretrian` (did you mean `pretrain`?)"),
        "{err}"
    );
    // `<stage>.valid.<key>` names a stage too.
    let err = fails(db, &["list", "--where", "pretrian.valid.mlm_acc > 0.3"]);
    assert_eq!(
        err,
        "invalid --where expression: no run has a stage `pretrian` (did you mean `pretrain`?); stages: ctr_only, joint, pretrain
  pretrian.valid.mlm_acc > 0.3
  ^^^^^^^^^^^^^^^^^^^^^^
"
    );
    for flag in ["--sort", "--columns"] {
        let err = fails(db, &["list", flag, "pretrian.valid.mlm_acc"]);
        assert!(
            err.contains(&format!(
                "invalid {flag} `pretrian.valid.mlm_acc`: no run has a stage `pretrian`"
            )),
            "{err}"
        );
    }
    assert_eq!(
        ids(&ok(
            db,
            &["list", "--where", "pretrain.valid.mlm_acc > 0.4"]
        )),
        vec![2, 1]
    );
    // Groups aggregate each run's best stage; per-stage columns are for runs.
    let err = fails(db, &["list", "--groups", "--stage", "joint"]);
    assert!(err.contains("cannot be used with"), "{err}");
}

fn views_and_the_dashboard_agree_on_the_best_stage(test_db: &TestDb) {
    fixture(test_db);
    let store = test_db.open();
    let runs = store.list_runs(&RunFilter::default()).expect("list");
    let best: Vec<(i64, Option<&str>, Option<f64>)> = runs
        .iter()
        .map(|r| (r.id, r.best_stage.as_deref(), r.test_auc))
        .collect();
    assert_eq!(
        best,
        vec![
            (3, Some("ctr_only"), Some(0.71)),
            (2, Some("ctr_only"), Some(0.795)),
            (1, Some("joint"), Some(0.775))
        ]
    );
    // stage_summary: one row per run and stage, PA-MLM without AUC.
    assert_eq!(test_db.scalar_i64("SELECT COUNT(*) FROM stage_summary"), 7);
    assert_eq!(
        test_db.scalar_text(
            "SELECT stage || ':' || valid_auc || ':' || test_auc FROM stage_summary WHERE run_id = 1 AND stage = 'joint'"
        ),
        "joint:0.78:0.775"
    );
    assert_eq!(
        test_db.scalar_i64(
            "SELECT COUNT(*) FROM stage_summary WHERE stage = 'pretrain' AND valid_auc IS NULL"
        ),
        2
    );
    // A tie on validation goes to the later stage, as in the dashboard.
    let store2 = store.clone();
    let t = start(&store2, &sweep_plan(dcnv2(), 20));
    clickprompt_run(&t, ([0.70, 0.79], 0.781), ([0.79, 0.78], 0.788));
    finish_ok(t);
    assert_eq!(
        store.run_summary(4).expect("run 4").best_stage.as_deref(),
        Some("ctr_only")
    );

    let mut src = StoreSource::open(&test_db.target).expect("dashboard source");
    let dash = src.runs().expect("runs");
    for r in store.list_runs(&RunFilter::default()).expect("list") {
        let d = dash.iter().find(|d| d.id == r.id).expect("same runs");
        assert_eq!(d.best_stage, r.best_stage, "run {}", r.id);
        assert_eq!(d.test_auc, r.test_auc, "run {}", r.id);
        assert_eq!(d.test_logloss, r.test_logloss, "run {}", r.id);
        let names: Vec<&str> = d.stages.iter().map(|s| s.stage.as_str()).collect();
        let want: &[&str] = if r.id == 3 {
            &["ctr_only"]
        } else {
            &["joint", "ctr_only"]
        };
        assert_eq!(
            names, want,
            "run {}: stages with figures, in run order",
            r.id
        );
    }
    let d1 = dash.iter().find(|d| d.id == 1).expect("run 1");
    assert_eq!(
        d1.figures(Some("ctr_only")).and_then(|f| f.test_auc),
        Some(0.768)
    );
    assert_eq!(d1.figures(None).and_then(|f| f.valid_auc), Some(0.78));
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(path: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&read(path)).expect("yaml")
}

fn mlflow_export_writes_the_file_store_layout(test_db: &TestDb) {
    let db = &fixture(test_db);
    let dir = &test_db.dir;
    // Checkpoint rows point at checkpoints/<stage>.safetensors; one exists.
    std::fs::create_dir_all(dir.path().join("checkpoints")).expect("mkdir");
    std::fs::write(dir.path().join("checkpoints/joint.safetensors"), b"weights").expect("ckpt");
    let out = cp_in(
        dir.path(),
        db,
        &[
            "export",
            "--format",
            "mlflow",
            "mlruns",
            "--checkpoints",
            "link",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("exported 3 run(s) in 1 experiment(s), "),
        "{stdout}"
    );
    assert!(
        stdout.contains("checkpoints: 2 linked, 3 no longer on disk"),
        "{stdout}"
    );
    let root = dir.path().join("mlruns").canonicalize().expect("mlruns");

    let default = yaml(&root.join("0/meta.yaml"));
    assert_eq!(default["name"], "Default");
    assert_eq!(default["experiment_id"], "0");
    let exp = yaml(&root.join("1/meta.yaml"));
    assert_eq!(exp["name"], "movielens");
    assert_eq!(exp["experiment_id"], "1");
    assert_eq!(exp["lifecycle_stage"], "active");
    assert_eq!(
        exp["artifact_location"].as_str(),
        Some(format!("file://{}", root.join("1").display()).as_str())
    );
    assert!(root.join(".trash").is_dir());

    let mut runs: Vec<PathBuf> = std::fs::read_dir(root.join("1"))
        .expect("runs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    runs.sort();
    assert_eq!(runs.len(), 3);
    let by_name = |id: i64| -> PathBuf {
        runs.iter()
            .find(|r| read(&r.join("tags/clickprompt.run_id")) == id.to_string())
            .cloned()
            .unwrap_or_else(|| panic!("no run {id}"))
    };
    let r1 = by_name(1);
    let meta = yaml(&r1.join("meta.yaml"));
    let uuid = r1.file_name().expect("name").to_string_lossy().into_owned();
    assert_eq!(uuid.len(), 32);
    assert_eq!(meta["run_id"].as_str(), Some(uuid.as_str()));
    assert_eq!(meta["run_uuid"].as_str(), Some(uuid.as_str()));
    assert_eq!(meta["experiment_id"], "1");
    assert_eq!(meta["status"], 3, "FINISHED");
    assert_eq!(
        meta["start_time"], 1_795_946_400_000i64,
        "2026-11-29T10:00:00Z in ms"
    );
    assert_eq!(meta["end_time"], 1_795_947_000_000i64);
    assert_eq!(meta["lifecycle_stage"], "active");
    assert_eq!(meta["run_name"], "sweep[prompts=5] #1");
    assert_eq!(read(&r1.join("tags/mlflow.runName")), "sweep[prompts=5] #1");
    assert_eq!(read(&r1.join("tags/clickprompt.best_stage")), "joint");
    assert_eq!(read(&r1.join("params/prompts.count")), "5");
    assert_eq!(read(&r1.join("params/ctr.backbone.name")), "dcnv2");

    // "timestamp value step" lines: per epoch, per step, and the summary once.
    let valid: Vec<Vec<String>> = read(&r1.join("metrics/joint.valid_auc"))
        .lines()
        .map(|l| l.split(' ').map(String::from).collect())
        .collect();
    assert_eq!(valid.len(), 2);
    assert_eq!((valid[0][1].as_str(), valid[0][2].as_str()), ("0.74", "1"));
    assert_eq!((valid[1][1].as_str(), valid[1][2].as_str()), ("0.78", "2"));
    assert!(valid[0][0].parse::<i64>().expect("ms") > 1_600_000_000_000);
    assert_eq!(read(&r1.join("metrics/joint.loss")).lines().count(), 6);
    let last_loss = read(&r1.join("metrics/ctr_only.loss"));
    assert!(
        last_loss
            .lines()
            .last()
            .expect("line")
            .ends_with(" 0.16666666666666666 6"),
        "{last_loss}"
    );
    assert_eq!(
        read(&r1.join("metrics/pretrain.valid_mlm_acc"))
            .split(' ')
            .nth(1),
        Some("0.41")
    );
    assert!(read(&r1.join("metrics/test_auc")).ends_with(" 0.775 0\n"));
    assert!(read(&r1.join("metrics/joint.best_valid_auc")).ends_with(" 0.78 0\n"));
    assert!(
        !r1.join("metrics/pretrain.valid_auc").exists(),
        "no AUC, no metric"
    );
    assert!(read(&r1.join("artifacts/plan.yaml")).contains("name: sweep[prompts=5]"));
    assert_eq!(read(&r1.join("artifacts/experiment.cp")), SOURCE);
    let link = r1.join("artifacts/checkpoints/joint/joint.safetensors");
    assert!(std::fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    assert_eq!(read(&link), "weights");

    // Exporting again replaces the runs in place: same ids, nothing doubled.
    let out = cp_in(
        dir.path(),
        db,
        &["export", "--format", "mlflow", "-o", "mlruns", "1"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again: Vec<PathBuf> = std::fs::read_dir(root.join("1"))
        .expect("runs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(again.len(), 3);
    assert!(r1.join("meta.yaml").is_file());
    assert!(
        !r1.join("artifacts/checkpoints").exists(),
        "no --checkpoints this time"
    );

    // A folder that is not an MLflow store is refused, untouched.
    let other = dir.path().join("notes");
    std::fs::create_dir_all(&other).expect("mkdir");
    std::fs::write(other.join("todo.txt"), "x").expect("write");
    let out = cp_in(dir.path(), db, &["export", "--format", "mlflow", "notes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an MLflow file store"));
    assert_eq!(std::fs::read_dir(&other).expect("dir").count(), 1);
    let out = cp_in(dir.path(), db, &["export", "--format", "mlflow"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("writes a folder"));
    let out = cp_in(dir.path(), db, &["export", "--format", "csv", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid run id `x`"));

    // The library call, for an interrupted run: MLflow's KILLED, end time kept.
    test_db.sql(&["UPDATE runs SET status = 'INTERRUPTED' WHERE id = 3"]);
    let store = test_db.open();
    let target = dir.path().join("lib-export");
    let report = store
        .export_mlflow(&[3], &target, CheckpointMode::Skip)
        .expect("export");
    assert_eq!((report.runs, report.experiments), (1, 1));
    let run_dir = std::fs::read_dir(target.join("1"))
        .expect("exp")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.is_dir())
        .expect("run");
    let meta = yaml(&run_dir.join("meta.yaml"));
    assert_eq!(meta["status"], 5);
    assert_eq!(
        read(&run_dir.join("tags/clickprompt.status")),
        "INTERRUPTED"
    );
}

both_backends!(
    list_shows_the_best_stage_and_any_stage_by_name,
    a_stage_no_run_has_is_named_with_the_stages_there_are,
    views_and_the_dashboard_agree_on_the_best_stage,
    mlflow_export_writes_the_file_store_layout,
);
