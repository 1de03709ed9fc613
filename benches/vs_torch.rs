//! Our side of the side-by-side comparison with the PyTorch baseline in
//! `benches/torch/` (run both with `scripts/bench-vs-torch.sh`).
//!
//! `cargo bench --bench vs_torch -- PHASE [DIR]`, one phase per process so
//! that the peak resident memory (VmHWM) is the phase's own:
//! * `export DIR` writes what the PyTorch side reads, so that both run the
//!   same rows, tokens, batches and initial weights: the encoded splits and
//!   token ids (`data.safetensors`), the batch orders (`orders.safetensors`),
//!   each model's initial weights under our names (`weights-*.safetensors`),
//!   the layout and phase parameters (`meta.json`), and a fixed batch with our
//!   losses on it before and after one AdamW step (`check.safetensors`,
//!   `check-ours.json`) for `benches/torch/check.py`.
//! * `matmul`: f32 matmul GFLOP/s at the workload's shapes.
//! * `pa_mlm`, `joint`, `joint_infer` (MiniLM, K = 10 deep prompts, batch 32,
//!   length-bucketed batches of the training / test split), `ctr_train_dcnv2`,
//!   `ctr_train_deepfm`, `ctr_infer` (batch 1024): print one `RESULT {json}` line.
//!
//! Needs `assets/plm/all-MiniLM-L6-v2` and ML-100K (`ML100K_DIR`), like `plm.rs`.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use clickprompt::data::{
    epoch_batches, Batch, ColumnLayout, DeviceSplit, OrderSpec, Split, TextMeta,
};
use clickprompt::model::ctr::CtrModel;
use clickprompt::model::vars::{seeded_var_builder, sorted_vars};
use clickprompt::plan::types::{CtrPlan, MaskUnit, StageKind};
use clickprompt::train::optim::{AdamW, AdamWConfig};
use clickprompt::train::pa_mlm::mask_tokens;
use clickprompt::train::plm_stages::PlmStageModel;
use clickprompt::train::trainer::{StageModel, StepCtx};
use common::{build, dcnv2, deepfm, setup, vm_hwm_mib, Setup, BATCH, K};
use rand::SeedableRng;

/// Untimed and timed batches of the PLM phases.
const PLM_WARM: usize = 2;
const PLM_STEPS: usize = 12;
const INFER_STEPS: usize = 24;
/// CTR-only: batch, untimed warm-up steps, timed epochs / inference passes.
const CTR_BATCH: usize = 1024;
const CTR_WARM: usize = 5;
const CTR_EPOCHS: usize = 2;
const CTR_INFER_PASSES: usize = 2;
/// Learning rates: `lr` for `ctr.*`, `plm_lr` for the rest (as in `plm.rs`).
const LR: f64 = 1e-3;
const PLM_LR: f64 = 5e-5;
/// Rows of the fixed check batches.
const CHECK_ROWS_PLM: usize = 16;
const CHECK_ROWS_CTR: usize = 1024;
/// The matmul shapes (m, k, n) measured for both frameworks: the CTR step's
/// and the MiniLM step's (B·T ≈ 1472).
const MATMUL_SHAPES: [(usize, usize, usize); 4] = [
    (1024, 128, 256),
    (1024, 256, 256),
    (1472, 384, 1536),
    (1472, 1536, 384),
];

fn plm_order(split: &DeviceSplit, batch: usize) -> Vec<Vec<usize>> {
    epoch_batches(
        split.rows,
        split.token_lengths(),
        OrderSpec {
            batch,
            shuffle: true,
            bucket_by_length: true,
            seed: 1,
            epoch: 1,
            max_rows: None,
        },
    )
}

/// The CTR-only order of epoch `e` (shuffled, no bucketing): a permutation.
fn ctr_perm(rows: usize, e: usize) -> Vec<usize> {
    epoch_batches(
        rows,
        &[],
        OrderSpec {
            batch: rows,
            shuffle: true,
            bucket_by_length: false,
            seed: 42,
            epoch: e,
            max_rows: None,
        },
    )
    .concat()
}

fn ctr_batches(rows: usize, e: usize) -> Vec<Vec<usize>> {
    ctr_perm(rows, e)
        .chunks(CTR_BATCH)
        .map(|c| c.to_vec())
        .collect()
}

fn i64_tensor(v: impl IntoIterator<Item = usize>) -> Result<Tensor> {
    let v: Vec<i64> = v.into_iter().map(|x| x as i64).collect();
    let n = v.len();
    Ok(Tensor::from_vec(v, n, &Device::Cpu)?)
}

/// CPU seconds (user + system, every thread) this process has used.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// A timed section: wall and CPU seconds.
struct Timer(Instant, f64);

impl Timer {
    fn start() -> Self {
        Timer(Instant::now(), cpu_seconds())
    }
    fn stop(&self) -> (f64, f64) {
        (self.0.elapsed().as_secs_f64(), cpu_seconds() - self.1)
    }
}

/// The phase's result line; `cpu` = CPU seconds of the timed section (with
/// one thread, a measure of the work that other processes barely disturb).
fn result_line(phase: &str, rows: usize, (seconds, cpu): (f64, f64), extra: &[(&str, f64)]) {
    let mut s = format!(
        "RESULT {{\"framework\": \"ours\", \"phase\": \"{phase}\", \"rows\": {rows}, \"seconds\": {seconds:.4}, \"cpu_seconds\": {cpu:.4}, \"samples_per_s\": {:.2}, \"peak_mib\": {:.1}",
        rows as f64 / seconds,
        vm_hwm_mib()
    );
    for (k, v) in extra {
        s.push_str(&format!(", \"{k}\": {v:.4}"));
    }
    s.push('}');
    println!("{s}");
}

fn ctr_model(s: &Setup, plan: &CtrPlan) -> Result<(VarMap, CtrModel)> {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, 42, DType::F32, &Device::Cpu);
    let model = CtrModel::new(plan, &s.dataset.meta, vb)?;
    Ok((varmap, model))
}

fn optimizer(varmap: &VarMap) -> Result<AdamW> {
    AdamW::new(sorted_vars(varmap)?, AdamWConfig::new(LR, PLM_LR, 0.0))
}

fn step_ctx(i: usize) -> StepCtx {
    StepCtx {
        epoch: 1,
        step: i + 1,
        micro: i,
        seed: 42,
    }
}

/// One training step as the trainer takes it: loss, its value on the host
/// (the trainer's finiteness check and log), backward, AdamW.
fn train_step(m: &dyn StageModel, opt: &mut AdamW, b: &Batch, i: usize) -> Result<f64> {
    let loss = m.loss(b, true, &step_ctx(i))?;
    let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    let g = loss.backward()?;
    drop(loss);
    opt.step(&g, 1.0, 1.0)?;
    Ok(value)
}

fn plm_train_phase(s: &Setup, phase: &str, kind: StageKind) -> Result<()> {
    let (varmap, model) = build(s, kind)?;
    let m = model.as_stage_model();
    let mut opt = optimizer(&varmap)?;
    let split = DeviceSplit::new(&s.dataset.train, &s.dataset.meta, &Device::Cpu)?;
    let order = plm_order(&split, BATCH);
    let (mut rows, mut tokens) = (0usize, 0usize);
    let mut t = Timer::start();
    for (i, r) in order.iter().take(PLM_WARM + PLM_STEPS).enumerate() {
        if i == PLM_WARM {
            t = Timer::start();
        }
        let b = split.batch(r)?;
        train_step(m, &mut opt, &b, i)?;
        if i >= PLM_WARM {
            rows += r.len();
            tokens += b.text.as_ref().context("text")?.ids.dim(1)? * r.len();
        }
    }
    let secs = t.stop();
    result_line(
        phase,
        rows,
        secs,
        &[("tokens_per_row", tokens as f64 / rows as f64)],
    );
    Ok(())
}

fn joint_infer_phase(s: &Setup) -> Result<()> {
    let (_vm, model) = build(s, StageKind::Joint)?;
    let m = model.as_stage_model();
    let split = DeviceSplit::new(&s.dataset.test, &s.dataset.meta, &Device::Cpu)?;
    let order = plm_order(&split, BATCH);
    let (mut rows, mut tokens) = (0usize, 0usize);
    let mut t = Timer::start();
    let mut out = Vec::new();
    for (i, r) in order.iter().take(PLM_WARM + INFER_STEPS).enumerate() {
        if i == PLM_WARM {
            t = Timer::start();
        }
        let b = split.batch(r)?;
        out.push(m.predict_logits(&b)?.detach());
        if i >= PLM_WARM {
            rows += r.len();
            tokens += b.text.as_ref().context("text")?.ids.dim(1)? * r.len();
        }
    }
    let logits: Vec<f32> = Tensor::cat(&out, 0)?.to_vec1()?;
    let secs = t.stop();
    if logits.iter().any(|v| !v.is_finite()) {
        bail!("joint inference produced a non-finite logit");
    }
    result_line(
        "joint_infer",
        rows,
        secs,
        &[("tokens_per_row", tokens as f64 / rows as f64)],
    );
    Ok(())
}

fn ctr_train_phase(s: &Setup, phase: &str, plan: &CtrPlan) -> Result<()> {
    let (varmap, model) = ctr_model(s, plan)?;
    let mut opt = optimizer(&varmap)?;
    // As the runner's `ctr_only` stage: the fields without the text.
    let split = DeviceSplit::new(&s.dataset.train, &s.dataset.meta, &Device::Cpu)?.without_text();
    for (i, r) in ctr_batches(split.rows, 0).iter().take(CTR_WARM).enumerate() {
        train_step(&model, &mut opt, &split.batch(r)?, i)?;
    }
    let mut rows = 0usize;
    let mut last = 0.0;
    let t = Timer::start();
    for e in 1..=CTR_EPOCHS {
        for (i, r) in ctr_batches(split.rows, e).iter().enumerate() {
            last = train_step(&model, &mut opt, &split.batch(r)?, i)?;
            rows += r.len();
        }
    }
    result_line(phase, rows, t.stop(), &[("last_loss", last)]);
    Ok(())
}

fn ctr_infer_phase(s: &Setup) -> Result<()> {
    let (_vm, model) = ctr_model(s, &dcnv2())?;
    let split = DeviceSplit::new(&s.dataset.train, &s.dataset.meta, &Device::Cpu)?.without_text();
    let batches: Vec<Vec<usize>> = (0..split.rows)
        .collect::<Vec<_>>()
        .chunks(CTR_BATCH)
        .map(|c| c.to_vec())
        .collect();
    let pass = |timed: bool| -> Result<(usize, (f64, f64))> {
        let t = Timer::start();
        let mut out = Vec::with_capacity(batches.len());
        let mut rows = 0;
        for r in batches.iter().take(if timed { usize::MAX } else { 10 }) {
            out.push(model.predict_logits(&split.batch(r)?)?.detach());
            rows += r.len();
        }
        let logits: Vec<f32> = Tensor::cat(&out, 0)?.to_vec1()?;
        if logits.len() != rows {
            bail!("{} logits for {rows} rows", logits.len());
        }
        Ok((rows, t.stop()))
    };
    pass(false)?;
    let (mut rows, mut secs, mut cpu) = (0, 0.0, 0.0);
    for _ in 0..CTR_INFER_PASSES {
        let (r, (w, c)) = pass(true)?;
        rows += r;
        secs += w;
        cpu += c;
    }
    result_line("ctr_infer", rows, (secs, cpu), &[]);
    Ok(())
}

fn matmul_phase() -> Result<()> {
    let dev = Device::Cpu;
    let mut best_all = Vec::new();
    for (m, k, n) in MATMUL_SHAPES {
        let a = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
        let b = Tensor::randn(0f32, 1.0, (k, n), &dev)?;
        let mut best = f64::INFINITY;
        for _ in 0..25 {
            let t = Instant::now();
            a.matmul(&b)?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        let g = 2.0 * (m * k * n) as f64 / best / 1e9;
        best_all.push(format!("\"{m}x{k}x{n}\": {g:.1}"));
    }
    println!(
        "RESULT {{\"framework\": \"ours\", \"phase\": \"matmul\", {}}}",
        best_all.join(", ")
    );
    Ok(())
}

// ------------------------------------------------------------------ export

fn split_tensors(
    out: &mut HashMap<String, Tensor>,
    name: &str,
    split: &Split,
    text: &TextMeta,
) -> Result<()> {
    let n = split.rows;
    let mut singles: Vec<&[u32]> = Vec::new();
    let mut multi = 0;
    for col in &split.columns {
        match col {
            clickprompt::data::Column::Single(ids) => singles.push(ids),
            clickprompt::data::Column::Multi { width, ids } => {
                let v: Vec<i64> = ids.iter().map(|&x| x as i64).collect();
                out.insert(
                    format!("{name}.multi.{multi}"),
                    Tensor::from_vec(v, (n, *width), &Device::Cpu)?,
                );
                multi += 1;
            }
            clickprompt::data::Column::Number(_) => bail!("number fields are not exported"),
        }
    }
    let mut flat = vec![0i64; n * singles.len()];
    for (f, col) in singles.iter().enumerate() {
        for (r, &v) in col.iter().enumerate() {
            flat[r * singles.len() + f] = v as i64;
        }
    }
    out.insert(
        format!("{name}.single"),
        Tensor::from_vec(flat, (n, singles.len()), &Device::Cpu)?,
    );
    out.insert(
        format!("{name}.labels"),
        Tensor::from_slice(&split.labels, n, &Device::Cpu)?,
    );
    let tok = split.tokens.as_ref().context("the split has no tokens")?;
    let width = (0..n).map(|r| tok.len_of(r)).max().unwrap_or(1);
    let mut ids = vec![text.pad_id as i64; n * width];
    for r in 0..n {
        for (j, &t) in tok.row(r).iter().enumerate() {
            ids[r * width + j] = t as i64;
        }
    }
    out.insert(
        format!("{name}.tokens"),
        Tensor::from_vec(ids, (n, width), &Device::Cpu)?,
    );
    out.insert(
        format!("{name}.lengths"),
        i64_tensor((0..n).map(|r| tok.len_of(r)))?,
    );
    Ok(())
}

fn save_varmap(varmap: &VarMap, path: &Path) -> Result<()> {
    let t: HashMap<String, Tensor> = sorted_vars(varmap)?
        .into_iter()
        .map(|(n, v)| (n, v.as_tensor().clone()))
        .collect();
    candle_core::safetensors::save(&t, path)?;
    Ok(())
}

fn json_f64s(v: &[f64]) -> String {
    format!(
        "[{}]",
        v.iter()
            .map(|x| format!("{x:.9e}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Loss of `m` on `b` without dropout, then again after one AdamW step on
/// that loss's gradients.
fn check_losses(m: &dyn StageModel, varmap: &VarMap, b: &Batch) -> Result<[f64; 2]> {
    let mut opt = optimizer(varmap)?;
    let loss = m.loss(b, false, &step_ctx(0))?;
    let before = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    let g = loss.backward()?;
    opt.step(&g, 1.0, 1.0)?;
    let after = m
        .loss(b, false, &step_ctx(0))?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?;
    Ok([before, after])
}

fn export_phase(s: &Setup, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let meta = &s.dataset.meta;
    let text = meta.text.as_ref().context("no text side")?;
    let mut data = HashMap::new();
    split_tensors(&mut data, "train", &s.dataset.train, text)?;
    split_tensors(&mut data, "test", &s.dataset.test, text)?;
    candle_core::safetensors::save(&data, dir.join("data.safetensors"))?;

    let train = DeviceSplit::new(&s.dataset.train, meta, &Device::Cpu)?;
    let test = DeviceSplit::new(&s.dataset.test, meta, &Device::Cpu)?;
    let mut orders = HashMap::new();
    for (i, r) in plm_order(&train, BATCH).iter().enumerate() {
        orders.insert(format!("plm_train.{i}"), i64_tensor(r.iter().copied())?);
    }
    for (i, r) in plm_order(&test, BATCH).iter().enumerate() {
        orders.insert(format!("plm_test.{i}"), i64_tensor(r.iter().copied())?);
    }
    for e in 0..=CTR_EPOCHS {
        orders.insert(format!("ctr.{e}"), i64_tensor(ctr_perm(train.rows, e))?);
    }
    candle_core::safetensors::save(&orders, dir.join("orders.safetensors"))?;

    // Initial weights, and our losses on the fixed check batches.
    let mut check = HashMap::new();
    let mut losses = Vec::new();
    let plm_rows: Vec<usize> = (0..CHECK_ROWS_PLM).collect();
    let plm_batch = train.batch(&plm_rows)?;
    let text_b = plm_batch.text.as_ref().context("text")?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let masked = mask_tokens(text_b, text, 0.15, MaskUnit::Token, &mut rng)?
        .context("the check batch drew no masked token")?;
    check.insert(
        "pa_mlm.rows".to_string(),
        i64_tensor(plm_rows.iter().copied())?,
    );
    check.insert("pa_mlm.ids".to_string(), masked.ids.to_dtype(DType::I64)?);
    check.insert(
        "pa_mlm.positions".to_string(),
        masked.positions.to_dtype(DType::I64)?,
    );
    check.insert(
        "pa_mlm.targets".to_string(),
        masked.targets.to_dtype(DType::I64)?,
    );
    for (name, kind) in [
        (
            "pa_mlm",
            StageKind::PaMlm {
                mask: 0.15,
                mask_unit: MaskUnit::Token,
                head_warmup: 0,
            },
        ),
        ("joint", StageKind::Joint),
    ] {
        let (varmap, model) = build(s, kind)?;
        save_varmap(&varmap, &dir.join(format!("weights-{name}.safetensors")))?;
        let l = match &model {
            PlmStageModel::PaMlm(p) => {
                let mut opt = optimizer(&varmap)?;
                let loss = p.loss_masked(&plm_batch, &masked, false)?;
                let before = loss.to_scalar::<f32>()? as f64;
                opt.step(&loss.backward()?, 1.0, 1.0)?;
                let after = p.loss_masked(&plm_batch, &masked, false)?;
                [before, after.to_scalar::<f32>()? as f64]
            }
            PlmStageModel::Classifier(c) => check_losses(c, &varmap, &plm_batch)?,
        };
        losses.push((name, l));
    }
    let ctr_rows: Vec<usize> = (0..CHECK_ROWS_CTR).collect();
    let ctr_batch = train.batch(&ctr_rows)?;
    for (name, plan) in [("dcnv2", dcnv2()), ("deepfm", deepfm())] {
        let (varmap, model) = ctr_model(s, &plan)?;
        save_varmap(&varmap, &dir.join(format!("weights-{name}.safetensors")))?;
        losses.push((name, check_losses(&model, &varmap, &ctr_batch)?));
    }
    candle_core::safetensors::save(&check, dir.join("check.safetensors"))?;
    let check_json = format!(
        "{{{}}}\n",
        losses
            .iter()
            .map(|(n, l)| format!("\"{n}\": {}", json_f64s(l)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    std::fs::write(dir.join("check-ours.json"), check_json)?;

    // Layout and phase parameters.
    let fields: Vec<String> = meta
        .fields
        .iter()
        .map(|f| {
            let (layout, width) = match f.layout {
                ColumnLayout::Single => ("single", 1),
                ColumnLayout::Multi { width } => ("multi", width),
                ColumnLayout::Number => ("number", 1),
            };
            format!(
                "{{\"name\": \"{}\", \"layout\": \"{layout}\", \"width\": {width}, \"vocab_size\": {}}}",
                f.name, f.vocab_size
            )
        })
        .collect();
    let specials: Vec<String> = text.special_ids.iter().map(|x| x.to_string()).collect();
    let meta_json = format!(
        r#"{{
  "fields": [{fields}],
  "text": {{"vocab_size": {vocab}, "pad_id": {pad}, "mask_id": {mask}, "special_ids": [{specials}], "max_len": {max_len}}},
  "plm_dir": "{plm_dir}",
  "prompts": {K},
  "embed": 16, "cross": 3, "mlp": [256, 256, 256],
  "lr": {LR}, "plm_lr": {PLM_LR}, "mask_ratio": 0.15,
  "batch": {BATCH}, "plm_warm": {PLM_WARM}, "plm_steps": {PLM_STEPS}, "infer_steps": {INFER_STEPS},
  "ctr_batch": {CTR_BATCH}, "ctr_warm": {CTR_WARM}, "ctr_epochs": {CTR_EPOCHS}, "ctr_infer_passes": {CTR_INFER_PASSES},
  "check_rows_plm": {CHECK_ROWS_PLM}, "check_rows_ctr": {CHECK_ROWS_CTR},
  "matmul_shapes": [{shapes}],
  "train_rows": {train_rows}, "test_rows": {test_rows}
}}
"#,
        fields = fields.join(", "),
        vocab = text.vocab_size,
        pad = text.pad_id,
        mask = text.mask_id,
        specials = specials.join(", "),
        max_len = text.max_len,
        plm_dir = s.plm_dir.display(),
        shapes = MATMUL_SHAPES
            .iter()
            .map(|(m, k, n)| format!("[{m}, {k}, {n}]"))
            .collect::<Vec<_>>()
            .join(", "),
        train_rows = train.rows,
        test_rows = test.rows,
    );
    std::fs::write(dir.join("meta.json"), meta_json)?;
    for (n, l) in &losses {
        eprintln!("check {n}: loss {:.6} → {:.6} after one step", l[0], l[1]);
    }
    eprintln!("exported to {}", dir.display());
    Ok(())
}

fn main() -> Result<()> {
    clickprompt::alloc::tune_for_training();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(phase) = args.first() else {
        bail!("usage: vs_torch PHASE [DIR] (export DIR, matmul, pa_mlm, joint, joint_infer, ctr_train_dcnv2, ctr_train_deepfm, ctr_infer)");
    };
    if phase == "matmul" {
        return matmul_phase();
    }
    let Some(s) = setup()? else { return Ok(()) };
    match phase.as_str() {
        "export" => {
            let dir = args
                .get(1)
                .map(PathBuf::from)
                .unwrap_or_else(|| common::root().join(".cache/vs-torch"));
            export_phase(&s, &dir)
        }
        "pa_mlm" => plm_train_phase(
            &s,
            "pa_mlm",
            StageKind::PaMlm {
                mask: 0.15,
                mask_unit: MaskUnit::Token,
                head_warmup: 0,
            },
        ),
        "joint" => plm_train_phase(&s, "joint", StageKind::Joint),
        "joint_infer" => joint_infer_phase(&s),
        "ctr_train_dcnv2" => ctr_train_phase(&s, "ctr_train_dcnv2", &dcnv2()),
        "ctr_train_deepfm" => ctr_train_phase(&s, "ctr_train_deepfm", &deepfm()),
        "ctr_infer" => ctr_infer_phase(&s),
        other => bail!("unknown phase {other}"),
    }
}
