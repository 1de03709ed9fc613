//! The in-memory form of a source before encoding: columnar and
//! dictionary-encoded. Every column is a list of distinct strings plus one
//! code per row, so joins (user and item attributes onto ratings) copy codes,
//! never strings, and all later per-value work (parsing numbers, value maps,
//! vocabularies, rendered text) happens once per distinct value.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::invalid;

/// One source table.
#[derive(Debug, Clone, Default)]
pub struct RawTable {
    /// Human description of the source (`movielens_100k(/data/ml-100k)`), for messages.
    pub source: String,
    pub names: Vec<String>,
    pub columns: Vec<StrColumn>,
    pub rows: usize,
    /// Where each row came from; `None` for generated data.
    pub origin: Option<RowOrigin>,
}

#[derive(Debug, Clone)]
pub struct RowOrigin {
    pub file: PathBuf,
    /// 1-based line number of every row in `file`.
    pub lines: Vec<u32>,
}

/// Distinct values and one code per row.
#[derive(Debug, Clone, Default)]
pub struct StrColumn {
    pub dict: Vec<String>,
    pub codes: Vec<u32>,
}

impl StrColumn {
    pub fn value(&self, row: usize) -> &str {
        &self.dict[self.codes[row] as usize]
    }
    /// The first row holding dictionary entry `code` (for error messages).
    pub fn first_row_with(&self, code: u32) -> Option<usize> {
        self.codes.iter().position(|&c| c == code)
    }
}

impl RawTable {
    pub fn column(&self, name: &str) -> Option<&StrColumn> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.columns[i])
    }

    /// The column, or an invalid-input error naming who asked for it and what exists.
    pub fn require(&self, name: &str, wanted_by: &str) -> Result<&StrColumn> {
        self.column(name).ok_or_else(|| {
            invalid(format!(
                "{wanted_by} reads column '{name}', which {} does not have; its columns are: {}",
                self.source,
                self.names.join(", ")
            ))
        })
    }

    /// `file:line` of a row (or `source row N` for generated data).
    pub fn locate(&self, row: usize) -> String {
        match &self.origin {
            Some(o) => format!("{}:{}", o.file.display(), o.lines[row]),
            None => format!("{} row {}", self.source, row + 1),
        }
    }

    /// Writes `rows` with every column as comma-separated values, header
    /// first; fields holding a comma, quote or line break are double-quoted.
    /// Read back as `csv(...)` or by `predict --format csv`, the values are
    /// the same strings.
    pub fn write_csv(&self, rows: &[u32], out: &mut impl std::io::Write) -> std::io::Result<()> {
        fn field(v: &str) -> Cow<'_, str> {
            if v.contains([',', '"', '\n', '\r']) {
                Cow::Owned(format!("\"{}\"", v.replace('"', "\"\"")))
            } else {
                Cow::Borrowed(v)
            }
        }
        let header: Vec<Cow<str>> = self.names.iter().map(|n| field(n)).collect();
        writeln!(out, "{}", header.join(","))?;
        let mut line = String::new();
        for &r in rows {
            line.clear();
            for (i, c) in self.columns.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                line.push_str(&field(c.value(r as usize)));
            }
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
        Ok(())
    }

    pub fn push_column(&mut self, name: &str, col: StrColumn) {
        debug_assert!(self.rows == 0 && self.columns.is_empty() || col.codes.len() == self.rows);
        self.rows = col.codes.len();
        self.names.push(name.to_string());
        self.columns.push(col);
    }
}

/// Builds a dictionary-encoded column; looking up an existing value does not allocate.
#[derive(Debug, Default)]
pub struct ColumnBuilder {
    map: HashMap<String, u32>,
    dict: Vec<String>,
    codes: Vec<u32>,
}

impl ColumnBuilder {
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            codes: Vec::with_capacity(rows),
            ..Self::default()
        }
    }
    pub fn intern(&mut self, value: &str) -> u32 {
        if let Some(&c) = self.map.get(value) {
            return c;
        }
        let c = self.dict.len() as u32;
        self.dict.push(value.to_string());
        self.map.insert(value.to_string(), c);
        c
    }
    pub fn push(&mut self, value: &str) {
        let c = self.intern(value);
        self.codes.push(c);
    }
    pub fn len(&self) -> usize {
        self.codes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
    pub fn finish(self) -> StrColumn {
        StrColumn {
            dict: self.dict,
            codes: self.codes,
        }
    }
}

/// Reads a whole file; a missing or unreadable file is the user's to fix.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))
}

/// Non-empty lines with their 1-based numbers, `\r\n` tolerated, a UTF-8 BOM dropped.
pub fn lines(bytes: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let bytes = bytes
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(bytes);
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| ((i + 1) as u32, l.strip_suffix(b"\r").unwrap_or(l)))
        .filter(|(_, l)| !l.is_empty())
}

/// Decodes one line: Latin-1 maps every byte to the code point of that value
/// (it cannot fail); UTF-8 must be valid.
pub fn decode<'a>(line: &'a [u8], latin1: bool, path: &Path, lineno: u32) -> Result<Cow<'a, str>> {
    if line.is_ascii() {
        // ASCII is valid in both encodings and needs no copy.
        return Ok(Cow::Borrowed(std::str::from_utf8(line).map_err(|_| {
            invalid(format!("{}:{lineno}: not valid text", path.display()))
        })?));
    }
    if latin1 {
        return Ok(Cow::Owned(line.iter().map(|&b| b as char).collect()));
    }
    match std::str::from_utf8(line) {
        Ok(s) => Ok(Cow::Borrowed(s)),
        Err(e) => Err(invalid(format!(
            "{}:{lineno}: invalid UTF-8 at byte {} ({}); if the file is Latin-1, declare it so",
            path.display(),
            e.valid_up_to() + 1,
            snippet(&String::from_utf8_lossy(line))
        ))),
    }
}

/// A line shortened for error messages.
pub fn snippet(line: &str) -> String {
    const MAX: usize = 120;
    if line.chars().count() <= MAX {
        format!("\"{line}\"")
    } else {
        let s: String = line.chars().take(MAX).collect();
        format!("\"{s}…\"")
    }
}

/// Splits a delimited line where fields may be wrapped in double quotes
/// (`""` inside quotes is a literal quote). Fills `out` with the fields; an
/// unterminated quote, text after a closing quote, or a quote inside an
/// unquoted field is an error (the message says which).
pub fn split_quoted<'a>(
    line: &'a str,
    sep: &str,
    out: &mut Vec<Cow<'a, str>>,
) -> std::result::Result<(), &'static str> {
    out.clear();
    let mut rest = line;
    loop {
        if let Some(body) = rest.strip_prefix('"') {
            // Quoted field: find the closing quote that is not doubled.
            let mut value = String::new();
            let mut tail = body;
            loop {
                match tail.find('"') {
                    None => return Err("unterminated quoted field"),
                    Some(q) => {
                        value.push_str(&tail[..q]);
                        let after = &tail[q + 1..];
                        if let Some(a) = after.strip_prefix('"') {
                            value.push('"');
                            tail = a;
                        } else {
                            tail = after;
                            break;
                        }
                    }
                }
            }
            out.push(Cow::Owned(value));
            if tail.is_empty() {
                return Ok(());
            }
            match tail.strip_prefix(sep) {
                Some(t) => rest = t,
                None => return Err("text after a closing quote"),
            }
        } else {
            let (field, next) = match rest.find(sep) {
                Some(i) => (&rest[..i], Some(&rest[i + sep.len()..])),
                None => (rest, None),
            };
            if field.contains('"') {
                return Err("a quote inside an unquoted field");
            }
            out.push(Cow::Borrowed(field));
            match next {
                Some(t) => rest = t,
                None => return Ok(()),
            }
        }
    }
}

/// Values the numeric parsers read as "missing" rather than as errors.
pub fn is_missing(v: &str) -> bool {
    let v = v.trim();
    v.is_empty()
        || v.eq_ignore_ascii_case("null")
        || v.eq_ignore_ascii_case("na")
        || v.eq_ignore_ascii_case("n/a")
        || v.eq_ignore_ascii_case("nan")
}

/// Parses every distinct value of a column as a number: `Ok(None)` for
/// missing values, an error naming the first row holding an unparsable one.
pub fn parse_numbers(
    table: &RawTable,
    col: &StrColumn,
    column: &str,
    wanted_by: &str,
) -> Result<Vec<Option<f64>>> {
    col.dict
        .iter()
        .enumerate()
        .map(|(code, v)| match parse_number(v) {
            Some(x) => Ok(x),
            None => {
                    let at = col
                        .first_row_with(code as u32)
                        .map(|r| table.locate(r))
                        .unwrap_or_else(|| table.source.clone());
                Err(invalid(format!(
                    "{at}: column '{column}' (read by {wanted_by}) holds \"{v}\", which is not a number"
                )))
            }
        })
        .collect()
}

/// One value as a number: `Some(None)` when missing ([`is_missing`]),
/// `Some(Some(x))` for a finite number (surrounding spaces allowed), `None`
/// when it is not a number. The one rule for training and prediction.
pub fn parse_number(v: &str) -> Option<Option<f64>> {
    if is_missing(v) {
        return Some(None);
    }
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Some(Some(x)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields() {
        let mut out = Vec::new();
        split_quoted(r#""a";"b ""c"" d";e;"""#, ";", &mut out).unwrap();
        assert_eq!(out, vec!["a", "b \"c\" d", "e", ""]);
        assert_eq!(
            split_quoted(r#""a;b"#, ";", &mut out),
            Err("unterminated quoted field")
        );
        assert_eq!(
            split_quoted(r#""a"x;b"#, ";", &mut out),
            Err("text after a closing quote")
        );
        assert_eq!(
            split_quoted(r#"a;b"c"#, ";", &mut out),
            Err("a quote inside an unquoted field")
        );
        split_quoted("x::y::", "::", &mut out).unwrap();
        assert_eq!(out, vec!["x", "y", ""]);
    }

    #[test]
    fn latin1_and_utf8() {
        let p = Path::new("f");
        assert_eq!(decode(b"Mis\xe9rables", true, p, 1).unwrap(), "Misérables");
        assert!(decode(b"Mis\xe9rables", false, p, 7)
            .unwrap_err()
            .to_string()
            .starts_with("f:7: invalid UTF-8"));
        assert_eq!(
            decode("Misérables".as_bytes(), false, p, 1).unwrap(),
            "Misérables"
        );
    }

    #[test]
    fn csv_round_trip() {
        let mut t = RawTable::default();
        let mut a = ColumnBuilder::default();
        let mut b = ColumnBuilder::default();
        for (x, y) in [("1", "plain"), ("2", "a, b"), ("3", "say \"hi\"")] {
            a.push(x);
            b.push(y);
        }
        t.push_column("id", a.finish());
        t.push_column("text", b.finish());
        let mut out = Vec::new();
        t.write_csv(&[2, 0, 1], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "id,text\n3,\"say \"\"hi\"\"\"\n1,plain\n2,\"a, b\"\n");
        let mut fields = Vec::new();
        split_quoted(text.lines().nth(1).unwrap(), ",", &mut fields).unwrap();
        assert_eq!(fields, vec!["3", "say \"hi\""]);
    }

    #[test]
    fn line_numbers_skip_blank_lines() {
        let v: Vec<_> = lines(b"\xEF\xBB\xBFa\r\n\nb\n").collect();
        assert_eq!(v, vec![(1, b"a".as_slice()), (3, b"b".as_slice())]);
    }
}
