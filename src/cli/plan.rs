//! `clickprompt plan` (in progress on its issue's branch).

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Experiment file(s).
    pub files: Vec<std::path::PathBuf>,
}

pub fn run(_args: PlanArgs) -> anyhow::Result<()> {
    anyhow::bail!("`plan` is being built")
}
