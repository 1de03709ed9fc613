//! Who is writing a run: host name, pid and a start token, so a later process
//! can tell a live run from one whose process was killed (kill -9, OOM, power).

/// This machine's host name ("unknown" if the OS will not say).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success
    // (and we stop at the buffer end if it did not).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    if name.is_empty() {
        "unknown".into()
    } else {
        name
    }
}

/// A token that identifies one process incarnation: the boot id plus the
/// process start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
/// A pid reused by a later process, or after a reboot, gets a different token.
/// `None` where `/proc` is unavailable.
pub fn start_token(pid: u32) -> Option<String> {
    token_of(&proc_stat(pid)?.1)
}

/// `<boot id>:<ticks>`.
fn token_of(ticks: &str) -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(format!("{}:{}", boot.trim(), ticks))
}

/// State letter (field 3) and start time in ticks (field 22) of
/// `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or ')';
    // the fields after the last ')' are plain numbers.
    let mut after = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = after.next()?.chars().next()?;
    // Start time is field 22: 18 fields after the state.
    let ticks = after.nth(18)?;
    Some((state, ticks.to_string()))
}

/// The pid namespace this process lives in (the inode of `/proc/self/ns/pid`).
/// Containers started with the host's network (and so its host name) still
/// have pid namespaces of their own: a pid is only meaningful inside one.
pub fn pid_namespace() -> Option<String> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    // "pid:[4026531836]"
    let text = link.to_string_lossy();
    let inode = text.strip_prefix("pid:[")?.strip_suffix(']')?;
    inode
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| inode.to_string())
}

/// The identity recorded with a run for the process writing it:
/// `<boot id>:<start ticks>:<pid namespace>` (the last part where known).
pub fn own_token() -> Option<String> {
    let token = start_token(std::process::id())?;
    Some(match pid_namespace() {
        Some(ns) => format!("{token}:{ns}"),
        None => token,
    })
}

/// What this process can tell about the process that recorded a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Same host, and the very process (pid and start token) still runs.
    Alive,
    /// Same host and pid namespace, and that process is gone (or its pid
    /// now names another process).
    Dead,
    /// Recorded on another host, or in another pid namespace of this one:
    /// its pids mean nothing here.
    Unknown,
}

/// Liveness of the process `pid` that recorded a run on `host` with identity
/// `token` (see [`own_token`]; older runs have `<boot id>:<ticks>` only).
pub fn liveness(host: &str, pid: i64, token: Option<&str>) -> Liveness {
    if host != hostname() {
        return Liveness::Unknown;
    }
    let (start, ns) = match token {
        Some(t) => {
            let mut parts = t.splitn(3, ':');
            let boot = parts.next().unwrap_or_default();
            let ticks = parts.next();
            let ns = parts.next();
            (ticks.map(|ticks| format!("{boot}:{ticks}")), ns)
        }
        None => (None, None),
    };
    if let (Some(recorded), Some(ours)) = (ns, pid_namespace()) {
        if recorded != ours {
            return Liveness::Unknown;
        }
    }
    let token = start.as_deref().or(token);
    if is_alive(pid, token) {
        Liveness::Alive
    } else {
        Liveness::Dead
    }
}

/// Whether process `pid` on this host is still the process that wrote
/// `token` (`<boot id>:<start ticks>`, when a token was recorded).
pub fn is_alive(pid: i64, token: Option<&str>) -> bool {
    let Ok(pid) = u32::try_from(pid) else {
        return false;
    };
    if pid == 0 {
        return false;
    }
    let stat = proc_stat(pid);
    // A process that has exited but not been reaped (zombie, or being torn
    // down) still has a pid and answers `kill(pid, 0)`, yet will never write
    // again. Its parent may be slow to reap it: a container's PID 1 often is.
    if let Some(('Z' | 'X' | 'x', _)) = stat {
        return false;
    }
    if let (Some(recorded), true) = (token, std::path::Path::new("/proc/self/stat").exists()) {
        // With /proc we can compare incarnations; a missing process has no token.
        return stat.and_then(|(_, ticks)| token_of(&ticks)).as_deref() == Some(recorded);
    }
    // Without /proc (or without a recorded token): signal 0 checks existence only.
    let Ok(raw) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 sends nothing; it only reports whether the pid exists.
    let rc = unsafe { libc::kill(raw, 0) };
    if rc == 0 {
        return true;
    }
    // EPERM: it exists but belongs to someone else.
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_token_is_stable() {
        let pid = std::process::id();
        let token = start_token(pid);
        assert!(token.is_some(), "this platform has /proc");
        assert_eq!(token, start_token(pid));
        assert!(is_alive(pid as i64, token.as_deref()));
        assert!(is_alive(pid as i64, None));
    }

    #[test]
    fn an_exited_process_not_yet_reaped_is_dead() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawning `true`");
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !matches!(proc_stat(pid), Some(('Z', _))) {
            assert!(
                std::time::Instant::now() < deadline,
                "`true` did not exit within 10 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // Still a pid until reaped: kill(pid, 0) succeeds on a zombie.
        // SAFETY: signal 0 sends nothing.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, 0) }, 0);
        assert!(!is_alive(pid as i64, None));
        let token = start_token(pid);
        assert!(!is_alive(pid as i64, token.as_deref()));
        child.wait().expect("reaping the child");
        assert!(!is_alive(pid as i64, None));
    }

    #[test]
    fn reused_pid_with_other_token_is_dead() {
        let pid = std::process::id() as i64;
        assert!(!is_alive(pid, Some("other-boot:12345")));
    }

    #[test]
    fn liveness_by_host_namespace_and_token() {
        let here = hostname();
        let me = std::process::id() as i64;
        let own = own_token();
        assert!(own.is_some(), "this platform has /proc");
        assert_eq!(liveness(&here, me, own.as_deref()), Liveness::Alive);
        // Old two-part tokens still compare.
        let old = start_token(std::process::id());
        assert_eq!(liveness(&here, me, old.as_deref()), Liveness::Alive);
        // Another host: never judged from here, even with our own pid and token.
        assert_eq!(
            liveness("some-other-host", me, own.as_deref()),
            Liveness::Unknown
        );
        // Same host name, another pid namespace (a container on the host network).
        let old = old.unwrap_or_default();
        assert_eq!(
            liveness(&here, me, Some(&format!("{old}:1"))),
            Liveness::Unknown
        );
        // Our namespace, a dead incarnation of the pid.
        let ns = pid_namespace().unwrap_or_default();
        assert_eq!(
            liveness(&here, me, Some(&format!("other-boot:1:{ns}"))),
            Liveness::Dead
        );
    }

    #[test]
    fn exited_child_is_dead() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("wait");
        // Reaped: the pid no longer names a process (reuse within this test is vanishingly rare).
        assert!(!is_alive(pid as i64, None));
        assert!(!is_alive(-1, None));
        assert!(!is_alive(0, None));
    }
}
