//! Statistics over repeats: mean ± sample standard deviation, and the paired
//! difference of two configurations run with the same seeds (its mean,
//! standard error and sign count). One implementation for `runs list
//! --groups`, `runs compare gA gB`, `run`'s summary and the dashboard.
//!
//! Pairing by seed removes what the seed does to both configurations alike
//! (initialisation, data order, dropout), so the paired difference is usually
//! far more precise than the difference of the two means.

mod groups;

pub use groups::{
    compare_groups, default_metrics, group_stats, per_seed, GroupStats, Member, Metric,
    MetricComparison, MetricStats,
};

use serde::Serialize;

use crate::store::Better;

/// Arithmetic mean; `None` for no values.
pub fn mean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    Some(xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Sample standard deviation (divisor n − 1); `None` below two values.
pub fn sample_sd(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs)?;
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (xs.len() - 1) as f64).sqrt())
}

/// Standard error of the mean, sd / √n; `None` below two values.
pub fn standard_error(xs: &[f64]) -> Option<f64> {
    sample_sd(xs).map(|sd| sd / (xs.len() as f64).sqrt())
}

/// `n` values summarised as mean ± sample sd.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeanSd {
    pub n: usize,
    pub mean: Option<f64>,
    /// Sample standard deviation (n − 1); null below two values.
    pub sd: Option<f64>,
}

impl MeanSd {
    pub fn of(xs: &[f64]) -> MeanSd {
        MeanSd {
            n: xs.len(),
            mean: mean(xs),
            sd: sample_sd(xs),
        }
    }

    /// `0.7100 ± 0.0100`, `0.7100` for one value, `-` for none.
    pub fn display(&self, decimals: usize) -> String {
        match (self.mean, self.sd) {
            (Some(m), Some(s)) => format!("{m:.decimals$} ± {s:.decimals$}"),
            (Some(m), None) => format!("{m:.decimals$}"),
            _ => "-".into(),
        }
    }
}

/// One seed's values in both configurations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedRow {
    pub seed: u64,
    pub a_run: i64,
    pub b_run: i64,
    pub a: f64,
    pub b: f64,
    /// b − a.
    pub diff: f64,
}

/// The paired difference B − A over the seeds both have.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedDiff {
    /// Seeds present in both.
    pub n: usize,
    /// Mean of b − a.
    pub mean: Option<f64>,
    /// Sample sd of b − a (n − 1).
    pub sd: Option<f64>,
    /// Standard error of the mean difference, sd / √n.
    pub se: Option<f64>,
    /// Seeds where B is better than A in the metric's direction (for a
    /// metric without one: where B is higher).
    pub b_better: usize,
    /// Seeds where A is better.
    pub a_better: usize,
    /// Seeds with equal values.
    pub ties: usize,
    /// Per seed, ascending.
    pub rows: Vec<PairedRow>,
}

impl PairedDiff {
    /// Pairs `rows` (already matched by seed); `better` orients the sign count.
    pub fn of(mut rows: Vec<PairedRow>, better: Better) -> PairedDiff {
        rows.sort_by_key(|r| r.seed);
        let diffs: Vec<f64> = rows.iter().map(|r| r.diff).collect();
        let (mut b_better, mut a_better, mut ties) = (0, 0, 0);
        for &d in &diffs {
            let oriented = if better == Better::Lower { -d } else { d };
            if oriented > 0.0 {
                b_better += 1;
            } else if oriented < 0.0 {
                a_better += 1;
            } else {
                ties += 1;
            }
        }
        PairedDiff {
            n: diffs.len(),
            mean: mean(&diffs),
            sd: sample_sd(&diffs),
            se: standard_error(&diffs),
            b_better,
            a_better,
            ties,
            rows,
        }
    }

    /// The mean difference in standard errors (`None` without a spread).
    pub fn t(&self) -> Option<f64> {
        match (self.mean, self.se) {
            (Some(m), Some(se)) if se > 0.0 => Some(m / se),
            _ => None,
        }
    }
}

/// "higher", "lower" or "none": which way a metric is better, in words (JSON, tables).
pub fn better_word(b: Better) -> &'static str {
    match b {
        Better::Higher => "higher",
        Better::Lower => "lower",
        Better::Neither => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn mean_and_sample_sd_by_hand() {
        assert_eq!(mean(&[]), None);
        assert!(close(mean(&[0.70, 0.72, 0.71]).unwrap(), 0.71));
        // Deviations −0.01, 0.01, 0: ss = 2e-4, / (3 − 1) = 1e-4, √ = 0.01.
        assert!(close(sample_sd(&[0.70, 0.72, 0.71]).unwrap(), 0.01));
        assert_eq!(sample_sd(&[0.5]), None);
        // n − 1, not n: two values 0 and 2 have sd √2, not 1.
        assert!(close(sample_sd(&[0.0, 2.0]).unwrap(), 2f64.sqrt()));
        assert!(close(standard_error(&[0.0, 2.0]).unwrap(), 1.0));
        let m = MeanSd::of(&[0.70, 0.72, 0.71]);
        assert_eq!(m.n, 3);
        assert_eq!(m.display(4), "0.7100 ± 0.0100");
        assert_eq!(MeanSd::of(&[0.5]).display(3), "0.500");
        assert_eq!(MeanSd::of(&[]).display(3), "-");
    }

    fn row(seed: u64, a: f64, b: f64) -> PairedRow {
        PairedRow {
            seed,
            a_run: seed as i64,
            b_run: 10 + seed as i64,
            a,
            b,
            diff: b - a,
        }
    }

    #[test]
    fn paired_difference_by_hand() {
        // A 0.70 0.72 0.71, B 0.73 0.72 0.75: diffs 0.03, 0.00, 0.04.
        let p = PairedDiff::of(
            vec![row(3, 0.71, 0.75), row(1, 0.70, 0.73), row(2, 0.72, 0.72)],
            Better::Higher,
        );
        assert_eq!(p.n, 3);
        assert_eq!(p.rows.iter().map(|r| r.seed).collect::<Vec<_>>(), [1, 2, 3]);
        let mean = 0.07 / 3.0;
        assert!((p.mean.unwrap() - mean).abs() < 1e-12);
        // Deviations 0.00667, −0.02333, 0.01667: ss = 8.6667e-4, /2, √.
        let sd = ((0.03f64 - mean).powi(2) + mean.powi(2) + (0.04 - mean).powi(2)) / 2.0;
        let sd = sd.sqrt();
        assert!((p.sd.unwrap() - sd).abs() < 1e-12);
        assert!((p.sd.unwrap() - 0.020_816_659_994_661_33).abs() < 1e-9);
        assert!((p.se.unwrap() - sd / 3f64.sqrt()).abs() < 1e-12);
        assert!((p.se.unwrap() - 0.012_018_504_251_546_63).abs() < 1e-9);
        assert_eq!((p.b_better, p.a_better, p.ties), (2, 0, 1));
        assert!((p.t().unwrap() - mean / (sd / 3f64.sqrt())).abs() < 1e-9);
    }

    #[test]
    fn sign_count_follows_the_direction() {
        // Log loss: lower is better, so B's smaller values win.
        let p = PairedDiff::of(
            vec![row(1, 0.50, 0.45), row(2, 0.50, 0.55), row(3, 0.5, 0.4)],
            Better::Lower,
        );
        assert_eq!((p.b_better, p.a_better, p.ties), (2, 1, 0));
        let one = PairedDiff::of(vec![row(1, 0.5, 0.6)], Better::Higher);
        assert_eq!((one.n, one.sd, one.se, one.t()), (1, None, None, None));
        let none = PairedDiff::of(vec![], Better::Higher);
        assert_eq!((none.n, none.mean), (0, None));
    }
}
