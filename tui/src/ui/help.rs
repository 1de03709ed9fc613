//! The `?` popup.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};
use ratatui::Frame;

const KEYS: &[(&str, &str)] = &[
    (
        "Tab / Shift-Tab",
        "next / previous view (Runs, Live, Compare)",
    ),
    ("↑↓ or j k", "move (Live: previous / next run)"),
    ("PgUp PgDn g G", "page, first, last"),
    ("Enter", "open the run in the live view"),
    ("space", "select / unselect a run for comparison"),
    ("c", "compare the selected runs (groups: A against B)"),
    ("x", "clear the selection"),
    ("v", "runs ↔ groups of seed repeats (mean ± sd)"),
    ("Enter (groups)", "show the group's runs (Esc: all runs)"),
    ("space (groups)", "pick group A, then B, to compare"),
    ("/", "filter runs by typing (Enter keeps, Esc clears)"),
    ("s S ← →", "sort by next / previous column"),
    ("1-9", "sort by column n (again: reverse)"),
    ("t", "Runs: figures of the best stage, then of each stage"),
    ("r", "Runs: reverse order · charts: raw / smoothed loss"),
    ("+ -", "loss smoothing weight (EMA, like TensorBoard)"),
    ("s", "Live/Compare: cycle the stage charted"),
    ("f", "Live: follow the newest running run"),
    ("?", "this help (any key closes)"),
    ("q Esc", "quit (Esc first clears a filter or group)"),
    ("Ctrl-C", "quit (interrupts a run started with --dash)"),
];

pub fn draw(f: &mut Frame, area: Rect) {
    let width = 76;
    let height = KEYS.len() as u16 + 4;
    let r = super::centered(area, width, height);
    let mut lines = vec![Line::from("")];
    for (k, what) in KEYS {
        lines.push(Line::from(vec![
            Span::styled(
                format!(" {k:>16} "),
                Style::default()
                    .fg(Color::Cyan)
                    .add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!(" {what}")),
        ]));
    }
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_type(BorderType::Rounded)
                .title(" Keys ")
                .border_style(Style::default().fg(Color::Cyan)),
        ),
        r,
    );
}
