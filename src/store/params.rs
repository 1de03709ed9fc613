//! Param values: the plan flattened by `crate::plan::flatten_params`, stored
//! with a numeric reading for `--where` comparisons.

/// The numeric reading of a param value (for `params.num`), when it is a finite number.
pub(crate) fn numeric(value: &str) -> Option<f64> {
    let v: f64 = value.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::numeric;

    #[test]
    fn numeric_readings() {
        assert_eq!(numeric("0.001"), Some(0.001));
        assert_eq!(numeric("16"), Some(16.0));
        assert_eq!(numeric("dcnv2"), None);
        assert_eq!(numeric("NaN"), None);
        assert_eq!(numeric("[256,128]"), None);
    }
}
