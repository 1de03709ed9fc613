//! `clickprompt run` through the binary: runs land in the database, PLM
//! stages run and chain (pa_mlm → joint → ctr_only from pretrain), Ctrl-C
//! marks a run INTERRUPTED with its progress kept, and `--resume` finishes it.

mod cli_support;
mod plm_support;
use cli_support::{cp, start_long_run, DATASET};
use plm_support::tiny_plm;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use clickprompt::store::{RunFilter, Store};

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

#[test]
fn plm_stages_chain_and_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    tiny_plm(&dir.join("tiny"), &[]);
    let src = DATASET.replace("ROWS", "400")
        + r#"
template t = "taste {user_taste}. title {title}."
plm tiny = bert("tiny") { max_len 24 }
experiment chain {
  data syn  text t  plm tiny
  ctr dnn { embed 8, mlp [16] }
  prompts 2 deep  device cpu  seed 1
  stage pretrain pa_mlm   { epochs 1, batch 32, lr 1e-3, mask 0.15 }
  stage finetune joint    { epochs 1, batch 32, lr 1e-3 }
  stage finetune ctr_only { from pretrain, epochs 2, batch 64, lr 1e-3 }
}
"#;
    std::fs::write(dir.join("chain.cp"), src).unwrap();
    let out = run_ok(dir, &["run", "chain.cp", "--db", "runs.db"]);
    let table = String::from_utf8(out.stdout).unwrap();
    for stage in ["pretrain", "joint", "ctr_only"] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("chain") && l.contains(stage)),
            "no summary row for {stage}:\n{table}"
        );
    }

    let store = Store::open(dir.join("runs.db")).unwrap();
    let runs = store.list_runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "FINISHED");
    let id = runs[0].id;
    let stages = store.stages(id).unwrap();
    let names: Vec<_> = stages
        .iter()
        .map(|s| (s.stage.as_str(), s.status.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("pretrain", "FINISHED"),
            ("joint", "FINISHED"),
            ("ctr_only", "FINISHED")
        ]
    );
    // PA-MLM reports masked-token accuracy with and without prompts; the
    // joint and CTR-only stages a test AUC.
    let evals = store.evaluations(id).unwrap();
    assert!(evals
        .iter()
        .any(|e| e.stage == "pretrain" && e.metrics.contains_key("mlm_acc")));
    for stage in ["joint", "ctr_only"] {
        let test = evals
            .iter()
            .find(|e| e.stage == stage && e.split == "test")
            .unwrap_or_else(|| panic!("no test evaluation for {stage}"));
        assert!(test.auc.is_some_and(|a| (0.0..=1.0).contains(&a)));
    }
    // Joint starts from PA-MLM's weights; CTR-only from its CTR part.
    let logs: Vec<String> = store
        .logs_tail(id, 200)
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect();
    let ckpt = format!("run-{id}/chain/pretrain/best.safetensors");
    assert!(
        logs.iter()
            .any(|m| m.starts_with("initialised") && m.contains(&ckpt)),
        "joint did not start from pretrain: {logs:#?}"
    );
    assert!(
        logs.iter()
            .any(|m| m.contains("stage ctr_only: loaded") && m.contains(&ckpt)),
        "ctr_only did not load pretrain: {logs:#?}"
    );
    assert!(dir.join("checkpoints").join(&ckpt).is_file());
}

/// SIGTERM (a scheduler or `kill`) stops the run like Ctrl-C: marked
/// INTERRUPTED with its completed epochs kept, not left RUNNING.
#[test]
fn sigterm_marks_the_run_interrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (child, id) = start_long_run(dir, Duration::from_secs(120));
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "stderr: {stderr}");
    let store = Store::open(dir.join("runs.db")).unwrap();
    assert_eq!(store.run_summary(id).unwrap().status, "INTERRUPTED");
    assert!(!store.evaluations(id).unwrap().is_empty());
}

/// A second signal soon after the first (a terminal that goes away sends
/// SIGHUP and the dashboard then raises SIGINT; a user presses Ctrl-C twice)
/// exits at once, yet must not leave the run RUNNING: whatever the gap, the
/// stopping run is marked INTERRUPTED before the process leaves.
#[test]
fn a_second_signal_while_stopping_still_marks_the_run() {
    for gap_ms in [0u64, 2, 8, 30] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (child, id) = start_long_run(dir, Duration::from_secs(120));
        let pid = child.id() as i32;
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(pid, libc::SIGHUP) };
        std::thread::sleep(Duration::from_millis(gap_ms));
        // SAFETY: as above; the child may have exited already (ESRCH is fine).
        unsafe { libc::kill(pid, libc::SIGINT) };
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "gap {gap_ms} ms: {stderr}");
        let store = Store::open(dir.join("runs.db")).unwrap();
        let run = store.run_summary(id).unwrap();
        assert_eq!(run.status, "INTERRUPTED", "gap {gap_ms} ms: {stderr}");
        // Marked by the process itself, not by a later liveness check
        // (which a slowly reaped zombie can defeat).
        let why = run.error.unwrap_or_default();
        assert!(
            !why.contains("stopped without finishing"),
            "gap {gap_ms} ms: left RUNNING, found dead later: {why}"
        );
        assert!(!store.evaluations(id).unwrap().is_empty());
    }
}

#[test]
fn ctrl_c_marks_the_run_interrupted_and_resume_finishes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = dir.join("runs.db");
    // Wait for the first completed epoch, then press Ctrl-C.
    let (child, id) = start_long_run(dir, Duration::from_secs(120));
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "stderr: {stderr}");
    assert!(stderr.contains(&format!("--resume {id}")), "{stderr}");

    let store = Store::open(&db).unwrap();
    let run = store.run_summary(id).unwrap();
    assert_eq!(run.status, "INTERRUPTED");
    let done: Vec<i64> = store
        .evaluations(id)
        .unwrap()
        .iter()
        .filter(|e| e.split == "valid")
        .map(|e| e.epoch)
        .collect();
    assert!(!done.is_empty() && done.len() < 6, "{done:?}");
    drop(store);

    let out = run_ok(
        dir,
        &["run", "--resume", &id.to_string(), "--db", "runs.db"],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("long"));
    let store = Store::open(&db).unwrap();
    let run = store.run_summary(id).unwrap();
    assert_eq!(run.status, "FINISHED");
    assert!(run.test_auc.is_some());
    let evals = store.evaluations(id).unwrap();
    let valid: Vec<i64> = evals
        .iter()
        .filter(|e| e.split == "valid")
        .map(|e| e.epoch)
        .collect();
    assert_eq!(valid, [1, 2, 3, 4, 5, 6], "every epoch evaluated once");
    let logs: Vec<String> = store
        .logs_tail(id, 100)
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect();
    // Stopped while training the next epoch, or (rarely) while validating it.
    let resumed_after = *done.iter().max().unwrap();
    let after = format!("resuming after epoch {resumed_after} of 6");
    let at = format!("resuming at epoch {} of 6", resumed_after + 1);
    assert!(
        logs.iter().any(|m| m.contains(&after) || m.contains(&at)),
        "{logs:#?}"
    );
    assert_eq!(store.list_runs(&RunFilter::default()).unwrap().len(), 1);
}
