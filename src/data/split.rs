//! Train/validation/test splits: by time (stable sort on a numeric column)
//! or seeded random. Both are deterministic.

use anyhow::Result;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::raw::{parse_numbers, RawTable};
use crate::error::invalid;
use crate::plan::SplitPlan;

/// Row indices of (train, valid, test). By time: each part in time order.
pub fn split(table: &RawTable, plan: &SplitPlan, dataset: &str) -> Result<[Vec<u32>; 3]> {
    let n = table.rows;
    let (order, ratios) = match plan {
        SplitPlan::ByTime { column, ratios } => {
            let who = format!("the by-time split of dataset '{dataset}'");
            let col = table.require(column, &who)?;
            let nums = parse_numbers(table, col, column, &who)?;
            if let Some(code) = nums.iter().position(Option::is_none) {
                let at = col
                    .first_row_with(code as u32)
                    .map(|r| table.locate(r))
                    .unwrap_or_default();
                return Err(invalid(format!(
                    "{at}: column '{column}' (read by {who}) is empty or missing"
                )));
            }
            let key: Vec<f64> = nums.into_iter().flatten().collect();
            let mut order: Vec<u32> = (0..n as u32).collect();
            // Stable: equal timestamps keep file order.
            order.sort_by(|&a, &b| {
                let (ka, kb) = (
                    key[col.codes[a as usize] as usize],
                    key[col.codes[b as usize] as usize],
                );
                ka.total_cmp(&kb)
            });
            (order, ratios)
        }
        SplitPlan::Random { seed, ratios } => {
            let mut order: Vec<u32> = (0..n as u32).collect();
            order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(*seed));
            (order, ratios)
        }
    };
    let [a, b, c] = cut_points(n, ratios)?;
    let _ = c;
    Ok([
        order[..a].to_vec(),
        order[a..b].to_vec(),
        order[b..].to_vec(),
    ])
}

/// Boundaries for `ratios` (any positive scale, e.g. 8:1:1): train = rows
/// `[0, a)`, valid = `[a, b)`, test = `[b, n)`; each rounded to the nearest row.
pub fn cut_points(n: usize, ratios: &[f64; 3]) -> Result<[usize; 3]> {
    let sum: f64 = ratios.iter().sum();
    if ratios.iter().any(|r| !r.is_finite() || *r < 0.0) || sum <= 0.0 || ratios[0] <= 0.0 {
        return Err(invalid(format!(
            "split ratios {ratios:?} must be non-negative with a positive training share"
        )));
    }
    let a = ((n as f64) * ratios[0] / sum).round() as usize;
    let b = ((n as f64) * (ratios[0] + ratios[1]) / sum).round() as usize;
    Ok([a.min(n), b.min(n), n])
}

#[cfg(test)]
mod tests {
    #[test]
    fn cut_points_round_to_rows() {
        assert_eq!(
            super::cut_points(100_000, &[8.0, 1.0, 1.0]).unwrap(),
            [80_000, 90_000, 100_000]
        );
        assert_eq!(super::cut_points(7, &[0.8, 0.1, 0.1]).unwrap(), [6, 6, 7]);
        assert!(super::cut_points(7, &[0.0, 1.0, 1.0]).is_err());
    }
}
