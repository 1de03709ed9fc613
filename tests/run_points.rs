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
  device cpu  seeds [1, 2]
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
        "INDEX  NAME                       GROUP
    0  base[seed=1]               base
    1  base[seed=2]               base
    2  backbones[ctr=lr,seed=1]   backbones[ctr=lr]
    3  backbones[ctr=lr,seed=2]   backbones[ctr=lr]
    4  backbones[ctr=fm,seed=1]   backbones[ctr=fm]
    5  backbones[ctr=fm,seed=2]   backbones[ctr=fm]
    6  backbones[ctr=dnn,seed=1]  backbones[ctr=dnn]
    7  backbones[ctr=dnn,seed=2]  backbones[ctr=dnn]
"
    );
    assert_eq!(
        ok(
            dir,
            &[
                "plan",
                "sweep.cp",
                "--list",
                "--experiment",
                "backbones[ctr=fm]"
            ]
        ),
        "INDEX  NAME                      GROUP
    0  backbones[ctr=fm,seed=1]  backbones[ctr=fm]
    1  backbones[ctr=fm,seed=2]  backbones[ctr=fm]
"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(
        dir,
        &["plan", "sweep.cp", "--list", "--format", "json"],
    ))
    .expect("json");
    assert_eq!(json[4]["index"], 4);
    assert_eq!(json[4]["name"], "backbones[ctr=fm,seed=1]");
    assert_eq!(json[4]["group"], "backbones[ctr=fm]");
    assert_eq!(json[4]["experiment"], "base");
    assert_eq!(json[4]["sweep_point"], "ctr=fm,seed=1");
    assert_eq!(json[0]["sweep_point"], serde_json::Value::Null);
}

#[test]
fn bad_points_are_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_file(dir);
    let err = fails(dir, &["run", "sweep.cp", "--point", "8", "--db", "runs.db"]);
    assert!(
        err.contains(
            "point 8 is out of range: sweep.cp has 8 runs (indexes 0-7); \
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
            "4-6",
            "--db",
            "runs.db",
        ],
    );
    assert!(
        err.contains(
            "point 6 is out of range: `--experiment backbones` in sweep.cp has 6 runs (indexes 0-5)"
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

/// Two processes, each running one seed of the same group into one database
/// at the same time (as two machines would), then a third with a list: every
/// point once, and the seeds of a group in one group.
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
    let a = spawn(&["--point", "4"]);
    let b = spawn(&["--points", "5"]);
    for child in [a, b] {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ok(dir, &["run", "sweep.cp", "--points", "0,1", "--db", &url]);

    let store = db.open();
    let mut runs = store.list_runs(&RunFilter::default()).expect("list");
    runs.sort_by(|x, y| x.name.cmp(&y.name));
    let names: Vec<(&str, &str, Option<&str>)> = runs
        .iter()
        .map(|r| (r.name.as_str(), r.status.as_str(), r.group_name.as_deref()))
        .collect();
    assert_eq!(
        names,
        vec![
            (
                "backbones[ctr=fm,seed=1]",
                "FINISHED",
                Some("backbones[ctr=fm]")
            ),
            (
                "backbones[ctr=fm,seed=2]",
                "FINISHED",
                Some("backbones[ctr=fm]")
            ),
            ("base[seed=1]", "FINISHED", Some("base")),
            ("base[seed=2]", "FINISHED", Some("base")),
        ]
    );
    // One group per configuration, however many processes recorded into it.
    assert_eq!(runs[0].group_id, runs[1].group_id);
    assert_eq!(runs[2].group_id, runs[3].group_id);
    assert_ne!(runs[0].group_id, runs[2].group_id);
    assert!(runs.iter().all(|r| r.experiment == "base"));
    assert!(runs.iter().all(|r| r.test_auc.is_some()));
    let logs = store.logs_tail(runs[1].id, 50).expect("logs");
    assert!(
        logs.iter().any(|l| l.message
            == "point 5 of sweep.cp: backbones[ctr=fm,seed=2] (group backbones[ctr=fm])"),
        "{logs:#?}"
    );
}

both_backends!(points_from_separate_processes_share_one_database);
