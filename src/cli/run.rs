//! `clickprompt run FILE.cp [--experiment NAME]`: executes an experiment's
//! stages (every run of the file, or of one experiment / sweep) with progress
//! bars, then prints a summary table.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::data::{self, LoadOptions};
use crate::error::invalid;
use crate::plan::DeviceSpec;
use crate::train::events::{Event, EventSink, LogLevel};
use crate::train::runner::{run_experiment, RunOptions, RunSummary};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Experiment file (`.cp`).
    pub file: PathBuf,
    /// Only this experiment or sweep (every point of a sweep runs in turn);
    /// default: every run in the file.
    #[arg(long, short)]
    pub experiment: Option<String>,
    /// Override the plan's device: `auto`, `cpu`, `cuda` or `cuda:N`.
    #[arg(long)]
    pub device: Option<String>,
    /// Where processed datasets are cached.
    #[arg(long, default_value = ".cache/data")]
    pub cache_dir: PathBuf,
    /// Checkpoints go to `DIR/<run>/<stage>/`.
    #[arg(long, default_value = "checkpoints")]
    pub checkpoints: PathBuf,
    /// Rebuild the processed dataset even when a cached copy exists.
    #[arg(long)]
    pub rebuild: bool,
}

pub fn run(args: RunArgs) -> Result<()> {
    let sink = ProgressSink::new();
    let (summaries, failures) = run_file(&args, &sink)?;
    if !summaries.is_empty() {
        println!("{}", summary_table(&summaries));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        let n = failures.len();
        let mut msg = format!("{n} run(s) failed:");
        for (run, err) in &failures {
            msg.push_str(&format!("\n  {run}: {err:#}"));
        }
        // Exit code 2 only when every failure is the user's to fix.
        if failures.iter().all(|(_, e)| crate::error::exit_code(e) == 2) {
            Err(invalid(msg))
        } else {
            Err(anyhow::anyhow!(msg))
        }
    }
}

/// Parses `auto`, `cpu`, `cuda`, `cuda:N`.
pub fn parse_device(s: &str) -> Result<DeviceSpec> {
    match s {
        "auto" => Ok(DeviceSpec::Auto),
        "cpu" => Ok(DeviceSpec::Cpu),
        "cuda" => Ok(DeviceSpec::Cuda(0)),
        _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => Ok(DeviceSpec::Cuda(i)),
            _ => Err(invalid(format!("--device {s}: expected auto, cpu, cuda or cuda:N"))),
        },
    }
}

/// Ctrl-C sets this; the trainer stops after the current step.
fn cancel_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        // A second handler cannot be installed (tests, embedding): run without one then.
        let _ = ctrlc::set_handler(move || f.store(true, Ordering::Relaxed));
        flag
    })
    .clone()
}

/// Runs every selected plan of the file; returns the summaries of the runs
/// that finished and the errors of those that did not (a sweep goes on
/// after a failed point). Errors before any run starts are returned as such.
pub fn run_file(args: &RunArgs, sink: &dyn EventSink) -> Result<(Vec<RunSummary>, Vec<(String, anyhow::Error)>)> {
    let plans = crate::plan::select(crate::plan::load_file(&args.file)?, args.experiment.as_deref())?;
    let device = args.device.as_deref().map(parse_device).transpose()?;
    let cancel = cancel_flag();
    cancel.store(false, Ordering::Relaxed);
    let opts = RunOptions { checkpoint_root: args.checkpoints.clone(), device, cancel: Some(cancel.clone()) };
    let mut summaries = Vec::new();
    let mut failures = Vec::new();
    for plan in &plans {
        if cancel.load(Ordering::Relaxed) {
            failures.push((plan.name.clone(), anyhow::anyhow!("not started: interrupted")));
            continue;
        }
        let outcome = (|| -> Result<RunSummary> {
            let load = LoadOptions {
                cache_dir: args.cache_dir.clone(),
                rebuild: args.rebuild,
                tokenizer_dir: match &plan.plm {
                    Some(p) => Some(crate::cli::data::plm_dir(&p.location)?),
                    None => None,
                },
            };
            let loaded = data::load(plan, &load).with_context(|| format!("loading dataset {}", plan.dataset.name))?;
            sink.emit(Event::Log {
                level: LogLevel::Info,
                message: format!(
                    "dataset {}: {} / {} / {} rows ({} {})",
                    plan.dataset.name,
                    loaded.dataset.train.rows,
                    loaded.dataset.valid.rows,
                    loaded.dataset.test.rows,
                    if loaded.cache.hit { "cached at" } else { "built, cached at" },
                    loaded.cache.path.display()
                ),
            });
            run_experiment(plan, &loaded.dataset, &opts, sink)
        })();
        match outcome {
            Ok(s) => summaries.push(s),
            Err(e) => {
                sink.emit(Event::Log { level: LogLevel::Error, message: format!("run {} failed: {e:#}", plan.name) });
                failures.push((plan.name.clone(), e));
            }
        }
    }
    Ok((summaries, failures))
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
