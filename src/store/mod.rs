//! Run history in SQLite (sqlx): runs, params, metrics, evaluations, artifacts.
