//! The trainer end to end on a planted-signal dataset, plus its control flow
//! (NaN stop, early stopping, best restore, accumulation, checkpoints,
//! cancellation during evaluation).

mod ctr_support;

use anyhow::Result;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use clickprompt::data::{Batch, DeviceSplit};
use clickprompt::model::ctr::CtrModel;
use clickprompt::model::vars::{seeded_var_builder, sorted_vars};
use clickprompt::plan::{Backbone, MetricKind, TrainPlan};
use clickprompt::train::checkpoint::{load_by_name, load_by_name_except, save};
use clickprompt::train::events::{Collect, EvalSplit, Event};
use clickprompt::train::trainer::{
    train_stage, EvalCtx, Evaluation, StageData, StageModel, StageResult, StageSpec, StepCtx,
};
use ctr_support::*;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

struct Splits {
    train: DeviceSplit,
    valid: DeviceSplit,
    test: DeviceSplit,
}

fn splits(seed: u64, n: usize) -> Result<Splits> {
    let ds = planted(seed, n, n / 4, n / 4);
    let dev = Device::Cpu;
    Ok(Splits {
        train: DeviceSplit::new(&ds.train, &ds.meta, &dev)?,
        valid: DeviceSplit::new(&ds.valid, &ds.meta, &dev)?,
        test: DeviceSplit::new(&ds.test, &ds.meta, &dev)?,
    })
}

fn spec(name: &str, train: TrainPlan, seed: u64) -> StageSpec {
    StageSpec {
        name: name.into(),
        kind: "ctr_only".into(),
        train,
        seed,
        checkpoint_dir: None,
        cancel: None,
        resume: None,
        select: MetricKind::Auc,
    }
}

fn train_ctr(
    backbone: Backbone,
    s: &Splits,
    tp: TrainPlan,
    seed: u64,
    sink: &Collect,
) -> Result<StageResult> {
    let vm = VarMap::new();
    let model = CtrModel::new(
        &ctr_plan(8, backbone),
        &meta(),
        seeded_var_builder(&vm, seed, DType::F32, &Device::Cpu),
    )?;
    train_stage(
        &model,
        &vm,
        StageData {
            train: &s.train,
            valid: &s.valid,
            test: Some(&s.test),
        },
        &spec("ctr", tp, seed),
        sink,
    )
}

/// A broken model (ids ignored, shuffled labels, no learning) stays near 0.5;
/// the planted signal allows ≈0.8.
#[test]
fn every_backbone_learns_the_planted_signal() -> Result<()> {
    let s = splits(1, 8000)?;
    let mut report = Vec::new();
    for backbone in all_backbones(0.0) {
        let sink = Collect::default();
        let tp = TrainPlan {
            patience: Some(2),
            ..train_plan(4, 256, 0.01)
        };
        let r = train_ctr(backbone.clone(), &s, tp, 3, &sink)?;
        let auc = r.test.as_ref().and_then(|t| t.auc).unwrap();
        report.push((backbone.clone(), auc));
        assert!(r.best_epoch.is_some() && r.train_samples_per_s > 0.0);
    }
    eprintln!("planted test AUC: {report:?}");
    for (backbone, auc) in report {
        // lr sees only first-order effects (the planted signal is mostly an interaction).
        let threshold = if backbone == Backbone::Lr { 0.54 } else { 0.70 };
        assert!(
            auc > threshold,
            "{backbone:?} reached only {auc:.4} test AUC"
        );
    }
    Ok(())
}

#[test]
fn same_seed_same_metrics_on_cpu() -> Result<()> {
    let s = splits(2, 3000)?;
    let bb = Backbone::DcnV2 {
        cross: 2,
        mlp: vec![16, 16],
        dropout: 0.2,
    };
    let run = |seed| -> Result<(f64, f64, f64)> {
        let r = train_ctr(
            bb.clone(),
            &s,
            train_plan(2, 128, 0.005),
            seed,
            &Collect::default(),
        )?;
        let v = r.best_valid.unwrap();
        let t = r.test.unwrap();
        Ok((v.auc.unwrap(), t.auc.unwrap(), t.logloss.unwrap()))
    };
    let a = run(9)?;
    assert_eq!(a, run(9)?);
    assert_ne!(a, run(10)?);
    Ok(())
}

#[test]
fn events_follow_the_contract() -> Result<()> {
    let s = splits(3, 2000)?;
    let sink = Collect::default();
    let tp = TrainPlan {
        warmup: 0.5,
        schedule: clickprompt::plan::Schedule::Linear,
        ..train_plan(2, 500, 0.01)
    };
    let r = train_ctr(
        Backbone::DeepFm {
            mlp: vec![8],
            dropout: 0.1,
        },
        &s,
        tp,
        1,
        &sink,
    )?;
    let ev = sink.0.lock().unwrap().clone();
    assert!(matches!(
        &ev[0],
        Event::StageStarted {
            steps_per_epoch: 4,
            epochs: 2,
            rows: 2000,
            ..
        }
    ));
    let steps: Vec<(usize, f64)> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Step { step, lr, .. } => Some((*step, *lr)),
            _ => None,
        })
        .collect();
    assert_eq!(
        steps.iter().map(|s| s.0).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    // Warm-up over 4 steps to 0.01, then linear decay.
    assert!((steps[0].1 - 0.0025).abs() < 1e-12 && (steps[3].1 - 0.01).abs() < 1e-12);
    assert!(steps[7].1 < steps[4].1);
    let evals: Vec<EvalSplit> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Eval { split, .. } => Some(*split),
            _ => None,
        })
        .collect();
    assert_eq!(
        evals,
        vec![EvalSplit::Valid, EvalSplit::Valid, EvalSplit::Test]
    );
    assert!(matches!(ev.last(), Some(Event::StageFinished { .. })));
    assert!(r.infer_samples_per_s.unwrap() > 0.0);
    Ok(())
}

/// `valid_rows` validates every epoch on the same seeded subset of the
/// validation split (the one `sample_rows` documents); the test split is
/// still scored in full.
#[test]
fn valid_rows_validates_on_a_fixed_seeded_subset() -> Result<()> {
    let s = splits(6, 160)?;
    let bb = Backbone::Dnn {
        mlp: vec![8],
        dropout: 0.0,
    };
    let vm = VarMap::new();
    let model = CtrModel::new(
        &ctr_plan(4, bb),
        &meta(),
        seeded_var_builder(&vm, 1, DType::F32, &Device::Cpu),
    )?;
    let tp = TrainPlan {
        valid_rows: Some(12),
        ..train_plan(2, 16, 0.05)
    };
    let sink = Collect::default();
    let r = train_stage(
        &model,
        &vm,
        StageData {
            train: &s.train,
            valid: &s.valid,
            test: Some(&s.test),
        },
        &spec("subset", tp, 11),
        &sink,
    )?;
    let best = r.best_valid.expect("validated");
    assert_eq!(best.rows, 12);
    assert_eq!(r.test.expect("tested").rows, s.test.rows);
    assert!(sink.0.lock().unwrap().iter().any(|e| matches!(e,
        Event::Log { message, .. } if message.contains("validating on 12 of 40 rows"))));
    // The best epoch's weights are restored: scoring the documented subset
    // again gives the recorded validation AUC.
    let subset = s
        .valid
        .subset(&clickprompt::data::sample_rows(s.valid.rows, 12, 11))?;
    let again = clickprompt::train::trainer::evaluate_ctr(
        &model,
        &subset,
        64,
        &EvalCtx {
            epoch: 0,
            split: EvalSplit::Valid,
            seed: 11,
            cancel: None,
        },
    )?;
    assert_eq!(again.auc, best.auc);
    Ok(())
}

#[test]
fn gradient_accumulation_equals_one_large_batch() -> Result<()> {
    let s = splits(4, 64)?;
    let bb = Backbone::Dnn {
        mlp: vec![8],
        dropout: 0.0,
    };
    let weights = |batch: usize, accumulate: usize| -> Result<Vec<(String, Vec<f32>)>> {
        let vm = VarMap::new();
        let model = CtrModel::new(
            &ctr_plan(4, bb.clone()),
            &meta(),
            seeded_var_builder(&vm, 1, DType::F32, &Device::Cpu),
        )?;
        let tp = TrainPlan {
            accumulate,
            max_rows: Some(32),
            valid_rows: None,
            ..train_plan(1, batch, 0.05)
        };
        train_stage(
            &model,
            &vm,
            StageData {
                train: &s.train,
                valid: &s.valid,
                test: None,
            },
            &spec("acc", tp, 7),
            &Collect::default(),
        )?;
        sorted_vars(&vm)?
            .into_iter()
            .map(|(n, v)| Ok((n, v.as_tensor().flatten_all()?.to_vec1::<f32>()?)))
            .collect()
    };
    let big = weights(32, 1)?;
    let acc = weights(8, 4)?;
    let untouched = {
        let vm = VarMap::new();
        CtrModel::new(
            &ctr_plan(4, bb.clone()),
            &meta(),
            seeded_var_builder(&vm, 1, DType::F32, &Device::Cpu),
        )?;
        sorted_vars(&vm)?
            .into_iter()
            .map(|(n, v)| Ok((n, v.as_tensor().flatten_all()?.to_vec1::<f32>()?)))
            .collect::<Result<Vec<_>>>()?
    };
    assert_ne!(big, untouched);
    for ((n, a), (_, b)) in big.iter().zip(&acc) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5, "{n}: {x} vs {y}");
        }
    }
    Ok(())
}

/// A scripted objective: one weight, a fixed loss (optionally NaN at a step),
/// validation scores from a script, and a record of the weight at each evaluation.
struct Scripted {
    w: Var,
    nan_at: Option<usize>,
    scores: Vec<f64>,
    seen: RefCell<Vec<f32>>,
}

impl StageModel for Scripted {
    fn loss(&self, batch: &Batch, _train: bool, ctx: &StepCtx) -> Result<Tensor> {
        if Some(ctx.step) == self.nan_at {
            return Ok(Tensor::new(f32::NAN, &Device::Cpu)?);
        }
        let n = batch.rows as f64;
        Ok(((self.w.as_tensor() * n)?.sqr()?.sum_all()? * 0.001)?)
    }
    fn predict_logits(&self, batch: &Batch) -> Result<Tensor> {
        Ok(batch.labels.zeros_like()?)
    }
    fn evaluate(&self, split: &DeviceSplit, _eb: usize, ctx: &EvalCtx) -> Result<Evaluation> {
        let w = self.w.as_tensor().to_vec1::<f32>()?[0];
        let score = if ctx.split == EvalSplit::Valid {
            self.scores[ctx.epoch - 1]
        } else {
            -1.0
        };
        self.seen.borrow_mut().push(w);
        Ok(Evaluation {
            auc: None,
            logloss: None,
            metrics: vec![("score".into(), score)],
            score,
            rows: split.rows,
            seconds: 1e-3,
        })
    }
}

fn scripted(nan_at: Option<usize>, scores: Vec<f64>) -> Result<(Scripted, VarMap)> {
    let vm = VarMap::new();
    let w = seeded_var_builder(&vm, 0, DType::F32, &Device::Cpu).get_with_hints(
        1,
        "ctr.w",
        candle_nn::Init::Const(3.0),
    )?;
    let var = vm.data().lock().unwrap().get("ctr.w").unwrap().clone();
    let _ = w;
    Ok((
        Scripted {
            w: var,
            nan_at,
            scores,
            seen: RefCell::new(vec![]),
        },
        vm,
    ))
}

#[test]
fn nan_loss_stops_with_the_step_named() -> Result<()> {
    let s = splits(5, 400)?;
    let (m, vm) = scripted(Some(3), vec![0.5; 5])?;
    let err = train_stage(
        &m,
        &vm,
        StageData {
            train: &s.train,
            valid: &s.valid,
            test: None,
        },
        &spec("nan", train_plan(2, 100, 0.1), 1),
        &Collect::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("step 3") && err.contains("NaN") && err.contains("nan"),
        "{err}"
    );
    Ok(())
}

#[test]
fn early_stopping_restores_the_best_epoch_and_checkpoints() -> Result<()> {
    let s = splits(6, 400)?;
    let dir = tempfile::tempdir()?;
    let (m, vm) = scripted(None, vec![0.5, 0.7, 0.6, 0.65, 0.9, 0.9])?;
    let tp = TrainPlan {
        patience: Some(2),
        ..train_plan(6, 100, 0.1)
    };
    let sp = StageSpec {
        checkpoint_dir: Some(dir.path().join("run/ctr")),
        ..spec("es", tp, 1)
    };
    let sink = Collect::default();
    let r = train_stage(
        &m,
        &vm,
        StageData {
            train: &s.train,
            valid: &s.valid,
            test: Some(&s.test),
        },
        &sp,
        &sink,
    )?;
    assert_eq!(r.best_epoch, Some(2));
    assert_eq!(r.epochs_run, 4);
    assert!(r.stopped_early);
    let seen = m.seen.borrow().clone();
    // Valid evaluations at epochs 1–4, then test with the epoch-2 weights.
    assert_eq!(seen.len(), 5);
    assert_ne!(seen[1], seen[3]);
    assert_eq!(seen[4], seen[1]);
    assert_eq!(m.w.as_tensor().to_vec1::<f32>()?[0], seen[1]);
    for e in 1..=4 {
        assert!(dir
            .path()
            .join(format!("run/ctr/epoch-{e}.safetensors"))
            .exists());
    }
    assert!(!dir.path().join("run/ctr/epoch-5.safetensors").exists());
    let best = dir.path().join("run/ctr/best.safetensors");
    assert_eq!(r.best_checkpoint.as_deref(), Some(best.as_path()));
    // best.safetensors holds the epoch-2 weights.
    let t = candle_core::safetensors::load(&best, &Device::Cpu)?;
    assert_eq!(t["ctr.w"].to_vec1::<f32>()?[0], seen[1]);
    let ck = sink
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::Checkpoint { .. }))
        .count();
    assert_eq!(ck, 4 + 2); // four epochs + best at epochs 1 and 2
    Ok(())
}

#[test]
fn load_by_name_reports_loaded_initialised_dropped() -> Result<()> {
    let dev = Device::Cpu;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("best.safetensors");
    let vm_a = VarMap::new();
    CtrModel::new(
        &ctr_plan(
            4,
            Backbone::DcnV2 {
                cross: 1,
                mlp: vec![8],
                dropout: 0.0,
            },
        ),
        &meta(),
        seeded_var_builder(&vm_a, 1, DType::F32, &dev),
    )?;
    let saved = save(&vm_a, &path)?;
    assert!(saved.bytes > 0 && saved.sha256.len() == 64);
    // Same embedding and MLP sizes, no cross network, fresh fc_out.
    let vm_b = VarMap::new();
    CtrModel::new(
        &ctr_plan(
            4,
            Backbone::Dnn {
                mlp: vec![8],
                dropout: 0.0,
            },
        ),
        &meta(),
        seeded_var_builder(&vm_b, 2, DType::F32, &dev),
    )?;
    let r = load_by_name_except(&vm_b, &path, |n| n.starts_with("ctr.fc_out."))?;
    assert!(r.loaded.contains(&"ctr.embedding.weight".to_string()));
    assert!(r.loaded.contains(&"ctr.mlp.0.weight".to_string()));
    assert_eq!(
        r.initialised,
        vec![
            "ctr.fc_out.bias".to_string(),
            "ctr.fc_out.weight".to_string()
        ]
    );
    assert!(r.dropped.contains(&"ctr.cross.0.weight".to_string()));
    assert!(r.dropped.contains(&"ctr.fc_out.weight".to_string()));
    let get = |vm: &VarMap, n: &str| {
        vm.data().lock().unwrap()[n]
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(
        get(&vm_a, "ctr.embedding.weight"),
        get(&vm_b, "ctr.embedding.weight")
    );
    assert_ne!(
        get(&vm_a, "ctr.fc_out.weight"),
        get(&vm_b, "ctr.fc_out.weight")
    );
    // Shape mismatch is an error naming the tensor.
    let vm_c = VarMap::new();
    CtrModel::new(
        &ctr_plan(
            4,
            Backbone::Dnn {
                mlp: vec![5],
                dropout: 0.0,
            },
        ),
        &meta(),
        seeded_var_builder(&vm_c, 2, DType::F32, &dev),
    )?;
    let err = load_by_name_except(&vm_c, &path, |n| n.starts_with("ctr.fc_out."))
        .unwrap_err()
        .to_string();
    assert!(err.contains("ctr.mlp.0") && err.contains("shape"), "{err}");
    assert!(load_by_name(&vm_c, &dir.path().join("missing.safetensors")).is_err());
    Ok(())
}

/// The default (CTR) evaluation, with Ctrl-C arriving during its first batch.
struct CancelledInEval {
    w: Var,
    cancel: Arc<AtomicBool>,
    predicted: Cell<usize>,
}

impl StageModel for CancelledInEval {
    fn loss(&self, batch: &Batch, _train: bool, _ctx: &StepCtx) -> Result<Tensor> {
        Ok(((self.w.as_tensor() * batch.rows as f64)?.sqr()?.sum_all()? * 0.001)?)
    }
    fn predict_logits(&self, batch: &Batch) -> Result<Tensor> {
        self.predicted.set(self.predicted.get() + 1);
        self.cancel.store(true, Ordering::SeqCst);
        Ok(batch.labels.zeros_like()?)
    }
}

#[test]
fn cancel_during_evaluation_stops_after_the_batch_and_keeps_the_epoch() -> Result<()> {
    let s = splits(8, 400)?;
    let dir = tempfile::tempdir()?;
    let (scripted, vm) = scripted(None, vec![])?;
    let cancel = Arc::new(AtomicBool::new(false));
    let m = CancelledInEval {
        w: scripted.w,
        cancel: cancel.clone(),
        predicted: Cell::new(0),
    };
    let tp = TrainPlan {
        eval_batch: 10,
        ..train_plan(3, 100, 0.1)
    };
    let sp = StageSpec {
        checkpoint_dir: Some(dir.path().join("run/ctr")),
        cancel: Some(cancel),
        ..spec("cut", tp, 1)
    };
    let sink = Collect::default();
    let data = StageData {
        train: &s.train,
        valid: &s.valid,
        test: Some(&s.test),
    };
    let err = train_stage(&m, &vm, data, &sp, &sink).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("stage cut: interrupted while evaluating epoch 1"),
        "{msg}"
    );
    // 100 validation rows in batches of 10: the pass stopped after its first.
    assert_eq!(m.predicted.get(), 1);
    let ev = sink.0.lock().unwrap().clone();
    assert!(!ev.iter().any(|e| matches!(e, Event::Eval { .. })));
    assert!(!ev.iter().any(|e| matches!(e, Event::Step { epoch: 2, .. })));
    // The epoch's training survives the interruption: checkpointed (and
    // recorded) before validation started; no best yet.
    assert!(dir.path().join("run/ctr/epoch-1.safetensors").is_file());
    assert!(!dir.path().join("run/ctr/best.safetensors").exists());
    let ck: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Checkpoint { epoch, path, .. } => Some((*epoch, path.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(ck.len(), 1, "{ck:?}");
    assert_eq!(ck[0].0, Some(1));
    assert!(ck[0].1.ends_with("epoch-1.safetensors"));
    Ok(())
}
