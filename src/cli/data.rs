//! `clickprompt data inspect FILE.cp [--experiment NAME] [--rebuild] [--cache-dir DIR]`:
//! loads (or builds and caches) each selected experiment's dataset and
//! prints rows and positive rate per split, field cardinalities and OOV
//! shares, token-length statistics, sample texts and the cache location.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::data::{self, inspect::Report, LoadOptions};
use crate::plan::{ExperimentPlan, PlmLocation, PlmPlan};

#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Rows, positive rates, cardinalities and token lengths per split.
    Inspect(InspectArgs),
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Experiment file (`.cp`).
    pub file: PathBuf,
    /// Only this experiment (or sweep); default: every experiment in the file.
    #[arg(long, short)]
    pub experiment: Option<String>,
    /// Rebuild the processed dataset even when a cached copy exists.
    #[arg(long)]
    pub rebuild: bool,
    /// Where processed datasets are cached.
    #[arg(long, default_value = ".cache/data")]
    pub cache_dir: PathBuf,
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Inspect(a) => {
            print!("{}", inspect(&a)?);
            Ok(())
        }
    }
}

fn load_plans(file: &Path, experiment: Option<&str>) -> Result<Vec<ExperimentPlan>> {
    crate::plan::select(crate::plan::load_file(file)?, experiment)
}

/// What a dataset's processing depends on: its declaration, the template
/// (when a PLM reads the text) and the PLM's `max_len`.
type TextSetup = (
    std::sync::Arc<crate::plan::DatasetPlan>,
    Option<std::sync::Arc<crate::plan::TemplatePlan>>,
    Option<usize>,
);

/// The inspect report for every selected experiment (one per distinct
/// dataset/template/tokenizer combination).
pub fn inspect(a: &InspectArgs) -> Result<String> {
    use std::fmt::Write as _;
    let mut out = String::new();
    let plans = load_plans(&a.file, a.experiment.as_deref())?;
    // Sweep points and experiments often share one dataset declaration: inspect each once.
    let mut seen: Vec<TextSetup> = Vec::new();
    for plan in &plans {
        let id = (
            plan.dataset.clone(),
            plan.template.clone().filter(|_| plan.plm.is_some()),
            plan.plm.as_ref().map(|p| p.max_len),
        );
        if seen.contains(&id) {
            continue;
        }
        seen.push(id);
        let opts = LoadOptions {
            cache_dir: a.cache_dir.clone(),
            rebuild: a.rebuild,
            // Only the tokenizer is needed here: a local folder need not hold weights.
            tokenizer_dir: match plan.plm.as_ref() {
                Some(PlmPlan {
                    location: PlmLocation::Local(dir),
                    ..
                }) => Some(dir.clone()),
                Some(p) => Some(crate::model::plm::resolve_plm_dir(p)?),
                None => None,
            },
        };
        let loaded =
            data::load(plan, &opts).map_err(|e| data::with_declaration(e, &a.file, plan))?;
        let report = Report {
            dataset_name: &plan.dataset.name,
            loaded: &loaded,
        };
        let _ = writeln!(out, "== experiment {}\n{report}", plan.name);
    }
    Ok(out)
}
