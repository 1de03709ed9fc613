//! `clickprompt check FILE…`: parse, validate and resolve experiment files.

use std::path::PathBuf;

use crate::plan::{self, ExperimentPlan};

/// Check experiment files: print one line per runnable experiment (sweeps
/// expanded), or every error with file:line:col, the source line and a hint.
///
/// Exit codes: 0 when every file is valid, 2 when any has errors.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  clickprompt check experiments/*.cp\n  clickprompt check --quiet experiments/quickstart.cp"
)]
pub struct CheckArgs {
    /// Experiment file(s) to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print nothing when the files are valid (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,
}

/// One line describing a resolved run.
pub fn summary(p: &ExperimentPlan) -> String {
    let ctr = p
        .ctr
        .as_ref()
        .map(|c| c.backbone.name())
        .unwrap_or("no ctr");
    let plm = p.plm.as_ref().map(|m| m.name.as_str()).unwrap_or("no plm");
    let stages: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
    let prompts = if p.plm.is_some() && p.ctr.is_some() {
        format!(", K={}", p.prompts.count)
    } else {
        String::new()
    };
    format!(
        "{}: data {}, {ctr}, {plm}{prompts}, stages {}",
        p.name,
        p.dataset.name,
        stages.join(" → ")
    )
}

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let mut failures = Vec::new();
    for f in &args.files {
        match plan::load_file(f) {
            Ok(plans) => {
                if !args.quiet {
                    println!(
                        "{}: ok, {} run{}",
                        f.display(),
                        plans.len(),
                        if plans.len() == 1 { "" } else { "s" }
                    );
                    for p in &plans {
                        println!("  {}", summary(p));
                    }
                }
            }
            Err(e) => {
                if crate::error::exit_code(&e) != 2 {
                    return Err(e);
                }
                failures.push(e.to_string());
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(crate::error::invalid(failures.join("\n\n")))
    }
}
