//! Dotted key/value pairs of a plan, for the run database and for diffs.

use serde_json::Value as Json;

use super::types::ExperimentPlan;

fn scalar(v: &Json) -> String {
    match v {
        Json::Null => "none".to_string(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Objects recurse; lists of scalars stay one value (`[256,256]`); lists of
/// objects are keyed by their `name` when they have one, else by index.
fn walk(prefix: &str, v: &Json, out: &mut Vec<(String, String)>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Json::Object(map) => {
            for (k, x) in map {
                walk(&key(k), x, out);
            }
        }
        Json::Array(items) if items.iter().any(|x| x.is_object()) => {
            for (i, x) in items.iter().enumerate() {
                let label = x
                    .get("name")
                    .and_then(Json::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| i.to_string());
                walk(&key(&label), x, out);
            }
        }
        other => out.push((prefix.to_string(), scalar(other))),
    }
}

pub fn flatten_params(plan: &ExperimentPlan) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(mut json) = serde_json::to_value(plan) else {
        return out;
    };
    // Stage parameters read best without the `train`/`kind` level:
    // `stages.joint.lr`, `stages.pretrain.mask`.
    if let Some(Json::Array(stages)) = json.get_mut("stages") {
        for st in stages.iter_mut() {
            let Json::Object(obj) = st else { continue };
            let mut flat = serde_json::Map::new();
            for (k, v) in std::mem::take(obj) {
                match (k.as_str(), v) {
                    ("train", Json::Object(t)) => flat.extend(t),
                    ("kind", Json::Object(kd)) => flat.extend(kd),
                    (k, v) => {
                        flat.insert(k.to_string(), v);
                    }
                }
            }
            *obj = flat;
        }
    }
    walk("", &json, &mut out);
    out
}
