//! `runs list --groups` and `runs compare gA gB`: runs aggregated over their
//! seeds (a group is a run name without its seed; `g<id>` on the command line).

use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;

use super::table::{Cell, Paint, Style, Table};
use super::{indent, json_line};
use crate::error::invalid;
use crate::stats::{self, GroupStats, Member, Metric, MetricComparison};
use crate::store::{Better, GroupInfo, RunSummary, Store};

/// A group on the command line: `g12`, or its name.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupRef {
    Id(i64),
    Name(String),
}

impl GroupRef {
    /// `g12` → id 12; anything else that is not a run id is a group name.
    pub fn parse(arg: &str) -> Option<GroupRef> {
        if arg.parse::<i64>().is_ok() {
            return None;
        }
        match arg
            .strip_prefix('g')
            .or_else(|| arg.strip_prefix('G'))
            .and_then(|n| n.parse::<i64>().ok())
        {
            Some(id) => Some(GroupRef::Id(id)),
            None => Some(GroupRef::Name(arg.to_string())),
        }
    }

    fn resolve(&self, store: &Store) -> Result<GroupInfo> {
        match self {
            GroupRef::Id(id) => store.group(*id),
            GroupRef::Name(name) => {
                let found = store.groups_named(name)?;
                match found.as_slice() {
                    [one] => Ok(one.clone()),
                    [] => Err(invalid(format!(
                        "no run group named `{name}` in {} (`clickprompt runs list --groups` lists them; \
                         run ids are numbers, groups `g<id>` or a name)",
                        store.target()
                    ))),
                    many => {
                        let ids: Vec<String> = many
                            .iter()
                            .map(|g| {
                                format!(
                                    "g{} (experiment {}, since {})",
                                    g.id,
                                    g.experiment.as_deref().unwrap_or("-"),
                                    super::fmt_time(&g.created_at)
                                )
                            })
                            .collect();
                        Err(invalid(format!(
                            "{} groups are named `{name}` (the experiment file changed between them): {}; \
                             name one by its id",
                            many.len(),
                            ids.join(", ")
                        )))
                    }
                }
            }
        }
    }
}

/// A run as the statistics see it, with the default metrics' values.
pub fn member(r: &RunSummary) -> Member {
    Member {
        run_id: r.id,
        seed: r.seed,
        finished: r.status == "FINISHED",
        values: vec![r.test_auc, r.test_logloss, r.best_valid_auc],
    }
}

/// One line of `runs list --groups --json`.
#[derive(Debug, Serialize)]
pub struct GroupLine {
    pub group_id: i64,
    pub group: String,
    pub experiment: String,
    /// Every run listed for the group (after the filters), oldest first.
    pub run_ids: Vec<i64>,
    #[serde(flatten)]
    pub stats: GroupStats,
}

/// Buckets runs by group (runs without one are skipped: every run has one
/// since migration 0003) and aggregates each bucket.
pub fn group_lines(runs: &[RunSummary]) -> Vec<GroupLine> {
    let metrics = stats::default_metrics();
    let mut buckets: BTreeMap<i64, Vec<&RunSummary>> = BTreeMap::new();
    for r in runs {
        if let Some(g) = r.group_id {
            buckets.entry(g).or_default().push(r);
        }
    }
    buckets
        .into_iter()
        .map(|(id, mut rs)| {
            rs.sort_by_key(|r| r.id);
            let members: Vec<Member> = rs.iter().map(|r| member(r)).collect();
            GroupLine {
                group_id: id,
                group: rs[0]
                    .group_name
                    .clone()
                    .unwrap_or_else(|| rs[0].name.clone()),
                experiment: rs[0].experiment.clone(),
                run_ids: rs.iter().map(|r| r.id).collect(),
                stats: stats::group_stats(&members, &metrics),
            }
        })
        .collect()
}

/// Orders group lines: newest group first, or by a metric's mean (best first
/// unless `descending` says otherwise; groups without a value last).
pub fn sort_groups(
    lines: &mut [GroupLine],
    sort: Option<&str>,
    descending: Option<bool>,
) -> Result<()> {
    let Some(key) = sort else {
        let desc = descending.unwrap_or(true);
        lines.sort_by(|a, b| {
            let o = a.group_id.cmp(&b.group_id);
            if desc {
                o.reverse()
            } else {
                o
            }
        });
        return Ok(());
    };
    let metrics = stats::default_metrics();
    let Some(i) = metrics.iter().position(|m| m.key == key) else {
        let names: Vec<&str> = metrics.iter().map(|m| m.key.as_str()).collect();
        return Err(invalid(format!(
            "invalid --sort `{key}` with --groups: groups sort by the mean of {}",
            names.join(", ")
        )));
    };
    let desc = descending.unwrap_or(metrics[i].better == Better::Higher);
    lines.sort_by(|a, b| {
        let (x, y) = (a.stats.metrics[i].stats.mean, b.stats.metrics[i].stats.mean);
        match (x, y) {
            (Some(x), Some(y)) => {
                let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                if desc {
                    o.reverse()
                } else {
                    o
                }
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then(b.group_id.cmp(&a.group_id))
    });
    Ok(())
}

fn seeds_text(seeds: &[u64]) -> String {
    if seeds.is_empty() {
        return "-".into();
    }
    let s: Vec<String> = seeds.iter().map(u64::to_string).collect();
    s.join(",")
}

/// `mean ± sd`, with `(n=k)` when fewer seeds than the group counts have a value.
fn mean_sd_cell(m: &stats::MeanSd, seeds: usize) -> String {
    let text = m.display(4);
    if m.n > 0 && m.n < seeds {
        format!("{text} (n={})", m.n)
    } else {
        text
    }
}

pub fn groups_table(lines: &[GroupLine], style: Style) -> String {
    let mut t = Table::new(
        &[
            "GROUP",
            "EXPERIMENT",
            "NAME",
            "RUNS",
            "SEEDS",
            "TEST AUC",
            "TEST LOGLOSS",
            "BEST VALID AUC",
        ],
        &[0, 3, 5, 6, 7],
    );
    for g in lines {
        let n = g.stats.seeds.len();
        let mut row: Vec<Cell> = vec![
            format!("g{}", g.group_id).into(),
            g.experiment.clone().into(),
            g.group.clone().into(),
            format!("{}/{}", g.stats.finished, g.stats.runs).into(),
            seeds_text(&g.stats.seeds).into(),
        ];
        row.extend(
            g.stats
                .metrics
                .iter()
                .map(|m| Cell::from(mean_sd_cell(&m.stats, n))),
        );
        t.push(row);
    }
    t.render(style)
}

pub fn list(lines: &[GroupLine], json: bool, out: &mut dyn Write, style: Style) -> Result<()> {
    if json {
        return json_line(out, &lines);
    }
    write!(out, "{}", groups_table(lines, style))?;
    writeln!(
        out,
        "RUNS: finished/total; metrics: mean ± sample sd over seeds (the latest finished run per seed)"
    )?;
    Ok(())
}

// ---------------------------------------------------------------- compare

/// One side of a group comparison.
#[derive(Debug, Serialize)]
pub struct GroupSide {
    pub group_id: i64,
    pub group: String,
    pub experiment: Option<String>,
    pub run_ids: Vec<i64>,
    #[serde(flatten)]
    pub stats: GroupStats,
}

/// A param whose value differs between the groups' runs.
#[derive(Debug, Serialize)]
pub struct ParamDiff {
    pub key: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

/// `runs compare gA gB --json`.
#[derive(Debug, Serialize)]
pub struct GroupComparisonDoc {
    pub a: GroupSide,
    pub b: GroupSide,
    /// Differences of B's runs from A's (seed and names left out).
    pub params: Vec<ParamDiff>,
    /// Per metric: both groups' mean ± sd over their seeds and the paired
    /// difference B − A over the seeds both have.
    pub metrics: Vec<MetricComparison>,
}

/// The metrics to compare: the defaults, or `--metric` fields.
fn metric_list(store: &Store, fields: &[String]) -> Result<Vec<Metric>> {
    if fields.is_empty() {
        return Ok(stats::default_metrics());
    }
    let defaults = stats::default_metrics();
    fields
        .iter()
        .map(|f| {
            if let Some(m) = defaults.iter().find(|m| &m.key == f) {
                return Ok(m.clone());
            }
            Ok(Metric::new(f, f, store.metric_better(f)?))
        })
        .collect()
}

fn members(store: &Store, runs: &[RunSummary], metrics: &[Metric]) -> Result<Vec<Member>> {
    runs.iter()
        .map(|r| {
            let base = member(r);
            let values = metrics
                .iter()
                .map(|m| match m.key.as_str() {
                    "test_auc" => Ok(r.test_auc),
                    "test_logloss" => Ok(r.test_logloss),
                    "best_valid_auc" => Ok(r.best_valid_auc),
                    other => store.field_number(r.id, other),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Member { values, ..base })
        })
        .collect()
}

/// Keys that always differ between groups or runs and say nothing about the configuration.
const NOT_COMPARED: &[&str] = &["name", "group", "seed"];

fn param_diffs(store: &Store, a: Option<i64>, b: Option<i64>) -> Result<Vec<ParamDiff>> {
    let get = |id: Option<i64>| -> Result<BTreeMap<String, String>> {
        Ok(match id {
            Some(id) => store.params(id)?.into_iter().collect(),
            None => BTreeMap::new(),
        })
    };
    let (pa, pb) = (get(a)?, get(b)?);
    let mut keys: Vec<&String> = pa.keys().chain(pb.keys()).collect();
    keys.sort();
    keys.dedup();
    Ok(keys
        .into_iter()
        .filter(|k| !NOT_COMPARED.contains(&k.as_str()) && !k.starts_with("sweep."))
        .filter(|k| pa.get(*k) != pb.get(*k))
        .map(|k| ParamDiff {
            key: k.clone(),
            a: pa.get(k).cloned(),
            b: pb.get(k).cloned(),
        })
        .collect())
}

/// Builds the comparison of group B against group A.
pub fn comparison(
    store: &Store,
    a: &GroupRef,
    b: &GroupRef,
    fields: &[String],
) -> Result<GroupComparisonDoc> {
    let metrics = metric_list(store, fields)?;
    let (ga, gb) = (a.resolve(store)?, b.resolve(store)?);
    let (ra, rb) = (store.group_runs(ga.id)?, store.group_runs(gb.id)?);
    let (ma, mb) = (
        members(store, &ra, &metrics)?,
        members(store, &rb, &metrics)?,
    );
    let side = |g: &GroupInfo, runs: &[RunSummary], m: &[Member]| GroupSide {
        group_id: g.id,
        group: g.name.clone(),
        experiment: g.experiment.clone(),
        run_ids: runs.iter().map(|r| r.id).collect(),
        stats: stats::group_stats(m, &metrics),
    };
    let (sa, sb) = (side(&ga, &ra, &ma), side(&gb, &rb, &mb));
    // The configurations: the latest counted run of each (any run when none finished).
    let repr = |s: &GroupSide| s.stats.seed_runs.last().or(s.run_ids.last()).copied();
    let params = param_diffs(store, repr(&sa), repr(&sb))?;
    Ok(GroupComparisonDoc {
        metrics: stats::compare_groups(&ma, &mb, &metrics),
        a: sa,
        b: sb,
        params,
    })
}

fn signed(v: Option<f64>) -> String {
    v.map(|x| format!("{x:+.4}")).unwrap_or_else(|| "-".into())
}

pub fn print_comparison(doc: &GroupComparisonDoc, out: &mut dyn Write, style: Style) -> Result<()> {
    let b = |k: &str| style.paint(Paint::Bold, k);
    for (label, s) in [("A", &doc.a), ("B", &doc.b)] {
        writeln!(
            out,
            "{}  g{} {} (experiment {}): {} run(s), {} finished, seeds {}",
            b(label),
            s.group_id,
            s.group,
            s.experiment.as_deref().unwrap_or("-"),
            s.stats.runs,
            s.stats.finished,
            seeds_text(&s.stats.seeds)
        )?;
    }

    writeln!(out, "\n{} ({})", b("params that differ"), doc.params.len())?;
    if doc.params.is_empty() {
        writeln!(out, "  (none besides the seeds)")?;
    } else {
        let mut t = Table::new(&["KEY", "A", "B"], &[]);
        for p in &doc.params {
            t.push(vec![
                p.key.clone().into(),
                p.a.clone().unwrap_or_else(|| "-".into()).into(),
                p.b.clone().unwrap_or_else(|| "-".into()).into(),
            ]);
        }
        write!(out, "{}", indent(&t.render(style)))?;
    }

    writeln!(
        out,
        "\n{}",
        b("metrics: mean ± sd over seeds; B − A paired by seed")
    )?;
    let mut t = Table::new(
        &[
            "METRIC",
            "BETTER",
            "A",
            "B",
            "B − A",
            "SE",
            "(B − A)/SE",
            "B BETTER",
        ],
        &[2, 3, 4, 5, 6],
    );
    for m in &doc.metrics {
        let p = &m.paired;
        let count = if p.n == 0 {
            "-".to_string()
        } else if p.ties > 0 {
            format!("{} of {} ({} tied)", p.b_better, p.n, p.ties)
        } else {
            format!("{} of {}", p.b_better, p.n)
        };
        let wins = p.b_better > p.a_better && m.better != "none";
        let loses = p.a_better > p.b_better && m.better != "none";
        t.push(vec![
            m.label.clone().into(),
            m.better.into(),
            m.a.display(4).into(),
            m.b.display(4).into(),
            signed(p.mean).into(),
            p.se.map(|x| format!("{x:.4}"))
                .unwrap_or_else(|| "-".into())
                .into(),
            p.t()
                .map(|x| format!("{x:+.2}"))
                .unwrap_or_else(|| "-".into())
                .into(),
            if wins {
                Cell::painted(count, Paint::Green)
            } else if loses {
                Cell::painted(count, Paint::Red)
            } else {
                Cell::from(count)
            },
        ]);
    }
    write!(out, "{}", indent(&t.render(style)))?;
    writeln!(
        out,
        "  BETTER: which direction wins; SE = sd(B − A)/√n; B BETTER: seeds where B beats A"
    )?;

    // Per seed: the runs paired and each metric's difference.
    let mut seeds: Vec<(u64, i64, i64)> = Vec::new();
    for m in &doc.metrics {
        for r in &m.paired.rows {
            if !seeds.iter().any(|s| s.0 == r.seed) {
                seeds.push((r.seed, r.a_run, r.b_run));
            }
        }
    }
    seeds.sort();
    writeln!(out, "\n{}", b("per seed (B − A)"))?;
    if seeds.is_empty() {
        writeln!(
            out,
            "  (no seed has a finished run with a value in both groups)"
        )?;
        return Ok(());
    }
    let mut head: Vec<String> = vec!["SEED".into(), "RUN A".into(), "RUN B".into()];
    head.extend(doc.metrics.iter().map(|m| m.label.to_uppercase()));
    let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
    let right: Vec<usize> = (0..head.len()).collect();
    let mut t = Table::new(&head_refs, &right);
    for (seed, ra, rb) in &seeds {
        let mut row: Vec<Cell> = vec![
            seed.to_string().into(),
            ra.to_string().into(),
            rb.to_string().into(),
        ];
        for m in &doc.metrics {
            let d = m.paired.rows.iter().find(|r| r.seed == *seed);
            row.push(signed(d.map(|r| r.diff)).into());
        }
        t.push(row);
    }
    write!(out, "{}", indent(&t.render(style)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_references() {
        assert_eq!(GroupRef::parse("g12"), Some(GroupRef::Id(12)));
        assert_eq!(GroupRef::parse("G3"), Some(GroupRef::Id(3)));
        assert_eq!(GroupRef::parse("12"), None);
        assert_eq!(
            GroupRef::parse("scratch"),
            Some(GroupRef::Name("scratch".into()))
        );
        assert_eq!(
            GroupRef::parse("sw[prompts=5]"),
            Some(GroupRef::Name("sw[prompts=5]".into()))
        );
        assert_eq!(GroupRef::parse("gx"), Some(GroupRef::Name("gx".into())));
    }

    #[test]
    fn mean_sd_cells_say_when_a_seed_lacks_a_value() {
        let m = stats::MeanSd::of(&[0.7, 0.72]);
        assert_eq!(mean_sd_cell(&m, 2), "0.7100 ± 0.0141");
        assert_eq!(mean_sd_cell(&m, 3), "0.7100 ± 0.0141 (n=2)");
        assert_eq!(seeds_text(&[1, 2, 3]), "1,2,3");
    }
}
