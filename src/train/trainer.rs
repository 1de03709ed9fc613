//! The stage loop shared by every objective: epochs, batch order, gradient
//! accumulation, AdamW with groups, warm-up + decay, clipping, per-epoch
//! validation, early stopping, best-weight restore, test evaluation,
//! checkpoints and events.
//!
//! An objective plugs in through [`StageModel`]: it supplies the loss of a
//! batch and, optionally, its own evaluation (PA-MLM scores masked-token
//! accuracy instead of AUC). The best epoch is the one with the highest
//! [`Evaluation::score`].

use anyhow::{anyhow, bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use candle_nn::VarMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::data::{epoch_batches, sample_rows, Batch, DeviceSplit, OrderSpec};
use crate::model::nn::seed_dropout;
use crate::model::vars::sorted_vars;
use crate::plan::{MetricKind, TrainPlan};
use crate::train::checkpoint;
use crate::train::evaluation::is_interrupted;
pub use crate::train::evaluation::{evaluate_ctr, predict_split, EvalCtx, Evaluation, Interrupted};
use crate::train::events::{EvalSplit, Event, EventSink, LogLevel};
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

/// A trainable objective over a model whose variables live in one `VarMap`.
pub trait StageModel {
    /// Scalar loss of one (micro-)batch. Dropout etc. active when `train`.
    fn loss(&self, batch: &Batch, train: bool, ctx: &StepCtx) -> Result<Tensor>;

    /// (B,) logits for CTR evaluation.
    fn predict_logits(&self, batch: &Batch) -> Result<Tensor>;

    /// Evaluates a split. The default computes AUC and LogLoss from
    /// [`StageModel::predict_logits`] and scores by AUC. An implementation
    /// calls [`EvalCtx::check_cancel`] before each batch.
    fn evaluate(
        &self,
        split: &DeviceSplit,
        eval_batch: usize,
        ctx: &EvalCtx<'_>,
    ) -> Result<Evaluation> {
        evaluate_ctr(self, split, eval_batch, ctx)
    }
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
    /// Set from outside (Ctrl-C) to stop with an error after the current
    /// step or evaluation batch.
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

/// Where an interrupted stage stopped: its trained epochs and checkpoints.
///
/// The weights continue from `last_checkpoint`; the step counter (and so the
/// learning-rate schedule) and the epoch order continue where they were. The
/// optimiser's moments are not checkpointed and start from zero.
#[derive(Debug, Clone)]
pub struct StageResume {
    /// Epochs trained and checkpointed.
    pub done_epochs: usize,
    /// `epoch-<done_epochs>.safetensors`.
    pub last_checkpoint: PathBuf,
    /// Epoch `done_epochs` was saved but its validation pass never finished:
    /// it is evaluated, not trained again.
    pub unevaluated: bool,
    /// The best evaluated epoch and a file holding its weights (its
    /// `epoch-N` checkpoint: `best.safetensors` may already hold a later
    /// epoch's); re-evaluated on validation so that later epochs must beat it.
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

/// The best epoch so far, with a copy of its weights.
struct Best {
    epoch: usize,
    eval: Evaluation,
    snapshot: Vec<Tensor>,
}

/// The optimiser and where the stage is in its schedule.
struct Optimiser {
    opt: AdamW,
    /// Steps taken in the stage (resumed stages start past their done epochs).
    step: usize,
    total_steps: usize,
    warmup_steps: usize,
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
    // `valid_rows`: one subset for the whole stage, so epochs stay comparable.
    let valid_subset = match tp.valid_rows.filter(|&n| n < data.valid.rows) {
        Some(n) => {
            sink.emit(Event::Log {
                level: LogLevel::Info,
                message: format!(
                    "stage {}: validating on {n} of {} rows (valid_rows)",
                    spec.name, data.valid.rows
                ),
            });
            Some(
                data.valid
                    .subset(&sample_rows(data.valid.rows, n, spec.seed))?,
            )
        }
        None => None,
    };
    let valid = valid_subset.as_ref().unwrap_or(data.valid);
    let vars = sorted_vars(varmap)?;
    let plm_lr = tp.plm_lr.unwrap_or(tp.lr);
    let rows_per_epoch = tp
        .max_rows
        .map_or(data.train.rows, |m| m.min(data.train.rows));
    let batches_per_epoch = rows_per_epoch.div_ceil(tp.batch);
    let steps_per_epoch = batches_per_epoch.div_ceil(tp.accumulate.max(1));
    let total_steps = steps_per_epoch * tp.epochs;
    let mut optim = Optimiser {
        opt: AdamW::new(
            vars.clone(),
            AdamWConfig::new(tp.lr, plm_lr, tp.weight_decay),
        )?,
        step: 0,
        total_steps,
        warmup_steps: (tp.warmup * total_steps as f64).round() as usize,
    };
    sink.emit(Event::StageStarted {
        stage: spec.name.clone(),
        kind: spec.kind.clone(),
        epochs: tp.epochs,
        steps_per_epoch,
        rows: rows_per_epoch,
    });

    let mut train_seconds = 0f64;
    let mut train_rows = 0usize;
    let mut best: Option<Best> = None;
    let mut best_checkpoint = None;
    let mut since_best = 0usize;
    let mut epochs_run = 0usize;
    let mut stopped_early = false;
    // A resumed epoch that was saved but not evaluated: evaluated, not trained again.
    let mut unevaluated: Option<checkpoint::Saved> = None;

    if let Some(r) = &spec.resume {
        if let Some((best_epoch, path)) = &r.best {
            checkpoint::load_by_name(varmap, path)
                .with_context(|| format!("stage {}: loading {}", spec.name, path.display()))?;
            let eval = evaluate(
                model,
                valid,
                spec,
                *best_epoch,
                EvalSplit::Valid,
                &format!("re-evaluating the best epoch ({best_epoch})"),
            )?;
            best = Some(Best {
                epoch: *best_epoch,
                eval,
                snapshot: snapshot(&vars)?,
            });
            best_checkpoint = Some(
                spec.checkpoint_dir
                    .as_ref()
                    .map_or_else(|| path.clone(), |d| d.join("best.safetensors")),
            );
            let evaluated = r.done_epochs.saturating_sub(usize::from(r.unevaluated));
            since_best = evaluated.saturating_sub(*best_epoch);
        }
        checkpoint::load_by_name(varmap, &r.last_checkpoint).with_context(|| {
            format!(
                "stage {}: loading {}",
                spec.name,
                r.last_checkpoint.display()
            )
        })?;
        optim.step = r.done_epochs * steps_per_epoch;
        epochs_run = r.done_epochs;
        let message = if r.unevaluated {
            unevaluated = Some(checkpoint::describe(&r.last_checkpoint)?);
            format!(
                "stage {}: resuming at epoch {} of {}: trained before the interruption, evaluating {}",
                spec.name,
                r.done_epochs,
                tp.epochs,
                r.last_checkpoint.display()
            )
        } else {
            format!(
                "stage {}: resuming after epoch {} of {} from {}",
                spec.name,
                r.done_epochs,
                tp.epochs,
                r.last_checkpoint.display()
            )
        };
        sink.emit(Event::Log {
            level: LogLevel::Info,
            message,
        });
    }
    let first_epoch = epochs_run + usize::from(unevaluated.is_none());
    // Interrupted in its test pass after an early stop: no more epochs.
    let patience_spent =
        unevaluated.is_none() && best.is_some() && tp.patience.is_some_and(|p| since_best >= p);
    if patience_spent {
        stopped_early = epochs_run < tp.epochs;
    }
    let last_epoch = if patience_spent {
        epochs_run
    } else {
        tp.epochs
    };

    for epoch in first_epoch..=last_epoch {
        let saved = match unevaluated.take() {
            Some(s) => Some(s),
            None => {
                let epoch_start = Instant::now();
                train_rows += train_epoch(model, &vars, data.train, spec, &mut optim, epoch, sink)?;
                train_seconds += epoch_start.elapsed().as_secs_f64();
                epochs_run = epoch;
                // Saved before validation: an interruption during it must not
                // cost the epoch's training.
                match &spec.checkpoint_dir {
                    Some(dir) => {
                        let s = checkpoint::save(
                            varmap,
                            &dir.join(format!("epoch-{epoch}.safetensors")),
                        )?;
                        emit_checkpoint(sink, &spec.name, Some(epoch), &s);
                        Some(s)
                    }
                    None => None,
                }
            }
        };

        let eval = evaluate(
            model,
            valid,
            spec,
            epoch,
            EvalSplit::Valid,
            &format!("evaluating epoch {epoch} on the validation split"),
        )?;
        let improved = best.as_ref().is_none_or(|b| {
            selection_score(&eval, spec.select) > selection_score(&b.eval, spec.select)
        });
        if improved {
            if let (Some(dir), Some(s)) = (&spec.checkpoint_dir, &saved) {
                let b = checkpoint::copy(s, &dir.join("best.safetensors"))?;
                emit_checkpoint(sink, &spec.name, Some(epoch), &b);
                best_checkpoint = Some(b.path);
            }
            since_best = 0;
        } else {
            since_best += 1;
        }
        // After the best checkpoint: `run --resume` takes a recorded
        // validation result to mean the epoch's bookkeeping is complete.
        emit_eval(sink, &spec.name, epoch, EvalSplit::Valid, &eval);
        if improved {
            best = Some(Best {
                epoch,
                eval,
                snapshot: snapshot(&vars)?,
            });
        } else if let Some(p) = tp.patience {
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

    let (best_epoch, best_valid) = match best {
        Some(b) => {
            restore(&vars, &b.snapshot)?;
            if b.epoch != epochs_run {
                sink.emit(Event::Log {
                    level: LogLevel::Info,
                    message: format!(
                        "stage {}: restored the weights of epoch {} (best validation score)",
                        spec.name, b.epoch
                    ),
                });
            }
            (Some(b.epoch), Some(b.eval))
        }
        None => (None, None),
    };

    let test = match data.test {
        Some(split) => {
            let epoch = best_epoch.unwrap_or(0);
            let eval = evaluate(
                model,
                split,
                spec,
                epoch,
                EvalSplit::Test,
                "evaluating the test split",
            )?;
            emit_eval(sink, &spec.name, epoch, EvalSplit::Test, &eval);
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

/// One epoch of optimiser steps; returns the rows trained on.
fn train_epoch<M: StageModel + ?Sized>(
    model: &M,
    vars: &[(String, Var)],
    train: &DeviceSplit,
    spec: &StageSpec,
    optim: &mut Optimiser,
    epoch: usize,
    sink: &dyn EventSink,
) -> Result<usize> {
    let tp = &spec.train;
    let accumulate = tp.accumulate.max(1);
    let batches = epoch_batches(
        train.rows,
        train.token_lengths(),
        OrderSpec {
            batch: tp.batch,
            shuffle: true,
            bucket_by_length: tp.bucket_by_length,
            seed: spec.seed,
            epoch,
            max_rows: tp.max_rows,
        },
    );
    let epoch_start = Instant::now();
    let mut epoch_rows = 0usize;
    for (chunk_idx, chunk) in batches.chunks(accumulate).enumerate() {
        if let Some(c) = &spec.cancel {
            if c.load(Ordering::Relaxed) {
                bail!(
                    "stage {}: interrupted at step {}",
                    spec.name,
                    optim.step + 1
                );
            }
        }
        let chunk_rows: usize = chunk.iter().map(|b| b.len()).sum();
        let mut grads: Option<GradStore> = None;
        let mut loss_sum = 0f64;
        for (k, rows) in chunk.iter().enumerate() {
            let ctx = StepCtx {
                epoch,
                step: optim.step + 1,
                micro: chunk_idx * accumulate + k,
                seed: spec.seed,
            };
            let batch = train.batch(rows)?;
            let loss = model.loss(&batch, true, &ctx)?;
            let value = loss
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()
                .with_context(|| format!("stage {}: the loss must be a scalar", spec.name))?;
            if !value.is_finite() {
                bail!(
                    "stage {}, epoch {epoch}, step {}: loss became {value}; try a lower learning rate or gradient clipping",
                    spec.name,
                    optim.step + 1
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
                Some(acc) => merge_grads(acc, g, vars)?,
            });
        }
        let grads = match grads {
            Some(g) => g,
            None => continue,
        };
        // Every step, clipped or not: one NaN or Inf in any gradient makes
        // the global norm non-finite, and stepping on it would write NaN into
        // the weights (and the next checkpoint). One reduction per step.
        let norm = optim.opt.grad_norm(&grads)?;
        if !norm.is_finite() {
            bail!(
                "stage {}, epoch {epoch}, step {}: gradient norm became {norm}; try a lower learning rate or gradient clipping",
                spec.name,
                optim.step + 1
            );
        }
        let mut grad_scale = 1.0;
        if let Some(clip) = tp.grad_clip {
            if norm > clip {
                grad_scale = clip / (norm + 1e-6);
            }
        }
        let mult = lr_multiplier(
            tp.schedule,
            optim.step,
            optim.total_steps,
            optim.warmup_steps,
        );
        optim.opt.step(&grads, mult, grad_scale)?;
        optim.step += 1;
        epoch_rows += chunk_rows;
        let elapsed = epoch_start.elapsed().as_secs_f64();
        sink.emit(Event::Step {
            stage: spec.name.clone(),
            epoch,
            step: optim.step,
            loss: loss_sum,
            lr: tp.lr * mult,
            samples_per_s: if elapsed > 0.0 {
                epoch_rows as f64 / elapsed
            } else {
                0.0
            },
        });
    }
    Ok(epoch_rows)
}

/// One evaluation pass of `split`, cancellable like a training step: a pass
/// stopped by the cancel flag becomes the stage's "interrupted" error.
fn evaluate<M: StageModel + ?Sized>(
    model: &M,
    split: &DeviceSplit,
    spec: &StageSpec,
    epoch: usize,
    which: EvalSplit,
    what: &str,
) -> Result<Evaluation> {
    let ctx = EvalCtx {
        epoch,
        split: which,
        seed: spec.seed,
        cancel: spec.cancel.as_deref(),
    };
    model
        .evaluate(split, spec.train.eval_batch, &ctx)
        .map_err(|e| {
            if is_interrupted(&e) {
                anyhow!("stage {}: interrupted while {what}", spec.name)
            } else {
                e.context(format!("stage {}: {what}", spec.name))
            }
        })
}

fn snapshot(vars: &[(String, Var)]) -> Result<Vec<Tensor>> {
    vars.iter()
        .map(|(_, v)| Ok(v.as_tensor().copy()?))
        .collect()
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
