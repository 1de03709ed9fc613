//! `clickprompt plan FILE`: print the fully resolved plan(s).

use std::path::PathBuf;

use crate::plan;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PlanFormat {
    Yaml,
    Json,
}

/// Print the fully resolved plan(s) of an experiment file: every default
/// filled in, `extends` applied, sweeps expanded into named runs. The YAML
/// is what `run` stores with each run.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  clickprompt plan experiments/quickstart.cp\n  clickprompt plan experiments/ml100k_prompt_sweep.cp --experiment prompt_count --format json"
)]
pub struct PlanArgs {
    /// Experiment file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Only this experiment, sweep (all its runs) or single run name.
    #[arg(short, long, value_name = "NAME")]
    pub experiment: Option<String>,
    /// Output format: YAML documents separated by `---`, or a JSON array.
    #[arg(short, long, value_enum, default_value = "yaml")]
    pub format: PlanFormat,
}

pub fn run(args: PlanArgs) -> anyhow::Result<()> {
    let plans = plan::select(plan::load_file(&args.file)?, args.experiment.as_deref())?;
    match args.format {
        PlanFormat::Yaml => {
            let mut docs = Vec::new();
            for p in &plans {
                docs.push(plan::to_yaml(p)?);
            }
            print!("{}", docs.join("---\n"));
        }
        PlanFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&plans)?);
        }
    }
    Ok(())
}
