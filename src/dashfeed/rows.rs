//! Row → view-type conversions and the little time arithmetic they need.

use chrono::{DateTime, Utc};
use clickprompt_tui::{RunStatus, StageState};

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

/// Whether `pid` on `host` is still running. Only this machine's processes can
/// be checked; runs recorded elsewhere are taken at their word.
pub fn process_alive(host: &str, pid: i64) -> bool {
    if host != this_host() {
        return true;
    }
    #[cfg(unix)]
    {
        let Ok(raw) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if raw <= 0 {
            return false;
        }
        // SAFETY: signal 0 sends nothing; it only reports whether the pid exists.
        let rc = unsafe { libc::kill(raw, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

fn this_host() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; we stop at the first NUL
        // or at the buffer end.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
            if !name.is_empty() {
                return name;
            }
        }
    }
    "unknown".into()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(process_alive("some-other-host", 1));
        assert!(process_alive(&this_host(), std::process::id() as i64));
        assert!(!process_alive(&this_host(), -5));
    }
}
