//! Executes an experiment's stages in order: picks the device, uploads the
//! splits once, builds each stage's model, trains it and collects a summary.
//!
//! `ctr_only` stages run here; stages that need a PLM (`pa_mlm`, `joint`,
//! `plm_only`) go through [`run_plm_stage`] to `train::plm_stages`. A PLM
//! stage continues from the previous stage's best weights (loaded by name),
//! which is how joint fine-tuning starts from PA-MLM.

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use candle_nn::VarMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::data::tokenize::fingerprint;
use crate::data::vocab::Vocabularies;
use crate::data::{Dataset, DeviceSplit};
use crate::error::invalid;
use crate::model::ctr::CtrModel;
use crate::model::plm::resolve_plm_dir;
use crate::model::vars::seeded_var_builder;
use crate::plan::{DeviceSpec, ExperimentPlan, MetricKind, StageKind, StagePlan};
use crate::train::checkpoint::{self, load_by_name_except};
use crate::train::events::{Event, EventSink, LogLevel};
use crate::train::plm_stages::{self, PlmStageInput};
use crate::train::trainer::{train_stage, StageData, StageResult, StageResume, StageSpec};

/// Options of a run that are not part of the plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Checkpoints go to `<checkpoint_root>/<run>/<stage>/`.
    pub checkpoint_root: PathBuf,
    /// Overrides the plan's device.
    pub device: Option<DeviceSpec>,
    /// Set (e.g. by Ctrl-C) to stop after the current step or evaluation batch.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Continue a run that stopped part-way (`run --resume`).
    pub resume: Option<RunResume>,
}

/// What an interrupted run had done: finished stages are not run again,
/// the stage that stopped continues from its last epoch checkpoint.
#[derive(Debug, Clone, Default)]
pub struct RunResume {
    pub finished: HashMap<String, StageSummary>,
    pub partial: HashMap<String, StageResume>,
}

/// One stage's outcome, for the summary table and the run store.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSummary {
    pub stage: String,
    /// `ctr_only`, `pa_mlm`, `joint`, `plm_only`.
    pub kind: String,
    pub best_epoch: Option<usize>,
    pub epochs_run: usize,
    pub valid_auc: Option<f64>,
    pub valid_logloss: Option<f64>,
    pub test_auc: Option<f64>,
    pub test_logloss: Option<f64>,
    /// Objective-specific figures (e.g. `mlm_acc`) of the best validation pass.
    pub metrics: Vec<(String, f64)>,
    pub seconds: f64,
    pub train_samples_per_s: f64,
    pub infer_samples_per_s: Option<f64>,
    pub best_checkpoint: Option<PathBuf>,
}

impl StageSummary {
    pub fn from_result(stage: &StagePlan, r: &StageResult) -> Self {
        Self {
            stage: stage.name.clone(),
            kind: stage_kind_name(&stage.kind).to_string(),
            best_epoch: r.best_epoch,
            epochs_run: r.epochs_run,
            valid_auc: r.best_valid.as_ref().and_then(|e| e.auc),
            valid_logloss: r.best_valid.as_ref().and_then(|e| e.logloss),
            test_auc: r.test.as_ref().and_then(|e| e.auc),
            test_logloss: r.test.as_ref().and_then(|e| e.logloss),
            metrics: r
                .best_valid
                .as_ref()
                .map(|e| e.metrics.clone())
                .unwrap_or_default(),
            seconds: r.seconds,
            train_samples_per_s: r.train_samples_per_s,
            infer_samples_per_s: r.infer_samples_per_s,
            best_checkpoint: r.best_checkpoint.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub run: String,
    /// The run's group (its repeats over seeds) and its seed.
    pub group: String,
    pub seed: u64,
    pub device: String,
    pub stages: Vec<StageSummary>,
    /// The plan's `metrics`: what the summary shows.
    pub metrics: Vec<MetricKind>,
}

pub fn stage_kind_name(kind: &StageKind) -> &'static str {
    match kind {
        StageKind::PaMlm { .. } => "pa_mlm",
        StageKind::Joint => "joint",
        StageKind::CtrOnly { .. } => "ctr_only",
        StageKind::PlmOnly => "plm_only",
    }
}

/// `auto` = CUDA when built with `--features cuda` and a GPU answers, else CPU.
pub fn select_device(spec: DeviceSpec) -> Result<Device> {
    match spec {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Auto => {
            if candle_core::utils::cuda_is_available() {
                // A CUDA build on a machine without a usable GPU still runs, on CPU.
                Ok(Device::new_cuda(0).unwrap_or(Device::Cpu))
            } else {
                Ok(Device::Cpu)
            }
        }
        DeviceSpec::Cuda(i) => {
            if !candle_core::utils::cuda_is_available() {
                return Err(invalid(format!(
                    "device cuda:{i} was requested but this clickprompt was built without CUDA (rebuild with `--features cuda`)"
                )));
            }
            Device::new_cuda(i).map_err(|e| invalid(format!("cannot open CUDA device {i}: {e}")))
        }
    }
}

pub fn device_name(d: &Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}

/// Everything a stage runner gets.
pub struct StageEnv<'a> {
    pub plan: &'a ExperimentPlan,
    pub stage: &'a StagePlan,
    pub dataset: &'a Dataset,
    pub train: &'a DeviceSplit,
    pub valid: &'a DeviceSplit,
    pub test: &'a DeviceSplit,
    pub device: &'a Device,
    pub sink: &'a dyn EventSink,
    pub opts: &'a RunOptions,
    /// `<checkpoint_root>/<run>/<stage>/`: where this stage writes.
    pub checkpoint_dir: PathBuf,
    /// The stage before this one in the plan, if any.
    pub previous: Option<&'a str>,
    /// Set when this stage continues an interrupted one.
    pub resume: Option<StageResume>,
}

impl StageEnv<'_> {
    /// `best.safetensors` of an earlier stage of this run.
    pub fn best_of(&self, stage: &str) -> PathBuf {
        checkpoint::best_path(&self.opts.checkpoint_root, &self.plan.name, stage)
    }

    fn log(&self, level: LogLevel, message: String) {
        self.sink.emit(Event::Log { level, message });
    }
}

/// Runs every stage of `plan` on `dataset`, in order.
pub fn run_experiment(
    plan: &ExperimentPlan,
    dataset: &Dataset,
    opts: &RunOptions,
    sink: &dyn EventSink,
) -> Result<RunSummary> {
    let device = select_device(opts.device.unwrap_or(plan.device))?;
    if !device.is_cpu() {
        device
            .set_seed(plan.seed)
            .context("seeding the device RNG")?;
    }
    sink.emit(Event::Log {
        level: LogLevel::Info,
        message: format!(
            "run {}: {} stage(s) on {}",
            plan.name,
            plan.stages.len(),
            device_name(&device)
        ),
    });
    save_vocabularies(plan, dataset, opts, sink).context("saving the run's vocabularies")?;
    let upload = |s, name: &str| {
        DeviceSplit::new(s, &dataset.meta, &device)
            .with_context(|| format!("uploading the {name} split"))
    };
    let train = upload(&dataset.train, "train")?;
    let valid = upload(&dataset.valid, "validation")?;
    let test = upload(&dataset.test, "test")?;
    let mut stages = Vec::with_capacity(plan.stages.len());
    for (i, stage) in plan.stages.iter().enumerate() {
        if let Some(done) = opts
            .resume
            .as_ref()
            .and_then(|r| r.finished.get(&stage.name))
        {
            sink.emit(Event::Log {
                level: LogLevel::Info,
                message: format!(
                    "stage {}: finished before the interruption, not run again",
                    stage.name
                ),
            });
            stages.push(done.clone());
            continue;
        }
        let env = StageEnv {
            plan,
            stage,
            dataset,
            train: &train,
            valid: &valid,
            test: &test,
            device: &device,
            sink,
            opts,
            checkpoint_dir: checkpoint::stage_dir(&opts.checkpoint_root, &plan.name, &stage.name),
            previous: i.checked_sub(1).map(|j| plan.stages[j].name.as_str()),
            resume: opts
                .resume
                .as_ref()
                .and_then(|r| r.partial.get(&stage.name))
                .cloned(),
        };
        let summary = match &stage.kind {
            StageKind::CtrOnly { from } => run_ctr_only(&env, from.as_deref()),
            StageKind::PaMlm { .. } | StageKind::Joint | StageKind::PlmOnly => run_plm_stage(&env),
        }
        .with_context(|| format!("run {}, stage {}", plan.name, stage.name))?;
        stages.push(summary);
    }
    Ok(RunSummary {
        run: plan.name.clone(),
        group: plan.group_name().to_string(),
        seed: plan.seed,
        device: device_name(&device),
        stages,
        metrics: plan.metrics.clone(),
    })
}

/// The artifacts' stage label of files that belong to the whole run (the
/// vocabularies) rather than to one stage; no stage can be named so.
pub const RUN_FILES_STAGE: &str = "-";

/// Writes the run's vocabularies next to its stage folders and records them
/// as an artifact, so that `predict` can encode new rows without the
/// training data. A resumed run finds the same file and records nothing.
fn save_vocabularies(
    plan: &ExperimentPlan,
    dataset: &Dataset,
    opts: &RunOptions,
    sink: &dyn EventSink,
) -> Result<()> {
    let tokenizer = match (&plan.plm, &dataset.meta.text) {
        (Some(plm), Some(_)) => Some(fingerprint(&resolve_plm_dir(plm)?)?),
        _ => None,
    };
    let text = Vocabularies::new(plan, &dataset.meta, tokenizer)?.to_yaml()?;
    let path = checkpoint::vocab_path(&opts.checkpoint_root, &plan.name);
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let saved = checkpoint::write_atomic(&path, text.as_bytes())?;
    sink.emit(Event::Checkpoint {
        stage: RUN_FILES_STAGE.into(),
        epoch: None,
        path: saved.path.display().to_string(),
        bytes: saved.bytes,
        sha256: saved.sha256,
    });
    Ok(())
}

/// The CTR backbone alone; with `from`, initialised by name from that
/// stage's best checkpoint, except `ctr.fc_out.*` which starts fresh.
pub fn run_ctr_only(env: &StageEnv, from: Option<&str>) -> Result<StageSummary> {
    let ctr = env.plan.ctr.as_ref().ok_or_else(|| {
        invalid(format!(
            "stage {} (ctr_only) needs a CTR backbone in the experiment",
            env.stage.name
        ))
    })?;
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, env.plan.seed, DType::F32, env.device);
    let model = CtrModel::new(ctr, &env.dataset.meta, vb).context("building the CTR model")?;
    if let (Some(from), None) = (from, &env.resume) {
        let path = env.best_of(from);
        let report = load_ctr_weights(&varmap, &path)
            .with_context(|| format!("initialising from stage {from}"))?;
        env.log(
            LogLevel::Info,
            format!("stage {}: {}", env.stage.name, report.summary(&path)),
        );
        if report.loaded.is_empty() {
            env.log(
                LogLevel::Warn,
                format!(
                    "stage {}: no tensor of {} matched the model",
                    env.stage.name,
                    path.display()
                ),
            );
        }
    }
    let spec = StageSpec {
        name: env.stage.name.clone(),
        kind: stage_kind_name(&env.stage.kind).into(),
        train: env.stage.train.clone(),
        seed: env.plan.seed,
        checkpoint_dir: Some(env.checkpoint_dir.clone()),
        cancel: env.opts.cancel.clone(),
        resume: env.resume.clone(),
        select: env.plan.metrics.first().copied().unwrap_or(MetricKind::Auc),
    };
    // The CTR model reads the fields only: its batches skip the tokens
    // (kept when the stage asks to bucket its batches by text length).
    let strip = |s: &DeviceSplit| {
        if env.stage.train.bucket_by_length {
            s.clone_handles()
        } else {
            s.without_text()
        }
    };
    let (train, valid, test) = (strip(env.train), strip(env.valid), strip(env.test));
    let r = train_stage(
        &model,
        &varmap,
        StageData {
            train: &train,
            valid: &valid,
            test: Some(&test),
        },
        &spec,
        env.sink,
    )?;
    Ok(StageSummary::from_result(env.stage, &r))
}

/// Loads the CTR part (`ctr.*`) of a checkpoint by name, with a fresh `fc_out`.
pub fn load_ctr_weights(varmap: &VarMap, path: &Path) -> Result<checkpoint::LoadReport> {
    load_by_name_except(varmap, path, |n| {
        n.starts_with("ctr.fc_out.") || !n.starts_with("ctr.")
    })
}

/// The stages that need a PLM (`pa_mlm`, `joint`, `plm_only`). The PLM
/// comes from its folder (or hub cache); the previous stage's best weights,
/// when it wrote any, are then loaded over it by name.
pub fn run_plm_stage(env: &StageEnv) -> Result<StageSummary> {
    let plm = env.plan.plm.as_ref().ok_or_else(|| {
        invalid(format!(
            "stage {} needs a PLM in the experiment",
            env.stage.name
        ))
    })?;
    let plm_dir = resolve_plm_dir(plm)?;
    let init: Vec<PathBuf> = match (&env.resume, env.previous) {
        (Some(_), _) => Vec::new(),
        (None, _) if !env.stage.from.is_empty() => {
            let paths: Vec<PathBuf> = env.stage.from.iter().map(|s| env.best_of(s)).collect();
            if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
                return Err(invalid(format!(
                    "stage {} starts from {}, which holds no weights (was that stage run?)",
                    env.stage.name,
                    missing.display()
                )));
            }
            paths
        }
        (None, Some(prev)) => Some(env.best_of(prev))
            .filter(|p| p.is_file())
            .into_iter()
            .collect(),
        (None, None) => Vec::new(),
    };
    let r = plm_stages::run_plm_stage(&PlmStageInput {
        plan: env.plan,
        stage: env.stage,
        dataset: env.dataset,
        plm_dir: &plm_dir,
        device: env.device,
        sink: env.sink,
        init_from: init,
        checkpoint_dir: Some(env.checkpoint_dir.clone()),
        cancel: env.opts.cancel.clone(),
        resume: env.resume.clone(),
    })?;
    Ok(StageSummary::from_result(env.stage, &r))
}
