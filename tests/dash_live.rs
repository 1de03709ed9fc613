//! `run_with_dashboard`: without a terminal it hands the training closure
//! back unrun; under a terminal (scripts/e2e-dash.sh runs the ignored test in
//! tmux) it shows the live view while a thread records a run.

mod dash_common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clickprompt::cli::dash::{run_with_dashboard, Dashboard};
use dash_common::{hostname, Writer};

#[test]
fn without_a_terminal_the_training_comes_back_unrun() {
    if clickprompt_tui::terminal::unavailable_reason().is_none() {
        eprintln!("skipped: this test needs stdout/stdin that are not a terminal");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let called = AtomicBool::new(false);
    let train = || {
        called.store(true, Ordering::SeqCst);
        7
    };
    match run_with_dashboard(dir.path().join("runs.db"), train).unwrap() {
        Dashboard::Shown(_) => panic!("a dashboard without a terminal"),
        Dashboard::Unavailable { train, reason } => {
            assert!(reason.contains("not a terminal"), "{reason}");
            assert!(
                !called.load(Ordering::SeqCst),
                "train ran before the fallback"
            );
            assert_eq!(train(), 7);
            assert!(called.load(Ordering::SeqCst));
        }
    }
}

/// Records a short synthetic run step by step, as a trainer would.
fn simulate_training(db: &std::path::Path, steps: i64, pause: Duration) -> String {
    let mut w = Writer::create(db);
    let host = hostname();
    let pid = std::process::id();
    w.exec(&format!(
        "INSERT INTO experiments (id, name, source_path, file_hash, source_text, created_at)
           VALUES (1, 'dash_e2e', 'e2e.cp', 'h', 'experiment dash_e2e {{}}', '2026-11-29T18:00:00.000Z');
         INSERT INTO runs (id, experiment_id, name, status, started_at, device, host, pid, crate_version, seed, plan_yaml)
           VALUES (1, 1, 'dash_e2e', 'RUNNING', strftime('%Y-%m-%dT%H:%M:%fZ','now'), 'cpu', '{host}', {pid}, '0.1.0', 1, '{{}}');
         INSERT INTO logs (run_id, ts, level, message)
           VALUES (1, strftime('%Y-%m-%dT%H:%M:%fZ','now'), 'warn', 'MLM head created, not loaded');"
    ));
    w.stage(
        1,
        "finetune",
        0,
        "ctr_only",
        2,
        steps / 2,
        "RUNNING",
        "NULL",
        "NULL",
    );
    for s in 1..=steps {
        let epoch = (s - 1) / (steps / 2) + 1;
        let loss = if s == 5 {
            "NULL".to_string()
        } else {
            format!("{}", 0.7 - 0.2 * s as f64 / steps as f64)
        };
        w.exec(&format!(
            "INSERT INTO metrics (run_id, stage, epoch, step, key, value, ts) VALUES
               (1, 'finetune', {epoch}, {s}, 'loss', {loss}, strftime('%Y-%m-%dT%H:%M:%fZ','now')),
               (1, 'finetune', {epoch}, {s}, 'lr', 0.003, strftime('%Y-%m-%dT%H:%M:%fZ','now')),
               (1, 'finetune', {epoch}, {s}, 'samples_per_s', {}, strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
            1000 + 10 * (s % 7)
        ));
        if s % (steps / 2) == 0 {
            w.exec(&format!(
                "INSERT INTO evaluations (run_id, stage, epoch, split, auc, logloss, ts)
                   VALUES (1, 'finetune', {epoch}, 'valid', {}, 0.55, strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
                0.70 + 0.01 * epoch as f64
            ));
        }
        std::thread::sleep(pause);
    }
    w.exec(
        "INSERT INTO evaluations (run_id, stage, epoch, split, auc, logloss, ts)
           VALUES (1, 'finetune', 2, 'test', 0.7312, 0.5402, strftime('%Y-%m-%dT%H:%M:%fZ','now'));
         UPDATE stages SET status = 'FINISHED', best_epoch = 2, seconds = 3.0 WHERE run_id = 1;
         UPDATE runs SET status = 'FINISHED', ended_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = 1;",
    );
    "run #1 dash_e2e: test AUC 0.7312".to_string()
}

/// For scripts/e2e-dash.sh (needs a terminal): DASH_E2E_DB names a database
/// path that does not exist yet.
#[test]
#[ignore]
fn live_view_follows_a_training_thread() {
    let db = PathBuf::from(std::env::var("DASH_E2E_DB").expect("set DASH_E2E_DB"));
    let train = || simulate_training(&db, 40, Duration::from_millis(50));
    match run_with_dashboard(&db, train).unwrap() {
        Dashboard::Shown(summary) => println!("summary: {summary}"),
        Dashboard::Unavailable { reason, .. } => panic!("no dashboard: {reason}"),
    }
}

/// For scripts/e2e-dash.sh: a panic on the training thread must restore the
/// terminal, end the dashboard and come back as an error.
#[test]
#[ignore]
fn a_training_panic_restores_the_terminal() {
    let db = PathBuf::from(std::env::var("DASH_E2E_DB").expect("set DASH_E2E_DB"));
    let train = || -> i32 {
        std::thread::sleep(Duration::from_millis(1500));
        panic!("simulated trainer bug");
    };
    match run_with_dashboard(&db, train) {
        Err(e) => println!("dashboard returned: {e}"),
        Ok(_) => panic!("a panicking training thread came back as success"),
    }
}

/// For scripts/e2e-dash.sh: training that fails before recording anything
/// closes the dashboard by itself, so its error shows at once.
#[test]
#[ignore]
fn a_run_that_never_starts_closes_the_dashboard() {
    let db = PathBuf::from(std::env::var("DASH_E2E_DB").expect("set DASH_E2E_DB"));
    let train = || -> Result<(), String> {
        std::thread::sleep(Duration::from_millis(800));
        Err("e2e.cp:3:9: unknown source `nope`".into())
    };
    match run_with_dashboard(&db, train).unwrap() {
        Dashboard::Shown(r) => println!("training returned: {r:?}"),
        Dashboard::Unavailable { reason, .. } => panic!("no dashboard: {reason}"),
    }
}
