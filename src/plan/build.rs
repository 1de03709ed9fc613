//! Building plans in code, with the language's defaults: what an
//! experiment file would get for the parts it leaves out. A plan built so
//! is run like a parsed one (`session::Session::run_plan`).
//!
//! ```ignore
//! let mut plan = ExperimentPlan::new("scratch", dataset);
//! plan.ctr = Some(CtrPlan { embed: 16, backbone: Backbone::Dnn { mlp: vec![64], dropout: 0.0 } });
//! plan.stages.push(StagePlan::new("ctr_only", StageKind::CtrOnly { from: None }, false));
//! ```

use super::types::*;

impl ExperimentPlan {
    /// An experiment on `dataset` with every optional part at its default:
    /// no PLM, template or CTR backbone yet, 5 deep prompts, `prefix_add`
    /// fusion, device `auto`, seed 42, metrics AUC then LogLoss, no stages.
    pub fn new(name: &str, dataset: DatasetPlan) -> Self {
        Self {
            name: name.into(),
            experiment: name.into(),
            group: name.into(),
            sweep: None,
            dataset: dataset.into(),
            template: None,
            plm: None,
            ctr: None,
            prompts: PromptPlan {
                count: 5,
                mode: PromptMode::Deep,
            },
            fusion: FusionPlan::PrefixAdd {
                learnable_alpha: false,
            },
            stages: Vec::new(),
            device: DeviceSpec::Auto,
            seed: 42,
            metrics: vec![MetricKind::Auc, MetricKind::Logloss],
        }
    }
}

impl DatasetPlan {
    /// A dataset read from `source` with `label`, split `split`, no fields
    /// yet, `min_count 1`, malformed rows an error.
    pub fn new(name: &str, source: SourcePlan, label: LabelRule, split: SplitPlan) -> Self {
        Self {
            name: name.into(),
            source,
            label,
            split,
            min_count: 1,
            skip_bad_rows: false,
            fields: Vec::new(),
        }
    }
}

impl FieldPlan {
    /// A field reading the column of the same name, shown as `display` in
    /// text, feeding both the CTR model and the text, without a value map.
    pub fn new(name: &str, display: &str, kind: FieldKind) -> Self {
        Self {
            name: name.into(),
            column: name.into(),
            display: display.into(),
            kind,
            map: Vec::new(),
            ctr: true,
            text: true,
        }
    }
}

impl StagePlan {
    /// A stage with the training settings a stage block without settings
    /// gets ([`TrainPlan::defaults`]), starting from the previous stage's
    /// weights; `uses_plm`: the experiment has a PLM.
    pub fn new(name: &str, kind: StageKind, uses_plm: bool) -> Self {
        Self {
            name: name.into(),
            train: TrainPlan::defaults(&kind, uses_plm),
            kind,
            from: Vec::new(),
            pool: None,
        }
    }
}

impl TrainPlan {
    /// The defaults of the language for a stage of `kind`: one epoch; batch
    /// 1024 (CTR-only) or 32; learning rates 1e-3 for the CTR side and, in
    /// `pa_mlm` and `joint`, 5e-5 for the PLM side (`plm_only`: 5e-5);
    /// constant (CTR-only) or linear schedule; evaluation batch 4096
    /// (CTR-only) or 256; length bucketing when the experiment has a PLM.
    pub fn defaults(kind: &StageKind, uses_plm: bool) -> Self {
        let ctr_only = matches!(kind, StageKind::CtrOnly { .. });
        let (lr, plm_lr) = match kind {
            StageKind::PaMlm { .. } | StageKind::Joint => (1e-3, Some(5e-5)),
            StageKind::PlmOnly => (5e-5, None),
            StageKind::CtrOnly { .. } => (1e-3, None),
        };
        Self {
            epochs: 1,
            batch: if ctr_only { 1024 } else { 32 },
            lr,
            plm_lr,
            weight_decay: 0.0,
            warmup: 0.0,
            schedule: if ctr_only {
                Schedule::Constant
            } else {
                Schedule::Linear
            },
            patience: None,
            grad_clip: None,
            accumulate: 1,
            eval_batch: if ctr_only { 4096 } else { 256 },
            max_rows: None,
            valid_rows: None,
            bucket_by_length: uses_plm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The builders agree with what the language resolves for the same
    /// experiment written as a file.
    #[test]
    fn builders_match_the_language_defaults() {
        let src = r#"
dataset d {
  source synthetic { users 5, items 5, rows 50, seed 1 }
  label label
  split random 8:1:1 seed 3
  field user_id "User" id
}
template t = "{user_id}"
plm p = bert("some/dir")
experiment e {
  data d
  ctr dnn { embed 8, mlp [16] }
  stage finetune ctr_only { }
}
experiment j {
  data d  text t  plm p
  ctr dnn { embed 8, mlp [16] }
  stage pretrain pa_mlm { }
  stage finetune joint { }
}
experiment o {
  data d  text t  plm p
  stage finetune plm_only { }
}
"#;
        let plans = crate::plan::load_str(src, "t.cp").unwrap();
        let e = &plans[0];
        let mut built = ExperimentPlan::new("e", {
            let mut d = DatasetPlan::new(
                "d",
                e.dataset.source.clone(),
                e.dataset.label.clone(),
                e.dataset.split.clone(),
            );
            d.fields
                .push(FieldPlan::new("user_id", "User", FieldKind::Id));
            d
        });
        built.ctr = e.ctr.clone();
        built.stages.push(StagePlan::new(
            "ctr_only",
            StageKind::CtrOnly { from: None },
            false,
        ));
        assert_eq!(&built, e);

        for s in plans[1].stages.iter().chain(&plans[2].stages) {
            assert_eq!(s.train, TrainPlan::defaults(&s.kind, true), "{}", s.name);
        }
    }
}
