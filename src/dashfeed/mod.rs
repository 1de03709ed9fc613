//! Feeds the dashboard from the run database: maps rows into the
//! `clickprompt_tui` view types. Read-only, so it can watch a run another
//! process is recording (SQLite in WAL mode: readers never block the writer;
//! PostgreSQL: a run recorded on another machine).
//!
//! Step metrics and logs are polled incrementally (`WHERE id > last_seen`,
//! ids only grow), so a refresh four times a second costs the new rows only,
//! however long the run.

mod groups;
mod poll;
mod rows;

pub use poll::StoreSource;
