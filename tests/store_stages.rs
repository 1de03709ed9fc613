//! Stage figures in the history: the best stage (chosen on validation AUC)
//! in `runs list`, its JSON and the `run_summary` view; any stage's figures
//! by name (`--stage`, `--columns`, `--where`, `--sort`); the dashboard's
//! loader agreeing with the database.

mod store_support;

use clickprompt::dashfeed::SqliteSource;
use clickprompt::store::{RunFilter, Store};
use clickprompt_tui::DataSource;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use store_support::*;

/// 1: ClickPrompt whose joint stage wins on validation (0.78 > 0.77);
/// 2: ClickPrompt whose CTR-only stage wins (0.80 > 0.76);
/// 3: a single-stage scratch run.
fn fixture(dir: &tempfile::TempDir) -> PathBuf {
    let db = db_in(dir);
    let store = Store::open(&db).expect("open");
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
    sql(
        &db,
        &["UPDATE runs SET started_at = strftime('%Y-%m-%dT%H:%M:%fZ', '2026-11-29 09:00:00', '+' || id || ' hours'),
               ended_at = strftime('%Y-%m-%dT%H:%M:%fZ', '2026-11-29 09:00:00', '+' || id || ' hours', '+600 seconds')"],
    );
    db
}

fn cp_in(cwd: &Path, db: &Path, args: &[&str]) -> Output {
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

fn ok(db: &Path, args: &[&str]) -> String {
    let out = cp_in(Path::new("."), db, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn fails(db: &Path, args: &[&str]) -> String {
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

#[test]
fn list_shows_the_best_stage_and_any_stage_by_name() {
    let dir = tempdir();
    let db = fixture(&dir);
    assert_eq!(
        ok(&db, &["list"]),
        "\
ID  EXPERIMENT  SWEEP       STATUS    STARTED (UTC)        DURATION  BEST STAGE  VALID AUC  TEST AUC  TEST LOGLOSS
 3  movielens   -           FINISHED  2026-11-29 12:00:00    10m00s  ctr_only       0.7200    0.7100        0.5500
 2  movielens   prompts=10  FINISHED  2026-11-29 11:00:00    10m00s  ctr_only       0.8000    0.7950        0.2050
 1  movielens   prompts=5   FINISHED  2026-11-29 10:00:00    10m00s  joint          0.7800    0.7750        0.2250
"
    );
    assert_eq!(
        ok(&db, &["list", "--stage", "joint,ctr_only", "--sort", "ctr_only.test_auc"]),
        "\
ID  EXPERIMENT  SWEEP       STATUS    STARTED (UTC)        DURATION  joint.valid_auc  joint.test_auc  joint.test_logloss  ctr_only.valid_auc  ctr_only.test_auc  ctr_only.test_logloss
 2  movielens   prompts=10  FINISHED  2026-11-29 11:00:00    10m00s           0.7600          0.7550              0.2450              0.8000             0.7950                 0.2050
 1  movielens   prompts=5   FINISHED  2026-11-29 10:00:00    10m00s           0.7800          0.7750              0.2250              0.7700             0.7680                 0.2320
 3  movielens   -           FINISHED  2026-11-29 12:00:00    10m00s                -               -                   -              0.7200             0.7100                 0.5500
"
    );
    // --where and --sort reach stages by name; plain test_auc is the best stage's.
    assert_eq!(
        ids(&ok(&db, &["list", "--where", "joint.test_auc > 0.77"])),
        vec![1]
    );
    assert_eq!(
        ids(&ok(
            &db,
            &[
                "list",
                "--where",
                "best_stage = joint or ctr_only.valid_auc >= 0.8"
            ]
        )),
        vec![2, 1]
    );
    assert_eq!(
        ids(&ok(&db, &["list", "--where", "test_auc > 0.77"])),
        vec![2, 1]
    );
    assert_eq!(
        ids(&ok(&db, &["list", "--sort", "joint.test_auc", "--asc"])),
        vec![2, 1, 3],
        "missing values last"
    );
    let out = ok(&db, &["best", "--metric", "test_auc"]);
    assert!(
        out.starts_with("best by test_auc (higher is better): run 2 with 0.7950\n"),
        "{out}"
    );
    let out = ok(&db, &["best", "--metric", "joint.test_auc"]);
    assert!(
        out.starts_with("best by joint.test_auc (higher is better): run 1 with 0.7750\n"),
        "{out}"
    );

    // Extra columns: any field, text or number, in the table and the JSON.
    let out = ok(
        &db,
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
        &db,
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
        serde_json::from_str(&ok(&db, &["list", "--json"])).expect("json");
    assert!(plain[0].get("fields").is_none(), "no fields unless asked");
}

#[test]
fn a_stage_no_run_has_is_named_with_the_stages_there_are() {
    let dir = tempdir();
    let db = fixture(&dir);
    let err = fails(
        &db,
        &["list", "--where", "test_auc > 0.7 and jiont.test_auc > 0.7"],
    );
    assert_eq!(
        err,
        "invalid --where expression: no run has a stage `jiont` (did you mean `joint`?); stages: ctr_only, joint, pretrain
  test_auc > 0.7 and jiont.test_auc > 0.7
                     ^^^^^^^^^^^^^^
"
    );
    let err = fails(&db, &["list", "--stage", "jiont"]);
    assert!(
        err.contains("invalid --stage `jiont`: no run has a stage `jiont` (did you mean `joint`?)"),
        "{err}"
    );
    let err = fails(&db, &["list", "--sort", "ctronly.test_auc"]);
    assert!(err.contains("invalid --sort `ctronly.test_auc`: no run has a stage `ctronly` (did you mean `ctr_only`?)"), "{err}");
    let err = fails(&db, &["list", "--columns", "joint.test_acu"]);
    assert!(err.contains("unknown stage metric `test_acu`"), "{err}");
    let err = fails(&db, &["best", "--metric", "pretrian.seconds"]);
    assert!(
        err.contains("no run has a stage `pretrian` (did you mean `pretrain`?)"),
        "{err}"
    );
}

#[test]
fn views_and_the_dashboard_agree_on_the_best_stage() {
    let dir = tempdir();
    let db = fixture(&dir);
    let store = Store::open(&db).expect("open");
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
    assert_eq!(scalar_i64(&db, "SELECT COUNT(*) FROM stage_summary"), 7);
    assert_eq!(
        scalar_text(
            &db,
            "SELECT stage || ':' || valid_auc || ':' || test_auc FROM stage_summary WHERE run_id = 1 AND stage = 'joint'"
        ),
        "joint:0.78:0.775"
    );
    assert_eq!(
        scalar_i64(
            &db,
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

    let mut src = SqliteSource::open(&db).expect("dashboard source");
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
