//! Load generator for the run store (`scripts/pg-load.sh` runs it): writer
//! processes record runs at a fixed step rate, reader processes poll like the
//! dashboard and `runs list` do, and `verify` checks that every row each
//! writer reported is in the database.
//!
//! ```text
//! store_load writer --db URL --seconds 120 --id 3 --rate 500 > writer-3.jsonl
//! store_load reader --db URL --seconds 120 > reader-1.json
//! store_load verify --db URL writer-*.jsonl
//! ```
//! A writer prints one JSON line per run it recorded (run id, steps, evals,
//! logs, checkpoints, errors); a reader one JSON object (queries, rows seen,
//! errors, latency percentiles); verify a summary, exiting 1 on any loss.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clickprompt::store::{DbTarget, NewRun, RunFilter, RunStatus, Store};
use clickprompt::train::events::{EvalSplit, Event, EventSink, LogLevel};

const SOURCE: &str = r#"
dataset syn {
  source synthetic { users 20, items 30, rows 300, seed 3 }
  label  label
  split  random 8:1:1 seed 1
  field user_id "User" id
  field item_id "Item" id
}
experiment load {
  data syn  plm none
  ctr dnn { embed 4, mlp [8] }
  device cpu  seed 1
  stage finetune ctr_only { epochs 3, batch 64, lr 1e-3 }
}
"#;

/// Steps per simulated run (three epochs of 1000).
const STEPS_PER_RUN: usize = 3000;
const STEPS_PER_EPOCH: usize = 1000;

struct Args {
    mode: String,
    db: DbTarget,
    seconds: f64,
    id: usize,
    rate: f64,
    files: Vec<String>,
}

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let mode = it
        .next()
        .context("usage: store_load writer|reader|verify --db URL …")?;
    let mut args = Args {
        mode,
        db: clickprompt::store::default_db(),
        seconds: 120.0,
        id: 0,
        rate: 500.0,
        files: Vec::new(),
    };
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--db" => args.db = DbTarget::parse(&value()?),
            "--seconds" => args.seconds = value()?.parse()?,
            "--id" => args.id = value()?.parse()?,
            "--rate" => args.rate = value()?.parse()?,
            other if !other.starts_with("--") => args.files.push(other.to_string()),
            other => bail!("unknown option {other}"),
        }
    }
    Ok(args)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    match args.mode.as_str() {
        "writer" => writer(&args),
        "reader" => reader(&args),
        "verify" => verify(&args),
        other => bail!("unknown mode {other}: writer, reader or verify"),
    }
}

fn writer(args: &Args) -> Result<()> {
    let store = Store::open(&args.db)?;
    let mut plan = clickprompt::plan::load_str(SOURCE, "load.cp")?.remove(0);
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let mut run_no = 0;
    while Instant::now() < deadline {
        run_no += 1;
        plan.name = format!("load[writer={},run={run_no}]", args.id);
        let rec = store.start_run(NewRun::new(
            &plan,
            std::path::Path::new("load.cp"),
            SOURCE,
            "cpu",
        ))?;
        let (mut evals, mut logs, mut checkpoints, mut steps) = (0, 0, 0, 0);
        rec.emit(Event::StageStarted {
            stage: "ctr_only".into(),
            kind: "ctr_only".into(),
            epochs: STEPS_PER_RUN / STEPS_PER_EPOCH,
            steps_per_epoch: STEPS_PER_EPOCH,
            rows: STEPS_PER_EPOCH * 64,
        });
        let started = Instant::now();
        for step in 1..=STEPS_PER_RUN {
            // Paced against the start, so a slow moment is caught up, not lost.
            let due = started + interval * step as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let epoch = (step - 1) / STEPS_PER_EPOCH + 1;
            rec.emit(Event::Step {
                stage: "ctr_only".into(),
                epoch,
                step,
                loss: 1.0 / step as f64,
                lr: 1e-3,
                samples_per_s: 1000.0 + args.id as f64,
            });
            steps += 1;
            if step % 250 == 0 {
                rec.emit(Event::Log {
                    level: LogLevel::Info,
                    message: format!("writer {} step {step}", args.id),
                });
                logs += 1;
            }
            if step % STEPS_PER_EPOCH == 0 {
                rec.emit(Event::Checkpoint {
                    stage: "ctr_only".into(),
                    epoch: Some(epoch),
                    path: format!("ck/{}-{run_no}-{epoch}", args.id),
                    bytes: 1 << 20,
                    sha256: "00".repeat(32),
                });
                rec.emit(Event::Eval {
                    stage: "ctr_only".into(),
                    epoch,
                    split: EvalSplit::Valid,
                    auc: Some(0.7 + epoch as f64 / 100.0),
                    logloss: Some(0.5),
                    metrics: vec![],
                });
                checkpoints += 1;
                evals += 1;
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        let id = rec.run_id();
        let error = rec
            .finish(RunStatus::Finished)
            .err()
            .map(|e| format!("{e:#}"));
        println!(
            "{}",
            serde_json::json!({
                "writer": args.id, "run_id": id, "steps": steps, "evals": evals,
                "logs": logs, "checkpoints": checkpoints, "error": error,
            })
        );
        if error.is_some() {
            bail!("writer {}: run {id} reported a write error", args.id);
        }
    }
    Ok(())
}

fn reader(args: &Args) -> Result<()> {
    let store = Store::open_existing(&args.db)?;
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let mut seen: HashMap<i64, i64> = HashMap::new();
    let (mut queries, mut rows, mut errors, mut violations) = (0u64, 0u64, 0u64, 0u64);
    let mut latencies: Vec<f64> = Vec::new();
    let mut first_error: Option<String> = None;
    let mut note = |e: anyhow::Error, errors: &mut u64| {
        *errors += 1;
        first_error.get_or_insert_with(|| format!("{e:#}"));
    };
    while Instant::now() < deadline {
        // What `runs list` and the dashboard's run list read.
        queries += 1;
        let t = Instant::now();
        let runs = match store.list_runs(&RunFilter {
            limit: Some(50),
            ..Default::default()
        }) {
            Ok(r) => r,
            Err(e) => {
                note(e, &mut errors);
                continue;
            }
        };
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        // What the live view polls: new metric rows of each running run.
        for r in runs.iter().filter(|r| r.status == "RUNNING") {
            let last = seen.entry(r.id).or_insert(0);
            queries += 1;
            let t = Instant::now();
            match store.metrics_since(r.id, *last, 100_000) {
                Ok(new) => {
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    // Ids grow and a step's three rows arrive together.
                    if !new.windows(2).all(|w| w[0].id < w[1].id) || new.len() % 3 != 0 {
                        violations += 1;
                    }
                    if let Some(m) = new.last() {
                        *last = m.id;
                    }
                    rows += new.len() as u64;
                }
                Err(e) => note(e, &mut errors),
            }
        }
        // `runs show` and `runs best`.
        if let Some(r) = runs.first() {
            queries += 1;
            let t = Instant::now();
            match store.run_detail(r.id) {
                Ok(_) => latencies.push(t.elapsed().as_secs_f64() * 1000.0),
                Err(e) => note(e, &mut errors),
            }
        }
        queries += 1;
        let t = Instant::now();
        match store.best_run("ctr_only.valid_auc", None) {
            Ok(_) => latencies.push(t.elapsed().as_secs_f64() * 1000.0),
            Err(e) => note(e, &mut errors),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "{}",
        serde_json::json!({
            "queries": queries, "metric_rows_polled": rows, "errors": errors,
            "order_violations": violations, "first_error": first_error,
            "latency_ms_p50": pct(0.5), "latency_ms_p99": pct(0.99), "latency_ms_max": pct(1.0),
        })
    );
    if errors > 0 || violations > 0 {
        bail!("reader: {errors} errors, {violations} order violations");
    }
    Ok(())
}

fn verify(args: &Args) -> Result<()> {
    let store = Store::open_existing(&args.db)?;
    let (mut runs, mut expected, mut found, mut lost, mut extra, mut write_errors) =
        (0, 0i64, 0i64, 0i64, 0i64, 0);
    for file in &args.files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)?;
            if !v["error"].is_null() {
                write_errors += 1;
            }
            let id = v["run_id"].as_i64().context("run_id")?;
            let want = 3 * v["steps"].as_i64().context("steps")?;
            let have = store.metric_series(id, None, None)?.len() as i64;
            runs += 1;
            expected += want;
            found += have;
            lost += (want - have).max(0);
            extra += (have - want).max(0);
            let evals = store.evaluations(id)?.len() as i64;
            let logs = store.logs_since(id, 0)?.len() as i64;
            let arts = store.artifacts(id)?.len() as i64;
            let status = store.run_summary(id)?.status;
            if evals != v["evals"].as_i64().unwrap_or(-1)
                || logs != v["logs"].as_i64().unwrap_or(-1)
                || arts != v["checkpoints"].as_i64().unwrap_or(-1)
                || status != "FINISHED"
            {
                println!("run {id}: evals {evals}, logs {logs}, artifacts {arts}, status {status} differ from {line}");
                lost += 1;
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "runs": runs, "metric_rows_expected": expected, "metric_rows_found": found,
            "lost": lost, "duplicated": extra, "write_errors": write_errors,
        })
    );
    if lost > 0 || extra > 0 || write_errors > 0 || runs == 0 {
        bail!("verify: {lost} lost, {extra} duplicated, {write_errors} write errors, {runs} runs");
    }
    Ok(())
}
