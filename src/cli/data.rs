//! `clickprompt data …` (in progress on its issue's branch).

#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Rows, positive rates, cardinalities and token lengths per split.
    Inspect { file: std::path::PathBuf },
}

pub fn run(_cmd: DataCommand) -> anyhow::Result<()> {
    anyhow::bail!("`data` is being built")
}
