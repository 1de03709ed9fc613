//! `clickprompt predict` with a PLM stage: a tiny random BERT, PA-MLM →
//! joint → CTR-only; the joint stage scores the test rows (rendered with the
//! run's template, tokenized with its tokenizer, length-bucketed as
//! evaluation does) to exactly its recorded test AUC and LogLoss. The plan
//! keeps one of the PLM's two layers (`layers 1`), as scoring must too.

mod plm_support;
use plm_support::tiny_plm;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use clickprompt::store::{RunFilter, Store};
use clickprompt::train::metrics::{auc, logloss};

fn cp(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_clickprompt"));
    c.current_dir(dir)
        .env_remove("CLICKPROMPT_DB")
        .env_remove("CLICKPROMPT_PLM")
        .stdin(Stdio::null());
    c
}

fn run_ok(dir: &Path, args: &[&str]) -> Output {
    let out = cp(dir).args(args).output().expect("run clickprompt");
    assert!(
        out.status.success(),
        "{args:?} failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

const SOURCE: &str = r#"
dataset syn {
  source synthetic { users 40, items 60, rows 500, seed 3, semantic 2.0 }
  label  label
  split  random 8:1:1 seed 1
  field user_id    "User"  id
  field user_taste "Taste" text
  field item_id    "Item"  id
  field title      "Title" text
}
template t = "taste {user_taste}. title {title}."
plm tiny = bert("tiny") { max_len 24, layers 1 }
experiment chain {
  data syn  text t  plm tiny
  ctr dnn { embed 8, mlp [16] }
  prompts 2 deep  fusion prefix_add alpha  device cpu  seed 1
  stage pretrain pa_mlm   { epochs 1, batch 32, lr 1e-3, mask 0.15 }
  stage finetune joint    { epochs 1, batch 32, lr 1e-3, eval_batch 16 }
  stage finetune ctr_only { from pretrain, epochs 2, batch 64, lr 1e-3 }
}
"#;

#[test]
fn joint_scores_reproduce_the_recorded_test_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    tiny_plm(&dir.join("tiny"), &[]);
    std::fs::write(dir.join("chain.cp"), SOURCE).unwrap();
    run_ok(dir, &["run", "chain.cp", "--db", "runs.db"]);
    let store = Store::open(dir.join("runs.db")).unwrap();
    let id = store.list_runs(&RunFilter::default()).unwrap()[0].id;
    let id_s = id.to_string();

    // The test split's raw rows, as a CSV with the synthetic source's columns.
    let plan = clickprompt::plan::load_file(&dir.join("chain.cp"))
        .unwrap()
        .remove(0);
    let (table, splits) = clickprompt::data::read_splits(&plan.dataset).unwrap();
    let mut csv = Vec::new();
    table.write_csv(&splits[2], &mut csv).unwrap();
    std::fs::write(dir.join("test.csv"), csv).unwrap();
    let label = table.column("label").unwrap();
    let labels: Vec<f32> = splits[2]
        .iter()
        .map(|&r| label.value(r as usize).parse().unwrap())
        .collect();

    let evals = store.evaluations(id).unwrap();
    for stage in ["joint", "ctr_only"] {
        let out = run_ok(
            dir,
            &[
                "predict", "--run", &id_s, "--stage", stage, "test.csv", "--db", "runs.db",
            ],
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let probs: Vec<f64> = text
            .lines()
            .skip(1)
            .map(|l| l.split_once(',').unwrap().1.parse().unwrap())
            .collect();
        assert_eq!(probs.len(), labels.len());
        let test = evals
            .iter()
            .find(|e| e.stage == stage && e.split == "test")
            .unwrap();
        assert_eq!(Some(auc(&probs, &labels).unwrap()), test.auc, "{stage}");
        assert_eq!(
            Some(logloss(&probs, &labels).unwrap()),
            test.logloss,
            "{stage}"
        );
    }

    // Default: the last stage with a checkpoint.
    let out = run_ok(
        dir,
        &[
            "predict", "--run", &id_s, "test.csv", "--json", "--db", "runs.db",
        ],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["stage"], "ctr_only");

    // Pretraining predicts no clicks.
    let out = cp(dir)
        .args([
            "predict", "--run", &id_s, "--stage", "pretrain", "test.csv", "--db", "runs.db",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not clicks"));

    // Another tokenizer would change the ids: refused.
    tiny_plm(&dir.join("other"), &["zebra"]);
    let out = cp(dir)
        .args([
            "predict", "--run", &id_s, "--stage", "joint", "--plm", "other", "test.csv", "--db",
            "runs.db",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not the one run"), "{err}");
}
