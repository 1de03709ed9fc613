//! The stage loop shared by every objective: epochs, batch order, gradient
//! accumulation, AdamW with groups, warm-up + decay, clipping, per-epoch
//! validation, early stopping, best-weight restore, test evaluation,
//! checkpoints and events.
//!
//! An objective plugs in through [`StageModel`]: it supplies the loss of a
//! batch and, optionally, its own evaluation (PA-MLM scores masked-token
//! accuracy instead of AUC). The best epoch is the one with the highest
//! [`Evaluation::score`].

use anyhow::{bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use candle_nn::VarMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::data::{epoch_batches, Batch, DeviceSplit, OrderSpec};
use crate::model::nn::seed_dropout;
use crate::model::vars::sorted_vars;
use crate::plan::{MetricKind, TrainPlan};
use crate::train::checkpoint;
use crate::train::events::{EvalSplit, Event, EventSink, LogLevel};
use crate::train::metrics::{auc, logloss_from_logits};
use crate::train::optim::{lr_multiplier, AdamW, AdamWConfig};

/// Where the loop is, for objectives that need it (e.g. deterministic masking).
#[derive(Debug, Clone, Copy)]
pub struct StepCtx {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Optimiser step within the stage, from 1 (shared by the micro-batches of one step).
    pub step: usize,
    /// Micro-batch index within the epoch, from 0.
    pub micro: usize,
    /// The stage seed.
    pub seed: u64,
}

/// Context of an evaluation pass.
#[derive(Debug, Clone, Copy)]
pub struct EvalCtx {
    /// Epoch evaluated (for the test split: the restored best epoch; 0 = before training).
    pub epoch: usize,
    pub split: EvalSplit,
    pub seed: u64,
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

/// A trainable objective over a model whose variables live in one `VarMap`.
pub trait StageModel {
    /// Scalar loss of one (micro-)batch. Dropout etc. active when `train`.
    fn loss(&self, batch: &Batch, train: bool, ctx: &StepCtx) -> Result<Tensor>;

    /// (B,) logits for CTR evaluation.
    fn predict_logits(&self, batch: &Batch) -> Result<Tensor>;

    /// Evaluates a split. The default computes AUC and LogLoss from
    /// [`StageModel::predict_logits`] and scores by AUC.
    fn evaluate(
        &self,
        split: &DeviceSplit,
        eval_batch: usize,
        ctx: &EvalCtx,
    ) -> Result<Evaluation> {
        let _ = ctx;
        evaluate_ctr(self, split, eval_batch)
    }
}

/// AUC / LogLoss over a whole split, in order, `eval_batch` rows at a time.
pub fn evaluate_ctr<M: StageModel + ?Sized>(
    model: &M,
    split: &DeviceSplit,
    eval_batch: usize,
) -> Result<Evaluation> {
    let start = Instant::now();
    let (logits, labels) = predict_split(model, split, eval_batch)?;
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

/// What a stage runs on.
pub struct StageData<'a> {
    pub train: &'a DeviceSplit,
    pub valid: &'a DeviceSplit,
    /// Evaluated once with the best weights (None: PA-MLM never touches test).
    pub test: Option<&'a DeviceSplit>,
}

/// How a stage runs.
#[derive(Debug, Clone)]
pub struct StageSpec {
    /// Stage name (events, checkpoint directory).
    pub name: String,
    /// Stage kind for `StageStarted` (`ctr_only`, `pa_mlm`, ...).
    pub kind: String,
    pub train: TrainPlan,
    pub seed: u64,
    /// Where `epoch-N.safetensors` / `best.safetensors` go; None = no files.
    pub checkpoint_dir: Option<PathBuf>,
    /// Set from outside (Ctrl-C) to stop after the current step with an error.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Continue an interrupted stage instead of starting it afresh.
    pub resume: Option<StageResume>,
    /// The validation metric that picks the best epoch and drives early
    /// stopping (the plan's first `metrics` entry).
    pub select: MetricKind,
}

/// The figure `select` ranks epochs by (higher is better); objectives
/// without click metrics (PA-MLM) fall back to their own score.
fn selection_score(eval: &Evaluation, select: MetricKind) -> f64 {
    match select {
        MetricKind::Auc => eval.auc.unwrap_or(eval.score),
        MetricKind::Logloss => eval.logloss.map_or(eval.score, |l| -l),
    }
}

/// Where an interrupted stage stopped: its completed epochs and checkpoints.
///
/// The weights continue from `last_checkpoint`; the step counter (and so the
/// learning-rate schedule) and the epoch order continue where they were. The
/// optimiser's moments are not checkpointed and start from zero.
#[derive(Debug, Clone)]
pub struct StageResume {
    /// Epochs fully run (trained, evaluated and checkpointed).
    pub done_epochs: usize,
    /// `epoch-<done_epochs>.safetensors`.
    pub last_checkpoint: PathBuf,
    /// The best epoch so far and its checkpoint; re-evaluated on validation
    /// so that later epochs must beat it.
    pub best: Option<(usize, PathBuf)>,
}

#[derive(Debug, Clone)]
pub struct StageResult {
    /// Epoch (from 1) whose weights were kept; None when no epoch ran.
    pub best_epoch: Option<usize>,
    pub epochs_run: usize,
    pub stopped_early: bool,
    pub best_valid: Option<Evaluation>,
    pub test: Option<Evaluation>,
    pub seconds: f64,
    pub train_samples_per_s: f64,
    pub infer_samples_per_s: Option<f64>,
    pub best_checkpoint: Option<PathBuf>,
}

/// Trains every variable of `varmap` with `model`'s objective.
pub fn train_stage<M: StageModel + ?Sized>(
    model: &M,
    varmap: &VarMap,
    data: StageData<'_>,
    spec: &StageSpec,
    sink: &dyn EventSink,
) -> Result<StageResult> {
    let tp = &spec.train;
    if tp.batch == 0 {
        bail!("stage {}: batch size must be at least 1", spec.name);
    }
    if data.train.rows == 0 {
        bail!("stage {}: the training split is empty", spec.name);
    }
    let stage_start = Instant::now();
    seed_dropout(spec.seed);
    let vars = sorted_vars(varmap)?;
    let plm_lr = tp.plm_lr.unwrap_or(tp.lr);
    let mut opt = AdamW::new(
        vars.clone(),
        AdamWConfig::new(tp.lr, plm_lr, tp.weight_decay),
    )?;
    let accumulate = tp.accumulate.max(1);
    let order = |epoch: usize| OrderSpec {
        batch: tp.batch,
        shuffle: true,
        bucket_by_length: tp.bucket_by_length,
        seed: spec.seed,
        epoch,
        max_rows: tp.max_rows,
    };
    let rows_per_epoch = tp
        .max_rows
        .map_or(data.train.rows, |m| m.min(data.train.rows));
    let batches_per_epoch = rows_per_epoch.div_ceil(tp.batch);
    let steps_per_epoch = batches_per_epoch.div_ceil(accumulate);
    let total_steps = steps_per_epoch * tp.epochs;
    let warmup_steps = (tp.warmup * total_steps as f64).round() as usize;
    sink.emit(Event::StageStarted {
        stage: spec.name.clone(),
        kind: spec.kind.clone(),
        epochs: tp.epochs,
        steps_per_epoch,
        rows: rows_per_epoch,
    });

    let mut step = 0usize;
    let mut train_seconds = 0f64;
    let mut train_rows = 0usize;
    let mut best: Option<(usize, Evaluation, Vec<Tensor>)> = None;
    let mut best_checkpoint = None;
    let mut since_best = 0usize;
    let mut epochs_run = 0usize;
    let mut stopped_early = false;

    if let Some(r) = &spec.resume {
        if let Some((best_epoch, path)) = &r.best {
            checkpoint::load_by_name(varmap, path)
                .with_context(|| format!("stage {}: loading {}", spec.name, path.display()))?;
            let eval = model
                .evaluate(
                    data.valid,
                    tp.eval_batch,
                    &EvalCtx {
                        epoch: *best_epoch,
                        split: EvalSplit::Valid,
                        seed: spec.seed,
                    },
                )
                .with_context(|| format!("stage {}: re-evaluating the best epoch", spec.name))?;
            let snapshot = vars
                .iter()
                .map(|(_, v)| Ok(v.as_tensor().copy()?))
                .collect::<Result<Vec<_>>>()?;
            best = Some((*best_epoch, eval, snapshot));
            best_checkpoint = Some(path.clone());
            since_best = r.done_epochs.saturating_sub(*best_epoch);
        }
        checkpoint::load_by_name(varmap, &r.last_checkpoint).with_context(|| {
            format!(
                "stage {}: loading {}",
                spec.name,
                r.last_checkpoint.display()
            )
        })?;
        step = r.done_epochs * steps_per_epoch;
        epochs_run = r.done_epochs;
        sink.emit(Event::Log {
            level: LogLevel::Info,
            message: format!(
                "stage {}: resuming after epoch {} of {} from {}",
                spec.name,
                r.done_epochs,
                tp.epochs,
                r.last_checkpoint.display()
            ),
        });
    }
    let first_epoch = epochs_run + 1;

    for epoch in first_epoch..=tp.epochs {
        let batches = epoch_batches(data.train.rows, data.train.token_lengths(), order(epoch));
        let epoch_start = Instant::now();
        let mut epoch_rows = 0usize;
        for (chunk_idx, chunk) in batches.chunks(accumulate).enumerate() {
            if let Some(c) = &spec.cancel {
                if c.load(Ordering::Relaxed) {
                    bail!("stage {}: interrupted at step {}", spec.name, step + 1);
                }
            }
            let chunk_rows: usize = chunk.iter().map(|b| b.len()).sum();
            let mut grads: Option<GradStore> = None;
            let mut loss_sum = 0f64;
            for (k, rows) in chunk.iter().enumerate() {
                let ctx = StepCtx {
                    epoch,
                    step: step + 1,
                    micro: chunk_idx * accumulate + k,
                    seed: spec.seed,
                };
                let batch = data.train.batch(rows)?;
                let loss = model.loss(&batch, true, &ctx)?;
                let value = loss
                    .to_dtype(DType::F64)?
                    .to_scalar::<f64>()
                    .with_context(|| format!("stage {}: the loss must be a scalar", spec.name))?;
                if !value.is_finite() {
                    bail!(
                        "stage {}: loss became {value} at step {} (epoch {epoch}); try a lower learning rate or gradient clipping",
                        spec.name,
                        step + 1
                    );
                }
                let weight = rows.len() as f64 / chunk_rows as f64;
                loss_sum += value * weight;
                let scaled = if chunk.len() == 1 {
                    loss
                } else {
                    (loss * weight)?
                };
                let g = scaled.backward()?;
                grads = Some(match grads {
                    None => g,
                    Some(acc) => merge_grads(acc, g, &vars)?,
                });
            }
            let grads = match grads {
                Some(g) => g,
                None => continue,
            };
            let mut grad_scale = 1.0;
            if let Some(clip) = tp.grad_clip {
                let norm = opt.grad_norm(&grads)?;
                if !norm.is_finite() {
                    bail!(
                        "stage {}: gradient norm became {norm} at step {} (epoch {epoch})",
                        spec.name,
                        step + 1
                    );
                }
                if norm > clip {
                    grad_scale = clip / (norm + 1e-6);
                }
            }
            let mult = lr_multiplier(tp.schedule, step, total_steps, warmup_steps);
            opt.step(&grads, mult, grad_scale)?;
            step += 1;
            epoch_rows += chunk_rows;
            let elapsed = epoch_start.elapsed().as_secs_f64();
            sink.emit(Event::Step {
                stage: spec.name.clone(),
                epoch,
                step,
                loss: loss_sum,
                lr: tp.lr * mult,
                samples_per_s: if elapsed > 0.0 {
                    epoch_rows as f64 / elapsed
                } else {
                    0.0
                },
            });
        }
        train_seconds += epoch_start.elapsed().as_secs_f64();
        train_rows += epoch_rows;
        epochs_run = epoch;

        let eval = model
            .evaluate(
                data.valid,
                tp.eval_batch,
                &EvalCtx {
                    epoch,
                    split: EvalSplit::Valid,
                    seed: spec.seed,
                },
            )
            .with_context(|| format!("stage {}: evaluating the validation split", spec.name))?;
        emit_eval(sink, &spec.name, epoch, EvalSplit::Valid, &eval);

        let mut saved_epoch = None;
        if let Some(dir) = &spec.checkpoint_dir {
            let s = checkpoint::save(varmap, &dir.join(format!("epoch-{epoch}.safetensors")))?;
            emit_checkpoint(sink, &spec.name, Some(epoch), &s);
            saved_epoch = Some(s);
        }
        let improved = best.as_ref().is_none_or(|(_, b, _)| {
            selection_score(&eval, spec.select) > selection_score(b, spec.select)
        });
        if improved {
            let snapshot = vars
                .iter()
                .map(|(_, v)| Ok(v.as_tensor().copy()?))
                .collect::<Result<Vec<_>>>()?;
            if let (Some(dir), Some(s)) = (&spec.checkpoint_dir, &saved_epoch) {
                let path = dir.join("best.safetensors");
                std::fs::copy(&s.path, &path)
                    .with_context(|| format!("writing {}", path.display()))?;
                let b = checkpoint::Saved {
                    path: path.clone(),
                    bytes: s.bytes,
                    sha256: s.sha256.clone(),
                };
                emit_checkpoint(sink, &spec.name, Some(epoch), &b);
                best_checkpoint = Some(path);
            }
            best = Some((epoch, eval, snapshot));
            since_best = 0;
        } else {
            since_best += 1;
            if let Some(p) = tp.patience {
                if since_best >= p {
                    stopped_early = epoch < tp.epochs;
                    if stopped_early {
                        sink.emit(Event::Log {
                            level: LogLevel::Info,
                            message: format!(
                                "stage {}: early stop after epoch {epoch} (no validation improvement for {p} epochs)",
                                spec.name
                            ),
                        });
                    }
                    break;
                }
            }
        }
    }

    let (best_epoch, best_valid) = match best {
        Some((epoch, eval, snapshot)) => {
            restore(&vars, &snapshot)?;
            if epoch != epochs_run {
                sink.emit(Event::Log {
                    level: LogLevel::Info,
                    message: format!(
                        "stage {}: restored the weights of epoch {epoch} (best validation score)",
                        spec.name
                    ),
                });
            }
            (Some(epoch), Some(eval))
        }
        None => (None, None),
    };

    let test = match data.test {
        Some(split) => {
            let eval = model
                .evaluate(
                    split,
                    tp.eval_batch,
                    &EvalCtx {
                        epoch: best_epoch.unwrap_or(0),
                        split: EvalSplit::Test,
                        seed: spec.seed,
                    },
                )
                .with_context(|| format!("stage {}: evaluating the test split", spec.name))?;
            emit_eval(
                sink,
                &spec.name,
                best_epoch.unwrap_or(0),
                EvalSplit::Test,
                &eval,
            );
            Some(eval)
        }
        None => None,
    };
    let infer = test
        .as_ref()
        .or(best_valid.as_ref())
        .and_then(|e| (e.seconds > 0.0).then(|| e.rows as f64 / e.seconds));
    let train_sps = if train_seconds > 0.0 {
        train_rows as f64 / train_seconds
    } else {
        0.0
    };
    let seconds = stage_start.elapsed().as_secs_f64();
    sink.emit(Event::StageFinished {
        stage: spec.name.clone(),
        best_epoch,
        seconds,
        train_samples_per_s: train_sps,
        infer_samples_per_s: infer,
    });
    Ok(StageResult {
        best_epoch,
        epochs_run,
        stopped_early,
        best_valid,
        test,
        seconds,
        train_samples_per_s: train_sps,
        infer_samples_per_s: infer,
        best_checkpoint,
    })
}

fn merge_grads(mut acc: GradStore, mut g: GradStore, vars: &[(String, Var)]) -> Result<GradStore> {
    for (_, v) in vars {
        if let Some(new) = g.remove(v.as_tensor()) {
            let sum = match acc.get(v.as_tensor()) {
                Some(old) => (old + new)?,
                None => new,
            };
            acc.insert(v.as_tensor(), sum);
        }
    }
    Ok(acc)
}

fn restore(vars: &[(String, Var)], snapshot: &[Tensor]) -> Result<()> {
    for ((name, v), t) in vars.iter().zip(snapshot) {
        v.set(t).with_context(|| format!("restoring {name}"))?;
    }
    Ok(())
}

fn emit_eval(sink: &dyn EventSink, stage: &str, epoch: usize, split: EvalSplit, e: &Evaluation) {
    sink.emit(Event::Eval {
        stage: stage.to_string(),
        epoch,
        split,
        auc: e.auc,
        logloss: e.logloss,
        metrics: e.metrics.clone(),
    });
}

fn emit_checkpoint(sink: &dyn EventSink, stage: &str, epoch: Option<usize>, s: &checkpoint::Saved) {
    sink.emit(Event::Checkpoint {
        stage: stage.to_string(),
        epoch,
        path: s.path.display().to_string(),
        bytes: s.bytes,
        sha256: s.sha256.clone(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(auc: Option<f64>, logloss: Option<f64>, score: f64) -> Evaluation {
        Evaluation {
            auc,
            logloss,
            metrics: vec![],
            score,
            rows: 10,
            seconds: 1.0,
        }
    }

    #[test]
    fn the_first_listed_metric_selects_the_epoch() {
        let a = ev(Some(0.80), Some(0.50), 0.80);
        let b = ev(Some(0.78), Some(0.45), 0.78);
        assert!(selection_score(&a, MetricKind::Auc) > selection_score(&b, MetricKind::Auc));
        assert!(
            selection_score(&b, MetricKind::Logloss) > selection_score(&a, MetricKind::Logloss)
        );
        // PA-MLM has no click metrics: its own score decides either way.
        let mlm = ev(None, None, -2.5);
        assert_eq!(selection_score(&mlm, MetricKind::Logloss), -2.5);
        assert_eq!(selection_score(&mlm, MetricKind::Auc), -2.5);
    }
}
