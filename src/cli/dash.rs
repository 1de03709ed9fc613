//! `clickprompt dash` (in progress on its issue's branch).

#[derive(Debug, clap::Args)]
pub struct DashArgs {
    /// Experiment file(s).
    pub files: Vec<std::path::PathBuf>,
}

pub fn run(_args: DashArgs) -> anyhow::Result<()> {
    anyhow::bail!("`dash` is being built")
}
