//! `terminal::request_quit` (what the SIGTERM/SIGHUP handlers call) ends the
//! loop within a tick. Its own binary: the quit flag is process-wide.

mod common;

use std::time::{Duration, Instant};

use clickprompt_tui::event::{run_with_input, Cadence, Exit};
use clickprompt_tui::input::{Input, InputSource};
use clickprompt_tui::*;
use common::*;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

struct Quiet;

impl InputSource for Quiet {
    fn next(&mut self, timeout: Duration) -> Input {
        std::thread::sleep(timeout);
        Input::Idle
    }
}

#[test]
fn a_quit_request_from_a_signal_handler_ends_the_loop() {
    let mut term = match Terminal::new(TestBackend::new(80, 24)) {
        Ok(t) => t,
        Err(e) => match e {},
    };
    let mut app = App::default();
    let mut src = mixed();
    let start = Instant::now();
    let requested = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(300));
        terminal::request_quit();
        Instant::now()
    });
    let exit = run_with_input(
        &mut term,
        &mut Quiet,
        &mut app,
        &mut src,
        Cadence::default(),
        &mut |app: &mut App| {
            if start.elapsed() > Duration::from_secs(5) {
                app.quit = true;
            }
            false
        },
    );
    let at = requested.join().expect("the signalling thread");
    assert_eq!(exit, Exit::Signalled);
    let lag = at.elapsed();
    // A tick is 100 ms; the bound leaves room for a loaded machine.
    assert!(lag < Duration::from_secs(2), "loop took {lag:?} to stop");
}
