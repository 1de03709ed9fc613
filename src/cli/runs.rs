//! `clickprompt runs …` (in progress on its issue's branch).

#[derive(Debug, clap::Subcommand)]
pub enum RunsCommand {
    /// One line per run.
    List,
}

pub fn run(_cmd: RunsCommand) -> anyhow::Result<()> {
    anyhow::bail!("`runs` is being built")
}
