//! The plain data the dashboard renders. The root crate maps its run database
//! into these types; nothing here knows SQL or the training code.

/// Where a run stands. `Lost` is a run still marked running whose process is
/// gone (killed without a chance to record it), so it never reads as live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunStatus {
    Running,
    Finished,
    Failed,
    Interrupted,
    Lost,
}

impl RunStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Interrupted => "INTERRUPTED",
            RunStatus::Lost => "LOST",
        }
    }

    /// Unknown words map to `Lost` rather than failing the whole refresh.
    pub fn parse(s: &str) -> RunStatus {
        match s {
            "RUNNING" => RunStatus::Running,
            "FINISHED" => RunStatus::Finished,
            "FAILED" => RunStatus::Failed,
            "INTERRUPTED" => RunStatus::Interrupted,
            _ => RunStatus::Lost,
        }
    }

    pub fn is_live(&self) -> bool {
        *self == RunStatus::Running
    }
}

/// One row of the run history.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub id: i64,
    pub experiment: String,
    /// Plan name (`sweep[prompts=5]` for sweep points).
    pub name: String,
    pub sweep_point: Option<String>,
    pub status: RunStatus,
    pub device: String,
    /// RFC 3339 start time as stored.
    pub started_at: String,
    /// Wall time so far (running) or in total (ended); the loader computes it
    /// so the view never reads the clock.
    pub duration_s: Option<f64>,
    /// The stage chosen on validation (see [`StageFigures::best`]); the
    /// test figures below are its.
    pub best_stage: Option<String>,
    pub test_auc: Option<f64>,
    pub test_logloss: Option<f64>,
    /// Every stage with an AUC evaluation, in run order.
    pub stages: Vec<StageFigures>,
    /// The group of runs this one repeats over seeds (`g<id>` in the CLI).
    pub group_id: Option<i64>,
    pub group: Option<String>,
}

impl RunSummary {
    /// The figures of stage `pick`, or of the best stage when `pick` is None.
    pub fn figures(&self, pick: Option<&str>) -> Option<&StageFigures> {
        let name = pick.or(self.best_stage.as_deref())?;
        self.stages.iter().find(|s| s.stage == name)
    }
}

/// One stage's final figures: its best validation AUC over epochs and its
/// test evaluation (at the best epoch).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StageFigures {
    pub stage: String,
    pub valid_auc: Option<f64>,
    pub test_auc: Option<f64>,
    pub test_logloss: Option<f64>,
}

impl StageFigures {
    /// The stage a run is judged by: the highest validation AUC, the later
    /// stage on a tie; without validation AUCs, the last stage with a test
    /// AUC. The test set never chooses. (The run database's `run_summary`
    /// view applies the same rule in SQL.)
    pub fn best(stages: &[StageFigures]) -> Option<&StageFigures> {
        let valid = |s: &&StageFigures| s.valid_auc.filter(|v| !v.is_nan());
        let by_valid = stages.iter().filter(|s| valid(s).is_some()).fold(
            None,
            |best: Option<&StageFigures>, s| match best {
                Some(b) if valid(&b) > valid(&s) => Some(b),
                _ => Some(s),
            },
        );
        by_valid.or_else(|| stages.iter().rev().find(|s| s.test_auc.is_some()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageState {
    Pending,
    Running,
    Finished,
    /// Ended without finishing (the run failed or was interrupted).
    Stopped,
}

/// Progress of one stage of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct StageProgress {
    pub name: String,
    pub kind: String,
    pub epochs: usize,
    pub steps_per_epoch: usize,
    /// Epoch of the latest step (1-based; 0 before the first step).
    pub epoch: usize,
    /// Global optimiser step within the stage (0 before the first step).
    pub step: usize,
    pub state: StageState,
    /// Seconds spent in the stage so far (or in total once finished).
    pub elapsed_s: Option<f64>,
    pub best_epoch: Option<usize>,
}

impl StageProgress {
    pub fn total_steps(&self) -> usize {
        self.epochs.saturating_mul(self.steps_per_epoch)
    }

    /// Fraction done in [0, 1].
    pub fn ratio(&self) -> f64 {
        match self.state {
            StageState::Finished => 1.0,
            StageState::Pending => 0.0,
            StageState::Running | StageState::Stopped => {
                let total = self.total_steps();
                if total == 0 {
                    0.0
                } else {
                    (self.step as f64 / total as f64).clamp(0.0, 1.0)
                }
            }
        }
    }

    /// Remaining seconds at the average pace so far.
    pub fn eta_s(&self) -> Option<f64> {
        if self.state != StageState::Running || self.step == 0 {
            return None;
        }
        let elapsed = self.elapsed_s.filter(|e| e.is_finite() && *e > 0.0)?;
        let remaining = self.total_steps().saturating_sub(self.step) as f64;
        Some(elapsed / self.step as f64 * remaining)
    }
}

/// Per-step series of one stage. Points are (step, value); a value is NaN when
/// the step's loss was not finite.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StageSeries {
    pub stage: String,
    pub loss: Vec<(f64, f64)>,
    pub lr: Vec<(f64, f64)>,
    pub samples_per_s: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Split {
    Train,
    Valid,
    Test,
}

impl Split {
    pub fn parse(s: &str) -> Option<Split> {
        match s {
            "train" => Some(Split::Train),
            "valid" => Some(Split::Valid),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
}

/// One evaluation (per epoch on valid; the final test at the best epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct EpochEval {
    pub stage: String,
    pub epoch: usize,
    pub split: Split,
    pub auc: Option<f64>,
    pub logloss: Option<f64>,
    /// Other metrics of the evaluation (`mlm_acc`, `mlm_loss`, …); NaN when
    /// the value was not finite.
    pub extras: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn parse(s: &str) -> LogLevel {
        match s.to_ascii_lowercase().as_str() {
            "warn" | "warning" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => LogLevel::Info,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub ts: String,
    pub level: LogLevel,
    pub message: String,
}

/// Everything the live and compare views show about one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDetail {
    pub summary: RunSummary,
    pub stages: Vec<StageProgress>,
    pub series: Vec<StageSeries>,
    pub evals: Vec<EpochEval>,
    /// Most recent last.
    pub logs: Vec<LogLine>,
    pub params: Vec<(String, String)>,
    pub error: Option<String>,
}

impl RunDetail {
    pub fn new(summary: RunSummary) -> RunDetail {
        RunDetail {
            summary,
            stages: Vec::new(),
            series: Vec::new(),
            evals: Vec::new(),
            logs: Vec::new(),
            params: Vec::new(),
            error: None,
        }
    }

    pub fn series_for(&self, stage: &str) -> Option<&StageSeries> {
        self.series.iter().find(|s| s.stage == stage)
    }

    /// Stage names in run order, including stages that only have series.
    pub fn stage_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.stages.iter().map(|s| s.name.clone()).collect();
        for s in &self.series {
            if !names.contains(&s.stage) {
                names.push(s.stage.clone());
            }
        }
        names
    }

    /// The stage a viewer most likely wants: the running one, else the last
    /// one with any data.
    pub fn focus_stage(&self) -> Option<String> {
        if let Some(s) = self.stages.iter().find(|s| s.state == StageState::Running) {
            return Some(s.name.clone());
        }
        if let Some(s) = self.series.iter().rev().find(|s| !s.loss.is_empty()) {
            return Some(s.stage.clone());
        }
        self.stage_names().pop()
    }

    /// Valid evaluations of one stage, by epoch.
    pub fn valid_evals(&self, stage: &str) -> Vec<&EpochEval> {
        let mut v: Vec<&EpochEval> = self
            .evals
            .iter()
            .filter(|e| e.split == Split::Valid && e.stage == stage)
            .collect();
        v.sort_by_key(|e| e.epoch);
        v
    }

    /// The stage whose AUC curves matter most: the last with valid AUCs.
    pub fn eval_stage(&self) -> Option<String> {
        let names = self.stage_names();
        names
            .iter()
            .rev()
            .find(|n| {
                self.evals
                    .iter()
                    .any(|e| &e.stage == *n && e.split == Split::Valid && e.auc.is_some())
            })
            .cloned()
            .or_else(|| {
                self.evals
                    .iter()
                    .rev()
                    .find(|e| e.split == Split::Valid && e.auc.is_some())
                    .map(|e| e.stage.clone())
            })
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `n` values as mean ± sample standard deviation (computed by the caller).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MeanSd {
    pub n: usize,
    pub mean: Option<f64>,
    /// None below two values.
    pub sd: Option<f64>,
}

/// A group: the runs repeating one configuration over seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSummary {
    pub id: i64,
    /// The run name without its seed (`scratch`, `sweep[prompts=5]`).
    pub name: String,
    pub experiment: String,
    pub runs: usize,
    pub finished: usize,
    /// Seeds with a finished run, ascending.
    pub seeds: Vec<u64>,
    /// Over the seeds (the latest finished run of each).
    pub test_auc: MeanSd,
    pub test_logloss: MeanSd,
    pub best_valid_auc: MeanSd,
}

/// One seed of a paired comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedDiff {
    pub seed: u64,
    pub a_run: i64,
    pub b_run: i64,
    pub a: f64,
    pub b: f64,
    /// b − a.
    pub diff: f64,
}

/// The paired difference B − A over the seeds both groups have.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PairedDiff {
    pub n: usize,
    pub mean: Option<f64>,
    /// Standard error of the mean difference (sd / √n).
    pub se: Option<f64>,
    /// Seeds where B is better in the metric's direction, where A is, ties.
    pub b_better: usize,
    pub a_better: usize,
    pub ties: usize,
    pub per_seed: Vec<SeedDiff>,
}

/// One metric of a group comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricComparison {
    /// `test AUC`.
    pub label: String,
    /// Some(true): higher is better; Some(false): lower; None: neither.
    pub higher_is_better: Option<bool>,
    pub a: MeanSd,
    pub b: MeanSd,
    pub paired: PairedDiff,
}

/// Group B against group A.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupComparison {
    pub a: GroupSummary,
    pub b: GroupSummary,
    pub metrics: Vec<MetricComparison>,
}

/// What the app polls. The root crate implements it over the run database;
/// tests implement it over fixtures. Errors are messages shown in the footer.
pub trait DataSource {
    fn runs(&mut self) -> Result<Vec<RunSummary>, String>;
    fn run_detail(&mut self, id: i64) -> Result<RunDetail, String>;
    /// Run groups, any order (the view sorts). A source without groups has none.
    fn groups(&mut self) -> Result<Vec<GroupSummary>, String> {
        Ok(Vec::new())
    }
    /// Group `b` against group `a`, paired by seed.
    fn group_comparison(&mut self, a: i64, b: i64) -> Result<GroupComparison, String> {
        Err(format!(
            "cannot compare g{a} and g{b}: this source has no run groups"
        ))
    }
}
