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

--list prints one line per run instead: its index, name and group (the
runs that repeat one configuration over seeds). `clickprompt run FILE
--point I` runs the run with index I, so a Slurm array (--array=0-N) or a
Kubernetes indexed Job spreads the runs over machines; indexes follow the
file (experiments in order with their seeds, then each sweep's points) and
are the same on every machine, and the seeds of one group run on different
machines land in one group of a shared database.

Exit codes: 0 ok, 2 invalid file or unknown --experiment.

Examples:
  clickprompt plan experiments/quickstart.cp
  clickprompt plan experiments/ml100k_prompt_sweep.cp --experiment prompt_count --format json
  clickprompt plan experiments/ml100k_prompt_sweep.cp --list";

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
    /// One line per run: index (for `run --point`), name, group. With
    /// `--format json`, an array of {index, name, group, experiment, sweep_point}.
    #[arg(long)]
    pub list: bool,
}

/// One line of `plan --list`.
#[derive(Debug, serde::Serialize)]
struct Listed<'a> {
    index: usize,
    name: &'a str,
    group: &'a str,
    experiment: &'a str,
    sweep_point: Option<String>,
}

pub fn run(args: PlanArgs) -> anyhow::Result<()> {
    let plans = plan::select(plan::load_file(&args.file)?, args.experiment.as_deref())?;
    if args.list {
        return list(&plans, args.format);
    }
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

fn list(plans: &[plan::ExperimentPlan], format: PlanFormat) -> anyhow::Result<()> {
    let rows: Vec<Listed> = plans
        .iter()
        .enumerate()
        .map(|(index, p)| Listed {
            index,
            name: &p.name,
            group: p.group_name(),
            experiment: &p.experiment,
            sweep_point: p.sweep.as_ref().map(|s| {
                s.assignments
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        })
        .collect();
    if let PlanFormat::Json = format {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    print!("{}", list_table(&rows));
    Ok(())
}

fn list_table(rows: &[Listed]) -> String {
    let w_index = rows
        .iter()
        .map(|r| r.index.to_string().len())
        .max()
        .unwrap_or(0)
        .max("INDEX".len());
    let w_name = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .max("NAME".len());
    let mut out = format!("{:>w_index$}  {:<w_name$}  GROUP\n", "INDEX", "NAME");
    for r in rows {
        out.push_str(&format!(
            "{:>w_index$}  {:<w_name$}  {}\n",
            r.index, r.name, r.group
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_an_aligned_table() {
        let rows = [
            Listed {
                index: 0,
                name: "base",
                group: "base",
                experiment: "base",
                sweep_point: None,
            },
            Listed {
                index: 1,
                name: "sw[k=1]",
                group: "sw",
                experiment: "base",
                sweep_point: Some("k=1".into()),
            },
        ];
        assert_eq!(
            list_table(&rows),
            "INDEX  NAME     GROUP\n    0  base     base\n    1  sw[k=1]  sw\n"
        );
    }
}
