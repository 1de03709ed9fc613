//! Run groups for the dashboard: rows of `run_summary` → `crate::stats`
//! (the same aggregation as `runs list --groups` and `runs compare gA gB`)
//! → the view types.

use clickprompt_tui::{
    GroupComparison, GroupSummary, MeanSd, MetricComparison, PairedDiff, SeedDiff,
};

use crate::stats::{self, Member};
use crate::store::Better;

/// The member columns of `run_summary` the dashboard reads for groups.
pub const MEMBER_SQL: &str =
    "SELECT s.id, s.seed, s.status, s.group_id, s.group_name, s.experiment,
        s.test_auc, s.test_logloss, s.best_valid_auc
   FROM run_summary s WHERE s.group_id IS NOT NULL";

/// One run row of a group.
pub struct Row {
    pub group_id: i64,
    pub group: String,
    pub experiment: String,
    pub member: Member,
}

fn mean_sd(m: &stats::MeanSd) -> MeanSd {
    MeanSd {
        n: m.n,
        mean: m.mean,
        sd: m.sd,
    }
}

/// Aggregates one group's rows (all of the same group, non-empty).
pub fn summary(rows: &[&Row]) -> Option<GroupSummary> {
    let first = rows.first()?;
    let members: Vec<Member> = rows.iter().map(|r| r.member.clone()).collect();
    let g = stats::group_stats(&members, &stats::default_metrics());
    let metric = |key: &str| {
        g.metrics
            .iter()
            .find(|m| m.metric == key)
            .map(|m| mean_sd(&m.stats))
            .unwrap_or_default()
    };
    Some(GroupSummary {
        id: first.group_id,
        name: first.group.clone(),
        experiment: first.experiment.clone(),
        runs: g.runs,
        finished: g.finished,
        seeds: g.seeds.clone(),
        test_auc: metric("test_auc"),
        test_logloss: metric("test_logloss"),
        best_valid_auc: metric("best_valid_auc"),
    })
}

/// Every group among `rows`.
pub fn summaries(rows: &[Row]) -> Vec<GroupSummary> {
    let mut ids: Vec<i64> = rows.iter().map(|r| r.group_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .filter_map(|id| {
            let members: Vec<&Row> = rows.iter().filter(|r| r.group_id == id).collect();
            summary(&members)
        })
        .collect()
}

/// Group `b` against group `a`, paired by seed.
pub fn comparison(rows: &[Row], a: i64, b: i64) -> Result<GroupComparison, String> {
    let of = |id: i64| -> Result<(GroupSummary, Vec<Member>), String> {
        let members: Vec<&Row> = rows.iter().filter(|r| r.group_id == id).collect();
        let s = summary(&members).ok_or_else(|| format!("no group g{id}"))?;
        Ok((s, members.iter().map(|r| r.member.clone()).collect()))
    };
    let ((sa, ma), (sb, mb)) = (of(a)?, of(b)?);
    let metrics = stats::default_metrics();
    let compared = stats::compare_groups(&ma, &mb, &metrics);
    Ok(GroupComparison {
        a: sa,
        b: sb,
        metrics: compared
            .iter()
            .zip(&metrics)
            .map(|(c, m)| MetricComparison {
                label: c.label.clone(),
                higher_is_better: match m.better {
                    Better::Higher => Some(true),
                    Better::Lower => Some(false),
                    Better::Neither => None,
                },
                a: mean_sd(&c.a),
                b: mean_sd(&c.b),
                paired: PairedDiff {
                    n: c.paired.n,
                    mean: c.paired.mean,
                    se: c.paired.se,
                    b_better: c.paired.b_better,
                    a_better: c.paired.a_better,
                    ties: c.paired.ties,
                    per_seed: c
                        .paired
                        .rows
                        .iter()
                        .map(|r| SeedDiff {
                            seed: r.seed,
                            a_run: r.a_run,
                            b_run: r.b_run,
                            a: r.a,
                            b: r.b,
                            diff: r.diff,
                        })
                        .collect(),
                },
            })
            .collect(),
    })
}
