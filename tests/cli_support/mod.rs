//! Running the `clickprompt` binary from tests: the command, a small
//! synthetic dataset, and a CTR run long enough to interrupt.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clickprompt::store::{RunFilter, Store};

/// The binary under test in `dir`, without the user's database or PLM
/// variables; `CLICKPROMPT_TEST_BIN` points at a copy when the target
/// directory is shared with another checkout that may relink it.
pub fn cp(dir: &Path) -> Command {
    let bin = std::env::var_os("CLICKPROMPT_TEST_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_clickprompt").into());
    let mut c = Command::new(bin);
    c.current_dir(dir)
        .env_remove("CLICKPROMPT_DB")
        .env_remove("CLICKPROMPT_PLM")
        .stdin(Stdio::null());
    c
}

/// A synthetic dataset declaration; `ROWS` is replaced by the row count.
pub const DATASET: &str = r#"
dataset syn {
  source synthetic { users 40, items 60, rows ROWS, seed 3 }
  label  label
  split  random 8:1:1 seed 1
  field user_id    "User"  id
  field user_taste "Taste" text
  field item_id    "Item"  id
  field title      "Title" text
}
"#;

/// Starts a CTR run long enough to interrupt (6 epochs of 24 000 rows in
/// batches of 16) recording into `dir/runs.db`, and returns the child and
/// the run id once its first epoch has been evaluated (within `limit`).
pub fn start_long_run(dir: &Path, limit: Duration) -> (Child, i64) {
    let src = DATASET.replace("ROWS", "30000")
        + r#"
experiment long {
  data syn  plm none
  ctr dnn { embed 8, mlp [16] }
  device cpu  seed 1
  stage finetune ctr_only { epochs 6, batch 16, lr 1e-3 }
}
"#;
    std::fs::write(dir.join("long.cp"), src).unwrap();
    let child = cp(dir)
        .args(["run", "long.cp", "--db", "runs.db"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let db = dir.join("runs.db");
    let start = Instant::now();
    let id = loop {
        assert!(start.elapsed() < limit, "no epoch finished in time");
        std::thread::sleep(Duration::from_millis(100));
        if !db.exists() {
            continue;
        }
        let Ok(store) = Store::open(&db) else {
            continue;
        };
        let Some(run) = store.list_runs(&RunFilter::default()).unwrap().pop() else {
            continue;
        };
        if store
            .evaluations(run.id)
            .unwrap()
            .iter()
            .any(|e| e.split == "valid")
        {
            break run.id;
        }
    };
    (child, id)
}
