//! Stable run indexes: every run of a file (or of an `--experiment`
//! selection) has an index, its position in the plan expansion —
//! experiments in file order, then each sweep's points in the order the
//! sweep expands them. `run --point I` / `--points 3-7,9` run just those, so
//! a scheduler (a Slurm array, a Kubernetes indexed Job, GNU parallel) can
//! spread a sweep over machines with no coordinator: each task picks its
//! index, the same file gives the same runs everywhere.

use crate::error::invalid;

use super::ExperimentPlan;

/// A set of run indexes, as written after `--points`: `3`, `3-7`, `1,4,7`,
/// `0-3,8`. Ranges include both ends; the set is kept sorted and unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointSet(Vec<usize>);

impl PointSet {
    pub fn one(i: usize) -> PointSet {
        PointSet(vec![i])
    }

    /// Parses `--points`; the message names `flag` and the bad part.
    pub fn parse(flag: &str, text: &str) -> anyhow::Result<PointSet> {
        let bad = |part: &str, why: &str| {
            invalid(format!(
                "invalid {flag} `{text}`: {why} in `{part}` (write indexes and ranges like 3, 3-7 or 1,4,7)"
            ))
        };
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(bad(part, "an empty item"));
            }
            let num = |s: &str| -> anyhow::Result<usize> {
                s.trim().parse::<usize>().map_err(|_| {
                    bad(
                        part,
                        &format!("`{}` is not an index (0, 1, 2, …)", s.trim()),
                    )
                })
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if a > b {
                        return Err(bad(part, "the range runs backwards"));
                    }
                    out.extend(a..=b);
                }
                None => out.push(num(part)?),
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(PointSet(out))
    }

    pub fn indexes(&self) -> &[usize] {
        &self.0
    }
}

/// The plans at `points` (indexes into `plans`), with their indexes, or an
/// invalid-input error naming the first index out of range. `what` says
/// what `plans` is, for the message ("experiments/sweep.cp").
pub fn pick(
    plans: Vec<ExperimentPlan>,
    points: &PointSet,
    what: &str,
) -> anyhow::Result<Vec<(usize, ExperimentPlan)>> {
    let n = plans.len();
    if let Some(&bad) = points.indexes().iter().find(|&&i| i >= n) {
        let range = match n {
            0 => "no runs".to_string(),
            1 => "1 run (index 0)".to_string(),
            _ => format!("{n} runs (indexes 0-{})", n - 1),
        };
        return Err(invalid(format!(
            "point {bad} is out of range: {what} has {range}; `clickprompt plan FILE --list` shows them"
        )));
    }
    let mut plans: Vec<Option<ExperimentPlan>> = plans.into_iter().map(Some).collect();
    Ok(points
        .indexes()
        .iter()
        .filter_map(|&i| plans[i].take().map(|p| (i, p)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_indexes_ranges_and_lists() {
        let p = |s: &str| PointSet::parse("--points", s).map(|p| p.indexes().to_vec());
        assert_eq!(p("3").unwrap(), vec![3]);
        assert_eq!(p("3-7").unwrap(), vec![3, 4, 5, 6, 7]);
        assert_eq!(p("1,4,7").unwrap(), vec![1, 4, 7]);
        assert_eq!(p(" 7, 0-2 ,1").unwrap(), vec![0, 1, 2, 7]);
        assert_eq!(p("5-5").unwrap(), vec![5]);
        let e = p("7-3").unwrap_err().to_string();
        assert!(e.contains("the range runs backwards in `7-3`"), "{e}");
        let e = p("1,,2").unwrap_err().to_string();
        assert!(e.contains("an empty item"), "{e}");
        let e = p("x").unwrap_err().to_string();
        assert!(e.contains("`x` is not an index"), "{e}");
        let e = p("-1").unwrap_err();
        assert_eq!(crate::error::exit_code(&e), 2);
        assert!(e.to_string().contains("invalid --points `-1`"), "{e}");
    }
}
