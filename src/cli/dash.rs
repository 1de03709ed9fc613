//! `clickprompt dash`: the live terminal dashboard over the run database, and
//! `run_with_dashboard`, which `clickprompt run --dash` wraps around training.

use std::io::Write;

use anyhow::Context;
use clickprompt_tui::event::{self, Cadence, Exit};
use clickprompt_tui::{terminal, App, DataSource, Follow, View};

use crate::dashfeed::StoreSource;
use crate::store::DbTarget;

#[derive(Debug, clap::Args)]
pub struct DashArgs {
    /// Run database to watch: a SQLite file or a postgres:// URL [default: $CLICKPROMPT_DB, else ./runs.db].
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<DbTarget>,
    /// Follow this run in the live view instead of opening on the run list.
    #[arg(long, value_name = "ID")]
    pub run: Option<i64>,
}

pub fn run(args: DashArgs) -> anyhow::Result<()> {
    let db = args.db.unwrap_or_else(crate::store::default_db);
    if let Some(why) = terminal::unavailable_reason() {
        return Err(crate::error::invalid(format!(
            "`clickprompt dash` needs an interactive terminal ({why}); use `clickprompt runs` for plain output"
        )));
    }
    let mut src = StoreSource::open(&db)?;
    let (follow, view) = match args.run {
        Some(id) => {
            let known = src.runs().map_err(anyhow::Error::msg)?;
            if !known.iter().any(|r| r.id == id) {
                return Err(crate::error::invalid(format!("no run #{id} in {db}")));
            }
            (Follow::Run(id), View::Live)
        }
        None => (Follow::Auto, View::Runs),
    };
    // In raw mode Ctrl-C is a key; a SIGINT, SIGTERM or SIGHUP from elsewhere
    // must still restore the terminal and end the process. Another handler
    // may already be installed (tests): fine.
    let _ = ctrlc::set_handler(quit_or_exit);
    let mut app = App::new(follow, view);
    app.source_label = db.to_string();
    let mut term = terminal::init().context("setting up the terminal")?;
    let guard = terminal::Guard;
    let res = event::run(
        &mut term,
        &mut app,
        &mut src,
        Cadence::default(),
        &mut |_| false,
    );
    drop(guard);
    match res.context("running the dashboard")? {
        Exit::Quit | Exit::Interrupted | Exit::Panicked => Ok(()),
        Exit::Signalled => {
            let _ = writeln!(std::io::stderr(), "dashboard: stopped by a signal");
            std::process::exit(EXIT_STOPPED);
        }
        Exit::TerminalLost(_) => {
            // Nobody is left to read a message.
            detach_from_terminal();
            std::process::exit(EXIT_STOPPED);
        }
    }
}

/// Exit code when a signal or a lost terminal ended the dashboard, as for
/// an interrupted `clickprompt run`.
const EXIT_STOPPED: i32 = 130;

/// Signal handler of `clickprompt dash`: asks the loop to quit, and if the
/// loop has not taken the request a second later (it is stuck in a write to
/// a stalled terminal, or a slow database read, or not started yet),
/// restores what it can and exits from here. The dashboard only reads the
/// database, so leaving at any point loses nothing.
fn quit_or_exit() {
    terminal::request_quit();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while std::time::Instant::now() < deadline {
        if !terminal::quit_pending() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = terminal::restore();
    let _ = writeln!(std::io::stderr(), "dashboard: stopped by a signal");
    std::process::exit(EXIT_STOPPED);
}

/// Asks a running dashboard to close, restoring the terminal (the run
/// command's SIGTERM/SIGHUP handler calls it). No-op without a dashboard.
pub fn request_quit() {
    terminal::request_quit();
}

/// Points standard input, output and error at /dev/null once the terminal is
/// gone: a later `println!` or `eprintln!` (the run summary, a handler's
/// message) would otherwise panic on EIO.
pub fn detach_from_terminal() {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let Ok(null) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
        else {
            return;
        };
        for fd in 0..=2 {
            // SAFETY: dup2 onto the standard descriptors from an open file.
            unsafe {
                libc::dup2(null.as_raw_fd(), fd);
            }
        }
    }
}

/// Why no dashboard can be shown here (stdout/stdin not a terminal,
/// TERM=dumb), or None when it can. `run --dash` checks this first to pick
/// progress bars, and says why: "--dash: {reason}; showing progress bars".
pub fn unavailable_reason() -> Option<&'static str> {
    terminal::unavailable_reason()
}

/// Leaves raw mode and the alternate screen if a dashboard is up (idempotent,
/// cheap). A Ctrl-C handler that exits the process must call it first: a
/// SIGINT sent from outside (`kill -INT`) does not pass through the view.
pub fn restore_terminal() {
    let _ = terminal::restore();
}

/// What `run_with_dashboard` did.
pub enum Dashboard<T, F> {
    /// Training ran while the dashboard showed it; its result.
    Shown(T),
    /// No dashboard possible here (no TTY); `train` was not called. The caller
    /// runs it with progress bars and tells the user why (`reason`).
    Unavailable { train: F, reason: String },
}

/// Runs `train` on a background thread while the live view follows the run(s)
/// it records into `db` (the newest run started after this call, so each
/// point of a sweep is followed in turn). When training ends the view stays,
/// with a banner, until the user leaves; the terminal is then restored and
/// `train`'s result returned, so the caller prints its summary afterwards.
///
/// * `train` must not draw progress bars or print: the screen belongs to the
///   dashboard. Anything written to stderr meanwhile is held back and printed
///   after the terminal is restored.
/// * Leaving early (q) waits for training to finish (it keeps recording).
///   Ctrl-C restores the terminal and raises SIGINT, so whatever Ctrl-C does
///   without the dashboard (the run command's handler) happens. Losing the
///   terminal (hangup, EOF, I/O error) does the same after pointing the
///   standard streams at /dev/null; SIGTERM/SIGHUP reach the run command's
///   handler, which stops training and closes the view (`request_quit`).
/// * A panic on either thread restores the terminal first.
/// * Call it from a plain thread, not inside a tokio runtime (the database
///   reader blocks on its own runtime), like `store::Store`.
///
/// Wiring in `run --dash`:
/// ```ignore
/// let db = crate::store::default_db();
/// let result = match crate::cli::dash::unavailable_reason() {
///     Some(why) => {
///         eprintln!("--dash: {why}; showing progress bars instead");
///         train_all(&plans, Progress::Bars)
///     }
///     None => match run_with_dashboard(&db, || train_all(&plans, Progress::Quiet))? {
///         Dashboard::Shown(result) => result,
///         Dashboard::Unavailable { train, .. } => train(),
///     },
/// };
/// print_summary(&result?);
/// ```
pub fn run_with_dashboard<T, F>(
    db: impl Into<DbTarget>,
    train: F,
) -> anyhow::Result<Dashboard<T, F>>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    run_with_dashboard_following(db, None, train)
}

/// `run_with_dashboard` that follows run `follow` (a resumed run, whose id
/// is older than the call) instead of the runs started after the call.
pub fn run_with_dashboard_following<T, F>(
    db: impl Into<DbTarget>,
    follow: Option<i64>,
    train: F,
) -> anyhow::Result<Dashboard<T, F>>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    if let Some(why) = terminal::unavailable_reason() {
        return Ok(Dashboard::Unavailable {
            train,
            reason: why.to_string(),
        });
    }
    let db = db.into();
    let mut src = StoreSource::watch(&db)?;
    let follow = match follow {
        Some(id) => Follow::Run(id),
        None => Follow::After(src.max_run_id()),
    };
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("clickprompt-train".into())
            .spawn_scoped(scope, train)
            .context("starting the training thread")?;
        let mut app = App::new(follow, View::Live);
        app.source_label = db.to_string();
        let shown = show_until_quit(&mut app, &mut src, &|| handle.is_finished());
        let running = !handle.is_finished();
        match &shown {
            Ok(Exit::Interrupted) if running => {
                let _ = writeln!(std::io::stderr(), "interrupted: stopping the run…");
                raise_sigint();
            }
            // The run command's handler got the signal first and has asked
            // training to stop; it ends at the next step and is marked.
            Ok(Exit::Signalled) if running => {
                let _ = writeln!(std::io::stderr(), "interrupted: stopping the run…");
            }
            // Nobody is watching any more: stop training as Ctrl-C would, so
            // the run is marked INTERRUPTED instead of running unattended.
            Ok(Exit::TerminalLost(_)) if running => raise_sigint(),
            Ok(Exit::Quit) if running => {
                let _ = writeln!(
                    std::io::stderr(),
                    "dashboard closed; training continues until it finishes (Ctrl-C interrupts)"
                );
            }
            _ => {}
        }
        let out = match handle.join() {
            Ok(out) => out,
            // The panic message was printed by the hook (after the restore).
            Err(_) => anyhow::bail!("the training thread panicked"),
        };
        shown?;
        Ok(Dashboard::Shown(out))
    })
}

/// The terminal part of `run_with_dashboard`: set up, loop, always restore.
/// When the terminal is gone, standard streams are pointed at /dev/null
/// before returning (see `detach_from_terminal`).
fn show_until_quit(
    app: &mut App,
    src: &mut StoreSource,
    finished: &dyn Fn() -> bool,
) -> anyhow::Result<Exit> {
    let capture = stderr_hold::Held::start();
    let mut term = terminal::init().context("setting up the terminal")?;
    let guard = terminal::Guard;
    let mut announced = false;
    let res = event::run(
        &mut term,
        app,
        src,
        Cadence::default(),
        &mut |app: &mut App| {
            if !announced && finished() {
                announced = true;
                app.banner = Some("training finished · q to leave · Tab: runs".into());
                return true;
            }
            // Training ended without recording a run (it failed before the
            // first write, e.g. bad input): nothing to watch, show the error.
            if announced && app.live_target().is_none() {
                app.quit = true;
            }
            false
        },
    );
    drop(guard);
    if let Ok(Exit::TerminalLost(_)) = &res {
        if let Some(held) = capture {
            held.discard();
        }
        detach_from_terminal();
    } else {
        drop(capture);
    }
    res.context("running the dashboard")
}

fn raise_sigint() {
    #[cfg(unix)]
    // SAFETY: raise only sends a signal to this process.
    unsafe {
        libc::raise(libc::SIGINT);
    }
}

/// Holds back what is written to stderr while the dashboard owns the screen
/// (stray prints would tear the frame) and prints it after the restore.
mod stderr_hold {
    #[cfg(unix)]
    pub struct Held {
        saved: libc::c_int,
        file: std::fs::File,
        discarded: bool,
    }

    #[cfg(unix)]
    impl Held {
        /// None when redirecting fails; the dashboard then runs without it.
        pub fn start() -> Option<Held> {
            use std::os::fd::AsRawFd;
            let path = std::env::temp_dir().join(format!(
                "clickprompt-dash-stderr-{}.log",
                std::process::id()
            ));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .ok()?;
            // Unlinked at once: nothing to clean up, whatever happens.
            let _ = std::fs::remove_file(&path);
            // SAFETY: dup/dup2 on valid descriptors; on failure nothing changed.
            unsafe {
                let saved = libc::dup(2);
                if saved < 0 {
                    return None;
                }
                if libc::dup2(file.as_raw_fd(), 2) < 0 {
                    libc::close(saved);
                    return None;
                }
                Some(Held {
                    saved,
                    file,
                    discarded: false,
                })
            }
        }

        /// The terminal is gone: drops the held text and leaves stderr where
        /// it is (the caller points it at /dev/null).
        pub fn discard(mut self) {
            self.discarded = true;
        }
    }

    #[cfg(unix)]
    impl Drop for Held {
        fn drop(&mut self) {
            use std::io::{Read, Seek, SeekFrom, Write};
            if self.discarded {
                // SAFETY: `saved` is the descriptor dup'ed in `start`.
                unsafe {
                    libc::close(self.saved);
                }
                return;
            }
            // SAFETY: `saved` is the descriptor dup'ed in `start`.
            unsafe {
                libc::dup2(self.saved, 2);
                libc::close(self.saved);
            }
            let mut text = String::new();
            if self.file.seek(SeekFrom::Start(0)).is_ok() {
                let _ = self.file.read_to_string(&mut text);
            }
            if !text.is_empty() {
                // Progress bars redraw with carriage returns: keep the last
                // state of each line, and only the tail of a long output.
                let lines: Vec<&str> = text
                    .lines()
                    .map(|l| l.rsplit('\r').next().unwrap_or(l))
                    .filter(|l| !l.trim().is_empty())
                    .collect();
                let start = lines.len().saturating_sub(200);
                let mut err = std::io::stderr().lock();
                for l in &lines[start..] {
                    let _ = writeln!(err, "{l}");
                }
            }
        }
    }

    #[cfg(not(unix))]
    pub struct Held;

    #[cfg(not(unix))]
    impl Held {
        pub fn start() -> Option<Held> {
            None
        }

        pub fn discard(self) {}
    }
}
