//! Book-Crossing (Ziegler et al. 2005): three `;`-separated, double-quoted,
//! Latin-1 files with a header line each.
//!
//! The public release has malformed lines (unbalanced quotes from `\"` inside
//! titles, shifted columns, a publisher where the year belongs). A line is
//! malformed when its quoting does not parse, its field count is wrong, or a
//! numeric column (rating 0–10, publication year) is not an integer. Such
//! lines are errors unless the dataset says `skip_bad_rows`, in which case
//! they are skipped and counted. Ratings whose user or book has no row are
//! dropped (the release has many ratings of unlisted ISBNs) and counted.
//! `age` keeps `NULL` as written; numeric fields read it as missing.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;

use super::{join, AttrTable, OnMissing, SourceStats};
use crate::data::raw::{
    decode, lines, read_bytes, snippet, split_quoted, ColumnBuilder, RawTable, RowOrigin,
};
use crate::error::invalid;

pub const FILES: [&str; 3] = ["BX-Book-Ratings.csv", "BX-Users.csv", "BX-Books.csv"];

/// Reads one BX file, calling `row` for every well-formed data line. `row`
/// returns `Err(reason)` for a line whose values are malformed.
fn read_file(
    path: &Path,
    header_starts: &str,
    n_fields: usize,
    skip_bad: bool,
    stats: &mut SourceStats,
    mut row: impl FnMut(u32, &[Cow<str>]) -> std::result::Result<(), String>,
) -> Result<()> {
    let bytes = read_bytes(path)?;
    let mut it = lines(&bytes);
    match it.next() {
        Some((no, h)) => {
            let h = decode(h, true, path, no)?;
            if !h.starts_with(header_starts) {
                return Err(invalid(format!(
                    "{}:{no}: expected the BookCrossing header starting with {header_starts}, found {}",
                    path.display(),
                    snippet(&h)
                )));
            }
        }
        None => return Err(invalid(format!("{}: empty file", path.display()))),
    }
    for (no, raw) in it {
        let line = decode(raw, true, path, no)?;
        let mut fields = Vec::with_capacity(n_fields);
        let problem = match split_quoted(&line, ";", &mut fields) {
            Err(e) => Some(e.to_string()),
            Ok(()) if fields.len() != n_fields => Some(format!(
                "expected {n_fields} fields, found {}",
                fields.len()
            )),
            Ok(()) => row(no, &fields).err(),
        };
        if let Some(why) = problem {
            let msg = format!("{}:{no}: {why}: {}", path.display(), snippet(&line));
            if skip_bad {
                stats.skip(msg);
            } else {
                return Err(invalid(format!(
                    "{msg}\n(the BookCrossing release has known malformed lines; add `skip_bad_rows` to the dataset to skip them)"
                )));
            }
        }
    }
    Ok(())
}

fn attr(path: &Path, names: Vec<&'static str>) -> AttrTable {
    AttrTable {
        file: path.to_path_buf(),
        index: HashMap::new(),
        names,
        columns: Vec::new(),
    }
}

pub fn read(dir: &Path, skip_bad: bool) -> Result<(RawTable, SourceStats)> {
    let mut stats = SourceStats::default();

    let rpath = dir.join(FILES[0]);
    let mut user = ColumnBuilder::default();
    let mut isbn = ColumnBuilder::default();
    let mut rating = ColumnBuilder::default();
    let mut line_nos = Vec::new();
    read_file(&rpath, "\"User-ID\"", 3, skip_bad, &mut stats, |no, f| {
        match f[2].trim().parse::<u32>() {
            Ok(r) if r <= 10 => {}
            _ => return Err(format!("rating \"{}\" is not an integer 0–10", f[2])),
        }
        user.push(&f[0]);
        isbn.push(&f[1]);
        rating.push(f[2].trim());
        line_nos.push(no);
        Ok(())
    })?;
    let mut table = RawTable {
        source: format!("bookcrossing({})", dir.display()),
        origin: Some(RowOrigin {
            file: rpath.clone(),
            lines: line_nos,
        }),
        ..RawTable::default()
    };
    table.push_column("user_id", user.finish());
    table.push_column("isbn", isbn.finish());
    table.push_column("rating", rating.finish());
    let (users, books) = side_tables(dir, skip_bad, &mut stats)?;
    stats.dropped_unjoined += join(&mut table, "user_id", users, OnMissing::Drop)?;
    stats.dropped_unjoined += join(&mut table, "isbn", books, OnMissing::Drop)?;
    Ok((table, stats))
}

/// The user and book attribute tables (`BX-Users.csv`, `BX-Books.csv`),
/// keyed by user id and ISBN; skipped malformed lines are counted in `stats`.
pub fn side_tables(
    dir: &Path,
    skip_bad: bool,
    stats: &mut SourceStats,
) -> Result<(AttrTable, AttrTable)> {
    let upath = dir.join(FILES[1]);
    let mut users = attr(&upath, vec!["location", "age"]);
    let mut ucols = [ColumnBuilder::default(), ColumnBuilder::default()];
    let mut dup = None;
    read_file(&upath, "\"User-ID\"", 3, skip_bad, stats, |no, f| {
        let age = f[2].trim();
        if age != "NULL" && age.parse::<f64>().is_err() {
            return Err(format!("age \"{age}\" is not a number or NULL"));
        }
        if users.index.contains_key(f[0].as_ref()) {
            dup.get_or_insert((no, f[0].to_string()));
            return Ok(());
        }
        users
            .index
            .insert(f[0].to_string(), users.index.len() as u32);
        ucols[0].push(&f[1]);
        ucols[1].push(age);
        Ok(())
    })?;
    if let Some((no, id)) = dup {
        return Err(invalid(format!(
            "{}:{no}: user {id} appears twice",
            upath.display()
        )));
    }
    users.columns = ucols.into_iter().map(ColumnBuilder::finish).collect();

    let bpath = dir.join(FILES[2]);
    let mut books = attr(&bpath, vec!["title", "author", "year", "publisher"]);
    let mut bcols: [ColumnBuilder; 4] = Default::default();
    read_file(&bpath, "\"ISBN\"", 8, skip_bad, stats, |_, f| {
        if f[3].trim().parse::<i32>().is_err() {
            return Err(format!("publication year \"{}\" is not an integer", f[3]));
        }
        // A repeated ISBN keeps its first row.
        let row = books.index.len() as u32;
        if books.index.contains_key(f[0].as_ref()) {
            return Ok(());
        }
        books.index.insert(f[0].to_string(), row);
        for (c, v) in bcols.iter_mut().zip([&f[1], &f[2], &f[3], &f[4]]) {
            c.push(v.trim());
        }
        Ok(())
    })?;
    books.columns = bcols.into_iter().map(ColumnBuilder::finish).collect();
    Ok((users, books))
}
