//! Rendering: one module per view, plus the frame (tabs, footer, help).
//! Everything here reads `App` and draws; nothing mutates state.

mod charts;
mod compare;
mod group_compare;
mod groups;
mod help;
mod live;
mod runs;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::app::{App, View};
use crate::model::RunStatus;

/// Colours for runs in overlaid charts, in picking order.
pub(crate) const PALETTE: [Color; 8] = [
    Color::Cyan,
    Color::Yellow,
    Color::Magenta,
    Color::Green,
    Color::LightRed,
    Color::LightBlue,
    Color::White,
    Color::LightGreen,
];

pub(crate) fn status_style(s: RunStatus) -> Style {
    match s {
        RunStatus::Running => Style::default()
            .fg(Color::Green)
            .add_modifier(Modifier::BOLD),
        RunStatus::Finished => Style::default().fg(Color::Reset),
        RunStatus::Failed => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        RunStatus::Interrupted => Style::default().fg(Color::Yellow),
        RunStatus::Lost => Style::default().fg(Color::DarkGray),
    }
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame, app: &App) {
    let [top, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_tabs(f, app, top);
    match app.view {
        View::Runs if app.show_groups => groups::draw(f, app, body),
        View::Runs => runs::draw(f, app, body),
        View::Live => live::draw(f, app, body),
        View::Compare if app.compare_groups => group_compare::draw(f, app, body),
        View::Compare => compare::draw(f, app, body),
    }
    draw_footer(f, app, footer);
    if app.help {
        help::draw(f, f.area());
    }
}

fn draw_tabs(f: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![Span::styled(
        " clickprompt ",
        Style::default()
            .fg(Color::Black)
            .bg(Color::Cyan)
            .add_modifier(Modifier::BOLD),
    )];
    for v in View::ALL {
        spans.push(Span::raw(" "));
        let style = if v == app.view {
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else {
            Style::default().fg(Color::Gray)
        };
        spans.push(Span::styled(format!(" {} ", v.title()), style));
    }
    if let Some(b) = &app.banner {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(
            b.clone(),
            Style::default()
                .fg(Color::Green)
                .add_modifier(Modifier::BOLD),
        ));
    } else if !app.source_label.is_empty() {
        spans.push(Span::styled(
            format!("  {}", app.source_label),
            Style::default().fg(Color::DarkGray),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_footer(f: &mut Frame, app: &App, area: Rect) {
    let line = if let Some(e) = &app.error {
        Line::from(Span::styled(
            format!(" error: {e}"),
            Style::default().fg(Color::Red),
        ))
    } else if let Some(n) = &app.notice {
        Line::from(Span::styled(
            format!(" {n}"),
            Style::default().fg(Color::Yellow),
        ))
    } else if app.filter_editing {
        Line::from(vec![
            Span::styled(" filter: ", Style::default().fg(Color::Yellow)),
            Span::raw(app.filter.clone()),
            Span::styled("▏", Style::default().fg(Color::Yellow)),
            Span::styled(
                "   Enter keep · Esc clear",
                Style::default().fg(Color::DarkGray),
            ),
        ])
    } else {
        let keys: &[(&str, &str)] = match app.view {
            View::Runs if app.show_groups => &[
                ("↑↓", "move"),
                ("Enter", "runs"),
                ("space", "pick A/B"),
                ("c", "compare"),
                ("/", "filter"),
                ("v", "runs"),
            ],
            View::Runs => &[
                ("↑↓", "move"),
                ("Enter", "open"),
                ("space", "select"),
                ("c", "compare"),
                ("/", "filter"),
                ("s", "sort"),
                ("r", "reverse"),
                ("v", "groups"),
                ("t", "stages"),
            ],
            View::Live => &[
                ("↑↓", "prev/next run"),
                ("r", "raw/smoothed"),
                ("+-", "smoothing"),
                ("s", "stage"),
                ("f", "follow newest"),
            ],
            View::Compare if app.compare_groups => &[("v", "runs"), ("x", "clear")],
            View::Compare => &[
                ("r", "raw/smoothed"),
                ("s", "stage"),
                ("x", "clear"),
                ("v", "groups"),
            ],
        };
        let mut spans = Vec::new();
        for (k, what) in keys
            .iter()
            .chain([("Tab", "view"), ("?", "help"), ("q", "quit")].iter())
        {
            spans.push(Span::styled(
                format!(" {k}"),
                Style::default()
                    .fg(Color::Cyan)
                    .add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::styled(
                format!(" {what} "),
                Style::default().fg(Color::Gray),
            ));
        }
        Line::from(spans)
    };
    f.render_widget(Paragraph::new(line), area);
}

/// A centred rectangle of at most `w`×`h` inside `area`.
pub(crate) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}
