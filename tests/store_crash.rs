//! A run whose process is killed with SIGKILL mid-run: the next open marks it
//! INTERRUPTED, and everything committed before the kill is intact (SQLite
//! and PostgreSQL).
//!
//! The child is this test binary re-executed with `CLICKPROMPT_STORE_CHILD`
//! set, running only `child_writer`.

mod store_support;

use clickprompt::store::{RunStatus, Store};
use clickprompt::train::events::{Event, EventSink};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use store_support::*;

const CHILD_ENV: &str = "CLICKPROMPT_STORE_CHILD";
const FLUSHED: usize = 500;

/// In the child: records steps 1..=FLUSHED, flushes, reports the run id, then
/// keeps recording until killed. In a normal test run: nothing.
#[test]
fn child_writer() {
    let Ok(db) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(db.as_str()).expect("child open");
    let rec = start(&store, &plan("crash", dcnv2(), 3));
    rec.emit(Event::StageStarted {
        stage: "joint".into(),
        kind: "joint".into(),
        epochs: 1,
        steps_per_epoch: 1_000_000,
        rows: 1,
    });
    steps(&rec, "joint", 1, 1, FLUSHED);
    rec.flush().expect("flush");
    println!("RUN {} FLUSHED {FLUSHED}", rec.run_id());
    let mut step = FLUSHED;
    loop {
        step += 1;
        steps(&rec, "joint", 1, step, step);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn killed_run_is_marked_interrupted_with_its_metrics_intact(test_db: &TestDb) {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let db = &test_db.target;
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test_db.arg())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let mut run_id = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read child");
        // libtest prints "test child_writer ... " on the same line first.
        if let Some(rest) = line.find("RUN ").map(|i| &line[i + 4..]) {
            run_id = rest
                .split_whitespace()
                .next()
                .and_then(|s| s.parse::<i64>().ok());
            break;
        }
    }
    let run_id = run_id.expect("child reported its run");

    // While the child lives, opening the database leaves its run alone.
    std::thread::sleep(std::time::Duration::from_millis(600));
    let store = Store::open(db).expect("open while child runs");
    assert_eq!(
        store.run_summary(run_id).expect("summary").status,
        "RUNNING"
    );
    drop(store);

    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    let store = Store::open(db).expect("open after the crash");
    let run = store.run_summary(run_id).expect("summary");
    assert_eq!(run.status, "INTERRUPTED");
    let note = run.error.clone().unwrap_or_default();
    assert!(
        note.contains("stopped without finishing the run (killed or crashed)"),
        "{note}"
    );
    assert!(run.ended_at.is_some());
    assert_eq!(
        store.stages(run_id).expect("stages")[0].status,
        "INTERRUPTED"
    );
    assert!(store
        .logs_tail(run_id, 5)
        .expect("logs")
        .iter()
        .any(|l| l.level == "warn" && l.message == note));

    // Every step flushed before the kill is there; later batches are whole
    // (all three keys of a step) and contiguous — no gaps, no torn batches.
    let loss = store
        .metric_series(run_id, Some("joint"), Some("loss"))
        .expect("loss");
    assert!(
        loss.len() > FLUSHED,
        "the child kept writing after the flush ({} rows)",
        loss.len()
    );
    assert!(loss
        .iter()
        .enumerate()
        .all(|(i, m)| m.step == i as i64 + 1 && m.value == Some(1.0 / (i + 1) as f64)));
    let all = store.metric_series(run_id, None, None).expect("all");
    assert_eq!(all.len(), loss.len() * 3);

    // The interrupted run can be resumed and finished.
    let (rec, info) = store.reopen_run(run_id).expect("resume");
    assert_eq!(info.stages[0].last_step, loss.len() as i64);
    rec.finish(RunStatus::Finished).expect("finish");
    assert_eq!(
        store.run_summary(run_id).expect("summary").status,
        "FINISHED"
    );
}

both_backends!(killed_run_is_marked_interrupted_with_its_metrics_intact);
