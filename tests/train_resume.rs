//! `run --resume` after an interruption during an evaluation pass, through
//! the run database: the trainer records into a real store, is interrupted,
//! the resume state is rebuilt from the record (as `run --resume` does) and
//! the stage continues. The outcome must match an uninterrupted run, and the
//! epoch that was being evaluated must not be trained again.

mod ctr_support;
mod store_support;

use anyhow::Result;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use clickprompt::cli::resume::resume_state;
use clickprompt::data::{Batch, DeviceSplit};
use clickprompt::model::vars::seeded_var_builder;
use clickprompt::plan::{MetricKind, TrainPlan};
use clickprompt::store::{RunStatus, Store};
use clickprompt::train::events::{EvalSplit, Event, EventSink};
use clickprompt::train::trainer::{
    train_stage, EvalCtx, Evaluation, StageData, StageModel, StageResult, StageResume, StageSpec,
    StepCtx,
};
use ctr_support::{planted, train_plan};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const STAGE: &str = "ctr_only";

/// When the first attempt stops.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cut {
    /// Ctrl-C during the validation pass of this epoch (after its first batch).
    Valid(usize),
    /// Ctrl-C during the test pass.
    Test,
    /// Killed right after this epoch's `best.safetensors` was recorded,
    /// before its validation result was.
    AfterBest(usize),
}

/// One weight, a fixed loss, validation scores from a script; records the
/// epochs it trained and the weight at each validation pass.
struct Scripted {
    w: Var,
    scores: Vec<f64>,
    cut: Option<Cut>,
    cancel: Arc<AtomicBool>,
    trained: RefCell<BTreeSet<usize>>,
    /// (epoch, weight) at the start of each validation pass.
    valid: RefCell<Vec<(usize, f32)>>,
}

impl StageModel for Scripted {
    fn loss(&self, batch: &Batch, _train: bool, ctx: &StepCtx) -> Result<Tensor> {
        self.trained.borrow_mut().insert(ctx.epoch);
        Ok(((self.w.as_tensor() * batch.rows as f64)?.sqr()?.sum_all()? * 0.001)?)
    }
    fn predict_logits(&self, batch: &Batch) -> Result<Tensor> {
        Ok(batch.labels.zeros_like()?)
    }
    fn evaluate(&self, split: &DeviceSplit, _eb: usize, ctx: &EvalCtx) -> Result<Evaluation> {
        let w = self.w.as_tensor().to_vec1::<f32>()?[0];
        if ctx.split == EvalSplit::Valid {
            self.valid.borrow_mut().push((ctx.epoch, w));
        }
        let cut_here = match self.cut {
            Some(Cut::Valid(e)) => ctx.split == EvalSplit::Valid && ctx.epoch == e,
            Some(Cut::Test) => ctx.split == EvalSplit::Test,
            _ => false,
        };
        // A pass of three batches; Ctrl-C lands during the first.
        for batch in 0..3 {
            ctx.check_cancel()?;
            if cut_here && batch == 0 {
                self.cancel.store(true, Ordering::SeqCst);
            }
        }
        let score = match ctx.split {
            EvalSplit::Valid => self.scores[ctx.epoch - 1],
            _ => -1.0,
        };
        Ok(Evaluation {
            auc: Some(score),
            logloss: None,
            metrics: vec![],
            score,
            rows: split.rows,
            seconds: 1e-3,
        })
    }
}

/// Forwards to the recorder until `best.safetensors` of `epoch` is recorded,
/// then drops everything and raises the cancel flag: what the database holds
/// when the process is killed between that record and the next.
struct KillAfterBest<'a> {
    inner: &'a dyn EventSink,
    epoch: usize,
    cancel: Arc<AtomicBool>,
    dead: Mutex<bool>,
}

impl EventSink for KillAfterBest<'_> {
    fn emit(&self, event: Event) {
        let mut dead = self.dead.lock().unwrap();
        if *dead {
            return;
        }
        let last = matches!(&event, Event::Checkpoint { epoch: Some(e), path, .. }
            if *e == self.epoch && path.ends_with("best.safetensors"));
        self.inner.emit(event);
        if last {
            *dead = true;
            self.cancel.store(true, Ordering::SeqCst);
        }
    }
}

struct Attempt {
    result: Result<StageResult>,
    trained: BTreeSet<usize>,
    valid: Vec<(usize, f32)>,
}

fn attempt(
    s: &[DeviceSplit; 3],
    tp: &TrainPlan,
    scores: &[f64],
    cut: Option<Cut>,
    resume: Option<StageResume>,
    dir: &Path,
    sink: &dyn EventSink,
) -> Result<Attempt> {
    let vm = VarMap::new();
    seeded_var_builder(&vm, 0, DType::F32, &Device::Cpu).get_with_hints(
        1,
        "ctr.w",
        candle_nn::Init::Const(3.0),
    )?;
    let w = vm.data().lock().unwrap()["ctr.w"].clone();
    let cancel = Arc::new(AtomicBool::new(false));
    let model = Scripted {
        w,
        scores: scores.to_vec(),
        cut,
        cancel: cancel.clone(),
        trained: RefCell::default(),
        valid: RefCell::default(),
    };
    let spec = StageSpec {
        name: STAGE.into(),
        kind: "ctr_only".into(),
        train: tp.clone(),
        seed: 5,
        checkpoint_dir: Some(dir.join(STAGE)),
        cancel: Some(cancel.clone()),
        resume,
        select: MetricKind::Auc,
    };
    let data = StageData {
        train: &s[0],
        valid: &s[1],
        test: Some(&s[2]),
    };
    let result = match cut {
        Some(Cut::AfterBest(epoch)) => {
            let kill = KillAfterBest {
                inner: sink,
                epoch,
                cancel,
                dead: Mutex::new(false),
            };
            train_stage(&model, &vm, data, &spec, &kill)
        }
        _ => train_stage(&model, &vm, data, &spec, sink),
    };
    Ok(Attempt {
        result,
        trained: model.trained.into_inner(),
        valid: model.valid.into_inner(),
    })
}

/// What the database says about a run's stage.
#[derive(Debug, PartialEq)]
struct Recorded {
    valid_epochs: Vec<i64>,
    test_epochs: Vec<i64>,
    epoch_checkpoints: Vec<i64>,
    /// Epochs of the `best.safetensors` records, repeats of one epoch merged.
    best_checkpoints: Vec<i64>,
    best_epoch: Option<i64>,
}

fn recorded(store: &Store, id: i64) -> Result<Recorded> {
    let evals = store.evaluations(id)?;
    let epochs = |split: &str| -> Vec<i64> {
        evals
            .iter()
            .filter(|e| e.split == split)
            .map(|e| e.epoch)
            .collect()
    };
    let arts = store.artifacts(id)?;
    let mut epoch_checkpoints: Vec<i64> = arts
        .iter()
        .filter(|a| !a.path.ends_with("best.safetensors"))
        .filter_map(|a| a.epoch)
        .collect();
    epoch_checkpoints.sort();
    let mut best_checkpoints: Vec<i64> = arts
        .iter()
        .filter(|a| a.path.ends_with("best.safetensors"))
        .filter_map(|a| a.epoch)
        .collect();
    best_checkpoints.dedup();
    let stage = store.stages(id)?.into_iter().find(|s| s.stage == STAGE);
    Ok(Recorded {
        valid_epochs: epochs("valid"),
        test_epochs: epochs("test"),
        epoch_checkpoints,
        best_checkpoints,
        best_epoch: stage.and_then(|s| s.best_epoch),
    })
}

/// Runs the stage uninterrupted, then interrupted at `cut` and resumed, and
/// compares.
fn check(scores: &[f64], epochs: usize, patience: Option<usize>, cut: Cut) -> Result<()> {
    let ds = planted(3, 300, 60, 60);
    let dev = Device::Cpu;
    let s = [
        DeviceSplit::new(&ds.train, &ds.meta, &dev)?,
        DeviceSplit::new(&ds.valid, &ds.meta, &dev)?,
        DeviceSplit::new(&ds.test, &ds.meta, &dev)?,
    ];
    let tp = TrainPlan {
        patience,
        ..train_plan(epochs, 100, 0.1)
    };
    let tmp = tempfile::tempdir()?;
    let store = Store::open(tmp.path().join("runs.db"))?;
    let plan = store_support::plan("resume", store_support::dnn(), 0);

    let rec = store_support::start(&store, &plan);
    let whole_id = rec.run_id();
    let whole = attempt(&s, &tp, scores, None, None, &tmp.path().join("whole"), &rec)?;
    rec.finish(RunStatus::Finished)?;
    let whole_result = whole.result?;

    let dir = tmp.path().join("cut");
    let rec = store_support::start(&store, &plan);
    let id = rec.run_id();
    let first = attempt(&s, &tp, scores, Some(cut), None, &dir, &rec)?;
    let err = format!("{:#}", first.result.unwrap_err());
    assert!(err.contains("interrupted"), "{cut:?}: {err}");
    rec.finish(RunStatus::Interrupted)?;

    let (rec, info) = store.reopen_run(id)?;
    let (resume, _) = resume_state(&info, &plan);
    let r = resume.partial.get(STAGE).cloned();
    let r = r.unwrap_or_else(|| panic!("{cut:?}: no resume state for the stage"));
    let last_trained = *first.trained.last().unwrap();
    assert_eq!(r.done_epochs, last_trained, "{cut:?}: {r:?}");
    assert_eq!(r.unevaluated, cut != Cut::Test, "{cut:?}: {r:?}");
    let second = attempt(&s, &tp, scores, None, Some(r), &dir, &rec)?;
    rec.finish(RunStatus::Finished)?;
    let result = second.result?;

    assert_eq!(result.best_epoch, whole_result.best_epoch, "{cut:?}");
    assert_eq!(result.epochs_run, whole_result.epochs_run, "{cut:?}");
    assert_eq!(result.stopped_early, whole_result.stopped_early, "{cut:?}");
    assert_eq!(result.best_valid, whole_result.best_valid, "{cut:?}");
    // No epoch trained twice, none skipped.
    assert!(
        first.trained.is_disjoint(&second.trained),
        "{cut:?}: retrained {:?}",
        first.trained.intersection(&second.trained)
    );
    let all: BTreeSet<usize> = first.trained.union(&second.trained).copied().collect();
    assert_eq!(all, whole.trained, "{cut:?}");
    if cut != Cut::Test {
        // The interrupted epoch is judged on the weights it was saved with.
        let cut_pass = *first.valid.last().unwrap();
        assert_eq!(cut_pass.0, last_trained);
        assert!(
            second.valid.contains(&cut_pass),
            "{cut:?}: {:?}",
            second.valid
        );
    }
    // Every epoch validated once, as in the uninterrupted run.
    let whole_db = recorded(&store, whole_id)?;
    let db = recorded(&store, id)?;
    assert_eq!(db, whole_db, "{cut:?}");
    let expected: Vec<i64> = (1..=whole_result.epochs_run as i64).collect();
    assert_eq!(db.valid_epochs, expected, "{cut:?}");
    // best.safetensors ends up with the best epoch's weights.
    let best = candle_core::safetensors::load(dir.join(STAGE).join("best.safetensors"), &dev)?;
    let best_epoch = result.best_epoch.unwrap();
    let kept = candle_core::safetensors::load(
        dir.join(STAGE)
            .join(format!("epoch-{best_epoch}.safetensors")),
        &dev,
    )?;
    assert_eq!(
        best["ctr.w"].to_vec1::<f32>()?,
        kept["ctr.w"].to_vec1::<f32>()?,
        "{cut:?}"
    );
    Ok(())
}

/// Best at epoch 2, early stop after epoch 4 (patience 2).
const EARLY: [f64; 6] = [0.5, 0.7, 0.6, 0.65, 0.9, 0.9];

#[test]
fn interrupted_in_the_first_validation_pass() -> Result<()> {
    check(&EARLY, 6, Some(2), Cut::Valid(1))
}

#[test]
fn interrupted_validating_an_improving_epoch() -> Result<()> {
    check(&EARLY, 6, Some(2), Cut::Valid(2))
}

#[test]
fn interrupted_validating_the_epoch_that_stops_early() -> Result<()> {
    check(&EARLY, 6, Some(2), Cut::Valid(4))
}

#[test]
fn interrupted_in_the_test_pass_after_an_early_stop() -> Result<()> {
    check(&EARLY, 6, Some(2), Cut::Test)
}

#[test]
fn killed_between_the_best_checkpoint_and_the_validation_record() -> Result<()> {
    check(&EARLY, 6, Some(2), Cut::AfterBest(2))
}

#[test]
fn interrupted_validating_the_last_epoch() -> Result<()> {
    check(&[0.5, 0.6, 0.55, 0.8], 4, None, Cut::Valid(4))
}

#[test]
fn interrupted_validating_an_epoch_that_does_not_improve() -> Result<()> {
    check(&EARLY, 6, Some(2), Cut::Valid(3))
}
