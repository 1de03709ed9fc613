//! `clickprompt predict` through the binary: the test split's raw rows,
//! scored with the run's stored vocabularies, reproduce the run's recorded
//! test AUC and LogLoss exactly; unknown values are OOV; malformed rows fail
//! with their line or are skipped; stdin and JSON work; errors say what to do.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use clickprompt::data;
use clickprompt::plan::SourcePlan;
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

fn run_err(dir: &Path, args: &[&str]) -> String {
    let out = cp(dir).args(args).output().expect("run clickprompt");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?} should fail with invalid input: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// A tiny deterministic generator (the test needs no randomness crate state).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

const GENRES: [&str; 6] = ["action", "drama", "comedy", "horror", "sci-fi", "noir"];

/// A shop log with every field kind: ids, a multi-valued cell (with spaces
/// and repeats), a bucketed age (sometimes missing), a price, a text title
/// holding commas and quotes, and a planted click signal.
fn write_log(path: &Path, rows: usize) {
    let mut g = Lcg(7);
    let user_bias: Vec<f64> = (0..60).map(|_| g.next() * 3.0 - 1.5).collect();
    let item_bias: Vec<f64> = (0..80).map(|_| g.next() * 3.0 - 1.5).collect();
    let mut out = String::from("user,item,genres,age,price,title,ts,clicked\n");
    for r in 0..rows {
        let u = ((g.next() * g.next()) * 60.0) as usize;
        let i = (g.next() * 80.0) as usize;
        let g1 = GENRES[i % 6];
        let g2 = GENRES[(i / 6) % 6];
        let genres = match i % 3 {
            0 => g1.to_string(),
            1 => format!("{g1} | {g2}"),
            _ => format!("{g1}|{g2}|{g1}"),
        };
        let age = if u.is_multiple_of(7) {
            "NA".to_string()
        } else {
            format!("{}", 15 + (u * 37) % 55)
        };
        let price = format!("{:.2}", 5.0 + (i as f64) * 1.25);
        let title = if i.is_multiple_of(5) {
            format!("\"Item {i}, the \"\"best\"\"\"")
        } else {
            format!("Item {i}")
        };
        let logit = user_bias[u] + item_bias[i] + if g1 == "action" { 1.0 } else { -0.3 };
        let clicked = u8::from(g.next() < 1.0 / (1.0 + (-logit).exp()));
        out.push_str(&format!(
            "{u},{i},{genres},{age},{price},{title},{},{clicked}\n",
            1_000_000 + r * 60
        ));
    }
    std::fs::write(path, out).unwrap();
}

const EXPERIMENT: &str = r#"
dataset shop {
  source csv("log.csv", header true)
  label  clicked
  split  by_time(ts) 8:1:1
  min_count 2
  field user   "User"   id
  field item   "Item"   id
  field genres "Genres" multi "|"
  field age    "Age"    bucket [18, 30, 45]
  field price  "Price"  number
  field title  "Title"  text
}

experiment shop_dnn {
  data shop
  ctr dnn { embed 8, mlp [32, 16] }
  device cpu  seed 3
  stage finetune ctr_only { epochs 2, batch 128, lr 3e-3, eval_batch 100 }
}
"#;

/// (probabilities, row numbers) of a `row,probability` CSV.
fn read_scores(text: &str) -> (Vec<f64>, Vec<u64>) {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("row,probability"));
    let mut p = Vec::new();
    let mut rows = Vec::new();
    for l in lines {
        let (r, v) = l.split_once(',').unwrap();
        rows.push(r.parse().unwrap());
        p.push(v.parse().unwrap());
    }
    (p, rows)
}

/// The run's recorded test evaluation of `stage`.
fn recorded_test(db: &Path, id: i64, stage: &str) -> (f64, f64) {
    let store = Store::open(db).unwrap();
    let e = store
        .evaluations(id)
        .unwrap()
        .into_iter()
        .find(|e| e.stage == stage && e.split == "test")
        .expect("a test evaluation");
    (e.auc.unwrap(), e.logloss.unwrap())
}

/// Trains the shop experiment in `dir`; returns the run id.
fn train_shop(dir: &Path) -> i64 {
    write_log(&dir.join("log.csv"), 3000);
    std::fs::write(dir.join("shop.cp"), EXPERIMENT).unwrap();
    run_ok(dir, &["run", "shop.cp", "--db", "runs.db"]);
    let store = Store::open(dir.join("runs.db")).unwrap();
    let runs = store.list_runs(&RunFilter::default()).unwrap();
    assert_eq!(runs.len(), 1);
    runs[0].id
}

/// Writes the test split's raw rows as the source's own CSV; returns their labels.
fn write_test_rows(dir: &Path, file: &str) -> Vec<f32> {
    let mut plan = clickprompt::plan::load_file(&dir.join("shop.cp"))
        .unwrap()
        .remove(0);
    // The plan's csv path is relative to the run's directory.
    if let SourcePlan::Csv(c) = &mut std::sync::Arc::make_mut(&mut plan.dataset).source {
        c.path = dir.join(&c.path);
    }
    let (table, splits) = data::read_splits(&plan.dataset).unwrap();
    let mut out = Vec::new();
    table.write_csv(&splits[2], &mut out).unwrap();
    std::fs::write(dir.join(file), out).unwrap();
    let clicked = table.column("clicked").unwrap();
    splits[2]
        .iter()
        .map(|&r| clicked.value(r as usize).parse::<f32>().unwrap())
        .collect()
}

#[test]
fn ctr_only_scores_reproduce_the_recorded_test_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let id = train_shop(dir);
    let labels = write_test_rows(dir, "test_rows.csv");
    assert_eq!(labels.len(), 300);
    let id_s = id.to_string();

    let out = run_ok(
        dir,
        &[
            "predict",
            "--run",
            &id_s,
            "test_rows.csv",
            "-o",
            "scores.csv",
            "--db",
            "runs.db",
        ],
    );
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("scored 300 rows"), "{stderr}");
    let (probs, rows) = read_scores(&std::fs::read_to_string(dir.join("scores.csv")).unwrap());
    assert_eq!(rows, (2..302).collect::<Vec<u64>>(), "row = input line");
    let (want_auc, want_ll) = recorded_test(&dir.join("runs.db"), id, "ctr_only");
    assert!(want_auc > 0.6, "the planted signal is learned: {want_auc}");
    assert_eq!(auc(&probs, &labels).unwrap(), want_auc);
    assert_eq!(logloss(&probs, &labels).unwrap(), want_ll);

    // stdin gives the same bytes on stdout.
    let rows_text = std::fs::read(dir.join("test_rows.csv")).unwrap();
    let mut child = cp(dir)
        .args(["predict", "--run", &id_s, "-", "--db", "runs.db"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&rows_text).unwrap();
    let piped = child.wait_with_output().unwrap();
    assert!(piped.status.success());
    assert_eq!(
        piped.stdout,
        std::fs::read(dir.join("scores.csv")).unwrap(),
        "stdin and file input score alike"
    );

    // JSON: the same probabilities, with the run, stage, epoch and counts.
    let out = run_ok(
        dir,
        &[
            "predict",
            "--run",
            &id_s,
            "test_rows.csv",
            "--json",
            "--db",
            "runs.db",
        ],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["run"], id);
    assert_eq!(doc["stage"], "ctr_only");
    assert!(doc["epoch"].as_i64().is_some_and(|e| (1..=2).contains(&e)));
    assert_eq!(doc["rows"], 300);
    assert_eq!(doc["skipped_bad_rows"], 0);
    let preds = doc["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 300);
    for (k, p) in preds.iter().enumerate() {
        assert_eq!(p["row"], k as u64 + 2);
        // serde_json's own float parsing may be one unit off in the last place.
        let v = p["probability"].as_f64().unwrap();
        assert!(
            (v - probs[k]).abs() <= 1e-15 * probs[k],
            "{v} vs {}",
            probs[k]
        );
    }
}

#[test]
fn unknown_values_bad_rows_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let id = train_shop(dir);
    let id_s = id.to_string();
    let header = "user,item,genres,age,price,title,ts,clicked\n";
    // Lines 2-4: a known row; the same with never-seen user, item, genres
    // and title; the same with other never-seen values. Line 5: a price
    // that is not a number. Line 6: a field missing.
    let input = format!(
        "{header}3,4,action|drama,25,10.00,Item 4,0,1\n\
         nobody,no-item,western|musical,25,10.00,Unknown title,0,1\n\
         someone-else,other-item,space opera,25,10.00,Another,0,1\n\
         3,4,action,25,cheap,Item 4,0,1\n\
         3,4,action,25,10.00,Item 4,0\n"
    );
    std::fs::write(dir.join("new.csv"), &input).unwrap();

    let err = run_err(
        dir,
        &[
            "predict", "--run", &id_s, "new.csv", "-o", "out.csv", "--db", "runs.db",
        ],
    );
    assert!(
        err.contains("new.csv:5: field price needs a number, got \"cheap\""),
        "{err}"
    );
    assert!(err.contains("--skip-bad-rows"), "{err}");
    assert!(
        !dir.join("out.csv").exists(),
        "a failed pass writes no output"
    );
    assert!(!dir.join("out.csv.partial").exists());

    let out = run_ok(
        dir,
        &[
            "predict",
            "--run",
            &id_s,
            "new.csv",
            "-o",
            "out.csv",
            "--skip-bad-rows",
            "--db",
            "runs.db",
        ],
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("skipped 2 malformed row(s)"), "{stderr}");
    assert!(stderr.contains("new.csv:6: expected 8 fields"), "{stderr}");
    let (p, rows) = read_scores(&std::fs::read_to_string(dir.join("out.csv")).unwrap());
    assert_eq!(rows, [2, 3, 4]);
    // Every unknown value is the one OOV id: two rows of unknowns score alike.
    assert_eq!(p[1], p[2]);
    assert_ne!(p[0], p[1]);

    // `--format csv` reads the same header file.
    let out = run_ok(
        dir,
        &[
            "predict",
            "--run",
            &id_s,
            "new.csv",
            "--format",
            "csv",
            "--skip-bad-rows",
            "--db",
            "runs.db",
        ],
    );
    assert_eq!(read_scores(&String::from_utf8(out.stdout).unwrap()).0, p);

    // A header without a column the model reads.
    std::fs::write(dir.join("narrow.csv"), "user,item\n3,4\n").unwrap();
    let err = run_err(
        dir,
        &[
            "predict",
            "--run",
            &id_s,
            "narrow.csv",
            "--format",
            "csv",
            "--db",
            "runs.db",
        ],
    );
    assert!(err.contains("no column 'genres'"), "{err}");

    // No such run, no such stage.
    let err = run_err(
        dir,
        &["predict", "--run", "99", "new.csv", "--db", "runs.db"],
    );
    assert!(err.contains("no run 99"), "{err}");
    let err = run_err(
        dir,
        &[
            "predict", "--run", &id_s, "--stage", "joint", "new.csv", "--db", "runs.db",
        ],
    );
    assert!(err.contains("has no stage `joint`"), "{err}");
    assert!(err.contains("`ctr_only`"), "{err}");

    // A checkpoint changed after the run recorded it.
    let best = dir.join(format!(
        "checkpoints/run-{id}/shop_dnn/ctr_only/best.safetensors"
    ));
    let saved = std::fs::read(&best).unwrap();
    let mut changed = saved.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    std::fs::write(&best, changed).unwrap();
    let err = run_err(
        dir,
        &["predict", "--run", &id_s, "new.csv", "--db", "runs.db"],
    );
    assert!(err.contains("changed after the run recorded it"), "{err}");
    std::fs::write(&best, saved).unwrap();

    // A run recorded without vocabularies (an older clickprompt).
    std::fs::remove_file(dir.join(format!("checkpoints/run-{id}/shop_dnn/vocabularies.yaml")))
        .unwrap();
    let err = run_err(
        dir,
        &["predict", "--run", &id_s, "new.csv", "--db", "runs.db"],
    );
    assert!(err.contains("vocabularies file"), "{err}");
    assert!(err.contains("does not exist"), "{err}");
}
