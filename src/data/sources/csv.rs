//! Any delimited file: a header line or declared column names, a separator
//! of one or more characters, optional double quoting (`""` escapes a quote),
//! UTF-8 or Latin-1. Every line must have as many fields as there are
//! columns; with `skip_bad_rows` lines that do not are skipped and counted.

use std::collections::HashSet;

use anyhow::Result;

use super::SourceStats;
use crate::data::raw::{
    decode, lines, read_bytes, snippet, split_quoted, ColumnBuilder, RawTable, RowOrigin,
};
use crate::error::invalid;
use crate::plan::CsvSource;

pub fn read(src: &CsvSource, skip_bad: bool) -> Result<(RawTable, SourceStats)> {
    let path = &src.path;
    if src.sep.is_empty() {
        return Err(invalid(format!(
            "csv({}): the separator is empty",
            path.display()
        )));
    }
    let bytes = read_bytes(path)?;
    let mut it = lines(&bytes).peekable();
    let names: Vec<String> = if src.header {
        let Some((no, h)) = it.next() else {
            return Err(invalid(format!(
                "{}: empty file, expected a header line",
                path.display()
            )));
        };
        let h = decode(h, src.latin1, path, no)?;
        let mut fields = Vec::new();
        split_quoted(&h, &src.sep, &mut fields).map_err(|e| {
            invalid(format!(
                "{}:{no}: header: {e}: {}",
                path.display(),
                snippet(&h)
            ))
        })?;
        let from_header: Vec<String> = fields.iter().map(|f| f.trim().to_string()).collect();
        if src.columns.is_empty() {
            from_header
        } else if src.columns.len() != from_header.len() {
            return Err(invalid(format!(
                "{}:{no}: the header has {} columns but the dataset declares {} ({})",
                path.display(),
                from_header.len(),
                src.columns.len(),
                src.columns.join(", ")
            )));
        } else {
            src.columns.clone()
        }
    } else if src.columns.is_empty() {
        return Err(invalid(format!(
            "csv({}): without a header the dataset must name its columns",
            path.display()
        )));
    } else {
        src.columns.clone()
    };
    let mut seen = HashSet::new();
    for n in &names {
        if n.is_empty() || !seen.insert(n.as_str()) {
            return Err(invalid(format!(
                "{}: column names must be non-empty and distinct, got: {}",
                path.display(),
                names.join(", ")
            )));
        }
    }

    let mut cols: Vec<ColumnBuilder> = names
        .iter()
        .map(|_| ColumnBuilder::with_capacity(bytes.len() / 32))
        .collect();
    let mut line_nos = Vec::new();
    let mut stats = SourceStats::default();
    for (no, raw) in it {
        let line = decode(raw, src.latin1, path, no)?;
        let mut fields = Vec::with_capacity(names.len());
        let problem = match split_quoted(&line, &src.sep, &mut fields) {
            Err(e) => Some(e.to_string()),
            Ok(()) if fields.len() != names.len() => Some(format!(
                "expected {} fields ({}) separated by {:?}, found {}",
                names.len(),
                names.join(", "),
                src.sep,
                fields.len()
            )),
            Ok(()) => None,
        };
        if let Some(why) = problem {
            let msg = format!("{}:{no}: {why}: {}", path.display(), snippet(&line));
            if skip_bad {
                stats.skip(msg);
                continue;
            }
            return Err(invalid(msg));
        }
        for (c, f) in cols.iter_mut().zip(&fields) {
            c.push(f);
        }
        line_nos.push(no);
    }
    let mut table = RawTable {
        source: format!("csv({})", path.display()),
        origin: Some(RowOrigin {
            file: path.clone(),
            lines: line_nos,
        }),
        ..RawTable::default()
    };
    for (n, c) in names.iter().zip(cols) {
        table.push_column(n, c.finish());
    }
    Ok((table, stats))
}
