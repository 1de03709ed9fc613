//! Reading the history: plain structs for the CLI and the dashboard. All SQL
//! stays in this module.

use anyhow::{Context, Result};
use serde::Serialize;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, Row};
use std::collections::BTreeMap;

use super::db::Store;
use super::filter::{self, Better, Bind, Field, Sql};
use crate::error::invalid;

/// One line of `runs list` (the `run_summary` view).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub id: i64,
    pub experiment: String,
    pub name: String,
    pub sweep_point: Option<String>,
    /// RUNNING, FINISHED, FAILED or INTERRUPTED.
    pub status: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// Up to now for RUNNING runs.
    pub duration_s: Option<f64>,
    pub device: String,
    pub host: String,
    pub seed: u64,
    pub crate_version: String,
    /// FAILED: the error; INTERRUPTED: why.
    pub error: Option<String>,
    /// The last stage with an AUC evaluation.
    pub final_stage: Option<String>,
    /// The stage with the highest validation AUC (the later one on a tie;
    /// without validation AUCs, the last with a test AUC); the figures below are its.
    pub best_stage: Option<String>,
    pub best_valid_auc: Option<f64>,
    pub test_auc: Option<f64>,
    pub test_logloss: Option<f64>,
    /// The run's group (its repeats over seeds); set for every run since
    /// migration 0003.
    pub group_id: Option<i64>,
    pub group_name: Option<String>,
}

impl<'r> sqlx::FromRow<'r, AnyRow> for RunSummary {
    fn from_row(row: &'r AnyRow) -> sqlx::Result<Self> {
        Ok(RunSummary {
            id: row.try_get("id")?,
            experiment: row.try_get("experiment")?,
            name: row.try_get("name")?,
            sweep_point: row.try_get("sweep_point")?,
            status: row.try_get("status")?,
            started_at: row.try_get("started_at")?,
            ended_at: row.try_get("ended_at")?,
            duration_s: row.try_get("duration_s")?,
            device: row.try_get("device")?,
            host: row.try_get("host")?,
            seed: row.try_get::<i64, _>("seed")? as u64,
            crate_version: row.try_get("crate_version")?,
            error: row.try_get("error")?,
            final_stage: row.try_get("final_stage")?,
            best_stage: row.try_get("best_stage")?,
            best_valid_auc: row.try_get("best_valid_auc")?,
            test_auc: row.try_get("test_auc")?,
            test_logloss: row.try_get("test_logloss")?,
            group_id: row.try_get("group_id")?,
            group_name: row.try_get("group_name")?,
        })
    }
}

/// A field's value for a run (`runs list --columns`): a number, or text.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FieldValue {
    Num(f64),
    Text(String),
}

/// A stage of a run, with progress from its step metrics.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct StageInfo {
    pub stage: String,
    pub ord: i64,
    pub kind: String,
    pub epochs: i64,
    pub steps_per_epoch: i64,
    pub rows: i64,
    pub status: String,
    pub best_epoch: Option<i64>,
    pub seconds: Option<f64>,
    pub train_samples_per_s: Option<f64>,
    pub infer_samples_per_s: Option<f64>,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// The last optimiser step recorded (0 before the first).
    pub last_step: i64,
    /// The epoch of that step.
    pub last_epoch: Option<i64>,
}

/// One evaluation (per epoch; the test one at the best epoch).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub stage: String,
    pub epoch: i64,
    /// train, valid or test.
    pub split: String,
    pub auc: Option<f64>,
    pub logloss: Option<f64>,
    /// Other metrics (`mlm_acc`, …); null when not finite.
    pub metrics: BTreeMap<String, Option<f64>>,
    pub ts: String,
}

/// One step metric value. `id` increases with insertion: poll with [`Store::metrics_since`].
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct MetricPoint {
    pub id: i64,
    pub stage: String,
    pub epoch: Option<i64>,
    pub step: i64,
    pub key: String,
    pub value: Option<f64>,
    pub ts: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct LogLine {
    pub id: i64,
    pub ts: String,
    /// info, warn or error.
    pub level: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Artifact {
    pub stage: String,
    pub epoch: Option<i64>,
    pub path: String,
    pub bytes: i64,
    pub sha256: String,
    pub ts: String,
}

/// Everything `runs show` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDetail {
    pub summary: RunSummary,
    pub source_path: String,
    pub file_hash: String,
    pub pid: i64,
    pub resumed: i64,
    pub plan_yaml: String,
    pub params: Vec<(String, String)>,
    pub stages: Vec<StageInfo>,
    pub evaluations: Vec<Evaluation>,
    pub artifacts: Vec<Artifact>,
    /// The last lines of the run's log, oldest first.
    pub logs: Vec<LogLine>,
}

/// Filters for [`Store::list_runs`]. Default: every run, newest first.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub experiment: Option<String>,
    /// RUNNING, FINISHED, FAILED or INTERRUPTED (any case).
    pub status: Option<String>,
    /// A `--where` expression (see `filter.rs` and docs/database.md).
    pub where_expr: Option<String>,
    /// A field (`test_auc`, `params.ctr.embed`, `joint.valid_auc`); best first
    /// for metrics, ascending otherwise, unless `descending` says.
    pub sort: Option<String>,
    pub descending: Option<bool>,
    pub limit: Option<usize>,
}

/// What `run --resume` needs to continue a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResumeInfo {
    pub run: RunSummary,
    pub plan_yaml: String,
    /// In execution order, with their status and last recorded step/epoch.
    pub stages: Vec<StageInfo>,
    pub evaluations: Vec<Evaluation>,
    /// Checkpoints in the order written.
    pub checkpoints: Vec<Artifact>,
}

impl ResumeInfo {
    /// The stage to continue: the first one not FINISHED (None when all are).
    pub fn next_stage(&self) -> Option<&StageInfo> {
        self.stages.iter().find(|s| s.status != "FINISHED")
    }

    /// The newest checkpoint of `stage`.
    pub fn last_checkpoint(&self, stage: &str) -> Option<&Artifact> {
        self.checkpoints.iter().rev().find(|a| a.stage == stage)
    }

    /// The highest epoch of `stage` with a validation evaluation (fully completed epochs).
    pub fn last_evaluated_epoch(&self, stage: &str) -> Option<i64> {
        self.evaluations
            .iter()
            .filter(|e| e.stage == stage && e.split == "valid")
            .map(|e| e.epoch)
            .max()
    }
}

type Query<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;
type SummaryQuery<'q> = sqlx::query::QueryAs<'q, Any, RunSummary, AnyArguments<'q>>;

fn bind_all<'q>(mut q: SummaryQuery<'q>, binds: &[Bind]) -> SummaryQuery<'q> {
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind(t.clone()),
            Bind::Real(v) => q.bind(*v),
            Bind::Int(v) => q.bind(*v),
        };
    }
    q
}

const STAGE_SELECT: &str = "SELECT st.stage, st.ord, st.kind, st.epochs, st.steps_per_epoch, st.rows, st.status,
        st.best_epoch, st.seconds, st.train_samples_per_s, st.infer_samples_per_s, st.started_at, st.ended_at,
        COALESCE((SELECT MAX(m.step) FROM metrics m WHERE m.run_id = st.run_id AND m.stage = st.stage AND m.key = 'loss'), 0) AS last_step,
        (SELECT m.epoch FROM metrics m WHERE m.run_id = st.run_id AND m.stage = st.stage AND m.key = 'loss'
           ORDER BY m.step DESC LIMIT 1) AS last_epoch
     FROM stages st WHERE st.run_id = $1 ORDER BY st.ord";

fn evaluation_from(row: &AnyRow) -> sqlx::Result<Evaluation> {
    let extra: String = row.try_get("extra_json")?;
    let metrics = serde_json::from_str::<BTreeMap<String, Option<f64>>>(&extra).unwrap_or_default();
    Ok(Evaluation {
        stage: row.try_get("stage")?,
        epoch: row.try_get("epoch")?,
        split: row.try_get("split")?,
        auc: row.try_get("auc")?,
        logloss: row.try_get("logloss")?,
        metrics,
        ts: row.try_get("ts")?,
    })
}

/// A field's value from its two columns: the number where the field has one,
/// else its text (NULL: None). Two columns rather than the value's own type,
/// which the `Any` driver does not report alike for SQLite and PostgreSQL.
fn field_value_at(row: &AnyRow, i: usize) -> sqlx::Result<Option<FieldValue>> {
    let number: Option<f64> = row.try_get(format!("field_{i}_n").as_str())?;
    if let Some(n) = number {
        return Ok(Some(FieldValue::Num(n)));
    }
    let text: Option<String> = row.try_get(format!("field_{i}_t").as_str())?;
    Ok(text.map(FieldValue::Text))
}

/// Why a field's stage cannot be right: no run has a stage of that name
/// (None when it names no stage, or the database has no stages yet).
fn unknown_stage(field: &Field, known: &[String]) -> Option<String> {
    match field {
        Field::Stage { stage, .. } | Field::Extra { stage, .. } => stage_unknown(stage, known),
        _ => None,
    }
}

fn stage_unknown(stage: &str, known: &[String]) -> Option<String> {
    if known.is_empty() || known.iter().any(|k| k == stage) {
        return None;
    }
    let hint = filter::suggest(stage, known.iter().map(String::as_str));
    Some(format!(
        "no run has a stage `{stage}`{hint}; stages: {}",
        known.join(", ")
    ))
}

fn bind_args<'q>(mut q: Query<'q>, binds: &[Bind]) -> Query<'q> {
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind(t.clone()),
            Bind::Real(v) => q.bind(*v),
            Bind::Int(v) => q.bind(*v),
        };
    }
    q
}

impl Store {
    /// Runs matching `filter`.
    pub fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunSummary>> {
        Ok(self
            .list_runs_with(filter, &[])?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    /// Runs matching `filter`, each with the values of `fields` (any field
    /// `--sort` takes: `joint.test_auc`, `params.prompts.count`, `best_stage`),
    /// in order. A field or `--where` naming a stage no run has is an error
    /// with the stages there are.
    pub fn list_runs_with(
        &self,
        filter: &RunFilter,
        fields: &[String],
    ) -> Result<Vec<(RunSummary, Vec<Option<FieldValue>>)>> {
        let known = self.stage_names()?;
        let mut q = Sql::default();
        q.push("SELECT s.*");
        for (i, name) in fields.iter().enumerate() {
            let field = filter::field_arg("--columns", name)?;
            if let Some(msg) = unknown_stage(&field, &known) {
                return Err(invalid(format!("invalid --columns `{name}`: {msg}")));
            }
            q.push(", ");
            q.append(field.number_sql());
            q.push(&format!(" AS field_{i}_n, CAST("));
            q.append(field.value_sql());
            q.push(&format!(" AS TEXT) AS field_{i}_t"));
        }
        q.push(" FROM run_summary s WHERE 1 = 1");
        if let Some(x) = &filter.experiment {
            q.push(" AND s.experiment = ");
            q.push_bind(Bind::Text(x.clone()));
        }
        if let Some(st) = &filter.status {
            let up = st.trim().to_ascii_uppercase();
            if !filter::STATUSES.contains(&up.as_str()) {
                return Err(invalid(format!(
                    "invalid --status `{st}`: statuses are {}",
                    filter::STATUSES.join(", ")
                )));
            }
            q.push(" AND s.status = ");
            q.push_bind(Bind::Text(up));
        }
        if let Some(w) = filter
            .where_expr
            .as_deref()
            .filter(|w| !w.trim().is_empty())
        {
            let compiled = filter::compile_where(w)?;
            for r in &compiled.stages {
                if let Some(msg) = stage_unknown(&r.stage, &known) {
                    return Err(filter::where_error(w, r, msg));
                }
            }
            q.push(" AND ");
            q.append(compiled.sql);
        }
        q.push(" ORDER BY ");
        match &filter.sort {
            Some(name) => {
                let field = filter::field_arg("--sort", name)?;
                if let Some(msg) = unknown_stage(&field, &known) {
                    return Err(invalid(format!("invalid --sort `{name}`: {msg}")));
                }
                let desc = filter
                    .descending
                    .unwrap_or(field.better() == Better::Higher);
                q.append(field.order_sql(desc));
            }
            None => q.push(if filter.descending == Some(false) {
                "s.id ASC"
            } else {
                "s.id DESC"
            }),
        }
        if let Some(n) = filter.limit {
            q.push(" LIMIT ");
            q.push_bind(Bind::Int(i64::try_from(n).unwrap_or(i64::MAX)));
        }
        let sql = q.render(self.dialect().placeholders());
        let rows = self
            .block_on(bind_args(sqlx::query(&sql), &q.binds).fetch_all(self.pool()))
            .context("listing runs")?;
        rows.iter()
            .map(|row| {
                let summary = <RunSummary as sqlx::FromRow<AnyRow>>::from_row(row)?;
                let values = (0..fields.len())
                    .map(|i| field_value_at(row, i))
                    .collect::<sqlx::Result<Vec<_>>>()?;
                Ok((summary, values))
            })
            .collect::<sqlx::Result<Vec<_>>>()
            .context("listing runs")
    }

    fn fetch_summaries(&self, q: &Sql) -> sqlx::Result<Vec<RunSummary>> {
        let sql = q.render(self.dialect().placeholders());
        let query = bind_all(sqlx::query_as::<_, RunSummary>(&sql), &q.binds);
        self.block_on(query.fetch_all(self.pool()))
    }

    /// Every stage name recorded, sorted.
    pub fn stage_names(&self) -> Result<Vec<String>> {
        self.block_on(
            sqlx::query_scalar("SELECT DISTINCT stage FROM stages ORDER BY stage")
                .fetch_all(self.pool()),
        )
        .context("reading stage names")
    }

    /// A `--metric` field, checked: a field name, and a stage some run has.
    fn metric_field(&self, metric: &str) -> Result<Field> {
        let field = filter::field_arg("--metric", metric)?;
        if let Some(msg) = unknown_stage(&field, &self.stage_names()?) {
            return Err(invalid(format!("invalid --metric `{metric}`: {msg}")));
        }
        Ok(field)
    }

    /// Which way a `--metric` field is better, or an invalid-input error for
    /// an unknown field or a stage no run has (as `runs best --metric`).
    pub fn metric_better(&self, metric: &str) -> Result<Better> {
        Ok(self.metric_field(metric)?.better())
    }

    /// One run's summary; an invalid-input error when there is no such run.
    pub fn run_summary(&self, id: i64) -> Result<RunSummary> {
        self.block_on(
            sqlx::query_as::<_, RunSummary>("SELECT s.* FROM run_summary s WHERE s.id = $1")
                .bind(id)
                .fetch_optional(self.pool()),
        )
        .context("reading a run")?
        .ok_or_else(|| invalid(format!("no run {id} in {}", self.target())))
    }

    /// The best run by a field (`test_auc`, `joint.valid_auc`, `params.x`…),
    /// optionally within one experiment; runs without a value are skipped.
    pub fn best_run(&self, metric: &str, experiment: Option<&str>) -> Result<Option<RunSummary>> {
        let field = self.metric_field(metric)?;
        let desc = match field.better() {
            Better::Higher => true,
            Better::Lower => false,
            Better::Neither => {
                return Err(invalid(format!(
                    "invalid --metric `{metric}`: it has no better direction; use a metric such as test_auc, \
                     test_logloss, best_valid_auc or <stage>.valid_auc"
                )))
            }
        };
        let mut q = Sql::default();
        q.push("SELECT s.* FROM run_summary s WHERE (");
        q.append(field.value_sql());
        q.push(") IS NOT NULL");
        if let Some(x) = experiment {
            q.push(" AND s.experiment = ");
            q.push_bind(Bind::Text(x.to_string()));
        }
        q.push(" ORDER BY ");
        q.append(field.order_sql(desc));
        q.push(" LIMIT 1");
        Ok(self
            .fetch_summaries(&q)
            .context("finding the best run")?
            .into_iter()
            .next())
    }

    /// The value of a field for a run (for `runs best` to print what it ranked on).
    pub fn field_value(&self, run_id: i64, field: &str) -> Result<Option<String>> {
        let field = filter::field_arg("--metric", field)?;
        let mut v = Sql::default();
        v.push("SELECT CAST(");
        v.append(field.value_sql());
        v.push(" AS TEXT) FROM run_summary s WHERE s.id = ");
        v.push_bind(Bind::Int(run_id));
        let sql = v.render(self.dialect().placeholders());
        let row = self
            .block_on(bind_args(sqlx::query(&sql), &v.binds).fetch_optional(self.pool()))
            .context("reading a field")?;
        Ok(row.and_then(|r| r.try_get::<Option<String>, _>(0).ok().flatten()))
    }

    /// A field's numeric value for a run (`test_auc`, `joint.valid_auc`,
    /// `params.prompts.count`); None when the run has none. A param that is
    /// not a number is an invalid-input error.
    pub fn field_number(&self, run_id: i64, field: &str) -> Result<Option<f64>> {
        let f = filter::field_arg("--metric", field)?;
        let mut v = Sql::default();
        v.push("SELECT ");
        v.append(f.number_sql());
        v.push(" AS n, CAST(");
        v.append(f.value_sql());
        v.push(" AS TEXT) AS t FROM run_summary s WHERE s.id = ");
        v.push_bind(Bind::Int(run_id));
        let sql = v.render(self.dialect().placeholders());
        let row = self
            .block_on(bind_args(sqlx::query(&sql), &v.binds).fetch_optional(self.pool()))
            .context("reading a field")?;
        let Some(row) = row else {
            return Err(invalid(format!("no run {run_id} in {}", self.target())));
        };
        let number: Option<f64> = row.try_get("n").context("reading a field")?;
        let text: Option<String> = row.try_get("t").context("reading a field")?;
        match (number, text) {
            (Some(n), _) => Ok(Some(n)),
            (None, None) => Ok(None),
            (None, Some(text)) => Err(invalid(format!(
                "`{field}` of run {run_id} is not a number (`{text}`)"
            ))),
        }
    }

    pub fn params(&self, run_id: i64) -> Result<Vec<(String, String)>> {
        self.block_on(
            sqlx::query_as("SELECT key, value FROM params WHERE run_id = $1 ORDER BY key")
                .bind(run_id)
                .fetch_all(self.pool()),
        )
        .context("reading params")
    }

    pub fn stages(&self, run_id: i64) -> Result<Vec<StageInfo>> {
        self.block_on(
            sqlx::query_as::<_, StageInfo>(STAGE_SELECT)
                .bind(run_id)
                .fetch_all(self.pool()),
        )
        .context("reading stages")
    }

    /// Evaluations in stage order; within a stage by epoch (train, then valid), the test ones last.
    pub fn evaluations(&self, run_id: i64) -> Result<Vec<Evaluation>> {
        let rows = self
            .block_on(
                sqlx::query(
                    "SELECT e.stage, e.epoch, e.split, e.auc, e.logloss, e.extra_json, e.ts
                     FROM evaluations e LEFT JOIN stages st ON st.run_id = e.run_id AND st.stage = e.stage
                     WHERE e.run_id = $1
                     ORDER BY COALESCE(st.ord, -1), e.stage, e.split = 'test', e.epoch,
                              CASE e.split WHEN 'train' THEN 0 WHEN 'valid' THEN 1 ELSE 2 END",
                )
                .bind(run_id)
                .fetch_all(self.pool()),
            )
            .context("reading evaluations")?;
        rows.iter()
            .map(evaluation_from)
            .collect::<sqlx::Result<_>>()
            .context("reading evaluations")
    }

    pub fn artifacts(&self, run_id: i64) -> Result<Vec<Artifact>> {
        self.block_on(
            sqlx::query_as::<_, Artifact>(
                "SELECT stage, epoch, path, bytes, sha256, ts FROM artifacts WHERE run_id = $1 ORDER BY id",
            )
            .bind(run_id)
            .fetch_all(self.pool()),
        )
        .context("reading artifacts")
    }

    /// A metric series, optionally one stage and/or one key, in step order.
    pub fn metric_series(
        &self,
        run_id: i64,
        stage: Option<&str>,
        key: Option<&str>,
    ) -> Result<Vec<MetricPoint>> {
        // Conditions only for what is given: PostgreSQL cannot type a
        // parameter that is only ever compared with NULL.
        let mut sql = String::from(
            "SELECT id, stage, epoch, step, key, value, ts FROM metrics WHERE run_id = $1",
        );
        let mut n = 1;
        for (col, v) in [("stage", stage), ("key", key)] {
            if v.is_some() {
                n += 1;
                sql.push_str(&format!(" AND {col} = ${n}"));
            }
        }
        sql.push_str(" ORDER BY id");
        let mut q = sqlx::query_as::<_, MetricPoint>(&sql).bind(run_id);
        for v in [stage, key].into_iter().flatten() {
            q = q.bind(v);
        }
        self.block_on(q.fetch_all(self.pool()))
            .context("reading metrics")
    }

    /// Metric rows with `id > after_id`, oldest first, at most `limit`:
    /// pass the last id seen to follow a live run cheaply.
    pub fn metrics_since(
        &self,
        run_id: i64,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<MetricPoint>> {
        self.block_on(
            sqlx::query_as::<_, MetricPoint>(
                "SELECT id, stage, epoch, step, key, value, ts FROM metrics
                 WHERE run_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(run_id)
            .bind(after_id)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.pool()),
        )
        .context("reading new metrics")
    }

    /// The last `n` log lines, oldest first.
    pub fn logs_tail(&self, run_id: i64, n: usize) -> Result<Vec<LogLine>> {
        let mut lines = self
            .block_on(
                sqlx::query_as::<_, LogLine>(
                    "SELECT id, ts, level, message FROM logs WHERE run_id = $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(run_id)
                .bind(i64::try_from(n).unwrap_or(i64::MAX))
                .fetch_all(self.pool()),
            )
            .context("reading logs")?;
        lines.reverse();
        Ok(lines)
    }

    /// Log lines with `id > after_id`, oldest first.
    pub fn logs_since(&self, run_id: i64, after_id: i64) -> Result<Vec<LogLine>> {
        self.block_on(
            sqlx::query_as::<_, LogLine>(
                "SELECT id, ts, level, message FROM logs WHERE run_id = $1 AND id > $2 ORDER BY id",
            )
            .bind(run_id)
            .bind(after_id)
            .fetch_all(self.pool()),
        )
        .context("reading logs")
    }

    pub fn run_detail(&self, run_id: i64) -> Result<RunDetail> {
        let summary = self.run_summary(run_id)?;
        let (source_path, file_hash, pid, resumed, plan_yaml): (String, String, i64, i64, String) =
            self.block_on(
                sqlx::query_as(
                    "SELECT x.source_path, x.file_hash, r.pid, r.resumed, r.plan_yaml
                     FROM runs r JOIN experiments x ON x.id = r.experiment_id WHERE r.id = $1",
                )
                .bind(run_id)
                .fetch_one(self.pool()),
            )
            .context("reading a run")?;
        Ok(RunDetail {
            summary,
            source_path,
            file_hash,
            pid,
            resumed,
            plan_yaml,
            params: self.params(run_id)?,
            stages: self.stages(run_id)?,
            evaluations: self.evaluations(run_id)?,
            artifacts: self.artifacts(run_id)?,
            logs: self.logs_tail(run_id, 20)?,
        })
    }

    /// The source text of a run's experiment file as it was when run.
    pub fn source_text(&self, run_id: i64) -> Result<String> {
        self.block_on(
            sqlx::query_scalar(
                "SELECT x.source_text FROM runs r JOIN experiments x ON x.id = r.experiment_id WHERE r.id = $1",
            )
            .bind(run_id)
            .fetch_optional(self.pool()),
        )
        .context("reading a run's source")?
        .ok_or_else(|| invalid(format!("no run {run_id} in {}", self.target())))
    }

    /// Deletes runs (and everything recorded for them) and experiments left
    /// without runs. Refuses a RUNNING run. Returns how many were deleted.
    pub fn delete_runs(&self, ids: &[i64]) -> Result<usize> {
        for &id in ids {
            let run = self.run_summary(id)?;
            if run.status == "RUNNING" {
                return Err(invalid(format!(
                    "run {id} is still RUNNING (process alive on {}); stop it before deleting",
                    run.host
                )));
            }
        }
        let pool = self.pool().clone();
        let dialect = self.dialect();
        let ids = ids.to_vec();
        self.block_on(async move {
            let mut tx = pool.begin_with(dialect.begin_write()).await?;
            let mut n = 0;
            for id in ids {
                n += sqlx::query("DELETE FROM runs WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            sqlx::query("DELETE FROM experiments WHERE id NOT IN (SELECT experiment_id FROM runs)")
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "DELETE FROM run_groups WHERE id NOT IN (SELECT group_id FROM runs WHERE group_id IS NOT NULL)",
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<usize, sqlx::Error>(n as usize)
        })
        .context("deleting runs")
    }

    /// What exists for run `run_id` (stages, evaluations, checkpoints), read-only.
    pub fn resume_info(&self, run_id: i64) -> Result<ResumeInfo> {
        let run = self.run_summary(run_id)?;
        let plan_yaml: String = self
            .block_on(
                sqlx::query_scalar("SELECT plan_yaml FROM runs WHERE id = $1")
                    .bind(run_id)
                    .fetch_one(self.pool()),
            )
            .context("reading a run's plan")?;
        Ok(ResumeInfo {
            run,
            plan_yaml,
            stages: self.stages(run_id)?,
            evaluations: self.evaluations(run_id)?,
            checkpoints: self.artifacts(run_id)?,
        })
    }

    /// Reopens an INTERRUPTED or FAILED run for `run --resume`: status back to
    /// RUNNING under this process, and a recorder that appends to it.
    /// Re-emitting `StageStarted` for a stage keeps its place; evaluations of
    /// an epoch replace earlier ones of the same epoch.
    pub fn reopen_run(&self, run_id: i64) -> Result<(super::RunRecorder, ResumeInfo)> {
        // A RUNNING row whose process died is recovered first, so it can be resumed.
        self.recover_dead_runs()?;
        let info = self.resume_info(run_id)?;
        match info.run.status.as_str() {
            "RUNNING" => {
                return Err(invalid(format!(
                    "run {run_id} is still running on {} (pid alive); it cannot be resumed twice",
                    info.run.host
                )))
            }
            "FINISHED" => {
                return Err(invalid(format!(
                    "run {run_id} already FINISHED; nothing to resume"
                )))
            }
            _ => {}
        }
        let pid = std::process::id();
        let note = format!("resumed by process {pid} on {}", super::process::hostname());
        let pool = self.pool().clone();
        let dialect = self.dialect();
        let reopened = self.block_on(async {
            let mut tx = pool.begin_with(dialect.begin_write()).await?;
            let res = sqlx::query(
                "UPDATE runs SET status = 'RUNNING', ended_at = NULL, error = NULL, pid = $1, proc_start = $2,
                    host = $3, resumed = resumed + 1
                 WHERE id = $4 AND status IN ('INTERRUPTED', 'FAILED')",
            )
            .bind(i64::from(pid))
            .bind(super::process::own_token())
            .bind(super::process::hostname())
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
            if res.rows_affected() != 1 {
                return Ok::<bool, sqlx::Error>(false);
            }
            sqlx::query("INSERT INTO logs (run_id, ts, level, message) VALUES ($1, $2, 'info', $3)")
                .bind(run_id)
                .bind(super::db::now())
                .bind(&note)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        });
        if !reopened.context("reopening a run")? {
            return Err(invalid(format!(
                "run {run_id} changed status while being resumed; try again"
            )));
        }
        let recorder = self.spawn_writer(run_id);
        let info = self.resume_info(run_id)?;
        Ok((recorder, info))
    }
}
