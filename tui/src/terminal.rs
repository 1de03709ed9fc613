//! Terminal setup and restore. The terminal is restored on every way out:
//! normal return (also via `Guard`'s drop), a panic on any thread (the hook
//! restores before the message prints), and Ctrl-C (a key in raw mode; a
//! SIGINT, SIGTERM or SIGHUP is forwarded by the caller through
//! `request_quit`). On a terminal that is gone the restore fails quietly.

use std::io::{self, IsTerminal, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

pub type Term = Terminal<CrosstermBackend<Stdout>>;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static PANICKED: AtomicBool = AtomicBool::new(false);
static QUIT: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Why a dashboard cannot be shown here, or None when it can.
pub fn unavailable_reason() -> Option<&'static str> {
    if !io::stdout().is_terminal() {
        Some("standard output is not a terminal")
    } else if !io::stdin().is_terminal() {
        Some("standard input is not a terminal")
    } else if std::env::var("TERM").is_ok_and(|t| t == "dumb") {
        Some("TERM=dumb")
    } else {
        None
    }
}

/// Raw mode, alternate screen, hidden cursor; installs the panic hook once.
pub fn init() -> io::Result<Term> {
    install_panic_hook();
    PANICKED.store(false, Ordering::SeqCst);
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    if let Err(e) = execute!(io::stdout(), EnterAlternateScreen, Hide) {
        let _ = restore();
        return Err(e);
    }
    match Terminal::new(CrosstermBackend::new(io::stdout())) {
        Ok(t) => Ok(t),
        Err(e) => {
            let _ = restore();
            Err(e)
        }
    }
}

/// Leaves the alternate screen and raw mode. Idempotent, so the panic hook,
/// the guard and explicit calls can all run it.
pub fn restore() -> io::Result<()> {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return Ok(());
    }
    let raw = disable_raw_mode();
    let screen = execute!(io::stdout(), LeaveAlternateScreen, Show);
    raw.and(screen)
}

/// Restores the terminal when dropped (early returns, `?`, unwinding).
pub struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = restore();
    }
}

/// True once any thread panicked while the dashboard was up: the terminal
/// is already restored, so the loop must stop drawing.
pub fn panicked() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

/// Asks the running loop to end (e.g. from a SIGINT handler).
pub fn request_quit() {
    QUIT.store(true, Ordering::SeqCst);
}

/// True while a quit request waits for the loop to take it: a signal handler
/// watches it to tell a loop that honoured the request from a stuck one.
pub fn quit_pending() -> bool {
    QUIT.load(Ordering::SeqCst)
}

/// Takes a pending quit request. A request made before the loop started
/// (a signal during setup) is kept for it rather than dropped by `init`.
pub(crate) fn take_quit_request() -> bool {
    QUIT.swap(false, Ordering::SeqCst)
}

fn install_panic_hook() {
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if ACTIVE.load(Ordering::SeqCst) {
                PANICKED.store(true, Ordering::SeqCst);
            }
            let _ = restore();
            prev(info);
        }));
    });
}
