//! `clickprompt run` with `seeds [..]`: every seed runs in turn as its own
//! run of one group, `--experiment` picks the group or one seed, and the
//! summary adds the group's mean ± sd.

use std::path::Path;
use std::process::{Command, Stdio};

use clickprompt::store::{RunFilter, Store};

const SRC: &str = r#"
dataset syn {
  source synthetic { users 40, items 60, rows 600, seed 3 }
  label  label
  split  random 8:1:1 seed 1
  field user_id "User" id
  field item_id "Item" id
}
experiment tiny {
  data syn  ctr dnn { embed 8, mlp [16] }  device cpu
  seeds [1, 2, 3]
  stage finetune ctr_only { epochs 1, batch 64, lr 1e-2 }
}
"#;

fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_clickprompt"))
        .current_dir(dir)
        .env_remove("CLICKPROMPT_DB")
        .stdin(Stdio::null())
        .args(args)
        .output()
        .expect("run clickprompt");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn every_seed_runs_in_turn_and_lands_in_one_group() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    std::fs::write(dir.join("tiny.cp"), SRC).expect("write");

    // One seed of the group.
    let out = run(
        dir,
        &[
            "run",
            "tiny.cp",
            "--experiment",
            "tiny[seed=2]",
            "--db",
            "runs.db",
        ],
    );
    assert!(out.lines().any(|l| l.starts_with("tiny[seed=2]")), "{out}");
    assert!(
        !out.contains("mean ± sd"),
        "one run has no group summary:\n{out}"
    );

    // The whole group: three runs, then the group's mean ± sd.
    let out = run(
        dir,
        &["run", "tiny.cp", "--experiment", "tiny", "--db", "runs.db"],
    );
    for seed in 1..=3 {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("tiny[seed={seed}]"))),
            "{out}"
        );
    }
    let group_line = out
        .lines()
        .find(|l| l.starts_with("tiny "))
        .unwrap_or_else(|| panic!("no group line:\n{out}"));
    let cells: Vec<&str> = group_line.split_whitespace().collect();
    assert_eq!(cells[..3], ["tiny", "3", "1,2,3"], "{out}");
    assert!(group_line.contains('±'), "{out}");

    let store = Store::open(dir.join("runs.db")).expect("db");
    let mut runs = store.list_runs(&RunFilter::default()).expect("runs");
    runs.sort_by_key(|r| r.id);
    let seen: Vec<(String, u64, &str)> = runs
        .iter()
        .map(|r| (r.name.clone(), r.seed, r.status.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("tiny[seed=2]".to_string(), 2, "FINISHED"),
            ("tiny[seed=1]".to_string(), 1, "FINISHED"),
            ("tiny[seed=2]".to_string(), 2, "FINISHED"),
            ("tiny[seed=3]".to_string(), 3, "FINISHED"),
        ]
    );
    let group = runs[0].group_id.expect("group");
    assert!(runs.iter().all(|r| r.group_id == Some(group)));
    assert_eq!(runs[0].group_name.as_deref(), Some("tiny"));
    // The seed changes the model: the three seeds do not all score alike.
    let aucs: Vec<f64> = runs[1..].iter().filter_map(|r| r.test_auc).collect();
    assert_eq!(aucs.len(), 3);
    assert!(aucs.iter().any(|a| (a - aucs[0]).abs() > 1e-9), "{aucs:?}");

    let list = run(dir, &["runs", "list", "--groups", "--db", "runs.db"]);
    let line = list
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no group:\n{list}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cells[..5],
        [format!("g{group}").as_str(), "tiny", "tiny", "4/4", "1,2,3"],
        "{list}"
    );
}
