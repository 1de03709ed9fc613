//! Which stage `predict` scores with, and the errors for runs it cannot
//! score: a stage without a checkpoint, a pretraining stage, a run recorded
//! before vocabularies were stored.

use std::path::Path;

use clickprompt::error::exit_code;
use clickprompt::predict::TrainedRun;
use clickprompt::store::{NewRun, RunStatus, Store};
use clickprompt::train::checkpoint;
use clickprompt::train::events::{Event, EventSink};

const SOURCE: &str = r#"
dataset d {
  source synthetic { users 5, items 5, rows 50, seed 1 }
  label label
  split random 8:1:1 seed 3
  field user_id "User" id
  field title "Title" text
}
template t = "{title}"
plm p = bert("nowhere")
experiment e {
  data d  text t  plm p
  ctr dnn { embed 4, mlp [8] }
  stage pretrain pa_mlm { }
  stage finetune ctr_only { from pretrain }
}
"#;

fn started(stage: &str, kind: &str) -> Event {
    Event::StageStarted {
        stage: stage.into(),
        kind: kind.into(),
        epochs: 1,
        steps_per_epoch: 1,
        rows: 40,
    }
}

fn best_checkpoint(dir: &Path, stage: &str) -> Event {
    let path = dir.join(format!("{stage}/best.safetensors"));
    let saved = checkpoint::write_atomic(&path, b"weights").unwrap();
    Event::Checkpoint {
        stage: stage.into(),
        epoch: Some(1),
        path: saved.path.display().to_string(),
        bytes: saved.bytes,
        sha256: saved.sha256,
    }
}

fn message(r: anyhow::Result<TrainedRun>) -> String {
    let e = r.expect_err("expected an error");
    assert_eq!(exit_code(&e), 2, "not invalid input: {e:#}");
    format!("{e:#}")
}

#[test]
fn unscorable_runs_say_why() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("runs.db")).unwrap();
    let plan = clickprompt::plan::load_str(SOURCE, "e.cp")
        .unwrap()
        .remove(0);
    let new = || NewRun::new(&plan, Path::new("experiments/e.cp"), SOURCE, "cpu");

    // Interrupted in pretraining: nothing to score with.
    let rec = store.start_run(new()).unwrap();
    let first = rec.run_id();
    rec.emit(started("pretrain", "pa_mlm"));
    rec.emit(best_checkpoint(tmp.path(), "pretrain"));
    rec.emit(started("ctr_only", "ctr_only"));
    rec.finish(RunStatus::Interrupted).unwrap();
    let m = message(TrainedRun::open(&store, first, None));
    assert!(
        m.contains("no click-predicting stage with a checkpoint"),
        "{m}"
    );
    assert!(m.contains("`pretrain` (pa_mlm, "), "{m}");
    let m = message(TrainedRun::open(&store, first, Some("ctr_only")));
    assert!(m.contains("stage `ctr_only`"), "{m}");
    assert!(m.contains("has no checkpoint (status INTERRUPTED"), "{m}");
    let m = message(TrainedRun::open(&store, first, Some("pretrain")));
    assert!(m.contains("predicts masked tokens, not clicks"), "{m}");
    let m = message(TrainedRun::open(&store, 77, None));
    assert!(m.contains("no run 77"), "{m}");

    // Finished, but recorded before runs stored their vocabularies.
    let rec = store.start_run(new()).unwrap();
    let old = rec.run_id();
    rec.emit(started("ctr_only", "ctr_only"));
    rec.emit(best_checkpoint(tmp.path(), "ctr_only"));
    rec.finish(RunStatus::Finished).unwrap();
    let m = message(TrainedRun::open(&store, old, None));
    assert!(m.contains("no stored vocabularies"), "{m}");
    assert!(
        m.contains("clickprompt run experiments/e.cp --experiment e"),
        "says what to do: {m}"
    );
}
