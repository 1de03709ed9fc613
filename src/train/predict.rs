//! A trained stage as a click scorer: the stage's model rebuilt for the
//! run's fields, its best weights loaded, and logits computed the way the
//! stage's evaluation computes them.
//!
//! * `ctr_only`: the CTR backbone; one forward per batch of encoded rows.
//! * `joint`, `plm_only`: the PLM classifier (CTR model, prompt generator,
//!   encoder, head, fusion), built from the PLM folder's `config.json`; the
//!   stage checkpoint holds every weight, the PLM's own file is not read.
//!   Rows are scored in length-bucketed batches, as evaluation does.
//!
//! `pa_mlm` stages predict masked tokens, not clicks, and are refused.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use candle_nn::VarMap;

use crate::data::{Batch, DatasetMeta, DeviceSplit, Split};
use crate::error::invalid;
use crate::model::ctr::CtrModel;
use crate::model::vars::seeded_var_builder;
use crate::plan::{ExperimentPlan, StageKind, StagePlan};
use crate::train::checkpoint::{load_by_name, LoadReport};
use crate::train::joint::PlmClassifier;
use crate::train::plm_stages::{build_stage_model_for, stage_config, PlmStageModel};

/// Whether a stage of this kind outputs click probabilities.
pub fn predicts_clicks(kind: &StageKind) -> bool {
    !matches!(kind, StageKind::PaMlm { .. })
}

// One per scorer: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum Model {
    Ctr(CtrModel),
    Plm(PlmClassifier),
}

/// A stage's model with its trained weights.
pub struct Scorer {
    model: Model,
    meta: DatasetMeta,
    device: Device,
    /// Rows per forward pass: the stage's `eval_batch`.
    pub batch: usize,
    /// Keeps the variables alive.
    _vars: VarMap,
}

impl Scorer {
    /// Builds `stage` of `plan` for the fields of `meta` on `device` and
    /// loads `checkpoint`, which must provide every variable (a file from
    /// another model is an error naming what is missing). `plm_dir` (the
    /// PLM folder, for its `config.json`) is needed by PLM stages.
    pub fn load(
        plan: &ExperimentPlan,
        stage: &StagePlan,
        meta: &DatasetMeta,
        plm_dir: Option<&Path>,
        checkpoint: &Path,
        device: &Device,
    ) -> Result<(Self, LoadReport)> {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, plan.seed, DType::F32, device);
        let model = match &stage.kind {
            StageKind::CtrOnly { .. } => {
                let ctr = plan.ctr.as_ref().ok_or_else(|| {
                    invalid(format!(
                        "stage {} (ctr_only) has no CTR backbone in the run's plan",
                        stage.name
                    ))
                })?;
                Model::Ctr(CtrModel::new(ctr, meta, vb).context("building the CTR model")?)
            }
            StageKind::Joint | StageKind::PlmOnly => {
                let dir = plm_dir.ok_or_else(|| {
                    invalid(format!(
                        "stage {} needs the PLM folder (for its config.json and tokenizer)",
                        stage.name
                    ))
                })?;
                let plm = plan.plm.as_ref().ok_or_else(|| {
                    invalid(format!(
                        "stage {} needs a PLM but the run's plan has none",
                        stage.name
                    ))
                })?;
                let cfg = stage_config(plm, dir)?;
                match build_stage_model_for(plan, stage, meta, &cfg, &vb)? {
                    PlmStageModel::Classifier(c) => Model::Plm(c),
                    PlmStageModel::PaMlm(_) => unreachable!("a joint or plm_only stage"),
                }
            }
            StageKind::PaMlm { .. } => {
                return Err(invalid(format!(
                    "stage {} is a pa_mlm stage: it predicts masked tokens, not clicks",
                    stage.name
                )))
            }
        };
        let report = load_by_name(&varmap, checkpoint)
            .with_context(|| format!("loading {}", checkpoint.display()))?;
        if !report.initialised.is_empty() {
            return Err(invalid(format!(
                "checkpoint {} does not fit stage {} of the run: it lacks {}",
                checkpoint.display(),
                stage.name,
                report.initialised.join(", ")
            )));
        }
        Ok((
            Self {
                model,
                meta: meta.clone(),
                device: device.clone(),
                batch: stage.train.eval_batch.max(1),
                _vars: varmap,
            },
            report,
        ))
    }

    /// Whether rows need their rendered, tokenized text.
    pub fn needs_text(&self) -> bool {
        matches!(self.model, Model::Plm(_))
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Logits of one batch (CTR stages: one forward pass).
    pub fn logits(&self, batch: &Batch) -> Result<Vec<f32>> {
        let t = match &self.model {
            Model::Ctr(m) => m.forward(batch, false)?.logit,
            Model::Plm(m) => m.forward(batch, false)?,
        };
        Ok(t.to_dtype(DType::F32)?.to_vec1::<f32>()?)
    }

    /// Logits of every row of `split`, in row order, batched as the stage's
    /// evaluation batches them (`ctr_only`: consecutive runs of `batch`
    /// rows; PLM stages: length-bucketed).
    pub fn logits_of_split(&self, split: &Split) -> Result<Vec<f32>> {
        if split.rows == 0 {
            return Ok(Vec::new());
        }
        let ds = DeviceSplit::new(split, &self.meta, &self.device)?;
        match &self.model {
            Model::Plm(m) => m.predict_rows(&ds, self.batch),
            Model::Ctr(_) => {
                let mut out = Vec::with_capacity(split.rows);
                let mut start = 0;
                while start < split.rows {
                    let end = (start + self.batch).min(split.rows);
                    let rows: Vec<usize> = (start..end).collect();
                    out.extend(self.logits(&ds.batch(&rows)?)?);
                    start = end;
                }
                Ok(out)
            }
        }
    }
}
