//! A group's runs reduced to one value per seed, its mean ± sd per metric,
//! and two groups compared seed by seed.
//!
//! Per seed the latest FINISHED run counts (a seed re-run after a change
//! replaces the earlier one; failed, interrupted and running runs never
//! count). Callers map their rows into [`Member`]s, so the database reader,
//! the CLI and the dashboard all aggregate the same way.

use serde::Serialize;

use super::{better_word, MeanSd, PairedDiff, PairedRow};
use crate::store::Better;

/// A metric compared across seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The field name (`test_auc`, `joint.valid_auc`): JSON key and `--metric` spelling.
    pub key: String,
    /// For tables (`test AUC`).
    pub label: String,
    pub better: Better,
}

impl Metric {
    pub fn new(key: &str, label: &str, better: Better) -> Metric {
        Metric {
            key: key.to_string(),
            label: label.to_string(),
            better,
        }
    }
}

/// The metrics of `runs list --groups` and of a group comparison: the run
/// summary's final-stage figures.
pub fn default_metrics() -> Vec<Metric> {
    vec![
        Metric::new("test_auc", "test AUC", Better::Higher),
        Metric::new("test_logloss", "test LogLoss", Better::Lower),
        Metric::new("best_valid_auc", "best valid AUC", Better::Higher),
    ]
}

/// One run of a group, as the statistics need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub run_id: i64,
    pub seed: u64,
    /// Status FINISHED.
    pub finished: bool,
    /// One value per metric, in the order of the metric list.
    pub values: Vec<Option<f64>>,
}

/// The run that counts for each seed: the latest finished one (highest id),
/// by ascending seed.
pub fn per_seed(members: &[Member]) -> Vec<&Member> {
    let mut best: Vec<&Member> = Vec::new();
    for m in members.iter().filter(|m| m.finished) {
        match best.iter_mut().find(|b| b.seed == m.seed) {
            Some(b) if b.run_id < m.run_id => *b = m,
            Some(_) => {}
            None => best.push(m),
        }
    }
    best.sort_by_key(|m| m.seed);
    best
}

/// One metric of a group over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricStats {
    pub metric: String,
    /// "higher", "lower" or "none".
    pub better: &'static str,
    #[serde(flatten)]
    pub stats: MeanSd,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupStats {
    /// Runs in the group (any status).
    pub runs: usize,
    /// Of which FINISHED.
    pub finished: usize,
    /// Seeds with a finished run, ascending.
    pub seeds: Vec<u64>,
    /// The run counted for each of those seeds, in the same order.
    pub seed_runs: Vec<i64>,
    pub metrics: Vec<MetricStats>,
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

fn values_of(chosen: &[&Member], i: usize) -> Vec<f64> {
    chosen
        .iter()
        .filter_map(|m| finite(m.values.get(i).copied().flatten()))
        .collect()
}

pub fn group_stats(members: &[Member], metrics: &[Metric]) -> GroupStats {
    let chosen = per_seed(members);
    GroupStats {
        runs: members.len(),
        finished: members.iter().filter(|m| m.finished).count(),
        seeds: chosen.iter().map(|m| m.seed).collect(),
        seed_runs: chosen.iter().map(|m| m.run_id).collect(),
        metrics: metrics
            .iter()
            .enumerate()
            .map(|(i, m)| MetricStats {
                metric: m.key.clone(),
                better: better_word(m.better),
                stats: MeanSd::of(&values_of(&chosen, i)),
            })
            .collect(),
    }
}

/// One metric of two groups: each group's mean ± sd and the paired difference B − A.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricComparison {
    pub metric: String,
    pub label: String,
    /// "higher", "lower" or "none".
    pub better: &'static str,
    pub a: MeanSd,
    pub b: MeanSd,
    pub paired: PairedDiff,
}

/// Compares group B against group A per metric, pairing runs by seed.
pub fn compare_groups(a: &[Member], b: &[Member], metrics: &[Metric]) -> Vec<MetricComparison> {
    let (ca, cb) = (per_seed(a), per_seed(b));
    metrics
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let value = |x: &Member| finite(x.values.get(i).copied().flatten());
            let rows: Vec<PairedRow> = ca
                .iter()
                .filter_map(|x| {
                    let y = cb.iter().find(|y| y.seed == x.seed)?;
                    let (va, vb) = (value(x)?, value(y)?);
                    Some(PairedRow {
                        seed: x.seed,
                        a_run: x.run_id,
                        b_run: y.run_id,
                        a: va,
                        b: vb,
                        diff: vb - va,
                    })
                })
                .collect();
            MetricComparison {
                metric: m.key.clone(),
                label: m.label.clone(),
                better: better_word(m.better),
                a: MeanSd::of(&values_of(&ca, i)),
                b: MeanSd::of(&values_of(&cb, i)),
                paired: PairedDiff::of(rows, m.better),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(run_id: i64, seed: u64, finished: bool, auc: Option<f64>) -> Member {
        Member {
            run_id,
            seed,
            finished,
            values: vec![auc, auc.map(|a| 1.0 - a)],
        }
    }

    fn metrics() -> Vec<Metric> {
        vec![
            Metric::new("test_auc", "test AUC", Better::Higher),
            Metric::new("test_logloss", "test LogLoss", Better::Lower),
        ]
    }

    #[test]
    fn the_latest_finished_run_counts_per_seed() {
        let members = vec![
            m(1, 2, true, Some(0.60)),
            m(2, 1, true, Some(0.70)),
            m(3, 2, true, Some(0.72)),  // re-run of seed 2 replaces run 1
            m(4, 3, false, Some(0.99)), // failed: never counts
            m(5, 1, false, None),       // running re-run: run 2 still counts
        ];
        let chosen: Vec<i64> = per_seed(&members).iter().map(|m| m.run_id).collect();
        assert_eq!(chosen, [2, 3]);
        let g = group_stats(&members, &metrics());
        assert_eq!((g.runs, g.finished), (5, 3));
        assert_eq!(g.seeds, [1, 2]);
        assert_eq!(g.seed_runs, [2, 3]);
        assert_eq!(g.metrics[0].stats.n, 2);
        assert!((g.metrics[0].stats.mean.unwrap() - 0.71).abs() < 1e-12);
        assert_eq!(g.metrics[1].better, "lower");
    }

    #[test]
    fn comparison_pairs_only_shared_seeds() {
        let a = vec![
            m(1, 1, true, Some(0.70)),
            m(2, 2, true, Some(0.72)),
            m(3, 3, true, Some(0.71)),
            m(4, 4, true, Some(0.50)), // B has no seed 4
        ];
        let b = vec![
            m(11, 1, true, Some(0.73)),
            m(12, 2, true, Some(0.72)),
            m(13, 3, true, Some(0.75)),
            m(14, 9, true, Some(0.90)), // A has no seed 9
        ];
        let c = compare_groups(&a, &b, &metrics());
        let auc = &c[0];
        assert_eq!((auc.a.n, auc.b.n, auc.paired.n), (4, 4, 3));
        assert!((auc.paired.mean.unwrap() - 0.07 / 3.0).abs() < 1e-12);
        assert_eq!(
            auc.paired
                .rows
                .iter()
                .map(|r| (r.seed, r.a_run, r.b_run))
                .collect::<Vec<_>>(),
            [(1, 1, 11), (2, 2, 12), (3, 3, 13)]
        );
        assert_eq!(auc.paired.b_better, 2);
        // Log loss = 1 − AUC here: B lower on two seeds, so B better on two.
        let ll = &c[1];
        assert_eq!((ll.paired.b_better, ll.paired.a_better), (2, 0));
        assert!(ll.paired.mean.unwrap() < 0.0);
    }

    #[test]
    fn missing_or_non_finite_values_drop_out() {
        let a = vec![m(1, 1, true, Some(0.7)), m(2, 2, true, None)];
        let b = vec![m(3, 1, true, Some(f64::NAN)), m(4, 2, true, Some(0.8))];
        let c = compare_groups(&a, &b, &metrics());
        assert_eq!((c[0].a.n, c[0].b.n, c[0].paired.n), (1, 1, 0));
    }
}
