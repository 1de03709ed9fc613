//! TensorBoard's scalar smoothing: an exponential moving average debiased for
//! the zero start, so the first points are not dragged towards 0.

/// Smooths `(step, value)` points with weight `w` in [0, 1). Non-finite values
/// are skipped (they neither appear nor disturb the average), as are points
/// with a non-finite step. A constant series is returned unchanged, as
/// TensorBoard does, so rounding cannot invent a slope.
pub fn ema(points: &[(f64, f64)], weight: f64) -> Vec<(f64, f64)> {
    let w = if weight.is_finite() {
        weight.clamp(0.0, 0.999)
    } else {
        0.0
    };
    let finite: Vec<(f64, f64)> = finite_points(points);
    let constant = finite.windows(2).all(|p| p[0].1 == p[1].1);
    if constant {
        return finite;
    }
    let mut last = 0.0;
    // w^n, kept as a running product (cheaper than powi per point).
    let mut wn = 1.0;
    finite
        .into_iter()
        .map(|(x, y)| {
            last = last * w + (1.0 - w) * y;
            wn *= w;
            let debias = 1.0 - wn;
            (x, if debias > 0.0 { last / debias } else { y })
        })
        .collect()
}

/// The finite points only (charts must never see NaN or infinities).
pub fn finite_points(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

/// Steps whose value is not finite (NaN/inf loss), to mark on the chart.
pub fn non_finite_steps(points: &[(f64, f64)]) -> Vec<f64> {
    points
        .iter()
        .filter(|(x, y)| x.is_finite() && !y.is_finite())
        .map(|(x, _)| *x)
        .collect()
}

/// At most about `max` points: consecutive points averaged in equal groups
/// (a chart cannot show more points than it has dots; long runs have
/// hundreds of thousands of steps).
pub fn downsample(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    let max = max.max(2);
    if points.len() <= max {
        return points.to_vec();
    }
    let group = points.len().div_ceil(max);
    points
        .chunks(group)
        .map(|c| {
            let n = c.len() as f64;
            let (sx, sy) = c.iter().fold((0.0, 0.0), |(a, b), p| (a + p.0, b + p.1));
            (sx / n, sy / n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsample_averages_groups() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, i as f64 * 2.0)).collect();
        assert_eq!(downsample(&pts, 20), pts);
        let d = downsample(&pts, 5);
        assert_eq!(
            d,
            vec![(0.5, 1.0), (2.5, 5.0), (4.5, 9.0), (6.5, 13.0), (8.5, 17.0)]
        );
        let d = downsample(&pts, 3);
        assert_eq!(d.len(), 3);
        assert_eq!(d[2], (8.5, 17.0), "short last group of two");
    }

    #[test]
    fn debiased_ema_matches_hand_computation() {
        let s = ema(&[(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)], 0.5);
        // last: 0.5 → /0.5 = 1; 1.25 → /0.75; 2.125 → /0.875
        let want = [1.0, 1.25 / 0.75, 2.125 / 0.875];
        assert_eq!(s.len(), 3);
        for (got, want) in s.iter().zip(want) {
            assert!((got.1 - want).abs() < 1e-12, "{got:?} vs {want}");
        }
        assert_eq!(s[2].0, 3.0);
    }

    #[test]
    fn weight_zero_is_identity_and_nan_is_skipped() {
        let pts = [
            (1.0, 0.7),
            (2.0, f64::NAN),
            (3.0, 0.5),
            (4.0, f64::INFINITY),
        ];
        assert_eq!(ema(&pts, 0.0), vec![(1.0, 0.7), (3.0, 0.5)]);
        let s = ema(&pts, 0.9);
        assert_eq!(s.len(), 2);
        // The NaN does not poison later points.
        assert!(s.iter().all(|p| p.1.is_finite()));
        assert_eq!(non_finite_steps(&pts), vec![2.0, 4.0]);
    }

    #[test]
    fn constant_series_stays_constant() {
        let s = ema(&[(1.0, 0.3), (2.0, 0.3), (3.0, 0.3)], 0.6);
        assert!(s.iter().all(|p| p.1 == 0.3));
    }
}
