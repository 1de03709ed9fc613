//! Diagnostics: a message tied to a span, rendered `file:line:col: error: ...`
//! with the source line, a caret under the span and an optional hint.

use super::ast::Span;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub span: Span,
    pub message: String,
    pub hint: Option<String>,
    /// Shown even past [`MAX_SHOWN`]: it says where checking stopped.
    pub pinned: bool,
}

impl Diagnostic {
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            span,
            message: message.into(),
            hint: None,
            pinned: false,
        }
    }

    pub fn pinned(mut self) -> Self {
        self.pinned = true;
        self
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
    LineIndex::new(source).line_col(offset)
}

fn clamp_to_char_boundary(source: &str, offset: usize) -> usize {
    let mut o = offset.min(source.len());
    while !source.is_char_boundary(o) {
        o -= 1;
    }
    o
}

/// Where each line of a source starts, built once so that rendering many
/// diagnostics costs one pass over the source rather than one per
/// diagnostic (2 000 errors in a 660 KB file took 130 ms the naive way).
pub struct LineIndex<'a> {
    source: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(source: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            source
                .bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { source, starts }
    }

    /// 0-based line number holding byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset) - 1
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = clamp_to_char_boundary(self.source, offset);
        let line = self.line_of(offset);
        let col = self.source[self.starts[line]..offset].chars().count() + 1;
        (line + 1, col)
    }

    /// The text of the line holding `offset` (without its line break) and
    /// the byte offset where it starts.
    fn line_at(&self, offset: usize) -> (&'a str, usize) {
        let line = self.line_of(offset);
        let start = self.starts[line];
        let end = self
            .starts
            .get(line + 1)
            .map(|&next| next - 1)
            .unwrap_or(self.source.len());
        (&self.source[start..end], start)
    }
}

/// Renders one diagnostic against its source.
pub fn render_one(d: &Diagnostic, source: &str, file: &str) -> String {
    render_indexed(d, &LineIndex::new(source), file)
}

/// Lines longer than this many characters are shown as a window around the
/// caret: a minified or binary file must not print a 200 KB line.
const MAX_LINE_SHOWN: usize = 160;
/// Characters kept before the caret in such a window.
const CONTEXT_BEFORE: usize = 60;

/// Moves `n` characters back from byte `at`, not past `floor`.
fn back_chars(source: &str, at: usize, n: usize, floor: usize) -> usize {
    source[floor..at]
        .char_indices()
        .rev()
        .nth(n.saturating_sub(1))
        .map(|(i, _)| floor + i)
        .unwrap_or(floor)
}

/// Moves `n` characters forward from byte `at`, not past `ceil`.
fn fwd_chars(source: &str, at: usize, n: usize, ceil: usize) -> usize {
    source[at..ceil]
        .char_indices()
        .nth(n)
        .map(|(i, _)| at + i)
        .unwrap_or(ceil)
}

fn render_indexed(d: &Diagnostic, index: &LineIndex, file: &str) -> String {
    let source = index.source;
    let start = clamp_to_char_boundary(source, d.span.start);
    let (line, col) = index.line_col(start);
    let (text, line_start) = index.line_at(start);
    let line_end = line_start + text.trim_end_matches('\r').len();
    let caret = start.min(line_end);
    let end = clamp_to_char_boundary(source, d.span.end.max(start)).min(line_end);
    let (from, to) = if source[line_start..line_end].chars().count() > MAX_LINE_SHOWN {
        let from = back_chars(source, caret, CONTEXT_BEFORE, line_start);
        (from, fwd_chars(source, from, MAX_LINE_SHOWN, line_end))
    } else {
        (line_start, line_end)
    };
    let end = end.min(to);
    let (open, close) = (
        if from > line_start { "…" } else { "" },
        if to < line_end { "…" } else { "" },
    );
    // Keep tabs in the caret line's indentation so the caret lines up.
    let pad: String = open
        .chars()
        .chain(source[from..caret].chars())
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let width = source[caret.min(end)..end].chars().count().max(1);
    let gutter = line.to_string().len();
    let mut out = format!("{file}:{line}:{col}: error: {}\n", d.message);
    out.push_str(&format!("{:>gutter$} |\n", ""));
    out.push_str(&format!("{line} | {open}{}{close}\n", &source[from..to]));
    out.push_str(&format!("{:>gutter$} | {pad}{}\n", "", "^".repeat(width)));
    if let Some(h) = &d.hint {
        out.push_str(&format!("{:>gutter$} = hint: {h}\n", ""));
    }
    out
}

/// The most diagnostics `render` shows; the count line gives the total.
/// Past this many the first errors are the ones worth reading (later ones
/// are mostly consequences), and the output stays readable.
pub const MAX_SHOWN: usize = 100;

/// Renders the diagnostics in source order (the first [`MAX_SHOWN`], and
/// any pinned one after them), followed by a count of all of them.
pub fn render(diags: &[Diagnostic], source: &str, file: &str) -> String {
    let mut sorted: Vec<&Diagnostic> = diags.iter().collect();
    sorted.sort_by_key(|d| (d.span.start, d.span.end));
    let index = LineIndex::new(source);
    let mut out = String::new();
    for (i, d) in sorted.iter().enumerate() {
        if i < MAX_SHOWN || d.pinned {
            out.push_str(&render_indexed(d, &index, file));
            out.push('\n');
        }
    }
    let n = sorted.len();
    out.push_str(&format!(
        "{file}: {n} error{} found",
        if n == 1 { "" } else { "s" }
    ));
    if n > MAX_SHOWN {
        out.push_str(&format!(" (the first {MAX_SHOWN} are shown)"));
    }
    out
}

/// Past this many candidates there is no did-you-mean hint.
pub const MAX_CANDIDATES: usize = 256;

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
    // Among thousands of names (a generated file) a suggestion is a guess,
    // and searching them for every unknown name made checking quadratic.
    let candidates: Vec<&str> = candidates.into_iter().take(MAX_CANDIDATES + 1).collect();
    if candidates.len() > MAX_CANDIDATES {
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
///
/// Past [`MAX_LISTED`] names the rest are counted, not listed: a file may
/// declare thousands, and every hint would repeat them all.
pub fn list_names<S: AsRef<str>>(names: &[S]) -> String {
    let shown = names.len().min(MAX_LISTED);
    let quoted: Vec<String> = names[..shown]
        .iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect();
    match (quoted.len(), names.len() - shown) {
        (0, _) => "none".to_string(),
        (1, 0) => quoted[0].clone(),
        (n, 0) => format!("{} and {}", quoted[..n - 1].join(", "), quoted[n - 1]),
        (_, more) => format!("{} and {more} more", quoted.join(", ")),
    }
}

/// The most names a hint lists.
pub const MAX_LISTED: usize = 12;

/// "`a`, `b` or `c`".
pub fn list_alternatives<S: AsRef<str>>(names: &[S]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| n.as_ref().to_string()).collect();
    match quoted.len() {
        0 => "nothing".to_string(),
        1 => quoted[0].clone(),
        n => format!("{} or {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one scan per call: what the index must agree with.
    fn naive(source: &str, offset: usize) -> (usize, usize) {
        let offset = clamp_to_char_boundary(source, offset);
        let before = &source[..offset];
        let line = before.matches('\n').count() + 1;
        let start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        (line, source[start..offset].chars().count() + 1)
    }

    #[test]
    fn line_index_agrees_with_a_scan_at_every_offset() {
        for source in [
            "",
            "\n",
            "a",
            "ab\ncd\n",
            "x\r\ny\r\n\r\nz",
            "é\nñü\n\n日本語 x\n",
            "\n\n\nlast line without break",
        ] {
            let index = LineIndex::new(source);
            for offset in 0..=source.len() + 2 {
                assert_eq!(
                    index.line_col(offset),
                    naive(source, offset),
                    "{source:?} at {offset}"
                );
            }
        }
    }

    #[test]
    fn a_diagnostic_shows_its_line_and_a_caret_under_the_span() {
        let source = "first\nse\tcond line\r\nthird";
        let start = source.find("cond").unwrap();
        let d = Diagnostic::new(Span::new(start, start + 4), "bad word").with_hint("fix it");
        assert_eq!(
            render_one(&d, source, "f.cp"),
            "f.cp:2:4: error: bad word\n  |\n2 | se\tcond line\n  |   \t^^^^\n  = hint: fix it\n"
        );
    }

    #[test]
    fn a_long_line_is_shown_as_a_window_around_the_caret() {
        let source = format!("{}BAD{}\nnext", "é".repeat(500), "x".repeat(500));
        let start = source.find("BAD").unwrap();
        let d = Diagnostic::new(Span::new(start, start + 3), "here");
        let out = render_one(&d, &source, "f.cp");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "f.cp:1:501: error: here");
        let shown = lines[2].strip_prefix("1 | ").unwrap();
        assert_eq!(shown.chars().count(), MAX_LINE_SHOWN + 2, "{shown}");
        assert!(shown.starts_with(&format!("…{}BAD", "é".repeat(CONTEXT_BEFORE))));
        assert!(shown.ends_with("x…"));
        // The caret sits under BAD: as many columns in as BAD is in `shown`.
        let caret = lines[3].strip_prefix("  | ").unwrap();
        assert_eq!(caret, format!("{}^^^", " ".repeat(CONTEXT_BEFORE + 1)));
        // At the start of a long line: no leading ellipsis.
        let d = Diagnostic::new(Span::new(0, 2), "first");
        let out = render_one(&d, &source, "f.cp");
        let line = out.lines().nth(2).unwrap();
        assert!(line.starts_with("1 | éé") && line.ends_with('…'), "{line}");
    }

    #[test]
    fn render_shows_the_first_hundred_in_source_order_and_counts_all() {
        let source = "x\n".repeat(300);
        // Given in reverse: shown sorted by position.
        let diags: Vec<Diagnostic> = (0..250)
            .rev()
            .map(|i| Diagnostic::new(Span::new(2 * i, 2 * i + 1), format!("e{i}")))
            .collect();
        let out = render(&diags, &source, "f.cp");
        let shown: Vec<&str> = out.lines().filter(|l| l.contains(": error: ")).collect();
        assert_eq!(shown.len(), MAX_SHOWN);
        assert_eq!(shown[0], "f.cp:1:1: error: e0");
        assert_eq!(shown[99], "f.cp:100:1: error: e99");
        assert!(
            out.ends_with("f.cp: 250 errors found (the first 100 are shown)"),
            "{out}"
        );
        // One that says where checking stopped is shown past the limit.
        let mut pinned = diags.clone();
        pinned.push(Diagnostic::new(Span::new(598, 599), "stopped").pinned());
        let out = render(&pinned, &source, "f.cp");
        assert!(out.contains("f.cp:300:1: error: stopped"), "{out}");
        assert!(!out.contains("error: e100"));
        let few = render(&diags[245..], &source, "f.cp");
        assert!(few.ends_with("f.cp: 5 errors found"), "{few}");
    }
}
