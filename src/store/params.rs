//! The plan flattened to dotted keys, stored as run params for filtering
//! (`--where 'params.ctr.backbone.name = dcnv2'`) and diffs (`runs compare`).

use crate::plan::ExperimentPlan;
use serde_json::Value;

/// Flattens a plan: objects become dotted paths; lists of objects that carry a
/// `name` (stages, fields) are keyed by that name (`stages.joint.train.lr`),
/// other lists of objects by index; lists of scalars are one JSON value
/// (`[256,128]`). Keys come out sorted.
pub fn flatten_params(plan: &ExperimentPlan) -> Vec<(String, String)> {
    let value = match serde_json::to_value(plan) {
        Ok(v) => v,
        // The plan types serialise infallibly (no non-string map keys); keep the
        // API total anyway.
        Err(_) => return Vec::new(),
    };
    let mut out = Vec::new();
    flatten_value("", &value, &mut out);
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn flatten_value(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if map.is_empty() {
                out.push((prefix.to_string(), "{}".into()));
            }
            for (k, v) in map {
                flatten_value(&join(prefix, k), v, out);
            }
        }
        Value::Array(items) if items.iter().any(|v| v.is_object()) => {
            for (i, item) in items.iter().enumerate() {
                let name = item.get("name").and_then(Value::as_str);
                let key = match name {
                    Some(n) if !n.is_empty() => join(prefix, n),
                    _ => join(prefix, &i.to_string()),
                };
                flatten_value(&key, item, out);
            }
        }
        Value::Array(_) => out.push((prefix.to_string(), value.to_string())),
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Null => out.push((prefix.to_string(), "null".into())),
        Value::Bool(b) => out.push((prefix.to_string(), b.to_string())),
        Value::Number(n) => out.push((prefix.to_string(), n.to_string())),
    }
}

/// The numeric reading of a param value (for `num`), when it is a finite number.
pub(crate) fn numeric(value: &str) -> Option<f64> {
    let v: f64 = value.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_objects_named_lists_and_scalars() {
        let v = json!({
            "ctr": {"embed": 16, "backbone": {"name": "dcnv2", "mlp": [256, 128], "dropout": 0.1}},
            "stages": [{"name": "joint", "train": {"lr": 0.001, "patience": null}}],
            "sweep": null,
            "map": [["M", "male"]],
            "bucket": true
        });
        let mut out = Vec::new();
        flatten_value("", &v, &mut out);
        out.sort();
        let get = |k: &str| out.iter().find(|(a, _)| a == k).map(|(_, b)| b.as_str());
        assert_eq!(get("ctr.backbone.name"), Some("dcnv2"));
        assert_eq!(get("ctr.backbone.mlp"), Some("[256,128]"));
        assert_eq!(get("ctr.backbone.dropout"), Some("0.1"));
        assert_eq!(get("ctr.embed"), Some("16"));
        assert_eq!(get("stages.joint.train.lr"), Some("0.001"));
        assert_eq!(get("stages.joint.name"), Some("joint"));
        assert_eq!(get("stages.joint.train.patience"), Some("null"));
        assert_eq!(get("sweep"), Some("null"));
        assert_eq!(get("map"), Some("[[\"M\",\"male\"]]"));
        assert_eq!(get("bucket"), Some("true"));
        assert_eq!(numeric("0.001"), Some(0.001));
        assert_eq!(numeric("dcnv2"), None);
        assert_eq!(numeric("NaN"), None);
    }
}
