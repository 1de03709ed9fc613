//! Typed reading of AST values and `{ key value }` blocks, reporting every
//! problem as a diagnostic and falling back to a default so checking goes on.

use crate::dsl::diagnostic::{did_you_mean, list_names};
use std::collections::HashSet;

use crate::dsl::{Diagnostic, Ident, Param, Span, Value, ValueKind};

/// Collected diagnostics, de-duplicated (a base experiment's mistakes are
/// reached again through every experiment that extends it).
#[derive(Debug, Default)]
pub struct Diags {
    list: Vec<Diagnostic>,
    /// Every push, repeats included: what raising them cost.
    raised: usize,
    /// (span, message) of every diagnostic in `list`: a repeat is dropped in
    /// constant time (a fuzzed file produced tens of thousands).
    seen: HashSet<(Span, String)>,
}

impl Diags {
    pub fn push(&mut self, d: Diagnostic) {
        self.raised += 1;
        if self.seen.insert((d.span, d.message.clone())) {
            self.list.push(d);
        }
    }
    pub fn err(&mut self, span: Span, msg: impl Into<String>) {
        self.push(Diagnostic::new(span, msg));
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    pub fn len(&self) -> usize {
        self.list.len()
    }
    pub fn raised(&self) -> usize {
        self.raised
    }
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.list
    }
}

/// A parameter block with the keys it accepts.
pub struct Block<'a> {
    pub params: &'a [Param],
    /// "stage `joint`", "backbone `dcnv2`": who the parameters belong to.
    pub owner: String,
}

impl<'a> Block<'a> {
    pub fn new(params: &'a [Param], owner: impl Into<String>) -> Self {
        Block {
            params,
            owner: owner.into(),
        }
    }

    /// Reports unknown and repeated keys. `misplaced` may explain a key that
    /// is valid elsewhere (message, hint).
    pub fn check_keys(
        &self,
        allowed: &[&str],
        d: &mut Diags,
        misplaced: impl Fn(&str) -> Option<(String, String)>,
    ) {
        let mut seen = HashSet::new();
        for p in self.params {
            let k = p.key.name.as_str();
            if !seen.insert(k) {
                d.push(
                    Diagnostic::new(
                        p.key.span,
                        format!("`{k}` is given twice for {}", self.owner),
                    )
                    .with_hint("remove one of them"),
                );
                continue;
            }
            if allowed.contains(&k) {
                continue;
            }
            if let Some((msg, hint)) = misplaced(k) {
                d.push(Diagnostic::new(p.key.span, msg).with_hint(hint));
                continue;
            }
            let hint = did_you_mean(k, allowed.iter().copied()).unwrap_or_else(|| {
                if allowed.is_empty() {
                    format!("{} takes no parameters", self.owner)
                } else {
                    format!("{} accepts {}", self.owner, list_names(allowed))
                }
            });
            d.push(
                Diagnostic::new(
                    p.key.span,
                    format!("unknown parameter `{k}` for {}", self.owner),
                )
                .with_hint(hint),
            );
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a Param> {
        self.params.iter().find(|p| p.key.name == key)
    }

    pub fn usize_or(&self, key: &str, default: usize, min: usize, d: &mut Diags) -> usize {
        self.get(key)
            .and_then(|p| read_usize(&p.value, key, min, d))
            .unwrap_or(default)
    }

    pub fn opt_usize(&self, key: &str, min: usize, d: &mut Diags) -> Option<usize> {
        self.get(key)
            .and_then(|p| read_usize(&p.value, key, min, d))
    }

    pub fn f64_or(&self, key: &str, default: f64, range: Range, d: &mut Diags) -> f64 {
        self.opt_f64(key, range, d).unwrap_or(default)
    }

    pub fn opt_f64(&self, key: &str, range: Range, d: &mut Diags) -> Option<f64> {
        self.get(key)
            .and_then(|p| read_f64(&p.value, key, range, d))
    }

    pub fn bool_or(&self, key: &str, default: bool, d: &mut Diags) -> bool {
        self.get(key)
            .and_then(|p| read_bool(&p.value, key, d))
            .unwrap_or(default)
    }

    pub fn usize_list_or(
        &self,
        key: &str,
        default: &[usize],
        min: usize,
        d: &mut Diags,
    ) -> Vec<usize> {
        self.get(key)
            .and_then(|p| read_usize_list(&p.value, key, min, d))
            .unwrap_or_else(|| default.to_vec())
    }

    /// A word from `choices` (e.g. `schedule cosine`).
    pub fn choice(
        &self,
        key: &str,
        choices: &[&'static str],
        d: &mut Diags,
    ) -> Option<&'static str> {
        self.get(key)
            .and_then(|p| read_choice(&p.value, key, choices, d))
    }
}

/// Allowed interval for a real parameter.
#[derive(Debug, Clone, Copy)]
pub enum Range {
    /// x > 0
    Positive,
    /// x ≥ 0
    NonNegative,
    /// 0 ≤ x < 1
    UnitHalfOpen,
    /// 0 < x < 1
    UnitOpen,
    Any,
}

impl Range {
    fn holds(self, x: f64) -> bool {
        match self {
            Range::Positive => x > 0.0,
            Range::NonNegative => x >= 0.0,
            Range::UnitHalfOpen => (0.0..1.0).contains(&x),
            Range::UnitOpen => x > 0.0 && x < 1.0,
            Range::Any => true,
        }
    }
    fn words(self) -> &'static str {
        match self {
            Range::Positive => "greater than 0",
            Range::NonNegative => "at least 0",
            Range::UnitHalfOpen => "at least 0 and below 1",
            Range::UnitOpen => "strictly between 0 and 1",
            Range::Any => "a number",
        }
    }
}

pub fn found(v: &Value) -> String {
    match &v.kind {
        ValueKind::Number { text, .. } => format!("`{text}`"),
        ValueKind::Word(w) => format!("`{w}`"),
        ValueKind::Str(s) => format!("the string {s:?}"),
        _ => v.describe().to_string(),
    }
}

pub fn read_f64(v: &Value, key: &str, range: Range, d: &mut Diags) -> Option<f64> {
    match &v.kind {
        ValueKind::Number { value, .. } => {
            if range.holds(*value) {
                Some(*value)
            } else {
                d.err(
                    v.span,
                    format!("`{key}` must be {}, found {}", range.words(), found(v)),
                );
                None
            }
        }
        _ => {
            d.err(
                v.span,
                format!("`{key}` expects a number, found {}", found(v)),
            );
            None
        }
    }
}

pub fn read_usize(v: &Value, key: &str, min: usize, d: &mut Diags) -> Option<usize> {
    match &v.kind {
        ValueKind::Number { value, .. } => {
            if value.fract() != 0.0 || *value < 0.0 || *value > 9.0e15 {
                d.err(
                    v.span,
                    format!("`{key}` expects a whole number, found {}", found(v)),
                );
                None
            } else if (*value as usize) < min {
                d.err(
                    v.span,
                    format!("`{key}` must be at least {min}, found {}", found(v)),
                );
                None
            } else {
                Some(*value as usize)
            }
        }
        _ => {
            d.err(
                v.span,
                format!("`{key}` expects a whole number, found {}", found(v)),
            );
            None
        }
    }
}

pub fn read_bool(v: &Value, key: &str, d: &mut Diags) -> Option<bool> {
    match &v.kind {
        ValueKind::Word(w) if w == "true" => Some(true),
        ValueKind::Word(w) if w == "false" => Some(false),
        _ => {
            d.err(
                v.span,
                format!("`{key}` expects `true` or `false`, found {}", found(v)),
            );
            None
        }
    }
}

pub fn read_usize_list(v: &Value, key: &str, min: usize, d: &mut Diags) -> Option<Vec<usize>> {
    match &v.kind {
        ValueKind::List(items) => {
            let mut out = Vec::new();
            let mut ok = true;
            for it in items {
                match read_usize(it, key, min, d) {
                    Some(x) => out.push(x),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }
        _ => {
            d.err(
                v.span,
                format!(
                    "`{key}` expects a list such as `[256, 128]`, found {}",
                    found(v)
                ),
            );
            None
        }
    }
}

pub fn read_f64_list(v: &Value, key: &str, d: &mut Diags) -> Option<Vec<f64>> {
    match &v.kind {
        ValueKind::List(items) => {
            let mut out = Vec::new();
            let mut ok = true;
            for it in items {
                match read_f64(it, key, Range::Any, d) {
                    Some(x) => out.push(x),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }
        _ => {
            d.err(
                v.span,
                format!("`{key}` expects a list of numbers, found {}", found(v)),
            );
            None
        }
    }
}

pub fn read_string(v: &Value, key: &str, d: &mut Diags) -> Option<String> {
    match &v.kind {
        ValueKind::Str(s) => Some(s.clone()),
        _ => {
            d.err(
                v.span,
                format!("`{key}` expects a string in quotes, found {}", found(v)),
            );
            None
        }
    }
}

/// A bare word as an identifier (sweeps assign names through values).
pub fn read_word(v: &Value, key: &str, d: &mut Diags) -> Option<Ident> {
    match &v.kind {
        ValueKind::Word(w) => Some(Ident {
            name: w.clone(),
            span: v.span,
        }),
        _ => {
            d.err(
                v.span,
                format!("`{key}` expects a name, found {}", found(v)),
            );
            None
        }
    }
}

pub fn read_choice(
    v: &Value,
    key: &str,
    choices: &[&'static str],
    d: &mut Diags,
) -> Option<&'static str> {
    match &v.kind {
        ValueKind::Word(w) => {
            if let Some(c) = choices.iter().find(|c| **c == w) {
                return Some(c);
            }
            let hint = did_you_mean(w, choices.iter().copied())
                .unwrap_or_else(|| format!("choose one of {}", list_names(choices)));
            d.push(Diagnostic::new(v.span, format!("unknown {key} `{w}`")).with_hint(hint));
            None
        }
        _ => {
            d.push(Diagnostic::new(
                v.span,
                format!(
                    "`{key}` expects one of {}, found {}",
                    list_names(choices),
                    found(v)
                ),
            ));
            None
        }
    }
}

/// A path: a string, or `env("VAR", "default")` read now.
pub fn read_path(v: &Value, key: &str, d: &mut Diags) -> Option<String> {
    match &v.kind {
        ValueKind::Str(s) => {
            if s.is_empty() {
                d.err(v.span, format!("`{key}` is an empty path"));
                return None;
            }
            Some(s.clone())
        }
        ValueKind::Env { var, default } => match std::env::var(&var.value) {
            Ok(val) if !val.is_empty() => Some(val),
            _ => match default {
                Some(def) => Some(def.value.clone()),
                None => {
                    d.push(
                        Diagnostic::new(
                            var.span,
                            format!("environment variable `{}` is not set", var.value),
                        )
                        .with_hint(format!(
                            "set it, or give a default: env(\"{}\", \"path\")",
                            var.value
                        )),
                    );
                    None
                }
            },
        },
        _ => {
            d.err(
                v.span,
                format!(
                    "`{key}` expects a path (a string or `env(\"VAR\", \"default\")`), found {}",
                    found(v)
                ),
            );
            None
        }
    }
}
