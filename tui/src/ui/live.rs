//! The live run view: header, stage gauges, loss / lr charts, validation
//! metrics, throughput sparkline and the latest log lines.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Gauge, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

use super::charts::{self, Spec};
use crate::app::{App, Follow};
use crate::format;
use crate::model::{LogLevel, RunDetail, Split, StageProgress, StageState};
use crate::smooth;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let Some(d) = &app.live else {
        let msg = match app.follow {
            Follow::After(_) => "waiting for the run to start…",
            _ if app.runs.is_empty() => "no runs yet: start one with `clickprompt run FILE.cp`",
            _ => "no run selected: pick one in the Runs view (Tab, then Enter)",
        };
        f.render_widget(
            Paragraph::new(Span::styled(msg, Style::default().fg(Color::DarkGray)))
                .block(Block::bordered().title(" Live ")),
            area,
        );
        return;
    };
    let header_h = if d.error.is_some() { 4 } else { 3 };
    let stages_h = (d.stages.len().max(1) as u16) + 2;
    let [header, stages, charts_area, bottom, logs] = Layout::vertical([
        Constraint::Length(header_h),
        Constraint::Length(stages_h),
        Constraint::Min(6),
        Constraint::Length(8),
        Constraint::Min(3),
    ])
    .areas(area);
    draw_header(f, d, header);
    draw_stages(f, d, stages);
    let stage = app.stage_pick.clone().or_else(|| d.focus_stage());
    let [loss_area, lr_area] =
        Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)])
            .areas(charts_area);
    draw_loss(f, app, d, stage.as_deref(), loss_area);
    draw_lr(f, d, stage.as_deref(), lr_area);
    let [evals_area, speed_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    draw_evals(f, d, stage.as_deref(), evals_area);
    draw_speed(f, d, stage.as_deref(), speed_area);
    draw_logs(f, d, logs);
}

fn draw_header(f: &mut Frame, d: &RunDetail, area: Rect) {
    let s = &d.summary;
    let sep = Span::styled(" · ", Style::default().fg(Color::DarkGray));
    let mut spans = vec![
        Span::styled(
            s.experiment.clone(),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        sep.clone(),
        Span::styled(format!("#{} ", s.id), Style::default().fg(Color::Cyan)),
        Span::raw(s.name.clone()),
    ];
    if let Some(p) = &s.sweep_point {
        if !s.name.contains(p.as_str()) {
            spans.push(Span::styled(
                format!(" [{p}]"),
                Style::default().fg(Color::Magenta),
            ));
        }
    }
    spans.extend([
        sep.clone(),
        Span::raw(s.device.clone()),
        sep.clone(),
        Span::styled(s.status.as_str(), super::status_style(s.status)),
        sep,
        Span::raw(format!("elapsed {}", format::opt_duration(s.duration_s))),
    ]);
    let mut lines = vec![Line::from(spans)];
    if let Some(e) = &d.error {
        lines.push(Line::from(Span::styled(
            format!("error: {e}"),
            Style::default().fg(Color::Red),
        )));
    }
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Run ")),
        area,
    );
}

fn stage_label(s: &StageProgress) -> String {
    match s.state {
        StageState::Pending => format!("pending · {} epochs", s.epochs),
        StageState::Finished => {
            let mut t = format!(
                "done · {} epochs · {}",
                s.epochs,
                format::opt_duration(s.elapsed_s)
            );
            if let Some(b) = s.best_epoch {
                t.push_str(&format!(" · best epoch {b}"));
            }
            t
        }
        StageState::Stopped => format!(
            "stopped at epoch {}/{} · step {}/{} · {:.0}%",
            s.epoch,
            s.epochs,
            s.step,
            s.total_steps(),
            s.ratio() * 100.0
        ),
        StageState::Running => {
            let eta = s
                .eta_s()
                .map(|e| format!(" · ETA {}", format::duration(e)))
                .unwrap_or_default();
            format!(
                "epoch {}/{} · step {}/{} · {:.0}%{}",
                s.epoch,
                s.epochs,
                s.step,
                s.total_steps(),
                s.ratio() * 100.0,
                eta
            )
        }
    }
}

fn draw_stages(f: &mut Frame, d: &RunDetail, area: Rect) {
    let block = Block::bordered().title(" Stages ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    if d.stages.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled(
                "no stage started yet",
                Style::default().fg(Color::DarkGray),
            )),
            inner,
        );
        return;
    }
    let rows = Layout::vertical(vec![Constraint::Length(1); d.stages.len()]).split(inner);
    let name_w = d
        .stages
        .iter()
        .map(|s| s.name.chars().count() + s.kind.chars().count() + 3)
        .max()
        .unwrap_or(10)
        .clamp(8, 32) as u16;
    for (s, row) in d.stages.iter().zip(rows.iter()) {
        let [name, gauge] =
            Layout::horizontal([Constraint::Length(name_w + 1), Constraint::Min(10)]).areas(*row);
        let label = if s.kind.is_empty() || s.kind == s.name {
            s.name.clone()
        } else {
            format!("{} ({})", s.name, s.kind)
        };
        let label = format::truncate(&label, name_w as usize);
        f.render_widget(
            Paragraph::new(Span::styled(
                label,
                Style::default().add_modifier(Modifier::BOLD),
            )),
            name,
        );
        let color = match s.state {
            StageState::Finished => Color::Green,
            StageState::Running => Color::Cyan,
            StageState::Pending => Color::DarkGray,
            StageState::Stopped => Color::Red,
        };
        f.render_widget(
            Gauge::default()
                .ratio(s.ratio())
                .label(stage_label(s))
                .gauge_style(Style::default().fg(color).bg(Color::Black)),
            gauge,
        );
    }
}

fn draw_loss(f: &mut Frame, app: &App, d: &RunDetail, stage: Option<&str>, area: Rect) {
    let series = stage.and_then(|s| d.series_for(s));
    let pts: &[(f64, f64)] = series.map(|s| s.loss.as_slice()).unwrap_or(&[]);
    let nan = smooth::non_finite_steps(pts);
    let mode = if app.raw {
        "raw".to_string()
    } else {
        format!("EMA {:.2}", app.smoothing)
    };
    let mut title = format!(" Loss · {} · {mode} ", stage.unwrap_or("—"));
    if !nan.is_empty() {
        title.push_str(&format!("· {} NaN steps skipped ", nan.len()));
    }
    let specs = if app.raw {
        vec![Spec::line("raw", pts, Style::default().fg(Color::Cyan))]
    } else {
        vec![
            Spec::line("raw", pts, Style::default().fg(Color::DarkGray)),
            Spec {
                name: "smoothed".into(),
                points: smooth::ema(pts, app.smoothing),
                style: Style::default().fg(Color::Cyan),
                scatter: false,
            },
        ]
    };
    charts::draw(f, area, Block::bordered().title(title), specs, &nan, "step");
}

fn draw_lr(f: &mut Frame, d: &RunDetail, stage: Option<&str>, area: Rect) {
    let pts: &[(f64, f64)] = stage
        .and_then(|s| d.series_for(s))
        .map(|s| s.lr.as_slice())
        .unwrap_or(&[]);
    let now = pts
        .last()
        .map(|p| format!(" · {}", format::axis(p.1)))
        .unwrap_or_default();
    charts::draw(
        f,
        area,
        Block::bordered().title(format!(" Learning rate{now} ")),
        vec![Spec::line("lr", pts, Style::default().fg(Color::Yellow))],
        &[],
        "step",
    );
}

fn draw_evals(f: &mut Frame, d: &RunDetail, stage: Option<&str>, area: Rect) {
    // The charted stage may have no evaluations (MLM pre-training); fall back
    // to the stage that has them.
    let stage = stage
        .filter(|s| d.evals.iter().any(|e| e.stage == *s))
        .map(str::to_string)
        .or_else(|| d.eval_stage());
    let title = format!(" Validation · {} ", stage.as_deref().unwrap_or("—"));
    let Some(stage) = stage else {
        f.render_widget(
            Paragraph::new(Span::styled(
                "no evaluation yet",
                Style::default().fg(Color::DarkGray),
            ))
            .block(Block::bordered().title(title)),
            area,
        );
        return;
    };
    let valid = d.valid_evals(&stage);
    let best = valid
        .iter()
        .filter_map(|e| e.auc.filter(|a| a.is_finite()).map(|a| (e.epoch, a)))
        .fold(None, |acc: Option<(usize, f64)>, (ep, a)| match acc {
            Some((_, b)) if b >= a => acc,
            _ => Some((ep, a)),
        })
        .map(|(ep, _)| ep);
    let mut rows: Vec<Row> = Vec::new();
    for e in &valid {
        let style = if Some(e.epoch) == best {
            Style::default()
                .fg(Color::Green)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        rows.push(
            Row::new(vec![
                Cell::from(format!("valid {}", e.epoch)),
                Cell::from(format::metric(e.auc)),
                Cell::from(format::metric(e.logloss)),
            ])
            .style(style),
        );
    }
    for e in d
        .evals
        .iter()
        .filter(|e| e.split == Split::Test && e.stage == stage)
    {
        rows.push(
            Row::new(vec![
                Cell::from(format!("test @{}", e.epoch)),
                Cell::from(format::metric(e.auc)),
                Cell::from(format::metric(e.logloss)),
            ])
            .style(
                Style::default()
                    .fg(Color::Yellow)
                    .add_modifier(Modifier::BOLD),
            ),
        );
    }
    // Keep the newest rows (and the test row) when the box is short.
    let fit = area.height.saturating_sub(3) as usize;
    if rows.len() > fit {
        rows.drain(..rows.len() - fit);
    }
    let table = Table::new(
        rows,
        [
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(8),
        ],
    )
    .header(
        Row::new(vec!["epoch", "AUC", "LogLoss"]).style(
            Style::default()
                .fg(Color::Gray)
                .add_modifier(Modifier::UNDERLINED),
        ),
    )
    .block(Block::bordered().title(title));
    f.render_widget(table, area);
}

fn draw_speed(f: &mut Frame, d: &RunDetail, stage: Option<&str>, area: Rect) {
    let pts: Vec<f64> = stage
        .and_then(|s| d.series_for(s))
        .map(|s| {
            s.samples_per_s
                .iter()
                .map(|p| p.1)
                .filter(|v| v.is_finite() && *v >= 0.0)
                .collect()
        })
        .unwrap_or_default();
    let width = area.width.saturating_sub(2) as usize;
    let tail = &pts[pts.len().saturating_sub(width)..];
    let title = match (tail.last(), tail.is_empty()) {
        (Some(now), false) => {
            let mean = tail.iter().sum::<f64>() / tail.len() as f64;
            format!(" samples/s · now {now:.0} · mean {mean:.0} ")
        }
        _ => " samples/s ".to_string(),
    };
    // Bars rise from a floor below the minimum so changes in pace stay
    // visible; the title carries the absolute numbers.
    let (lo, hi) = tail.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    let floor = if hi > lo {
        (lo - (hi - lo)).max(0.0)
    } else {
        0.0
    };
    let data: Vec<u64> = tail.iter().map(|v| (v - floor).round() as u64).collect();
    f.render_widget(
        Sparkline::default()
            .block(Block::bordered().title(title))
            .style(Style::default().fg(Color::Green))
            .data(&data),
        area,
    );
}

fn draw_logs(f: &mut Frame, d: &RunDetail, area: Rect) {
    let fit = area.height.saturating_sub(2) as usize;
    let start = d.logs.len().saturating_sub(fit);
    let lines: Vec<Line> = d.logs[start..]
        .iter()
        .map(|l| {
            let (tag, style) = match l.level {
                LogLevel::Info => ("info ", Style::default().fg(Color::Gray)),
                LogLevel::Warn => ("WARN ", Style::default().fg(Color::Yellow)),
                LogLevel::Error => ("ERROR", Style::default().fg(Color::Red)),
            };
            let time = l.ts.get(11..19).unwrap_or(l.ts.as_str());
            Line::from(vec![
                Span::styled(format!("{time} "), Style::default().fg(Color::DarkGray)),
                Span::styled(format!("{tag} "), style.add_modifier(Modifier::BOLD)),
                Span::styled(l.message.clone(), style),
            ])
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Log ")),
        area,
    );
}
