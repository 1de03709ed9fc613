//! `clickprompt run FILE.cp [--experiment NAME]`: executes an experiment's
//! stages (every run of the file, or of one experiment / sweep) with progress
//! bars, then prints a summary table.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::train::events::{Event, EventSink, LogLevel};
use crate::train::runner::RunSummary;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Experiment file.
    pub files: Vec<std::path::PathBuf>,
}

pub fn run(_args: RunArgs) -> Result<()> {
    anyhow::bail!("`run` is being built")
}

/// Progress bars (stage, epoch, step, loss, samples/s, ETA) and evaluation
/// lines on stderr. Without a terminal the bars stay hidden and only the
/// lines are printed.
pub struct ProgressSink {
    state: Mutex<Bars>,
}

struct Bars {
    bar: Option<ProgressBar>,
    epochs: usize,
}

impl Default for ProgressSink {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressSink {
    pub fn new() -> Self {
        Self { state: Mutex::new(Bars { bar: None, epochs: 0 }) }
    }

    fn line(bar: Option<&ProgressBar>, text: String) {
        match bar {
            Some(b) if !b.is_hidden() => b.println(text),
            _ => eprintln!("{text}"),
        }
    }
}

impl EventSink for ProgressSink {
    fn emit(&self, event: Event) {
        let Ok(mut st) = self.state.lock() else { return };
        match event {
            Event::StageStarted { stage, kind, epochs, steps_per_epoch, rows } => {
                if let Some(b) = st.bar.take() {
                    b.finish_and_clear();
                }
                let bar = ProgressBar::new((epochs * steps_per_epoch) as u64);
                let style = ProgressStyle::with_template(
                    "{prefix:.bold} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} {msg} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(stage.clone());
                bar.enable_steady_tick(Duration::from_millis(250));
                Self::line(Some(&bar), format!("stage {stage} ({kind}): {epochs} epoch(s) × {steps_per_epoch} steps, {rows} rows"));
                st.bar = Some(bar);
                st.epochs = epochs;
            }
            Event::Step { epoch, step, loss, samples_per_s, .. } => {
                if let Some(b) = &st.bar {
                    b.set_position(step as u64);
                    b.set_message(format!("epoch {epoch}/{} loss {loss:.4} {samples_per_s:.0} samples/s", st.epochs));
                }
            }
            Event::Eval { stage, epoch, split, auc, logloss, metrics } => {
                let mut parts = Vec::new();
                if let Some(a) = auc {
                    parts.push(format!("AUC {a:.4}"));
                }
                if let Some(l) = logloss {
                    parts.push(format!("LogLoss {l:.4}"));
                }
                for (k, v) in metrics {
                    parts.push(format!("{k} {v:.4}"));
                }
                Self::line(st.bar.as_ref(), format!("{stage} epoch {epoch} {}: {}", split.as_str(), parts.join(", ")));
            }
            Event::StageFinished { stage, best_epoch, seconds, .. } => {
                if let Some(b) = st.bar.take() {
                    b.finish_and_clear();
                }
                let best = best_epoch.map_or("-".to_string(), |e| e.to_string());
                eprintln!("stage {stage} finished in {seconds:.1}s (best epoch {best})");
            }
            Event::Checkpoint { .. } => {}
            Event::Log { level, message } => {
                let tag = match level {
                    LogLevel::Info => "info",
                    LogLevel::Warn => "warning",
                    LogLevel::Error => "error",
                };
                Self::line(st.bar.as_ref(), format!("{tag}: {message}"));
            }
        }
    }
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.prec$}"))
}

/// The summary table: one row per stage of every run.
pub fn summary_table(runs: &[RunSummary]) -> String {
    let header = ["run", "stage", "kind", "best", "valid AUC", "valid LogLoss", "test AUC", "test LogLoss", "time (s)", "train/s", "infer/s"];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in runs {
        for s in &r.stages {
            rows.push(vec![
                r.run.clone(),
                s.stage.clone(),
                s.kind.clone(),
                s.best_epoch.map_or("-".into(), |e| format!("{e}/{}", s.epochs_run)),
                opt(s.valid_auc, 4),
                opt(s.valid_logloss, 4),
                opt(s.test_auc, 4),
                opt(s.test_logloss, 4),
                format!("{:.1}", s.seconds),
                format!("{:.0}", s.train_samples_per_s),
                opt(s.infer_samples_per_s, 0),
            ]);
        }
    }
    let widths: Vec<usize> = (0..header.len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, v)| if c < 3 { format!("{v:<w$}", w = widths[c]) } else { format!("{v:>w$}", w = widths[c]) })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
            out.push('\n');
        }
    }
    out
}

/// Default checkpoint folder: `./checkpoints`.
pub fn default_checkpoints() -> PathBuf {
    PathBuf::from("checkpoints")
}
