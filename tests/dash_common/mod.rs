//! A run-database writer for the dashboard tests: the schema from
//! `migrations/*.sql`, rows inserted with plain SQL like the recorder's.
#![allow(dead_code)]

use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{ConnectOptions, SqliteConnection};

pub struct Writer {
    pub rt: tokio::runtime::Runtime,
    pub conn: SqliteConnection,
    stage_times: bool,
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
        let mut files: Vec<_> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "sql"))
                .collect();
        files.sort();
        for f in files {
            let sql = std::fs::read_to_string(&f).unwrap();
            rt.block_on(sqlx::raw_sql(&sql).execute(&mut conn)).unwrap();
        }
        let stage_times = rt
            .block_on(
                sqlx::query("SELECT 1 FROM pragma_table_info('stages') WHERE name = 'started_at'")
                    .fetch_optional(&mut conn),
            )
            .unwrap()
            .is_some();
        Writer {
            rt,
            conn,
            stage_times,
        }
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
        let sql = if self.stage_times {
            format!(
                "INSERT INTO stages (run_id, stage, ord, kind, epochs, steps_per_epoch, rows, status, best_epoch, seconds, started_at)
                 VALUES ({run}, '{name}', {ord}, '{kind}', {epochs}, {spe}, 100, '{status}', {best}, {seconds}, '2026-11-29T18:00:00.000Z')"
            )
        } else {
            format!(
                "INSERT INTO stages (run_id, stage, ord, kind, epochs, steps_per_epoch, rows, status, best_epoch, seconds)
                 VALUES ({run}, '{name}', {ord}, '{kind}', {epochs}, {spe}, 100, '{status}', {best}, {seconds})"
            )
        };
        self.exec(&sql);
    }
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: valid buffer of its length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(rc, 0);
    let end = buf.iter().position(|&b| b == 0).unwrap();
    String::from_utf8_lossy(&buf[..end]).trim().to_string()
}
