//! The fine-tuning models that carry a PLM: ClickPrompt joint (prefix_add)
//! and the PLM-only baseline on the hard-prompt text.

use anyhow::{Context, Result};
use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use std::time::Instant;

use super::trainer::{EvalCtx, Evaluation, StageModel, StepCtx};
use crate::data::{epoch_batches, Batch, DeviceSplit, OrderSpec};
use crate::model::ctr::CtrModel;
use crate::model::heads::{pool, pooling_needs_layers, ClassificationHead};
use crate::model::plm::{PlmEncoder, Prompts};
use crate::model::prompt::PromptGenerator;
use crate::plan::types::{FusionPlan, Pooling};
use crate::train::metrics::{auc, logloss_from_logits};

/// How the PLM and CTR logits combine.
#[derive(Debug, Clone)]
pub enum Fusion {
    /// PLM logit + CTR logit.
    Sum,
    /// α·PLM + (1−α)·CTR with α a learnable scalar (`fusion.alpha`, init 0.5).
    Alpha(Tensor),
    /// PLM logit alone.
    PlmOnly,
}

impl Fusion {
    pub fn new(plan: &FusionPlan, vb: &VarBuilder) -> Result<Self> {
        Ok(match plan {
            FusionPlan::PrefixAdd {
                learnable_alpha: false,
            } => Fusion::Sum,
            FusionPlan::PrefixAdd {
                learnable_alpha: true,
            } => Fusion::Alpha(
                vb.pp("fusion")
                    .get_with_hints(1, "alpha", Init::Const(0.5))?,
            ),
            FusionPlan::None => Fusion::PlmOnly,
        })
    }
}

/// Joint: CTR → prompts → PLM → pooled → head, fused with the CTR logit.
/// PLM-only: `ctr` and `generator` are None, fusion is `PlmOnly`.
pub struct PlmClassifier {
    pub ctr: Option<CtrModel>,
    pub generator: Option<PromptGenerator>,
    pub encoder: PlmEncoder,
    pub head: ClassificationHead,
    pub pooling: Pooling,
    pub fusion: Fusion,
}

impl PlmClassifier {
    /// (B,) logits.
    pub fn forward(&self, batch: &Batch, train: bool) -> Result<Tensor> {
        let text = batch
            .text
            .as_ref()
            .context("this stage needs the text side of the batch")?;
        let ctr_out = match &self.ctr {
            Some(ctr) => Some(ctr.forward(batch, train)?),
            None => None,
        };
        let p = match (&self.generator, &ctr_out) {
            (Some(g), Some(o)) => {
                let h = o.hidden.as_ref().context(
                    "the CTR backbone has no hidden representation to generate prompts from",
                )?;
                Some(g.forward(h)?)
            }
            _ => None,
        };
        let prompts = match (&self.generator, &p) {
            (Some(g), Some(p)) => g.as_prompts(p),
            _ => Prompts::None,
        };
        let keep = pooling_needs_layers(self.pooling);
        let out = self
            .encoder
            .forward(&text.ids, &text.mask, prompts, train, keep)?;
        let pooled = pool(&out, &text.mask, self.pooling)?;
        let plm_logit = self.head.forward(&pooled)?;
        Ok(match (&self.fusion, &ctr_out) {
            (Fusion::PlmOnly, _) | (_, None) => plm_logit,
            (Fusion::Sum, Some(o)) => (plm_logit + &o.logit)?,
            (Fusion::Alpha(a), Some(o)) => {
                let one_minus = a.affine(-1.0, 1.0)?;
                (plm_logit.broadcast_mul(a)? + o.logit.broadcast_mul(&one_minus)?)?
            }
        })
    }

    /// The learnable α, when there is one.
    pub fn alpha(&self) -> Option<&Tensor> {
        match &self.fusion {
            Fusion::Alpha(a) => Some(a),
            _ => None,
        }
    }

    /// Logits of every row of `split`, in row order, computed as evaluation
    /// computes them (so scoring the test rows reproduces the test metrics).
    pub fn predict_rows(&self, split: &DeviceSplit, eval_batch: usize) -> Result<Vec<f32>> {
        Ok(self.bucketed(split, eval_batch, &|| Ok(()))?.0)
    }

    /// (logits, labels) in row order, over batches of `eval_batch` rows of
    /// similar token length; `check` runs before each batch (cancellation).
    fn bucketed(
        &self,
        split: &DeviceSplit,
        eval_batch: usize,
        check: &dyn Fn() -> Result<()>,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        if split.rows == 0 {
            anyhow::bail!("cannot evaluate an empty split");
        }
        let order = epoch_batches(
            split.rows,
            split.token_lengths(),
            OrderSpec {
                batch: eval_batch.max(1),
                shuffle: false,
                bucket_by_length: true,
                seed: 0,
                epoch: 0,
                max_rows: None,
            },
        );
        let (mut logits, mut labels, mut rows_done) = (Vec::new(), Vec::new(), Vec::new());
        for rows in order {
            check()?;
            let b = split.batch(&rows)?;
            // Detached so that the batch's activations are freed (see predict_split).
            logits.push(self.forward(&b, false)?.detach());
            labels.push(b.labels);
            rows_done.extend(rows);
        }
        let flat = |t: Vec<Tensor>| -> Result<Vec<f32>> {
            Ok(Tensor::cat(&t, 0)?
                .to_dtype(candle_core::DType::F32)?
                .to_vec1::<f32>()?)
        };
        let (l, y) = (flat(logits)?, flat(labels)?);
        // Back to row order: metrics then sum over rows in the split's order.
        let mut out = (vec![0f32; split.rows], vec![0f32; split.rows]);
        for (k, &r) in rows_done.iter().enumerate() {
            out.0[r] = l[k];
            out.1[r] = y[k];
        }
        Ok(out)
    }
}

impl StageModel for PlmClassifier {
    fn loss(&self, batch: &Batch, train: bool, _ctx: &StepCtx) -> Result<Tensor> {
        let logit = self.forward(batch, train)?;
        Ok(crate::model::losses::bce_with_logits(
            &logit,
            &batch.labels,
        )?)
    }

    fn predict_logits(&self, batch: &Batch) -> Result<Tensor> {
        self.forward(batch, false)
    }

    /// AUC / LogLoss like the CTR objective, but over length-bucketed batches:
    /// the PLM's cost grows with the padded length. Reports α when learnable.
    fn evaluate(
        &self,
        split: &DeviceSplit,
        eval_batch: usize,
        ctx: &EvalCtx<'_>,
    ) -> Result<Evaluation> {
        let start = Instant::now();
        let (logits, labels) = self.bucketed(split, eval_batch, &|| ctx.check_cancel())?;
        let seconds = start.elapsed().as_secs_f64();
        let a = auc(&logits, &labels)?;
        let l = logloss_from_logits(&logits, &labels)?;
        let mut metrics = Vec::new();
        if let Some(alpha) = self.alpha() {
            let v = alpha
                .to_dtype(candle_core::DType::F64)?
                .flatten_all()?
                .to_vec1::<f64>()?;
            metrics.push(("alpha".to_string(), v[0]));
        }
        Ok(Evaluation {
            auc: Some(a),
            logloss: Some(l),
            metrics,
            score: a,
            rows: split.rows,
            seconds,
        })
    }
}
