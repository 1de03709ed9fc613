//! `runs export`: the stable JSON document (format `clickprompt.runs`,
//! version 1, documented in docs/database.md) and the CSV table.

use anyhow::Result;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

use super::db::Store;
use super::read::{Artifact, RunSummary};

pub const EXPORT_FORMAT: &str = "clickprompt.runs";
pub const EXPORT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportDoc {
    pub format: &'static str,
    pub version: u32,
    pub runs: Vec<RunExport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunExport {
    pub id: i64,
    pub experiment: String,
    pub name: String,
    pub sweep_point: Option<String>,
    pub status: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_s: Option<f64>,
    pub device: String,
    pub host: String,
    pub seed: u64,
    /// The run's group (its repeats over seeds), `g<id>` in the CLI.
    pub group_id: Option<i64>,
    pub group: Option<String>,
    pub crate_version: String,
    pub error: Option<String>,
    pub resumed: i64,
    pub source_path: String,
    pub file_hash: String,
    pub summary: SummaryExport,
    pub params: BTreeMap<String, String>,
    pub stages: Vec<StageExport>,
    pub artifacts: Vec<ArtifactExport>,
    pub plan_yaml: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryExport {
    pub final_stage: Option<String>,
    /// The stage chosen on validation AUC; the figures below are its.
    pub best_stage: Option<String>,
    pub best_valid_auc: Option<f64>,
    pub test_auc: Option<f64>,
    pub test_logloss: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageExport {
    pub name: String,
    pub kind: String,
    pub status: String,
    pub epochs: i64,
    pub steps_per_epoch: i64,
    pub rows: i64,
    pub best_epoch: Option<i64>,
    pub seconds: Option<f64>,
    pub train_samples_per_s: Option<f64>,
    pub infer_samples_per_s: Option<f64>,
    pub last_step: i64,
    pub evaluations: Vec<EvalExport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalExport {
    pub epoch: i64,
    pub split: String,
    pub auc: Option<f64>,
    pub logloss: Option<f64>,
    pub metrics: BTreeMap<String, Option<f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArtifactExport {
    pub stage: String,
    pub epoch: Option<i64>,
    pub path: String,
    pub bytes: i64,
    pub sha256: String,
}

impl From<&Artifact> for ArtifactExport {
    fn from(a: &Artifact) -> Self {
        ArtifactExport {
            stage: a.stage.clone(),
            epoch: a.epoch,
            path: a.path.clone(),
            bytes: a.bytes,
            sha256: a.sha256.clone(),
        }
    }
}

impl Store {
    /// One run as exported.
    pub fn export_run(&self, run_id: i64) -> Result<RunExport> {
        let d = self.run_detail(run_id)?;
        let s: RunSummary = d.summary;
        let stages = d
            .stages
            .iter()
            .map(|st| StageExport {
                name: st.stage.clone(),
                kind: st.kind.clone(),
                status: st.status.clone(),
                epochs: st.epochs,
                steps_per_epoch: st.steps_per_epoch,
                rows: st.rows,
                best_epoch: st.best_epoch,
                seconds: st.seconds,
                train_samples_per_s: st.train_samples_per_s,
                infer_samples_per_s: st.infer_samples_per_s,
                last_step: st.last_step,
                evaluations: d
                    .evaluations
                    .iter()
                    .filter(|e| e.stage == st.stage)
                    .map(|e| EvalExport {
                        epoch: e.epoch,
                        split: e.split.clone(),
                        auc: e.auc,
                        logloss: e.logloss,
                        metrics: e.metrics.clone(),
                    })
                    .collect(),
            })
            .collect();
        Ok(RunExport {
            id: s.id,
            experiment: s.experiment,
            name: s.name,
            sweep_point: s.sweep_point,
            status: s.status,
            started_at: s.started_at,
            ended_at: s.ended_at,
            duration_s: s.duration_s,
            device: s.device,
            host: s.host,
            seed: s.seed,
            group_id: s.group_id,
            group: s.group_name,
            crate_version: s.crate_version,
            error: s.error,
            resumed: d.resumed,
            source_path: d.source_path,
            file_hash: d.file_hash,
            summary: SummaryExport {
                final_stage: s.final_stage,
                best_stage: s.best_stage,
                best_valid_auc: s.best_valid_auc,
                test_auc: s.test_auc,
                test_logloss: s.test_logloss,
            },
            params: d.params.into_iter().collect(),
            stages,
            artifacts: d.artifacts.iter().map(ArtifactExport::from).collect(),
            plan_yaml: d.plan_yaml,
        })
    }

    /// The export document for `ids` (every run, oldest first, when empty).
    pub fn export(&self, ids: &[i64]) -> Result<ExportDoc> {
        let ids: Vec<i64> = if ids.is_empty() {
            let mut all: Vec<i64> = self
                .list_runs(&Default::default())?
                .iter()
                .map(|r| r.id)
                .collect();
            all.sort();
            all
        } else {
            ids.to_vec()
        };
        let runs = ids
            .iter()
            .map(|&id| self.export_run(id))
            .collect::<Result<Vec<_>>>()?;
        Ok(ExportDoc {
            format: EXPORT_FORMAT,
            version: EXPORT_VERSION,
            runs,
        })
    }
}

/// The CSV form: one row per run; fixed columns, then every stage's final
/// metrics (`<stage>.best_valid_auc`, `<stage>.test_auc`, `<stage>.test_logloss`),
/// then `params.<key>` for the union of params.
pub fn to_csv(doc: &ExportDoc) -> String {
    const FIXED: &[&str] = &[
        "id",
        "experiment",
        "name",
        "sweep_point",
        "status",
        "started_at",
        "ended_at",
        "duration_s",
        "device",
        "host",
        "seed",
        "group_id",
        "group",
        "crate_version",
        "final_stage",
        "best_stage",
        "best_valid_auc",
        "test_auc",
        "test_logloss",
        "error",
    ];
    let mut stage_names: Vec<String> = Vec::new();
    for r in &doc.runs {
        for s in &r.stages {
            if !stage_names.contains(&s.name) {
                stage_names.push(s.name.clone());
            }
        }
    }
    let param_keys: BTreeSet<&String> = doc.runs.iter().flat_map(|r| r.params.keys()).collect();
    let mut header: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
    for s in &stage_names {
        for m in ["best_valid_auc", "test_auc", "test_logloss"] {
            header.push(format!("{s}.{m}"));
        }
    }
    header.extend(param_keys.iter().map(|k| format!("params.{k}")));
    let mut out = String::new();
    push_row(&mut out, header.iter().map(String::as_str));
    let num = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for r in &doc.runs {
        let mut row: Vec<String> = vec![
            r.id.to_string(),
            r.experiment.clone(),
            r.name.clone(),
            r.sweep_point.clone().unwrap_or_default(),
            r.status.clone(),
            r.started_at.clone(),
            r.ended_at.clone().unwrap_or_default(),
            r.duration_s.map(|d| format!("{d:.3}")).unwrap_or_default(),
            r.device.clone(),
            r.host.clone(),
            r.seed.to_string(),
            r.group_id.map(|g| g.to_string()).unwrap_or_default(),
            r.group.clone().unwrap_or_default(),
            r.crate_version.clone(),
            r.summary.final_stage.clone().unwrap_or_default(),
            r.summary.best_stage.clone().unwrap_or_default(),
            num(r.summary.best_valid_auc),
            num(r.summary.test_auc),
            num(r.summary.test_logloss),
            r.error.clone().unwrap_or_default(),
        ];
        for s in &stage_names {
            let st = r.stages.iter().find(|x| &x.name == s);
            let evals = st.map(|x| x.evaluations.as_slice()).unwrap_or(&[]);
            let best_valid = evals
                .iter()
                .filter(|e| e.split == "valid")
                .filter_map(|e| e.auc)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
            let test = evals
                .iter()
                .filter(|e| e.split == "test")
                .max_by_key(|e| e.epoch);
            row.push(num(best_valid));
            row.push(num(test.and_then(|e| e.auc)));
            row.push(num(test.and_then(|e| e.logloss)));
        }
        for k in &param_keys {
            row.push(r.params.get(*k).cloned().unwrap_or_default());
        }
        push_row(&mut out, row.iter().map(String::as_str));
    }
    out
}

fn push_row<'a>(out: &mut String, cells: impl Iterator<Item = &'a str>) {
    let cells: Vec<String> = cells.map(csv_cell).collect();
    out.push_str(&cells.join(","));
    out.push('\n');
}

/// RFC 4180 quoting: cells with separators, quotes or line breaks are quoted.
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("[256,128]"), "\"[256,128]\"");
    }
}
