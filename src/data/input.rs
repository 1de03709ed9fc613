//! Rows to score, streamed from a file or stdin one line at a time, in the
//! dataset's own raw format or as a delimited file with a header.
//!
//! * [`InputFormat::Source`] reads what the dataset's source reads:
//!   - `csv(...)`: the declared separator, header or column names, encoding;
//!   - `movielens_100k` / `movielens_1m`: rating lines like `u.data`
//!     (`user⇥item⇥rating⇥timestamp`) or `ratings.dat` (`::`), where rating
//!     and timestamp may be left out; the user and item attributes are
//!     joined from the source folder's `u.user`/`u.item` (`users.dat`/
//!     `movies.dat`), which are side tables, not training rows;
//!   - `bookcrossing`: `"User-ID";"ISBN";"Book-Rating"` lines (header
//!     optional, rating optional), joined with `BX-Users.csv`/`BX-Books.csv`;
//!   - `synthetic`: has no files, so a comma-separated file with a header.
//! * [`InputFormat::Csv`] / [`InputFormat::Tsv`]: a header line naming the
//!   source's columns (`user_id`, `title`, … — see `sources`), then one row
//!   per line, fields optionally double-quoted. Extra columns are ignored.
//!
//! Values are read byte for byte as training read them (same splitting,
//! quoting and decoding), so the same line encodes to the same ids. A line
//! that cannot be read — wrong field count, broken quoting, invalid UTF-8, a
//! user or item without an attribute row — is reported as a bad row with
//! its line number; the caller skips it or stops.

use std::borrow::Cow;
use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Result;

use super::raw::{snippet, split_quoted};
use super::sources::{bookcrossing, movielens, AttrTable, SourceStats};
use crate::error::invalid;
use crate::plan::SourcePlan;

/// How the rows to score are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// The dataset source's own format (see the module docs).
    Source,
    /// Comma-separated with a header line.
    Csv,
    /// Tab-separated with a header line.
    Tsv,
}

impl InputFormat {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "source" => Ok(Self::Source),
            "csv" => Ok(Self::Csv),
            "tsv" => Ok(Self::Tsv),
            _ => Err(invalid(format!(
                "--format {s}: expected source, csv or tsv"
            ))),
        }
    }
}

/// What [`RowReader::next`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// A row; its values are in the caller's buffer. `line` is 1-based.
    Row {
        line: u64,
    },
    /// A malformed line: `message` is `input:line: reason: "text"`.
    Bad {
        line: u64,
        message: String,
    },
    End,
}

/// Where a requested column's value comes from.
#[derive(Debug, Clone, Copy)]
enum Pick {
    /// Field `i` of the line.
    Field(usize),
    /// Column `column` of side table `table`, at the row the line's key names.
    Attr { table: usize, column: usize },
}

/// A side table and the line field holding its key.
struct Side {
    key_field: usize,
    key_name: &'static str,
    attrs: AttrTable,
}

struct Layout {
    sep: String,
    /// Fields may be double-quoted (`""` escapes a quote).
    quoted: bool,
    latin1: bool,
    /// Accepted field counts (inclusive).
    min_fields: usize,
    max_fields: usize,
    /// Names of the line's fields, for messages.
    field_names: Vec<String>,
    /// A first line starting with this is a header and skipped.
    optional_header: Option<&'static str>,
    sides: Vec<Side>,
    pick: Vec<Pick>,
    /// The requested columns, for messages.
    columns: Vec<String>,
}

/// Streams rows from `R`, one line at a time (memory does not grow with the input).
pub struct RowReader<R> {
    input: R,
    name: String,
    layout: Layout,
    line: u64,
    buf: Vec<u8>,
}

/// The columns a source format provides directly on each line.
fn line_fields(names: &[&'static str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

impl<R: BufRead> RowReader<R> {
    /// Opens `input` (`name` is how messages call it: a path or `<stdin>`)
    /// for the requested `columns` of a dataset read from `source`. Reads the
    /// header line where there is one; missing columns are an error here.
    pub fn open(
        input: R,
        name: &str,
        source: &SourcePlan,
        format: InputFormat,
        columns: &[&str],
    ) -> Result<Self> {
        let mut reader = Self {
            input,
            name: name.to_string(),
            layout: Layout {
                sep: ",".into(),
                quoted: true,
                latin1: false,
                min_fields: 0,
                max_fields: 0,
                field_names: Vec::new(),
                optional_header: None,
                sides: Vec::new(),
                pick: Vec::new(),
                columns: columns.iter().map(|c| c.to_string()).collect(),
            },
            line: 0,
            buf: Vec::new(),
        };
        match (format, source) {
            (InputFormat::Csv, _) | (InputFormat::Source, SourcePlan::Synthetic(_)) => {
                reader.open_delimited(",", true, false, &[])?
            }
            (InputFormat::Tsv, _) => reader.open_delimited("\t", true, false, &[])?,
            (InputFormat::Source, SourcePlan::Csv(c)) => {
                if c.sep.is_empty() {
                    return Err(invalid(format!(
                        "csv({}): the separator is empty",
                        c.path.display()
                    )));
                }
                reader.open_delimited(&c.sep, c.header, c.latin1, &c.columns)?
            }
            (InputFormat::Source, SourcePlan::MovieLens100k { dir }) => {
                let (users, items) = movielens::side_tables_100k(dir)?;
                reader.open_joined("\t", false, None, dir.clone(), users, items)?
            }
            (InputFormat::Source, SourcePlan::MovieLens1m { dir }) => {
                let (users, items) = movielens::side_tables_1m(dir)?;
                reader.open_joined("::", false, None, dir.clone(), users, items)?
            }
            (InputFormat::Source, SourcePlan::Bookcrossing { dir }) => {
                // The side tables' malformed lines are skipped as in training
                // with `skip_bad_rows`: a scored row only needs its own user and book.
                let (users, books) =
                    bookcrossing::side_tables(dir, true, &mut SourceStats::default())?;
                reader.open_joined(";", true, Some("\"User-ID\""), dir.clone(), users, books)?
            }
        }
        Ok(reader)
    }

    fn open_delimited(
        &mut self,
        sep: &str,
        header: bool,
        latin1: bool,
        declared: &[String],
    ) -> Result<()> {
        self.layout.sep = sep.to_string();
        self.layout.latin1 = latin1;
        let names: Vec<String> = if header {
            let Some((no, range)) = self.read_line()? else {
                return Err(invalid(format!(
                    "{}: empty input, expected a header line naming the columns ({})",
                    self.name,
                    self.layout.columns.join(", ")
                )));
            };
            let h = decode(&self.buf[range], latin1)
                .map_err(|e| invalid(format!("{}:{no}: {e}", self.name)))?;
            let mut parts = Vec::new();
            split_quoted(&h, sep, &mut parts).map_err(|e| {
                invalid(format!("{}:{no}: header: {e}: {}", self.name, snippet(&h)))
            })?;
            let from_header: Vec<String> = parts.iter().map(|f| f.trim().to_string()).collect();
            if declared.is_empty() {
                from_header
            } else if declared.len() != from_header.len() {
                return Err(invalid(format!(
                    "{}:{no}: the header has {} columns but the dataset declares {} ({})",
                    self.name,
                    from_header.len(),
                    declared.len(),
                    declared.join(", ")
                )));
            } else {
                declared.to_vec()
            }
        } else {
            declared.to_vec()
        };
        let mut pick = Vec::with_capacity(self.layout.columns.len());
        for c in &self.layout.columns {
            match names.iter().position(|n| n == c) {
                Some(i) => pick.push(Pick::Field(i)),
                None => {
                    return Err(invalid(format!(
                        "{}: no column '{c}' (the model reads {}); the input's columns are: {}",
                        self.name,
                        self.layout.columns.join(", "),
                        names.join(", ")
                    )))
                }
            }
        }
        self.layout.min_fields = names.len();
        self.layout.max_fields = names.len();
        self.layout.field_names = names;
        self.layout.pick = pick;
        Ok(())
    }

    fn open_joined(
        &mut self,
        sep: &str,
        quoted: bool,
        optional_header: Option<&'static str>,
        dir: PathBuf,
        users: AttrTable,
        items: AttrTable,
    ) -> Result<()> {
        let (names, item_key) = if quoted {
            (line_fields(&["user_id", "isbn", "rating"]), "isbn")
        } else {
            (
                line_fields(&["user_id", "item_id", "rating", "timestamp"]),
                "item_id",
            )
        };
        self.layout.sep = sep.to_string();
        self.layout.quoted = quoted;
        self.layout.latin1 = true;
        self.layout.min_fields = 2;
        self.layout.max_fields = names.len();
        self.layout.optional_header = optional_header;
        self.layout.sides = vec![
            Side {
                key_field: 0,
                key_name: "user_id",
                attrs: users,
            },
            Side {
                key_field: 1,
                key_name: item_key,
                attrs: items,
            },
        ];
        let mut pick = Vec::with_capacity(self.layout.columns.len());
        for c in &self.layout.columns {
            let p = names
                .iter()
                .position(|n| n == c)
                .map(Pick::Field)
                .or_else(|| {
                    self.layout.sides.iter().enumerate().find_map(|(t, s)| {
                        s.attrs
                            .names
                            .iter()
                            .position(|n| n == c)
                            .map(|column| Pick::Attr { table: t, column })
                    })
                });
            match p {
                Some(p) => pick.push(p),
                None => {
                    let mut all: Vec<&str> = names.iter().map(String::as_str).collect();
                    for s in &self.layout.sides {
                        all.extend(s.attrs.names.iter().copied());
                    }
                    return Err(invalid(format!(
                        "the model reads column '{c}', which the source in {} does not have; its columns are: {}",
                        dir.display(),
                        all.join(", ")
                    )));
                }
            }
        }
        self.layout.field_names = names;
        self.layout.pick = pick;
        Ok(())
    }

    /// How messages call the input (a path or `<stdin>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the next non-empty line into `self.buf`; returns its number
    /// and the range of its content (line ending and a leading BOM dropped).
    fn read_line(&mut self) -> Result<Option<(u64, std::ops::Range<usize>)>> {
        loop {
            self.buf.clear();
            let n = self
                .input
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| invalid(format!("{}: read error: {e}", self.name)))?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            let mut start = 0;
            let mut end = self.buf.len();
            if self.line == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") {
                start = 3;
            }
            if end > start && self.buf[end - 1] == b'\n' {
                end -= 1;
            }
            if end > start && self.buf[end - 1] == b'\r' {
                end -= 1;
            }
            if end > start {
                return Ok(Some((self.line, start..end)));
            }
        }
    }

    /// Reads the next row into `values` (one string per requested column,
    /// reused between calls).
    pub fn next(&mut self, values: &mut Vec<String>) -> Result<Next> {
        loop {
            let Some((no, range)) = self.read_line()? else {
                return Ok(Next::End);
            };
            let text = match decode(&self.buf[range], self.layout.latin1) {
                Ok(t) => t,
                Err(e) => {
                    return Ok(Next::Bad {
                        line: no,
                        message: format!("{}:{no}: {e}", self.name),
                    })
                }
            };
            if let Some(h) = self.layout.optional_header {
                if no == 1 && text.starts_with(h) {
                    continue;
                }
            }
            return Ok(match split_line(&self.layout, &text, values) {
                Ok(()) => Next::Row { line: no },
                Err(why) => Next::Bad {
                    line: no,
                    message: format!("{}:{no}: {why}: {}", self.name, snippet(&text)),
                },
            });
        }
    }
}

/// UTF-8 must be valid; Latin-1 maps every byte to its code point.
fn decode(line: &[u8], latin1: bool) -> std::result::Result<Cow<'_, str>, String> {
    if latin1 && !line.is_ascii() {
        return Ok(Cow::Owned(line.iter().map(|&b| b as char).collect()));
    }
    std::str::from_utf8(line).map(Cow::Borrowed).map_err(|e| {
        format!(
            "invalid UTF-8 at byte {} ({})",
            e.valid_up_to() + 1,
            snippet(&String::from_utf8_lossy(line))
        )
    })
}

/// Splits one line and fills `values` from its fields and side tables.
fn split_line(
    layout: &Layout,
    text: &str,
    values: &mut Vec<String>,
) -> std::result::Result<(), String> {
    let mut parts: Vec<Cow<str>> = Vec::with_capacity(layout.max_fields);
    if layout.quoted {
        split_quoted(text, &layout.sep, &mut parts).map_err(str::to_string)?;
    } else {
        parts.extend(text.split(layout.sep.as_str()).map(Cow::Borrowed));
    }
    let n = parts.len();
    if n < layout.min_fields || n > layout.max_fields {
        let expected = if layout.min_fields == layout.max_fields {
            format!("{}", layout.max_fields)
        } else {
            format!("{} to {}", layout.min_fields, layout.max_fields)
        };
        return Err(format!(
            "expected {expected} fields ({}) separated by {:?}, found {n}",
            layout.field_names.join(", "),
            layout.sep
        ));
    }
    let fields = parts;
    let rows: Vec<Option<usize>> = layout
        .sides
        .iter()
        .map(|s| {
            s.attrs
                .index
                .get(fields[s.key_field].as_ref())
                .map(|&r| r as usize)
        })
        .collect();
    values.resize(layout.pick.len(), String::new());
    for ((v, p), column) in values.iter_mut().zip(&layout.pick).zip(&layout.columns) {
        v.clear();
        match *p {
            Pick::Field(i) => match fields.get(i) {
                Some(f) => v.push_str(f),
                None => {
                    return Err(format!(
                        "the model reads '{column}' (field {} of a line), which this line does not have",
                        i + 1
                    ))
                }
            },
            Pick::Attr { table, column } => {
                let side = &layout.sides[table];
                match rows[table] {
                    Some(r) => v.push_str(side.attrs.columns[column].value(r)),
                    None => {
                        return Err(format!(
                            "{} {} has no row in {}",
                            side.key_name,
                            fields[side.key_field],
                            side.attrs.file.display()
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}
