//! Feeds the dashboard from the run database: maps SQLite rows into the
//! `clickprompt_tui` view types. Read-only, so it can watch a run another
//! process is recording (the database is in WAL mode; readers never block
//! the writer).
//!
//! Step metrics and logs are polled incrementally (`WHERE id > last_seen`,
//! ids only grow), so a refresh four times a second costs the new rows only,
//! however long the run.

mod groups;
mod poll;
mod rows;

pub use poll::SqliteSource;
