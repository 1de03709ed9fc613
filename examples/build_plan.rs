//! Build experiment plans in code — no experiment file — and run them.
//!
//! ```sh
//! cargo run --release --example build_plan
//! ```
//!
//! The plan is the same typed value the language resolves a `.cp` file
//! into (printed here as the YAML every run stores); the constructors fill
//! in the language's defaults, so only what differs is written out. Two
//! backbones are built from one base and compared.

use anyhow::Result;
use clickprompt::plan::{
    to_yaml, Backbone, CtrPlan, DatasetPlan, DeviceSpec, ExperimentPlan, FieldKind, FieldPlan,
    LabelRule, SourcePlan, SplitPlan, StageKind, StagePlan, SyntheticSource,
};
use clickprompt::session::Session;
use clickprompt::store::default_db;
use clickprompt::train::events::Collect;

fn main() -> Result<()> {
    let session = Session::open(default_db())?;
    let base = plan(6000, 20);
    println!("{}", to_yaml(&base)?);
    for (name, backbone) in backbones() {
        let mut p = base.clone();
        p.name = name.into();
        p.experiment = name.into();
        p.ctr = Some(CtrPlan {
            embed: 16,
            backbone,
        });
        let run = session.run_plan(&p, &Collect::default())?;
        let s = &run.summary.stages[0];
        println!(
            "run {} {name}: test AUC {:.4}, LogLoss {:.4} (best epoch {} of {})",
            run.id,
            s.test_auc.unwrap_or(f64::NAN),
            s.test_logloss.unwrap_or(f64::NAN),
            s.best_epoch.unwrap_or(0),
            s.epochs_run
        );
    }
    Ok(())
}

/// The synthetic clicks of `experiments/quickstart.cp`, CTR only: what the
/// file says in eleven lines.
fn plan(rows: usize, epochs: usize) -> ExperimentPlan {
    let source = SourcePlan::Synthetic(SyntheticSource {
        users: 300,
        items: 400,
        rows,
        seed: 7,
        themes: 6,
        semantic: 2.0,
        collaborative: 1.0,
        noise: 1.0,
    });
    let label = LabelRule::Binary {
        column: "label".into(),
    };
    let split = SplitPlan::ByTime {
        column: "timestamp".into(),
        ratios: [0.8, 0.1, 0.1], // `8:1:1` in the language, which normalises
    };
    let mut data = DatasetPlan::new("synth", source, label, split);
    data.fields = vec![
        FieldPlan::new("user_id", "User", FieldKind::Id),
        FieldPlan::new("user_taste", "Taste", FieldKind::Text),
        FieldPlan::new("item_id", "Item", FieldKind::Id),
        FieldPlan::new("title", "Title", FieldKind::Text),
        FieldPlan::new("genre", "Genre", FieldKind::Category),
    ];

    let mut plan = ExperimentPlan::new("in_code", data);
    plan.ctr = Some(CtrPlan {
        embed: 16,
        backbone: Backbone::Dnn {
            mlp: vec![64, 64],
            dropout: 0.0,
        },
    });
    let mut stage = StagePlan::new("ctr_only", StageKind::CtrOnly { from: None }, false);
    stage.train.epochs = epochs;
    stage.train.batch = 128;
    stage.train.lr = 2e-3;
    stage.train.patience = Some(3);
    plan.stages.push(stage);
    plan.device = DeviceSpec::Cpu;
    plan
}

fn backbones() -> [(&'static str, Backbone); 2] {
    [
        (
            "deepfm_in_code",
            Backbone::DeepFm {
                mlp: vec![64, 64],
                dropout: 0.0,
            },
        ),
        (
            "dcnv2_in_code",
            Backbone::DcnV2 {
                cross: 2,
                mlp: vec![64, 64],
                dropout: 0.0,
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_built_in_code_runs_and_round_trips() {
        let p = plan(800, 2);
        // What every run stores, and reads back for `run --resume` and `predict`.
        assert_eq!(
            clickprompt::plan::from_yaml(&to_yaml(&p).unwrap()).unwrap(),
            p
        );

        let tmp = tempfile::tempdir().unwrap();
        let session = Session::open(tmp.path().join("runs.db"))
            .unwrap()
            .cache_dir(tmp.path().join("cache"))
            .checkpoints(tmp.path().join("checkpoints"));
        let run = session.run_plan(&p, &Collect::default()).unwrap();
        let s = &run.summary.stages[0];
        assert_eq!((s.stage.as_str(), s.epochs_run), ("ctr_only", 2));
        assert!(s.test_auc.is_some_and(|a| a > 0.5));
        let detail = session.store().run_detail(run.id).unwrap();
        assert_eq!(detail.source_path, "<code>");
        assert_eq!(clickprompt::plan::from_yaml(&detail.plan_yaml).unwrap(), p);
    }
}
