//! Line charts over possibly broken data: non-finite points are dropped before
//! ratatui sees them, bounds are padded so flat or single-point series still
//! draw, and NaN steps can be marked along the top edge.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

use crate::format;
use crate::smooth::finite_points;

pub struct Spec {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub style: Style,
    pub scatter: bool,
}

impl Spec {
    pub fn line(name: impl Into<String>, points: &[(f64, f64)], style: Style) -> Spec {
        Spec {
            name: name.into(),
            points: finite_points(points),
            style,
            scatter: false,
        }
    }
}

/// Draws `specs` in one chart inside `block`. `nan_steps` are marked with red
/// dots on the top edge; `x_title` labels the x axis.
pub fn draw(
    f: &mut Frame,
    area: Rect,
    block: Block,
    specs: Vec<Spec>,
    nan_steps: &[f64],
    x_title: &str,
) {
    let all: Vec<(f64, f64)> = specs
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .collect();
    if all.is_empty() {
        let msg = if nan_steps.is_empty() {
            "waiting for data…".to_string()
        } else {
            format!("{} steps, all NaN", nan_steps.len())
        };
        f.render_widget(
            Paragraph::new(Line::from(Span::styled(
                msg,
                Style::default().fg(Color::DarkGray),
            )))
            .block(block),
            area,
        );
        return;
    }
    let (mut x0, mut x1) = min_max(all.iter().map(|p| p.0).chain(nan_steps.iter().copied()));
    let (mut y0, mut y1) = min_max(all.iter().map(|p| p.1));
    if x1 <= x0 {
        x0 -= 1.0;
        x1 += 1.0;
    }
    let span = y1 - y0;
    let pad = if span > 0.0 {
        span * 0.05
    } else {
        (y0.abs() * 0.05).max(1e-6)
    };
    // Non-negative series (lr, AUC, throughput) keep a non-negative axis.
    y0 = if y0 >= 0.0 {
        (y0 - pad).max(0.0)
    } else {
        y0 - pad
    };
    y1 += pad;

    // Two points per braille dot column is all a chart can show.
    let max_points = (area.width as usize).saturating_mul(4).max(64);
    let specs: Vec<Spec> = specs
        .into_iter()
        .map(|mut s| {
            s.points = crate::smooth::downsample(&s.points, max_points);
            s
        })
        .collect();
    let nan_points: Vec<(f64, f64)> = nan_steps.iter().map(|&x| (x, y1)).collect();
    let mut datasets: Vec<Dataset> = specs
        .iter()
        .map(|s| {
            Dataset::default()
                .name(s.name.clone())
                .marker(Marker::Braille)
                .graph_type(if s.scatter || s.points.len() == 1 {
                    GraphType::Scatter
                } else {
                    GraphType::Line
                })
                .style(s.style)
                .data(&s.points)
        })
        .collect();
    if !nan_points.is_empty() {
        datasets.push(
            Dataset::default()
                .name(format!("NaN ×{}", nan_points.len()))
                .marker(Marker::Dot)
                .graph_type(GraphType::Scatter)
                .style(Style::default().fg(Color::Red))
                .data(&nan_points),
        );
    }
    let dim = Style::default().fg(Color::DarkGray);
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .title(Span::styled(x_title.to_string(), dim))
                .style(dim)
                .bounds([x0, x1])
                .labels([fmt_x(x0), fmt_x(x1)]),
        )
        .y_axis(Axis::default().style(dim).bounds([y0, y1]).labels([
            format::axis(y0),
            format::axis((y0 + y1) / 2.0),
            format::axis(y1),
        ]))
        .hidden_legend_constraints((
            ratatui::layout::Constraint::Ratio(1, 2),
            ratatui::layout::Constraint::Ratio(1, 1),
        ));
    f.render_widget(chart, area);
}

fn fmt_x(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn min_max(it: impl Iterator<Item = f64>) -> (f64, f64) {
    it.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}
