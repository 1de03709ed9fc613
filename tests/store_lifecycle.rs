//! Run liveness across machines, on both backends: opening a store marks
//! RUNNING runs of this host whose process is gone as INTERRUPTED, never a
//! run recorded on another host (or in another pid namespace of this one);
//! `runs mark-interrupted` ends such a stale run by hand, and it can then be
//! resumed here.

mod store_support;

use clickprompt::store::{process, RunStatus, Store};
use std::process::{Command, Stdio};
use store_support::*;

/// A RUNNING run with the given host, pid and process token, as another
/// process would have left it.
fn running_run(db: &TestDb, name: &str, host: &str, pid: i64, token: Option<&str>) -> i64 {
    let store = db.open();
    let rec = start(&store, &plan(name, dnn(), 1));
    let id = rec.run_id();
    finish_ok(rec);
    // Back to the state a process that vanished leaves: RUNNING, no end.
    let token = token.map_or("NULL".to_string(), |t| format!("'{t}'"));
    db.sql(&[&format!(
        "UPDATE runs SET status = 'RUNNING', ended_at = NULL, host = '{host}', pid = {pid}, \
         proc_start = {token} WHERE id = {id}"
    )]);
    id
}

/// A pid that names no process here.
fn dead_pid() -> i64 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait");
    i64::from(pid)
}

fn status(store: &Store, id: i64) -> String {
    store.run_summary(id).expect("summary").status
}

fn only_this_hosts_dead_runs_are_recovered(db: &TestDb) {
    let here = process::hostname();
    let own = process::own_token();
    let dead = dead_pid();
    let ns = process::pid_namespace().unwrap_or_default();
    let old_token = process::start_token(std::process::id()).unwrap_or_default();

    let local_dead = running_run(db, "local-dead", &here, dead, Some(&format!("b:1:{ns}")));
    let remote = running_run(
        db,
        "remote",
        "node-17.cluster",
        dead,
        Some("b:1:4026531836"),
    );
    let other_ns = running_run(
        db,
        "container",
        &here,
        dead,
        Some(&format!("{old_token}:1")),
    );
    let alive = running_run(
        db,
        "alive",
        &here,
        i64::from(std::process::id()),
        own.as_deref(),
    );

    let store = db.open();
    assert_eq!(status(&store, local_dead), "INTERRUPTED");
    let note = store
        .run_summary(local_dead)
        .expect("run")
        .error
        .unwrap_or_default();
    assert!(
        note.contains(&format!("process {dead} on {here} stopped")),
        "{note}"
    );
    assert_eq!(
        status(&store, remote),
        "RUNNING",
        "another host's run is not ours to judge"
    );
    assert_eq!(status(&store, other_ns), "RUNNING", "another pid namespace");
    assert_eq!(status(&store, alive), "RUNNING");
    assert!(store.recover_dead_runs().expect("recover").is_empty());

    // The stale remote run, by hand; then it resumes here.
    let note = store.mark_interrupted(remote, false).expect("mark");
    assert!(note.contains("runs mark-interrupted"), "{note}");
    assert!(note.contains("on node-17.cluster"), "{note}");
    assert!(note.contains("cannot be checked from here"), "{note}");
    let r = store.run_summary(remote).expect("run");
    assert_eq!(r.status, "INTERRUPTED");
    assert!(r.ended_at.is_some());
    assert!(store
        .logs_tail(remote, 5)
        .expect("logs")
        .iter()
        .any(|l| l.level == "warn" && l.message == note));
    let (rec, info) = store.reopen_run(remote).expect("resume");
    assert_eq!(info.run.host, here);
    rec.finish(RunStatus::Finished).expect("finish");
    assert_eq!(status(&store, remote), "FINISHED");

    // Not RUNNING any more: refused; a live local run: refused without --force.
    let e = store.mark_interrupted(remote, false).expect_err("finished");
    assert!(e.to_string().contains("is FINISHED, not RUNNING"), "{e}");
    assert_eq!(clickprompt::error::exit_code(&e), 2);
    let e = store.mark_interrupted(alive, false).expect_err("alive");
    assert!(e.to_string().contains("is alive"), "{e}");
    assert_eq!(status(&store, alive), "RUNNING");
    let note = store.mark_interrupted(alive, true).expect("forced");
    assert!(
        note.contains("forced while its process was alive"),
        "{note}"
    );
    assert_eq!(status(&store, alive), "INTERRUPTED");
    let e = store.mark_interrupted(4242, false).expect_err("missing");
    assert!(e.to_string().contains("no run 4242"), "{e}");
}

fn mark_interrupted_through_the_cli(db: &TestDb) {
    let remote = running_run(db, "remote", "node-3", 12345, None);
    let out = Command::new(env!("CARGO_BIN_EXE_clickprompt"))
        .args([
            "runs",
            "mark-interrupted",
            &remote.to_string(),
            "--db",
            &db.arg(),
        ])
        .env_remove("CLICKPROMPT_DB")
        .stdin(Stdio::null())
        .output()
        .expect("run clickprompt");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "run {remote} marked INTERRUPTED (continue it with `clickprompt run --resume {remote}`)\n"
        )
    );
    assert_eq!(status(&db.open(), remote), "INTERRUPTED");
    let out = Command::new(env!("CARGO_BIN_EXE_clickprompt"))
        .args([
            "runs",
            "mark-interrupted",
            &remote.to_string(),
            "--db",
            &db.arg(),
        ])
        .env_remove("CLICKPROMPT_DB")
        .stdin(Stdio::null())
        .output()
        .expect("run clickprompt");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not RUNNING"));
}

both_backends!(
    only_this_hosts_dead_runs_are_recovered,
    mark_interrupted_through_the_cli,
);
