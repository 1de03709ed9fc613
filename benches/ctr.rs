//! CTR benchmark on MovieLens-100K: DeepFM and DCNv2 training and inference
//! throughput, peak memory and test AUC / LogLoss.
//!
//! `cargo bench --bench ctr [-- DIR]` (DIR defaults to `$ML100K_DIR` or
//! `../shared/data/ml-100k`). Time split 8:1:1, label = rating > 3; fields
//! user id, age, gender, occupation, zip, movie id, title (single-valued)
//! and genres (multi-valued, mean-pooled).

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use clickprompt::data::{
    Column, ColumnLayout, Dataset, DatasetMeta, DeviceSplit, FieldMeta, Split,
};
use clickprompt::model::ctr::CtrModel;
use clickprompt::model::vars::seeded_var_builder;
use clickprompt::plan::{Backbone, CtrPlan, MetricKind, Schedule, TrainPlan};
use clickprompt::train::events::{EvalSplit, Event, EventSink};
use clickprompt::train::trainer::{predict_split, train_stage, EvalCtx, StageData, StageSpec};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

struct Vocab {
    map: HashMap<String, u32>,
    values: Vec<String>,
}

impl Vocab {
    fn new() -> Self {
        Self {
            map: HashMap::new(),
            values: vec!["<pad>".into(), "<oov>".into()],
        }
    }
    fn add(&mut self, v: &str) {
        if !self.map.contains_key(v) {
            self.map.insert(v.to_string(), self.values.len() as u32);
            self.values.push(v.to_string());
        }
    }
    fn get(&self, v: &str) -> u32 {
        self.map.get(v).copied().unwrap_or(1)
    }
}

/// Reads ML-100K into the CTR-side dataset (vocabularies from the training split).
fn load_ml100k(dir: &Path) -> Result<Dataset> {
    let read = |f: &str| {
        std::fs::read(dir.join(f)).with_context(|| format!("reading {}", dir.join(f).display()))
    };
    let users: HashMap<String, Vec<String>> = latin1(&read("u.user")?)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let p: Vec<String> = l.split('|').map(str::to_string).collect();
            (p[0].clone(), p)
        })
        .collect();
    let genre_names = [
        "unknown",
        "Action",
        "Adventure",
        "Animation",
        "Children's",
        "Comedy",
        "Crime",
        "Documentary",
        "Drama",
        "Fantasy",
        "Film-Noir",
        "Horror",
        "Musical",
        "Mystery",
        "Romance",
        "Sci-Fi",
        "Thriller",
        "War",
        "Western",
    ];
    let items: HashMap<String, (String, Vec<String>)> = latin1(&read("u.item")?)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let p: Vec<&str> = l.split('|').collect();
            let genres = p[5..]
                .iter()
                .enumerate()
                .filter(|(_, f)| **f == "1")
                .map(|(i, _)| genre_names[i].to_string())
                .collect();
            (p[0].to_string(), (p[1].to_string(), genres))
        })
        .collect();
    let mut ratings: Vec<(u64, String, String, f32)> = latin1(&read("u.data")?)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let p: Vec<&str> = l.split('\t').collect();
            (
                p[3].parse().unwrap_or(0),
                p[0].to_string(),
                p[1].to_string(),
                p[2].parse().unwrap_or(0.0),
            )
        })
        .collect();
    ratings.sort_by_key(|r| r.0); // stable: ties keep file order
    let n = ratings.len();
    let (n_train, n_valid) = (n * 8 / 10, n / 10);
    let single_names = [
        "user_id",
        "age",
        "gender",
        "occupation",
        "zip",
        "movie_id",
        "title",
    ];
    let row_values = |u: &str, i: &str| -> Vec<String> {
        let up = &users[u];
        let (title, _) = &items[i];
        vec![
            u.into(),
            up[1].clone(),
            up[2].clone(),
            up[3].clone(),
            up[4].clone(),
            i.into(),
            title.clone(),
        ]
    };
    let mut vocabs: Vec<Vocab> = (0..8).map(|_| Vocab::new()).collect();
    let mut width = 1;
    for r in &ratings[..n_train] {
        for (f, v) in row_values(&r.1, &r.2).iter().enumerate() {
            vocabs[f].add(v);
        }
        for g in &items[&r.2].1 {
            vocabs[7].add(g);
        }
    }
    for (_, g) in items.values() {
        width = width.max(g.len());
    }
    let make = |rows: &[(u64, String, String, f32)]| -> Split {
        let mut cols: Vec<Vec<u32>> = (0..7).map(|_| Vec::with_capacity(rows.len())).collect();
        let mut multi = vec![0u32; rows.len() * width];
        let mut labels = Vec::with_capacity(rows.len());
        for (k, r) in rows.iter().enumerate() {
            for (f, v) in row_values(&r.1, &r.2).iter().enumerate() {
                cols[f].push(vocabs[f].get(v));
            }
            for (j, g) in items[&r.2].1.iter().enumerate() {
                multi[k * width + j] = vocabs[7].get(g);
            }
            labels.push((r.3 > 3.0) as u8 as f32);
        }
        let mut columns: Vec<Column> = cols.into_iter().map(Column::Single).collect();
        columns.push(Column::Multi { width, ids: multi });
        Split {
            rows: rows.len(),
            labels,
            columns,
            tokens: None,
        }
    };
    let mut fields: Vec<FieldMeta> = single_names
        .iter()
        .enumerate()
        .map(|(f, name)| FieldMeta {
            name: name.to_string(),
            layout: ColumnLayout::Single,
            vocab_size: vocabs[f].values.len(),
            values: vocabs[f].values.clone(),
            scale: None,
        })
        .collect();
    fields.push(FieldMeta {
        name: "genres".into(),
        layout: ColumnLayout::Multi { width },
        vocab_size: vocabs[7].values.len(),
        values: vocabs[7].values.clone(),
        scale: None,
    });
    Ok(Dataset {
        meta: DatasetMeta { fields, text: None },
        train: make(&ratings[..n_train]),
        valid: make(&ratings[n_train..n_train + n_valid]),
        test: make(&ratings[n_train + n_valid..]),
    })
}

struct Quiet;
impl EventSink for Quiet {
    fn emit(&self, e: Event) {
        if let Event::Eval {
            epoch,
            split,
            auc,
            logloss,
            ..
        } = e
        {
            eprintln!(
                "    epoch {epoch} {}: auc {:.4} logloss {:.4}",
                split.as_str(),
                auc.unwrap_or(f64::NAN),
                logloss.unwrap_or(f64::NAN)
            );
        }
    }
}

fn vm_hwm_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn matmul_gflops(m: usize, k: usize, n: usize) -> Result<f64> {
    let a = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu)?;
    let b = Tensor::randn(0f32, 1.0, (k, n), &Device::Cpu)?;
    for _ in 0..5 {
        a.matmul(&b)?;
    }
    let reps = 50;
    let t = Instant::now();
    for _ in 0..reps {
        a.matmul(&b)?;
    }
    Ok(2.0 * (m * k * n * reps) as f64 / t.elapsed().as_secs_f64() / 1e9)
}

fn bench(name: &str, plan: CtrPlan, tp: TrainPlan, ds: &Dataset) -> Result<()> {
    let dev = Device::Cpu;
    let train = DeviceSplit::new(&ds.train, &ds.meta, &dev)?;
    let valid = DeviceSplit::new(&ds.valid, &ds.meta, &dev)?;
    let test = DeviceSplit::new(&ds.test, &ds.meta, &dev)?;
    let vm = VarMap::new();
    let model = CtrModel::new(
        &plan,
        &ds.meta,
        seeded_var_builder(&vm, 42, DType::F32, &dev),
    )?;
    eprintln!(
        "== {name}: {:?}, train {:?}",
        plan,
        (tp.batch, tp.lr, tp.weight_decay, tp.epochs)
    );
    let spec = StageSpec {
        name: name.into(),
        kind: "ctr_only".into(),
        train: tp.clone(),
        seed: 42,
        checkpoint_dir: None,
        cancel: None,
        resume: None,
        select: MetricKind::Auc,
    };
    let r = train_stage(
        &model,
        &vm,
        StageData {
            train: &train,
            valid: &valid,
            test: Some(&test),
        },
        &spec,
        &Quiet,
    )?;
    let mut infer = Vec::new();
    let ctx = EvalCtx {
        epoch: 0,
        split: EvalSplit::Train,
        seed: 0,
        cancel: None,
    };
    for eb in [4096usize, 1024] {
        predict_split(&model, &train, eb, &ctx)?; // warm-up
        let t = Instant::now();
        let reps = 3;
        for _ in 0..reps {
            predict_split(&model, &train, eb, &ctx)?;
        }
        infer.push((eb, (train.rows * reps) as f64 / t.elapsed().as_secs_f64()));
    }
    let test_eval = r.test.as_ref().context("no test evaluation")?;
    println!(
        "{name}: train {:.0} samples/s (batch {}), inference {:.0} samples/s (batch 4096), {:.0} samples/s (batch 1024), best epoch {:?}/{}, valid AUC {:.4}, test AUC {:.4}, test LogLoss {:.4}, VmHWM {} MiB",
        r.train_samples_per_s,
        tp.batch,
        infer[0].1,
        infer[1].1,
        r.best_epoch,
        r.epochs_run,
        r.best_valid.as_ref().and_then(|v| v.auc).unwrap_or(f64::NAN),
        test_eval.auc.unwrap_or(f64::NAN),
        test_eval.logloss.unwrap_or(f64::NAN),
        vm_hwm_kb().unwrap_or(0) / 1024
    );
    Ok(())
}

fn main() -> Result<()> {
    clickprompt::alloc::tune_for_training();
    let dir: PathBuf = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("ML100K_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("../shared/data/ml-100k"));
    let only: Option<String> = std::env::var("CTR_BENCH_ONLY").ok();
    let t = Instant::now();
    let ds = load_ml100k(&dir)?;
    eprintln!(
        "loaded ML-100K in {:.2}s: {} / {} / {} rows, {} fields, positives {:.3}",
        t.elapsed().as_secs_f64(),
        ds.train.rows,
        ds.valid.rows,
        ds.test.rows,
        ds.meta.fields.len(),
        ds.train.labels.iter().sum::<f32>() / ds.train.rows as f32
    );
    println!(
        "matmul GFLOP/s: 1024x128x256 {:.0}, 1024x256x256 {:.0}, 4096x256x256 {:.0}",
        matmul_gflops(1024, 128, 256)?,
        matmul_gflops(1024, 256, 256)?,
        matmul_gflops(4096, 256, 256)?
    );
    let epochs: usize = std::env::var("CTR_BENCH_EPOCHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let env_f = |k: &str, d: f64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let tp = TrainPlan {
        epochs,
        batch: 1024,
        lr: env_f("CTR_BENCH_LR", 1e-3),
        plm_lr: None,
        weight_decay: env_f("CTR_BENCH_WD", 0.0),
        warmup: 0.0,
        schedule: Schedule::Constant,
        patience: Some(2),
        grad_clip: None,
        accumulate: 1,
        eval_batch: 4096,
        max_rows: None,
        valid_rows: None,
        bucket_by_length: false,
    };
    let mlp = vec![256, 256, 256];
    let dropout = env_f("CTR_BENCH_DROPOUT", 0.0);
    let embed = env_f("CTR_BENCH_EMBED", 16.0) as usize;
    for (name, bb) in [
        ("lr", Backbone::Lr),
        ("fm", Backbone::Fm),
        (
            "dnn",
            Backbone::Dnn {
                mlp: mlp.clone(),
                dropout,
            },
        ),
    ] {
        if only.as_deref() == Some(name) {
            bench(
                name,
                CtrPlan {
                    embed,
                    backbone: bb,
                },
                tp.clone(),
                &ds,
            )?;
        }
    }
    if only.as_deref().is_none_or(|o| o == "dcnv2") {
        bench(
            "dcnv2",
            CtrPlan {
                embed,
                backbone: Backbone::DcnV2 {
                    cross: 3,
                    mlp: mlp.clone(),
                    dropout,
                },
            },
            tp.clone(),
            &ds,
        )?;
    }
    if only.as_deref().is_none_or(|o| o == "deepfm") {
        bench(
            "deepfm",
            CtrPlan {
                embed,
                backbone: Backbone::DeepFm { mlp, dropout },
            },
            tp,
            &ds,
        )?;
    }
    Ok(())
}
