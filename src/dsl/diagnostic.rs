//! Diagnostics: a message tied to a span, rendered `file:line:col: error: ...`
//! with the source line, a caret under the span and an optional hint.

use super::ast::Span;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub span: Span,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            span,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = clamp_to_char_boundary(source, offset);
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = source[line_start..offset].chars().count() + 1;
    (line, col)
}

fn clamp_to_char_boundary(source: &str, offset: usize) -> usize {
    let mut o = offset.min(source.len());
    while !source.is_char_boundary(o) {
        o -= 1;
    }
    o
}

/// Renders one diagnostic against its source.
pub fn render_one(d: &Diagnostic, source: &str, file: &str) -> String {
    let start = clamp_to_char_boundary(source, d.span.start);
    let (line, col) = line_col(source, start);
    let line_start = source[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = source[start..]
        .find('\n')
        .map(|i| start + i)
        .unwrap_or(source.len());
    let text = source[line_start..line_end].trim_end_matches('\r');
    let end = clamp_to_char_boundary(source, d.span.end.max(start)).min(line_start + text.len());
    // Keep tabs in the caret line's indentation so the caret lines up.
    let pad: String = source[line_start..start.min(line_start + text.len())]
        .chars()
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let width = source[start.min(end)..end].chars().count().max(1);
    let gutter = line.to_string().len();
    let mut out = format!("{file}:{line}:{col}: error: {}\n", d.message);
    out.push_str(&format!("{:>gutter$} |\n", ""));
    out.push_str(&format!("{line} | {text}\n"));
    out.push_str(&format!("{:>gutter$} | {pad}{}\n", "", "^".repeat(width)));
    if let Some(h) = &d.hint {
        out.push_str(&format!("{:>gutter$} = hint: {h}\n", ""));
    }
    out
}

/// Renders every diagnostic, in source order, followed by a count.
pub fn render(diags: &[Diagnostic], source: &str, file: &str) -> String {
    let mut sorted: Vec<&Diagnostic> = diags.iter().collect();
    sorted.sort_by_key(|d| (d.span.start, d.span.end));
    let mut out = String::new();
    for d in &sorted {
        out.push_str(&render_one(d, source, file));
        out.push('\n');
    }
    let n = sorted.len();
    out.push_str(&format!(
        "{file}: {n} error{} found",
        if n == 1 { "" } else { "s" }
    ));
    out
}

/// Names longer than this get no did-you-mean hint.
pub const MAX_SUGGEST_LEN: usize = 64;

/// `did you mean `x`?` when a candidate is close enough to `name`.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The candidate closest to `name`, if any is plausibly a misspelling.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // No misspelling is this long, and the edit distance is quadratic: a
    // 100 000-character name made every check take 50 ms (found by fuzzing).
    if name.len() > MAX_SUGGEST_LEN {
        return None;
    }
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(name, c);
        let dist = strsim::damerau_levenshtein(name, c);
        let plausible = score >= 0.8 || (dist <= 2 && dist < c.len().max(name.len()));
        if plausible && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// "`a`, `b` and `c`".
pub fn list_names<S: AsRef<str>>(names: &[S]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{}`", n.as_ref())).collect();
    match quoted.len() {
        0 => "none".to_string(),
        1 => quoted[0].clone(),
        n => format!("{} and {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}

/// "`a`, `b` or `c`".
pub fn list_alternatives<S: AsRef<str>>(names: &[S]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| n.as_ref().to_string()).collect();
    match quoted.len() {
        0 => "nothing".to_string(),
        1 => quoted[0].clone(),
        n => format!("{} or {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}
