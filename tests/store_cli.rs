//! `clickprompt runs …` on a fixture database built here, through the real
//! binary (stdout is a pipe, so no colour codes), on SQLite and PostgreSQL:
//! the same output from both.

mod store_support;

use clickprompt::store::RunStatus;
use clickprompt::train::events::{EvalSplit, Event, EventSink};
use std::process::{Command, Output, Stdio};
use store_support::*;

/// Three runs: two finished sweep points (dnn, dcnv2) and a failed one, with
/// fixed timestamps so the output is exact.
fn fixture(db: &TestDb) -> String {
    let store = db.open();
    let a = start(&store, &sweep_plan(dnn(), 1));
    full_run(&a, [0.70, 0.72], 0.71, 0.55, 5);
    finish_ok(a);
    let b = start(&store, &sweep_plan(dcnv2(), 5));
    full_run(&b, [0.80, 0.78], 0.79, 0.50, 5);
    finish_ok(b);
    let c = start(&store, &plan("movielens", dcnv2(), 5));
    c.emit(Event::StageStarted {
        stage: "ctr_only".into(),
        kind: "ctr_only".into(),
        epochs: 2,
        steps_per_epoch: 5,
        rows: 1280,
    });
    steps(&c, "ctr_only", 1, 1, 5);
    c.emit(Event::Eval {
        stage: "ctr_only".into(),
        epoch: 1,
        split: EvalSplit::Valid,
        auc: Some(0.6),
        logloss: Some(0.65),
        metrics: vec![],
    });
    c.finish(RunStatus::Failed("out of memory".into()))
        .expect("finish");
    drop(store);
    // Run i started at 09:00 + i hours and took 10 minutes (run 3: 65 s).
    let mut updates: Vec<String> = (1..=3)
        .map(|id| {
            let end = if id == 3 { "01:05" } else { "10:00" };
            format!(
                "UPDATE runs SET started_at = '2026-11-29T{h:02}:00:00.000Z', \
                 ended_at = '2026-11-29T{h:02}:{end}.000Z' WHERE id = {id}",
                h = 9 + id
            )
        })
        .collect();
    updates.push("UPDATE runs SET host = 'lab1'".into());
    db.sql(&updates.iter().map(String::as_str).collect::<Vec<_>>());
    db.arg()
}

fn cp(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clickprompt"))
        .arg("runs")
        .args(args)
        .arg("--db")
        .arg(db)
        .env_remove("NO_COLOR")
        .env_remove("CLICKPROMPT_DB")
        .stdin(Stdio::null())
        .output()
        .expect("run clickprompt")
}

fn ok(db: &str, args: &[&str]) -> String {
    let out = cp(db, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8(out.stdout).expect("utf-8")
}

fn fails(db: &str, args: &[&str]) -> (i32, String) {
    let out = cp(db, args);
    assert!(!out.status.success(), "{args:?} should fail");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const HEADER: &str =
    "ID  EXPERIMENT  SWEEP      SEED  STATUS    STARTED (UTC)        DURATION  BEST STAGE  VALID AUC  TEST AUC  TEST LOGLOSS";
const ROW1: &str =
    " 1  movielens   prompts=1    42  FINISHED  2026-11-29 10:00:00    10m00s  ctr_only       0.7200    0.7100        0.5500";
const ROW2: &str =
    " 2  movielens   prompts=5    42  FINISHED  2026-11-29 11:00:00    10m00s  ctr_only       0.8000    0.7900        0.5000";
const ROW3: &str =
    " 3  movielens   -            42  FAILED    2026-11-29 12:00:00     1m05s  ctr_only       0.6000         -             -";
/// Run 3 alone: narrower columns.
const FAILED_ONLY: &str = "ID  EXPERIMENT  SWEEP  SEED  STATUS  STARTED (UTC)        DURATION  BEST STAGE  VALID AUC  TEST AUC  TEST LOGLOSS
 3  movielens   -        42  FAILED  2026-11-29 12:00:00     1m05s  ctr_only       0.6000         -             -
";

fn list_filters_sorts_and_limits(test_db: &TestDb) {
    let db = &fixture(test_db);
    assert_eq!(
        ok(db, &["list"]),
        format!("{HEADER}\n{ROW3}\n{ROW2}\n{ROW1}\n")
    );
    assert!(!ok(db, &["list"]).contains('\x1b'), "no colour on a pipe");

    assert_eq!(
        ok(db, &["list", "--where", "test_auc > 0.75"]),
        format!("{HEADER}\n{ROW2}\n")
    );
    assert_eq!(
        ok(
            db,
            &[
                "list",
                "--where",
                "params.ctr.backbone.name = dcnv2 and status = finished"
            ]
        ),
        format!("{HEADER}\n{ROW2}\n")
    );
    assert_eq!(
        ok(db, &["list", "--where", "params.prompts.count >= 5"]),
        format!("{HEADER}\n{ROW3}\n{ROW2}\n")
    );
    assert_eq!(
        ok(
            db,
            &[
                "list",
                "--where",
                "ctr_only.valid_auc < 0.75 or error ~ memory"
            ]
        ),
        format!("{HEADER}\n{ROW3}\n{ROW1}\n")
    );
    assert_eq!(
        ok(db, &["list", "--where", "test_auc is null"]),
        FAILED_ONLY
    );
    // NOT of a comparison with NULL (run 3 has no test AUC) is true.
    assert_eq!(
        ok(db, &["list", "--where", "not (test_auc > 0.75)"]),
        format!("{HEADER}\n{ROW3}\n{ROW1}\n")
    );
    // Substring tests are case-insensitive and take `%` and `_` literally.
    assert_eq!(
        ok(db, &["list", "--where", "error ~ MEMORY or name ~ '%'"]),
        FAILED_ONLY
    );
    assert_eq!(
        ok(db, &["list", "--where", "params.ctr.backbone.name ~ CN"]),
        format!("{HEADER}\n{ROW3}\n{ROW2}\n")
    );
    // Params sort numerically; ties newest first.
    assert_eq!(
        ok(db, &["list", "--sort", "params.prompts.count"]),
        format!("{HEADER}\n{ROW1}\n{ROW3}\n{ROW2}\n")
    );
    assert_eq!(
        ok(
            db,
            &["list", "--sort", "params.ctr.backbone.name", "--desc"]
        ),
        format!("{HEADER}\n{ROW1}\n{ROW3}\n{ROW2}\n")
    );
    assert_eq!(
        ok(db, &["list", "--sort", "test_auc"]),
        format!("{HEADER}\n{ROW2}\n{ROW1}\n{ROW3}\n")
    );
    assert_eq!(
        ok(db, &["list", "--sort", "test_logloss"]),
        format!("{HEADER}\n{ROW2}\n{ROW1}\n{ROW3}\n")
    );
    assert_eq!(
        ok(db, &["list", "--sort", "test_auc", "--asc", "--limit", "2"]),
        format!("{HEADER}\n{ROW1}\n{ROW2}\n")
    );
    assert_eq!(ok(db, &["list", "--status", "FAILED"]), FAILED_ONLY);
    assert_eq!(
        ok(db, &["list", "--experiment", "nope"]),
        format!("no runs match in {}\n", test_db.target)
    );

    let json: serde_json::Value =
        serde_json::from_str(&ok(db, &["list", "--json", "--limit", "1"])).expect("json");
    assert_eq!(json[0]["id"], 3);
    assert_eq!(json[0]["status"], "FAILED");
    assert_eq!(json[0]["error"], "out of memory");
    assert_eq!(json[0]["best_valid_auc"], 0.6);
    assert_eq!(json[0]["test_auc"], serde_json::Value::Null);
}

fn bad_expressions_and_flags_are_rejected_clearly(test_db: &TestDb) {
    let db = &fixture(test_db);
    let (code, err) = fails(db, &["list", "--where", "test_auc > 0.78 and tset_auc > 1"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "invalid --where expression: unknown field `tset_auc` (did you mean `test_auc`?); fields are id, experiment, \
         name, sweep, sweep_point, status, started, started_at, ended, ended_at, duration, duration_s, device, host, \
         seed, version, crate_version, error, final_stage, best_stage, best_valid_auc, valid_auc, test_auc, test_logloss, \
         group, group_name, group_id, params.<key>, and <stage>.<metric>\n  test_auc > 0.78 and tset_auc > 1\n                      ^^^^^^^^\n"
    );
    let (code, err) = fails(db, &["list", "--where", "test_auc >> 1"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("invalid --where expression: expected a value after `>`, found `>`\n"),
        "{err}"
    );
    assert!(err.ends_with("\n  test_auc >> 1\n            ^\n"), "{err}");
    let (code, err) = fails(db, &["list", "--sort", "speed"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid --sort `speed`: unknown field `speed`"),
        "{err}"
    );
    let (code, err) = fails(db, &["list", "--status", "done"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid --status `done`"), "{err}");
    let (code, err) = fails(db, &["show", "42"]);
    assert_eq!(code, 2);
    assert!(err.contains("no run 42 in"), "{err}");
    if test_db.is_postgres() {
        let missing = db.replace("/cp_", "/nonexistent_");
        let (code, err) = fails(&missing, &["list"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("does not exist"), "{err}");
        assert!(err.contains("createdb"), "{err}");
    } else {
        let missing = test_db.dir.path().join("none.db");
        let (code, err) = fails(&missing.display().to_string(), &["list"]);
        assert_eq!(code, 2);
        assert!(err.contains("no run database at"), "{err}");
    }
}

fn show_prints_the_run_in_full(test_db: &TestDb) {
    let db = &fixture(test_db);
    let out = ok(db, &["show", "2"]);
    let expected_head = "run 2  FINISHED
  experiment:movielens
  name:      sweep[prompts=5]
  sweep:     prompts=5
";
    assert!(out.starts_with(expected_head), "{out}");
    for line in [
        "  started:   2026-11-29 11:00:00 UTC",
        "  ended:     2026-11-29 11:10:00 UTC",
        "  duration:  10m00s",
        "  device:    cpu",
        "  seed:      42",
        "  result:    best stage ctr_only: valid AUC 0.8000, test AUC 0.7900, test LogLoss 0.5000",
        "  STAGE     KIND      STATUS    EPOCHS  STEPS  BEST EPOCH   TIME  TRAIN SAMPLES/S  INFER SAMPLES/S",
        "  ctr_only  ctr_only  FINISHED       2  10/10           1  12.5s          20480.0          81920.0",
        "  STAGE     EPOCH  SPLIT      AUC  LOGLOSS  OTHER",
        "  ctr_only      1  valid  0.8000*   0.5200",
        "  ctr_only      2  valid   0.7800   0.5220",
        "  ctr_only      1  test    0.7900   0.5000",
        "  * best epoch",
        "  ctr_only      1  120.6 KiB  abababababab  checkpoints/ctr_only.safetensors",
        "  name: sweep[prompts=5]",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    assert!(out.contains("\nplan\n"));

    let json: serde_json::Value =
        serde_json::from_str(&ok(db, &["show", "2", "--json"])).expect("json");
    assert_eq!(json["id"], 2);
    assert_eq!(
        json["stages"][0]["evaluations"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(json["params"]["ctr.backbone.name"], "dcnv2");
}

fn compare_shows_differing_params_and_marks_the_best(test_db: &TestDb) {
    let db = &fixture(test_db);
    let out = ok(db, &["compare", "1", "2"]);
    // The plan's size changes as the language grows; count the union of keys.
    let store = test_db.open();
    let mut keys: Vec<String> = [1, 2]
        .iter()
        .flat_map(|&id| store.params(id).expect("params"))
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    keys.dedup();
    let total = keys.len();
    let expected = format!(
        "            #1                   #2
experiment  movielens            movielens
sweep       prompts=1            prompts=5
status      FINISHED             FINISHED
started     2026-11-29 10:00:00  2026-11-29 11:00:00
duration    10m00s               10m00s

params that differ (7 of {total})
  KEY                   #1                 #2
  ctr.backbone.cross    -                  3
  ctr.backbone.dropout  0.0                0.1
  ctr.backbone.mlp      [64]               [256,128]
  ctr.backbone.name     dnn                dcnv2
  name                  sweep[prompts=1]   sweep[prompts=5]
  prompts.count         1                  5
  sweep.assignments     [[\"prompts\",\"1\"]]  [[\"prompts\",\"5\"]]

final metrics per stage
  STAGE     METRIC                    #1        #2
  ctr_only  best valid AUC       0.7200    0.8000*
  ctr_only  best valid LogLoss   0.5280    0.5200*
  ctr_only  test AUC             0.7100    0.7900*
  ctr_only  test LogLoss         0.5500    0.5000*
  ctr_only  time (s)               12.5      12.5
  ctr_only  train samples/s     20480.0   20480.0
  * best
"
    );
    assert_eq!(out, expected);
    let all = ok(db, &["compare", "1", "2", "--all"]);
    assert!(all.contains(&format!("params ({total})")));
    assert!(all
        .lines()
        .any(|l| l.starts_with("  seed ") && l.ends_with("42")));
    let json: serde_json::Value =
        serde_json::from_str(&ok(db, &["compare", "1", "2", "--json"])).expect("json");
    assert_eq!(json["metrics"][2]["metric"], "test_auc");
    assert_eq!(json["metrics"][2]["best"], 1);
    let (code, _) = fails(db, &["compare", "1"]);
    assert_eq!(code, 2, "clap usage error");
}

fn best_export_and_delete(test_db: &TestDb) {
    let db = &fixture(test_db);
    let out = ok(db, &["best", "--metric", "test_auc"]);
    assert_eq!(
        out,
        format!("best by test_auc (higher is better): run 2 with 0.7900\n{HEADER}\n{ROW2}\n")
    );
    let out = ok(db, &["best", "--metric", "ctr_only.valid_logloss"]);
    assert!(
        out.starts_with("best by ctr_only.valid_logloss (lower is better): run 2 with 0.5200\n"),
        "{out}"
    );
    let (code, err) = fails(
        db,
        &["best", "--metric", "test_auc", "--experiment", "other"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("no run of experiment `other`"), "{err}");
    let (_, err) = fails(db, &["best", "--metric", "name"]);
    assert!(err.contains("has no better direction"), "{err}");

    let csv = ok(db, &["export", "--format", "csv", "1", "3"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with(
        "id,experiment,name,sweep_point,status,started_at,ended_at,duration_s,device,host,seed,"
    ));
    assert!(lines[0]
        .contains(",ctr_only.best_valid_auc,ctr_only.test_auc,ctr_only.test_logloss,params."));
    assert!(lines[1]
        .starts_with("1,movielens,sweep[prompts=1],prompts=1,FINISHED,2026-11-29T10:00:00.000Z,"));
    assert!(lines[1].contains(",0.72,0.71,0.55,"), "{}", lines[1]);
    assert!(lines[2].contains(",FAILED,"), "{}", lines[2]);

    let json: serde_json::Value = serde_json::from_str(&ok(db, &["export"])).expect("json");
    assert_eq!(json["format"], "clickprompt.runs");
    assert_eq!(json["version"], 1);
    let ids: Vec<i64> = json["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|r| r["id"].as_i64())
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(json["runs"][1]["summary"]["test_auc"], 0.79);
    assert_eq!(json["runs"][1]["artifacts"][0]["bytes"], 123456);

    // No TTY and no --yes: refused, nothing deleted.
    let (code, err) = fails(db, &["delete", "3"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("refusing to delete without confirmation"),
        "{err}"
    );
    assert_eq!(ok(db, &["list", "--status", "failed"]), FAILED_ONLY);
    assert_eq!(ok(db, &["delete", "3", "--yes"]), "deleted 1 run(s): 3\n");
    assert_eq!(ok(db, &["list"]), format!("{HEADER}\n{ROW2}\n{ROW1}\n"));
    assert_eq!(
        test_db.scalar_i64("SELECT COUNT(*) FROM metrics WHERE run_id = 3"),
        0,
        "cascade"
    );
    assert_eq!(
        test_db.scalar_i64("SELECT COUNT(*) FROM params WHERE run_id = 3"),
        0,
        "cascade"
    );
}

both_backends!(
    list_filters_sorts_and_limits,
    bad_expressions_and_flags_are_rejected_clearly,
    show_prints_the_run_in_full,
    compare_shows_differing_params_and_marks_the_best,
    best_export_and_delete,
);
