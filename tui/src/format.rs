//! Small text formatters shared by the views.

/// `1h02m`, `3m05s`, `12.3s`.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "—".into();
    }
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let total = secs.round() as u64;
    let (h, m, s) = (total / 3600, (total / 60) % 60, total % 60);
    if h > 0 {
        format!("{h}h{m:02}m")
    } else {
        format!("{m}m{s:02}s")
    }
}

pub fn opt_duration(secs: Option<f64>) -> String {
    secs.map(duration).unwrap_or_else(|| "—".into())
}

/// Metric with 4 decimals, or a dash.
pub fn metric(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.4}"),
        Some(_) => "NaN".into(),
        None => "—".into(),
    }
}

/// `0.7100 ± 0.0100`, `0.7100` for one value, a dash for none.
pub fn mean_sd(m: &crate::model::MeanSd) -> String {
    match (m.mean, m.sd) {
        (Some(x), Some(sd)) if x.is_finite() => format!("{x:.4} ± {sd:.4}"),
        (Some(x), _) => metric(Some(x)),
        (None, _) => "—".into(),
    }
}

/// A difference with its sign: `+0.0233`, `-0.0100`, or a dash.
pub fn signed(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:+.4}"),
        Some(_) => "NaN".into(),
        None => "—".into(),
    }
}

/// Compact number for axis labels: `0.693`, `1.2e-4`, `12k`.
pub fn axis(v: f64) -> String {
    if !v.is_finite() {
        return "NaN".into();
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a < 1e-2 {
        format!("{v:.1e}")
    } else if a < 10.0 {
        format!("{v:.3}")
    } else if a < 10_000.0 {
        format!("{v:.0}")
    } else {
        format!("{:.0}k", v / 1000.0)
    }
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(duration(5.34), "5.3s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(3725.0), "1h02m");
        assert_eq!(duration(f64::NAN), "—");
        assert_eq!(metric(Some(0.71234)), "0.7123");
        assert_eq!(metric(Some(f64::NAN)), "NaN");
        assert_eq!(axis(0.0001), "1.0e-4");
        assert_eq!(axis(0.6521), "0.652");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        let m = |n, mean, sd| crate::model::MeanSd { n, mean, sd };
        assert_eq!(mean_sd(&m(3, Some(0.71), Some(0.01))), "0.7100 ± 0.0100");
        assert_eq!(mean_sd(&m(1, Some(0.71), None)), "0.7100");
        assert_eq!(mean_sd(&m(0, None, None)), "—");
        assert_eq!(signed(Some(0.07 / 3.0)), "+0.0233");
        assert_eq!(signed(Some(-0.01)), "-0.0100");
    }
}
