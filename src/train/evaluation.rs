//! Evaluation passes: what they get ([`EvalCtx`]), what they return
//! ([`Evaluation`]) and the default CTR pass (AUC / LogLoss of
//! [`StageModel::predict_logits`]).
//!
//! A pass over the real model can take minutes, so every pass checks the
//! stage's cancel flag between batches ([`EvalCtx::check_cancel`]) and stops
//! with [`Interrupted`]; the stage loop turns that into its own
//! "interrupted" error, as between training steps.

use anyhow::{bail, Result};
use candle_core::{DType, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::data::DeviceSplit;
use crate::train::events::EvalSplit;
use crate::train::metrics::{auc, logloss_from_logits};
use crate::train::trainer::StageModel;

/// Context of an evaluation pass.
#[derive(Debug, Clone, Copy)]
pub struct EvalCtx<'a> {
    /// Epoch evaluated (for the test split: the restored best epoch; 0 = before training).
    pub epoch: usize,
    pub split: EvalSplit,
    pub seed: u64,
    /// The stage's cancel flag (Ctrl-C, SIGTERM); None = not cancellable.
    pub cancel: Option<&'a AtomicBool>,
}

impl EvalCtx<'_> {
    /// Fails with [`Interrupted`] once the cancel flag is set. Passes call it
    /// before each batch.
    pub fn check_cancel(&self) -> Result<()> {
        match self.cancel {
            Some(c) if c.load(Ordering::Relaxed) => Err(Interrupted.into()),
            _ => Ok(()),
        }
    }
}

/// An evaluation pass saw the cancel flag and stopped part-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// Whether `err` comes from a pass that was cancelled.
pub fn is_interrupted(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<Interrupted>())
}

/// Result of evaluating one split.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub auc: Option<f64>,
    pub logloss: Option<f64>,
    /// Extra metrics (e.g. `mlm_acc`), reported in the `Eval` event.
    pub metrics: Vec<(String, f64)>,
    /// Higher is better; selects the best epoch (AUC for CTR objectives).
    pub score: f64,
    pub rows: usize,
    /// Wall time of the pass (inference throughput = rows / seconds).
    pub seconds: f64,
}

/// AUC / LogLoss over a whole split, in order, `eval_batch` rows at a time.
pub fn evaluate_ctr<M: StageModel + ?Sized>(
    model: &M,
    split: &DeviceSplit,
    eval_batch: usize,
    ctx: &EvalCtx<'_>,
) -> Result<Evaluation> {
    let start = Instant::now();
    let (logits, labels) = predict_split(model, split, eval_batch, ctx)?;
    let seconds = start.elapsed().as_secs_f64();
    let a = auc(&logits, &labels)?;
    let l = logloss_from_logits(&logits, &labels)?;
    Ok(Evaluation {
        auc: Some(a),
        logloss: Some(l),
        metrics: Vec::new(),
        score: a,
        rows: split.rows,
        seconds,
    })
}

/// Logits and labels of every row of `split`, in row order.
pub fn predict_split<M: StageModel + ?Sized>(
    model: &M,
    split: &DeviceSplit,
    eval_batch: usize,
    ctx: &EvalCtx<'_>,
) -> Result<(Vec<f32>, Vec<f32>)> {
    if split.rows == 0 {
        bail!("cannot evaluate an empty split");
    }
    let eb = eval_batch.max(1);
    let mut logits = Vec::with_capacity(split.rows);
    let mut labels = Vec::with_capacity(split.rows);
    let mut pending: Vec<Tensor> = Vec::new();
    let mut pending_labels: Vec<Tensor> = Vec::new();
    let mut start = 0;
    while start < split.rows {
        ctx.check_cancel()?;
        let end = (start + eb).min(split.rows);
        let rows: Vec<usize> = (start..end).collect();
        let batch = split.batch(&rows)?;
        // Detached: a logit keeps its whole forward graph (every activation
        // of the batch) alive otherwise, and memory would grow with the split.
        pending.push(model.predict_logits(&batch)?.detach());
        pending_labels.push(batch.labels);
        start = end;
    }
    // One device→host copy at the end instead of a sync per batch.
    let all = Tensor::cat(&pending, 0)?
        .to_dtype(DType::F32)?
        .to_vec1::<f32>()?;
    let all_labels = Tensor::cat(&pending_labels, 0)?
        .to_dtype(DType::F32)?
        .to_vec1::<f32>()?;
    logits.extend(all);
    labels.extend(all_labels);
    Ok((logits, labels))
}
