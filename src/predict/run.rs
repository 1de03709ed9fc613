//! Finding what a recorded run trained: its plan, the stage to score with,
//! that stage's best checkpoint and the run's vocabularies, all from the
//! run database, with errors that say what to do.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::data::vocab::{Vocabularies, VOCAB_FILE};
use crate::error::invalid;
use crate::plan::{ExperimentPlan, StagePlan};
use crate::store::{Artifact, ResumeInfo, Store};
use crate::train::predict::predicts_clicks;
use crate::train::runner::{stage_kind_name, RUN_FILES_STAGE};

const BEST: &str = "best.safetensors";

/// A stage of a recorded run, ready to be loaded for scoring.
#[derive(Debug, Clone)]
pub struct TrainedRun {
    pub run_id: i64,
    /// The run's plan as recorded (PLM, template, fields, stages).
    pub plan: ExperimentPlan,
    pub stage: StagePlan,
    /// The epoch whose weights `checkpoint` holds (the best on validation).
    pub epoch: Option<i64>,
    pub checkpoint: PathBuf,
    pub vocabularies: Vocabularies,
    /// The stage's recorded test evaluation (AUC, LogLoss), when it has one.
    pub test_auc: Option<f64>,
    pub test_logloss: Option<f64>,
    /// Things worth telling the user (an unfinished stage).
    pub notes: Vec<String>,
}

fn file_name(a: &Artifact) -> &str {
    Path::new(&a.path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("")
}

/// A recorded path as it exists now: as recorded (relative to the working
/// directory of the run), else relative to the database's folder.
fn locate(recorded: &str, store: &Store) -> Option<PathBuf> {
    let p = PathBuf::from(recorded);
    if p.is_file() {
        return Some(p);
    }
    if p.is_relative() {
        // Beside a SQLite database; a PostgreSQL store has no folder.
        let beside = store.target().sqlite_path()?.parent()?.join(&p);
        if beside.is_file() {
            return Some(beside);
        }
    }
    None
}

/// The file of `a`, checked against the hash the run recorded.
fn verified(a: &Artifact, store: &Store, run_id: i64, what: &str) -> Result<PathBuf> {
    let path = locate(&a.path, store).ok_or_else(|| {
        invalid(format!(
            "run {run_id}: {what} {} does not exist (paths are relative to the directory the run was made in; \
             run predict from there or next to the database)",
            a.path
        ))
    })?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    if sha != a.sha256 {
        return Err(invalid(format!(
            "run {run_id}: {what} {} changed after the run recorded it (sha256 {} now, {} recorded)",
            path.display(),
            &sha[..12],
            a.sha256.get(..12).unwrap_or(&a.sha256)
        )));
    }
    Ok(path)
}

impl TrainedRun {
    /// Stage `stage` of run `run_id` (default: the last stage that predicts
    /// clicks and has a checkpoint), with its best weights and the run's
    /// vocabularies.
    pub fn open(store: &Store, run_id: i64, stage: Option<&str>) -> Result<Self> {
        let info = store.resume_info(run_id)?;
        let plan = crate::plan::from_yaml(&info.plan_yaml)
            .with_context(|| format!("run {run_id}: reading its recorded plan"))?;
        let best_of = |name: &str| {
            info.checkpoints
                .iter()
                .rev()
                .find(|a| a.stage == name && file_name(a) == BEST)
        };
        let status = |name: &str| {
            info.stages
                .iter()
                .find(|s| s.stage == name)
                .map_or("not started", |s| s.status.as_str())
        };
        let chosen: &StagePlan = match stage {
            Some(name) => {
                let st = plan.stages.iter().find(|s| s.name == name).ok_or_else(|| {
                    invalid(format!(
                        "run {run_id} has no stage `{name}`; its stages are {}",
                        plan.stages
                            .iter()
                            .map(|s| format!("`{}`", s.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
                if !predicts_clicks(&st.kind) {
                    return Err(invalid(format!(
                        "stage `{name}` of run {run_id} is {} pretraining: it predicts masked tokens, not clicks; \
                         score with a joint, ctr_only or plm_only stage",
                        stage_kind_name(&st.kind)
                    )));
                }
                if best_of(name).is_none() {
                    return Err(invalid(format!(
                        "stage `{name}` of run {run_id} has no checkpoint (status {}: no epoch finished); {}",
                        status(name),
                        with_checkpoints(&plan, &info)
                    )));
                }
                st
            }
            None => plan
                .stages
                .iter()
                .rev()
                .find(|s| predicts_clicks(&s.kind) && best_of(&s.name).is_some())
                .ok_or_else(|| {
                    invalid(format!(
                        "run {run_id} ({}, {}) has no click-predicting stage with a checkpoint; stages: {}",
                        info.run.name,
                        info.run.status,
                        plan.stages
                            .iter()
                            .map(|s| format!(
                                "`{}` ({}, {})",
                                s.name,
                                stage_kind_name(&s.kind),
                                status(&s.name)
                            ))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
        };
        let best = best_of(&chosen.name).expect("checked above");
        let checkpoint = verified(best, store, run_id, "checkpoint")?;

        let vocab = info
            .checkpoints
            .iter()
            .rev()
            .find(|a| a.stage == RUN_FILES_STAGE && file_name(a) == VOCAB_FILE)
            .ok_or_else(|| {
                invalid(format!(
                    "run {run_id} has no stored vocabularies: it was recorded by a clickprompt ({}) from before \
                     runs saved them, and scoring must encode rows exactly as the run did. Run the experiment \
                     again with this version (`clickprompt run {} --experiment {}`) and score with the new run",
                    info.run.crate_version,
                    store_source(store, run_id),
                    plan.name
                ))
            })?;
        let vocab_path = verified(vocab, store, run_id, "vocabularies file")?;
        let vocabularies = Vocabularies::load(&vocab_path)?;

        let mut notes = Vec::new();
        let st = status(&chosen.name);
        if st != "FINISHED" {
            notes.push(format!(
                "stage `{}` did not finish ({st}): scoring with its best epoch so far",
                chosen.name
            ));
        }
        let test = info
            .evaluations
            .iter()
            .rev()
            .find(|e| e.stage == chosen.name && e.split == "test");
        Ok(Self {
            run_id,
            stage: chosen.clone(),
            epoch: best.epoch,
            checkpoint,
            vocabularies,
            test_auc: test.and_then(|e| e.auc),
            test_logloss: test.and_then(|e| e.logloss),
            notes,
            plan,
        })
    }
}

/// "stages with checkpoints: `a`, `b`" (or that there are none).
fn with_checkpoints(plan: &ExperimentPlan, info: &ResumeInfo) -> String {
    let names: Vec<String> = plan
        .stages
        .iter()
        .filter(|s| predicts_clicks(&s.kind))
        .filter(|s| {
            info.checkpoints
                .iter()
                .any(|a| a.stage == s.name && file_name(a) == BEST)
        })
        .map(|s| format!("`{}`", s.name))
        .collect();
    if names.is_empty() {
        "no stage of this run has one".into()
    } else {
        format!("stages with checkpoints: {}", names.join(", "))
    }
}

/// The experiment file a run came from, for the "run it again" hint.
fn store_source(store: &Store, run_id: i64) -> String {
    store
        .run_detail(run_id)
        .map(|d| d.source_path)
        .unwrap_or_else(|_| "FILE".into())
}
