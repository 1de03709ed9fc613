//! `runs show` of a PA-MLM stage: which fields the prompts carry, from the
//! per-field masked-token accuracies its validation recorded, on SQLite and
//! PostgreSQL.

mod store_support;

use std::process::{Command, Stdio};

use clickprompt::train::events::{EvalSplit, Event, EventSink};
use store_support::*;

fn eval(sink: &dyn EventSink, epoch: usize, title: (f64, f64)) {
    sink.emit(Event::Eval {
        stage: "pretrain".into(),
        epoch,
        split: EvalSplit::Valid,
        auc: None,
        logloss: None,
        metrics: vec![
            ("mlm_loss".into(), 2.0),
            ("mlm_acc".into(), 0.5),
            ("mlm_acc_no_prompt".into(), 0.4),
            ("prompt_gap".into(), 0.1),
            ("mlm_tokens".into(), 300.0),
            ("mlm_acc[title]".into(), title.0),
            ("mlm_acc_no_prompt[title]".into(), title.1),
            ("prompt_gap[title]".into(), title.0 - title.1),
            ("mlm_tokens[title]".into(), 200.0),
            ("mlm_acc[genre]".into(), 0.9),
            ("mlm_acc_no_prompt[genre]".into(), 0.9),
            ("prompt_gap[genre]".into(), 0.0),
            ("mlm_tokens[genre]".into(), 100.0),
        ],
    });
}

fn show_lists_the_prompt_gap_per_field_of_the_best_epoch(test_db: &TestDb) {
    let store = test_db.open();
    let rec = start(&store, &plan("pa", dcnv2(), 5));
    rec.emit(Event::StageStarted {
        stage: "pretrain".into(),
        kind: "pa_mlm".into(),
        epochs: 2,
        steps_per_epoch: 3,
        rows: 96,
    });
    eval(&rec, 1, (0.30, 0.25));
    eval(&rec, 2, (0.45, 0.20));
    rec.emit(Event::StageFinished {
        stage: "pretrain".into(),
        best_epoch: Some(2),
        seconds: 1.0,
        train_samples_per_s: 10.0,
        infer_samples_per_s: None,
    });
    finish_ok(rec);
    drop(store);
    let out = Command::new(env!("CARGO_BIN_EXE_clickprompt"))
        .args(["runs", "show", "1", "--db"])
        .arg(test_db.arg())
        .env("NO_COLOR", "1")
        .env_remove("CLICKPROMPT_DB")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = String::from_utf8(out.stdout).unwrap();
    for line in [
        "prompt gap of stage pretrain (masked-token accuracy, validation)",
        "  FIELD  TOKENS  WITH PROMPTS  ZEROED        GAP",
        "  (all)     300        0.5000  0.4000  +10.00 pt",
        "  genre     100        0.9000  0.9000   +0.00 pt",
        "  title     200        0.4500  0.2000  +25.00 pt",
    ] {
        assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
    }
    // The per-field values are in that table, not repeated in OTHER.
    assert!(!out.contains("mlm_acc[title]="), "{out}");
    assert!(out.contains("prompt_gap=0.1000"), "{out}");
}

both_backends!(show_lists_the_prompt_gap_per_field_of_the_best_epoch);
