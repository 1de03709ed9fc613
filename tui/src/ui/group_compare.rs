//! Two groups compared: per metric both means ± sd over seeds and the paired
//! difference B − A with its standard error and sign count, then the
//! per-seed differences.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::PALETTE;
use crate::app::App;
use crate::format;
use crate::model::{GroupComparison, GroupSummary, MetricComparison};

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let Some(c) = &app.group_compare else {
        let msg = if app.selected_groups.len() < 2 {
            "select two groups with space in the Runs view's groups (v), then press c"
        } else {
            "loading the comparison…"
        };
        f.render_widget(
            Paragraph::new(Span::styled(msg, Style::default().fg(Color::DarkGray)))
                .block(Block::bordered().title(" Compare groups ")),
            area,
        );
        return;
    };
    let seed_rows = seeds(c).len() as u16;
    let [head, metrics, per_seed] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Length(c.metrics.len() as u16 + 3),
        Constraint::Min(seed_rows.min(3) + 3),
    ])
    .areas(area);
    draw_head(f, c, head);
    draw_metrics(f, c, metrics);
    draw_seeds(f, c, per_seed);
}

fn side_line(side: &str, color: Color, g: &GroupSummary) -> Line<'static> {
    let seeds: Vec<String> = g.seeds.iter().map(u64::to_string).collect();
    Line::from(vec![
        Span::styled(
            format!(" {side} "),
            Style::default()
                .fg(Color::Black)
                .bg(color)
                .add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!(" g{} {}", g.id, g.name),
            Style::default().fg(color).add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            " · experiment {} · {}/{} runs finished · seeds {}",
            g.experiment,
            g.finished,
            g.runs,
            if seeds.is_empty() {
                "—".to_string()
            } else {
                seeds.join(",")
            }
        )),
    ])
}

fn draw_head(f: &mut Frame, c: &GroupComparison, area: Rect) {
    let lines = vec![
        side_line("A", PALETTE[0], &c.a),
        side_line("B", PALETTE[1], &c.b),
    ];
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Compare groups: B against A ")),
        area,
    );
}

fn better_word(m: &MetricComparison) -> &'static str {
    match m.higher_is_better {
        Some(true) => "higher",
        Some(false) => "lower",
        None => "—",
    }
}

fn draw_metrics(f: &mut Frame, c: &GroupComparison, area: Rect) {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let header = Row::new(
        [
            "Metric",
            "Better",
            "A (mean ± sd)",
            "B (mean ± sd)",
            "B − A",
            "SE",
            "(B−A)/SE",
            "B better",
        ]
        .into_iter()
        .map(|h| Cell::from(Span::styled(h, bold)))
        .collect::<Vec<_>>(),
    )
    .style(Style::default().add_modifier(Modifier::UNDERLINED));
    let rows: Vec<Row> = c
        .metrics
        .iter()
        .map(|m| {
            let p = &m.paired;
            let t = match (p.mean, p.se) {
                (Some(d), Some(se)) if se > 0.0 => format!("{:+.2}", d / se),
                _ => "—".into(),
            };
            let count = match (p.n, p.ties) {
                (0, _) => "—".to_string(),
                (n, 0) => format!("{} of {n}", p.b_better),
                (n, t) => format!("{} of {n} ({t} tied)", p.b_better),
            };
            let count_style = if m.higher_is_better.is_none() || p.b_better == p.a_better {
                Style::default()
            } else if p.b_better > p.a_better {
                Style::default().fg(Color::Green)
            } else {
                Style::default().fg(Color::Red)
            };
            Row::new(vec![
                Cell::from(Span::styled(m.label.clone(), bold)),
                Cell::from(better_word(m)),
                Cell::from(format::mean_sd(&m.a)),
                Cell::from(format::mean_sd(&m.b)),
                Cell::from(format::signed(p.mean)),
                Cell::from(p.se.map_or("—".into(), |s| format!("{s:.4}"))),
                Cell::from(t),
                Cell::from(Span::styled(count, count_style)),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(15),
        Constraint::Length(6),
        Constraint::Length(16),
        Constraint::Length(16),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Min(10),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .block(Block::bordered().title(
            " Over seeds: mean ± sd; B − A paired by seed, SE = sd/√n, B better on k of n seeds ",
        ));
    f.render_widget(table, area);
}

/// Every seed paired for some metric, with its runs, ascending.
fn seeds(c: &GroupComparison) -> Vec<(u64, i64, i64)> {
    let mut out: Vec<(u64, i64, i64)> = Vec::new();
    for m in &c.metrics {
        for d in &m.paired.per_seed {
            if !out.iter().any(|s| s.0 == d.seed) {
                out.push((d.seed, d.a_run, d.b_run));
            }
        }
    }
    out.sort();
    out
}

fn draw_seeds(f: &mut Frame, c: &GroupComparison, area: Rect) {
    let block = Block::bordered().title(" Per seed: B − A (runs paired) ");
    let seeds = seeds(c);
    if seeds.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled(
                "no seed has a finished run in both groups",
                Style::default().fg(Color::DarkGray),
            ))
            .block(block),
            area,
        );
        return;
    }
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut head = vec![
        Cell::from(Span::styled("Seed", bold)),
        Cell::from(Span::styled("Run A", bold)),
        Cell::from(Span::styled("Run B", bold)),
    ];
    head.extend(
        c.metrics
            .iter()
            .map(|m| Cell::from(Span::styled(m.label.clone(), bold))),
    );
    let rows: Vec<Row> = seeds
        .iter()
        .map(|(seed, a, b)| {
            let mut cells = vec![
                Cell::from(seed.to_string()),
                Cell::from(format!("#{a}")),
                Cell::from(format!("#{b}")),
            ];
            for m in &c.metrics {
                let d = m.paired.per_seed.iter().find(|d| d.seed == *seed);
                let style = match (d, m.higher_is_better) {
                    (Some(d), Some(higher)) if d.diff != 0.0 => {
                        if (d.diff > 0.0) == higher {
                            Style::default().fg(Color::Green)
                        } else {
                            Style::default().fg(Color::Red)
                        }
                    }
                    _ => Style::default(),
                };
                cells.push(Cell::from(Span::styled(
                    format::signed(d.map(|d| d.diff)),
                    style,
                )));
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(7),
    ];
    widths.extend(c.metrics.iter().map(|_| Constraint::Length(15)));
    let table = Table::new(rows, widths)
        .header(Row::new(head).style(Style::default().add_modifier(Modifier::UNDERLINED)))
        .column_spacing(1)
        .block(block);
    f.render_widget(table, area);
}
