//! The ML-100K + MiniLM workload shared by the PLM bench (`plm.rs`) and the
//! side-by-side PyTorch comparison (`vs_torch.rs`): the experiment plan (the
//! reference fields and template, K = 10 deep prompts, DCNv2 16 / 3 cross /
//! 3×256), where the data and the checkpoint are, and peak memory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::{DType, Device};
use candle_nn::VarMap;
use clickprompt::data::{load, Dataset, LoadOptions};
use clickprompt::model::plm::{load_checkpoint, Checkpoint, Config};
use clickprompt::model::vars::seeded_var_builder;
use clickprompt::plan::types::*;
use clickprompt::train::plm_stages::{build_stage_model, PlmStageModel};

pub const BATCH: usize = 32;
pub const K: usize = 10;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `ML100K_DIR`, else the nearest ancestor's `shared/data/ml-100k`.
pub fn ml100k_dir() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("ML100K_DIR") {
        return Some(PathBuf::from(d));
    }
    root()
        .ancestors()
        .skip(1)
        .map(|a| a.join("shared/data/ml-100k"))
        .find(|p| p.join("u.data").is_file())
}

fn field(
    name: &str,
    column: &str,
    display: &str,
    kind: FieldKind,
    map: Vec<(String, String)>,
) -> FieldPlan {
    FieldPlan {
        name: name.into(),
        column: column.into(),
        display: display.into(),
        kind,
        map,
        ctr: true,
        text: true,
    }
}

pub fn train_plan(epochs: usize) -> TrainPlan {
    TrainPlan {
        epochs,
        batch: BATCH,
        lr: 1e-3,
        plm_lr: Some(5e-5),
        weight_decay: 0.0,
        warmup: 0.0,
        schedule: Schedule::Constant,
        patience: None,
        grad_clip: None,
        accumulate: 1,
        eval_batch: BATCH,
        max_rows: None,
        valid_rows: None,
        bucket_by_length: true,
    }
}

/// The DCNv2 of the reference setup (embedding 16, 3 cross layers, 3×256).
pub fn dcnv2() -> CtrPlan {
    CtrPlan {
        embed: 16,
        backbone: Backbone::DcnV2 {
            cross: 3,
            mlp: vec![256, 256, 256],
            dropout: 0.0,
        },
    }
}

/// DeepFM with the same embedding and MLP.
pub fn deepfm() -> CtrPlan {
    CtrPlan {
        embed: 16,
        backbone: Backbone::DeepFm {
            mlp: vec![256, 256, 256],
            dropout: 0.0,
        },
    }
}

pub fn plan(data: &Path, plm: &Path) -> ExperimentPlan {
    let g = vec![
        ("M".to_string(), "male".to_string()),
        ("F".to_string(), "female".to_string()),
    ];
    ExperimentPlan {
        name: "bench".into(),
        experiment: "bench".into(),
        group: "bench".into(),
        sweep: None,
        dataset: std::sync::Arc::new(DatasetPlan {
            name: "ml100k".into(),
            source: SourcePlan::MovieLens100k {
                dir: data.to_path_buf(),
            },
            label: LabelRule::Threshold {
                column: "rating".into(),
                op: CmpOp::Gt,
                value: 3.0,
            },
            split: SplitPlan::ByTime {
                column: "timestamp".into(),
                ratios: [0.8, 0.1, 0.1],
            },
            min_count: 1,
            skip_bad_rows: false,
            fields: vec![
                field("user", "user_id", "User ID", FieldKind::Id, vec![]),
                field("gender", "gender", "Gender", FieldKind::Category, g),
                field("age", "age", "Age", FieldKind::Category, vec![]),
                field("job", "occupation", "Job", FieldKind::Category, vec![]),
                field("zip", "zip", "Zipcode", FieldKind::Category, vec![]),
                field("item", "item_id", "Movie ID", FieldKind::Id, vec![]),
                field("title", "title", "Title", FieldKind::Text, vec![]),
                field("genre", "genre", "Film genre", FieldKind::Category, vec![]),
            ],
        }),
        template: Some(std::sync::Arc::new(TemplatePlan {
            name: "t".into(),
            form: TemplateForm::Each {
                pattern: "{name} is {value}.".into(),
                join: " ".into(),
            },
            fields: [
                "user", "gender", "age", "job", "zip", "item", "title", "genre",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        })),
        plm: Some(PlmPlan {
            name: "minilm".into(),
            family: PlmFamily::Bert,
            location: PlmLocation::Local(plm.to_path_buf()),
            max_len: 64,
            pool: Pooling::Mean,
            layers: None,
        }),
        ctr: Some(dcnv2()),
        prompts: PromptPlan {
            count: K,
            mode: PromptMode::Deep,
        },
        fusion: FusionPlan::PrefixAdd {
            learnable_alpha: false,
        },
        stages: vec![],
        device: DeviceSpec::Cpu,
        seed: 42,
        metrics: vec![MetricKind::Auc, MetricKind::Logloss],
    }
}

/// Peak resident memory of this process (VmHWM), MiB.
pub fn vm_hwm_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

pub struct Setup {
    pub plan: ExperimentPlan,
    pub dataset: Dataset,
    pub plm_dir: PathBuf,
    pub cfg: Config,
}

/// The plan and its loaded dataset; None (with a SKIPPED line) when the
/// checkpoint or ML-100K is absent.
pub fn setup() -> Result<Option<Setup>> {
    let plm_dir = root().join("assets/plm/all-MiniLM-L6-v2");
    if !plm_dir.join("model.safetensors").is_file() {
        eprintln!(
            "SKIPPED: {} absent (scripts/fetch-plm.sh)",
            plm_dir.display()
        );
        return Ok(None);
    }
    let Some(data) = ml100k_dir() else {
        eprintln!("SKIPPED: ML-100K not found (set ML100K_DIR)");
        return Ok(None);
    };
    let plan = plan(&data, &plm_dir);
    let loaded = load(
        &plan,
        &LoadOptions {
            cache_dir: root().join(".cache/bench"),
            rebuild: false,
            tokenizer_dir: Some(plm_dir.clone()),
        },
    )?;
    // BENCH_LAYERS=N: the cost of `plm … { layers N }`.
    let layers = std::env::var("BENCH_LAYERS")
        .ok()
        .and_then(|v| v.parse().ok());
    let cfg = Config::from_dir(&plm_dir)?.truncated(layers)?;
    Ok(Some(Setup {
        plan,
        dataset: loaded.dataset,
        plm_dir,
        cfg,
    }))
}

/// A PLM stage's model on a fresh seeded `VarMap`, the checkpoint copied in.
pub fn build(s: &Setup, kind: StageKind) -> Result<(VarMap, PlmStageModel)> {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, 42, DType::F32, &Device::Cpu);
    let stage = StagePlan {
        name: "bench".into(),
        kind,
        from: vec![],
        train: train_plan(1),
        pool: None,
    };
    let model = build_stage_model(&s.plan, &stage, &s.dataset, &s.cfg, &vb)?;
    load_checkpoint(&varmap, &Checkpoint::open(&s.plm_dir)?)?;
    Ok((varmap, model))
}
