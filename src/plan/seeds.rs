//! Repeats over seeds: `seeds [1, 2, 3]` in an experiment, or a sweep's
//! `seed` axis. Each repeat is its own run (`NAME[seed=S]`); the runs that
//! differ only by seed form a group named after the run without its seed
//! assignment (`NAME`, `SWEEP[prompts=5]`), which the run database keeps so
//! `runs list --groups` and `runs compare gA gB` can aggregate over seeds.

use super::types::{ExperimentPlan, SweepPoint};
use super::values::{found, read_usize, Diags};
use crate::dsl::{Diagnostic, Value, ValueKind};

/// The sweep path (and assignment key) that names the replicate seed.
pub const SEED_KEY: &str = "seed";

/// The most seeds one experiment may repeat over.
pub const MAX_SEEDS: usize = 1_000;

/// Reads `seeds [..]`: a non-empty list of distinct whole numbers.
pub fn read_seeds(v: &Value, d: &mut Diags) -> Option<Vec<u64>> {
    let ValueKind::List(items) = &v.kind else {
        d.push(
            Diagnostic::new(
                v.span,
                format!(
                    "`seeds` expects a list of seeds such as `[1, 2, 3]`, found {}",
                    found(v)
                ),
            )
            .with_hint("for a single run write `seed N`"),
        );
        return None;
    };
    if items.is_empty() {
        d.push(
            Diagnostic::new(v.span, "`seeds` needs at least one seed")
                .with_hint("e.g. `seeds [1, 2, 3]`"),
        );
        return None;
    }
    if items.len() > MAX_SEEDS {
        d.push(
            Diagnostic::new(
                v.span,
                format!(
                    "`seeds` lists {} seeds, more than the {MAX_SEEDS} allowed",
                    items.len()
                ),
            )
            .with_hint("every seed is a run; a few seeds are enough for a mean and spread"),
        );
        return None;
    }
    let mut out: Vec<u64> = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::new();
    let mut ok = true;
    for it in items {
        match read_usize(it, "seeds", 0, d) {
            Some(s) if !seen.insert(s) => {
                d.push(
                    Diagnostic::new(it.span, format!("seed {s} is listed twice"))
                        .with_hint("the seeds of one experiment must be distinct"),
                );
                ok = false;
            }
            Some(s) => out.push(s as u64),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// `BASE[k=v,…]`, or `BASE` without assignments.
pub fn run_name(base: &str, assignments: &[(String, String)]) -> String {
    if assignments.is_empty() {
        return base.to_string();
    }
    let inner: Vec<String> = assignments
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("{base}[{}]", inner.join(","))
}

/// An experiment's plan once per seed (`NAME[seed=S]`, group `NAME`), or
/// the plan alone as its own group.
pub fn repeat_experiment(plan: ExperimentPlan, seeds: Option<&[u64]>) -> Vec<ExperimentPlan> {
    let group = plan.name.clone();
    match seeds {
        None => vec![ExperimentPlan { group, ..plan }],
        Some(seeds) => seeds
            .iter()
            .map(|&s| {
                let mut p = plan.clone();
                p.name = run_name(&group, &[(SEED_KEY.to_string(), s.to_string())]);
                p.group = group.clone();
                p.seed = s;
                p
            })
            .collect(),
    }
}

/// One sweep point's plan(s). A point that assigns `seed` (the sweep's seed
/// axis) is one run whose group leaves that assignment out; otherwise the
/// base experiment's `seeds` repeat the point, each with `seed=S` appended.
pub fn repeat_sweep_point(
    plan: ExperimentPlan,
    sweep: &str,
    assignments: Vec<(String, String)>,
    seeds: Option<&[u64]>,
) -> Vec<ExperimentPlan> {
    let others: Vec<(String, String)> = assignments
        .iter()
        .filter(|(k, _)| k != SEED_KEY)
        .cloned()
        .collect();
    let group = run_name(sweep, &others);
    let point = |plan: ExperimentPlan, assignments: Vec<(String, String)>| ExperimentPlan {
        name: run_name(sweep, &assignments),
        group: group.clone(),
        sweep: Some(SweepPoint {
            sweep: sweep.to_string(),
            assignments,
        }),
        ..plan
    };
    match seeds {
        Some(seeds) if others.len() == assignments.len() => seeds
            .iter()
            .map(|&s| {
                let mut a = assignments.clone();
                a.push((SEED_KEY.to_string(), s.to_string()));
                let mut p = point(plan.clone(), a);
                p.seed = s;
                p
            })
            .collect(),
        // Without a seed axis and repeats the group name is the run name.
        _ => vec![point(plan, assignments)],
    }
}
