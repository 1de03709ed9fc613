//! The event loop against inputs that end, fail or misbehave: it must return
//! promptly with the reason, and never spin.

mod common;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use clickprompt_tui::event::{run_with_input, Cadence, Exit};
use clickprompt_tui::input::{Input, InputSource};
use clickprompt_tui::*;
use common::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// Plays `script`, waiting out the timeout on each Idle like a terminal.
struct Scripted {
    script: VecDeque<Input>,
    calls: usize,
}

impl Scripted {
    fn new(script: Vec<Input>) -> Scripted {
        Scripted {
            script: script.into(),
            calls: 0,
        }
    }
}

impl InputSource for Scripted {
    fn next(&mut self, timeout: Duration) -> Input {
        self.calls += 1;
        match self.script.pop_front() {
            Some(i) => i,
            None => {
                std::thread::sleep(timeout);
                Input::Idle
            }
        }
    }
}

fn key(c: char) -> Input {
    Input::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn term() -> Terminal<TestBackend> {
    match Terminal::new(TestBackend::new(100, 30)) {
        Ok(t) => t,
        Err(e) => match e {},
    }
}

/// Runs the loop with a 5 s safety stop (on_tick sets quit), so a loop that
/// ignores its input ends as `Exit::Quit` and fails the assertions instead of
/// hanging the test.
fn drive(input: &mut dyn InputSource, app: &mut App) -> (Exit, Duration) {
    let start = Instant::now();
    let mut src = mixed();
    let exit = run_with_input(
        &mut term(),
        input,
        app,
        &mut src,
        Cadence::default(),
        &mut |app: &mut App| {
            if start.elapsed() > Duration::from_secs(5) {
                app.quit = true;
            }
            false
        },
    );
    (exit, start.elapsed())
}

#[test]
fn input_closing_after_help_ends_the_loop_at_once() {
    let mut input = Scripted::new(vec![
        key('?'),
        key('q'),
        Input::Closed("end of input: the terminal hung up".into()),
    ]);
    let mut app = App::default();
    let (exit, took) = drive(&mut input, &mut app);
    assert_eq!(
        exit,
        Exit::TerminalLost("end of input: the terminal hung up".into())
    );
    assert!(!app.help, "q closed the help before the input ended");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(input.calls, 3, "no input was asked for after the end");
}

#[test]
fn a_read_error_ends_the_loop_with_the_error() {
    let why = "reading the terminal: Input/output error (os error 5)";
    let mut input = Scripted::new(vec![key('j'), Input::Closed(why.into())]);
    let mut app = App::default();
    let (exit, took) = drive(&mut input, &mut app);
    assert_eq!(exit, Exit::TerminalLost(why.into()));
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

/// An input that returns Idle at once, every time (what crossterm's poll
/// does on a dead terminal), must not make the loop spin.
struct NeverWaits {
    calls: usize,
}

impl InputSource for NeverWaits {
    fn next(&mut self, _timeout: Duration) -> Input {
        self.calls += 1;
        Input::Idle
    }
}

#[test]
fn an_input_that_never_waits_does_not_spin_the_loop() {
    let mut input = NeverWaits { calls: 0 };
    let mut app = App::default();
    let start = Instant::now();
    let mut src = mixed();
    let exit = run_with_input(
        &mut term(),
        &mut input,
        &mut app,
        &mut src,
        Cadence::default(),
        &mut |app: &mut App| {
            if start.elapsed() >= Duration::from_millis(600) {
                app.quit = true;
            }
            false
        },
    );
    assert_eq!(exit, Exit::Quit);
    // 600 ms at one wait per 100 ms tick is ~6 calls; a spin makes millions.
    assert!(
        input.calls <= 12,
        "{} input calls in {:?}",
        input.calls,
        start.elapsed()
    );
}

#[test]
fn ctrl_c_and_q_are_told_apart() {
    let ctrl_c = Input::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    let (exit, _) = drive(&mut Scripted::new(vec![ctrl_c]), &mut App::default());
    assert_eq!(exit, Exit::Interrupted);
    let (exit, _) = drive(&mut Scripted::new(vec![key('q')]), &mut App::default());
    assert_eq!(exit, Exit::Quit);
}

#[cfg(unix)]
mod tty {
    use std::ffi::CStr;
    use std::io::Write;
    use std::os::fd::{FromRawFd, OwnedFd};

    use clickprompt_tui::input::TtyInput;

    use super::*;

    #[test]
    fn a_pipe_at_end_of_file_closes_the_input() {
        let (reader, mut writer) = std::io::pipe().expect("pipe");
        writer.write_all(b"?q").expect("write");
        drop(writer);
        let mut input = TtyInput::from_fd(OwnedFd::from(reader));
        let mut app = App::default();
        let (exit, took) = drive(&mut input, &mut app);
        assert_eq!(
            exit,
            Exit::TerminalLost("end of input: the terminal hung up".into())
        );
        assert!(!app.help);
        assert!(took < Duration::from_secs(2), "took {took:?}");
    }

    /// A pseudo-terminal pair in raw mode: (master, slave).
    fn pty() -> (OwnedFd, OwnedFd) {
        // SAFETY: plain libc calls on descriptors owned right away; each
        // result is checked.
        unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(m >= 0, "posix_openpt");
            let master = OwnedFd::from_raw_fd(m);
            assert_eq!(libc::grantpt(m), 0);
            assert_eq!(libc::unlockpt(m), 0);
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
            let s = libc::open(
                CStr::from_ptr(name.as_ptr()).as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY,
            );
            assert!(s >= 0, "open slave");
            let slave = OwnedFd::from_raw_fd(s);
            let mut tio: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(s, &mut tio), 0);
            libc::cfmakeraw(&mut tio);
            assert_eq!(libc::tcsetattr(s, libc::TCSANOW, &tio), 0);
            (master, slave)
        }
    }

    #[test]
    fn a_terminal_that_hangs_up_closes_the_input() {
        let (master, slave) = pty();
        let mut m = std::fs::File::from(master);
        m.write_all(b"?q").expect("write to the pty");
        let mut input = TtyInput::from_fd(slave);
        let first = input.next(Duration::from_secs(1));
        assert_eq!(
            first,
            Input::Key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE))
        );
        assert_eq!(
            input.next(Duration::from_secs(1)),
            Input::Key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE))
        );
        // What tmux kill-session or a dropped SSH link does to the pane.
        drop(m);
        let start = Instant::now();
        let mut app = App::default();
        let (exit, _) = drive(&mut input, &mut app);
        match exit {
            Exit::TerminalLost(why) => {
                assert!(
                    why.contains("hung up") || why.contains("Input/output error"),
                    "{why}"
                )
            }
            other => panic!("expected TerminalLost, got {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
