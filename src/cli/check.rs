//! `clickprompt check` (in progress on its issue's branch).

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Experiment file(s).
    pub files: Vec<std::path::PathBuf>,
}

pub fn run(_args: CheckArgs) -> anyhow::Result<()> {
    anyhow::bail!("`check` is being built")
}
