//! Readers turning a declared source into one joined [`RawTable`]: one row
//! per interaction, with user and item attributes attached.
//!
//! Canonical column names (what `FieldPlan::column` refers to):
//! * `movielens_100k`: `user_id, item_id, rating, timestamp, age, gender,
//!   occupation, zip, title, release_date, year, genres, genre`.
//! * `movielens_1m`: the same, where `age` is the README's age code (1, 18,
//!   25, 35, 45, 50, 56 — the lower end of the range, so it still buckets as a
//!   number), `age_group` its words (`18-24`), `occupation` the occupation in
//!   words and `occupation_id` its code; `release_date` is the year in the title.
//! * `bookcrossing`: `user_id, location, age, isbn, title, author, year,
//!   publisher, rating`.
//! * `csv`: the header's (or the declared) column names.
//! * `synthetic`: see [`super::synthetic`].
//!
//! `genres` is the `|`-separated list of genre names, `genre` the first one,
//! `year` the four-digit year in parentheses at the end of a title (empty when absent).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::raw::{RawTable, RowOrigin, StrColumn};
use crate::error::invalid;
use crate::plan::{DatasetPlan, SourcePlan};

pub mod bookcrossing;
pub mod csv;
pub mod movielens;

/// What reading the source did besides producing rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStats {
    /// Rows in the final table.
    pub rows: usize,
    /// Malformed lines skipped because the dataset says `skip_bad_rows`.
    pub skipped_bad_rows: usize,
    /// Interactions dropped because their user or item has no attribute row.
    pub dropped_unjoined: usize,
    /// The first few skipped lines, as `file:line: reason`.
    pub skipped_examples: Vec<String>,
}

impl SourceStats {
    pub fn skip(&mut self, what: String) {
        self.skipped_bad_rows += 1;
        if self.skipped_examples.len() < 5 {
            self.skipped_examples.push(what);
        }
    }
}

/// Reads the source of a dataset.
pub fn read(plan: &DatasetPlan) -> Result<(RawTable, SourceStats)> {
    let (table, mut stats) = match &plan.source {
        SourcePlan::MovieLens100k { dir } => movielens::read_100k(dir)?,
        SourcePlan::MovieLens1m { dir } => movielens::read_1m(dir)?,
        SourcePlan::Bookcrossing { dir } => bookcrossing::read(dir, plan.skip_bad_rows)?,
        SourcePlan::Csv(c) => csv::read(c, plan.skip_bad_rows)?,
        SourcePlan::Synthetic(s) => (super::synthetic::generate(s)?.table, SourceStats::default()),
    };
    if table.rows == 0 {
        return Err(invalid(format!(
            "dataset '{}': {} has no rows",
            plan.name, table.source
        )));
    }
    stats.rows = table.rows;
    Ok((table, stats))
}

/// The files a source reads (their size and mtime key the cache).
pub fn files(source: &SourcePlan) -> Vec<PathBuf> {
    match source {
        SourcePlan::MovieLens100k { dir } => ["u.data", "u.user", "u.item", "u.genre"]
            .iter()
            .map(|f| dir.join(f))
            .collect(),
        SourcePlan::MovieLens1m { dir } => ["ratings.dat", "users.dat", "movies.dat"]
            .iter()
            .map(|f| dir.join(f))
            .collect(),
        SourcePlan::Bookcrossing { dir } => {
            bookcrossing::FILES.iter().map(|f| dir.join(f)).collect()
        }
        SourcePlan::Csv(c) => vec![c.path.clone()],
        SourcePlan::Synthetic(_) => Vec::new(),
    }
}

/// An attribute table (users, items) keyed by its id column.
pub struct AttrTable {
    pub file: PathBuf,
    pub index: HashMap<String, u32>,
    pub names: Vec<&'static str>,
    pub columns: Vec<StrColumn>,
}

/// What to do with an interaction whose key has no attribute row.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnMissing {
    Error,
    Drop,
}

/// Attaches `attrs` to `table` through its `key` column. Dropped rows are
/// returned as a count; with `OnMissing::Error` the first missing key is an error.
pub fn join(
    table: &mut RawTable,
    key: &str,
    attrs: AttrTable,
    on_missing: OnMissing,
) -> Result<usize> {
    let key_col = table
        .column(key)
        .ok_or_else(|| anyhow::anyhow!("internal: join key '{key}' missing"))?;
    // Resolve each distinct key once.
    let mut row_of: Vec<Option<u32>> = Vec::with_capacity(key_col.dict.len());
    for (code, k) in key_col.dict.iter().enumerate() {
        let r = attrs.index.get(k).copied();
        if r.is_none() && on_missing == OnMissing::Error {
            let at = key_col
                .first_row_with(code as u32)
                .map(|r| table.locate(r))
                .unwrap_or_default();
            return Err(invalid(format!(
                "{at}: {key} {k} has no row in {}",
                attrs.file.display()
            )));
        }
        row_of.push(r);
    }
    let keep: Vec<Option<u32>> = key_col.codes.iter().map(|&c| row_of[c as usize]).collect();
    let dropped = keep.iter().filter(|k| k.is_none()).count();
    if dropped > 0 {
        let mask: Vec<bool> = keep.iter().map(|k| k.is_some()).collect();
        filter_rows(table, &mask);
    }
    let attr_rows: Vec<u32> = keep.into_iter().flatten().collect();
    for (name, col) in attrs.names.iter().zip(attrs.columns) {
        let codes = attr_rows.iter().map(|&r| col.codes[r as usize]).collect();
        table.push_column(
            name,
            StrColumn {
                dict: col.dict,
                codes,
            },
        );
    }
    Ok(dropped)
}

/// Keeps the rows where `mask` is true.
pub fn filter_rows(table: &mut RawTable, mask: &[bool]) {
    for col in &mut table.columns {
        col.codes = col
            .codes
            .iter()
            .zip(mask)
            .filter(|(_, &m)| m)
            .map(|(&c, _)| c)
            .collect();
    }
    if let Some(RowOrigin { lines, .. }) = &mut table.origin {
        *lines = lines
            .iter()
            .zip(mask)
            .filter(|(_, &m)| m)
            .map(|(&l, _)| l)
            .collect();
    }
    table.rows = mask.iter().filter(|&&m| m).count();
}

/// The year in parentheses at the end of a title (`Toy Story (1995)` → `1995`).
pub fn title_year(title: &str) -> &str {
    let t = title.trim_end();
    // Compare bytes before slicing: the four bytes before `)` may sit inside
    // a multibyte character (`…é)`), where a `str` slice would panic. Once
    // they are ASCII digits after an ASCII `(`, the slice is on char boundaries.
    let b = t.as_bytes();
    let n = b.len();
    if n >= 6
        && b[n - 1] == b')'
        && b[n - 6] == b'('
        && b[n - 5..n - 1].iter().all(u8::is_ascii_digit)
    {
        return &t[n - 5..n - 1];
    }
    ""
}

#[cfg(test)]
mod tests {
    #[test]
    fn title_year() {
        assert_eq!(super::title_year("Toy Story (1995)"), "1995");
        assert_eq!(super::title_year("Kolya (1996) "), "1996");
        assert_eq!(super::title_year("unknown"), "");
        assert_eq!(super::title_year("(abcd)"), "");
        // Multibyte characters just before the parenthesis (a panic once).
        assert_eq!(super::title_year("Amélie (é)"), "");
        assert_eq!(super::title_year("x(ééé)"), "");
        assert_eq!(super::title_year("Am\u{e9}lie (2001)"), "2001");
    }
}
