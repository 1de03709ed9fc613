//! A run-database writer for the dashboard tests: the schema from
//! store's migrations, rows inserted with plain SQL like the recorder's.
#![allow(dead_code)]

use clickprompt::store::DbTarget;
use sqlx::AnyConnection;

pub struct Writer {
    pub rt: tokio::runtime::Runtime,
    pub conn: AnyConnection,
}

impl Writer {
    /// Creates the schema in `db` (a SQLite file in WAL mode, or an empty
    /// PostgreSQL database) and keeps a connection for writing rows.
    pub fn create(db: impl Into<DbTarget>) -> Writer {
        let db = db.into();
        sqlx::any::install_default_drivers();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = match &db {
            DbTarget::Sqlite(p) => format!("sqlite://{}?mode=rwc", p.display()),
            DbTarget::Postgres(u) => u.clone(),
        };
        let mut conn = rt
            .block_on(async {
                use sqlx::{Connection, Executor};
                let mut conn = AnyConnection::connect(&url).await?;
                if db.sqlite_path().is_some() {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                }
                Ok::<_, sqlx::Error>(conn)
            })
            .unwrap();
        rt.block_on(db.dialect().migrator().run(&mut conn)).unwrap();
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
