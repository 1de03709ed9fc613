//! Running the stages that carry a PLM: `pretrain pa_mlm`, `finetune joint`
//! and `finetune plm_only`.
//!
//! Each stage builds its model on a fresh `VarMap` (seeded by the run seed),
//! copies the PLM checkpoint in, then the previous stage's weights by name,
//! and hands the objective to the shared trainer (`trainer::train_stage`):
//! AdamW with a CTR group under `ctr.` at `lr` and everything else — PLM,
//! prompt generator, heads, α — at `plm_lr`; per-epoch validation, early
//! stopping, best-weight restore, checkpoints.
//!
//! Variable names: `ctr.*` (CTR model), `prompt.*` (generator), `plm.*`
//! (encoder, HF names), `mlm.*` (MLM head), `plm_head.*` (classification
//! head), `fusion.alpha`. `finetune ctr_only from <stage>` (the CTR trainer)
//! loads the `ctr.*` names from a PLM stage's `best.safetensors`.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Result;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use super::checkpoint::load_by_name;
use super::events::{Event, EventSink, LogLevel};
use super::head_warmup::run_head_warmup;
use super::joint::{Fusion, PlmClassifier};
use super::pa_mlm::PaMlmModel;
use super::trainer::{train_stage, StageData, StageModel, StageResult, StageResume, StageSpec};
use crate::data::{Dataset, DatasetMeta, DeviceSplit, TextMeta};
use crate::error::invalid;
use crate::model::ctr::CtrModel;
use crate::model::heads::{ClassificationHead, MlmHead};
use crate::model::plm::{load_checkpoint, Checkpoint, Config, PlmEncoder};
use crate::model::prompt::PromptGenerator;
use crate::model::vars::seeded_var_builder;
use crate::plan::types::{
    ExperimentPlan, FusionPlan, MetricKind, PlmPlan, Pooling, StageKind, StagePlan,
};

/// What a PLM stage needs from the runner.
pub struct PlmStageInput<'a> {
    pub plan: &'a ExperimentPlan,
    pub stage: &'a StagePlan,
    pub dataset: &'a Dataset,
    /// From `resolve_plm_dir`.
    pub plm_dir: &'a Path,
    pub device: &'a Device,
    pub sink: &'a dyn EventSink,
    /// Weights of earlier stages to start from, loaded by name in order
    /// (later files win).
    pub init_from: Vec<PathBuf>,
    /// Where `epoch-N.safetensors` / `best.safetensors` go.
    pub checkpoint_dir: Option<PathBuf>,
    pub cancel: Option<Arc<AtomicBool>>,
    /// Continue an interrupted stage (`run --resume`).
    pub resume: Option<StageResume>,
}

fn log(sink: &dyn EventSink, level: LogLevel, message: String) {
    sink.emit(Event::Log { level, message });
}

fn text_meta(meta: &DatasetMeta) -> Result<&TextMeta> {
    meta.text.as_ref().ok_or_else(|| {
        invalid("the dataset has no text side (the experiment needs a PLM and a template)")
    })
}

/// The stage's kind as events name it.
pub fn kind_name(kind: &StageKind) -> &'static str {
    match kind {
        StageKind::PaMlm { .. } => "pa_mlm",
        StageKind::Joint => "joint",
        StageKind::PlmOnly => "plm_only",
        StageKind::CtrOnly { .. } => "ctr_only",
    }
}

/// A built stage model (its variables live in the `VarMap` it was built on).
pub enum PlmStageModel {
    PaMlm(PaMlmModel),
    Classifier(PlmClassifier),
}

impl PlmStageModel {
    pub fn as_stage_model(&self) -> &dyn StageModel {
        match self {
            PlmStageModel::PaMlm(m) => m,
            PlmStageModel::Classifier(c) => c,
        }
    }
}

/// Builds the model of a PLM stage under `vb` (no weights loaded yet).
pub fn build_stage_model(
    plan: &ExperimentPlan,
    stage: &StagePlan,
    dataset: &Dataset,
    cfg: &Config,
    vb: &VarBuilder,
) -> Result<PlmStageModel> {
    build_stage_model_for(plan, stage, &dataset.meta, cfg, vb)
}

/// [`build_stage_model`] from the dataset's description alone (what
/// scoring with stored vocabularies has).
pub fn build_stage_model_for(
    plan: &ExperimentPlan,
    stage: &StagePlan,
    meta: &DatasetMeta,
    cfg: &Config,
    vb: &VarBuilder,
) -> Result<PlmStageModel> {
    let plm_plan = plan
        .plm
        .as_ref()
        .ok_or_else(|| invalid(format!("stage \"{}\" needs a PLM", stage.name)))?;
    let encoder = PlmEncoder::load(vb.pp("plm"), cfg, plm_plan.family)?;
    // A stage may override the PLM's pooling (`finetune joint { pool cls }`).
    let pooling: Pooling = stage.pool.unwrap_or(plm_plan.pool);
    let ctr = || -> Result<CtrModel> {
        let ctr_plan = plan
            .ctr
            .as_ref()
            .ok_or_else(|| invalid(format!("stage \"{}\" needs a CTR backbone", stage.name)))?;
        CtrModel::new(ctr_plan, meta, vb.clone())
    };
    let generator = |ctr: &CtrModel| -> Result<PromptGenerator> {
        let h = ctr.hidden_dim().ok_or_else(|| {
            invalid(format!(
                "backbone {} has no hidden representation and cannot generate prompts",
                ctr.backbone_name()
            ))
        })?;
        Ok(PromptGenerator::new(
            vb.pp("prompt"),
            h,
            cfg,
            &plan.prompts,
        )?)
    };
    Ok(match &stage.kind {
        StageKind::PaMlm {
            mask, mask_unit, ..
        } => {
            let ctr = ctr()?;
            let gen = generator(&ctr)?;
            let mlm = MlmHead::new(vb.pp("mlm"), cfg, encoder.word_embeddings())?;
            PlmStageModel::PaMlm(PaMlmModel {
                ctr,
                generator: gen,
                encoder,
                mlm,
                text: text_meta(meta)?.clone(),
                ratio: *mask,
                unit: *mask_unit,
            })
        }
        StageKind::Joint => {
            let ctr = ctr()?;
            let gen = generator(&ctr)?;
            PlmStageModel::Classifier(PlmClassifier {
                ctr: Some(ctr),
                generator: Some(gen),
                encoder,
                head: ClassificationHead::new(vb.pp("plm_head"), cfg.hidden_size)?,
                pooling,
                fusion: Fusion::new(&plan.fusion, vb)?,
            })
        }
        StageKind::PlmOnly => PlmStageModel::Classifier(PlmClassifier {
            ctr: None,
            generator: None,
            encoder,
            head: ClassificationHead::new(vb.pp("plm_head"), cfg.hidden_size)?,
            pooling,
            fusion: Fusion::new(&FusionPlan::None, vb)?,
        }),
        StageKind::CtrOnly { .. } => {
            return Err(invalid(format!(
                "stage \"{}\" (ctr_only) runs in the CTR trainer, not the PLM one",
                stage.name
            )))
        }
    })
}

/// The encoder configuration a stage builds: the folder's `config.json`,
/// cut to the plan's `layers`.
pub fn stage_config(plm_plan: &PlmPlan, dir: &Path) -> Result<Config> {
    Config::from_dir(dir)?
        .truncated(plm_plan.layers)
        .map_err(|e| invalid(format!("PLM \"{}\": {e}", plm_plan.name)))
}

/// Runs one PLM stage to completion.
pub fn run_plm_stage(input: &PlmStageInput) -> Result<StageResult> {
    let plan = input.plan;
    let stage = input.stage;
    let ds = input.dataset;
    text_meta(&ds.meta)?;
    let plm_plan = plan
        .plm
        .as_ref()
        .ok_or_else(|| invalid(format!("stage \"{}\" needs a PLM", stage.name)))?;
    let cfg = stage_config(plm_plan, input.plm_dir)?;
    if let Some(declared) = cfg.declared_family() {
        if declared != plm_plan.family {
            log(
                input.sink,
                LogLevel::Warn,
                format!(
                    "PLM \"{}\": config.json says {declared:?}, the experiment says {:?}; \
                     using the experiment's position ids",
                    plm_plan.name, plm_plan.family
                ),
            );
        }
    }
    let varmap = candle_nn::VarMap::new();
    let vb = seeded_var_builder(&varmap, plan.seed, DType::F32, input.device);
    let model = build_stage_model(plan, stage, ds, &cfg, &vb)?;

    let report = load_checkpoint(&varmap, &Checkpoint::open(input.plm_dir)?)?;
    log(
        input.sink,
        LogLevel::Info,
        format!(
            "PLM: {} tensors loaded from {}",
            report.loaded.len(),
            input.plm_dir.display()
        ),
    );
    if report.has_mlm_head && !report.mlm_head_loaded {
        log(
            input.sink,
            LogLevel::Warn,
            "MLM head created, not loaded: the checkpoint has no cls.predictions.* / lm_head.* \
             (fresh transform and bias, decoder tied to the word embeddings)"
                .into(),
        );
    }
    // Later sources win: `from [pretrain, ctr_only]` takes the PLM and the
    // prompt generator from PA-MLM and the CTR model from its fine-tuning.
    let mut fresh: Option<Vec<String>> = None;
    for init in &input.init_from {
        let r = load_by_name(&varmap, init)?;
        log(
            input.sink,
            LogLevel::Info,
            format!(
                "initialised {} tensors by name from {}; not used here: {}",
                r.loaded.len(),
                init.display(),
                r.dropped.len()
            ),
        );
        fresh = Some(match fresh {
            None => r.initialised,
            Some(f) => f
                .into_iter()
                .filter(|n| r.initialised.contains(n))
                .collect(),
        });
    }
    if let Some(fresh) = fresh {
        log(
            input.sink,
            LogLevel::Info,
            format!(
                "fresh (in no earlier stage): {}",
                if fresh.is_empty() {
                    "none".to_string()
                } else {
                    fresh.join(", ")
                }
            ),
        );
    }

    let train = DeviceSplit::new(&ds.train, &ds.meta, input.device)?;
    let valid = DeviceSplit::new(&ds.valid, &ds.meta, input.device)?;
    // PA-MLM never touches the test rows.
    let test = match &stage.kind {
        StageKind::PaMlm { .. } => None,
        _ => Some(DeviceSplit::new(&ds.test, &ds.meta, input.device)?),
    };
    // A resumed stage restarts from a checkpoint that holds the warmed head.
    if let (PlmStageModel::PaMlm(m), StageKind::PaMlm { head_warmup, .. }) = (&model, &stage.kind) {
        if *head_warmup > 0 && input.resume.is_none() {
            run_head_warmup(
                m,
                &varmap,
                &train,
                *head_warmup,
                stage.train.batch,
                stage.train.lr,
                plan.seed,
                input.cancel.as_deref(),
                input.sink,
                &stage.name,
            )?;
        }
    }
    let spec = StageSpec {
        name: stage.name.clone(),
        kind: kind_name(&stage.kind).into(),
        train: stage.train.clone(),
        seed: plan.seed,
        checkpoint_dir: input.checkpoint_dir.clone(),
        cancel: input.cancel.clone(),
        resume: input.resume.clone(),
        select: plan.metrics.first().copied().unwrap_or(MetricKind::Auc),
    };
    train_stage(
        model.as_stage_model(),
        &varmap,
        StageData {
            train: &train,
            valid: &valid,
            test: test.as_ref(),
        },
        &spec,
        input.sink,
    )
}
