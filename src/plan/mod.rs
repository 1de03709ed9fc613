//! Validation and resolution of parsed experiment files into typed,
//! fully-defaulted [`ExperimentPlan`]s.
//!
//! `load_file`/`load_str` run the whole front end: parse (`crate::dsl`),
//! check every declaration (collecting every error), apply `extends`, expand
//! sweeps, fill defaults. Errors come back as one `InvalidInput` whose text
//! renders each diagnostic with its line, caret and hint.

mod budget;
mod build;
mod dataset;
mod decls;
mod experiment;
mod flatten;
mod points;
mod seeds;
mod spec;
mod sweep;
pub mod types;
mod values;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::Context as _;

pub use flatten::flatten_params;
pub use points::{pick, PointSet};
pub use seeds::MAX_SEEDS;
pub use sweep::MAX_SWEEP_POINTS;
pub use types::*;

use crate::dsl::diagnostic::{did_you_mean, list_names};
use crate::dsl::{self, Diagnostic, Item};
use crate::error::invalid;
use budget::Budget;
use values::Diags;

/// The largest experiment file accepted, in bytes. Checking time grows with
/// the file: a fuzzed 660 KB file took 223 ms, and at this size the slowest
/// inputs found take 35–40 ms (a file cut off at its end is parsed twice,
/// the second time recording what was expected for the message). A
/// hand-written file is a few KB (the study with its ladders is 5 KB);
/// many runs belong in a `sweep` or `seeds`, not in copies of an experiment.
pub const MAX_SOURCE_BYTES: usize = 128 * 1024;

fn too_large(source: &str, size: u64) -> Diagnostic {
    let mut at = MAX_SOURCE_BYTES.min(source.len());
    while !source.is_char_boundary(at) {
        at -= 1;
    }
    Diagnostic::new(
        dsl::Span::new(at, at),
        format!(
            "the file is {} KiB, past the {} KiB an experiment file may hold (here)",
            size.div_ceil(1024),
            MAX_SOURCE_BYTES / 1024
        ),
    )
    .with_hint("describe many runs with `sweep` or `seeds`, or split the file")
}

/// Parses and checks `source`; every diagnostic on failure.
pub fn check_source(source: &str) -> Result<Vec<ExperimentPlan>, Vec<Diagnostic>> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(vec![too_large(source, source.len() as u64)]);
    }
    let file = dsl::parse_file(source).map_err(|e| vec![e])?;
    let mut d = Diags::default();

    // Names are unique per kind; experiments and sweeps share one namespace
    // (both name runs).
    let mut seen: HashMap<(&str, &str), ()> = HashMap::new();
    for item in &file.items {
        let (kind, id) = match item {
            Item::Dataset(x) => ("dataset", &x.name),
            Item::Template(x) => ("template", &x.name),
            Item::Plm(x) => ("plm", &x.name),
            Item::Experiment(x) => ("run", &x.name),
            Item::Sweep(x) => ("run", &x.name),
        };
        if seen.insert((kind, id.name.as_str()), ()).is_some() {
            let what = if kind == "run" {
                "experiment or sweep"
            } else {
                kind
            };
            d.push(
                Diagnostic::new(id.span, format!("{what} `{}` is declared twice", id.name))
                    .with_hint("names must be unique"),
            );
        }
        if kind == "plm" && id.name == "none" {
            d.err(id.span, "`none` is reserved (it means \"no PLM\")");
        }
    }

    let mut ctx = experiment::Ctx::new();
    let mut exps = Vec::new();
    let mut sweeps = Vec::new();
    for item in &file.items {
        match item {
            Item::Dataset(x) => {
                let plan = dataset::resolve_dataset(x, &mut d).map(std::sync::Arc::new);
                ctx.datasets.entry(x.name.name.clone()).or_insert(plan);
            }
            Item::Template(x) => {
                decls::check_template(x, &mut d);
                ctx.templates.entry(x.name.name.clone()).or_insert(x);
            }
            Item::Plm(x) => {
                decls::resolve_plm(x, &[], &mut d);
                ctx.plms.entry(x.name.name.clone()).or_insert(x);
            }
            Item::Experiment(x) => exps.push(x),
            Item::Sweep(x) => sweeps.push(x),
        }
    }

    let mut budget = Budget::default();
    let specs = spec::build_specs(&exps, &mut budget, &mut d);
    let mut plans = Vec::new();
    for e in &exps {
        if plans.len() > MAX_RUNS {
            d.push(too_many_runs(e.name.span));
            break;
        }
        if let Some(s) = specs.get(&e.name.name) {
            if !budget.spend(s.weight(), e.name.span, &mut d) {
                break;
            }
            let seeds = s.seeds.as_ref().map(|v| seeds::read_seeds(v, &mut d));
            if let Some(p) = experiment::resolve(s, &ctx, &mut d) {
                let Some(seeds) = seeds.map_or(Some(None), |s| s.map(Some)) else {
                    continue;
                };
                let copies = seeds.as_ref().map_or(1, Vec::len);
                if !budget.spend(s.copy_weight() * copies, e.name.span, &mut d) {
                    break;
                }
                plans.extend(seeds::repeat_experiment(p, seeds.as_deref()));
            }
        }
    }
    let exp_names: HashSet<&str> = exps.iter().map(|e| e.name.name.as_str()).collect();
    let mut sorted_exps: Option<Vec<&str>> = None;
    for sw in &sweeps {
        if budget.stopped() {
            break;
        }
        let Some(base) = specs.get(&sw.base.name) else {
            if !exp_names.contains(sw.base.name.as_str()) {
                let names = sorted_exps.get_or_insert_with(|| {
                    let mut v: Vec<&str> = exp_names.iter().copied().collect();
                    v.sort();
                    v
                });
                let hint = did_you_mean(&sw.base.name, names.iter().copied())
                    .unwrap_or_else(|| format!("experiments are {}", list_names(names)));
                d.push(
                    Diagnostic::new(
                        sw.base.span,
                        format!("unknown experiment `{}`", sw.base.name),
                    )
                    .with_hint(hint),
                );
            }
            continue;
        };
        if !sweep::check_axes(sw, base, &mut d) {
            continue;
        }
        let mut failed_points = 0;
        for point in sweep::points(sw) {
            if plans.len() > MAX_RUNS {
                d.push(too_many_runs(sw.name.span));
                break;
            }
            if failed_points == MAX_FAILED_POINTS {
                d.push(
                    Diagnostic::new(
                        sw.name.span,
                        format!(
                            "sweep `{}`: {MAX_FAILED_POINTS} points failed to check; the others were not checked",
                            sw.name.name
                        ),
                    )
                    .with_hint("fix the errors above and check again"),
                );
                break;
            }
            if !budget.spend(base.weight(), sw.name.span, &mut d) {
                break;
            }
            // The point's own diagnostics: `d` drops repeats, and a point
            // that only repeats the base's errors has still failed.
            let mut pd = Diags::default();
            let mut s = (**base).clone();
            let mut assignments = Vec::new();
            for (path, value) in &point {
                sweep::apply(&mut s, path, value, &mut pd);
                assignments.push((path.name.clone(), value.display()));
            }
            let seeds = s.seeds.as_ref().map(|v| seeds::read_seeds(v, &mut pd));
            if let Some(mut p) = experiment::resolve(&s, &ctx, &mut pd) {
                // `Some(None)`: the seeds did not read (an error in `pd`).
                if let Some(seeds) = seeds.map_or(Some(None), |s| s.map(Some)) {
                    let copies = seeds.as_ref().map_or(1, Vec::len);
                    if !budget.spend(s.copy_weight() * copies, sw.name.span, &mut d) {
                        break;
                    }
                    p.experiment = sw.base.name.clone();
                    plans.extend(seeds::repeat_sweep_point(
                        p,
                        &sw.name.name,
                        assignments,
                        seeds.as_deref(),
                    ));
                }
            }
            if !pd.is_empty() {
                failed_points += 1;
                for e in pd.into_vec() {
                    d.push(e);
                }
            }
        }
    }
    if d.is_empty() {
        Ok(plans)
    } else {
        Err(d.into_vec())
    }
}

/// After this many sweep points that fail to check, the rest of the sweep is
/// not checked: every point of a sweep over a broken base repeats the base's
/// errors, and resolving 2000 failing points took 90 ms (a fuzzed input).
pub const MAX_FAILED_POINTS: usize = 16;

/// The most runs one file may describe (experiments × seeds + sweep points);
/// the checker resolves every one, so this bounds its time too (see
/// [`sweep::MAX_SWEEP_POINTS`]).
pub const MAX_RUNS: usize = 2_000;

fn too_many_runs(at: dsl::Span) -> Diagnostic {
    Diagnostic::new(
        at,
        format!("the file describes more than {MAX_RUNS} runs from here on"),
    )
    .with_hint("split the experiments and sweeps over several files")
}

/// Parse, check and resolve `source`; on any error an `InvalidInput` with
/// every diagnostic rendered against `file_name`.
pub fn load_str(source: &str, file_name: &str) -> anyhow::Result<Vec<ExperimentPlan>> {
    check_source(source).map_err(|diags| invalid(dsl::render(&diags, source, file_name)))
}

pub fn load_file(path: &Path) -> anyhow::Result<Vec<ExperimentPlan>> {
    // A huge file (a log or data file named by mistake) is not read whole:
    // its first bytes are enough to say where it crosses the limit.
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.is_file() && meta.len() > MAX_SOURCE_BYTES as u64 {
            use std::io::Read as _;
            let mut head = Vec::with_capacity(MAX_SOURCE_BYTES + 4);
            if let Ok(f) = std::fs::File::open(path) {
                let _ = f.take(MAX_SOURCE_BYTES as u64 + 4).read_to_end(&mut head);
            }
            let text = String::from_utf8_lossy(&head);
            let d = too_large(&text, meta.len());
            return Err(invalid(dsl::render(
                &[d],
                &text,
                &path.display().to_string(),
            )));
        }
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            return Err(invalid(format!(
                "{}: cannot read experiment file: {e}",
                path.display()
            )))
        }
    };
    load_bytes(&bytes, &path.display().to_string())
}

/// [`load_str`] on a file's bytes: text that is not UTF-8 is an error at the
/// line and column of the first bad byte.
pub fn load_bytes(bytes: &[u8], file_name: &str) -> anyhow::Result<Vec<ExperimentPlan>> {
    match std::str::from_utf8(bytes) {
        Ok(source) => load_str(source, file_name),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let (line, col) = match std::str::from_utf8(good) {
                Ok(text) => dsl::diagnostic::line_col(text, text.len()),
                Err(_) => (1, 1),
            };
            Err(invalid(format!(
                "{file_name}:{line}:{col}: error: the file is not valid UTF-8 (byte 0x{:02x})\n  = hint: save it as UTF-8",
                bytes[e.valid_up_to()]
            )))
        }
    }
}

/// The plans of experiment or sweep `name` (all points of a sweep, all seeds
/// of an experiment with `seeds`; a group like `sweep[prompts=5]` or a single
/// run name like `exp[seed=2]` also works), or all plans for `None`.
pub fn select(
    plans: Vec<ExperimentPlan>,
    name: Option<&str>,
) -> anyhow::Result<Vec<ExperimentPlan>> {
    let Some(name) = name else { return Ok(plans) };
    let is_sweep = plans
        .iter()
        .any(|p| p.sweep.as_ref().is_some_and(|s| s.sweep == name));
    let chosen: Vec<ExperimentPlan> = if is_sweep {
        plans
            .iter()
            .filter(|p| p.sweep.as_ref().is_some_and(|s| s.sweep == name))
            .cloned()
            .collect()
    } else {
        // A run name, or a group: every seed of `NAME` / `SWEEP[prompts=5]`.
        plans
            .iter()
            .filter(|p| p.name == name || p.group == name)
            .cloned()
            .collect()
    };
    if !chosen.is_empty() {
        return Ok(chosen);
    }
    let mut names: Vec<String> = Vec::new();
    for p in &plans {
        let n = match &p.sweep {
            Some(s) => s.sweep.clone(),
            None => p.group_name().to_string(),
        };
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let mut msg = format!(
        "no experiment or sweep named `{name}`; the file has {}",
        list_names(&names)
    );
    if let Some(h) = did_you_mean(name, names.iter().map(String::as_str)) {
        msg.push_str(&format!("\nhint: {h}"));
    }
    Err(invalid(msg))
}

pub fn to_yaml(plan: &ExperimentPlan) -> anyhow::Result<String> {
    serde_yaml::to_string(plan).context("serialising the plan to YAML")
}

pub fn from_yaml(text: &str) -> anyhow::Result<ExperimentPlan> {
    serde_yaml::from_str(text).map_err(|e| invalid(format!("invalid plan YAML: {e}")))
}
