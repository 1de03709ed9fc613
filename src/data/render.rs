//! Field-to-text templates.
//!
//! * `each "{name} is {value}." join " "`: the pattern once per template
//!   field, `{name}` = the field's display name, `{value}` = its mapped value,
//!   joined by `join` (the reference form: `User ID is 196. Gender is male.`).
//! * `free "A {age} year old {occupation} …"`: `{field}` placeholders.
//!
//! In both, `{{` and `}}` are literal braces. A value is the source text
//! after the field's value map; a multi-valued cell renders its mapped
//! elements joined by ", ".
//!
//! Rendering a dataset precomputes the text of every distinct value once,
//! so each row is a few string copies into one shared buffer.

use std::collections::HashMap;

use anyhow::Result;

use super::raw::RawTable;
use crate::error::invalid;
use crate::plan::{FieldKind, FieldPlan, TemplateForm, TemplatePlan};

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(String),
    /// Display name of template field i.
    Name(usize),
    /// Value of template field i.
    Value(usize),
}

/// A template resolved against the dataset's fields.
#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
    /// The dataset fields the template reads, in template order.
    pub fields: Vec<FieldPlan>,
}

/// Splits `text` into literals and `{word}` placeholders; `{{`/`}}` escape braces.
fn parse_braces(
    text: &str,
    mut placeholder: impl FnMut(&str) -> Result<Piece>,
) -> Result<Vec<Piece>> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        lit.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            lit.push_str(&tail[..1]);
            rest = &tail[2..];
        } else if tail.starts_with('}') {
            return Err(invalid(format!(
                "template \"{text}\": unmatched '}}' (write '}}}}' for a brace)"
            )));
        } else {
            let close = tail.find('}').ok_or_else(|| {
                invalid(format!(
                    "template \"{text}\": unclosed '{{' (write '{{{{' for a brace)"
                ))
            })?;
            if !lit.is_empty() {
                out.push(Piece::Lit(std::mem::take(&mut lit)));
            }
            out.push(placeholder(tail[1..close].trim())?);
            rest = &tail[close + 1..];
        }
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    Ok(out)
}

impl Template {
    pub fn new(template: &TemplatePlan, fields: &[FieldPlan]) -> Result<Self> {
        let find = |name: &str| {
            fields.iter().find(|f| f.name == name).cloned().ok_or_else(|| {
                invalid(format!(
                    "template '{}' uses field '{name}', which the dataset does not declare (fields: {})",
                    template.name,
                    fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
                ))
            })
        };
        match &template.form {
            TemplateForm::Each { pattern, join } => {
                let used: Vec<FieldPlan> = template
                    .fields
                    .iter()
                    .map(|n| find(n))
                    .collect::<Result<_>>()?;
                let proto = parse_braces(pattern, |p| {
                    match p {
                    "name" => Ok(Piece::Name(0)),
                    "value" => Ok(Piece::Value(0)),
                    other => Err(invalid(format!(
                        "template '{}': the `each` pattern may use {{name}} and {{value}}, not {{{other}}}",
                        template.name
                    ))),
                }
                })?;
                let mut pieces = Vec::new();
                for i in 0..used.len() {
                    if i > 0 && !join.is_empty() {
                        pieces.push(Piece::Lit(join.clone()));
                    }
                    pieces.extend(proto.iter().map(|p| match p {
                        Piece::Name(_) => Piece::Name(i),
                        Piece::Value(_) => Piece::Value(i),
                        lit => lit.clone(),
                    }));
                }
                Ok(Self {
                    pieces,
                    fields: used,
                })
            }
            TemplateForm::Free { text } => {
                let mut used: Vec<FieldPlan> = Vec::new();
                let pieces = parse_braces(text, |name| {
                    let i = match used.iter().position(|f| f.name == name) {
                        Some(i) => i,
                        None => {
                            used.push(find(name)?);
                            used.len() - 1
                        }
                    };
                    Ok(Piece::Value(i))
                })?;
                Ok(Self {
                    pieces,
                    fields: used,
                })
            }
        }
    }

    /// Renders one row from each template field's already-mapped value text.
    pub fn render_into(&self, values: &[&str], out: &mut String) {
        self.render_spans(values, out, |_, _| {});
    }

    /// Like [`Template::render_into`], also reporting where each value landed:
    /// `span(field, start..end)` in bytes of `out`, one call per value placeholder.
    fn render_spans(
        &self,
        values: &[&str],
        out: &mut String,
        mut span: impl FnMut(usize, std::ops::Range<usize>),
    ) {
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Name(i) => out.push_str(&self.fields[*i].display),
                Piece::Value(i) => {
                    let start = out.len();
                    out.push_str(values[*i]);
                    span(*i, start..out.len());
                }
            }
        }
    }

    /// Value placeholders per rendered row (a field may appear more than once).
    fn value_slots(&self) -> usize {
        self.pieces
            .iter()
            .filter(|p| matches!(p, Piece::Value(_)))
            .count()
    }
}

/// The text of one raw value of a field: value map applied, multi elements joined by ", ".
pub fn value_text(field: &FieldPlan, raw: &str) -> String {
    let lookup = |v: &str| -> Option<String> {
        field
            .map
            .iter()
            .find(|(k, _)| k == v)
            .map(|(_, m)| m.clone())
    };
    match &field.kind {
        FieldKind::Multi { sep } if !sep.is_empty() => raw
            .split(sep.as_str())
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| lookup(e).unwrap_or_else(|| e.to_string()))
            .collect::<Vec<_>>()
            .join(", "),
        _ => lookup(raw).unwrap_or_else(|| raw.to_string()),
    }
}

/// Renders one row given raw source values by column name (for `data inspect`
/// and for callers outside the pipeline). Missing columns render empty.
pub fn render(
    template: &TemplatePlan,
    fields: &[FieldPlan],
    row: &HashMap<&str, &str>,
) -> Result<String> {
    let t = Template::new(template, fields)?;
    let texts: Vec<String> = t
        .fields
        .iter()
        .map(|f| value_text(f, row.get(f.column.as_str()).copied().unwrap_or("")))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut out = String::new();
    t.render_into(&refs, &mut out);
    Ok(out)
}

/// All texts of the given rows in one buffer: text k is `buf[offsets[k]..offsets[k+1]]`.
pub struct Texts {
    pub buf: String,
    pub offsets: Vec<usize>,
    /// Where the template's values are: row k's are
    /// `spans[k * slots..(k + 1) * slots]`, as (template field, byte range
    /// within the row's text). PA-MLM's field masking and per-field
    /// accuracies need to know which tokens carry which field.
    pub spans: Vec<ValueSpan>,
    pub slots: usize,
}

/// One rendered value: template field `field` at bytes `start..end` of its row's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueSpan {
    pub field: u16,
    pub start: u32,
    pub end: u32,
}

impl Texts {
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, k: usize) -> &str {
        &self.buf[self.offsets[k]..self.offsets[k + 1]]
    }
    pub fn spans_of(&self, k: usize) -> &[ValueSpan] {
        &self.spans[k * self.slots..(k + 1) * self.slots]
    }
}

/// Renders every row of `rows` (table indices).
pub fn render_rows(t: &Template, table: &RawTable, rows: &[u32], dataset: &str) -> Result<Texts> {
    // Text of every distinct value of every template field, computed once.
    let mut per_field: Vec<(&[u32], Vec<String>)> = Vec::with_capacity(t.fields.len());
    for f in &t.fields {
        let who = format!(
            "field '{}' of dataset '{dataset}' (in the template)",
            f.name
        );
        let col = table.require(&f.column, &who)?;
        let texts = col.dict.iter().map(|v| value_text(f, v)).collect();
        per_field.push((&col.codes, texts));
    }
    let slots = t.value_slots();
    let mut buf = String::with_capacity(rows.len() * 128);
    let mut offsets = Vec::with_capacity(rows.len() + 1);
    let mut spans = Vec::with_capacity(rows.len() * slots);
    offsets.push(0);
    let mut vals: Vec<&str> = vec![""; per_field.len()];
    for &r in rows {
        for (v, (codes, texts)) in vals.iter_mut().zip(&per_field) {
            *v = &texts[codes[r as usize] as usize];
        }
        let row_start = buf.len();
        t.render_spans(&vals, &mut buf, |field, range| {
            spans.push(ValueSpan {
                field: field as u16,
                start: (range.start - row_start) as u32,
                end: (range.end - row_start) as u32,
            })
        });
        offsets.push(buf.len());
    }
    Ok(Texts {
        buf,
        offsets,
        spans,
        slots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_exactly_the_values() {
        let field = |name: &str, display: &str| FieldPlan {
            name: name.into(),
            column: name.into(),
            display: display.into(),
            kind: FieldKind::Category,
            map: vec![],
            ctr: true,
            text: true,
        };
        let fields = vec![field("genre", "Genre"), field("title", "Title")];
        let each = TemplatePlan {
            name: "t".into(),
            form: TemplateForm::Each {
                pattern: "{name} is {value}.".into(),
                join: " ".into(),
            },
            fields: vec!["genre".into(), "title".into()],
        };
        let t = Template::new(&each, &fields).unwrap();
        let mut out = String::new();
        let mut got = Vec::new();
        t.render_spans(&["Comedy", "Kolya (1996)"], &mut out, |f, r| {
            got.push((f, r))
        });
        assert_eq!(out, "Genre is Comedy. Title is Kolya (1996).");
        let texts: Vec<&str> = got.iter().map(|(_, r)| &out[r.clone()]).collect();
        assert_eq!(texts, ["Comedy", "Kolya (1996)"]);
        assert_eq!(got.iter().map(|(f, _)| *f).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(t.value_slots(), 2);
    }

    #[test]
    fn braces() {
        let p = parse_braces("a {{x}} {v} b", |n| {
            assert_eq!(n, "v");
            Ok(Piece::Value(0))
        })
        .unwrap();
        assert_eq!(
            p,
            vec![
                Piece::Lit("a {x} ".into()),
                Piece::Value(0),
                Piece::Lit(" b".into())
            ]
        );
        assert!(parse_braces("a {v", |_| Ok(Piece::Value(0))).is_err());
        assert!(parse_braces("a }", |_| Ok(Piece::Value(0))).is_err());
    }
}
