//! The run history table.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::app::{App, SortKey};
use crate::format;
use crate::model::RunStatus;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let visible = app.visible_runs();
    let mut title = format!(" Runs · {} of {} ", visible.len(), app.runs.len());
    if !app.selected.is_empty() {
        title.push_str(&format!("· {} selected ", app.selected.len()));
    }
    if !app.filter.is_empty() {
        title.push_str(&format!("· filter \"{}\" ", app.filter));
    }
    if let Some(g) = app.group_filter_name() {
        title.push_str(&format!("· group {g} (Esc: all) "));
    }
    let pick = app.figures_stage.as_deref();
    match pick {
        Some(stage) => title.push_str(&format!("· figures: stage {stage} (t) ")),
        None => title.push_str("· figures: best stage (t) "),
    }
    let block = Block::bordered().title(title);
    if visible.is_empty() {
        let msg = if app.runs.is_empty() {
            "no runs yet: start one with `clickprompt run FILE.cp`"
        } else if app.group_filter.is_some() && app.filter.is_empty() {
            "no run in this group (Esc shows all runs)"
        } else {
            "no run matches the filter (Esc clears it)"
        };
        f.render_widget(
            Paragraph::new(Span::styled(msg, Style::default().fg(Color::DarkGray))).block(block),
            area,
        );
        return;
    }

    // The stage column sits between Status and the figures; it is not a sort key.
    let stage_title = "Stage";
    let stage_at = 1 + SortKey::ALL
        .iter()
        .position(|k| *k == SortKey::TestAuc)
        .unwrap_or(SortKey::ALL.len());
    let mut titles: Vec<Cell> = std::iter::once(Cell::from(" "))
        .chain(SortKey::ALL.iter().map(|k| {
            let arrow = if *k == app.sort {
                if app.descending {
                    " ▼"
                } else {
                    " ▲"
                }
            } else {
                ""
            };
            let style = if *k == app.sort {
                Style::default()
                    .fg(Color::Cyan)
                    .add_modifier(Modifier::BOLD)
            } else {
                Style::default().add_modifier(Modifier::BOLD)
            };
            Cell::from(Span::styled(format!("{}{arrow}", k.title()), style))
        }))
        .collect();
    titles.insert(
        stage_at,
        Cell::from(Span::styled(
            stage_title,
            Style::default().add_modifier(Modifier::BOLD),
        )),
    );
    let header = Row::new(titles).style(Style::default().add_modifier(Modifier::UNDERLINED));

    let widths = [
        Constraint::Length(1),
        Constraint::Length(5),
        Constraint::Fill(5),
        Constraint::Fill(9),
        Constraint::Fill(4),
        Constraint::Length(11),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(16),
    ];
    // The table clips cells silently; cut long names with a visible `…`
    // instead, using the same column split the table will make.
    let inner = block.inner(area);
    let cols = Layout::horizontal(widths).spacing(1).split(Rect {
        width: inner.width.saturating_sub(1), // the highlight symbol
        ..inner
    });
    let fit = |i: usize, s: &str| format::truncate(s, cols.get(i).map_or(0, |r| r.width as usize));
    let rows: Vec<Row> = visible
        .iter()
        .map(|r| {
            let mark = match (app.is_selected(r.id), r.status.is_live()) {
                (true, _) => Span::styled("✓", Style::default().fg(Color::Yellow)),
                (false, true) => Span::styled("●", Style::default().fg(Color::Green)),
                _ => Span::raw(" "),
            };
            let status = if r.status == RunStatus::Running {
                "● live".to_string()
            } else {
                r.status.as_str().to_string()
            };
            let (stage, test_auc, test_logloss) = match pick {
                None => (r.best_stage.as_deref(), r.test_auc, r.test_logloss),
                Some(p) => match r.figures(Some(p)) {
                    Some(f) => (Some(p), f.test_auc, f.test_logloss),
                    None => (None, None, None),
                },
            };
            let started = r
                .started_at
                .get(..16)
                .unwrap_or(r.started_at.as_str())
                .replace('T', " ");
            Row::new(vec![
                Cell::from(mark),
                Cell::from(format!("{}", r.id)),
                Cell::from(fit(2, &r.experiment)),
                Cell::from(fit(3, &r.name)),
                Cell::from(fit(4, r.sweep_point.as_deref().unwrap_or(""))),
                Cell::from(Span::styled(status, super::status_style(r.status))),
                Cell::from(fit(6, stage.unwrap_or("—"))),
                Cell::from(format::metric(test_auc)),
                Cell::from(format::metric(test_logloss)),
                Cell::from(format::opt_duration(r.duration_s)),
                Cell::from(started),
            ])
        })
        .collect();
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .highlight_symbol(Line::from("▶"));
    let mut state = TableState::default().with_selected(Some(app.cursor));
    f.render_stateful_widget(table, area, &mut state);
}
