//! `runs export --format mlflow DIR`: runs written as an MLflow file store
//! (the `mlruns` layout), so MLflow's UI and client can browse them.
//!
//! ```text
//! DIR/0/meta.yaml                          the Default experiment MLflow expects
//! DIR/<exp>/meta.yaml                      one experiment per clickprompt experiment name
//! DIR/<exp>/<run>/meta.yaml                run info: name, status, start/end (ms), artifact URI
//! DIR/<exp>/<run>/params/<key>             the flattened plan (ctr.backbone.name, prompts.count, …)
//! DIR/<exp>/<run>/metrics/<key>            "timestamp value step" lines
//! DIR/<exp>/<run>/tags/<key>               mlflow.runName, mlflow.source.name, clickprompt.* …
//! DIR/<exp>/<run>/artifacts/               plan.yaml, experiment.cp, checkpoints/ (optional)
//! ```
//!
//! Metrics: `<stage>.loss`, `<stage>.lr`, `<stage>.samples_per_s` per
//! optimiser step; `<stage>.<split>_auc`, `<stage>.<split>_logloss` and the
//! extra evaluation metrics (`<stage>.valid_mlm_acc`) with the epoch as step;
//! `<stage>.best_valid_auc`, `<stage>.seconds`, `<stage>.train_samples_per_s`,
//! `<stage>.infer_samples_per_s` once; the run's `best_valid_auc`, `test_auc`
//! and `test_logloss` (its best stage's, as `runs list` shows) once.
//!
//! Ids are stable: an experiment keeps the id it has in DIR (matched by
//! name), a run's id is derived from the database's record of it, so
//! exporting again into the same folder replaces the runs instead of
//! duplicating them. A run's `meta.yaml` is written last: MLflow skips a run
//! folder without one, so an interrupted export never shows half a run.

use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::db::Store;
use super::export::RunExport;
use crate::error::invalid;

/// What to do with a run's checkpoint files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointMode {
    /// Leave them out.
    #[default]
    Skip,
    /// Symbolic links to the files where they are.
    Link,
    /// Copies.
    Copy,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MlflowReport {
    pub dir: PathBuf,
    pub experiments: usize,
    pub runs: usize,
    /// Metric values written, all keys together.
    pub metric_values: usize,
    pub checkpoints: usize,
    /// Checkpoint rows whose file is no longer on disk.
    pub checkpoints_missing: usize,
    /// Param values cut to MLflow's limit of [`MAX_PARAM_CHARS`] characters.
    pub params_truncated: usize,
}

/// MLflow refuses longer param values.
pub const MAX_PARAM_CHARS: usize = 6000;
/// MLflow refuses longer tag values.
const MAX_TAG_CHARS: usize = 8000;

#[derive(Serialize)]
struct ExperimentMeta<'a> {
    artifact_location: String,
    creation_time: i64,
    experiment_id: &'a str,
    last_update_time: i64,
    lifecycle_stage: &'static str,
    name: &'a str,
}

#[derive(Serialize)]
struct RunMeta<'a> {
    artifact_uri: String,
    end_time: Option<i64>,
    entry_point_name: &'static str,
    experiment_id: &'a str,
    lifecycle_stage: &'static str,
    run_id: &'a str,
    run_name: &'a str,
    run_uuid: &'a str,
    source_name: &'static str,
    source_type: i64,
    source_version: &'static str,
    start_time: i64,
    status: i64,
    tags: Vec<String>,
    user_id: &'static str,
    deleted_time: Option<i64>,
}

/// MLflow's run status numbers (RunStatus in its protobuf).
fn mlflow_status(status: &str) -> i64 {
    match status {
        "RUNNING" => 1,
        "FINISHED" => 3,
        "FAILED" => 4,
        // INTERRUPTED: stopped from outside, MLflow's KILLED.
        _ => 5,
    }
}

/// SourceType.LOCAL.
const SOURCE_LOCAL: i64 = 4;

/// Milliseconds since the epoch of an RFC 3339 time (0 when unreadable).
fn millis(ts: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(ts)
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

/// A name MLflow accepts as a param, metric or tag key (and as a file name):
/// letters, digits, `_ - . :` and spaces; anything else becomes `_`.
fn key(name: &str) -> String {
    let k: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match k.as_str() {
        "" | "." | ".." => format!("_{k}"),
        _ => k,
    }
}

/// `file:///abs/path` for a local folder.
fn file_uri(path: &Path) -> String {
    let s = path.to_string_lossy().replace('\\', "/");
    if s.starts_with('/') {
        format!("file://{s}")
    } else {
        format!("file:///{s}")
    }
}

/// The run's MLflow id: 32 hex characters, stable for the same database row.
fn run_uuid(run: &RunExport) -> String {
    let mut h = Sha256::new();
    h.update(b"clickprompt run\0");
    h.update(run.file_hash.as_bytes());
    h.update(b"\0");
    h.update(run.id.to_string().as_bytes());
    h.update(b"\0");
    h.update(run.started_at.as_bytes());
    hex::encode(h.finalize())[..32].to_string()
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn yaml(value: &impl Serialize) -> Result<String> {
    serde_yaml::to_string(value).context("rendering meta.yaml")
}

/// Metric lines per key, in the order written.
#[derive(Default)]
struct Metrics {
    lines: BTreeMap<String, String>,
    values: usize,
}

impl Metrics {
    fn push(&mut self, name: &str, ts: i64, value: Option<f64>, step: i64) {
        // MLflow stores no NULL; a missing or non-finite value is left out.
        let Some(v) = value.filter(|v| v.is_finite()) else {
            return;
        };
        let line = self.lines.entry(key(name)).or_default();
        line.push_str(&format!("{ts} {v} {step}\n"));
        self.values += 1;
    }
}

/// The experiment folders already in `dir` (name → id), after checking that
/// `dir` is an MLflow file store or empty.
fn existing_experiments(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut found = BTreeMap::new();
    if !dir.exists() {
        return Ok(found);
    }
    if !dir.is_dir() {
        return Err(invalid(format!(
            "{} is a file; give a folder for the MLflow export",
            dir.display()
        )));
    }
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == ".trash" || name == "models" {
            continue;
        }
        let meta = entry.path().join("meta.yaml");
        let parsed = std::fs::read_to_string(&meta)
            .ok()
            .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(&t).ok());
        let exp_name = parsed
            .as_ref()
            .and_then(|v| v.get("name"))
            .and_then(|v| v.as_str());
        match exp_name {
            Some(n) if entry.path().is_dir() => {
                found.insert(n.to_string(), name);
            }
            _ => {
                return Err(invalid(format!(
                    "{} is not an MLflow file store (it holds `{name}`, which is not an experiment folder); \
                     export into an empty or new folder, or one written by an earlier export",
                    dir.display()
                )))
            }
        }
    }
    Ok(found)
}

impl Store {
    /// Writes runs `ids` (all, oldest first, when empty) into `dir` as an
    /// MLflow file store.
    pub fn export_mlflow(
        &self,
        ids: &[i64],
        dir: &Path,
        checkpoints: CheckpointMode,
    ) -> Result<MlflowReport> {
        let doc = self.export(ids)?;
        let mut experiments = existing_experiments(dir)?;
        std::fs::create_dir_all(dir.join(".trash"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let root = dir
            .canonicalize()
            .with_context(|| format!("resolving {}", dir.display()))?;
        let mut report = MlflowReport {
            dir: root.clone(),
            ..Default::default()
        };

        let now = chrono::Utc::now().timestamp_millis();
        if !experiments.values().any(|id| id == "0") {
            write_experiment(&root, "0", "Default", now, now)?;
            experiments.insert("Default".into(), "0".into());
        }
        let mut next_id = experiments
            .values()
            .filter_map(|id| id.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        // Experiment times span their runs.
        let mut spans: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for r in &doc.runs {
            let start = millis(&r.started_at);
            let end = r.ended_at.as_deref().map(millis).unwrap_or(now);
            let span = spans.entry(r.experiment.as_str()).or_insert((start, end));
            span.0 = span.0.min(start);
            span.1 = span.1.max(end);
        }
        for (name, (start, end)) in &spans {
            let id = match experiments.get(*name) {
                Some(id) => id.clone(),
                None => {
                    let id = next_id.to_string();
                    next_id += 1;
                    experiments.insert(name.to_string(), id.clone());
                    id
                }
            };
            write_experiment(&root, &id, name, *start, *end)?;
            report.experiments += 1;
        }

        for run in &doc.runs {
            let exp_id = experiments
                .get(&run.experiment)
                .cloned()
                .unwrap_or_else(|| "0".into());
            self.write_run(&root, &exp_id, run, checkpoints, &mut report)?;
            report.runs += 1;
        }
        Ok(report)
    }

    fn write_run(
        &self,
        root: &Path,
        exp_id: &str,
        run: &RunExport,
        checkpoints: CheckpointMode,
        report: &mut MlflowReport,
    ) -> Result<()> {
        let uuid = run_uuid(run);
        let run_dir = root.join(exp_id).join(&uuid);
        if run_dir.exists() {
            std::fs::remove_dir_all(&run_dir)
                .with_context(|| format!("replacing {}", run_dir.display()))?;
        }
        let artifacts = run_dir.join("artifacts");
        for sub in ["params", "metrics", "tags"] {
            std::fs::create_dir_all(run_dir.join(sub))
                .with_context(|| format!("creating {}", run_dir.display()))?;
        }
        std::fs::create_dir_all(&artifacts)
            .with_context(|| format!("creating {}", artifacts.display()))?;

        for (k, v) in &run.params {
            let text = if v.chars().count() > MAX_PARAM_CHARS {
                report.params_truncated += 1;
                v.chars().take(MAX_PARAM_CHARS).collect()
            } else {
                v.clone()
            };
            write(&run_dir.join("params").join(key(k)), &text)?;
        }

        let start = millis(&run.started_at);
        let end = run.ended_at.as_deref().map(millis);
        let run_name = format!("{} #{}", run.name, run.id);
        let mut tags: Vec<(String, String)> = vec![
            ("mlflow.runName".into(), run_name.clone()),
            ("mlflow.source.name".into(), run.source_path.clone()),
            ("mlflow.source.type".into(), "LOCAL".into()),
            ("clickprompt.run_id".into(), run.id.to_string()),
            ("clickprompt.experiment".into(), run.experiment.clone()),
            ("clickprompt.name".into(), run.name.clone()),
            ("clickprompt.status".into(), run.status.clone()),
            ("clickprompt.device".into(), run.device.clone()),
            ("clickprompt.host".into(), run.host.clone()),
            ("clickprompt.seed".into(), run.seed.to_string()),
            ("clickprompt.version".into(), run.crate_version.clone()),
            ("clickprompt.file_hash".into(), run.file_hash.clone()),
            ("clickprompt.resumed".into(), run.resumed.to_string()),
        ];
        let mut note = format!(
            "clickprompt run #{} of experiment `{}` ({}).",
            run.id, run.experiment, run.status
        );
        if let Some(p) = &run.sweep_point {
            tags.push(("clickprompt.sweep_point".into(), p.clone()));
            note.push_str(&format!(" Sweep point `{p}`."));
        }
        if let Some(s) = &run.summary.best_stage {
            tags.push(("clickprompt.best_stage".into(), s.clone()));
            note.push_str(&format!(" Figures of the best stage on validation: `{s}`."));
        }
        if let Some(s) = &run.summary.final_stage {
            tags.push(("clickprompt.final_stage".into(), s.clone()));
        }
        if let Some(e) = &run.error {
            tags.push(("clickprompt.error".into(), e.clone()));
            note.push_str(&format!("\n\nError: {e}"));
        }
        tags.push(("mlflow.note.content".into(), note));
        for (k, v) in &tags {
            let v: String = v.chars().take(MAX_TAG_CHARS).collect();
            write(&run_dir.join("tags").join(key(k)), &v)?;
        }

        let mut m = Metrics::default();
        for p in self.metric_series(run.id, None, None)? {
            m.push(
                &format!("{}.{}", p.stage, p.key),
                millis(&p.ts),
                p.value,
                p.step,
            );
        }
        for e in self.evaluations(run.id)? {
            let ts = millis(&e.ts);
            let stem = format!("{}.{}", e.stage, e.split);
            m.push(&format!("{stem}_auc"), ts, e.auc, e.epoch);
            m.push(&format!("{stem}_logloss"), ts, e.logloss, e.epoch);
            for (k, v) in &e.metrics {
                m.push(&format!("{stem}_{k}"), ts, *v, e.epoch);
            }
        }
        let at_end = end.unwrap_or(start);
        for st in &run.stages {
            let best_valid = st
                .evaluations
                .iter()
                .filter(|e| e.split == "valid")
                .filter_map(|e| e.auc)
                .reduce(f64::max);
            m.push(
                &format!("{}.best_valid_auc", st.name),
                at_end,
                best_valid,
                0,
            );
            m.push(&format!("{}.seconds", st.name), at_end, st.seconds, 0);
            m.push(
                &format!("{}.train_samples_per_s", st.name),
                at_end,
                st.train_samples_per_s,
                0,
            );
            m.push(
                &format!("{}.infer_samples_per_s", st.name),
                at_end,
                st.infer_samples_per_s,
                0,
            );
        }
        m.push("best_valid_auc", at_end, run.summary.best_valid_auc, 0);
        m.push("test_auc", at_end, run.summary.test_auc, 0);
        m.push("test_logloss", at_end, run.summary.test_logloss, 0);
        for (k, lines) in &m.lines {
            write(&run_dir.join("metrics").join(k), lines)?;
        }
        report.metric_values += m.values;

        write(&artifacts.join("plan.yaml"), &run.plan_yaml)?;
        write(&artifacts.join("experiment.cp"), &self.source_text(run.id)?)?;
        if checkpoints != CheckpointMode::Skip {
            for a in &run.artifacts {
                let src = Path::new(&a.path);
                let Ok(src) = src.canonicalize() else {
                    report.checkpoints_missing += 1;
                    continue;
                };
                let file = src
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "checkpoint.safetensors".into());
                let to_dir = artifacts.join("checkpoints").join(key(&a.stage));
                std::fs::create_dir_all(&to_dir)
                    .with_context(|| format!("creating {}", to_dir.display()))?;
                let to = to_dir.join(key(&file));
                if to.exists() {
                    continue;
                }
                match checkpoints {
                    CheckpointMode::Link => link(&src, &to)?,
                    _ => {
                        std::fs::copy(&src, &to).with_context(|| {
                            format!("copying {} to {}", src.display(), to.display())
                        })?;
                    }
                }
                report.checkpoints += 1;
            }
        }

        let meta = RunMeta {
            artifact_uri: file_uri(&artifacts),
            end_time: end,
            entry_point_name: "",
            experiment_id: exp_id,
            lifecycle_stage: "active",
            run_id: &uuid,
            run_name: &run_name,
            run_uuid: &uuid,
            source_name: "",
            source_type: SOURCE_LOCAL,
            source_version: "",
            start_time: start,
            status: mlflow_status(&run.status),
            tags: Vec::new(),
            user_id: "clickprompt",
            deleted_time: None,
        };
        write(&run_dir.join("meta.yaml"), &yaml(&meta)?)
    }
}

fn write_experiment(root: &Path, id: &str, name: &str, created: i64, updated: i64) -> Result<()> {
    let dir = root.join(id);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let meta = ExperimentMeta {
        artifact_location: file_uri(&dir),
        creation_time: created,
        experiment_id: id,
        last_update_time: updated,
        lifecycle_stage: "active",
        name,
    };
    write(&dir.join("meta.yaml"), &yaml(&meta)?)
}

#[cfg(unix)]
fn link(src: &Path, to: &Path) -> Result<()> {
    std::os::unix::fs::symlink(src, to)
        .with_context(|| format!("linking {} to {}", to.display(), src.display()))
}

#[cfg(not(unix))]
fn link(src: &Path, to: &Path) -> Result<()> {
    std::fs::copy(src, to)
        .map(|_| ())
        .with_context(|| format!("copying {} to {}", src.display(), to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_names_mlflow_accepts() {
        assert_eq!(key("ctr.backbone.name"), "ctr.backbone.name");
        assert_eq!(key("joint.valid_mlm_acc"), "joint.valid_mlm_acc");
        assert_eq!(key("a/b\\c*d"), "a_b_c_d");
        assert_eq!(key(".."), "_..");
        assert_eq!(key(""), "_");
        assert_eq!(mlflow_status("INTERRUPTED"), 5);
        assert_eq!(millis("1970-01-01T00:00:01.500Z"), 1500);
        assert_eq!(file_uri(Path::new("/tmp/x")), "file:///tmp/x");
    }

    #[test]
    fn metric_lines_skip_missing_values() {
        let mut m = Metrics::default();
        m.push("joint.loss", 1000, Some(0.5), 1);
        m.push("joint.loss", 1001, None, 2);
        m.push("joint.loss", 1002, Some(f64::NAN), 3);
        m.push("joint.loss", 1003, Some(0.25), 4);
        assert_eq!(m.lines["joint.loss"], "1000 0.5 1\n1003 0.25 4\n");
        assert_eq!(m.values, 2);
    }
}
