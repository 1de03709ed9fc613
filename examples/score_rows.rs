//! Score rows with a trained run.
//!
//! ```sh
//! cargo run --release --example run_experiment        # trains a run first, if you have none
//! cargo run --release --example score_rows -- [DB] [RUN_ID]
//! ```
//!
//! RUN_ID defaults to the finished run with the best test AUC. The run's
//! best stage weights and the vocabularies stored with it encode and score
//! rows; nothing is re-read from the training data. Shown: one row built
//! in code (and the same row for a user the run never saw), then the run's
//! whole test split streamed from a CSV file, whose scores give back the
//! test AUC the run recorded.

use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result};
use clickprompt::data::input::InputFormat;
use clickprompt::predict::{Collected, PredictOptions, Predictor, TrainedRun};
use clickprompt::store::{default_db, DbTarget, Store};
use clickprompt::train::metrics::auc;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let db = args.next().map_or_else(default_db, |a| DbTarget::parse(&a));
    let store = Store::open_existing(&db)?;
    let id = match args.next() {
        Some(id) => id.parse().context("RUN_ID must be a number")?,
        None => {
            store
                .best_run("test_auc", None)?
                .context("no finished run with a test AUC in the database")?
                .id
        }
    };
    let dir = std::env::temp_dir().join(format!("clickprompt-score-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = score(&store, id, &dir);
    std::fs::remove_dir_all(&dir)?;
    print!("{}", result?.0);
    Ok(())
}

/// Scores with run `id`; returns what to print and (recomputed, recorded) test AUC.
fn score(store: &Store, id: i64, scratch: &Path) -> Result<(String, f64, Option<f64>)> {
    // The last stage with a checkpoint (`Some("joint")` picks one).
    let trained = TrainedRun::open(store, id, None)?;
    let mut predictor = Predictor::new(&trained, &PredictOptions::default())?;
    let mut out = format!(
        "run {id}, stage {} (weights of epoch {}); rows give {}\n",
        trained.stage.name,
        trained.epoch.unwrap_or(0),
        predictor.columns().join(", ")
    );

    // The raw rows of the run's test split (the dataset's source must be
    // readable here; the synthetic one always is).
    let (table, splits) = clickprompt::data::read_splits(&trained.plan.dataset)?;
    let first = splits[2][0] as usize;
    let row: Vec<String> = predictor
        .columns()
        .iter()
        .map(|c| table.column(c).map(|col| col.value(first).to_string()))
        .collect::<Option<_>>()
        .context("the source lacks a column the run reads")?;
    // The same row for a user id the run never saw: it becomes OOV.
    let mut stranger = row.clone();
    if let Some(u) = predictor.columns().iter().position(|c| c == "user_id") {
        stranger[u] = "someone-new".into();
    }
    let p = predictor.score(&[row, stranger])?;
    out.push_str(&format!(
        "first test row: {:.4}; as an unknown user: {:.4}\n",
        p[0], p[1]
    ));

    // A file, streamed: `clickprompt predict --run ID test.csv` does this.
    let file = scratch.join("test.csv");
    table.write_csv(&splits[2], &mut std::fs::File::create(&file)?)?;
    let input = BufReader::new(std::fs::File::open(&file)?);
    let mut reader = predictor.reader(input, &file.display().to_string(), InputFormat::Csv)?;
    let mut scores = Collected::default();
    let report = predictor.predict(&mut reader, &mut scores)?;
    let labels: Vec<f32> = match &trained.plan.dataset.label {
        clickprompt::plan::LabelRule::Binary { column } => {
            let col = table.column(column).context("label column")?;
            splits[2]
                .iter()
                .map(|&r| col.value(r as usize).parse::<f32>())
                .collect::<Result<_, _>>()?
        }
        other => anyhow::bail!("this example reads 0/1 label columns, not {other:?}"),
    };
    let recomputed = auc(&scores.probabilities, &labels)?;
    out.push_str(&format!(
        "test split: {} rows in {:.3}s, AUC {recomputed:.6} (recorded {})\n",
        report.rows,
        report.seconds,
        trained
            .test_auc
            .map_or("-".to_string(), |a| format!("{a:.6}"))
    ));
    Ok((out, recomputed, trained.test_auc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickprompt::session::Session;
    use clickprompt::train::events::Collect;

    #[test]
    fn scores_reproduce_the_recorded_test_auc() {
        let src = r#"
dataset clicks {
  source synthetic { users 40, items 60, rows 1000, seed 9, semantic 2.0 }
  label  label
  split  by_time 8:1:1
  field user_id "User" id
  field item_id "Item" id
  field genre   "Genre" category
}
experiment small {
  data clicks
  ctr dnn { embed 8, mlp [16] }
  device cpu
  stage finetune ctr_only { epochs 2, batch 64, lr 3e-3 }
}
"#;
        let tmp = tempfile::tempdir().unwrap();
        let session = Session::open(tmp.path().join("runs.db"))
            .unwrap()
            .cache_dir(tmp.path().join("cache"))
            .checkpoints(tmp.path().join("checkpoints"));
        let plan = clickprompt::plan::load_str(src, "small.cp")
            .unwrap()
            .remove(0);
        let run = session.run_plan(&plan, &Collect::default()).unwrap();
        let (text, recomputed, recorded) = score(session.store(), run.id, tmp.path()).unwrap();
        assert_eq!(Some(recomputed), recorded, "{text}");
        assert!(text.contains("as an unknown user"), "{text}");
    }
}
