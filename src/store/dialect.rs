//! Everything that differs between the SQLite and the PostgreSQL store, in one
//! place: migrations, how a write transaction starts, placeholder style, and
//! connecting. The SQL elsewhere is written once for both:
//!
//! * placeholders are `$1, $2, …`, which PostgreSQL and sqlx's SQLite driver
//!   both bind by number; fragments composed at run time (`--where`) use `?`
//!   and are numbered for the dialect by [`Placeholders::render`];
//! * upserts are `INSERT … ON CONFLICT (…) DO UPDATE/NOTHING`, `RETURNING id`,
//!   booleans `TRUE`/`FALSE`, substring tests `LIKE … ESCAPE '\'` — all
//!   spelled the same in both engines;
//! * the schema (types, the `run_summary` view's date arithmetic) is per
//!   backend in `migrations/sqlite` and `migrations/postgres`, with the same
//!   versions, tables, columns and view.

use sqlx::migrate::Migrator;

/// Embedded SQLite schema migrations (`migrations/sqlite/*.sql`).
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
/// Embedded PostgreSQL schema migrations (`migrations/postgres/*.sql`), the
/// same versions as SQLite's.
pub static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The database engine behind a [`super::Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// How bound values are written in SQL text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholders {
    /// `?` each (SQLite, in bind order).
    Question,
    /// `$1`, `$2`, … (PostgreSQL).
    Numbered,
}

impl Dialect {
    pub fn migrator(self) -> &'static Migrator {
        match self {
            Dialect::Sqlite => &SQLITE_MIGRATOR,
            Dialect::Postgres => &POSTGRES_MIGRATOR,
        }
    }

    /// The statement that opens a write transaction. SQLite takes the write
    /// lock up front (`IMMEDIATE`), so a transaction never fails half-way on
    /// a lock upgrade; PostgreSQL locks rows as it goes (READ COMMITTED).
    pub fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    pub fn placeholders(self) -> Placeholders {
        match self {
            Dialect::Sqlite => Placeholders::Question,
            Dialect::Postgres => Placeholders::Numbered,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
        }
    }
}

impl Placeholders {
    /// `sql` with each `?` outside quoted text written in this style,
    /// numbered from `first` (PostgreSQL); quoted `'…'` and `"…"` text is
    /// copied as is.
    pub fn render(self, sql: &str, first: usize) -> String {
        if self == Placeholders::Question {
            return sql.to_string();
        }
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = first;
        let mut quote: Option<char> = None;
        for c in sql.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => {
                    quote = None;
                    out.push(c);
                }
                (Some(_), c) => out.push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    out.push(c);
                }
                (None, '?') => {
                    out.push('$');
                    out.push_str(&n.to_string());
                    n += 1;
                }
                (None, c) => out.push(c),
            }
        }
        out
    }
}

/// Registers the sqlx `Any` drivers compiled into this build (idempotent).
pub(crate) fn install_drivers() {
    sqlx::any::install_default_drivers();
}

/// Whether this build can talk to PostgreSQL (cargo feature `postgres`, on by default).
pub const POSTGRES_BUILT_IN: bool = cfg!(feature = "postgres");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let versions = |m: &Migrator| {
            m.iter()
                .map(|x| (x.version, x.description.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(versions(&SQLITE_MIGRATOR), versions(&POSTGRES_MIGRATOR));
        assert!(SQLITE_MIGRATOR.iter().count() >= 2);
    }

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        let sql = "a = ? AND b LIKE '%?%' AND \"c?\" = ? OR d = ?";
        assert_eq!(Placeholders::Question.render(sql, 1), sql);
        assert_eq!(
            Placeholders::Numbered.render(sql, 3),
            "a = $3 AND b LIKE '%?%' AND \"c?\" = $4 OR d = $5"
        );
    }
}
