//! Read and compare runs from a run database.
//!
//! ```sh
//! cargo run --example compare_runs -- [DB] [METRIC]
//! ```
//!
//! DB defaults to `$CLICKPROMPT_DB`, else `./runs.db`; METRIC to
//! `test_auc` (any field `clickprompt runs list --sort` takes:
//! `test_logloss`, `joint.test_auc`, `params.ctr.embed`, …). Prints the
//! finished runs best first, each stage's figures, and what differs between
//! the two best runs' plans.

use std::collections::BTreeMap;

use anyhow::Result;
use clickprompt::store::{default_db, DbTarget, RunFilter, Store};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let db = args.next().map_or_else(default_db, |a| DbTarget::parse(&a));
    let metric = args.next().unwrap_or_else(|| "test_auc".into());
    // Refuses to create a database: reading needs an existing one.
    let store = Store::open_existing(&db)?;
    print!("{}", report(&store, &metric)?);
    Ok(())
}

fn report(store: &Store, metric: &str) -> Result<String> {
    let mut out = String::new();
    let runs = store.list_runs(&RunFilter {
        status: Some("FINISHED".into()),
        sort: Some(metric.into()), // best first for metrics
        ..RunFilter::default()
    })?;
    out.push_str(&format!("{} finished run(s), by {metric}:\n", runs.len()));
    for r in &runs {
        let value = store
            .field_value(r.id, metric)?
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "  run {:>3}  {:<24} {metric} {value}\n",
            r.id, r.name
        ));
        // Every stage's test evaluation (the summary shows only the last stage's).
        for e in store
            .evaluations(r.id)?
            .iter()
            .filter(|e| e.split == "test")
        {
            out.push_str(&format!(
                "           {:<12} test AUC {:.4}  LogLoss {:.4}\n",
                e.stage,
                e.auc.unwrap_or(f64::NAN),
                e.logloss.unwrap_or(f64::NAN)
            ));
        }
    }
    if let [a, b, ..] = runs.as_slice() {
        // Plans are stored flattened (`ctr.backbone.name = dcnv2`): compare key by key.
        let pa: BTreeMap<String, String> = store.params(a.id)?.into_iter().collect();
        let pb: BTreeMap<String, String> = store.params(b.id)?.into_iter().collect();
        out.push_str(&format!("run {} vs run {}:\n", a.id, b.id));
        let keys: std::collections::BTreeSet<&String> = pa.keys().chain(pb.keys()).collect();
        for k in keys {
            let (x, y) = (pa.get(k), pb.get(k));
            if x != y {
                let show = |v: Option<&String>| v.map_or("-", |s| s.as_str()).to_string();
                out.push_str(&format!("  {k}: {} | {}\n", show(x), show(y)));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickprompt::plan::load_str;
    use clickprompt::session::Session;
    use clickprompt::train::events::Collect;

    #[test]
    fn compares_two_recorded_runs() {
        let src = r#"
dataset clicks {
  source synthetic { users 40, items 60, rows 800, seed 5 }
  label  label
  split  random 8:1:1 seed 2
  field user_id "User" id
  field item_id "Item" id
}
experiment narrow {
  data clicks
  ctr dnn { embed 4, mlp [16] }
  device cpu
  stage finetune ctr_only { epochs 2, batch 128 }
}
experiment wide extends narrow {
  ctr dnn { embed 12, mlp [16] }
}
"#;
        let tmp = tempfile::tempdir().unwrap();
        let session = Session::open(tmp.path().join("runs.db"))
            .unwrap()
            .cache_dir(tmp.path().join("cache"))
            .checkpoints(tmp.path().join("checkpoints"));
        for plan in load_str(src, "two.cp").unwrap() {
            session.run_plan(&plan, &Collect::default()).unwrap();
        }
        let text = report(session.store(), "test_auc").unwrap();
        assert!(
            text.starts_with("2 finished run(s), by test_auc:"),
            "{text}"
        );
        assert!(text.contains("narrow") && text.contains("wide"), "{text}");
        assert!(text.contains("ctr.embed: "), "{text}");
        let text = report(session.store(), "params.ctr.embed").unwrap();
        assert!(text.contains("params.ctr.embed 4"), "{text}");
    }
}
