//! `clickprompt run`: loads an experiment file, builds the data and runs the
//! stages (every run of the file, or of one experiment / sweep), recording
//! each run in the run database, with progress bars or the live dashboard,
//! then prints a summary table.
//!
//! Ctrl-C once stops after the current training step or evaluation batch:
//! the run is marked INTERRUPTED with everything recorded so far, and
//! `--resume ID` continues it. Ctrl-C twice marks it and exits at once.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::data::{self, LoadOptions};
use crate::error::invalid;
use crate::model::plm::resolve_plm_dir;
use crate::plan::{DeviceSpec, ExperimentPlan, MetricKind};
use crate::store::{self, DbTarget, InterruptHandle, NewRun, RunRecorder, RunStatus, Store};
use crate::train::events::{Event, EventSink, LogLevel};
use crate::train::runner::{
    device_name, run_experiment, select_device, RunOptions, RunResume, RunSummary, StageSummary,
};

const AFTER_HELP: &str = "\
Every run is recorded in the run database (--db, else $CLICKPROMPT_DB, else
./runs.db; a postgres://user@host/db URL shares one history between machines):
plan, parameters, step metrics, evaluations and checkpoints. Checkpoints go to
CHECKPOINTS/run-<id>/<run name>/<stage>/.

Every run of a file has a stable index (`clickprompt plan FILE --list`):
--point I or --points 3-7,9 runs only those, so a Slurm array
(--point $SLURM_ARRAY_TASK_ID), a Kubernetes indexed Job
(--point $JOB_COMPLETION_INDEX) or GNU parallel spreads a sweep over machines.
With --experiment, indexes count within that experiment or sweep.

Ctrl-C stops after the current training step or evaluation batch and marks
the run INTERRUPTED; continue it with `clickprompt run --resume ID`. A second
Ctrl-C stops at once.

An experiment with `seeds [1, 2, 3]` runs once per seed, one after the other,
each a run of the group named after the experiment; the summary then adds the
group's mean ± sd. `--experiment NAME` runs every seed, `--experiment
'NAME[seed=2]'` one of them (`runs list --groups`, `runs compare gA gB` compare
groups later).

Exit codes: 0 all runs finished, 1 a run failed, 2 invalid input, 130
interrupted; the run database: 3 not SQLite (or damaged), 4 newer schema,
5 read-only, 6 disk full, 7 locked past the busy timeout (runs already
committed stay intact; a run cut off is marked FAILED, or INTERRUPTED by the
next command that opens the database when it could not be written at all).

Examples:
  clickprompt run experiments/quickstart.cp
  clickprompt run seeds.cp --experiment 'scratch[seed=2]'
  clickprompt run experiments/ml100k_prompt_sweep.cp --experiment prompt_count --dash
  clickprompt run sweep.cp --point 3 --db postgres://lab@db.lab/clickprompt
  clickprompt run --resume 12";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct RunArgs {
    /// Experiment file (`.cp`).
    #[arg(required_unless_present = "resume", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Only this experiment, sweep or group (every point, every seed runs in
    /// turn) or one run (`NAME[seed=2]`); default: every run in the file.
    #[arg(long, short, conflicts_with = "resume")]
    pub experiment: Option<String>,
    /// Run only the run with this index (see `clickprompt plan FILE --list`).
    #[arg(long, value_name = "I", conflicts_with_all = ["resume", "points"])]
    pub point: Option<usize>,
    /// Run only these indexes: `3-7`, `1,4,7`, `0-3,8`.
    #[arg(long, value_name = "LIST", conflicts_with = "resume")]
    pub points: Option<String>,
    /// Override the plan's device: `auto`, `cpu`, `cuda` or `cuda:N`.
    #[arg(long)]
    pub device: Option<String>,
    /// Where processed datasets are cached.
    #[arg(long, default_value = ".cache/data")]
    pub cache_dir: PathBuf,
    /// Root folder of the checkpoints.
    #[arg(long, default_value = "checkpoints")]
    pub checkpoints: PathBuf,
    /// Rebuild the processed dataset even when a cached copy exists.
    #[arg(long)]
    pub rebuild: bool,
    /// Run database: a SQLite file or a postgres:// URL (default: $CLICKPROMPT_DB, else ./runs.db).
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<DbTarget>,
    /// Continue an interrupted or failed run (its stored plan; FILE not needed).
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<i64>,
    /// Show the live dashboard while training (falls back to progress bars without a terminal).
    #[arg(long)]
    pub dash: bool,
}

/// The outcome of `run_file`.
#[derive(Default)]
pub struct Outcome {
    pub summaries: Vec<RunSummary>,
    /// Runs that failed, with their database id when they got one.
    pub failures: Vec<(String, Option<i64>, anyhow::Error)>,
    /// Set when Ctrl-C stopped a run (its id).
    pub interrupted: Option<i64>,
}

pub fn run(args: RunArgs) -> Result<()> {
    let db = args.db.clone().unwrap_or_else(store::default_db);
    let outcome = if args.dash {
        let dash_args = &args;
        let db_ref = &db;
        let train = move || run_file(dash_args, db_ref, &Quiet);
        match super::dash::run_with_dashboard_following(&db, args.resume, train)? {
            super::dash::Dashboard::Shown(r) => r?,
            super::dash::Dashboard::Unavailable { reason, .. } => {
                eprintln!("--dash: {reason}; showing progress bars instead");
                run_file(&args, &db, &ProgressSink::new())?
            }
        }
    } else {
        run_file(&args, &db, &ProgressSink::new())?
    };
    if !outcome.summaries.is_empty() {
        println!("{}", summary_table(&outcome.summaries));
    }
    eprintln!("runs recorded in {db} (`clickprompt runs list --db {db}`)");
    if let Some(id) = outcome.interrupted {
        eprintln!("interrupted: run {id} is marked INTERRUPTED; continue it with `clickprompt run --resume {id}`");
        std::process::exit(130);
    }
    if outcome.failures.is_empty() {
        return Ok(());
    }
    let mut msg = format!("{} run(s) failed:", outcome.failures.len());
    for (run, id, err) in &outcome.failures {
        let id = id.map_or(String::new(), |i| format!(" (run {i})"));
        msg.push_str(&format!("\n  {run}{id}: {err:#}"));
    }
    // Exit code 2 only when every failure is the user's to fix.
    if outcome
        .failures
        .iter()
        .all(|(_, _, e)| crate::error::exit_code(e) == 2)
    {
        Err(invalid(msg))
    } else {
        Err(anyhow::anyhow!(msg))
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
            _ => Err(invalid(format!(
                "--device {s}: expected auto, cpu, cuda or cuda:N"
            ))),
        },
    }
}

/// Interrupt state shared with the handler (Ctrl-C, SIGTERM, SIGHUP): the
/// first signal sets `cancel` (the trainer stops after the current step or
/// evaluation batch); the second marks the current run INTERRUPTED through
/// its handle and exits.
struct Interrupts {
    cancel: Arc<AtomicBool>,
    current: Mutex<Option<InterruptHandle>>,
}

fn interrupts() -> &'static Interrupts {
    static STATE: OnceLock<Interrupts> = OnceLock::new();
    STATE.get_or_init(|| {
        // A second handler cannot be installed (tests, embedding): run without one then.
        let _ = ctrlc::set_handler(|| {
            let st = interrupts();
            if st.cancel.swap(true, Ordering::SeqCst) {
                if let Ok(guard) = st.current.lock() {
                    if let Some(h) = guard.as_ref() {
                        let _ = h.interrupt();
                    }
                }
                super::dash::restore_terminal();
                // eprintln! would panic if the terminal is gone.
                let _ = writeln!(std::io::stderr(), "\ninterrupted");
                std::process::exit(130);
            }
            // A dashboard (`--dash`) closes and restores the terminal.
            super::dash::request_quit();
            let _ = writeln!(std::io::stderr(), "\ninterrupted (Ctrl-C, SIGTERM or SIGHUP): stopping after the current step or evaluation batch (again to stop now)");
        });
        Interrupts {
            cancel: Arc::new(AtomicBool::new(false)),
            current: Mutex::new(None),
        }
    })
}

/// Sends every event to two sinks (progress display and recorder).
struct Both<'a>(&'a dyn EventSink, &'a dyn EventSink);

impl EventSink for Both<'_> {
    fn emit(&self, event: Event) {
        self.0.emit(event.clone());
        self.1.emit(event);
    }
}

/// Shows nothing: the dashboard reads the database instead.
pub struct Quiet;

impl EventSink for Quiet {
    fn emit(&self, _event: Event) {}
}

/// Runs every selected plan of the file (or the resumed run), recording each
/// in the database `db`. A sweep goes on after a failed point; Ctrl-C
/// stops the loop. Errors before any run starts are returned as such.
pub fn run_file(args: &RunArgs, db: &DbTarget, sink: &dyn EventSink) -> Result<Outcome> {
    let override_device = args.device.as_deref().map(parse_device).transpose()?;
    // The file and the points are checked before the database is touched.
    let selected = match args.resume {
        Some(_) => None,
        None => Some(selected_plans(args)?),
    };
    let store = Store::open(db).with_context(|| format!("opening the run database {db}"))?;
    let st = interrupts();
    st.cancel.store(false, Ordering::SeqCst);
    let mut outcome = Outcome::default();

    if let Some(id) = args.resume {
        let (recorder, info) = store.reopen_run(id)?;
        let plan: ExperimentPlan = serde_yaml::from_str(&info.plan_yaml)
            .with_context(|| format!("run {id}: reading its stored plan"))?;
        let resume = super::resume::resume_state(&info, &plan);
        let root = resume
            .1
            .clone()
            .unwrap_or_else(|| run_checkpoint_root(&args.checkpoints, id));
        if let Err(e) = super::resume::verify_checkpoints(&info, &resume.0) {
            let closed = recorder.finish(RunStatus::Failed(format!("{e:#}")));
            let e = match closed {
                Ok(()) => e,
                Err(c) => e.context(format!("also recording the failure: {c:#}")),
            };
            outcome.failures.push((plan.name.clone(), Some(id), e));
            return Ok(outcome);
        }
        execute(
            args,
            &plan,
            recorder,
            Some(resume.0),
            root,
            override_device,
            sink,
            &mut outcome,
        );
        return Ok(outcome);
    }

    let (file, source, plans) =
        selected.ok_or_else(|| invalid("an experiment file is required"))?;
    for (index, plan) in &plans {
        if st.cancel.load(Ordering::SeqCst) {
            break;
        }
        let device = select_device(override_device.unwrap_or(plan.device))
            .map(|d| device_name(&d))
            .with_context(|| format!("run {}", plan.name))?;
        let recorder = store.start_run(NewRun::new(plan, &file, &source, &device))?;
        if args.point.is_some() || args.points.is_some() {
            // Which task of a spread sweep this is, in the run's log.
            Both(sink, &recorder).emit(Event::Log {
                level: LogLevel::Info,
                message: format!(
                    "point {index} of {}: {} (group {})",
                    file.display(),
                    plan.name,
                    plan.group_name()
                ),
            });
        }
        let root = run_checkpoint_root(&args.checkpoints, recorder.run_id());
        execute(
            args,
            plan,
            recorder,
            None,
            root,
            override_device,
            sink,
            &mut outcome,
        );
    }
    Ok(outcome)
}

/// The file, its source text and the plans `run` executes, with their
/// indexes: every run of the file, or of `--experiment`, narrowed to
/// `--point` / `--points`.
type Selected = (PathBuf, String, Vec<(usize, ExperimentPlan)>);

fn selected_plans(args: &RunArgs) -> Result<Selected> {
    let file = args
        .file
        .clone()
        .ok_or_else(|| invalid("an experiment file is required"))?;
    let source =
        std::fs::read_to_string(&file).map_err(|e| invalid(format!("{}: {e}", file.display())))?;
    let plans = crate::plan::select(crate::plan::load_file(&file)?, args.experiment.as_deref())?;
    let points = match (args.point, &args.points) {
        (Some(i), _) => Some(crate::plan::PointSet::one(i)),
        (None, Some(list)) => Some(crate::plan::PointSet::parse("--points", list)?),
        (None, None) => None,
    };
    let plans = match points {
        None => plans.into_iter().enumerate().collect(),
        Some(points) => {
            let what = match &args.experiment {
                Some(x) => format!("`--experiment {x}` in {}", file.display()),
                None => file.display().to_string(),
            };
            crate::plan::pick(plans, &points, &what)?
        }
    };
    Ok((file, source, plans))
}

/// `<checkpoints>/run-<id>`: re-running an experiment never overwrites the
/// checkpoints of an earlier run, and `--resume` finds its own.
fn run_checkpoint_root(root: &Path, id: i64) -> PathBuf {
    crate::train::checkpoint::run_root(root, id)
}

/// Loads the data, runs the plan and closes the run's record.
#[allow(clippy::too_many_arguments)]
fn execute(
    args: &RunArgs,
    plan: &ExperimentPlan,
    recorder: RunRecorder,
    resume: Option<RunResume>,
    checkpoint_root: PathBuf,
    device: Option<DeviceSpec>,
    sink: &dyn EventSink,
    outcome: &mut Outcome,
) {
    let st = interrupts();
    let id = recorder.run_id();
    if let Ok(mut g) = st.current.lock() {
        *g = Some(recorder.interrupt_handle());
    }
    let both = Both(sink, &recorder);
    both.emit(Event::Log {
        level: LogLevel::Info,
        message: format!("run {id}: {}", plan.name),
    });
    let opts = RunOptions {
        checkpoint_root,
        device,
        cancel: Some(st.cancel.clone()),
        resume,
    };
    let result = (|| -> Result<RunSummary> {
        let load = LoadOptions {
            cache_dir: args.cache_dir.clone(),
            rebuild: args.rebuild,
            tokenizer_dir: plan.plm.as_ref().map(resolve_plm_dir).transpose()?,
        };
        let loaded = data::load(plan, &load)
            .with_context(|| format!("loading dataset {}", plan.dataset.name))?;
        both.emit(Event::Log {
            level: LogLevel::Info,
            message: format!(
                "dataset {}: {} / {} / {} rows ({} {})",
                plan.dataset.name,
                loaded.dataset.train.rows,
                loaded.dataset.valid.rows,
                loaded.dataset.test.rows,
                if loaded.cache.hit {
                    "cached at"
                } else {
                    "built, cached at"
                },
                loaded.cache.path.display()
            ),
        });
        run_experiment(plan, &loaded.dataset, &opts, &both)
    })();
    let interrupted = st.cancel.load(Ordering::SeqCst);
    let status = match &result {
        Ok(_) => RunStatus::Finished,
        Err(_) if interrupted => RunStatus::Interrupted,
        Err(e) => RunStatus::Failed(format!("{e:#}")),
    };
    if let Err(e) = &result {
        if !interrupted {
            sink.emit(Event::Log {
                level: LogLevel::Error,
                message: format!("run {} failed: {e:#}", plan.name),
            });
        }
    }
    let closed = recorder.finish(status);
    // Only now: a second signal arriving while training winds down (the
    // first one stopped it) must still find the run to mark, not exit past
    // an unmarked RUNNING record.
    if let Ok(mut g) = st.current.lock() {
        *g = None;
    }
    match (result, closed) {
        (Ok(s), Ok(())) => outcome.summaries.push(s),
        (Ok(_), Err(e)) => {
            outcome
                .failures
                .push((plan.name.clone(), Some(id), e.context("recording the run")))
        }
        (Err(_), _) if interrupted => outcome.interrupted = Some(id),
        (Err(e), _) => outcome.failures.push((plan.name.clone(), Some(id), e)),
    }
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
        Self {
            state: Mutex::new(Bars {
                bar: None,
                epochs: 0,
            }),
        }
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
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        match event {
            Event::StageStarted {
                stage,
                kind,
                epochs,
                steps_per_epoch,
                rows,
            } => {
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
            Event::Step {
                epoch,
                step,
                loss,
                samples_per_s,
                ..
            } => {
                if let Some(b) = &st.bar {
                    b.set_position(step as u64);
                    b.set_message(format!(
                        "epoch {epoch}/{} loss {loss:.4} {samples_per_s:.0} samples/s",
                        st.epochs
                    ));
                }
            }
            Event::Eval {
                stage,
                epoch,
                split,
                auc,
                logloss,
                metrics,
            } => {
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
                Self::line(
                    st.bar.as_ref(),
                    format!(
                        "{stage} epoch {epoch} {}: {}",
                        split.as_str(),
                        parts.join(", ")
                    ),
                );
            }
            Event::StageFinished {
                stage,
                best_epoch,
                seconds,
                ..
            } => {
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

/// The summary table: one row per stage of every run, then, for groups
/// with several seeds among `runs`, their mean ± sd over those seeds.
pub fn summary_table(runs: &[RunSummary]) -> String {
    let mut out = stage_table(runs);
    let groups = group_table(runs);
    if !groups.is_empty() {
        out.push('\n');
        out.push_str(&groups);
    }
    out
}

/// Mean ± sample sd over the seeds of each group that ran more than once
/// (each run's best stage's figures, as `runs list --groups` averages them;
/// empty when no group did).
pub fn group_table(runs: &[RunSummary]) -> String {
    let mut groups: Vec<(&str, Vec<&RunSummary>)> = Vec::new();
    for r in runs {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, members)) => members.push(r),
            None => groups.push((&r.group, vec![r])),
        }
    }
    groups.retain(|(_, m)| m.len() > 1);
    if groups.is_empty() {
        return String::new();
    }
    let metrics = crate::stats::default_metrics();
    let mut rows: Vec<Vec<String>> = vec![vec![
        "group".into(),
        "runs".into(),
        "seeds".into(),
        "test AUC (mean ± sd)".into(),
        "test LogLoss (mean ± sd)".into(),
    ]];
    for (name, members) in &groups {
        let ms: Vec<crate::stats::Member> = members
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let best = best_stage(&r.stages);
                crate::stats::Member {
                    run_id: i as i64,
                    seed: r.seed,
                    finished: true,
                    values: vec![
                        best.and_then(|s| s.test_auc),
                        best.and_then(|s| s.test_logloss),
                        best.and_then(|s| s.valid_auc),
                    ],
                }
            })
            .collect();
        let g = crate::stats::group_stats(&ms, &metrics);
        let seeds: Vec<String> = g.seeds.iter().map(u64::to_string).collect();
        rows.push(vec![
            name.to_string(),
            members.len().to_string(),
            seeds.join(","),
            g.metrics[0].stats.display(4),
            g.metrics[1].stats.display(4),
        ]);
    }
    render_rows(&rows, &[1, 3, 4])
}

/// The stage whose figures stand for the run, by the rule of the run
/// database's `best_stage` (migration 0004): the highest validation AUC, the
/// later stage on a tie; without validation AUCs, the last stage with a test
/// AUC. Runs without any AUC (`metrics [logloss]`) fall back to their last
/// stage with a test figure.
fn best_stage(stages: &[StageSummary]) -> Option<&StageSummary> {
    let valid = |s: &StageSummary| s.valid_auc.filter(|v| !v.is_nan());
    stages
        .iter()
        .filter(|s| valid(s).is_some())
        .fold(None, |best: Option<&StageSummary>, s| match best {
            Some(b) if valid(b) > valid(s) => Some(b),
            _ => Some(s),
        })
        .or_else(|| stages.iter().rev().find(|s| s.test_auc.is_some()))
        .or_else(|| {
            stages
                .iter()
                .rev()
                .find(|s| s.test_auc.is_some() || s.test_logloss.is_some())
        })
}

/// Aligned columns (`right` ones right-aligned) with a rule under the header.
fn render_rows(rows: &[Vec<String>], right: &[usize]) -> String {
    let n = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..n)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if right.contains(&c) {
                    format!("{v:>w$}", w = widths[c])
                } else {
                    format!("{v:<w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    out
}

fn stage_table(runs: &[RunSummary]) -> String {
    // Click metrics as the experiments list them (`metrics [auc, logloss]`).
    let shows = |m: MetricKind| runs.iter().any(|r| r.metrics.contains(&m));
    let (auc, ll) = (shows(MetricKind::Auc), shows(MetricKind::Logloss));
    let mut header = vec!["run", "stage", "kind", "best"];
    if auc {
        header.push("valid AUC");
    }
    if ll {
        header.push("valid LogLoss");
    }
    if auc {
        header.push("test AUC");
    }
    if ll {
        header.push("test LogLoss");
    }
    header.extend(["time (s)", "train/s", "infer/s", "other (valid)"]);
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in runs {
        for s in &r.stages {
            let mut row = vec![
                r.run.clone(),
                s.stage.clone(),
                s.kind.clone(),
                s.best_epoch
                    .map_or("-".into(), |e| format!("{e}/{}", s.epochs_run)),
            ];
            if auc {
                row.push(opt(s.valid_auc, 4));
            }
            if ll {
                row.push(opt(s.valid_logloss, 4));
            }
            if auc {
                row.push(opt(s.test_auc, 4));
            }
            if ll {
                row.push(opt(s.test_logloss, 4));
            }
            row.extend([
                format!("{:.1}", s.seconds),
                format!("{:.0}", s.train_samples_per_s),
                opt(s.infer_samples_per_s, 0),
                s.metrics
                    .iter()
                    .filter(|(k, _)| !per_field(k))
                    .map(|(k, v)| format!("{k} {v:.4}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]);
            rows.push(row);
        }
    }
    // Per-field metrics (PA-MLM's prompt gap per template field) read
    // better as one line per stage than as table columns.
    let mut gaps = String::new();
    for r in runs {
        for s in &r.stages {
            let fields: Vec<String> = s
                .metrics
                .iter()
                .filter_map(|(k, v)| {
                    let f = k.strip_prefix("prompt_gap[")?.strip_suffix(']')?;
                    Some(format!("{f} {:+.1}", 100.0 * v))
                })
                .collect();
            if !fields.is_empty() {
                gaps.push_str(&format!(
                    "{} {}: prompt gap per field (valid, points): {}\n",
                    r.run,
                    s.stage,
                    fields.join(", ")
                ));
            }
        }
    }
    // Names left, numbers right, the free-text last column left.
    let right: Vec<usize> = (3..header.len() - 1).collect();
    let mut out = render_rows(&rows, &right);
    out.push_str(&gaps);
    out
}

/// `mlm_acc[title]` and the like: one template field's share of a metric.
fn per_field(key: &str) -> bool {
    key.ends_with(']') && key.contains('[')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(name: &str, valid_auc: Option<f64>, test: Option<(f64, f64)>) -> StageSummary {
        StageSummary {
            stage: name.into(),
            kind: name.into(),
            best_epoch: Some(1),
            epochs_run: 1,
            valid_auc,
            valid_logloss: None,
            test_auc: test.map(|t| t.0),
            test_logloss: test.map(|t| t.1),
            metrics: vec![],
            seconds: 1.0,
            train_samples_per_s: 1.0,
            infer_samples_per_s: None,
            best_checkpoint: None,
        }
    }

    fn run(seed: u64, joint: (f64, f64), ctr_only: (f64, f64)) -> RunSummary {
        RunSummary {
            run: format!("cp[seed={seed}]"),
            group: "cp".into(),
            seed,
            device: "cpu".into(),
            stages: vec![
                stage("pretrain", None, None),
                stage("joint", Some(joint.0), Some((joint.1, 1.0 - joint.1))),
                stage(
                    "ctr_only",
                    Some(ctr_only.0),
                    Some((ctr_only.1, 1.0 - ctr_only.1)),
                ),
            ],
            metrics: vec![MetricKind::Auc, MetricKind::Logloss],
        }
    }

    #[test]
    fn best_stage_follows_the_run_database_rule() {
        let r = run(1, (0.78, 0.775), (0.77, 0.768));
        assert_eq!(
            best_stage(&r.stages).map(|s| s.stage.as_str()),
            Some("joint")
        );
        // A tie goes to the later stage.
        let r = run(1, (0.77, 0.775), (0.77, 0.768));
        assert_eq!(
            best_stage(&r.stages).map(|s| s.stage.as_str()),
            Some("ctr_only")
        );
        // No validation AUC: the last stage with a test AUC.
        let stages = vec![
            stage("a", None, Some((0.7, 0.3))),
            stage("b", None, Some((0.6, 0.4))),
            stage("c", None, None),
        ];
        assert_eq!(best_stage(&stages).map(|s| s.stage.as_str()), Some("b"));
        assert!(best_stage(&[stage("p", None, None)]).is_none());
    }

    #[test]
    fn group_means_are_of_each_runs_best_stage() {
        // Best stages: joint 0.775, CTR-only 0.760, CTR-only 0.750 → mean 0.7617;
        // the last stages' would be 0.768, 0.760, 0.750 → 0.7593.
        let runs = [
            run(1, (0.78, 0.775), (0.77, 0.768)),
            run(2, (0.75, 0.745), (0.76, 0.760)),
            run(3, (0.74, 0.735), (0.75, 0.750)),
        ];
        let table = group_table(&runs);
        let line = table
            .lines()
            .find(|l| l.starts_with("cp "))
            .unwrap_or_else(|| panic!("no group line\n{table}"));
        assert!(line.contains("0.7617 ± 0.0126"), "{table}");
        assert!(line.contains("0.2383 ± 0.0126"), "{table}");
    }
}
