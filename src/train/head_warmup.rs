//! `head_warmup N` on a PA-MLM stage: N optimiser steps that train the MLM
//! head alone before PA-MLM proper.
//!
//! A checkpoint without an MLM head (all-MiniLM-L6-v2) starts PA-MLM with a
//! random transform and bias, so the first steps' gradients mostly fit the
//! head while the prompts and the PLM are pushed around by its noise. Here
//! the encoder's outputs are detached: the PLM, the prompt generator and the
//! CTR model neither change nor pay for a backward pass.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};
use candle_core::Tensor;

use super::evaluation::Interrupted;
use super::events::{Event, EventSink, LogLevel};
use super::optim::{AdamW, AdamWConfig};
use super::pa_mlm::{mask_tokens, step_rng, PaMlmModel};
use crate::data::{epoch_batches, DeviceSplit, OrderSpec};
use crate::model::vars::sorted_vars;

/// What a warm-up did: mean masked-token loss over its first and last tenth of steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadWarmup {
    pub steps: usize,
    pub first_loss: f64,
    pub last_loss: f64,
}

/// Trains the `mlm.*` variables of `varmap` for `steps` batches of `batch`
/// training rows at learning rate `lr`.
#[allow(clippy::too_many_arguments)]
pub fn warm_up_head(
    model: &PaMlmModel,
    varmap: &candle_nn::VarMap,
    train: &DeviceSplit,
    steps: usize,
    batch: usize,
    lr: f64,
    seed: u64,
    cancel: Option<&AtomicBool>,
) -> Result<HeadWarmup> {
    let head: Vec<_> = sorted_vars(varmap)?
        .into_iter()
        .filter(|(n, _)| n.starts_with("mlm."))
        .collect();
    if head.is_empty() {
        bail!("head_warmup: the model has no MLM head variables");
    }
    let mut opt = AdamW::new(head, AdamWConfig::new(lr, lr, 0.0))?;
    let mut losses = Vec::with_capacity(steps);
    let mut epoch = 0;
    'outer: loop {
        let order = epoch_batches(
            train.rows,
            train.token_lengths(),
            OrderSpec {
                batch: batch.max(1),
                shuffle: true,
                bucket_by_length: true,
                seed: seed ^ 0x4EAD_3A53,
                epoch,
                max_rows: None,
            },
        );
        for rows in order {
            if losses.len() == steps {
                break 'outer;
            }
            if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
                return Err(Interrupted.into());
            }
            let b = train.batch(&rows)?;
            let text = b
                .text
                .as_ref()
                .context("PA-MLM needs the text side of the batch")?;
            let mut rng = step_rng(seed ^ 0x4EAD_3A53, epoch, losses.len());
            let Some(m) = mask_tokens(text, &model.text, model.ratio, model.unit, &mut rng)? else {
                continue;
            };
            let loss = model.head_loss(&b, &m)?;
            let value = scalar(&loss)?;
            let step = losses.len() + 1;
            if !value.is_finite() {
                bail!("head warm-up, pass {}, step {step}: loss became {value}; try a lower warm-up learning rate", epoch + 1);
            }
            let grads = loss.backward()?;
            let norm = opt.grad_norm(&grads)?;
            if !norm.is_finite() {
                bail!("head warm-up, pass {}, step {step}: gradient norm became {norm}; try a lower warm-up learning rate", epoch + 1);
            }
            opt.step(&grads, 1.0, 1.0)?;
            losses.push(value);
        }
        epoch += 1;
    }
    let tenth = (steps / 10).max(1).min(losses.len().max(1));
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    Ok(HeadWarmup {
        steps: losses.len(),
        first_loss: mean(&losses[..tenth.min(losses.len())]),
        last_loss: mean(&losses[losses.len().saturating_sub(tenth)..]),
    })
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)
}

/// Runs the warm-up a PA-MLM stage asks for and logs what it did.
#[allow(clippy::too_many_arguments)]
pub fn run_head_warmup(
    model: &PaMlmModel,
    varmap: &candle_nn::VarMap,
    train: &DeviceSplit,
    steps: usize,
    batch: usize,
    lr: f64,
    seed: u64,
    cancel: Option<&AtomicBool>,
    sink: &dyn EventSink,
    stage: &str,
) -> Result<()> {
    let start = std::time::Instant::now();
    let w = warm_up_head(model, varmap, train, steps, batch, lr, seed, cancel).map_err(|e| {
        if e.is::<Interrupted>() {
            e
        } else {
            e.context(format!("stage {stage}"))
        }
    })?;
    sink.emit(Event::Log {
        level: LogLevel::Info,
        message: format!(
            "stage {stage}: MLM head warmed up alone for {} steps at lr {lr:e} \
             (masked-token loss {:.3} → {:.3}, {:.1}s)",
            w.steps,
            w.first_loss,
            w.last_loss,
            start.elapsed().as_secs_f64()
        ),
    });
    Ok(())
}
