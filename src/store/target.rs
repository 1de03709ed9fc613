//! Where the run history lives: a SQLite file (the default, `./runs.db`) or a
//! PostgreSQL database shared by several machines (`postgres://user@host/db`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::dialect::Dialect;

/// A run database: `--db` / `$CLICKPROMPT_DB`, parsed by [`DbTarget::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTarget {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://` or `postgresql://`), with
    /// everything libpq-style URLs carry (`?sslmode=require`, `?host=/run/postgresql`).
    Postgres(String),
}

impl DbTarget {
    /// `postgres://…` / `postgresql://…` select PostgreSQL; `sqlite://PATH`,
    /// `sqlite:PATH` or a plain path select a SQLite file.
    pub fn parse(s: &str) -> DbTarget {
        let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            return DbTarget::Postgres(s.to_string());
        }
        let path = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
            .unwrap_or(s);
        DbTarget::Sqlite(PathBuf::from(path))
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            DbTarget::Sqlite(_) => Dialect::Sqlite,
            DbTarget::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite file, if this is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            DbTarget::Sqlite(p) => Some(p),
            DbTarget::Postgres(_) => None,
        }
    }

    /// The text to pass back as `--db` (the password included: for commands
    /// the user runs, never for messages; use `Display` there).
    pub fn as_arg(&self) -> String {
        match self {
            DbTarget::Sqlite(p) => p.display().to_string(),
            DbTarget::Postgres(url) => url.clone(),
        }
    }
}

/// The file path, or the URL with its password replaced by `***`.
impl fmt::Display for DbTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbTarget::Sqlite(p) => write!(f, "{}", p.display()),
            DbTarget::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

impl FromStr for DbTarget {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DbTarget::parse(s))
    }
}

impl From<&Path> for DbTarget {
    fn from(p: &Path) -> Self {
        DbTarget::Sqlite(p.to_path_buf())
    }
}

impl From<&PathBuf> for DbTarget {
    fn from(p: &PathBuf) -> Self {
        DbTarget::Sqlite(p.clone())
    }
}

impl From<PathBuf> for DbTarget {
    fn from(p: PathBuf) -> Self {
        DbTarget::Sqlite(p)
    }
}

impl From<&DbTarget> for DbTarget {
    fn from(t: &DbTarget) -> Self {
        t.clone()
    }
}

impl From<&str> for DbTarget {
    fn from(s: &str) -> Self {
        DbTarget::parse(s)
    }
}

/// `$CLICKPROMPT_DB` when set, else `./runs.db`: one default for every
/// command, so `run` writes where `runs` and `dash` read.
pub fn default_db() -> DbTarget {
    match std::env::var("CLICKPROMPT_DB")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(v) => DbTarget::parse(&v),
        None => DbTarget::Sqlite(PathBuf::from("runs.db")),
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; a
/// `password=` query parameter is masked too.
fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest_start = scheme_end + 3;
    let authority_end = url[rest_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| rest_start + i);
    let mut out = url[..rest_start].to_string();
    let authority = &url[rest_start..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &url[authority_end..];
    match tail.find('?') {
        Some(q) => {
            out.push_str(&tail[..=q]);
            let params: Vec<String> = tail[q + 1..]
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_and_paths() {
        assert_eq!(
            DbTarget::parse("runs.db"),
            DbTarget::Sqlite(PathBuf::from("runs.db"))
        );
        assert_eq!(
            DbTarget::parse("sqlite:///tmp/x.db"),
            DbTarget::Sqlite(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(
            DbTarget::parse("sqlite:rel/x.db"),
            DbTarget::Sqlite(PathBuf::from("rel/x.db"))
        );
        assert_eq!(
            DbTarget::parse("postgres://u@h/db").dialect(),
            Dialect::Postgres
        );
        assert_eq!(
            DbTarget::parse("PostgreSQL://u@h:5432/db").dialect(),
            Dialect::Postgres
        );
        // A file that merely has "postgres" in its name stays a file.
        assert_eq!(DbTarget::parse("postgres.db").dialect(), Dialect::Sqlite);
    }

    #[test]
    fn display_hides_passwords() {
        let t = DbTarget::parse("postgres://alice:s3cr3t@db.lab:5432/runs?sslmode=require");
        assert_eq!(
            t.to_string(),
            "postgres://alice:***@db.lab:5432/runs?sslmode=require"
        );
        assert!(t.as_arg().contains("s3cr3t"));
        assert_eq!(
            DbTarget::parse("postgres://bob@h/db?password=x&sslmode=disable").to_string(),
            "postgres://bob@h/db?password=***&sslmode=disable"
        );
        assert_eq!(
            DbTarget::parse("postgres:///runs?host=/tmp/pg").to_string(),
            "postgres:///runs?host=/tmp/pg"
        );
        // A password holding '@' (percent-encoding forgotten) is still hidden.
        assert_eq!(
            DbTarget::parse("postgres://u:p@ss@h/db").to_string(),
            "postgres://u:***@h/db"
        );
    }
}
