//! Run an experiment file from code and read its summary.
//!
//! ```sh
//! cargo run --release --example run_experiment                     # quickstart.cp's CTR-only baseline
//! cargo run --release --example run_experiment -- FILE EXPERIMENT   # any experiment or sweep
//! ```
//!
//! The run is recorded like `clickprompt run` records it (in `$CLICKPROMPT_DB`,
//! else `./runs.db`), so `clickprompt runs show ID` and the dashboard see it.

use std::path::Path;

use anyhow::Result;
use clickprompt::session::{RecordedRun, Session};
use clickprompt::store::default_db;
use clickprompt::train::events::{Event, EventSink};

/// Receives what the run reports while it trains; here, each evaluation.
struct PrintEvaluations;

impl EventSink for PrintEvaluations {
    fn emit(&self, event: Event) {
        if let Event::Eval {
            stage,
            epoch,
            split,
            auc: Some(auc),
            ..
        } = event
        {
            println!("  {stage} epoch {epoch} {}: AUC {auc:.4}", split.as_str());
        }
    }
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .unwrap_or_else(|| "experiments/quickstart.cp".into());
    let experiment = args.next().unwrap_or_else(|| "dcnv2_scratch".into());
    let session = Session::open(default_db())?;
    for run in run(&session, Path::new(&file), &experiment)? {
        print!("{}", summary(&run));
    }
    Ok(())
}

/// Parses and checks the file (an error points at line and column), then
/// loads the data and runs every stage, recording the run.
fn run(session: &Session, file: &Path, experiment: &str) -> Result<Vec<RecordedRun>> {
    session.run_file(file, Some(experiment), &PrintEvaluations)
}

/// One line per stage: the best epoch's validation AUC and the test figures.
fn summary(run: &RecordedRun) -> String {
    let mut out = format!("run {} ({}):\n", run.id, run.summary.run);
    for s in &run.summary.stages {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        out.push_str(&format!(
            "  {:<10} {:<8} best epoch {}  valid AUC {}  test AUC {}  test LogLoss {}  ({:.1}s)\n",
            s.stage,
            s.kind,
            s.best_epoch.map_or("-".to_string(), |e| e.to_string()),
            f(s.valid_auc),
            f(s.test_auc),
            f(s.test_logloss),
            s.seconds
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_a_small_experiment_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("small.cp");
        std::fs::write(
            &file,
            r#"
dataset clicks {
  source synthetic { users 50, items 80, rows 1500, seed 5, themes 4 }
  label  label
  split  by_time 8:1:1
  field user_id "User" id
  field item_id "Item" id
  field genre   "Genre" category
}
experiment small {
  data clicks
  ctr deepfm { embed 8, mlp [32] }
  device cpu  seed 1
  stage finetune ctr_only { epochs 3, batch 128, lr 3e-3 }
}
"#,
        )
        .unwrap();
        let session = Session::open(tmp.path().join("runs.db"))
            .unwrap()
            .cache_dir(tmp.path().join("cache"))
            .checkpoints(tmp.path().join("checkpoints"));
        let runs = run(&session, &file, "small").unwrap();
        assert_eq!(runs.len(), 1);
        let text = summary(&runs[0]);
        assert!(text.contains("ctr_only   ctr_only"), "{text}");
        let stage = &runs[0].summary.stages[0];
        assert!(stage.test_auc.is_some_and(|a| a > 0.55), "{text}");
        // Recorded like `clickprompt run` records it.
        let recorded = session.store().run_summary(runs[0].id).unwrap();
        assert_eq!(recorded.status, "FINISHED");
        assert_eq!(recorded.test_auc, stage.test_auc);
    }
}
