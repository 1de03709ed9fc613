//! `clickprompt runs …`: query the run history (list, show, compare, best,
//! export, delete). Aligned tables for people, `--json` for scripts.

mod gaps;
mod groups;
mod table;

use anyhow::{Context, Result};
use clap::ValueEnum;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use crate::error::invalid;
use crate::store::{self, Better, DbTarget, FieldValue, RunExport, RunFilter, RunSummary, Store};
use std::collections::BTreeMap;
use table::{Cell, Paint, Style, Table};

#[derive(Debug, Clone, clap::Args)]
pub struct DbArg {
    /// Run database: a SQLite file or a postgres:// URL [default: $CLICKPROMPT_DB, else ./runs.db].
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<DbTarget>,
}

impl DbArg {
    fn open(&self) -> Result<Store> {
        Store::open_existing(self.db.clone().unwrap_or_else(store::default_db))
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum RunsCommand {
    /// One line per run: id, experiment, sweep point, seed, status, start, duration, metrics
    /// (`--groups`: one line per group of seed repeats, mean ± sd over seeds).
    List(ListArgs),
    /// A run in full: summary, stages with throughput, evaluations per epoch, artifacts, log, plan.
    Show(ShowArgs),
    /// Runs side by side: the params that differ, then final metrics per stage (best marked *);
    /// two groups (`g3 g5`): mean ± sd over seeds and the paired difference per metric.
    Compare(CompareArgs),
    /// The best run by a metric.
    Best(BestArgs),
    /// Export runs as JSON (format `clickprompt.runs` v1, see docs/database.md), CSV,
    /// or an MLflow file store (`--format mlflow DIR`).
    Export(ExportArgs),
    /// Delete runs and everything recorded for them.
    Delete(DeleteArgs),
    /// Mark RUNNING runs whose machine or process is gone as INTERRUPTED
    /// (so they can be resumed with `run --resume ID`).
    #[command(after_help = MARK_AFTER_HELP)]
    MarkInterrupted(MarkArgs),
}

const MARK_AFTER_HELP: &str = "\
A run whose process dies on this host is marked INTERRUPTED by the next
command that opens the database. A run recorded on another machine (a node
that crashed, a preempted pod) cannot be checked from here and stays RUNNING
until this command marks it. A run whose process is alive on this host is
refused unless --force.

Example:
  clickprompt runs mark-interrupted 17 --db postgres://lab@db.lab/clickprompt";

#[derive(Debug, clap::Args)]
pub struct MarkArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[arg(required = true)]
    pub ids: Vec<i64>,
    /// Also mark a run whose process is alive on this host.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Only runs of this experiment.
    #[arg(long)]
    pub experiment: Option<String>,
    /// Only runs with this status (running, finished, failed, interrupted).
    #[arg(long)]
    pub status: Option<String>,
    /// Filter expression, e.g. 'test_auc > 0.78 and params.ctr.backbone.name = dcnv2'.
    #[arg(long = "where", value_name = "EXPR")]
    pub where_expr: Option<String>,
    /// Sort by a field (metrics best first, others ascending), e.g. test_auc, joint.valid_auc, params.prompts.count.
    #[arg(long, value_name = "FIELD")]
    pub sort: Option<String>,
    /// Sort ascending.
    #[arg(long, conflicts_with = "desc")]
    pub asc: bool,
    /// Sort descending.
    #[arg(long)]
    pub desc: bool,
    /// At most N runs (with --groups: N groups).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// One line per group (a run's repeats over seeds): runs finished/total,
    /// seeds, mean ± sample sd of test AUC, test LogLoss and best valid AUC
    /// (each run's best stage's figures).
    /// The filters select member runs; --sort takes test_auc, test_logloss or best_valid_auc.
    #[arg(long, conflicts_with_all = ["stage", "columns"])]
    pub groups: bool,
    /// Show these stages' figures (valid AUC, test AUC, test LogLoss) instead
    /// of each run's best stage, e.g. `--stage joint,ctr_only`.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub stage: Vec<String>,
    /// Extra columns: any field --sort takes, e.g. `joint.test_auc,params.prompts.count`.
    #[arg(long, value_name = "FIELD", value_delimiter = ',')]
    pub columns: Vec<String>,
    /// JSON array of run summaries (with a "fields" object for --stage/--columns;
    /// with --groups: of groups).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub db: DbArg,
    pub id: i64,
    /// The run as exported (JSON object, see docs/database.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
#[command(after_help = COMPARE_HELP)]
pub struct CompareArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Two or more run ids, or two groups: `g<id>` (from `runs list --groups`) or group names.
    #[arg(num_args = 2.., required = true, value_name = "ID")]
    pub ids: Vec<String>,
    /// Show every param, not only those that differ (runs).
    #[arg(long)]
    pub all: bool,
    /// Groups: compare these fields instead of test_auc, test_logloss and best_valid_auc
    /// (repeatable; e.g. joint.valid_auc, ctr_only.test_auc, pretrain.valid.prompt_gap).
    #[arg(long, value_name = "FIELD")]
    pub metric: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

const COMPARE_HELP: &str = "\
Groups: `runs compare g3 g5` compares group B (g5) against group A (g3). Per
metric it prints both groups' mean ± sample sd over their seeds and the paired
difference B − A over the seeds both have (the latest finished run of each
seed): its mean, standard error sd/√n, mean/SE, and on how many seeds B is
better (in the metric's direction: AUC higher, LogLoss lower), then the
per-seed differences.

Examples:
  clickprompt runs compare 12 13
  clickprompt runs compare g3 g5 --json
  clickprompt runs compare scratch clickprompt --metric test_auc --metric pretrain.valid.prompt_gap";

#[derive(Debug, clap::Args)]
pub struct BestArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// test_auc, test_logloss, best_valid_auc, <stage>.valid_auc, …
    #[arg(long, default_value = "test_auc")]
    pub metric: String,
    #[arg(long)]
    pub experiment: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Json,
    Csv,
    /// An MLflow file store (mlruns layout) in a folder.
    Mlflow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckpointArg {
    Skip,
    Link,
    Copy,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
    pub format: ExportFormat,
    /// Write to this file (json, csv) or folder (mlflow) instead of stdout.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// mlflow: checkpoints under each run's artifacts/checkpoints/ (symbolic links or copies).
    #[arg(long, value_enum, default_value_t = CheckpointArg::Skip)]
    pub checkpoints: CheckpointArg,
    /// Runs to export (default: all). With `--format mlflow` and no --output,
    /// the first is the folder: `runs export --format mlflow DIR [ID…]`.
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub db: DbArg,
    #[arg(required = true)]
    pub ids: Vec<i64>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

pub fn run(cmd: RunsCommand) -> Result<()> {
    let style = Style::detect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    execute(cmd, &mut out, style)
}

/// Runs a `runs` subcommand, writing to `out`.
pub fn execute(cmd: RunsCommand, out: &mut dyn Write, style: Style) -> Result<()> {
    match cmd {
        RunsCommand::List(a) => list(a, out, style),
        RunsCommand::Show(a) => show(a, out, style),
        RunsCommand::Compare(a) => compare(a, out, style),
        RunsCommand::Best(a) => best(a, out, style),
        RunsCommand::Export(a) => export(a, out),
        RunsCommand::Delete(a) => delete(a, out, style),
        RunsCommand::MarkInterrupted(a) => mark_interrupted(a, out),
    }
}

// ---------------------------------------------------------------- formatting

fn fmt_metric(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into())
}

fn fmt_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

/// "2026-11-29T19:00:05.123Z" → "2026-11-29 19:00:05".
fn fmt_time(ts: &str) -> String {
    ts.get(..19)
        .map(|s| s.replace('T', " "))
        .unwrap_or_else(|| ts.to_string())
}

pub(crate) fn fmt_duration(secs: Option<f64>) -> String {
    let Some(s) = secs.filter(|s| s.is_finite() && *s >= 0.0) else {
        return "-".into();
    };
    if s < 59.95 {
        format!("{s:.1}s")
    } else if s < 3599.5 {
        let s = s.round();
        let m = (s / 60.0).floor();
        format!("{}m{:02}s", m as u64, (s - m * 60.0).floor() as u64)
    } else {
        let s = s.round();
        let h = (s / 3600.0).floor();
        format!(
            "{}h{:02}m",
            h as u64,
            ((s - h * 3600.0) / 60.0).floor() as u64
        )
    }
}

fn fmt_rate(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into())
}

fn fmt_bytes(b: i64) -> String {
    let b = b as f64;
    if b < 1024.0 {
        format!("{b} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2} GiB", b / 1024.0 / 1024.0 / 1024.0)
    }
}

/// The figures of one stage for `--stage NAME`: (field, header).
fn stage_fields(stage: &str) -> [String; 3] {
    ["valid_auc", "test_auc", "test_logloss"].map(|m| format!("{stage}.{m}"))
}

/// A field value as a cell: AUC/LogLoss with 4 decimals, whole numbers as
/// such, other numbers with 4 decimals, text as it is.
fn fmt_field(name: &str, v: Option<&FieldValue>) -> String {
    match v {
        None => "-".into(),
        Some(FieldValue::Text(t)) => t.clone(),
        Some(FieldValue::Num(x)) => {
            let metric = name.ends_with("auc") || name.ends_with("logloss");
            if !metric && x.fract() == 0.0 && x.abs() < 1e15 {
                format!("{}", *x as i64)
            } else {
                format!("{x:.4}")
            }
        }
    }
}

/// The runs table: run columns, then the best stage's figures (or, when
/// `fields` replace them, those), then any extra field columns.
fn runs_table(
    runs: &[(RunSummary, Vec<Option<FieldValue>>)],
    fields: &[String],
    replace_figures: bool,
    style: Style,
) -> String {
    let mut head: Vec<&str> = vec![
        "ID",
        "EXPERIMENT",
        "SWEEP",
        "SEED",
        "STATUS",
        "STARTED (UTC)",
        "DURATION",
    ];
    if !replace_figures {
        head.extend(["BEST STAGE", "VALID AUC", "TEST AUC", "TEST LOGLOSS"]);
    }
    let fixed = head.len();
    head.extend(fields.iter().map(String::as_str));
    let mut right: Vec<usize> = vec![0, 3, 6];
    if !replace_figures {
        right.extend([8, 9, 10]);
    }
    for (i, _) in fields.iter().enumerate() {
        let numeric = runs
            .iter()
            .any(|(_, v)| matches!(v.get(i), Some(Some(FieldValue::Num(_)))));
        if numeric {
            right.push(fixed + i);
        }
    }
    let mut t = Table::new(&head, &right);
    for (r, values) in runs {
        let mut row: Vec<Cell> = vec![
            r.id.to_string().into(),
            r.experiment.clone().into(),
            r.sweep_point.clone().unwrap_or_else(|| "-".into()).into(),
            r.seed.to_string().into(),
            Cell::painted(r.status.clone(), table::status_paint(&r.status)),
            fmt_time(&r.started_at).into(),
            fmt_duration(r.duration_s).into(),
        ];
        if !replace_figures {
            row.extend([
                Cell::from(r.best_stage.clone().unwrap_or_else(|| "-".into())),
                fmt_metric(r.best_valid_auc).into(),
                fmt_metric(r.test_auc).into(),
                fmt_metric(r.test_logloss).into(),
            ]);
        }
        for (i, name) in fields.iter().enumerate() {
            row.push(fmt_field(name, values.get(i).and_then(Option::as_ref)).into());
        }
        t.push(row);
    }
    t.render(style)
}

/// A run of `runs list --json`: its summary, and the fields asked for.
#[derive(serde::Serialize)]
struct ListedRun<'a> {
    #[serde(flatten)]
    summary: &'a RunSummary,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    fields: BTreeMap<&'a str, Option<&'a FieldValue>>,
}

fn json_line(out: &mut dyn Write, value: &impl serde::Serialize) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).context("writing JSON")?;
    writeln!(out)?;
    Ok(())
}

// ---------------------------------------------------------------- list

fn list(a: ListArgs, out: &mut dyn Write, style: Style) -> Result<()> {
    let store = a.db.open()?;
    let descending = if a.asc {
        Some(false)
    } else if a.desc {
        Some(true)
    } else {
        None
    };
    if a.groups {
        // The filters pick member runs; sorting and the limit apply to groups.
        let runs = store.list_runs(&RunFilter {
            experiment: a.experiment,
            status: a.status,
            where_expr: a.where_expr,
            ..RunFilter::default()
        })?;
        let mut lines = groups::group_lines(&runs);
        groups::sort_groups(&mut lines, a.sort.as_deref(), descending)?;
        if let Some(n) = a.limit {
            lines.truncate(n);
        }
        if lines.is_empty() && !a.json {
            writeln!(out, "no runs match in {}", store.target())?;
            return Ok(());
        }
        return groups::list(&lines, a.json, out, style);
    }
    let filter = RunFilter {
        experiment: a.experiment,
        status: a.status,
        where_expr: a.where_expr,
        sort: a.sort,
        descending,
        limit: a.limit,
    };
    let mut fields: Vec<String> = Vec::new();
    let stages: Vec<&str> = a
        .stage
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if !stages.is_empty() {
        let known = store.stage_names()?;
        for st in &stages {
            if !known.iter().any(|k| k == st) {
                let hint = crate::store::suggest_name(st, &known);
                let there = if known.is_empty() {
                    "no run has recorded a stage yet".to_string()
                } else {
                    format!("stages: {}", known.join(", "))
                };
                return Err(invalid(format!(
                    "invalid --stage `{st}`: no run has a stage `{st}`{hint}; {there}"
                )));
            }
            fields.extend(stage_fields(st));
        }
    }
    fields.extend(
        a.columns
            .iter()
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty()),
    );
    let runs = store.list_runs_with(&filter, &fields)?;
    if a.json {
        let listed: Vec<ListedRun> = runs
            .iter()
            .map(|(summary, values)| ListedRun {
                summary,
                fields: fields
                    .iter()
                    .map(String::as_str)
                    .zip(values.iter().map(Option::as_ref))
                    .collect(),
            })
            .collect();
        return json_line(out, &listed);
    }
    if runs.is_empty() {
        writeln!(out, "no runs match in {}", store.target())?;
        return Ok(());
    }
    write!(
        out,
        "{}",
        runs_table(&runs, &fields, !stages.is_empty(), style)
    )?;
    Ok(())
}

// ---------------------------------------------------------------- show

fn show(a: ShowArgs, out: &mut dyn Write, style: Style) -> Result<()> {
    let store = a.db.open()?;
    if a.json {
        return json_line(out, &store.export_run(a.id)?);
    }
    let d = store.run_detail(a.id)?;
    let s = &d.summary;
    let b = |k: &str| style.paint(Paint::Bold, k);
    writeln!(out, "{} {}  {}", b("run"), s.id, style.status(&s.status))?;
    let mut kv: Vec<(&str, String)> = vec![
        ("experiment", s.experiment.clone()),
        ("name", s.name.clone()),
        ("sweep", s.sweep_point.clone().unwrap_or_else(|| "-".into())),
        ("group", group_line(&store, s)?),
        (
            "source",
            format!(
                "{} (sha256 {})",
                d.source_path,
                d.file_hash.get(..12).unwrap_or(&d.file_hash)
            ),
        ),
        ("started", format!("{} UTC", fmt_time(&s.started_at))),
        (
            "ended",
            s.ended_at
                .as_deref()
                .map(|e| format!("{} UTC", fmt_time(e)))
                .unwrap_or_else(|| "-".into()),
        ),
        ("duration", fmt_duration(s.duration_s)),
        ("device", s.device.clone()),
        ("host", format!("{} (pid {})", s.host, d.pid)),
        ("seed", s.seed.to_string()),
        ("version", s.crate_version.clone()),
    ];
    if d.resumed > 0 {
        kv.push(("resumed", format!("{} time(s)", d.resumed)));
    }
    if let Some(e) = &s.error {
        kv.push(("error", e.clone()));
    }
    kv.push((
        "result",
        format!(
            "best stage {}: valid AUC {}, test AUC {}, test LogLoss {}",
            s.best_stage.as_deref().unwrap_or("-"),
            fmt_metric(s.best_valid_auc),
            fmt_metric(s.test_auc),
            fmt_metric(s.test_logloss)
        ),
    ));
    for (k, v) in &kv {
        writeln!(out, "  {:<11}{}", format!("{k}:"), v)?;
    }

    writeln!(out, "\n{}", b("stages"))?;
    if d.stages.is_empty() {
        writeln!(out, "  (none recorded)")?;
    } else {
        let mut t = Table::new(
            &[
                "STAGE",
                "KIND",
                "STATUS",
                "EPOCHS",
                "STEPS",
                "BEST EPOCH",
                "TIME",
                "TRAIN SAMPLES/S",
                "INFER SAMPLES/S",
            ],
            &[3, 4, 5, 6, 7, 8],
        );
        for st in &d.stages {
            let total = st.epochs * st.steps_per_epoch;
            t.push(vec![
                st.stage.clone().into(),
                st.kind.clone().into(),
                Cell::painted(st.status.clone(), table::status_paint(&st.status)),
                st.epochs.to_string().into(),
                format!("{}/{}", st.last_step, total).into(),
                fmt_opt(st.best_epoch).into(),
                fmt_duration(st.seconds).into(),
                fmt_rate(st.train_samples_per_s).into(),
                fmt_rate(st.infer_samples_per_s).into(),
            ]);
        }
        write!(out, "{}", indent(&t.render(style)))?;
    }

    writeln!(out, "\n{}", b("evaluations"))?;
    if d.evaluations.is_empty() {
        writeln!(out, "  (none recorded)")?;
    } else {
        let mut t = Table::new(
            &["STAGE", "EPOCH", "SPLIT", "AUC", "LOGLOSS", "OTHER"],
            &[1, 3, 4],
        );
        for e in &d.evaluations {
            let best = d
                .stages
                .iter()
                .any(|st| st.stage == e.stage && st.best_epoch == Some(e.epoch))
                && e.split == "valid";
            let other: Vec<String> = e
                .metrics
                .iter()
                .filter(|(k, _)| !gaps::is_per_field(k))
                .map(|(k, v)| format!("{k}={}", fmt_metric(*v)))
                .collect();
            t.push(vec![
                e.stage.clone().into(),
                e.epoch.to_string().into(),
                e.split.clone().into(),
                if best {
                    Cell::painted(format!("{}*", fmt_metric(e.auc)), Paint::Best)
                } else {
                    fmt_metric(e.auc).into()
                },
                fmt_metric(e.logloss).into(),
                other.join(" ").into(),
            ]);
        }
        write!(out, "{}", indent(&t.render(style)))?;
        writeln!(out, "  * best epoch")?;
    }
    for st in &d.stages {
        let rows = gaps::prompt_gaps(st, &d.evaluations);
        if rows.len() < 2 {
            continue;
        }
        writeln!(
            out,
            "\n{}",
            b(&format!(
                "prompt gap of stage {} (masked-token accuracy, validation)",
                st.stage
            ))
        )?;
        let mut t = Table::new(
            &["FIELD", "TOKENS", "WITH PROMPTS", "ZEROED", "GAP"],
            &[1, 2, 3, 4],
        );
        for (field, n, a, a0, gap) in rows {
            t.push(vec![
                field.into(),
                format!("{n:.0}").into(),
                format!("{a:.4}").into(),
                format!("{a0:.4}").into(),
                format!("{:+.2} pt", 100.0 * gap).into(),
            ]);
        }
        write!(out, "{}", indent(&t.render(style)))?;
    }

    if !d.artifacts.is_empty() {
        writeln!(out, "\n{}", b("artifacts"))?;
        let mut t = Table::new(&["STAGE", "EPOCH", "SIZE", "SHA256", "PATH"], &[1, 2]);
        for x in &d.artifacts {
            t.push(vec![
                x.stage.clone().into(),
                fmt_opt(x.epoch).into(),
                fmt_bytes(x.bytes).into(),
                x.sha256.get(..12).unwrap_or(&x.sha256).to_string().into(),
                x.path.clone().into(),
            ]);
        }
        write!(out, "{}", indent(&t.render(style)))?;
    }

    if !d.logs.is_empty() {
        writeln!(out, "\n{}", b("log (last lines)"))?;
        for l in &d.logs {
            let level = match l.level.as_str() {
                "warn" => style.paint(Paint::Yellow, "warn "),
                "error" => style.paint(Paint::Red, "error"),
                _ => style.paint(Paint::Dim, "info "),
            };
            writeln!(out, "  {} {level} {}", fmt_time(&l.ts), l.message)?;
        }
    }

    writeln!(out, "\n{}", b("plan"))?;
    for line in d.plan_yaml.lines() {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

/// `g3 scratch (3 runs, seeds 1,2,3)` for `runs show`.
fn group_line(store: &Store, s: &RunSummary) -> Result<String> {
    let Some(id) = s.group_id else {
        return Ok("-".into());
    };
    let runs = store.group_runs(id)?;
    let mut seeds: Vec<u64> = runs.iter().map(|r| r.seed).collect();
    seeds.sort();
    seeds.dedup();
    let seeds: Vec<String> = seeds.iter().map(u64::to_string).collect();
    Ok(format!(
        "g{id} {} ({} run{}, seeds {}; `runs list --groups`)",
        s.group_name.as_deref().unwrap_or(&s.name),
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        seeds.join(",")
    ))
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

// ---------------------------------------------------------------- compare

#[derive(serde::Serialize)]
struct CompareDoc {
    runs: Vec<i64>,
    params: Vec<CompareRow<String>>,
    metrics: Vec<CompareMetric>,
}

#[derive(serde::Serialize)]
struct CompareRow<T> {
    key: String,
    values: Vec<Option<T>>,
}

#[derive(serde::Serialize)]
struct CompareMetric {
    stage: String,
    metric: &'static str,
    values: Vec<Option<f64>>,
    /// Index into `runs` of the best value (None when no run has one).
    best: Option<usize>,
}

/// (label, key, better) of the per-stage metrics compared.
const COMPARED: &[(&str, &str, Better)] = &[
    ("best valid AUC", "best_valid_auc", Better::Higher),
    ("best valid LogLoss", "best_valid_logloss", Better::Lower),
    ("test AUC", "test_auc", Better::Higher),
    ("test LogLoss", "test_logloss", Better::Lower),
    ("time (s)", "seconds", Better::Lower),
    ("train samples/s", "train_samples_per_s", Better::Higher),
];

fn stage_metric(e: &RunExport, stage: &str, key: &str) -> Option<f64> {
    let st = e.stages.iter().find(|s| s.name == stage)?;
    let split = |sp: &'static str| st.evaluations.iter().filter(move |v| v.split == sp);
    let best = |it: &mut dyn Iterator<Item = f64>, higher: bool| {
        it.fold(None, |m: Option<f64>, v| {
            Some(m.map_or(v, |m| if higher { m.max(v) } else { m.min(v) }))
        })
    };
    let test = || split("test").max_by_key(|v| v.epoch);
    match key {
        "best_valid_auc" => best(&mut split("valid").filter_map(|v| v.auc), true),
        "best_valid_logloss" => best(&mut split("valid").filter_map(|v| v.logloss), false),
        "test_auc" => test().and_then(|v| v.auc),
        "test_logloss" => test().and_then(|v| v.logloss),
        "seconds" => st.seconds,
        "train_samples_per_s" => st.train_samples_per_s,
        _ => None,
    }
}

fn best_index(values: &[Option<f64>], better: Better) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, v) in values.iter().enumerate() {
        let Some(v) = *v else { continue };
        let take = match best {
            None => true,
            Some((_, b)) => match better {
                Better::Higher => v > b,
                Better::Lower => v < b,
                Better::Neither => false,
            },
        };
        if take {
            best = Some((i, v));
        }
    }
    // A single value is not a comparison, and a tie for best has no winner.
    let with_values = values.iter().filter(|v| v.is_some()).count();
    let (i, b) = best.filter(|_| with_values > 1)?;
    let ties = values.iter().filter(|v| **v == Some(b)).count();
    (ties == 1).then_some(i)
}

fn compare(a: CompareArgs, out: &mut dyn Write, style: Style) -> Result<()> {
    let group_refs: Vec<Option<groups::GroupRef>> =
        a.ids.iter().map(|s| groups::GroupRef::parse(s)).collect();
    if group_refs.iter().any(Option::is_some) {
        let refs: Vec<groups::GroupRef> = group_refs.into_iter().flatten().collect();
        if refs.len() != a.ids.len() {
            return Err(invalid(
                "runs compare takes run ids (numbers) or groups (`g<id>` or a group name), not both",
            ));
        }
        let [ga, gb] = refs.as_slice() else {
            return Err(invalid(format!(
                "runs compare compares exactly two groups (A then B), got {}",
                refs.len()
            )));
        };
        let store = a.db.open()?;
        let doc = groups::comparison(&store, ga, gb, &a.metric)?;
        if a.json {
            return json_line(out, &doc);
        }
        return groups::print_comparison(&doc, out, style);
    }
    if !a.metric.is_empty() {
        return Err(invalid(
            "--metric applies to groups (`runs compare g3 g5 --metric test_auc`)",
        ));
    }
    let ids: Vec<i64> = a
        .ids
        .iter()
        .map(|s| s.parse::<i64>())
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("invalid run id: {e}")))?;
    let store = a.db.open()?;
    let runs: Vec<RunExport> = ids
        .iter()
        .map(|&id| store.export_run(id))
        .collect::<Result<_>>()?;

    let mut keys: Vec<&String> = runs.iter().flat_map(|r| r.params.keys()).collect();
    keys.sort();
    keys.dedup();
    let total_params = keys.len();
    let params: Vec<CompareRow<String>> = keys
        .into_iter()
        .map(|k| CompareRow {
            key: k.clone(),
            values: runs.iter().map(|r| r.params.get(k).cloned()).collect(),
        })
        .filter(|row| a.all || row.values.iter().any(|v| v != &row.values[0]))
        .collect();

    let mut stages: Vec<String> = Vec::new();
    for r in &runs {
        for s in &r.stages {
            if !stages.contains(&s.name) {
                stages.push(s.name.clone());
            }
        }
    }
    let mut metrics = Vec::new();
    for st in &stages {
        for (_, key, better) in COMPARED {
            let values: Vec<Option<f64>> = runs.iter().map(|r| stage_metric(r, st, key)).collect();
            if values.iter().all(Option::is_none) {
                continue;
            }
            metrics.push(CompareMetric {
                stage: st.clone(),
                metric: key,
                best: best_index(&values, *better),
                values,
            });
        }
    }

    if a.json {
        return json_line(
            out,
            &CompareDoc {
                runs: ids.clone(),
                params,
                metrics,
            },
        );
    }

    let run_heads: Vec<String> = runs.iter().map(|r| format!("#{}", r.id)).collect();
    let mut head: Vec<&str> = vec![""];
    head.extend(run_heads.iter().map(String::as_str));
    let mut t = Table::new(&head, &[]);
    for (label, f) in [
        (
            "experiment",
            &(|r: &RunExport| r.experiment.clone()) as &dyn Fn(&RunExport) -> String,
        ),
        ("sweep", &|r: &RunExport| {
            r.sweep_point.clone().unwrap_or_else(|| "-".into())
        }),
        ("status", &|r: &RunExport| r.status.clone()),
        ("started", &|r: &RunExport| fmt_time(&r.started_at)),
        ("duration", &|r: &RunExport| fmt_duration(r.duration_s)),
    ] {
        let mut row: Vec<Cell> = vec![Cell::painted(label, Paint::Bold)];
        row.extend(runs.iter().map(|r| Cell::from(f(r))));
        t.push(row);
    }
    write!(out, "{}", t.render(style))?;

    let b = |k: &str| style.paint(Paint::Bold, k);
    if a.all {
        writeln!(out, "\n{} ({})", b("params"), total_params)?;
    } else {
        writeln!(
            out,
            "\n{} ({} of {})",
            b("params that differ"),
            params.len(),
            total_params
        )?;
    }
    if params.is_empty() {
        writeln!(out, "  (none: the runs have identical params)")?;
    } else {
        let mut head: Vec<&str> = vec!["KEY"];
        head.extend(run_heads.iter().map(String::as_str));
        let mut t = Table::new(&head, &[]);
        for p in &params {
            let mut row: Vec<Cell> = vec![p.key.clone().into()];
            row.extend(
                p.values
                    .iter()
                    .map(|v| Cell::from(v.clone().unwrap_or_else(|| "-".into()))),
            );
            t.push(row);
        }
        write!(out, "{}", indent(&t.render(style)))?;
    }

    writeln!(out, "\n{}", b("final metrics per stage"))?;
    if metrics.is_empty() {
        writeln!(out, "  (no evaluations recorded)")?;
    } else {
        let mut head: Vec<&str> = vec!["STAGE", "METRIC"];
        head.extend(run_heads.iter().map(String::as_str));
        let right: Vec<usize> = (2..2 + runs.len()).collect();
        let mut t = Table::new(&head, &right);
        for m in &metrics {
            let label = COMPARED
                .iter()
                .find(|c| c.1 == m.metric)
                .map(|c| c.0)
                .unwrap_or(m.metric);
            let mut row: Vec<Cell> = vec![m.stage.clone().into(), label.into()];
            for (i, v) in m.values.iter().enumerate() {
                let text = match m.metric {
                    "seconds" => v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into()),
                    "train_samples_per_s" => fmt_rate(*v),
                    _ => fmt_metric(*v),
                };
                row.push(if m.best == Some(i) {
                    Cell::painted(format!("{text}*"), Paint::Best)
                } else {
                    Cell::from(format!("{text} "))
                });
            }
            t.push(row);
        }
        write!(out, "{}", indent(&t.render(style)))?;
        writeln!(out, "  * best")?;
    }
    Ok(())
}

// ---------------------------------------------------------------- best

fn best(a: BestArgs, out: &mut dyn Write, style: Style) -> Result<()> {
    let store = a.db.open()?;
    let better = store::field_better(&a.metric)?;
    let Some(run) = store.best_run(&a.metric, a.experiment.as_deref())? else {
        let scope = a
            .experiment
            .map(|x| format!(" of experiment `{x}`"))
            .unwrap_or_default();
        return Err(invalid(format!(
            "no run{scope} in {} has a value for `{}`",
            store.target(),
            a.metric
        )));
    };
    if a.json {
        return json_line(out, &run);
    }
    let value = store
        .field_value(run.id, &a.metric)?
        .unwrap_or_else(|| "-".into());
    let value = value
        .parse::<f64>()
        .map(|v| format!("{v:.4}"))
        .unwrap_or(value);
    let dir = if better == Better::Higher {
        "higher"
    } else {
        "lower"
    };
    writeln!(
        out,
        "best by {} ({dir} is better): run {} with {}",
        a.metric,
        run.id,
        style.paint(Paint::Best, &value)
    )?;
    write!(
        out,
        "{}",
        runs_table(&[(run, Vec::new())], &[], false, style)
    )?;
    Ok(())
}

// ---------------------------------------------------------------- export

fn run_ids(args: &[String]) -> Result<Vec<i64>> {
    args.iter()
        .map(|a| {
            a.trim()
                .parse::<i64>()
                .map_err(|_| invalid(format!("invalid run id `{a}`: run ids are whole numbers")))
        })
        .collect()
}

fn export(a: ExportArgs, out: &mut dyn Write) -> Result<()> {
    if a.format == ExportFormat::Mlflow {
        return export_mlflow(a, out);
    }
    if a.checkpoints != CheckpointArg::Skip {
        return Err(invalid(
            "--checkpoints goes with --format mlflow (JSON and CSV list checkpoints by path)",
        ));
    }
    let ids = run_ids(&a.ids)?;
    let store = a.db.open()?;
    let doc = store.export(&ids)?;
    let text = match a.format {
        ExportFormat::Csv => store::to_csv(&doc),
        _ => serde_json::to_string_pretty(&doc).context("rendering JSON")? + "\n",
    };
    match &a.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("exported {} run(s) to {}", doc.runs.len(), path.display());
        }
        None => out.write_all(text.as_bytes())?,
    }
    Ok(())
}

fn export_mlflow(a: ExportArgs, out: &mut dyn Write) -> Result<()> {
    let (dir, ids) = match (&a.output, a.ids.split_first()) {
        (Some(dir), _) => (dir.clone(), run_ids(&a.ids)?),
        (None, Some((dir, rest))) => (PathBuf::from(dir), run_ids(rest)?),
        (None, None) => return Err(invalid(
            "--format mlflow writes a folder: `clickprompt runs export --format mlflow DIR [ID…]`",
        )),
    };
    let store = a.db.open()?;
    let mode = match a.checkpoints {
        CheckpointArg::Skip => store::CheckpointMode::Skip,
        CheckpointArg::Link => store::CheckpointMode::Link,
        CheckpointArg::Copy => store::CheckpointMode::Copy,
    };
    let r = store.export_mlflow(&ids, &dir, mode)?;
    writeln!(
        out,
        "exported {} run(s) in {} experiment(s), {} metric values, to the MLflow file store {}",
        r.runs,
        r.experiments,
        r.metric_values,
        r.dir.display()
    )?;
    if mode != store::CheckpointMode::Skip {
        writeln!(
            out,
            "checkpoints: {} {}{}",
            r.checkpoints,
            if mode == store::CheckpointMode::Link {
                "linked"
            } else {
                "copied"
            },
            if r.checkpoints_missing > 0 {
                format!(", {} no longer on disk", r.checkpoints_missing)
            } else {
                String::new()
            }
        )?;
    }
    if r.params_truncated > 0 {
        writeln!(
            out,
            "note: {} param value(s) cut to MLflow's {} characters",
            r.params_truncated,
            store::MAX_PARAM_CHARS
        )?;
    }
    writeln!(
        out,
        "browse: MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {}",
        r.dir.display()
    )?;
    Ok(())
}

// ---------------------------------------------------------------- delete

fn delete(a: DeleteArgs, out: &mut dyn Write, style: Style) -> Result<()> {
    let store = a.db.open()?;
    let mut ids = a.ids.clone();
    ids.sort();
    ids.dedup();
    let runs: Vec<RunSummary> = ids
        .iter()
        .map(|&id| store.run_summary(id))
        .collect::<Result<_>>()?;
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            return Err(invalid(
                "refusing to delete without confirmation: stdin is not a terminal; pass --yes to delete",
            ));
        }
        let rows: Vec<(RunSummary, Vec<Option<FieldValue>>)> =
            runs.iter().map(|r| (r.clone(), Vec::new())).collect();
        write!(out, "{}", runs_table(&rows, &[], false, style))?;
        out.flush()?;
        eprint!(
            "Delete {} run(s) and all their metrics, evaluations and artifacts records? [y/N] ",
            runs.len()
        );
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .context("reading the answer")?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            writeln!(out, "nothing deleted")?;
            return Ok(());
        }
    }
    let n = store.delete_runs(&ids)?;
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    writeln!(out, "deleted {n} run(s): {}", list.join(", "))?;
    Ok(())
}

// ---------------------------------------------------------------- mark-interrupted

fn mark_interrupted(a: MarkArgs, out: &mut dyn Write) -> Result<()> {
    let store = a.db.open()?;
    let mut ids = a.ids.clone();
    ids.dedup();
    for id in ids {
        store.mark_interrupted(id, a.force)?;
        writeln!(
            out,
            "run {id} marked INTERRUPTED (continue it with `clickprompt run --resume {id}`)"
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        assert_eq!(fmt_duration(Some(12.34)), "12.3s");
        assert_eq!(fmt_duration(Some(185.0)), "3m05s");
        assert_eq!(fmt_duration(Some(3720.0)), "1h02m");
        assert_eq!(fmt_duration(None), "-");
        assert_eq!(fmt_time("2026-11-29T19:00:05.123Z"), "2026-11-29 19:00:05");
        assert_eq!(fmt_bytes(2048), "2.0 KiB");
    }

    #[test]
    fn best_index_respects_direction_and_needs_two_values() {
        assert_eq!(
            best_index(&[Some(0.7), Some(0.8), None], Better::Higher),
            Some(1)
        );
        assert_eq!(best_index(&[Some(0.5), Some(0.4)], Better::Lower), Some(1));
        assert_eq!(best_index(&[Some(0.5), None], Better::Lower), None);
        assert_eq!(
            best_index(&[Some(0.5), Some(0.5), Some(0.1)], Better::Higher),
            None
        );
    }
}
