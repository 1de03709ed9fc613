//! The event loop: keys and resizes from crossterm, a redraw tick, and data
//! refreshes from the `DataSource` at a fixed cadence.

use std::io;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event};

use crate::app::App;
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

/// Runs until the user quits, a panic restored the terminal, or
/// `terminal::request_quit` was called. `on_tick` runs before every draw
/// (the driver uses it to report a finished training thread); returning
/// `true` from it forces a data refresh now.
pub fn run(
    term: &mut Term,
    app: &mut App,
    src: &mut dyn DataSource,
    cadence: Cadence,
    on_tick: &mut dyn FnMut(&mut App) -> bool,
) -> io::Result<()> {
    let mut last_refresh: Option<Instant> = None;
    // Frames are drawn only when something changed: charts over long runs
    // cost milliseconds, so idle ticks must not redraw.
    let mut dirty = true;
    loop {
        if terminal::panicked() {
            return Ok(());
        }
        if terminal::quit_requested() {
            app.quit = true;
            app.interrupted = true;
            return Ok(());
        }
        let force = on_tick(app);
        if force || last_refresh.is_none_or(|t| t.elapsed() >= cadence.refresh) {
            app.refresh(src);
            last_refresh = Some(Instant::now());
            dirty = true;
        }
        if dirty {
            term.draw(|f| ui::draw(f, app))?;
            dirty = false;
        }
        if app.quit {
            return Ok(());
        }
        let wait = last_refresh
            .map(|t| cadence.refresh.saturating_sub(t.elapsed()))
            .unwrap_or_default()
            .min(cadence.tick);
        if event::poll(wait)? {
            // Drain everything queued so held keys do not lag behind.
            loop {
                match event::read()? {
                    Event::Key(k) => {
                        dirty = true;
                        let before = (app.view, app.follow, app.selected.len());
                        app.on_key(k);
                        if before != (app.view, app.follow, app.selected.len()) {
                            last_refresh = None;
                        }
                    }
                    Event::Resize(_, _) => {
                        term.autoresize()?;
                        dirty = true;
                    }
                    _ => {}
                }
                if app.quit || !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
    }
}
