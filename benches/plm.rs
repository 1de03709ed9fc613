//! PLM-side throughput on MovieLens-100K text with all-MiniLM-L6-v2:
//! PA-MLM training, joint training, joint inference and CTR-only inference
//! (K = 10 deep prompts, DCNv2 embed 16 / 3 cross / 3×256 MLP, batch 32,
//! max_len 64, length-bucketed batches), plus peak memory and achieved
//! GFLOP/s against a measured matmul rate.
//!
//! `cargo bench --bench plm` runs every phase, each in its own process so the
//! peak resident memory (VmHWM) is the phase's own; `cargo bench --bench plm
//! -- PHASE` runs one (`matmul`, `pa_mlm`, `joint`, `joint_infer`, `ctr_infer`).
//! Needs `assets/plm/all-MiniLM-L6-v2` (scripts/fetch-plm.sh) and the ML-100K
//! folder (`ML100K_DIR`, default `../shared/data/ml-100k` or the nearest
//! ancestor's `shared/data/ml-100k`).

mod common;

use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use clickprompt::data::{epoch_batches, DeviceSplit, OrderSpec};
use clickprompt::model::ctr::CtrModel;
use clickprompt::model::plm::Config;
use clickprompt::model::vars::{seeded_var_builder, sorted_vars};
use clickprompt::plan::types::*;
use clickprompt::train::optim::{AdamW, AdamWConfig};
use clickprompt::train::trainer::StepCtx;
use common::{build, setup, vm_hwm_mib, Setup, BATCH, K};

fn matmul_gflops() -> Result<f64> {
    let dev = Device::Cpu;
    let (m, k, n) = (1536usize, 384usize, 1536usize);
    let a = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
    let b = Tensor::randn(0f32, 1.0, (k, n), &dev)?;
    for _ in 0..3 {
        a.matmul(&b)?;
    }
    let reps = 40;
    let t = Instant::now();
    for _ in 0..reps {
        a.matmul(&b)?;
    }
    Ok(2.0 * (m * k * n * reps) as f64 / t.elapsed().as_secs_f64() / 1e9)
}

/// Best single-call rate of an (m×k)·(k×n) f32 matmul over `reps` calls.
fn matmul_best(m: usize, k: usize, n: usize, reps: usize) -> Result<f64> {
    let dev = Device::Cpu;
    let a = Tensor::randn(0f32, 1.0, (m, k), &dev)?;
    let b = Tensor::randn(0f32, 1.0, (k, n), &dev)?;
    let mut best = f64::INFINITY;
    for _ in 0..reps + 2 {
        let t = Instant::now();
        a.matmul(&b)?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(2.0 * (m * k * n) as f64 / best / 1e9)
}

/// Forward FLOPs of the PLM for `tokens` text tokens attending over `kv`
/// slots, when the last layer's output projection and feed-forward run on
/// `last_rows` of the tokens only (PA-MLM's masked positions; `tokens` otherwise).
fn plm_fwd_flops(cfg: &Config, tokens: f64, kv: f64, last_rows: f64) -> f64 {
    let d = cfg.hidden_size as f64;
    let i = cfg.intermediate_size as f64;
    let l = cfg.num_hidden_layers as f64;
    // Q, K, V projections and the two attention products, for every token.
    let attend = tokens * (2.0 * 3.0 * d * d + 4.0 * kv * d);
    // Output projection and feed-forward, per row they run on.
    let rest = 2.0 * (d * d + 2.0 * d * i);
    l * attend + (l - 1.0) * tokens * rest + last_rows * rest
}

struct Measured {
    samples_per_s: f64,
    tokens_per_row: f64,
    seconds: f64,
    rows: usize,
}

/// Times `steps` batches (after `warm` untimed ones) of the training split in
/// bucketed, shuffled order.
fn time_batches(
    split: &DeviceSplit,
    warm: usize,
    steps: usize,
    mut f: impl FnMut(&clickprompt::data::Batch, usize) -> Result<()>,
) -> Result<Measured> {
    let order = epoch_batches(
        split.rows,
        split.token_lengths(),
        OrderSpec {
            batch: BATCH,
            shuffle: true,
            bucket_by_length: true,
            seed: 1,
            epoch: 1,
            max_rows: None,
        },
    );
    let (mut rows, mut tokens) = (0usize, 0usize);
    let mut t = Instant::now();
    for (i, r) in order.iter().take(warm + steps).enumerate() {
        if i == warm {
            t = Instant::now();
        }
        let b = split.batch(r)?;
        f(&b, i)?;
        if i >= warm {
            rows += r.len();
            let text = b.text.as_ref().context("text")?;
            tokens += text.ids.dim(1)? * r.len();
        }
    }
    let seconds = t.elapsed().as_secs_f64();
    Ok(Measured {
        samples_per_s: rows as f64 / seconds,
        tokens_per_row: tokens as f64 / rows as f64,
        seconds,
        rows,
    })
}

fn train_phase(s: &Setup, kind: StageKind, steps: usize) -> Result<Measured> {
    let (varmap, model) = build(s, kind)?;
    let m = model.as_stage_model();
    let mut opt = AdamW::new(sorted_vars(&varmap)?, AdamWConfig::new(1e-3, 5e-5, 0.0))?;
    let split = DeviceSplit::new(&s.dataset.train, &s.dataset.meta, &Device::Cpu)?;
    // Seconds in the forward pass, the backward pass and the optimizer step.
    let mut parts = [0f64; 3];
    let m = time_batches(&split, 2, steps, |b, i| {
        let t0 = Instant::now();
        let loss = m.loss(
            b,
            true,
            &StepCtx {
                epoch: 1,
                step: i + 1,
                micro: i,
                seed: 42,
            },
        )?;
        let t1 = Instant::now();
        let g = loss.backward()?;
        drop(loss);
        let t2 = Instant::now();
        opt.step(&g, 1.0, 1.0)?;
        if i >= 2 {
            parts[0] += (t1 - t0).as_secs_f64();
            parts[1] += (t2 - t1).as_secs_f64();
            parts[2] += t2.elapsed().as_secs_f64();
        }
        Ok(())
    })?;
    let per = |x: f64| 1e3 * x / steps as f64;
    println!(
        "  per step: forward {:.0} ms, backward {:.0} ms, optimizer {:.0} ms",
        per(parts[0]),
        per(parts[1]),
        per(parts[2])
    );
    Ok(m)
}

fn infer_phase(s: &Setup, steps: usize) -> Result<Measured> {
    let (_vm, model) = build(s, StageKind::Joint)?;
    let m = model.as_stage_model();
    let split = DeviceSplit::new(&s.dataset.test, &s.dataset.meta, &Device::Cpu)?;
    time_batches(&split, 2, steps, |b, _| {
        m.predict_logits(b)?;
        Ok(())
    })
}

fn ctr_infer_phase(s: &Setup) -> Result<Measured> {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, 42, DType::F32, &Device::Cpu);
    let ctr = CtrModel::new(s.plan.ctr.as_ref().context("ctr")?, &s.dataset.meta, vb)?;
    let split = DeviceSplit::new(&s.dataset.test, &s.dataset.meta, &Device::Cpu)?;
    let steps = split.rows / BATCH;
    time_batches(&split, 2, steps.saturating_sub(2), |b, _| {
        ctr.forward(b, false)?;
        Ok(())
    })
}

fn report(phase: &str, m: &Measured, gflop_per_row: f64, mm: f64) {
    let achieved = gflop_per_row * m.samples_per_s;
    println!(
        "{phase:<12} {:>8.1} samples/s  {:>5.1} tokens/row  {:>7.1} GFLOP/s ({:>3.0}% of matmul {:.0})  peak {:>6.0} MiB  ({} rows in {:.1}s)",
        m.samples_per_s,
        m.tokens_per_row,
        achieved,
        100.0 * achieved / mm,
        mm,
        vm_hwm_mib(),
        m.rows,
        m.seconds
    );
}

fn run_phase(phase: &str) -> Result<()> {
    if std::env::var_os("CP_NO_MALLOPT").is_none() {
        clickprompt::alloc::tune_for_training();
    }
    let mm = matmul_gflops()?;
    if phase == "matmul" {
        println!("matmul       {mm:.1} GFLOP/s (1536×384 · 384×1536, f32, mean of 40)");
        // The machine's best at the shapes of a MiniLM step (B·T = 1472):
        // projections, feed-forward, and the weight-gradient products.
        for (m, k, n) in [
            (1472, 384, 1152),
            (1472, 384, 384),
            (1472, 384, 1536),
            (1472, 1536, 384),
            (384, 1472, 1536),
        ] {
            println!(
                "  {m}×{k} · {k}×{n}: best of 20 {:.0} GFLOP/s",
                matmul_best(m, k, n, 20)?
            );
        }
        return Ok(());
    }
    let Some(s) = setup()? else { return Ok(()) };
    let steps: usize = std::env::var("BENCH_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let d = s.cfg.hidden_size as f64;
    match phase {
        "pa_mlm" => {
            let m = train_phase(
                &s,
                StageKind::PaMlm {
                    mask: 0.15,
                    mask_unit: MaskUnit::Token,
                    head_warmup: 0,
                },
                steps,
            )?;
            let t = m.tokens_per_row;
            // fwd + 2× for backward; the last layer after attention and the
            // decoder on the ~15% masked tokens only.
            let masked = 0.15 * t;
            let f = 3.0
                * (plm_fwd_flops(&s.cfg, t, t + K as f64, masked)
                    + masked * 2.0 * d * s.cfg.vocab_size as f64);
            report(phase, &m, f / 1e9, mm);
        }
        "joint" => {
            let m = train_phase(&s, StageKind::Joint, steps)?;
            let t = m.tokens_per_row;
            report(
                phase,
                &m,
                3.0 * plm_fwd_flops(&s.cfg, t, t + K as f64, t) / 1e9,
                mm,
            );
        }
        "joint_infer" => {
            let m = infer_phase(&s, steps * 2)?;
            let t = m.tokens_per_row;
            report(
                phase,
                &m,
                plm_fwd_flops(&s.cfg, t, t + K as f64, t) / 1e9,
                mm,
            );
        }
        "ctr_infer" => {
            let m = ctr_infer_phase(&s)?;
            println!(
                "{phase:<12} {:>8.1} samples/s  peak {:>6.0} MiB",
                m.samples_per_s,
                vm_hwm_mib()
            );
        }
        other => anyhow::bail!("unknown phase {other}"),
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if let Some(phase) = args.first() {
        return run_phase(phase);
    }
    let exe = std::env::current_exe()?;
    for phase in ["matmul", "pa_mlm", "joint", "joint_infer", "ctr_infer"] {
        let status = std::process::Command::new(&exe).arg(phase).status()?;
        if !status.success() {
            anyhow::bail!("phase {phase} failed");
        }
    }
    Ok(())
}
