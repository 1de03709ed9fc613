//! Stable run indexes: `plan FILE --list` numbers the runs of a file, and
//! `run FILE --point I` / `--points LIST` runs just those — from separate
//! processes into one database (SQLite and PostgreSQL), as the tasks of a
//! Slurm array or a Kubernetes indexed Job would.

mod store_support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use clickprompt::store::RunFilter;
use store_support::TestDb;

const FILE: &str = r#"
dataset syn {
  source synthetic { users 20, items 30, rows 300, seed 3 }
  label  label
  split  random 8:1:1 seed 1
  field user_id "User" id
  field item_id "Item" id
}

experiment base {
  data syn  plm none
  ctr dnn { embed 4, mlp [8] }
  device cpu  seed 1
  stage finetune ctr_only { epochs 1, batch 64, lr 1e-3 }
}

sweep backbones over base { ctr in [lr, fm, dnn] }
"#;

fn cp(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clickprompt"))
        .current_dir(dir)
        .args(args)
        .env_remove("CLICKPROMPT_DB")
        .stdin(Stdio::null())
        .output()
        .expect("run clickprompt")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = cp(dir, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let out = cp(dir, args);
    assert_eq!(out.status.code(), Some(2), "{args:?} should fail with 2");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write_file(dir: &Path) {
    std::fs::write(dir.join("sweep.cp"), FILE).expect("write sweep.cp");
}

#[test]
fn plan_lists_every_run_with_its_index() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_file(dir);
    assert_eq!(
        ok(dir, &["plan", "sweep.cp", "--list"]),
        "INDEX  NAME                GROUP
    0  base                base
    1  backbones[ctr=lr]   backbones
    2  backbones[ctr=fm]   backbones
    3  backbones[ctr=dnn]  backbones
"
    );
    assert_eq!(
        ok(
            dir,
            &["plan", "sweep.cp", "--list", "--experiment", "backbones"]
        ),
        "INDEX  NAME                GROUP
    0  backbones[ctr=lr]   backbones
    1  backbones[ctr=fm]   backbones
    2  backbones[ctr=dnn]  backbones
"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(
        dir,
        &["plan", "sweep.cp", "--list", "--format", "json"],
    ))
    .expect("json");
    assert_eq!(json[2]["index"], 2);
    assert_eq!(json[2]["name"], "backbones[ctr=fm]");
    assert_eq!(json[2]["group"], "backbones");
    assert_eq!(json[2]["experiment"], "base");
    assert_eq!(json[2]["sweep_point"], "ctr=fm");
    assert_eq!(json[0]["sweep_point"], serde_json::Value::Null);
}

#[test]
fn bad_points_are_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_file(dir);
    let err = fails(dir, &["run", "sweep.cp", "--point", "4", "--db", "runs.db"]);
    assert!(
        err.contains(
            "point 4 is out of range: sweep.cp has 4 runs (indexes 0-3); \
             `clickprompt plan FILE --list` shows them"
        ),
        "{err}"
    );
    let err = fails(
        dir,
        &[
            "run",
            "sweep.cp",
            "--experiment",
            "backbones",
            "--points",
            "1-3",
            "--db",
            "runs.db",
        ],
    );
    assert!(
        err.contains(
            "point 3 is out of range: `--experiment backbones` in sweep.cp has 3 runs (indexes 0-2)"
        ),
        "{err}"
    );
    let err = fails(
        dir,
        &["run", "sweep.cp", "--points", "3-1", "--db", "runs.db"],
    );
    assert!(
        err.contains("invalid --points `3-1`: the range runs backwards"),
        "{err}"
    );
    let err = fails(
        dir,
        &["run", "sweep.cp", "--points", "1,x", "--db", "runs.db"],
    );
    assert!(err.contains("`x` is not an index"), "{err}");
    assert!(
        !dir.join("runs.db").exists(),
        "nothing is recorded for a bad selection"
    );
    let out = cp(dir, &["run", "sweep.cp", "--point", "1", "--points", "2"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap: --point conflicts with --points"
    );
}

/// Two processes, each running its own points of the sweep into one
/// database at the same time, then a third with a list: every point once.
fn points_from_separate_processes_share_one_database(db: &TestDb) {
    let dir = db.dir.path();
    write_file(dir);
    let url = db.arg();
    let spawn = |points: &[&str]| {
        let mut args = vec!["run", "sweep.cp", "--db", url.as_str()];
        args.extend_from_slice(points);
        Command::new(env!("CARGO_BIN_EXE_clickprompt"))
            .current_dir(dir)
            .args(&args)
            .env_remove("CLICKPROMPT_DB")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn clickprompt")
    };
    let a = spawn(&["--point", "1"]);
    let b = spawn(&["--points", "2"]);
    for child in [a, b] {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ok(dir, &["run", "sweep.cp", "--points", "0,3", "--db", &url]);

    let store = db.open();
    let mut runs = store.list_runs(&RunFilter::default()).expect("list");
    runs.sort_by(|x, y| x.name.cmp(&y.name));
    let names: Vec<(&str, &str)> = runs
        .iter()
        .map(|r| (r.name.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("backbones[ctr=dnn]", "FINISHED"),
            ("backbones[ctr=fm]", "FINISHED"),
            ("backbones[ctr=lr]", "FINISHED"),
            ("base", "FINISHED"),
        ]
    );
    assert!(runs.iter().all(|r| r.experiment == "base"));
    assert!(runs.iter().all(|r| r.test_auc.is_some()));
    let logs = store.logs_tail(runs[1].id, 50).expect("logs");
    assert!(
        logs.iter()
            .any(|l| l.message == "point 2 of sweep.cp: backbones[ctr=fm] (group backbones)"),
        "{logs:#?}"
    );
}

both_backends!(points_from_separate_processes_share_one_database);
