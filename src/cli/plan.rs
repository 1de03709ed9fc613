//! `clickprompt plan FILE`: print the fully resolved plan(s).

use std::path::PathBuf;

use crate::plan;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PlanFormat {
    Yaml,
    Json,
}

const AFTER_HELP: &str = "\
The plan is what `run` executes and stores with each run: dataset (source,
label, split, fields), template, PLM, CTR backbone, prompts, fusion, device,
seed, metrics and every stage's training parameters, with defaults filled in,
`extends` applied, sweeps expanded into runs named like
`prompt_count[prompts=5,ctr=dcnv2]` and `seeds [1, 2, 3]` into one run per
seed (`scratch[seed=2]`); each plan's `group` is its name without the seed.

Exit codes: 0 ok, 2 invalid file or unknown --experiment.

Examples:
  clickprompt plan experiments/quickstart.cp
  clickprompt plan experiments/ml100k_prompt_sweep.cp --experiment prompt_count --format json";

/// Print the fully resolved plan(s) of an experiment file.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
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
