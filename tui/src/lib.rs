//! clickprompt's terminal dashboard: live runs, run history, comparisons.
//!
//! Rendering and interaction over plain data (`model`); the caller provides a
//! `DataSource` (the root crate maps its run database into these types).
//! `app` is the pure state machine, `ui` draws it, `event` runs the loop over
//! keys from `input`, and `terminal` sets up and always restores the terminal.

pub mod app;
pub mod event;
pub mod format;
pub mod input;
pub mod model;
pub mod smooth;
pub mod terminal;
pub mod ui;

pub use app::{App, Follow, SortKey, View};
pub use model::{
    DataSource, EpochEval, GroupComparison, GroupSummary, LogLevel, LogLine, MeanSd,
    MetricComparison, PairedDiff, RunDetail, RunStatus, RunSummary, SeedDiff, Split, StageFigures,
    StageProgress, StageSeries, StageState,
};

use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// Renders `app` off-screen at `width`×`height` and returns the text, one
/// line per row with trailing spaces trimmed (snapshot tests, e2e checks).
pub fn render_text(app: &App, width: u16, height: u16) -> String {
    let mut term = match Terminal::new(TestBackend::new(width, height)) {
        Ok(t) => t,
        Err(e) => match e {},
    };
    if let Err(e) = term.draw(|f| ui::draw(f, app)) {
        match e {}
    }
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
