//! `runs show`: which fields a PA-MLM stage's prompts carry — masked-token
//! accuracy with and without the prompts per template field, from the
//! stage's best validation epoch.

use std::collections::BTreeMap;

use crate::store::{Evaluation, StageInfo};

/// One field's row: (field, tokens, accuracy with prompts, without, gap).
pub type GapRow = (String, f64, f64, f64, f64);

/// Rows for every field with masked tokens in `stage`'s best validation
/// epoch (or its last one when no best is recorded); overall first, as "(all)".
pub fn prompt_gaps(stage: &StageInfo, evaluations: &[Evaluation]) -> Vec<GapRow> {
    let valid: Vec<&Evaluation> = evaluations
        .iter()
        .filter(|e| e.stage == stage.stage && e.split == "valid")
        .collect();
    let Some(e) = stage
        .best_epoch
        .and_then(|b| valid.iter().find(|e| e.epoch == b))
        .or(valid.last())
    else {
        return Vec::new();
    };
    let m = &e.metrics;
    let get = |k: &str| m.get(k).copied().flatten();
    let mut rows = Vec::new();
    if let (Some(n), Some(a), Some(a0)) =
        (get("mlm_tokens"), get("mlm_acc"), get("mlm_acc_no_prompt"))
    {
        rows.push(("(all)".to_string(), n, a, a0, a - a0));
    }
    for field in fields(m) {
        let k = |metric: &str| get(&format!("{metric}[{field}]"));
        if let (Some(n), Some(a), Some(a0)) =
            (k("mlm_tokens"), k("mlm_acc"), k("mlm_acc_no_prompt"))
        {
            rows.push((field, n, a, a0, a - a0));
        }
    }
    rows
}

/// Field names of the per-field metrics (`mlm_acc[title]` → `title`).
fn fields(m: &BTreeMap<String, Option<f64>>) -> Vec<String> {
    m.keys()
        .filter_map(|k| k.strip_prefix("mlm_tokens[")?.strip_suffix(']'))
        .map(str::to_string)
        .collect()
}

/// Whether a metric is one of the per-field ones shown in their own table.
pub fn is_per_field(key: &str) -> bool {
    key.ends_with(']') && key.contains('[')
}
