//! Aligned text tables and colour that turns itself off for pipes and `NO_COLOR`.

use std::io::IsTerminal;

/// Whether to emit ANSI colour.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// Colour only when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn detect() -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: !no_color && std::io::stdout().is_terminal(),
        }
    }

    pub fn paint(&self, code: Paint, text: &str) -> String {
        if !self.color || code == Paint::None {
            return text.to_string();
        }
        let c = match code {
            Paint::None => "",
            Paint::Bold => "1",
            Paint::Best => "1;32",
            Paint::Green => "32",
            Paint::Red => "31",
            Paint::Yellow => "33",
            Paint::Dim => "2",
        };
        format!("\x1b[{c}m{text}\x1b[0m")
    }

    pub fn status(&self, status: &str) -> String {
        self.paint(status_paint(status), status)
    }
}

pub fn status_paint(status: &str) -> Paint {
    match status {
        "FINISHED" => Paint::Green,
        "FAILED" => Paint::Red,
        "INTERRUPTED" => Paint::Yellow,
        _ => Paint::Bold,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    None,
    Bold,
    Best,
    Green,
    Red,
    Yellow,
    Dim,
}

#[derive(Debug, Clone)]
pub struct Cell {
    pub text: String,
    pub paint: Paint,
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell {
            text,
            paint: Paint::None,
        }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell {
            text: text.to_string(),
            paint: Paint::None,
        }
    }
}

impl Cell {
    pub fn painted(text: impl Into<String>, paint: Paint) -> Cell {
        Cell {
            text: text.into(),
            paint,
        }
    }
}

/// Columns whose index is in `right` are right-aligned (numbers).
pub struct Table {
    pub headers: Vec<String>,
    pub right: Vec<bool>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(headers: &[&str], right: &[usize]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            right: (0..headers.len()).map(|i| right.contains(&i)).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        self.rows.push(row);
    }

    pub fn render(&self, style: Style) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(n) {
                widths[i] = widths[i].max(cell.text.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<Cell> = self
            .headers
            .iter()
            .map(|h| Cell::painted(h.clone(), Paint::Bold))
            .collect();
        for row in std::iter::once(&header).chain(self.rows.iter()) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(n) {
                let pad = widths[i] - cell.text.chars().count();
                let last = i + 1 == n;
                let painted = style.paint(cell.paint, &cell.text);
                if i > 0 {
                    line.push_str("  ");
                }
                if self.right[i] {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(&painted);
                } else {
                    line.push_str(&painted);
                    if !last {
                        line.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_and_colours_only_when_asked() {
        let mut t = Table::new(&["ID", "NAME", "AUC"], &[0, 2]);
        t.push(vec![
            "7".into(),
            "a".into(),
            Cell::painted("0.7000", Paint::Best),
        ]);
        t.push(vec!["12".into(), "longer".into(), "-".into()]);
        let plain = t.render(Style { color: false });
        assert_eq!(
            plain,
            "ID  NAME       AUC\n 7  a       0.7000\n12  longer       -\n"
        );
        let coloured = t.render(Style { color: true });
        assert!(coloured.contains("\x1b[1;32m0.7000\x1b[0m"));
        assert!(coloured.starts_with("\x1b[1mID\x1b[0m"));
    }
}
