//! Exit-code classes. Everything else is `anyhow`; `main` downcasts to pick
//! the process exit code: 0 ok, 1 run failure, 2 invalid input, 3–7 a run
//! database that cannot be used as asked ([`DbFault`]).

use std::fmt;

/// Input the user must fix (experiment file, data file, model folder, flags).
/// The message is already rendered for people (diagnostics with carets).
#[derive(Debug)]
pub struct InvalidInput(pub String);

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidInput {}

/// Shorthand: `return Err(invalid(format!(...)))`.
pub fn invalid(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InvalidInput(msg.into()))
}

/// Why the run database cannot be used; each has its own exit code so a
/// script (a Slurm array, CI) can tell "fix the database" from "the run failed".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbFault {
    /// 3: the file is not a SQLite database, or is damaged.
    NotADatabase,
    /// 4: written by a newer clickprompt (unknown schema migrations).
    NewerSchema,
    /// 5: the file, its folder or its file system is read-only.
    ReadOnly,
    /// 6: the disk (or quota) is full.
    Full,
    /// 7: another process held the database locked past the busy timeout.
    Locked,
}

impl DbFault {
    pub fn exit_code(self) -> i32 {
        match self {
            DbFault::NotADatabase => 3,
            DbFault::NewerSchema => 4,
            DbFault::ReadOnly => 5,
            DbFault::Full => 6,
            DbFault::Locked => 7,
        }
    }

    /// What to do about it, for the line after the error.
    pub fn hint(self) -> &'static str {
        match self {
            DbFault::NotADatabase => {
                "the run database is not a SQLite database (or is damaged); pass another --db or move the file away"
            }
            DbFault::NewerSchema => {
                "the run database was written by a newer clickprompt; upgrade clickprompt or pass another --db"
            }
            DbFault::ReadOnly => {
                "the run database is read-only (the file, its folder or its file system); make it writable or pass another --db"
            }
            DbFault::Full => {
                "the disk holding the run database is full; free space (what was committed before is intact) and rerun or resume"
            }
            DbFault::Locked => {
                "another process held the run database locked longer than the busy timeout; retry, or find the process holding it (fuser FILE)"
            }
        }
    }
}

/// A run-database fault raised by clickprompt itself (not by SQLite).
#[derive(Debug)]
pub struct DbFaultError {
    pub fault: DbFault,
    pub message: String,
}

impl fmt::Display for DbFaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DbFaultError {}

pub fn db_fault_error(fault: DbFault, msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(DbFaultError {
        fault,
        message: msg.into(),
    })
}

/// The database fault behind `err`, if any: a [`DbFaultError`], an I/O error
/// (`ENOSPC`, `EROFS`), or a SQLite result code anywhere in the chain — also
/// as text, because the recorder's writer keeps its failure as a string.
pub fn db_fault(err: &anyhow::Error) -> Option<DbFault> {
    for e in err.chain() {
        if let Some(f) = e.downcast_ref::<DbFaultError>() {
            return Some(f.fault);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(f) = io_fault(io) {
                return Some(f);
            }
        }
        if let Some(sqlx::Error::Io(io)) = e.downcast_ref::<sqlx::Error>() {
            if let Some(f) = io_fault(io) {
                return Some(f);
            }
        }
        if let Some(f) = sqlite_code_in(&e.to_string()) {
            return Some(f);
        }
    }
    None
}

fn io_fault(io: &std::io::Error) -> Option<DbFault> {
    match io.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => Some(DbFault::Full),
        Some(libc::EROFS) => Some(DbFault::ReadOnly),
        _ => None,
    }
}

/// sqlx renders SQLite errors as `(code: N) message`, N the extended code
/// whose low byte is the primary result code.
fn sqlite_code_in(text: &str) -> Option<DbFault> {
    match sqlite_primary_code(text)? {
        5 | 6 => Some(DbFault::Locked),
        8 => Some(DbFault::ReadOnly),
        11 | 26 => Some(DbFault::NotADatabase),
        13 => Some(DbFault::Full),
        _ => None,
    }
}

/// The primary SQLite result code in an sqlx error's text, if any. Only
/// sqlx's own wording counts: a user's text quoting `(code: 5)` is no fault.
pub fn sqlite_primary_code(text: &str) -> Option<u32> {
    const PREFIX: &str = "error returned from database: (code: ";
    let at = text.find(PREFIX)? + PREFIX.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse::<u32>().ok().map(|c| c & 0xff)
}

/// The process exit code for `err`: a database fault's own code (3–7),
/// else 2 when any error in the chain is `InvalidInput`, else 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if let Some(f) = db_fault(err) {
        return f.exit_code();
    }
    if err.chain().any(|e| e.is::<InvalidInput>()) {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_codes_map_to_faults_and_exit_codes() {
        let e = |s: &str| anyhow::anyhow!("{s}").context("writing run 3 to runs.db");
        assert_eq!(
            exit_code(&e(
                "error returned from database: (code: 8) attempt to write a readonly database"
            )),
            5
        );
        assert_eq!(
            exit_code(&e(
                "error returned from database: (code: 1032) attempt to write a readonly database"
            )),
            5
        );
        assert_eq!(
            exit_code(&e(
                "error returned from database: (code: 13) database or disk is full"
            )),
            6
        );
        assert_eq!(
            exit_code(&e(
                "error returned from database: (code: 5) database is locked"
            )),
            7
        );
        assert_eq!(
            exit_code(&e(
                "error returned from database: (code: 26) file is not a database"
            )),
            3
        );
        assert_eq!(
            exit_code(&e("error returned from database: (code: 1) no such table")),
            1
        );
        let full = anyhow::Error::new(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(exit_code(&full), 6);
        assert_eq!(exit_code(&db_fault_error(DbFault::NewerSchema, "newer")), 4);
        assert_eq!(exit_code(&invalid("bad flag")), 2);
        assert_eq!(exit_code(&invalid("template \"(code: 5)\" is unknown")), 2);
    }
}
