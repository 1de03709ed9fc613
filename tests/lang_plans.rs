//! The example files check clean; plans resolve with the documented
//! defaults, round-trip through YAML, flatten, and select by name.

use std::path::{Path, PathBuf};

use clickprompt::plan::{self, *};

fn experiment_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("experiments/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cp"))
        .collect();
    files.sort();
    files
}

fn load(name: &str) -> Vec<ExperimentPlan> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments")
        .join(name);
    plan::load_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn by_name<'a>(plans: &'a [ExperimentPlan], name: &str) -> &'a ExperimentPlan {
    plans
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no plan {name}"))
}

#[test]
fn every_example_checks_clean() {
    let files = experiment_files();
    assert!(
        files.len() >= 6,
        "expected the example files, found {files:?}"
    );
    for f in files {
        let plans = plan::load_file(&f).unwrap_or_else(|e| panic!("{}:\n{e}", f.display()));
        assert!(!plans.is_empty(), "{} has no runs", f.display());
    }
}

#[test]
fn yaml_round_trip_is_identical() {
    for f in experiment_files() {
        for p in plan::load_file(&f).unwrap() {
            let yaml = plan::to_yaml(&p).unwrap();
            let back = plan::from_yaml(&yaml).unwrap();
            assert_eq!(back, p, "{} / {}", f.display(), p.name);
            let json = serde_json::to_string(&p).unwrap();
            let back: ExperimentPlan = serde_json::from_str(&json).unwrap();
            assert_eq!(back, p);
        }
    }
}

#[test]
fn issue_example_resolves_fully() {
    let plans = load("ml100k_clickprompt_dcnv2.cp");
    let p = by_name(&plans, "clickprompt_dcnv2");
    assert_eq!(
        p.dataset.split,
        SplitPlan::ByTime {
            column: "timestamp".into(),
            ratios: [0.8, 0.1, 0.1]
        }
    );
    assert_eq!(
        p.dataset.label,
        LabelRule::Threshold {
            column: "rating".into(),
            op: CmpOp::Gt,
            value: 3.0
        }
    );
    let gender = p
        .dataset
        .fields
        .iter()
        .find(|f| f.name == "gender")
        .unwrap();
    assert_eq!(
        gender.map,
        vec![("M".into(), "male".into()), ("F".into(), "female".into())]
    );
    assert_eq!(gender.display, "Gender");
    let zip = p.dataset.fields.iter().find(|f| f.name == "zip").unwrap();
    assert!(zip.ctr && !zip.text);
    let t = p.template.as_ref().unwrap();
    assert!(!t.fields.contains(&"zip".to_string()) && t.fields.contains(&"title".to_string()));
    assert_eq!(
        p.ctr,
        Some(CtrPlan {
            embed: 16,
            backbone: Backbone::DcnV2 {
                cross: 3,
                mlp: vec![256, 256],
                dropout: 0.1
            }
        })
    );
    assert_eq!(
        p.prompts,
        PromptPlan {
            count: 10,
            mode: PromptMode::Deep
        }
    );
    let plm = p.plm.as_ref().unwrap();
    assert_eq!(
        (plm.max_len, plm.pool, plm.family),
        (64, Pooling::Mean, PlmFamily::Bert)
    );
    let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["pretrain", "joint", "ctr_only"]);
    assert_eq!(
        p.stages[0].kind,
        StageKind::PaMlm {
            mask: 0.15,
            mask_unit: MaskUnit::Token,
            head_warmup: 0
        }
    );
    assert_eq!(p.stages[0].train.lr, 1e-3);
    assert_eq!(p.stages[0].train.plm_lr, Some(5e-5));
    assert_eq!(p.stages[0].train.warmup, 0.05);
    assert_eq!(p.stages[1].train.patience, Some(2));
    assert_eq!(p.stages[1].pool, Some(Pooling::Mean));
    assert_eq!(p.stages[1].train.schedule, Schedule::Linear);
    assert_eq!(
        p.stages[2].kind,
        StageKind::CtrOnly {
            from: Some("pretrain".into())
        }
    );
    assert_eq!(p.stages[2].train.schedule, Schedule::Constant);
    assert_eq!(p.stages[2].train.eval_batch, 4096);
    assert!(!p.stages[2].train.bucket_by_length);
    assert_eq!((p.device, p.seed), (DeviceSpec::Auto, 42));
    assert_eq!(p.metrics, vec![MetricKind::Auc, MetricKind::Logloss]);

    let s = by_name(&plans, "dcnv2_scratch");
    assert_eq!(s.plm, None);
    assert_eq!(s.template, None);
    assert_eq!(s.ctr, p.ctr, "extends keeps the backbone");
    assert_eq!(s.stages.len(), 1);
    assert_eq!(s.stages[0].train.epochs, 8);
    assert_eq!(s.stages[0].kind, StageKind::CtrOnly { from: None });
}

#[test]
fn sweeps_expand_into_named_runs() {
    let plans = load("ml100k_prompt_sweep.cp");
    let grid = plan::select(plans.clone(), Some("prompt_count")).unwrap();
    let names: Vec<&str> = grid.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "prompt_count[prompts=1,ctr=deepfm]",
            "prompt_count[prompts=1,ctr=dcnv2]",
            "prompt_count[prompts=5,ctr=deepfm]",
            "prompt_count[prompts=5,ctr=dcnv2]",
            "prompt_count[prompts=10,ctr=deepfm]",
            "prompt_count[prompts=10,ctr=dcnv2]",
            "prompt_count[prompts=20,ctr=deepfm]",
            "prompt_count[prompts=20,ctr=dcnv2]",
        ]
    );
    let p = &grid[2];
    assert_eq!(p.prompts.count, 5);
    assert_eq!(p.experiment, "clickprompt");
    // Switching backbone keeps the parameters the new one accepts.
    assert_eq!(
        p.ctr,
        Some(CtrPlan {
            embed: 16,
            backbone: Backbone::DeepFm {
                mlp: vec![256, 256],
                dropout: 0.1
            }
        })
    );
    let sp = p.sweep.as_ref().unwrap();
    assert_eq!(sp.sweep, "prompt_count");
    assert_eq!(
        sp.assignments,
        vec![
            ("prompts".into(), "5".into()),
            ("ctr".into(), "deepfm".into())
        ]
    );

    let lr = plan::select(plans.clone(), Some("joint_lr")).unwrap();
    let lrs: Vec<f64> = lr.iter().map(|p| p.stages[1].train.lr).collect();
    assert_eq!(lrs, [5e-5, 1e-4, 2e-4]);
    assert_eq!(lr[0].name, "joint_lr[stages.joint.lr=5e-5]");

    let one = plan::select(plans.clone(), Some("prompt_count[prompts=5,ctr=dcnv2]")).unwrap();
    assert_eq!(one.len(), 1);
    let base = plan::select(plans.clone(), Some("clickprompt")).unwrap();
    assert_eq!(base.len(), 1);
    assert_eq!(
        plan::select(plans.clone(), None).unwrap().len(),
        plans.len()
    );
}

#[test]
fn select_unknown_name_lists_the_names() {
    let plans = load("ml100k_prompt_sweep.cp");
    let err = plan::select(plans, Some("prompt_cont")).unwrap_err();
    assert_eq!(clickprompt::error::exit_code(&err), 2);
    let msg = err.to_string();
    assert!(
        msg.contains("no experiment or sweep named `prompt_cont`"),
        "{msg}"
    );
    assert!(
        msg.contains("`clickprompt`, `prompt_count` and `joint_lr`"),
        "{msg}"
    );
    assert!(msg.contains("did you mean `prompt_count`?"), "{msg}");
}

#[test]
fn flatten_gives_dotted_keys() {
    let plans = load("ml100k_clickprompt_dcnv2.cp");
    let p = by_name(&plans, "clickprompt_dcnv2");
    let flat = plan::flatten_params(p);
    let get = |k: &str| {
        flat.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("ctr.backbone.name"), Some("dcnv2"));
    assert_eq!(get("ctr.backbone.mlp"), Some("[256,256]"));
    assert_eq!(get("prompts.count"), Some("10"));
    assert_eq!(get("stages.joint.lr"), Some("0.0001"));
    assert_eq!(get("stages.pretrain.mask"), Some("0.15"));
    assert_eq!(get("stages.pretrain.kind"), Some("pa_mlm"));
    assert_eq!(get("stages.ctr_only.from"), Some("pretrain"));
    assert_eq!(get("dataset.fields.gender.display"), Some("Gender"));
    assert_eq!(get("plm.pool"), Some("mean"));
    assert_eq!(get("sweep"), Some("none"));
    let keys: Vec<&String> = flat.iter().map(|(k, _)| k).collect();
    let mut dedup = keys.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), keys.len(), "keys are unique");
}

#[test]
fn defaults_fill_an_almost_empty_experiment() {
    let src = r#"
dataset s { source synthetic label label split random 8:1:1 field user_id id field title text }
plm m = roberta(hub("roberta-base"))
experiment e { data s plm m ctr dnn stage finetune joint }
"#;
    let plans = plan::load_str(src, "t.cp").unwrap_or_else(|e| panic!("{e}"));
    let p = &plans[0];
    assert_eq!(
        p.dataset.source,
        SourcePlan::Synthetic(SyntheticSource {
            users: 200,
            items: 300,
            rows: 20000,
            seed: 7,
            themes: 6,
            semantic: 2.0,
            collaborative: 1.0,
            noise: 1.0
        })
    );
    assert_eq!(
        p.dataset.split,
        SplitPlan::Random {
            seed: 0,
            ratios: [0.8, 0.1, 0.1]
        }
    );
    assert_eq!(p.dataset.min_count, 1);
    let plm = p.plm.as_ref().unwrap();
    assert_eq!(plm.location, PlmLocation::Hub("roberta-base".into()));
    assert_eq!(
        (plm.family, plm.max_len, plm.pool),
        (PlmFamily::Roberta, 128, Pooling::Mean)
    );
    let t = p.template.as_ref().unwrap();
    assert_eq!(
        t.form,
        TemplateForm::Each {
            pattern: "{name} is {value}.".into(),
            join: " ".into()
        }
    );
    assert_eq!(t.fields, vec!["user_id".to_string(), "title".to_string()]);
    assert_eq!(
        p.ctr,
        Some(CtrPlan {
            embed: 16,
            backbone: Backbone::Dnn {
                mlp: vec![256, 256, 256],
                dropout: 0.0
            }
        })
    );
    assert_eq!(
        p.prompts,
        PromptPlan {
            count: 5,
            mode: PromptMode::Deep
        }
    );
    assert_eq!(
        p.fusion,
        FusionPlan::PrefixAdd {
            learnable_alpha: false
        }
    );
    let tr = &p.stages[0].train;
    assert_eq!(
        *tr,
        TrainPlan {
            epochs: 1,
            batch: 32,
            // The reference setup's two rates: CTR side 1e-3, PLM side 5e-5.
            lr: 1e-3,
            plm_lr: Some(5e-5),
            weight_decay: 0.0,
            warmup: 0.0,
            schedule: Schedule::Linear,
            patience: None,
            grad_clip: None,
            accumulate: 1,
            eval_batch: 256,
            max_rows: None,
            valid_rows: None,
            bucket_by_length: true,
        }
    );
}

#[test]
fn language_details() {
    let src = r#"
# comments, escapes, trailing commas, 5e-5, cuda:1, renamed stages
dataset c {
  source csv(env("CLICKPROMPT_TEST_UNSET_DIR", "data/x.tsv"), sep "\t", header false,
             columns ["uid", "iid", "clicked", "ts", "tags",],)
  label clicked
  split by_time(ts) 7:2:1
  min_count 3
  field uid "User" id column "uid" text false
  field tags "Tags \"quoted\"" multi ";" map { a: "alpha", "b c": "beta", 1: "one", }
}
template t = "Tags: {tags}. {{literal}}"
plm p = bert("m") { max_len 48, pool cls, }
experiment e {
  data c text t plm p ctr xdeepfm { cin [32, 16], mlp [64], } prompts 3 shallow fusion prefix_add alpha
  device cuda:1 seed 7 metrics auc
  stage finetune joint as warm { epochs 1, lr 5e-5, pool top2, grad_clip 1.0, accumulate 2, max_rows 100, valid_rows 50, }
  stage finetune ctr_only as tail { from warm, batch 64, bucket_free_parameter_is_not_here 0 }
}
"#;
    let errs = plan::check_source(src).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].message,
        "unknown parameter `bucket_free_parameter_is_not_here` for stage `tail`"
    );
    let src = src.replace(", bucket_free_parameter_is_not_here 0", "");
    let plans = plan::load_str(&src, "t.cp").unwrap_or_else(|e| panic!("{e}"));
    let p = &plans[0];
    match &p.dataset.source {
        SourcePlan::Csv(c) => {
            assert_eq!(c.sep, "\t");
            assert!(!c.header);
            assert_eq!(c.columns.len(), 5);
            assert_eq!(c.path, PathBuf::from("data/x.tsv"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        p.dataset.split,
        SplitPlan::ByTime {
            column: "ts".into(),
            ratios: [0.7, 0.2, 0.1]
        }
    );
    assert_eq!(p.dataset.min_count, 3);
    let tags = &p.dataset.fields[1];
    assert_eq!(tags.display, "Tags \"quoted\"");
    assert_eq!(tags.kind, FieldKind::Multi { sep: ";".into() });
    assert_eq!(tags.map[1], ("b c".to_string(), "beta".to_string()));
    assert_eq!(tags.map[2], ("1".to_string(), "one".to_string()));
    assert_eq!(
        p.template.as_ref().unwrap().fields,
        vec!["tags".to_string()]
    );
    assert_eq!(
        p.prompts,
        PromptPlan {
            count: 3,
            mode: PromptMode::Shallow
        }
    );
    assert_eq!(
        p.fusion,
        FusionPlan::PrefixAdd {
            learnable_alpha: true
        }
    );
    assert_eq!((p.device, p.seed), (DeviceSpec::Cuda(1), 7));
    assert_eq!(p.metrics, vec![MetricKind::Auc]);
    assert_eq!(p.stages[0].name, "warm");
    assert_eq!(p.stages[0].pool, Some(Pooling::Top2));
    assert_eq!(p.stages[0].train.accumulate, 2);
    assert_eq!(p.stages[0].train.max_rows, Some(100));
    assert_eq!(p.stages[0].train.valid_rows, Some(50));
    assert_eq!(p.stages[1].train.valid_rows, None);
    assert_eq!(
        p.stages[1].kind,
        StageKind::CtrOnly {
            from: Some("warm".into())
        }
    );
    assert_eq!(
        p.ctr.as_ref().unwrap().backbone,
        Backbone::XDeepFm {
            cin: vec![32, 16],
            mlp: vec![64],
            dropout: 0.0
        }
    );
}

#[test]
fn extends_overrides_single_stages_and_settings() {
    let src = r#"
dataset s { source synthetic label label split random 8:1:1 field user_id id field title text }
plm m = bert("m")
experiment base { data s plm m ctr dcnv2 { cross 2 } seed 1
  stage pretrain pa_mlm { epochs 1, mask 0.2 }
  stage finetune joint { epochs 2, lr 1e-4 } }
experiment child extends base { seed 2 ctr dcnv2 { cross 4 } stage finetune joint { lr 3e-4 } stage finetune ctr_only { from joint } }
experiment grandchild extends child { plm m { max_len 16 } }
"#;
    let plans = plan::load_str(src, "t.cp").unwrap_or_else(|e| panic!("{e}"));
    let c = by_name(&plans, "child");
    assert_eq!(c.seed, 2);
    assert_eq!(
        c.ctr.as_ref().unwrap().backbone,
        Backbone::DcnV2 {
            cross: 4,
            mlp: vec![256, 256, 256],
            dropout: 0.0
        }
    );
    let names: Vec<&str> = c.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["pretrain", "joint", "ctr_only"]);
    assert_eq!(c.stages[1].train.epochs, 2, "inherited parameter kept");
    assert_eq!(c.stages[1].train.lr, 3e-4, "overridden parameter");
    let g = by_name(&plans, "grandchild");
    assert_eq!(g.plm.as_ref().unwrap().max_len, 16);
    assert_eq!(g.stages, c.stages.to_vec());
    assert_eq!(by_name(&plans, "base").plm.as_ref().unwrap().max_len, 128);
}

#[test]
fn pa_mlm_masking_head_warmup_and_plm_layers() {
    let src = r#"
dataset s { source synthetic label label split random 8:1:1 field user_id id field title text }
plm m = bert("m") { layers 2 }
experiment e { data s plm m ctr dnn
  stage pretrain pa_mlm { mask_unit field, head_warmup 200 }
  stage finetune joint { lr 2e-3 } }
experiment w extends e { plm m { layers 1 } stage pretrain pa_mlm { mask_unit word, mask 0.3 } }
sweep depth over e { plm.layers in [1, 3] }
"#;
    let plans = plan::load_str(src, "t.cp").unwrap_or_else(|e| panic!("{e}"));
    let e = by_name(&plans, "e");
    assert_eq!(e.plm.as_ref().unwrap().layers, Some(2));
    assert_eq!(
        e.stages[0].kind,
        StageKind::PaMlm {
            mask: 0.15,
            mask_unit: MaskUnit::Field,
            head_warmup: 200
        }
    );
    // The reference setup's two rates unless the file says otherwise.
    assert_eq!(
        (e.stages[0].train.lr, e.stages[0].train.plm_lr),
        (1e-3, Some(5e-5))
    );
    assert_eq!(
        (e.stages[1].train.lr, e.stages[1].train.plm_lr),
        (2e-3, Some(5e-5))
    );
    let w = by_name(&plans, "w");
    assert_eq!(w.plm.as_ref().unwrap().layers, Some(1));
    assert_eq!(
        w.stages[0].kind,
        StageKind::PaMlm {
            mask: 0.3,
            mask_unit: MaskUnit::Word,
            head_warmup: 200
        }
    );
    let depths: Vec<Option<usize>> = ["depth[plm.layers=1]", "depth[plm.layers=3]"]
        .iter()
        .map(|n| by_name(&plans, n).plm.as_ref().unwrap().layers)
        .collect();
    assert_eq!(depths, [Some(1), Some(3)]);
    let flat = plan::flatten_params(e);
    assert!(flat.contains(&("stages.pretrain.mask_unit".into(), "field".into())));
    assert!(flat.contains(&("plm.layers".into(), "2".into())));
}

#[test]
fn joint_can_start_from_several_earlier_stages() {
    let src = r#"
dataset s { source synthetic label label split random 8:1:1 field user_id id field title text }
plm m = bert("m")
experiment e { data s plm m ctr dcnv2
  stage pretrain pa_mlm {}
  stage finetune ctr_only { from pretrain }
  stage finetune joint { from [pretrain, ctr_only] }
  stage finetune joint as again { from ctr_only } }
"#;
    let plans = plan::load_str(src, "t.cp").unwrap_or_else(|e| panic!("{e}"));
    let p = by_name(&plans, "e");
    assert_eq!(p.stages[2].from, ["pretrain", "ctr_only"]);
    assert_eq!(p.stages[3].from, ["ctr_only"]);
    assert!(p.stages[0].from.is_empty() && p.stages[1].from.is_empty());
    let flat = plan::flatten_params(p);
    assert!(
        flat.contains(&(
            "stages.joint.from".into(),
            "[\"pretrain\",\"ctr_only\"]".into()
        )),
        "{flat:?}"
    );
}
