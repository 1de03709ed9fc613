//! `StoreSource`: the dashboard's `DataSource` over the run database (a
//! SQLite file opened read-only, or a PostgreSQL database).

use std::collections::{HashMap, VecDeque};

use anyhow::Context;
use chrono::Utc;
use clickprompt_tui::{
    DataSource, EpochEval, GroupComparison, GroupSummary, LogLevel, LogLine, RunDetail, RunStatus,
    RunSummary, Split, StageFigures, StageProgress, StageSeries, StageState,
};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use sqlx::{ConnectOptions, Executor, Row};

use super::groups;
use super::rows;
use crate::store::{connect_options, read_only_snapshot, runtime, DbTarget, SqliteMode};

/// Log lines kept per run (the view shows the last screenful).
const LOG_KEEP: usize = 500;
/// Metric rows read per query; a refresh reads at most `METRIC_ROUNDS` of
/// them so catching up on a long run never freezes the screen.
const METRIC_BATCH: i64 = 20_000;
const METRIC_ROUNDS: usize = 2;

/// What has been read of one run so far.
#[derive(Default)]
struct RunCache {
    last_metric: i64,
    last_log: i64,
    series: Vec<StageSeries>,
    /// Per stage: (epoch, step) of the newest step, and the first step's time.
    progress: HashMap<String, (usize, usize)>,
    first_ts: HashMap<String, String>,
    logs: VecDeque<LogLine>,
    params: Vec<(String, String)>,
    /// Stages the plan declares (name, kind, epochs), read once.
    planned: Option<Vec<(String, String, usize)>>,
}

pub struct StoreSource {
    target: DbTarget,
    /// A missing file or schema reads as "no runs yet" (the run being started
    /// next to the dashboard creates it) instead of an error.
    wait_for_file: bool,
    rt: tokio::runtime::Runtime,
    conn: Option<AnyConnection>,
    cache: HashMap<i64, RunCache>,
    /// The database has run groups (migration 0003); once seen, for good.
    has_groups: bool,
}

impl StoreSource {
    /// Opens an existing run database for reading (`clickprompt dash`).
    pub fn open(db: impl Into<DbTarget>) -> anyhow::Result<StoreSource> {
        let target = db.into();
        if let DbTarget::Sqlite(path) = &target {
            if !path.exists() {
                return Err(crate::error::invalid(format!(
                    "no run database at {} (runs are recorded by `clickprompt run`; pass --db PATH|URL or set CLICKPROMPT_DB)",
                    path.display()
                )));
            }
        }
        let mut src = StoreSource::new(target, false)?;
        src.connect()
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("opening the run database {}", src.target))?;
        src.runs().map_err(|e| {
            crate::error::invalid(format!(
                "{} is not a clickprompt run database ({e})",
                src.target
            ))
        })?;
        Ok(src)
    }

    /// Watches `db`, which may not exist yet (`run --dash`).
    pub fn watch(db: impl Into<DbTarget>) -> anyhow::Result<StoreSource> {
        StoreSource::new(db.into(), true)
    }

    fn new(target: DbTarget, wait_for_file: bool) -> anyhow::Result<StoreSource> {
        // Fail early on a URL this build cannot use.
        connect_options(&target, SqliteMode::ReadOnly)?;
        Ok(StoreSource {
            target,
            wait_for_file,
            rt: runtime("clickprompt-dash-db")?,
            conn: None,
            cache: HashMap::new(),
            has_groups: false,
        })
    }

    pub fn target(&self) -> &DbTarget {
        &self.target
    }

    /// The highest run id recorded so far (0 for none or no database).
    pub fn max_run_id(&mut self) -> i64 {
        self.runs()
            .ok()
            .and_then(|r| r.iter().map(|r| r.id).max())
            .unwrap_or(0)
    }

    fn connect(&mut self) -> Result<(), String> {
        if self.conn.is_some() {
            return Ok(());
        }
        let shown = self.target.to_string();
        let conn = match self.connect_as(SqliteMode::ReadOnly) {
            Ok(conn) => Ok(conn),
            // On read-only storage SQLite cannot create the WAL's `-shm`
            // file; with an empty WAL the file alone is the database.
            Err(_) if self.target.sqlite_path().is_some_and(read_only_snapshot) => {
                self.connect_as(SqliteMode::Snapshot)
            }
            Err(e) => Err(e),
        }
        .map_err(|e| format!("opening {shown}: {e}"))?;
        self.conn = Some(conn);
        Ok(())
    }

    fn connect_as(&self, mode: SqliteMode) -> Result<AnyConnection, String> {
        let opts = connect_options(&self.target, mode)
            .map_err(|e| e.to_string())?
            .disable_statement_logging();
        let sqlite = self.target.sqlite_path().is_some();
        self.rt
            .block_on(async move {
                let mut conn = opts.connect().await?;
                if sqlite {
                    conn.execute("PRAGMA busy_timeout = 2000").await?;
                    // Opening is lazy: reading the schema is what finds out
                    // whether the WAL's `-shm` file can be had.
                    conn.execute("SELECT COUNT(*) FROM sqlite_master").await?;
                }
                Ok::<_, sqlx::Error>(conn)
            })
            .map_err(|e| e.to_string())
    }

    fn query(&mut self, sql: &str, binds: &[i64]) -> Result<Vec<AnyRow>, String> {
        self.connect()?;
        let Some(conn) = self.conn.as_mut() else {
            return Err("no database connection".into());
        };
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(*b);
        }
        let res = self.rt.block_on(q.fetch_all(&mut *conn));
        res.map_err(|e| {
            // A dropped connection (file replaced) reconnects next time.
            if matches!(e, sqlx::Error::Io(_)) {
                self.conn = None;
            }
            e.to_string()
        })
    }

    /// Whether the database has run groups. A database written before
    /// migration 0003 has none until a `clickprompt` command that writes
    /// (or `runs …`) upgrades it; the dashboard only reads.
    fn groups_ready(&mut self) -> Result<bool, String> {
        if !self.has_groups {
            // Migration 0003 made them, on either backend.
            let rows = self.query(
                "SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE version = 3 AND success",
                &[],
            )?;
            self.has_groups = match rows.first() {
                Some(r) => get::<i64>(r, "n")? > 0,
                None => false,
            };
        }
        Ok(self.has_groups)
    }

    /// The runs of every group (or of the groups in `only`), oldest first.
    fn group_rows(&mut self, only: &[i64]) -> Result<Vec<groups::Row>, String> {
        if !self.groups_ready()? {
            return Err(format!(
                "{} predates run groups; `clickprompt runs list --db {}` upgrades it",
                self.target, self.target
            ));
        }
        let filter = match only.len() {
            0 => String::new(),
            n => format!(
                " AND s.group_id IN ({})",
                (1..=n)
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let sql = format!("{}{filter} ORDER BY s.id", groups::MEMBER_SQL);
        let rows = self.query(&sql, only)?;
        rows.iter()
            .map(|r| {
                Ok(groups::Row {
                    group_id: get(r, "group_id")?,
                    group: get(r, "group_name")?,
                    experiment: get(r, "experiment")?,
                    member: crate::stats::Member {
                        run_id: get(r, "id")?,
                        seed: get::<i64>(r, "seed")? as u64,
                        finished: get::<String>(r, "status")? == "FINISHED",
                        values: vec![
                            get(r, "test_auc")?,
                            get(r, "test_logloss")?,
                            get(r, "best_valid_auc")?,
                        ],
                    },
                })
            })
            .collect()
    }

    fn summaries(
        &mut self,
        only: Option<i64>,
    ) -> Result<Vec<(RunSummary, Option<String>)>, String> {
        let filter = if only.is_some() {
            "WHERE r.id = $1"
        } else {
            ""
        };
        // Older databases have no groups: the runs still show.
        let (group_cols, group_join) = if self.groups_ready()? {
            (
                "r.group_id AS group_id, g.name AS group_name",
                "LEFT JOIN run_groups g ON g.id = r.group_id",
            )
        } else {
            ("NULL AS group_id, NULL AS group_name", "")
        };
        let sql = format!(
            "SELECT r.id, x.name AS experiment, r.name, r.sweep_point, r.status, r.device,
                    r.started_at, r.ended_at, r.host, r.pid, r.proc_start, r.error,
                    {group_cols}
               FROM runs r JOIN experiments x ON x.id = r.experiment_id {group_join}
               {filter} ORDER BY r.id"
        );
        let binds: Vec<i64> = only.into_iter().collect();
        let rows = self.query(&sql, &binds)?;
        let eval_filter = if only.is_some() {
            "AND e.run_id = $1"
        } else {
            ""
        };
        let evals = self.query(
            &format!(
                "SELECT e.run_id, e.stage, e.split, e.auc, e.logloss FROM evaluations e
                   LEFT JOIN stages st ON st.run_id = e.run_id AND st.stage = e.stage
                  WHERE e.split IN ('valid', 'test') {eval_filter}
                  ORDER BY e.run_id, st.ord, e.stage, e.epoch"
            ),
            &binds,
        )?;
        let mut figures: HashMap<i64, Vec<StageFigures>> = HashMap::new();
        for e in &evals {
            let stages = figures.entry(get::<i64>(e, "run_id")?).or_default();
            let stage: String = get(e, "stage")?;
            let auc: Option<f64> = get(e, "auc")?;
            rows::add_evaluation(
                stages,
                stage,
                &get::<String>(e, "split")?,
                auc,
                get(e, "logloss")?,
            );
        }
        let now = Utc::now();
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = get(r, "id")?;
            let host: String = get(r, "host")?;
            let pid: i64 = get(r, "pid")?;
            let proc_start: Option<String> = get(r, "proc_start")?;
            let status = rows::run_status(&get::<String>(r, "status")?, || {
                rows::process_alive(&host, pid, proc_start.as_deref())
            });
            let started_at: String = get(r, "started_at")?;
            let ended_at: Option<String> = get(r, "ended_at")?;
            // A lost run has no end time; its last sign of life is unknown,
            // so no duration rather than one that keeps growing.
            let duration_s = if status == RunStatus::Lost && ended_at.is_none() {
                None
            } else {
                rows::seconds_between(&started_at, ended_at.as_deref(), now)
            };
            let stages = rows::with_auc(figures.remove(&id).unwrap_or_default());
            let best = StageFigures::best(&stages).cloned().unwrap_or_default();
            out.push((
                RunSummary {
                    id,
                    experiment: get(r, "experiment")?,
                    name: get(r, "name")?,
                    sweep_point: get(r, "sweep_point")?,
                    status,
                    device: get(r, "device")?,
                    started_at,
                    duration_s,
                    best_stage: (!best.stage.is_empty()).then_some(best.stage),
                    test_auc: best.test_auc,
                    test_logloss: best.test_logloss,
                    stages,
                    group_id: get(r, "group_id")?,
                    group: get(r, "group_name")?,
                },
                get::<Option<String>>(r, "error")?,
            ));
        }
        Ok(out)
    }

    /// Reads the metric and log rows added since the last poll of `id`.
    fn poll_new_rows(&mut self, id: i64) -> Result<(), String> {
        let mut cache = self.cache.remove(&id).unwrap_or_default();
        let res = self.poll_into(id, &mut cache);
        self.cache.insert(id, cache);
        res
    }

    fn poll_into(&mut self, id: i64, c: &mut RunCache) -> Result<(), String> {
        for _ in 0..METRIC_ROUNDS {
            let rows = self.query(
                "SELECT id, stage, epoch, step, key, value, ts FROM metrics
                  WHERE run_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                &[id, c.last_metric, METRIC_BATCH],
            )?;
            let n = rows.len();
            for r in &rows {
                // By index and borrowed: this loop runs per stored step.
                c.last_metric = at(r, 0)?;
                let stage: &str = at(r, 1)?;
                let epoch: Option<i64> = at(r, 2)?;
                let step: i64 = at(r, 3)?;
                let key: &str = at(r, 4)?;
                // NULL is how a non-finite value (NaN loss) is stored.
                let value: f64 = at::<Option<f64>>(r, 5)?.unwrap_or(f64::NAN);
                if !c.first_ts.contains_key(stage) {
                    c.first_ts.insert(stage.to_string(), at(r, 6)?);
                }
                let step_u = usize::try_from(step).unwrap_or(0);
                let epoch_u = epoch.and_then(|e| usize::try_from(e).ok()).unwrap_or(0);
                match c.progress.get_mut(stage) {
                    Some(p) => {
                        if step_u >= p.1 {
                            *p = (epoch_u.max(p.0), step_u);
                        }
                    }
                    None => {
                        c.progress.insert(stage.to_string(), (epoch_u, step_u));
                    }
                }
                let idx = match c.series.iter().position(|s| s.stage == stage) {
                    Some(i) => i,
                    None => {
                        c.series.push(StageSeries {
                            stage: stage.to_string(),
                            ..Default::default()
                        });
                        c.series.len() - 1
                    }
                };
                let s = &mut c.series[idx];
                let point = (step as f64, value);
                match key {
                    "loss" => s.loss.push(point),
                    "lr" => s.lr.push(point),
                    "samples_per_s" => s.samples_per_s.push(point),
                    _ => {}
                }
            }
            if (n as i64) < METRIC_BATCH {
                break;
            }
        }

        let first_time = c.last_log == 0;
        let rows = if first_time {
            // Only the tail of a long log on first sight.
            let mut rows = self.query(
                "SELECT id, ts, level, message FROM logs
                  WHERE run_id = $1 ORDER BY id DESC LIMIT $2",
                &[id, LOG_KEEP as i64],
            )?;
            rows.reverse();
            rows
        } else {
            self.query(
                "SELECT id, ts, level, message FROM logs
                  WHERE run_id = $1 AND id > $2 ORDER BY id",
                &[id, c.last_log],
            )?
        };
        for r in &rows {
            c.last_log = get(r, "id")?;
            c.logs.push_back(LogLine {
                ts: get(r, "ts")?,
                level: LogLevel::parse(&get::<String>(r, "level")?),
                message: get(r, "message")?,
            });
        }
        while c.logs.len() > LOG_KEEP {
            c.logs.pop_front();
        }

        if c.planned.is_none() {
            let rows = self.query("SELECT plan_yaml FROM runs WHERE id = $1", &[id])?;
            let yaml: Option<String> = match rows.first() {
                Some(r) => get(r, "plan_yaml")?,
                None => None,
            };
            c.planned = Some(yaml.map(|y| rows::planned_stages(&y)).unwrap_or_default());
        }
        if c.params.is_empty() {
            let rows = self.query(
                "SELECT key, value FROM params WHERE run_id = $1 ORDER BY key",
                &[id],
            )?;
            c.params = rows
                .iter()
                .map(|r| Ok((get(r, "key")?, get(r, "value")?)))
                .collect::<Result<_, String>>()?;
        }
        Ok(())
    }

    fn stages(&mut self, id: i64, run: RunStatus) -> Result<Vec<StageProgress>, String> {
        let rows = self.query(
            "SELECT stage, kind, epochs, steps_per_epoch, status, best_epoch, seconds,
                    started_at, ended_at FROM stages WHERE run_id = $1 ORDER BY ord",
            &[id],
        )?;
        let now = Utc::now();
        let cache = self.cache.get(&id);
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let name: String = get(r, "stage")?;
            let epochs = usize::try_from(get::<i64>(r, "epochs")?).unwrap_or(0);
            let steps_per_epoch = usize::try_from(get::<i64>(r, "steps_per_epoch")?).unwrap_or(0);
            let state = rows::stage_state(&get::<String>(r, "status")?, run);
            let (mut epoch, mut step) = cache
                .and_then(|c| c.progress.get(&name).copied())
                .unwrap_or((0, 0));
            if state == StageState::Finished {
                epoch = epoch.max(epochs);
                step = step.max(epochs * steps_per_epoch);
            }
            let started: Option<String> = get::<Option<String>>(r, "started_at")?
                .or_else(|| cache.and_then(|c| c.first_ts.get(&name).cloned()));
            let ended: Option<String> = get(r, "ended_at")?;
            let seconds: Option<f64> = get(r, "seconds")?;
            let elapsed_s = match state {
                StageState::Running => started
                    .as_deref()
                    .and_then(|s| rows::seconds_between(s, None, now)),
                _ => seconds.or_else(|| {
                    started
                        .as_deref()
                        .zip(ended.as_deref())
                        .and_then(|(s, e)| rows::seconds_between(s, Some(e), now))
                }),
            };
            out.push(StageProgress {
                name,
                kind: get(r, "kind")?,
                epochs,
                steps_per_epoch,
                epoch,
                step,
                state,
                elapsed_s,
                best_epoch: get::<Option<i64>>(r, "best_epoch")?
                    .and_then(|b| usize::try_from(b).ok()),
            });
        }
        // Stages the plan still has to run, so a live run shows all its gauges.
        if run == RunStatus::Running {
            if let Some(planned) = cache.and_then(|c| c.planned.as_ref()) {
                for (name, kind, epochs) in planned {
                    if !out.iter().any(|s| &s.name == name) {
                        out.push(StageProgress {
                            name: name.clone(),
                            kind: kind.clone(),
                            epochs: *epochs,
                            steps_per_epoch: 0,
                            epoch: 0,
                            step: 0,
                            state: StageState::Pending,
                            elapsed_s: None,
                            best_epoch: None,
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    fn evals(&mut self, id: i64) -> Result<Vec<EpochEval>, String> {
        let rows = self.query(
            "SELECT stage, epoch, split, auc, logloss, extra_json FROM evaluations
              WHERE run_id = $1 ORDER BY stage, epoch, split",
            &[id],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let Some(split) = Split::parse(&get::<String>(r, "split")?) else {
                continue;
            };
            out.push(EpochEval {
                stage: get(r, "stage")?,
                epoch: usize::try_from(get::<i64>(r, "epoch")?).unwrap_or(0),
                split,
                auc: get(r, "auc")?,
                logloss: get(r, "logloss")?,
                extras: rows::extras(&get::<String>(r, "extra_json")?),
            });
        }
        Ok(out)
    }

    /// True when the error means "the database is not there yet" (the file,
    /// or the tables `run` creates when it opens the store).
    fn not_yet(&self, e: &str) -> bool {
        self.wait_for_file
            && (self.target.sqlite_path().is_some_and(|p| !p.exists())
                || e.contains("no such table")
                || e.contains("unable to open database")
                || (e.contains("relation") && e.contains("does not exist")))
    }
}

impl DataSource for StoreSource {
    fn groups(&mut self) -> Result<Vec<GroupSummary>, String> {
        match self.group_rows(&[]) {
            Ok(rows) => Ok(groups::summaries(&rows)),
            Err(e) if self.not_yet(&e) => {
                self.conn = None;
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    fn group_comparison(&mut self, a: i64, b: i64) -> Result<GroupComparison, String> {
        let rows = self.group_rows(&[a, b])?;
        groups::comparison(&rows, a, b)
    }

    fn runs(&mut self) -> Result<Vec<RunSummary>, String> {
        match self.summaries(None) {
            Ok(v) => Ok(v.into_iter().map(|(s, _)| s).collect()),
            Err(e) if self.not_yet(&e) => {
                self.conn = None;
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    fn run_detail(&mut self, id: i64) -> Result<RunDetail, String> {
        let Some((summary, error)) = self.summaries(Some(id))?.into_iter().next() else {
            return Err(format!("no run #{id} in {}", self.target));
        };
        self.poll_new_rows(id)?;
        let stages = self.stages(id, summary.status)?;
        let evals = self.evals(id)?;
        let mut detail = RunDetail::new(summary);
        detail.stages = stages;
        detail.evals = evals;
        detail.error = error;
        if let Some(c) = self.cache.get(&id) {
            detail.series = c.series.clone();
            detail.logs = c.logs.iter().cloned().collect();
            detail.params = c.params.clone();
        }
        Ok(detail)
    }
}

fn at<'r, T>(row: &'r AnyRow, col: usize) -> Result<T, String>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(col)
        .map_err(|e| format!("reading column {col}: {e}"))
}

fn get<'r, T>(row: &'r AnyRow, col: &str) -> Result<T, String>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(col).map_err(|e| format!("reading {col}: {e}"))
}
