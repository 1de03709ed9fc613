//! Run history in SQLite (the default, one file) or PostgreSQL (a database
//! shared by several machines), through sqlx: runs, params, metrics,
//! evaluations, artifacts. [`DbTarget`] says which (`--db PATH|URL`,
//! `$CLICKPROMPT_DB`); the SQL is written once for both, and what differs
//! (schema types, the view's date arithmetic, transaction start, placeholder
//! numbering) is in [`Dialect`] and `migrations/{sqlite,postgres}/*.sql`,
//! documented in `docs/database.md`.
//!
//! The API is blocking; a [`Store`] owns a small tokio runtime and a pool. Call
//! it from plain threads, not from inside another tokio runtime.
//!
//! # Recording a run
//! ```ignore
//! use clickprompt::store::{default_db, NewRun, RunStatus, Store};
//! let store = Store::open(default_db())?;          // migrates, recovers dead runs
//! let rec = store.start_run(NewRun::new(&plan, file, &source, "cuda:0"))?;
//! let handle = rec.interrupt_handle();                       // for the Ctrl-C handler:
//! ctrlc::set_handler(move || { let _ = handle.interrupt(); std::process::exit(130); })?;
//! train(&plan, &rec)?;                                       // RunRecorder: EventSink
//! rec.finish(RunStatus::Finished)?;                          // or Failed(msg) / Interrupted
//! ```
//! `emit` only queues; a writer task commits batches every [`FLUSH_EVERY`]
//! (or [`MAX_BATCH`] events) in one transaction, so a crash loses at most the
//! last fraction of a second and never half a batch. `flush()` is a barrier.
//! Dropping a recorder without `finish` marks the run FAILED.
//!
//! # Resuming (`run --resume ID`)
//! [`Store::resume_info`] (read-only) and [`Store::reopen_run`] (status back to
//! RUNNING, returns a recorder appending to the same run plus [`ResumeInfo`]:
//! stages with status/last step/last epoch, evaluations, checkpoints;
//! `next_stage()`, `last_checkpoint(stage)`, `last_evaluated_epoch(stage)`).
//!
//! # Reading (CLI, dashboard)
//! * [`Store::list_runs`]`(&RunFilter)` → [`RunSummary`] rows (experiment,
//!   status, `--where` expression, sort, limit; figures of each run's best
//!   stage); [`Store::list_runs_with`] adds any fields' values
//!   (`joint.test_auc`); [`Store::run_summary`]`(id)`, [`Store::stage_names`].
//! * [`Store::run_detail`]`(id)` → plan YAML, params, stages, evaluations, artifacts, last logs.
//! * [`Store::params`], [`Store::stages`] (with progress: `last_step`, `last_epoch`),
//!   [`Store::evaluations`], [`Store::artifacts`], [`Store::logs_tail`]`(id, n)`.
//! * Step metrics (`loss`, `lr`, `samples_per_s`): [`Store::metric_series`]`(id, stage, key)`,
//!   and for polling [`Store::metrics_since`]`(id, last_seen_id, limit)` /
//!   [`Store::logs_since`]`(id, last_seen_id)` (ids only grow).
//! * Groups (a run's repeats over seeds): [`RunSummary::group_id`]/`group_name`,
//!   [`Store::group`]`(id)`, [`Store::groups_named`]`(name)`, [`Store::group_runs`]`(id)`;
//!   statistics over them in `crate::stats`.
//! * [`Store::best_run`]`(metric, experiment)`, [`Store::export`]`(ids)` (stable JSON,
//!   [`to_csv`]), [`Store::export_mlflow`]`(ids, dir, checkpoints)` (an MLflow
//!   file store), [`Store::delete_runs`]`(ids)`.
//!
//! Concurrency: SQLite in WAL mode with a `busy_timeout` of [`BUSY_TIMEOUT`],
//! write transactions taken with `BEGIN IMMEDIATE`; several processes may
//! record into one file while others read it. PostgreSQL: READ COMMITTED
//! transactions, any number of machines. Polling by `id > last_seen` is per
//! run: one run has one writer committing in order, so its ids become
//! visible in increasing order on either backend.
//!
//! Liveness: a run records its host and process identity
//! ([`process::own_token`]); opening a store marks RUNNING runs of *this*
//! host whose process is gone as INTERRUPTED, never another host's
//! ([`Store::recover_dead_runs`]); [`Store::mark_interrupted`] ends a stale one by hand.

mod db;
mod dialect;
mod export;
mod filter;
mod groups;
mod mlflow;
mod params;
pub mod process;
mod read;
mod recorder;
mod target;

pub use crate::plan::flatten_params;
pub use db::{Store, BUSY_TIMEOUT};
pub use dialect::{Dialect, Placeholders, POSTGRES_MIGRATOR, SQLITE_MIGRATOR};
pub use export::{
    to_csv, ArtifactExport, EvalExport, ExportDoc, RunExport, StageExport, SummaryExport,
    EXPORT_FORMAT, EXPORT_VERSION,
};
pub use filter::Better;
pub use groups::GroupInfo;
pub use mlflow::{CheckpointMode, MlflowReport, MAX_PARAM_CHARS};
pub use read::{
    Artifact, Evaluation, FieldValue, LogLine, MetricPoint, ResumeInfo, RunDetail, RunFilter,
    RunSummary, StageInfo,
};
pub use recorder::{
    group_key, InterruptHandle, NewRun, RunRecorder, RunStatus, FLUSH_EVERY, MAX_BATCH,
};
pub use target::{default_db, DbTarget};

pub(crate) use db::{connect_options, read_only_snapshot, runtime, SqliteMode};

/// Whether higher or lower values of a field are better (`test_auc`: higher;
/// `test_logloss`: lower; `params.x`: neither), or an invalid-input error for
/// an unknown field.
pub fn field_better(field: &str) -> anyhow::Result<Better> {
    Ok(filter::field_arg("--metric", field)?.better())
}

/// " (did you mean `x`?)" when `name` is close to one of `known`, else "".
pub fn suggest_name(name: &str, known: &[String]) -> String {
    filter::suggest(name, known.iter().map(String::as_str))
}

/// Compiles a `runs list --where` expression to its SQL text (SQLite
/// placeholders) without opening a database: what the command checks before
/// it queries. Errors are invalid input with a caret under the token at fault.
pub fn where_sql(expr: &str) -> anyhow::Result<String> {
    filter::compile_where(expr).map(|w| w.sql.render(Placeholders::Question))
}
