//! What `run --resume` continues from, rebuilt from the run's record.
//!
//! Finished stages keep their recorded summary. The stage that stopped
//! continues from its newest `epoch-N` checkpoint. The trainer writes that
//! checkpoint right after the epoch's training, then (when the epoch
//! improved) `best.safetensors`, and only then records the validation
//! result; so an epoch checkpoint without a validation result is an epoch
//! interrupted during its validation pass: it is evaluated, not retrained.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::plan::ExperimentPlan;
use crate::store::{Artifact, ResumeInfo, StageInfo};
use crate::train::runner::{RunResume, StageSummary, RUN_FILES_STAGE};
use crate::train::trainer::StageResume;

const BEST: &str = "best.safetensors";

/// Finished stages (summaries rebuilt from the database) and the stages that
/// stopped, plus the checkpoint root the run wrote to, when it wrote any.
pub fn resume_state(info: &ResumeInfo, plan: &ExperimentPlan) -> (RunResume, Option<PathBuf>) {
    let mut finished = HashMap::new();
    let mut partial = HashMap::new();
    for st in &info.stages {
        if st.status == "FINISHED" {
            finished.insert(st.stage.clone(), finished_summary(info, st));
        } else if let Some(r) = stage_resume(info, &st.stage) {
            partial.insert(st.stage.clone(), r);
        }
    }
    // <root>/<run name>/<stage>/<file>; run-level files (the vocabularies)
    // sit one level up: <root>/<run name>/<file>.
    let depth = |a: &Artifact| if a.stage == RUN_FILES_STAGE { 2 } else { 3 };
    let first = info.checkpoints.first();
    let root = first
        .and_then(|a| {
            Path::new(&a.path)
                .ancestors()
                .nth(depth(a))
                .map(Path::to_path_buf)
        })
        .filter(|_| first.is_some_and(|a| a.path.contains(&plan.name)));
    (RunResume { finished, partial }, root)
}

fn finished_summary(info: &ResumeInfo, st: &StageInfo) -> StageSummary {
    let evals = |split: &str, epoch: Option<i64>| {
        info.evaluations.iter().rfind(|e| {
            e.stage == st.stage && e.split == split && epoch.is_none_or(|ep| e.epoch == ep)
        })
    };
    let valid = evals("valid", st.best_epoch);
    let test = evals("test", None);
    let stage_ckpts = || {
        info.checkpoints
            .iter()
            .rev()
            .filter(|a| a.stage == st.stage)
    };
    StageSummary {
        stage: st.stage.clone(),
        kind: st.kind.clone(),
        best_epoch: st.best_epoch.map(|e| e as usize),
        epochs_run: info
            .evaluations
            .iter()
            .filter(|e| e.stage == st.stage && e.split == "valid")
            .map(|e| e.epoch as usize)
            .max()
            .unwrap_or(0),
        valid_auc: valid.and_then(|e| e.auc),
        valid_logloss: valid.and_then(|e| e.logloss),
        test_auc: test.and_then(|e| e.auc),
        test_logloss: test.and_then(|e| e.logloss),
        metrics: valid
            .map(|e| {
                e.metrics
                    .iter()
                    .filter_map(|(k, v)| v.map(|v| (k.clone(), v)))
                    .collect()
            })
            .unwrap_or_default(),
        seconds: st.seconds.unwrap_or(0.0),
        train_samples_per_s: st.train_samples_per_s.unwrap_or(0.0),
        infer_samples_per_s: st.infer_samples_per_s,
        // The epoch checkpoint of a last epoch that did not improve comes
        // after the best one.
        best_checkpoint: stage_ckpts()
            .find(|a| is_best(a))
            .or_else(|| stage_ckpts().next())
            .map(|a| PathBuf::from(&a.path)),
    }
}

/// Where `stage` stopped, or None when it has no usable epoch checkpoint
/// (it then starts afresh).
fn stage_resume(info: &ResumeInfo, stage: &str) -> Option<StageResume> {
    let evaluated = |epoch: i64| {
        info.evaluations
            .iter()
            .any(|e| e.stage == stage && e.split == "valid" && e.epoch == epoch)
    };
    let (done, last) = info
        .checkpoints
        .iter()
        .filter(|a| a.stage == stage)
        .filter_map(|a| Some((epoch_file(a)?, a)))
        .max_by_key(|(e, _)| *e)?;
    let last = PathBuf::from(&last.path);
    if done < 1 || !last.is_file() {
        return None;
    }
    let unevaluated = !evaluated(done);
    // A best record of the unevaluated epoch was written just before the
    // interruption; that epoch is judged again, so the best is the epoch before.
    let best_epoch = info
        .checkpoints
        .iter()
        .rev()
        .filter(|a| a.stage == stage && is_best(a))
        .filter_map(|a| a.epoch)
        .find(|&e| e < done || !unevaluated);
    let best = best_epoch.and_then(|k| best_weights(info, stage, k).map(|p| (k as usize, p)));
    Some(StageResume {
        done_epochs: done as usize,
        last_checkpoint: last,
        unevaluated,
        best,
    })
}

/// A file with epoch `k`'s weights: its `epoch-k` checkpoint, else
/// `best.safetensors` when no later epoch overwrote it.
fn best_weights(info: &ResumeInfo, stage: &str, k: i64) -> Option<PathBuf> {
    let mine = info.checkpoints.iter().filter(|a| a.stage == stage);
    let epoch_k = mine
        .clone()
        .rev()
        .find(|a| epoch_file(a) == Some(k))
        .map(|a| PathBuf::from(&a.path))
        .filter(|p| p.is_file());
    epoch_k.or_else(|| {
        mine.rev()
            .find(|a| is_best(a))
            .filter(|a| a.epoch == Some(k))
            .map(|a| PathBuf::from(&a.path))
            .filter(|p| p.is_file())
    })
}

/// N for a recorded `epoch-N.safetensors`.
fn epoch_file(a: &Artifact) -> Option<i64> {
    let e = a.epoch?;
    let name = Path::new(&a.path).file_name()?.to_str()?;
    (name == format!("epoch-{e}.safetensors")).then_some(e)
}

fn is_best(a: &Artifact) -> bool {
    Path::new(&a.path).file_name().is_some_and(|n| n == BEST)
}

/// Checks every checkpoint the resumed run will load against what was
/// recorded when it was written (size and SHA-256): a file cut short (a full
/// disk, a copy stopped half-way) or overwritten since must stop the resume
/// with its name, not load garbage or fail deep inside a stage. Finished
/// stages' files are checked when present; a missing one is reported by the
/// stage that needs it.
pub fn verify_checkpoints(info: &ResumeInfo, resume: &RunResume) -> anyhow::Result<()> {
    let mut stages: Vec<&String> = resume.partial.keys().collect();
    stages.sort();
    for stage in stages {
        let r = &resume.partial[stage];
        verify_file(info, &r.last_checkpoint)?;
        if let Some((_, best)) = &r.best {
            verify_file(info, best)?;
        }
    }
    let mut finished: Vec<&StageSummary> = resume.finished.values().collect();
    finished.sort_by(|a, b| a.stage.cmp(&b.stage));
    for s in finished {
        if let Some(p) = s.best_checkpoint.as_deref().filter(|p| p.exists()) {
            verify_file(info, p)?;
        }
    }
    Ok(())
}

fn verify_file(info: &ResumeInfo, path: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    use sha2::{Digest, Sha256};
    let Some(rec) = info
        .checkpoints
        .iter()
        .rfind(|a| Path::new(&a.path) == path)
    else {
        return Ok(());
    };
    let advice = "the run cannot continue from it; restore the file or start the experiment again";
    let bytes = std::fs::read(path)
        .with_context(|| format!("checkpoint {}: cannot be read; {advice}", path.display()))?;
    if i64::try_from(bytes.len()).ok() != Some(rec.bytes) {
        anyhow::bail!(
            "checkpoint {} is damaged: {} bytes on disk, {} when it was written (truncated?); {advice}",
            path.display(),
            bytes.len(),
            rec.bytes
        );
    }
    if hex::encode(Sha256::digest(&bytes)) != rec.sha256 {
        anyhow::bail!(
            "checkpoint {} is damaged: its contents differ from what was written (SHA-256 mismatch); {advice}",
            path.display()
        );
    }
    Ok(())
}
