//! `template` and `plm` declarations.

use std::collections::HashSet;
use std::path::PathBuf;

use super::types::*;
use super::values::*;
use crate::dsl::diagnostic::{did_you_mean, list_names};
use crate::dsl::{Diagnostic, Param, PlmDecl, Span, Str, TemplateBody, TemplateDecl, ValueKind};

pub const POOLINGS: [&str; 4] = ["mean", "cls", "first_last", "top2"];
const FAMILIES: [&str; 2] = ["bert", "roberta"];
/// BERT-style position tables hold 512 positions.
pub const MAX_POSITIONS: usize = 512;

pub fn pooling(name: &str) -> Option<Pooling> {
    Some(match name {
        "mean" => Pooling::Mean,
        "cls" => Pooling::Cls,
        "first_last" => Pooling::FirstLast,
        "top2" => Pooling::Top2,
        _ => return None,
    })
}

/// A placeholder `{name}` found in a template string, with its span.
struct Placeholder {
    name: String,
    span: Span,
}

/// Splits a template into placeholders; `{{` and `}}` are literal braces.
fn placeholders(s: &Str, d: &mut Diags) -> Option<Vec<Placeholder>> {
    // Precise spans only when the source spelling equals the value (no escapes).
    let exact = s.span.end.saturating_sub(s.span.start) == s.value.len() + 2;
    let at = |i: usize, len: usize| {
        if exact {
            Span::new(s.span.start + 1 + i, s.span.start + 1 + i + len)
        } else {
            s.span
        }
    };
    let bytes = s.value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => i += 2,
            b'}' if bytes.get(i + 1) == Some(&b'}') => i += 2,
            b'{' => {
                let Some(close) = s.value[i + 1..].find('}') else {
                    d.push(
                        Diagnostic::new(at(i, 1), "unclosed `{` in template")
                            .with_hint("write `{{` for a literal brace"),
                    );
                    return None;
                };
                let name = &s.value[i + 1..i + 1 + close];
                let valid = !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if !valid {
                    d.push(
                        Diagnostic::new(at(i, close + 2), format!("`{{{name}}}` is not a placeholder"))
                            .with_hint("placeholders are field names such as `{age}`; write `{{` for a literal brace"),
                    );
                    return None;
                }
                out.push(Placeholder {
                    name: name.to_string(),
                    span: at(i, close + 2),
                });
                i += close + 2;
            }
            b'}' => {
                d.push(
                    Diagnostic::new(at(i, 1), "unmatched `}` in template")
                        .with_hint("write `}}` for a literal brace"),
                );
                return None;
            }
            _ => i += 1,
        }
    }
    Some(out)
}

/// Checks a template's own syntax (independent of any dataset).
pub fn check_template(t: &TemplateDecl, d: &mut Diags) {
    match &t.body {
        TemplateBody::Each { pattern, .. } => {
            if let Some(ps) = placeholders(pattern, d) {
                for p in ps {
                    if p.name != "name" && p.name != "value" {
                        d.push(
                            Diagnostic::new(
                                p.span,
                                format!("placeholder `{{{}}}` in an `each` template", p.name),
                            )
                            .with_hint(
                                "an `each` pattern uses `{name}` (display name) and `{value}`",
                            ),
                        );
                    }
                }
            }
        }
        TemplateBody::Free(text) => {
            placeholders(text, d);
        }
    }
}

/// The template as used with `ds`: every placeholder must name a text field.
pub fn resolve_template(t: &TemplateDecl, ds: &DatasetPlan, d: &mut Diags) -> Option<TemplatePlan> {
    let before = d.len();
    check_template(t, d);
    let text_fields: Vec<String> = ds
        .fields
        .iter()
        .filter(|f| f.text)
        .map(|f| f.name.clone())
        .collect();
    let plan = match &t.body {
        TemplateBody::Each { pattern, join } => {
            if text_fields.is_empty() {
                d.push(
                    Diagnostic::new(
                        t.name.span,
                        format!(
                            "template `{}` renders no field: dataset `{}` has no text fields",
                            t.name.name, ds.name
                        ),
                    )
                    .with_hint("remove `text false` from some field"),
                );
            }
            TemplatePlan {
                name: t.name.name.clone(),
                form: TemplateForm::Each {
                    pattern: pattern.value.clone(),
                    join: join
                        .as_ref()
                        .map(|j| j.value.clone())
                        .unwrap_or_else(|| " ".to_string()),
                },
                fields: text_fields,
            }
        }
        TemplateBody::Free(text) => {
            let mut fields: Vec<String> = Vec::new();
            for p in placeholders(text, &mut Diags::default()).unwrap_or_default() {
                match ds.fields.iter().find(|f| f.name == p.name) {
                    Some(f) if !f.text => d.push(
                        Diagnostic::new(p.span, format!("placeholder `{{{}}}` names field `{}`, which is excluded from text", p.name, f.name))
                            .with_hint("remove `text false` from the field, or the placeholder"),
                    ),
                    Some(_) => {
                        if !fields.contains(&p.name) {
                            fields.push(p.name.clone());
                        }
                    }
                    None => {
                        let names: Vec<&str> = ds.fields.iter().map(|f| f.name.as_str()).collect();
                        let hint = match did_you_mean(&p.name, names.iter().copied()) {
                            Some(h) => format!("{h} fields are {}", list_names(&names)),
                            None => format!("fields are {}", list_names(&names)),
                        };
                        d.push(
                            Diagnostic::new(p.span, format!("placeholder `{{{}}}` names no field of dataset `{}`", p.name, ds.name))
                                .with_hint(hint),
                        );
                    }
                }
            }
            TemplatePlan {
                name: t.name.name.clone(),
                form: TemplateForm::Free {
                    text: text.value.clone(),
                },
                fields,
            }
        }
    };
    (d.len() == before).then_some(plan)
}

/// The template used when an experiment with a PLM names none.
pub fn default_template(ds: &DatasetPlan) -> TemplatePlan {
    TemplatePlan {
        name: "default".to_string(),
        form: TemplateForm::Each {
            pattern: "{name} is {value}.".to_string(),
            join: " ".to_string(),
        },
        fields: ds
            .fields
            .iter()
            .filter(|f| f.text)
            .map(|f| f.name.clone())
            .collect(),
    }
}

/// A PLM declaration with experiment-level overrides (later keys win).
pub fn resolve_plm(decl: &PlmDecl, overrides: &[Param], d: &mut Diags) -> Option<PlmPlan> {
    let before = d.len();
    let owner = format!("plm `{}`", decl.name.name);
    let keys = ["max_len", "pool", "layers"];
    Block::new(&decl.params, owner.clone()).check_keys(&keys, d, |_| None);
    Block::new(overrides, owner.clone()).check_keys(&keys, d, |_| None);
    // An experiment's key replaces the declaration's; duplicates were
    // reported above, and the last of each key counts.
    let overridden: HashSet<&str> = overrides.iter().map(|o| o.key.name.as_str()).collect();
    let mut kept = HashSet::new();
    let dedup: Vec<Param> = decl
        .params
        .iter()
        .filter(|p| !overridden.contains(p.key.name.as_str()))
        .chain(overrides)
        .rev()
        .filter(|p| kept.insert(p.key.name.as_str()))
        .cloned()
        .collect();
    let block = Block::new(&dedup, owner);
    let family = match decl.family.name.as_str() {
        "bert" => Some(PlmFamily::Bert),
        "roberta" => Some(PlmFamily::Roberta),
        other => {
            let hint = did_you_mean(other, FAMILIES)
                .unwrap_or_else(|| format!("families are {}", list_names(&FAMILIES)));
            d.push(
                Diagnostic::new(decl.family.span, format!("unknown PLM family `{other}`"))
                    .with_hint(hint),
            );
            None
        }
    };
    let location = match &decl.location.kind {
        ValueKind::Hub(id) => {
            if id.value.trim().is_empty() {
                d.err(id.span, "empty hub id");
            }
            Some(PlmLocation::Hub(id.value.clone()))
        }
        _ => read_path(&decl.location, "location", d).map(|p| PlmLocation::Local(PathBuf::from(p))),
    };
    let max_len = block.usize_or("max_len", 128, 8, d);
    if max_len > MAX_POSITIONS {
        if let Some(p) = block.get("max_len") {
            d.err(
                p.value.span,
                format!("`max_len` must be at most {MAX_POSITIONS}, found `{max_len}`"),
            );
        }
    }
    let pool = block
        .choice("pool", &POOLINGS, d)
        .and_then(pooling)
        .unwrap_or(Pooling::Mean);
    // Checked against the checkpoint's depth when it is loaded.
    let layers = block.opt_usize("layers", 1, d);
    if d.len() > before {
        return None;
    }
    Some(PlmPlan {
        name: decl.name.name.clone(),
        family: family?,
        location: location?,
        max_len,
        pool,
        layers,
    })
}
