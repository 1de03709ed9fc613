//! The event loop: keys and resizes from an `InputSource`, a redraw tick,
//! and data refreshes from the `DataSource` at a fixed cadence.

use std::io;
use std::time::{Duration, Instant};

use ratatui::backend::Backend;
use ratatui::Terminal;

use crate::app::App;
use crate::input::{Input, InputSource};
use crate::model::DataSource;
use crate::terminal::{self, Term};
use crate::ui;

#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    /// How often the data source is polled.
    pub refresh: Duration,
    /// Longest wait for input between redraws.
    pub tick: Duration,
}

impl Default for Cadence {
    fn default() -> Self {
        // Four refreshes a second: the issue asks for at least two.
        Cadence {
            refresh: Duration::from_millis(250),
            tick: Duration::from_millis(100),
        }
    }
}

/// Why the loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The user left (q, or Esc where it quits).
    Quit,
    /// Ctrl-C pressed in the dashboard: the caller may interrupt training.
    Interrupted,
    /// `terminal::request_quit` was called (SIGINT, SIGTERM or SIGHUP).
    Signalled,
    /// The terminal went away (hangup, end of input, a read or write
    /// error): why. Nothing more can be shown.
    TerminalLost(String),
    /// A thread panicked; the hook already restored the terminal.
    Panicked,
}

/// Runs on the process's terminal until one of `Exit`'s reasons.
pub fn run(
    term: &mut Term,
    app: &mut App,
    src: &mut dyn DataSource,
    cadence: Cadence,
    on_tick: &mut dyn FnMut(&mut App) -> bool,
) -> io::Result<Exit> {
    #[cfg(unix)]
    let mut input = crate::input::TtyInput::open()?;
    #[cfg(not(unix))]
    let mut input = crate::input::CrosstermInput;
    Ok(run_with_input(term, &mut input, app, src, cadence, on_tick))
}

/// The loop over any backend and input (tests script both). `on_tick` runs
/// before every draw (the driver uses it to report a finished training
/// thread); returning `true` from it forces a data refresh now.
pub fn run_with_input<B: Backend>(
    term: &mut Terminal<B>,
    input: &mut dyn InputSource,
    app: &mut App,
    src: &mut dyn DataSource,
    cadence: Cadence,
    on_tick: &mut dyn FnMut(&mut App) -> bool,
) -> Exit {
    let mut last_refresh: Option<Instant> = None;
    // Frames are drawn only when something changed: charts over long runs
    // cost milliseconds, so idle ticks must not redraw.
    let mut dirty = true;
    loop {
        if terminal::panicked() {
            return Exit::Panicked;
        }
        if terminal::take_quit_request() {
            app.quit = true;
            app.interrupted = true;
            return Exit::Signalled;
        }
        let force = on_tick(app);
        if force || last_refresh.is_none_or(|t| t.elapsed() >= cadence.refresh) {
            app.refresh(src);
            last_refresh = Some(Instant::now());
            dirty = true;
        }
        if dirty {
            if let Err(e) = term.draw(|f| ui::draw(f, app)) {
                return Exit::TerminalLost(format!("writing to the terminal: {e}"));
            }
            dirty = false;
        }
        if app.quit {
            return if app.interrupted {
                Exit::Interrupted
            } else {
                Exit::Quit
            };
        }
        let wait = last_refresh
            .map(|t| cadence.refresh.saturating_sub(t.elapsed()))
            .unwrap_or_default()
            .min(cadence.tick);
        let waited = Instant::now();
        // Drain everything queued so held keys do not lag behind: after the
        // first input, later ones are taken only if already there.
        let mut timeout = wait;
        loop {
            match input.next(timeout) {
                Input::Key(k) => {
                    dirty = true;
                    let before = (app.view, app.follow, app.selected.len());
                    app.on_key(k);
                    if before != (app.view, app.follow, app.selected.len()) {
                        last_refresh = None;
                    }
                }
                Input::Resize => {
                    if let Err(e) = term.autoresize() {
                        return Exit::TerminalLost(format!("resizing the terminal: {e}"));
                    }
                    dirty = true;
                }
                Input::Closed(why) => {
                    app.quit = true;
                    return Exit::TerminalLost(why);
                }
                Input::Idle => {
                    // An input that returns at once without waiting (a
                    // broken poll, a signal) must not turn the loop into a
                    // spin: sleep out the tick unless asked to stop.
                    if timeout > Duration::ZERO && !terminal::quit_pending() {
                        std::thread::sleep(wait.saturating_sub(waited.elapsed()));
                    }
                    break;
                }
            }
            if app.quit {
                break;
            }
            timeout = Duration::ZERO;
        }
    }
}
