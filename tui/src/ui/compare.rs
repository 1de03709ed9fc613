//! Comparing runs: overlaid validation-AUC and loss curves, a table of the
//! parameters that differ with the final metrics, and test AUC bars.

use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::charts::{self, Spec};
use super::PALETTE;
use crate::app::App;
use crate::format;
use crate::model::RunDetail;
use crate::smooth;

/// The lowest floor for AUC bars: a random ranker scores 0.5.
const AUC_BASE: f64 = 0.5;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    if app.compare.len() < 2 {
        let msg = if app.selected.len() < 2 {
            "select two or more runs with space in the Runs view, then press c".to_string()
        } else {
            "loading runs…".to_string()
        };
        f.render_widget(
            Paragraph::new(Span::styled(msg, Style::default().fg(Color::DarkGray)))
                .block(Block::bordered().title(" Compare ")),
            area,
        );
        return;
    }
    let runs = &app.compare;
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let [auc_area, loss_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let [table_area, bars_area] =
        Layout::horizontal([Constraint::Percentage(65), Constraint::Percentage(35)]).areas(bottom);

    // Valid AUC per epoch.
    let mut auc_stage = None;
    let specs: Vec<Spec> = runs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let stage = app
                .stage_pick
                .clone()
                .filter(|s| d.valid_evals(s).iter().any(|e| e.auc.is_some()))
                .or_else(|| d.eval_stage());
            let pts: Vec<(f64, f64)> = stage
                .as_deref()
                .map(|s| {
                    d.valid_evals(s)
                        .iter()
                        .filter_map(|e| e.auc.map(|a| (e.epoch as f64, a)))
                        .collect()
                })
                .unwrap_or_default();
            if auc_stage.is_none() {
                auc_stage = stage;
            }
            Spec::line(
                label(d),
                &pts,
                Style::default().fg(PALETTE[i % PALETTE.len()]),
            )
        })
        .collect();
    charts::draw(
        f,
        auc_area,
        Block::bordered().title(format!(
            " Valid AUC · {} ",
            auc_stage.as_deref().unwrap_or("—")
        )),
        specs,
        &[],
        "epoch",
    );

    // Training loss.
    let mut loss_stage = None;
    let mut nan_total = 0;
    let specs: Vec<Spec> = runs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let stage = app
                .stage_pick
                .clone()
                .filter(|s| d.series_for(s).is_some())
                .or_else(|| d.focus_stage());
            let pts: &[(f64, f64)] = stage
                .as_deref()
                .and_then(|s| d.series_for(s))
                .map(|s| s.loss.as_slice())
                .unwrap_or(&[]);
            nan_total += smooth::non_finite_steps(pts).len();
            if loss_stage.is_none() {
                loss_stage = stage;
            }
            let points = if app.raw {
                smooth::finite_points(pts)
            } else {
                smooth::ema(pts, app.smoothing)
            };
            Spec {
                name: label(d),
                points,
                style: Style::default().fg(PALETTE[i % PALETTE.len()]),
                scatter: false,
            }
        })
        .collect();
    let mode = if app.raw {
        "raw".to_string()
    } else {
        format!("EMA {:.2}", app.smoothing)
    };
    let mut title = format!(" Loss · {} · {mode} ", loss_stage.as_deref().unwrap_or("—"));
    if nan_total > 0 {
        title.push_str(&format!("· {nan_total} NaN steps skipped "));
    }
    charts::draw(
        f,
        loss_area,
        Block::bordered().title(title),
        specs,
        &[],
        "step",
    );

    draw_table(f, runs, table_area);
    draw_bars(f, runs, bars_area);
}

fn label(d: &RunDetail) -> String {
    let name = d.summary.sweep_point.as_deref().unwrap_or(&d.summary.name);
    format::truncate(&format!("#{} {}", d.summary.id, name), 28)
}

fn best_valid_auc(d: &RunDetail) -> Option<f64> {
    let stage = d.eval_stage()?;
    d.valid_evals(&stage)
        .iter()
        .filter_map(|e| e.auc.filter(|a| a.is_finite()))
        .fold(None, |acc: Option<f64>, a| {
            Some(acc.map_or(a, |b| b.max(a)))
        })
}

/// Parameter keys whose values are not the same in every run.
fn differing_params(runs: &[RunDetail]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for d in runs {
        for (k, _) in &d.params {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    keys.retain(|k| {
        let first = runs[0].param(k);
        runs.iter().any(|d| d.param(k) != first)
    });
    keys
}

fn draw_table(f: &mut Frame, runs: &[RunDetail], area: Rect) {
    let keys = differing_params(runs);
    let mut rows: Vec<Row> = Vec::new();
    for k in &keys {
        let mut cells = vec![Cell::from(Span::styled(
            k.clone(),
            Style::default().fg(Color::Magenta),
        ))];
        cells.extend(
            runs.iter()
                .map(|d| Cell::from(d.param(k).unwrap_or("—").to_string())),
        );
        rows.push(Row::new(cells));
    }
    if keys.is_empty() {
        let mut cells = vec![Cell::from(Span::styled(
            "(same params)",
            Style::default().fg(Color::DarkGray),
        ))];
        cells.extend(runs.iter().map(|_| Cell::from("")));
        rows.push(Row::new(cells));
    }
    // Final metrics; `true` = higher is better.
    type Metric = (&'static str, fn(&RunDetail) -> Option<f64>, bool);
    let metrics: [Metric; 4] = [
        ("test AUC", |d| d.summary.test_auc, true),
        ("test LogLoss", |d| d.summary.test_logloss, false),
        ("best valid AUC", best_valid_auc, true),
        ("duration", |d| d.summary.duration_s, false),
    ];
    for (name, get, higher) in metrics {
        let values: Vec<Option<f64>> = runs
            .iter()
            .map(|d| get(d).filter(|v| v.is_finite()))
            .collect();
        let best = values
            .iter()
            .flatten()
            .copied()
            .fold(None, |acc: Option<f64>, v| {
                Some(match acc {
                    None => v,
                    Some(b) if higher => b.max(v),
                    Some(b) => b.min(v),
                })
            });
        let mut cells = vec![Cell::from(Span::styled(
            name,
            Style::default().add_modifier(Modifier::BOLD),
        ))];
        cells.extend(values.iter().map(|v| {
            let text = if name == "duration" {
                format::opt_duration(*v)
            } else {
                format::metric(*v)
            };
            // Only a strict winner is highlighted: a row of ties says nothing.
            let unique = values
                .iter()
                .flatten()
                .filter(|x| Some(**x) == best)
                .count()
                == 1;
            if v.is_some() && *v == best && unique && values.len() > 1 {
                Cell::from(Span::styled(
                    format!("{text} ★"),
                    Style::default()
                        .fg(Color::Green)
                        .add_modifier(Modifier::BOLD),
                ))
            } else {
                Cell::from(text)
            }
        }));
        rows.push(Row::new(cells));
    }
    let mut cells = vec![Cell::from(Span::styled(
        "status",
        Style::default().add_modifier(Modifier::BOLD),
    ))];
    cells.extend(runs.iter().map(|d| {
        Cell::from(Span::styled(
            d.summary.status.as_str(),
            super::status_style(d.summary.status),
        ))
    }));
    rows.push(Row::new(cells));

    let mut header = vec![Cell::from("")];
    header.extend(runs.iter().enumerate().map(|(i, d)| {
        Cell::from(Span::styled(
            format!("#{}", d.summary.id),
            Style::default()
                .fg(PALETTE[i % PALETTE.len()])
                .add_modifier(Modifier::BOLD),
        ))
    }));
    let mut widths = vec![Constraint::Length(16)];
    widths.extend(runs.iter().map(|_| Constraint::Min(9)));
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::default().add_modifier(Modifier::UNDERLINED)))
        .block(Block::bordered().title(" Params that differ · final metrics (★ best) "));
    f.render_widget(table, area);
}

fn draw_bars(f: &mut Frame, runs: &[RunDetail], area: Rect) {
    let aucs: Vec<Option<f64>> = runs
        .iter()
        .map(|d| d.summary.test_auc.filter(|a| a.is_finite()))
        .collect();
    let (lo, hi) = aucs
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &a| {
            (lo.min(a), hi.max(a))
        });
    // Bars rise from a floor below the worst run (never below chance, 0.5),
    // so a sweep's differences of a few thousandths are visible; the floor is
    // in the title and the exact values on the bars.
    let base = if hi > lo {
        (lo - (hi - lo)).max(AUC_BASE)
    } else {
        AUC_BASE.min(lo)
    };
    let top = if hi.is_finite() && hi > base { hi } else { 1.0 };
    let scale = |a: f64| (((a - base) / (top - base)).clamp(0.0, 1.0) * 1000.0).round() as u64;
    let bars: Vec<Bar> = runs
        .iter()
        .zip(&aucs)
        .enumerate()
        .map(|(i, (d, auc))| {
            let color = PALETTE[i % PALETTE.len()];
            Bar::default()
                .label(format!("#{}", d.summary.id))
                .value(auc.map_or(0, scale))
                .text_value(format::metric(*auc))
                .style(Style::default().fg(color))
                .value_style(Style::default().fg(Color::Black).bg(color))
        })
        .collect();
    let chart = BarChart::default()
        .direction(Direction::Horizontal)
        .data(BarGroup::default().bars(&bars))
        .bar_width(1)
        .bar_gap(0)
        .max(1000)
        .block(Block::bordered().title(format!(" Test AUC (bars from {base:.3}) ")));
    f.render_widget(chart, area);
}
