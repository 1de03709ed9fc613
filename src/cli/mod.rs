//! Command-line interface: argument definitions and dispatch. Each
//! subcommand lives in its own module.

use clap::{Parser, Subcommand};

pub mod check;
pub mod dash;
pub mod data;
pub mod plan;
pub mod predict;
pub mod resume;
pub mod run;
pub mod runs;

/// Run and compare ClickPrompt experiments described in `.cp` files.
///
/// Exit codes: 0 success, 1 run failure, 2 invalid input; a run database
/// that cannot be used: 3 not a SQLite database (or damaged), 4 written by a
/// newer clickprompt, 5 read-only, 6 disk full, 7 locked by another process
/// past the busy timeout.
#[derive(Debug, Parser)]
#[command(name = "clickprompt", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check experiment files and report every error with its line and column.
    Check(check::CheckArgs),
    /// Print the fully resolved plan(s) of an experiment file.
    Plan(plan::PlanArgs),
    /// Inspect the processed dataset of an experiment.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Run an experiment's stages (or every run in the file).
    Run(run::RunArgs),
    /// Query the run history.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Open the live dashboard over the run database.
    Dash(dash::DashArgs),
    /// Score rows with a recorded run's trained model.
    Predict(predict::PredictArgs),
}

pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Check(a) => check::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Data(c) => data::run(c),
        Command::Run(a) => run::run(a),
        Command::Runs(c) => runs::run(c),
        Command::Dash(a) => dash::run(a),
        Command::Predict(a) => predict::run(a),
    }
}
