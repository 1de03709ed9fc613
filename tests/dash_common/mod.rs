//! A run-database writer for the dashboard tests: the schema from
//! store's migrations, rows inserted with plain SQL like the recorder's.
#![allow(dead_code)]

use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{ConnectOptions, SqliteConnection};

pub struct Writer {
    pub rt: tokio::runtime::Runtime,
    pub conn: SqliteConnection,
}

impl Writer {
    pub fn create(path: &Path) -> Writer {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut conn = rt
            .block_on(
                SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .connect(),
            )
            .unwrap();
        rt.block_on(clickprompt::store::MIGRATOR.run(&mut conn))
            .unwrap();
        Writer { rt, conn }
    }

    pub fn exec(&mut self, sql: &str) {
        self.rt
            .block_on(sqlx::raw_sql(sql).execute(&mut self.conn))
            .unwrap_or_else(|e| panic!("{e}\n{sql}"));
    }

    #[allow(clippy::too_many_arguments)]
    pub fn stage(
        &mut self,
        run: i64,
        name: &str,
        ord: i64,
        kind: &str,
        epochs: i64,
        spe: i64,
        status: &str,
        best: &str,
        seconds: &str,
    ) {
        let sql = format!(
            "INSERT INTO stages (run_id, stage, ord, kind, epochs, steps_per_epoch, rows, status, best_epoch, seconds, started_at)
             VALUES ({run}, '{name}', {ord}, '{kind}', {epochs}, {spe}, 100, '{status}', {best}, {seconds}, '2026-11-29T18:00:00.000Z')"
        );
        self.exec(&sql);
    }
}

pub fn hostname() -> String {
    clickprompt::store::process::hostname()
}
