//! Running and using experiments from code, recorded the way `clickprompt
//! run` records them: one [`Session`] over a run database, a data cache and
//! a checkpoint folder.
//!
//! ```ignore
//! use clickprompt::session::Session;
//! use clickprompt::train::events::Collect;
//!
//! let session = Session::open("runs.db")?;                  // created and migrated if new
//! let runs = session.run_file("experiments/quickstart.cp".as_ref(), Some("dcnv2_scratch"), &Collect::default())?;
//! for stage in &runs[0].summary.stages {
//!     println!("{} test AUC {:?}", stage.stage, stage.test_auc);
//! }
//! let mut predictor = session.predictor(runs[0].id, None, &Default::default())?;
//! ```
//!
//! Unlike the command, a session installs no Ctrl-C handler: a run that
//! fails is recorded FAILED and its error returned; the caller decides what
//! to do with the next one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::data::{self, LoadOptions};
use crate::model::plm::resolve_plm_dir;
use crate::plan::{DeviceSpec, ExperimentPlan};
use crate::predict::{PredictOptions, Predictor, TrainedRun};
use crate::store::{DbTarget, NewRun, RunStatus, Store};
use crate::train::checkpoint;
use crate::train::events::{Event, EventSink};
use crate::train::runner::{device_name, run_experiment, select_device, RunOptions, RunSummary};

/// A run recorded by a [`Session`].
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRun {
    /// Its id in the run database (`clickprompt runs show ID`).
    pub id: i64,
    pub summary: RunSummary,
}

/// A run database plus where data caches and checkpoints go.
pub struct Session {
    store: Store,
    cache_dir: PathBuf,
    checkpoints: PathBuf,
    device: Option<DeviceSpec>,
    rebuild: bool,
}

/// Sends every event to the caller's sink and the run's recorder.
struct Both<'a>(&'a dyn EventSink, &'a dyn EventSink);

impl EventSink for Both<'_> {
    fn emit(&self, event: Event) {
        self.0.emit(event.clone());
        self.1.emit(event);
    }
}

impl Session {
    /// Opens (creating and migrating when needed) the run database at `db`.
    /// Data is cached in `.cache/data` and checkpoints go to `checkpoints/`,
    /// as with the command; both relative to the working directory.
    pub fn open(db: impl Into<DbTarget>) -> Result<Self> {
        let db = db.into();
        Ok(Self {
            store: Store::open(&db).with_context(|| format!("opening the run database {db}"))?,
            cache_dir: PathBuf::from(".cache/data"),
            checkpoints: PathBuf::from("checkpoints"),
            device: None,
            rebuild: false,
        })
    }

    /// Where processed datasets are cached.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = dir.into();
        self
    }

    /// The root of the checkpoint folders (`<root>/run-<id>/…`).
    pub fn checkpoints(mut self, dir: impl Into<PathBuf>) -> Self {
        self.checkpoints = dir.into();
        self
    }

    /// Run on this device instead of the plans' own.
    pub fn device(mut self, device: DeviceSpec) -> Self {
        self.device = Some(device);
        self
    }

    /// Rebuild processed datasets even when cached.
    pub fn rebuild(mut self, rebuild: bool) -> Self {
        self.rebuild = rebuild;
        self
    }

    /// The run database, to read the history (`list_runs`, `evaluations`, …).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs the experiment or sweep `experiment` of a `.cp` file (every run
    /// in it for `None`), in order, each recorded; stops at the first failure.
    pub fn run_file(
        &self,
        file: &Path,
        experiment: Option<&str>,
        sink: &dyn EventSink,
    ) -> Result<Vec<RecordedRun>> {
        let source = std::fs::read_to_string(file).map_err(|e| {
            crate::error::invalid(format!(
                "{}: cannot read experiment file: {e}",
                file.display()
            ))
        })?;
        let plans = crate::plan::select(
            crate::plan::load_str(&source, &file.display().to_string())?,
            experiment,
        )?;
        plans
            .iter()
            .map(|plan| self.run_recorded(plan, file, &source, sink))
            .collect()
    }

    /// Runs a plan built in code. The run's "experiment file" is recorded as
    /// the plan's YAML under the name `<code>`.
    pub fn run_plan(&self, plan: &ExperimentPlan, sink: &dyn EventSink) -> Result<RecordedRun> {
        let yaml = crate::plan::to_yaml(plan)?;
        self.run_recorded(plan, Path::new("<code>"), &yaml, sink)
    }

    fn run_recorded(
        &self,
        plan: &ExperimentPlan,
        file: &Path,
        source: &str,
        sink: &dyn EventSink,
    ) -> Result<RecordedRun> {
        let device = select_device(self.device.unwrap_or(plan.device))
            .with_context(|| format!("run {}", plan.name))?;
        let recorder =
            self.store
                .start_run(NewRun::new(plan, file, source, &device_name(&device)))?;
        let id = recorder.run_id();
        let both = Both(sink, &recorder);
        let result = (|| -> Result<RunSummary> {
            let load = LoadOptions {
                cache_dir: self.cache_dir.clone(),
                rebuild: self.rebuild,
                tokenizer_dir: plan.plm.as_ref().map(resolve_plm_dir).transpose()?,
            };
            let loaded = data::load(plan, &load)
                .with_context(|| format!("loading dataset {}", plan.dataset.name))?;
            let opts = RunOptions {
                checkpoint_root: checkpoint::run_root(&self.checkpoints, id),
                device: self.device,
                cancel: None,
                resume: None,
            };
            run_experiment(plan, &loaded.dataset, &opts, &both)
        })();
        let status = match &result {
            Ok(_) => RunStatus::Finished,
            Err(e) => RunStatus::Failed(format!("{e:#}")),
        };
        recorder.finish(status).context("recording the run")?;
        let summary = result.with_context(|| format!("run {id} ({})", plan.name))?;
        Ok(RecordedRun { id, summary })
    }

    /// Stage `stage` (default: the last with a checkpoint) of recorded run `id`.
    pub fn trained_run(&self, id: i64, stage: Option<&str>) -> Result<TrainedRun> {
        TrainedRun::open(&self.store, id, stage)
    }

    /// A scorer for new rows with stage `stage` of run `id`.
    pub fn predictor(
        &self,
        id: i64,
        stage: Option<&str>,
        opts: &PredictOptions,
    ) -> Result<Predictor> {
        Predictor::new(&self.trained_run(id, stage)?, opts)
    }
}
