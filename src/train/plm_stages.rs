//! Running the stages that carry a PLM: `pretrain pa_mlm`, `finetune joint`
//! and `finetune plm_only`.
//!
//! Each stage builds its model on a fresh `VarMap` (seeded by the run seed),
//! copies the PLM checkpoint in, then the previous stage's weights by name,
//! trains with AdamW (a CTR group under `ctr.` at `lr`, everything else —
//! PLM, prompt generator, heads, α — at `plm_lr`), evaluates every epoch,
//! keeps the best epoch's weights (early stopping with `patience`) and saves
//! them as safetensors for the next stage.
//!
//! Variable names: `ctr.*` (CTR model), `prompt.*` (generator), `plm.*`
//! (encoder, HF names), `mlm.*` (MLM head), `plm_head.*` (classification
//! head), `fusion.alpha`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use sha2::{Digest, Sha256};

use super::events::{EvalSplit, Event, EventSink, LogLevel};
use super::joint::{Fusion, PlmClassifier};
use super::metrics;
use super::optim::{lr_multiplier, AdamW, AdamWConfig};
use super::pa_mlm::{mask_tokens, PaMlmModel};
use crate::data::{epoch_batches, Batch, Dataset, DeviceSplit, OrderSpec, TextMeta};
use crate::error::invalid;
use crate::model::ctr::CtrModel;
use crate::model::heads::{ClassificationHead, MlmHead};
use crate::model::plm::{load_checkpoint, Checkpoint, Config, PlmEncoder};
use crate::model::prompt::PromptGenerator;
use crate::model::vars::{seeded_var_builder, sorted_vars};
use crate::plan::types::{ExperimentPlan, FusionPlan, StageKind, StagePlan};

/// What a PLM stage needs from the runner.
pub struct PlmStageInput<'a> {
    pub plan: &'a ExperimentPlan,
    pub stage: &'a StagePlan,
    pub dataset: &'a Dataset,
    /// From `resolve_plm_dir`.
    pub plm_dir: &'a Path,
    pub device: &'a Device,
    pub sink: &'a dyn EventSink,
    /// Weights of an earlier stage to start from (loaded by name).
    pub init_from: Option<&'a Path>,
    /// Where this stage's best weights are written (safetensors).
    pub save_to: Option<&'a Path>,
}

#[derive(Debug, Clone, Default)]
pub struct PlmStageOutput {
    pub best_epoch: Option<usize>,
    pub valid_auc: Option<f64>,
    pub test_auc: Option<f64>,
    pub test_logloss: Option<f64>,
    /// PA-MLM: held-out masked-token loss / accuracy of the best epoch.
    pub mlm_loss: Option<f64>,
    pub mlm_acc: Option<f64>,
    pub mlm_acc_no_prompt: Option<f64>,
    pub train_samples_per_s: f64,
    pub infer_samples_per_s: Option<f64>,
    pub weights: Option<PathBuf>,
}

enum StageModel {
    PaMlm(PaMlmModel),
    Classifier(PlmClassifier),
}

fn log(sink: &dyn EventSink, level: LogLevel, message: String) {
    sink.emit(Event::Log { level, message });
}

/// Builds the encoder (and MLM head) and copies the checkpoint in.
fn build_plm(dir: &Path, input: &PlmStageInput, vb: &VarBuilder) -> Result<(PlmEncoder, Config)> {
    let plm_plan = input
        .plan
        .plm
        .as_ref()
        .ok_or_else(|| invalid(format!("stage \"{}\" needs a PLM", input.stage.name)))?;
    let cfg = Config::from_dir(dir)?;
    if let Some(declared) = cfg.declared_family() {
        if declared != plm_plan.family {
            log(
                input.sink,
                LogLevel::Warn,
                format!(
                    "PLM \"{}\": config.json says {declared:?}, the experiment says {:?}; using {:?} position ids",
                    plm_plan.name, plm_plan.family, plm_plan.family
                ),
            );
        }
    }
    let enc = PlmEncoder::load(vb.pp("plm"), &cfg, plm_plan.family)?;
    Ok((enc, cfg))
}

fn text_meta(ds: &Dataset) -> Result<&TextMeta> {
    ds.meta.text.as_ref().ok_or_else(|| {
        invalid("the dataset has no text side (the experiment needs a PLM and a template)")
    })
}

/// Copies every variable present in a safetensors file into `varmap` by name;
/// returns (loaded, skipped-because-absent-here) counts.
pub fn load_by_name(varmap: &VarMap, path: &Path) -> Result<(usize, usize)> {
    let tensors = candle_core::safetensors::load(path, &Device::Cpu)
        .with_context(|| format!("reading weights {}", path.display()))?;
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("variable map lock poisoned"))?
        .clone();
    let (mut loaded, mut skipped) = (0, 0);
    for (name, t) in tensors {
        match vars.get(&name) {
            Some(v) if v.dims() == t.dims() => {
                v.set(&t.to_dtype(v.dtype())?.to_device(v.device())?)?;
                loaded += 1;
            }
            Some(v) => {
                return Err(invalid(format!(
                    "{}: {name} has shape {:?} but this stage's model needs {:?}",
                    path.display(),
                    t.dims(),
                    v.dims()
                )))
            }
            None => skipped += 1,
        }
    }
    Ok((loaded, skipped))
}

fn snapshot(vars: &[(String, Var)]) -> Result<Vec<Tensor>> {
    Ok(vars
        .iter()
        .map(|(_, v)| v.as_tensor().copy())
        .collect::<candle_core::Result<_>>()?)
}

fn restore(vars: &[(String, Var)], snap: &[Tensor]) -> Result<()> {
    for ((_, v), t) in vars.iter().zip(snap) {
        v.set(t)?;
    }
    Ok(())
}

fn save(
    varmap: &VarMap,
    path: &Path,
    sink: &dyn EventSink,
    stage: &str,
    epoch: Option<usize>,
) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    varmap
        .save(path)
        .with_context(|| format!("writing {}", path.display()))?;
    let bytes = std::fs::read(path)?;
    sink.emit(Event::Checkpoint {
        stage: stage.to_string(),
        epoch,
        path: path.display().to_string(),
        bytes: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
    });
    Ok(())
}

/// Adds `b` into `a` (gradient accumulation).
fn accumulate(
    a: &mut candle_core::backprop::GradStore,
    b: candle_core::backprop::GradStore,
    vars: &[(String, Var)],
) -> Result<()> {
    let mut b = b;
    for (_, v) in vars {
        if let Some(gb) = b.remove(v.as_tensor()) {
            let sum = match a.get(v.as_tensor()) {
                Some(ga) => (ga + gb)?,
                None => gb,
            };
            a.insert(v.as_tensor(), sum);
        }
    }
    Ok(())
}

/// Held-out PA-MLM metrics: (loss, acc, loss without prompts, acc without prompts).
fn eval_mlm(
    model: &PaMlmModel,
    split: &DeviceSplit,
    meta: &TextMeta,
    ratio: f64,
    batch: usize,
    seed: u64,
) -> Result<(f64, f64, f64, f64)> {
    // A fixed masking seed makes epochs comparable.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5EED_0F_E7A1);
    let order = epoch_batches(
        split.rows,
        split.token_lengths(),
        OrderSpec {
            batch,
            shuffle: false,
            bucket_by_length: true,
            seed,
            epoch: 0,
            max_rows: None,
        },
    );
    let (mut ce, mut ok, mut ce0, mut ok0, mut n) = (0f64, 0usize, 0f64, 0usize, 0usize);
    for rows in order {
        let b = split.batch(&rows)?;
        let text = b.text.as_ref().context("no text in batch")?;
        let Some(m) = mask_tokens(&text.ids, &text.mask, meta, ratio, &mut rng)? else {
            continue;
        };
        let (c, k) = model.eval_counts(&b, &m, false)?;
        let (c0, k0) = model.eval_counts(&b, &m, true)?;
        ce += c;
        ok += k;
        ce0 += c0;
        ok0 += k0;
        n += m.count;
    }
    let n = n.max(1) as f64;
    Ok((ce / n, ok as f64 / n, ce0 / n, ok0 as f64 / n))
}

/// (AUC, LogLoss, samples/s) of a classifier on a split.
fn eval_classifier(
    model: &PlmClassifier,
    split: &DeviceSplit,
    batch: usize,
) -> Result<(Option<f64>, f64, f64)> {
    let order = epoch_batches(
        split.rows,
        split.token_lengths(),
        OrderSpec {
            batch,
            shuffle: false,
            bucket_by_length: true,
            seed: 0,
            epoch: 0,
            max_rows: None,
        },
    );
    let start = Instant::now();
    let (mut scores, mut labels) = (
        Vec::with_capacity(split.rows),
        Vec::with_capacity(split.rows),
    );
    for rows in order {
        let b = split.batch(&rows)?;
        let logit = model.forward(&b, false)?;
        scores.extend(logit.to_dtype(DType::F32)?.to_vec1::<f32>()?);
        labels.extend(b.labels.to_vec1::<f32>()?);
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let auc = metrics::auc(&scores, &labels).ok();
    let ll = metrics::logloss_from_logits(&scores, &labels)?;
    Ok((auc, ll, labels.len() as f64 / secs))
}

fn train_loss(
    model: &StageModel,
    batch: &Batch,
    meta: &TextMeta,
    ratio: f64,
    rng: &mut rand::rngs::StdRng,
) -> Result<Option<Tensor>> {
    match model {
        StageModel::PaMlm(m) => {
            let text = batch.text.as_ref().context("no text in batch")?;
            match mask_tokens(&text.ids, &text.mask, meta, ratio, rng)? {
                Some(masked) => Ok(Some(m.loss(batch, &masked, true)?)),
                None => Ok(None),
            }
        }
        StageModel::Classifier(c) => {
            let logit = c.forward(batch, true)?;
            Ok(Some(crate::model::nn::bce_with_logits(
                &logit,
                &batch.labels,
            )?))
        }
    }
}

/// Runs one PLM stage to completion.
pub fn run_plm_stage(input: &PlmStageInput) -> Result<PlmStageOutput> {
    let plan = input.plan;
    let stage = input.stage;
    let tp = &stage.train;
    let ds = input.dataset;
    let meta = text_meta(ds)?;
    let dev = input.device;
    crate::model::nn::seed_dropout(plan.seed);
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, plan.seed, DType::F32, dev);
    let (encoder, cfg) = build_plm(input.plm_dir, input, &vb)?;
    let ctr_plan = || {
        plan.ctr
            .as_ref()
            .ok_or_else(|| invalid(format!("stage \"{}\" needs a CTR backbone", stage.name)))
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
            &cfg,
            &plan.prompts,
        )?)
    };
    let (model, mask_ratio) = match &stage.kind {
        StageKind::PaMlm { mask } => {
            let ctr = CtrModel::new(ctr_plan()?, &ds.meta, vb.clone())?;
            let gen = generator(&ctr)?;
            let mlm = MlmHead::new(vb.pp("mlm"), &cfg, encoder.word_embeddings())?;
            (
                StageModel::PaMlm(PaMlmModel {
                    ctr,
                    generator: gen,
                    encoder,
                    mlm,
                }),
                *mask,
            )
        }
        StageKind::Joint => {
            let ctr = CtrModel::new(ctr_plan()?, &ds.meta, vb.clone())?;
            let gen = generator(&ctr)?;
            let head = ClassificationHead::new(vb.pp("plm_head"), cfg.hidden_size)?;
            let fusion = Fusion::new(&plan.fusion, &vb)?;
            (
                StageModel::Classifier(PlmClassifier {
                    ctr: Some(ctr),
                    generator: Some(gen),
                    encoder,
                    head,
                    pooling: plan
                        .plm
                        .as_ref()
                        .map(|p| p.pool)
                        .unwrap_or(crate::plan::types::Pooling::Mean),
                    fusion,
                }),
                0.0,
            )
        }
        StageKind::PlmOnly => {
            let head = ClassificationHead::new(vb.pp("plm_head"), cfg.hidden_size)?;
            (
                StageModel::Classifier(PlmClassifier {
                    ctr: None,
                    generator: None,
                    encoder,
                    head,
                    pooling: plan
                        .plm
                        .as_ref()
                        .map(|p| p.pool)
                        .unwrap_or(crate::plan::types::Pooling::Mean),
                    fusion: Fusion::new(&FusionPlan::None, &vb)?,
                }),
                0.0,
            )
        }
        StageKind::CtrOnly { .. } => {
            return Err(invalid(format!(
                "stage \"{}\" (ctr_only) runs in the CTR trainer, not the PLM one",
                stage.name
            )))
        }
    };

    let ckpt = Checkpoint::open(input.plm_dir)?;
    let report = load_checkpoint(&varmap, &ckpt)?;
    drop(ckpt);
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
    if let Some(init) = input.init_from {
        let (loaded, skipped) = load_by_name(&varmap, init)?;
        log(
            input.sink,
            LogLevel::Info,
            format!(
                "initialised {loaded} tensors by name from {} ({skipped} not used by this stage)",
                init.display()
            ),
        );
    }

    let train = DeviceSplit::new(&ds.train, &ds.meta, dev)?;
    let valid = DeviceSplit::new(&ds.valid, &ds.meta, dev)?;
    let vars = sorted_vars(&varmap)?;
    let mut opt = AdamW::new(
        vars.clone(),
        AdamWConfig::new(tp.lr, tp.plm_lr.unwrap_or(tp.lr), tp.weight_decay),
    )?;
    let spec = |epoch| OrderSpec {
        batch: tp.batch,
        shuffle: true,
        bucket_by_length: tp.bucket_by_length,
        seed: plan.seed,
        epoch,
        max_rows: tp.max_rows,
    };
    let accum = tp.accumulate.max(1);
    let per_epoch = epoch_batches(train.rows, train.token_lengths(), spec(0)).len();
    let steps_per_epoch = per_epoch.div_ceil(accum);
    let total = steps_per_epoch * tp.epochs;
    let warmup = (tp.warmup * total as f64).round() as usize;
    input.sink.emit(Event::StageStarted {
        stage: stage.name.clone(),
        kind: match stage.kind {
            StageKind::PaMlm { .. } => "pa_mlm",
            StageKind::Joint => "joint",
            StageKind::PlmOnly => "plm_only",
            StageKind::CtrOnly { .. } => "ctr_only",
        }
        .into(),
        epochs: tp.epochs,
        steps_per_epoch,
        rows: tp.max_rows.map(|m| m.min(train.rows)).unwrap_or(train.rows),
    });

    let mut rng = rand::rngs::StdRng::seed_from_u64(plan.seed ^ 0xA11C_E5ED);
    let stage_start = Instant::now();
    let (mut train_secs, mut train_rows) = (0f64, 0usize);
    let mut step = 0usize;
    let mut out = PlmStageOutput::default();
    let mut best: Option<(f64, usize, Vec<Tensor>)> = None;
    let mut since_best = 0usize;
    for epoch in 1..=tp.epochs {
        let batches = epoch_batches(train.rows, train.token_lengths(), spec(epoch));
        let t0 = Instant::now();
        let mut window_rows = 0usize;
        let mut window_start = Instant::now();
        for group in batches.chunks(accum) {
            let mut grads: Option<candle_core::backprop::GradStore> = None;
            let mut loss_sum = 0f64;
            let mut used = 0usize;
            for rows in group {
                let b = train.batch(rows)?;
                let Some(loss) = train_loss(&model, &b, meta, mask_ratio, &mut rng)? else {
                    continue;
                };
                let loss = (loss / group.len() as f64)?;
                loss_sum += loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
                let g = loss.backward()?;
                match grads.as_mut() {
                    None => grads = Some(g),
                    Some(a) => accumulate(a, g, &vars)?,
                }
                used += rows.len();
            }
            let Some(grads) = grads else { continue };
            let scale = match tp.grad_clip {
                Some(c) => {
                    let n = opt.grad_norm(&grads)?;
                    if n > c {
                        c / n
                    } else {
                        1.0
                    }
                }
                None => 1.0,
            };
            let mult = lr_multiplier(tp.schedule, step, total, warmup);
            opt.step(&grads, mult, scale)?;
            step += 1;
            window_rows += used;
            train_rows += used;
            let el = window_start.elapsed().as_secs_f64().max(1e-9);
            input.sink.emit(Event::Step {
                stage: stage.name.clone(),
                epoch,
                step,
                loss: loss_sum,
                lr: mult * tp.plm_lr.unwrap_or(tp.lr),
                samples_per_s: window_rows as f64 / el,
            });
            window_rows = 0;
            window_start = Instant::now();
        }
        train_secs += t0.elapsed().as_secs_f64();

        // Validation: higher score is better.
        let score = match &model {
            StageModel::PaMlm(m) => {
                let (l, a, l0, a0) =
                    eval_mlm(m, &valid, meta, mask_ratio, tp.eval_batch, plan.seed)?;
                input.sink.emit(Event::Eval {
                    stage: stage.name.clone(),
                    epoch,
                    split: EvalSplit::Valid,
                    auc: None,
                    logloss: None,
                    metrics: vec![
                        ("mlm_loss".into(), l),
                        ("mlm_acc".into(), a),
                        ("mlm_loss_no_prompt".into(), l0),
                        ("mlm_acc_no_prompt".into(), a0),
                    ],
                });
                if best.as_ref().map(|b| -l > b.0).unwrap_or(true) {
                    out.mlm_loss = Some(l);
                    out.mlm_acc = Some(a);
                    out.mlm_acc_no_prompt = Some(a0);
                }
                -l
            }
            StageModel::Classifier(c) => {
                let (auc, ll, _) = eval_classifier(c, &valid, tp.eval_batch)?;
                let mut extra = Vec::new();
                if let Some(a) = c.alpha() {
                    extra.push((
                        "alpha".to_string(),
                        a.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?[0],
                    ));
                }
                input.sink.emit(Event::Eval {
                    stage: stage.name.clone(),
                    epoch,
                    split: EvalSplit::Valid,
                    auc,
                    logloss: Some(ll),
                    metrics: extra,
                });
                if best
                    .as_ref()
                    .map(|b| auc.unwrap_or(-ll) > b.0)
                    .unwrap_or(true)
                {
                    out.valid_auc = auc;
                }
                auc.unwrap_or(-ll)
            }
        };
        if best.as_ref().map(|b| score > b.0).unwrap_or(true) {
            best = Some((score, epoch, snapshot(&vars)?));
            since_best = 0;
        } else {
            since_best += 1;
            if let Some(p) = tp.patience {
                if since_best >= p {
                    log(
                        input.sink,
                        LogLevel::Info,
                        format!(
                            "early stop after epoch {epoch} (best {})",
                            best.as_ref().map(|b| b.1).unwrap_or(0)
                        ),
                    );
                    break;
                }
            }
        }
    }
    if let Some((_, epoch, snap)) = &best {
        restore(&vars, snap)?;
        out.best_epoch = Some(*epoch);
    }
    out.train_samples_per_s = train_rows as f64 / train_secs.max(1e-9);

    if let StageModel::Classifier(c) = &model {
        let test = DeviceSplit::new(&ds.test, &ds.meta, dev)?;
        let (auc, ll, sps) = eval_classifier(c, &test, tp.eval_batch)?;
        input.sink.emit(Event::Eval {
            stage: stage.name.clone(),
            epoch: out.best_epoch.unwrap_or(0),
            split: EvalSplit::Test,
            auc,
            logloss: Some(ll),
            metrics: vec![],
        });
        out.test_auc = auc;
        out.test_logloss = Some(ll);
        out.infer_samples_per_s = Some(sps);
    }
    if let Some(path) = input.save_to {
        save(&varmap, path, input.sink, &stage.name, out.best_epoch)?;
        out.weights = Some(path.to_path_buf());
    }
    input.sink.emit(Event::StageFinished {
        stage: stage.name.clone(),
        best_epoch: out.best_epoch,
        seconds: stage_start.elapsed().as_secs_f64(),
        train_samples_per_s: out.train_samples_per_s,
        infer_samples_per_s: out.infer_samples_per_s,
    });
    Ok(out)
}
