//! The PLM stages end to end on a tiny PLM (random weights written as a HF
//! folder) and a hand-built dataset with a planted signal: the item's token
//! in the text is only predictable from the item id (so prompts must carry
//! it), and the label depends on the item.

mod plm_support;
use plm_support::write_checkpoint;
use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarMap;
use clickprompt::data::{
    Column, ColumnLayout, Dataset, DatasetMeta, FieldMeta, Split, TextMeta, TokenColumn,
};
use clickprompt::data::{DeviceSplit, NO_WORD};
use clickprompt::model::plm::Config;
use clickprompt::model::vars::seeded_var_builder;
use clickprompt::plan::types::*;
use clickprompt::train::evaluation::{is_interrupted, EvalCtx};
use clickprompt::train::events::{Collect, EvalSplit, Event};
use clickprompt::train::plm_stages::{build_stage_model, run_plm_stage, PlmStageInput};
use std::sync::atomic::{AtomicBool, Ordering};

const USERS: usize = 6;
const ITEMS: usize = 8;

fn split(rows: usize, offset: usize) -> Split {
    let (mut users, mut items, mut labels) = (vec![], vec![], vec![]);
    let (mut offsets, mut ids) = (vec![0u32], vec![]);
    for r in 0..rows {
        let x = (r * 7 + offset * 13) % (USERS * ITEMS);
        let (u, i) = (x % USERS, (x / USERS) % ITEMS);
        users.push(2 + u as u32);
        items.push(2 + i as u32);
        labels.push(if i % 2 == 0 { 1.0 } else { 0.0 });
        // [CLS] user-word item-word filler [SEP]; item word 10 + i.
        let row = [1u32, 20 + u as u32, 10 + i as u32, 30 + (r % 3) as u32, 2];
        ids.extend_from_slice(&row[..4 + (r % 2)]);
        if r % 2 == 0 {
            ids.push(2);
        }
        offsets.push(ids.len() as u32);
    }
    Split {
        rows,
        labels,
        columns: vec![Column::Single(users), Column::Single(items)],
        tokens: Some(TokenColumn::untagged(offsets, ids)),
    }
}

fn dataset() -> Dataset {
    let field = |name: &str, n: usize| FieldMeta {
        name: name.into(),
        layout: ColumnLayout::Single,
        vocab_size: n + 2,
        values: (0..n + 2).map(|i| i.to_string()).collect(),
        scale: None,
    };
    Dataset {
        meta: DatasetMeta {
            fields: vec![field("user", USERS), field("item", ITEMS)],
            text: Some(TextMeta {
                vocab_size: 40,
                pad_id: 0,
                mask_id: 3,
                special_ids: vec![0, 1, 2, 3],
                max_len: 8,
                text_fields: vec![],
            }),
        },
        train: split(192, 0),
        valid: split(64, 1),
        test: split(64, 2),
    }
}

/// A tiny random BERT written as a HuggingFace folder.
fn tiny_plm(dir: &Path) {
    let mut cfg = Config::tiny(40, 16, 2, 2);
    cfg.hidden_dropout_prob = 0.0;
    cfg.attention_probs_dropout_prob = 0.0;
    write_checkpoint(dir, &cfg);
    std::fs::write(dir.join("vocab.txt"), "x\n").unwrap();
}

fn plan(stages: Vec<StagePlan>, fusion: FusionPlan) -> ExperimentPlan {
    ExperimentPlan {
        name: "t".into(),
        experiment: "t".into(),
        sweep: None,
        group: String::new(),
        dataset: std::sync::Arc::new(DatasetPlan {
            name: "hand".into(),
            source: SourcePlan::Synthetic(SyntheticSource {
                users: USERS,
                items: ITEMS,
                rows: 0,
                seed: 0,
                themes: 1,
                semantic: 0.0,
                collaborative: 0.0,
                noise: 1.0,
            }),
            label: LabelRule::Binary {
                column: "label".into(),
            },
            split: SplitPlan::Random {
                seed: 0,
                ratios: [0.8, 0.1, 0.1],
            },
            min_count: 1,
            skip_bad_rows: false,
            fields: vec![],
        }),
        template: None,
        plm: Some(PlmPlan {
            name: "tiny".into(),
            family: PlmFamily::Bert,
            location: PlmLocation::Local("unused".into()),
            max_len: 8,
            pool: Pooling::Mean,
            layers: None,
        }),
        ctr: Some(CtrPlan {
            embed: 8,
            backbone: Backbone::Dnn {
                mlp: vec![32],
                dropout: 0.0,
            },
        }),
        prompts: PromptPlan {
            count: 2,
            mode: PromptMode::Deep,
        },
        fusion,
        stages,
        device: DeviceSpec::Cpu,
        seed: 7,
        metrics: vec![MetricKind::Auc, MetricKind::Logloss],
    }
}

fn train(epochs: usize, lr: f64) -> TrainPlan {
    TrainPlan {
        epochs,
        batch: 16,
        lr,
        plm_lr: Some(lr),
        weight_decay: 0.0,
        warmup: 0.0,
        schedule: Schedule::Constant,
        patience: None,
        grad_clip: Some(5.0),
        accumulate: 1,
        eval_batch: 64,
        max_rows: None,
        valid_rows: None,
        bucket_by_length: true,
    }
}

#[test]
fn pa_mlm_then_joint_and_plm_only() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_plm(tmp.path());
    let ds = dataset();
    let pre = StagePlan {
        name: "pretrain".into(),
        kind: StageKind::PaMlm {
            mask: 0.3,
            mask_unit: MaskUnit::Token,
            head_warmup: 0,
        },
        from: vec![],
        train: train(6, 5e-3),
        pool: None,
    };
    let joint = StagePlan {
        name: "joint".into(),
        kind: StageKind::Joint,
        from: vec![],
        train: train(2, 2e-3),
        pool: None,
    };
    let p = plan(
        vec![pre.clone(), joint.clone()],
        FusionPlan::PrefixAdd {
            learnable_alpha: true,
        },
    );
    let sink = Collect::default();
    let out = run_plm_stage(&PlmStageInput {
        plan: &p,
        stage: &pre,
        dataset: &ds,
        plm_dir: tmp.path(),
        device: &Device::Cpu,
        sink: &sink,
        init_from: vec![],
        checkpoint_dir: Some(tmp.path().join("ckpt/pretrain")),
        cancel: None,
        resume: None,
    })
    .unwrap();
    let weights = out.best_checkpoint.clone().expect("best checkpoint");
    let events = sink.0.lock().unwrap().clone();
    let mlm: Vec<(f64, f64, f64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Eval {
                metrics,
                split: EvalSplit::Valid,
                ..
            } => {
                let g = |k: &str| {
                    metrics
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| *v)
                        .unwrap()
                };
                Some((g("mlm_loss"), g("mlm_acc"), g("mlm_acc_no_prompt")))
            }
            _ => None,
        })
        .collect();
    eprintln!("mlm per epoch (loss, acc, acc without prompts): {mlm:?}");
    assert_eq!(mlm.len(), 6);
    assert!(
        mlm[5].0 < mlm[0].0,
        "PA-MLM did not lower masked-token loss: {mlm:?}"
    );
    assert!(events.iter().any(|e| matches!(e, Event::Log { message, .. } if message.contains("MLM head created, not loaded"))));
    assert!(out.test.is_none(), "PA-MLM must not touch the test split");
    assert!(weights.is_file());

    let sink = Collect::default();
    let out = run_plm_stage(&PlmStageInput {
        plan: &p,
        stage: &joint,
        dataset: &ds,
        plm_dir: tmp.path(),
        device: &Device::Cpu,
        sink: &sink,
        init_from: vec![weights.clone()],
        checkpoint_dir: None,
        cancel: None,
        resume: None,
    })
    .unwrap();
    let events = sink.0.lock().unwrap().clone();
    assert!(events.iter().any(|e| matches!(e, Event::Log { message, .. } if message.starts_with("initialised") && !message.starts_with("initialised 0 "))));
    eprintln!("joint test AUC {:?}", out.test.as_ref().map(|t| t.auc));
    assert!(
        out.test.as_ref().unwrap().auc.unwrap() > 0.75,
        "joint AUC {:?}",
        out.test.as_ref().map(|t| t.auc)
    );
    assert!(events.iter().any(
        |e| matches!(e, Event::Eval { metrics, .. } if metrics.iter().any(|(n, _)| n == "alpha"))
    ));

    let only = StagePlan {
        name: "plm_only".into(),
        kind: StageKind::PlmOnly,
        from: vec![],
        train: train(3, 3e-3),
        pool: None,
    };
    let p2 = plan(vec![only.clone()], FusionPlan::None);
    let out = run_plm_stage(&PlmStageInput {
        plan: &p2,
        stage: &only,
        dataset: &ds,
        plm_dir: tmp.path(),
        device: &Device::Cpu,
        sink: &Collect::default(),
        init_from: vec![],
        checkpoint_dir: None,
        cancel: None,
        resume: None,
    })
    .unwrap();
    // The item word is in the text, so the PLM alone can learn the label.
    assert!(
        out.test.as_ref().unwrap().auc.unwrap() > 0.75,
        "plm_only AUC {:?}",
        out.test.as_ref().map(|t| t.auc)
    );
}

/// The hand dataset with token tags: the user word is field 1, the item
/// word field 2, the filler template text; each token its own word.
fn tagged(mut ds: Dataset) -> Dataset {
    for s in [&mut ds.train, &mut ds.valid, &mut ds.test] {
        let tok = s.tokens.as_mut().unwrap();
        tok.fields = vec![0; tok.ids.len()];
        tok.words = vec![NO_WORD; tok.ids.len()];
        for r in 0..s.rows {
            let a = tok.offsets[r] as usize;
            tok.fields[a + 1..a + 3].copy_from_slice(&[1, 2]);
            tok.words[a + 1..a + 4].copy_from_slice(&[0, 1, 2]);
        }
    }
    ds.meta.text.as_mut().unwrap().text_fields = vec!["user".into(), "item".into()];
    ds
}

/// `mask_unit field` on a one-layer cut of the PLM, after a head warm-up:
/// the masked field can only come from the prompts (the CTR model reads
/// the ids), and the per-field accuracies show it.
#[test]
fn field_masking_reports_which_fields_the_prompts_carry() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_plm(tmp.path());
    let ds = tagged(dataset());
    let pre = StagePlan {
        name: "pretrain".into(),
        kind: StageKind::PaMlm {
            mask: 0.15,
            mask_unit: MaskUnit::Field,
            head_warmup: 30,
        },
        from: vec![],
        train: train(20, 4e-3),
        pool: None,
    };
    let mut p = plan(vec![pre.clone()], FusionPlan::None);
    p.plm.as_mut().unwrap().layers = Some(1);
    let sink = Collect::default();
    run_plm_stage(&PlmStageInput {
        plan: &p,
        stage: &pre,
        dataset: &ds,
        plm_dir: tmp.path(),
        device: &Device::Cpu,
        sink: &sink,
        init_from: vec![],
        checkpoint_dir: None,
        cancel: None,
        resume: None,
    })
    .unwrap();
    let events = sink.0.lock().unwrap().clone();
    let warm = events
        .iter()
        .find_map(|e| match e {
            Event::Log { message, .. } if message.contains("warmed up alone for 30 steps") => {
                Some(message.clone())
            }
            _ => None,
        })
        .expect("a head warm-up log line");
    eprintln!("{warm}");
    let last: Vec<(String, f64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Eval {
                metrics,
                split: EvalSplit::Valid,
                ..
            } => Some(metrics.clone()),
            _ => None,
        })
        .next_back()
        .unwrap();
    let get = |k: &str| last.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    eprintln!("last validation: {last:?}");
    // Every masked token is a field's: the per-field counts add up.
    let n = get("mlm_tokens").unwrap();
    assert_eq!(
        get("mlm_tokens[user]").unwrap() + get("mlm_tokens[item]").unwrap(),
        n
    );
    let mut gaps = Vec::new();
    for f in ["user", "item"] {
        let gap = get(&format!("prompt_gap[{f}]")).unwrap();
        let with = get(&format!("mlm_acc[{f}]")).unwrap();
        let without = get(&format!("mlm_acc_no_prompt[{f}]")).unwrap();
        assert!((gap - (with - without)).abs() < 1e-12);
        gaps.push(gap);
    }
    // Without prompts a masked user or item word is a guess (1 in 6 or 8);
    // the prompts carry the ids. (A 16-wide one-layer PLM learns one of the
    // two fields well in this budget, not always both.)
    assert!(get("prompt_gap").unwrap() > 0.2, "{last:?}");
    assert!(gaps.iter().any(|&g| g > 0.4), "per-field gaps {gaps:?}");
}

/// Each PLM evaluation pass (PA-MLM, joint, PLM-only) checks the cancel flag
/// between its batches: with the flag set it stops instead of scoring the split.
#[test]
fn plm_evaluations_stop_when_cancelled() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_plm(tmp.path());
    let ds = dataset();
    let cfg = Config::from_dir(tmp.path()).unwrap();
    let valid = DeviceSplit::new(&ds.valid, &ds.meta, &Device::Cpu).unwrap();
    let prefix = FusionPlan::PrefixAdd {
        learnable_alpha: false,
    };
    let kinds = [
        (
            StageKind::PaMlm {
                mask: 0.3,
                mask_unit: MaskUnit::Token,
                head_warmup: 0,
            },
            prefix.clone(),
        ),
        (StageKind::Joint, prefix),
        (StageKind::PlmOnly, FusionPlan::None),
    ];
    for (kind, fusion) in kinds {
        let stage = StagePlan {
            name: "s".into(),
            kind: kind.clone(),
            from: vec![],
            train: train(1, 1e-3),
            pool: None,
        };
        let p = plan(vec![stage.clone()], fusion);
        let vm = VarMap::new();
        let vb = seeded_var_builder(&vm, 1, DType::F32, &Device::Cpu);
        let model = build_stage_model(&p, &stage, &ds, &cfg, &vb).unwrap();
        let model = model.as_stage_model();
        let cancel = AtomicBool::new(false);
        let ctx = EvalCtx {
            epoch: 1,
            split: EvalSplit::Valid,
            seed: 7,
            cancel: Some(&cancel),
        };
        model
            .evaluate(&valid, 16, &ctx)
            .unwrap_or_else(|e| panic!("{kind:?}: {e:#}"));
        cancel.store(true, Ordering::SeqCst);
        let err = model.evaluate(&valid, 16, &ctx).unwrap_err();
        assert!(is_interrupted(&err), "{kind:?}: {err:#}");
    }
}
