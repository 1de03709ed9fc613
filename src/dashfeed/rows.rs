//! Row → view-type conversions and the little time arithmetic they need.

use chrono::{DateTime, Utc};
use clickprompt_tui::{RunStatus, StageFigures, StageState};

pub fn parse_ts(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Seconds from `start` to `end` (or to `now` while still open).
pub fn seconds_between(start: &str, end: Option<&str>, now: DateTime<Utc>) -> Option<f64> {
    let s = parse_ts(start)?;
    let e = match end {
        Some(e) => parse_ts(e)?,
        None => now,
    };
    let ms = (e - s).num_milliseconds();
    Some((ms.max(0) as f64) / 1000.0)
}

/// The stored status, with a RUNNING run whose process is gone shown as lost
/// (a run killed with -9 never got to record its end).
pub fn run_status(stored: &str, alive: impl FnOnce() -> bool) -> RunStatus {
    match RunStatus::parse(stored) {
        RunStatus::Running if !alive() => RunStatus::Lost,
        s => s,
    }
}

/// A stage's state given its stored status and whether the run is live.
pub fn stage_state(stored: &str, run: RunStatus) -> StageState {
    match stored {
        "FINISHED" => StageState::Finished,
        "RUNNING" if run == RunStatus::Running => StageState::Running,
        _ => StageState::Stopped,
    }
}

/// Whether the process recording a run is still that process. Only this
/// machine's processes (in this pid namespace) can be checked; runs recorded
/// elsewhere are taken at their word.
pub fn process_alive(host: &str, pid: i64, proc_start: Option<&str>) -> bool {
    crate::store::process::liveness(host, pid, proc_start) != crate::store::process::Liveness::Dead
}

/// Folds one valid or test evaluation (rows in stage, then epoch order) into
/// the stage figures: the best validation AUC over epochs, the latest test.
pub fn add_evaluation(
    stages: &mut Vec<StageFigures>,
    stage: String,
    split: &str,
    auc: Option<f64>,
    logloss: Option<f64>,
) {
    let i = match stages.iter().position(|s| s.stage == stage) {
        Some(i) => i,
        None => {
            stages.push(StageFigures {
                stage,
                ..Default::default()
            });
            stages.len() - 1
        }
    };
    let s = &mut stages[i];
    match split {
        "valid" => {
            if let Some(a) = auc {
                s.valid_auc = Some(s.valid_auc.map_or(a, |v| v.max(a)));
            }
        }
        "test" => {
            s.test_auc = auc;
            s.test_logloss = logloss;
        }
        _ => {}
    }
}

/// The stages that have an AUC (PA-MLM stages only have MLM figures).
pub fn with_auc(stages: Vec<StageFigures>) -> Vec<StageFigures> {
    stages
        .into_iter()
        .filter(|s| s.valid_auc.is_some() || s.test_auc.is_some())
        .collect()
}

/// `extra_json` ({"mlm_acc": 0.41, "mlm_loss": null}) as (key, value) pairs;
/// null (a non-finite value) reads as NaN, non-numbers are skipped.
pub fn extras(json: &str) -> Vec<(String, f64)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(json) else {
        return Vec::new();
    };
    map.into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::Null => Some((k, f64::NAN)),
            v => v.as_f64().map(|x| (k, x)),
        })
        .collect()
}

/// The stages a stored plan declares, as (name, kind, epochs), read loosely
/// from the YAML so a plan written by another version still shows what it
/// can; an unreadable plan gives none.
pub fn planned_stages(plan_yaml: &str) -> Vec<(String, String, usize)> {
    let Ok(v) = serde_yaml::from_str::<serde_yaml::Value>(plan_yaml) else {
        return Vec::new();
    };
    let Some(stages) = v.get("stages").and_then(|s| s.as_sequence()) else {
        return Vec::new();
    };
    stages
        .iter()
        .filter_map(|s| {
            let name = s.get("name")?.as_str()?.to_string();
            let kind = s.get("kind").and_then(|k| {
                k.as_str()
                    .or_else(|| k.get("kind").and_then(|k| k.as_str()))
                    .map(str::to_string)
            });
            let epochs = s
                .get("train")
                .and_then(|t| t.get("epochs"))
                .and_then(|e| e.as_u64())
                .and_then(|e| usize::try_from(e).ok())
                .unwrap_or(0);
            Some((name, kind.unwrap_or_default(), epochs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_stages_from_plan_yaml() {
        let yaml = "name: e\nstages:\n- name: pretrain\n  kind:\n    kind: pa_mlm\n    mask: 0.15\n  train:\n    epochs: 1\n- name: joint\n  kind:\n    kind: joint\n  train:\n    epochs: 2\n";
        assert_eq!(
            planned_stages(yaml),
            vec![
                ("pretrain".to_string(), "pa_mlm".to_string(), 1),
                ("joint".to_string(), "joint".to_string(), 2)
            ]
        );
        assert!(planned_stages("{}").is_empty());
        let x = extras(r#"{"mlm_acc": 0.5, "mlm_loss": null, "note": "x"}"#);
        assert_eq!(x.len(), 2);
        assert_eq!(x[0], ("mlm_acc".to_string(), 0.5));
        assert!(x[1].0 == "mlm_loss" && x[1].1.is_nan());
        assert!(extras("not json").is_empty());
        assert!(planned_stages(": not yaml [").is_empty());
    }

    #[test]
    fn durations_and_states() {
        let now = parse_ts("2026-11-29T19:00:10.500Z").unwrap();
        assert_eq!(
            seconds_between("2026-11-29T19:00:00.000Z", None, now),
            Some(10.5)
        );
        assert_eq!(
            seconds_between(
                "2026-11-29T19:00:00Z",
                Some("2026-11-29T19:01:30.250Z"),
                now
            ),
            Some(90.25)
        );
        assert_eq!(seconds_between("yesterday", None, now), None);
        assert_eq!(run_status("RUNNING", || false), RunStatus::Lost);
        assert_eq!(run_status("RUNNING", || true), RunStatus::Running);
        assert_eq!(run_status("FAILED", || false), RunStatus::Failed);
        assert_eq!(
            stage_state("RUNNING", RunStatus::Failed),
            StageState::Stopped
        );
        assert_eq!(
            stage_state("RUNNING", RunStatus::Running),
            StageState::Running
        );
        assert_eq!(
            stage_state("FINISHED", RunStatus::Failed),
            StageState::Finished
        );
        let here = crate::store::process::hostname();
        assert!(process_alive("some-other-host", 1, None));
        let me = std::process::id();
        let token = crate::store::process::start_token(me);
        assert!(process_alive(&here, me as i64, token.as_deref()));
        assert!(!process_alive(&here, -5, None));
        // Our pid with another incarnation's token: a reused pid, not our run.
        if token.is_some() {
            assert!(!process_alive(&here, me as i64, Some("other-boot:1")));
        }
    }
}
