//! `clickprompt run` (in progress on its issue's branch).

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Experiment file(s).
    pub files: Vec<std::path::PathBuf>,
}

pub fn run(_args: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("`run` is being built")
}
