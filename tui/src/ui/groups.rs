//! The groups table: one line per configuration repeated over seeds, with
//! mean ± sd over the seeds (the Runs view after `v`).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::app::App;
use crate::format;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let visible = app.visible_groups();
    let mut title = format!(" Groups · {} of {} ", visible.len(), app.groups.len());
    if !app.selected_groups.is_empty() {
        let picks: Vec<String> = app
            .selected_groups
            .iter()
            .zip(["A", "B"])
            .map(|(id, side)| format!("{side} g{id}"))
            .collect();
        title.push_str(&format!("· {} ", picks.join(", ")));
    }
    if !app.filter.is_empty() {
        title.push_str(&format!("· filter \"{}\" ", app.filter));
    }
    let block = Block::bordered().title(title);
    if visible.is_empty() {
        let msg = if app.groups.is_empty() {
            "no groups yet: every run belongs to one (`seeds [1, 2, 3]` repeats a run over seeds)"
        } else {
            "no group matches the filter (Esc clears it)"
        };
        f.render_widget(
            Paragraph::new(Span::styled(msg, Style::default().fg(Color::DarkGray))).block(block),
            area,
        );
        return;
    }

    let bold = Style::default().add_modifier(Modifier::BOLD);
    let header = Row::new(
        [
            " ",
            "Group",
            "Experiment",
            "Name",
            "Runs",
            "Seeds",
            "Test AUC (mean ± sd)",
            "LogLoss (mean ± sd)",
            "Valid AUC (mean ± sd)",
        ]
        .into_iter()
        .map(|h| Cell::from(Span::styled(h, bold)))
        .collect::<Vec<_>>(),
    )
    .style(Style::default().add_modifier(Modifier::UNDERLINED));
    let widths = [
        Constraint::Length(1),
        Constraint::Length(6),
        Constraint::Fill(2),
        Constraint::Fill(3),
        Constraint::Length(5),
        Constraint::Fill(1),
        Constraint::Length(20),
        Constraint::Length(19),
        Constraint::Length(21),
    ];
    let inner = block.inner(area);
    let cols = Layout::horizontal(widths).spacing(1).split(Rect {
        width: inner.width.saturating_sub(1), // the highlight symbol
        ..inner
    });
    let fit = |i: usize, s: &str| format::truncate(s, cols.get(i).map_or(0, |r| r.width as usize));
    let rows: Vec<Row> = visible
        .iter()
        .map(|g| {
            let mark = match app.selected_groups.iter().position(|&s| s == g.id) {
                Some(0) => Span::styled("A", Style::default().fg(Color::Yellow)),
                Some(_) => Span::styled("B", Style::default().fg(Color::Yellow)),
                None => Span::raw(" "),
            };
            let seeds: Vec<String> = g.seeds.iter().map(u64::to_string).collect();
            let seeds = if seeds.is_empty() {
                "—".to_string()
            } else {
                seeds.join(",")
            };
            Row::new(vec![
                Cell::from(mark),
                Cell::from(format!("g{}", g.id)),
                Cell::from(fit(2, &g.experiment)),
                Cell::from(fit(3, &g.name)),
                Cell::from(format!("{}/{}", g.finished, g.runs)),
                Cell::from(fit(5, &seeds)),
                Cell::from(format::mean_sd(&g.test_auc)),
                Cell::from(format::mean_sd(&g.test_logloss)),
                Cell::from(format::mean_sd(&g.best_valid_auc)),
            ])
        })
        .collect();
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .highlight_symbol(Line::from("▶"));
    let mut state = TableState::default().with_selected(Some(app.group_cursor));
    f.render_stateful_widget(table, area, &mut state);
}
