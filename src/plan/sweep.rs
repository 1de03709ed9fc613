//! `sweep NAME over EXP { path in [...] }`: the cross product of the axes,
//! each point an override of the base experiment's spec.

use super::experiment::{all_backbone_params, backbone_params, STAGE_PARAMS};
use super::spec::Spec;
use super::values::*;
use crate::dsl::diagnostic::{did_you_mean, list_names};
use crate::dsl::{Diagnostic, Ident, Param, SweepDecl, Value};

/// Paths a sweep may vary; `ctr.<param>` and `stages.<stage>.<param>` too.
pub const SWEEP_PATHS: [&str; 13] = [
    "data",
    "text",
    "plm",
    "plm.max_len",
    "plm.pool",
    "plm.layers",
    "ctr",
    "prompts",
    "prompts.mode",
    "fusion",
    "device",
    "seed",
    "metrics",
];

/// The most points one sweep may expand to. Every point is a run (hours of
/// training), and the checker resolves each (~13 µs): 2000 keeps `check`
/// under 30 ms while a grid typed by mistake (`[1, …, 1000]` twice) is
/// refused before it is expanded.
pub const MAX_SWEEP_POINTS: usize = 2_000;

/// Checks the axes of a sweep against its base spec (paths, empty lists,
/// repeats). Returns false when the sweep cannot be expanded.
pub fn check_axes(sw: &SweepDecl, base: &Spec, d: &mut Diags) -> bool {
    let before = d.len();
    if sw.axes.is_empty() {
        d.push(
            Diagnostic::new(
                sw.name.span,
                format!("sweep `{}` has no axes", sw.name.name),
            )
            .with_hint("add e.g. `prompts in [1, 5, 10]`"),
        );
    }
    for (i, axis) in sw.axes.iter().enumerate() {
        let path = axis.path.name.as_str();
        if sw.axes[..i].iter().any(|a| a.path.name == path) {
            d.push(
                Diagnostic::new(
                    axis.path.span,
                    format!("sweep `{}` varies `{path}` twice", sw.name.name),
                )
                .with_hint("merge the two lists"),
            );
        }
        if axis.values.is_empty() {
            d.err(
                axis.values_span,
                format!("sweep axis `{path}` has no values"),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for v in &axis.values {
            let shown = v.display();
            if !seen.insert(shown.clone()) {
                d.err(v.span, format!("value `{shown}` is listed twice"));
            }
        }
        check_path(&axis.path, base, d);
    }
    let points = sw
        .axes
        .iter()
        .fold(1usize, |n, a| n.saturating_mul(a.values.len()));
    if points > MAX_SWEEP_POINTS {
        let sizes: Vec<String> = sw.axes.iter().map(|a| a.values.len().to_string()).collect();
        d.push(
            Diagnostic::new(
                sw.name.span,
                format!(
                    "sweep `{}` has {} points ({}), more than the {MAX_SWEEP_POINTS} allowed",
                    sw.name.name,
                    if points == usize::MAX {
                        "too many".to_string()
                    } else {
                        points.to_string()
                    },
                    sizes.join(" × ")
                ),
            )
            .with_hint("split it into several sweeps or drop values"),
        );
    }
    d.len() == before
}

fn check_path(path: &Ident, base: &Spec, d: &mut Diags) {
    let p = path.name.as_str();
    if SWEEP_PATHS.contains(&p) {
        return;
    }
    let parts: Vec<&str> = p.split('.').collect();
    match parts.as_slice() {
        ["ctr", param] => {
            let all = all_backbone_params();
            if !all.contains(param) {
                let hint = did_you_mean(param, all.iter().copied())
                    .unwrap_or_else(|| format!("backbone parameters are {}", list_names(&all)));
                d.push(
                    Diagnostic::new(
                        path.span,
                        format!("unknown sweep parameter `{p}`: no backbone has `{param}`"),
                    )
                    .with_hint(hint),
                );
            }
        }
        ["stages", stage, param] => {
            let names: Vec<&str> = base.stages.iter().map(|s| s.name()).collect();
            if !names.contains(stage) {
                let hint = did_you_mean(stage, names.iter().copied())
                    .unwrap_or_else(|| format!("its stages are {}", list_names(&names)));
                d.push(
                    Diagnostic::new(
                        path.span,
                        format!(
                            "unknown sweep parameter `{p}`: experiment `{}` has no stage `{stage}`",
                            base.name.name
                        ),
                    )
                    .with_hint(hint),
                );
            } else if !STAGE_PARAMS.contains(param) {
                let hint = did_you_mean(param, STAGE_PARAMS).unwrap_or_else(|| {
                    format!("stage parameters are {}", list_names(&STAGE_PARAMS))
                });
                d.push(
                    Diagnostic::new(
                        path.span,
                        format!("unknown sweep parameter `{p}`: stages have no `{param}`"),
                    )
                    .with_hint(hint),
                );
            }
        }
        _ => {
            let mut known: Vec<String> = SWEEP_PATHS.iter().map(|s| s.to_string()).collect();
            known.push("ctr.PARAM".into());
            known.push("stages.STAGE.PARAM".into());
            let mut candidates: Vec<String> = SWEEP_PATHS.iter().map(|s| s.to_string()).collect();
            candidates.extend(all_backbone_params().iter().map(|b| format!("ctr.{b}")));
            for s in &base.stages {
                candidates.extend(
                    STAGE_PARAMS
                        .iter()
                        .map(|k| format!("stages.{}.{k}", s.name())),
                );
            }
            let hint = did_you_mean(p, candidates.iter().map(String::as_str))
                .unwrap_or_else(|| format!("sweepable: {}", list_names(&known)));
            d.push(
                Diagnostic::new(path.span, format!("unknown sweep parameter `{p}`"))
                    .with_hint(hint),
            );
        }
    }
}

/// Every point of the grid: one value per axis, first axis slowest.
pub fn points(sw: &SweepDecl) -> Vec<Vec<(&Ident, &Value)>> {
    let mut out: Vec<Vec<(&Ident, &Value)>> = vec![Vec::new()];
    for axis in &sw.axes {
        let mut next = Vec::new();
        for prefix in &out {
            for v in &axis.values {
                let mut p = prefix.clone();
                p.push((&axis.path, v));
                next.push(p);
            }
        }
        out = next;
    }
    out
}

fn set_param(params: &mut Vec<Param>, key: &str, path: &Ident, value: &Value) {
    params.retain(|p| p.key.name != key);
    params.push(Param {
        key: Ident {
            name: key.to_string(),
            span: path.span,
        },
        value: value.clone(),
        span: path.span,
    });
}

/// Applies one assignment to a spec (paths were checked by [`check_axes`]).
pub fn apply(spec: &mut Spec, path: &Ident, value: &Value, d: &mut Diags) {
    let p = path.name.as_str();
    let parts: Vec<&str> = p.split('.').collect();
    match parts.as_slice() {
        ["data"] => spec.data = read_word(value, p, d),
        ["text"] => spec.text = read_word(value, p, d),
        ["plm"] => {
            if let Some(w) = read_word(value, p, d) {
                let params = spec.plm.take().map(|(_, ps)| ps).unwrap_or_default();
                spec.plm = Some((w, params));
            }
        }
        ["plm", key] => match spec.plm.as_mut() {
            Some((id, params)) if id.name != "none" => set_param(params, key, path, value),
            _ => d.err(
                path.span,
                format!(
                    "cannot sweep `{p}`: experiment `{}` has no PLM",
                    spec.name.name
                ),
            ),
        },
        ["ctr"] => {
            if let Some(w) = read_word(value, p, d) {
                // Keep the parameters the new backbone also accepts.
                let accepted = backbone_params(&w.name);
                let params = spec
                    .ctr
                    .take()
                    .map(|(_, ps)| {
                        ps.into_iter()
                            .filter(|q| accepted.contains(&q.key.name.as_str()))
                            .collect()
                    })
                    .unwrap_or_default();
                spec.ctr = Some((w, params));
            }
        }
        ["ctr", key] => match spec.ctr.as_mut() {
            Some((id, params)) if id.name != "none" => set_param(params, key, path, value),
            _ => d.err(
                path.span,
                format!(
                    "cannot sweep `{p}`: experiment `{}` has no CTR backbone",
                    spec.name.name
                ),
            ),
        },
        ["prompts"] => {
            let mode = spec.prompts.take().and_then(|(_, m)| m);
            spec.prompts = Some((value.clone(), mode));
        }
        ["prompts", "mode"] => {
            if let Some(w) = read_word(value, p, d) {
                let count = spec.prompts.take().map(|(c, _)| c).unwrap_or(Value {
                    kind: crate::dsl::ValueKind::Number {
                        value: 5.0,
                        text: "5".into(),
                    },
                    span: path.span,
                });
                spec.prompts = Some((count, Some(w)));
            }
        }
        ["fusion"] => {
            if let Some(w) = read_word(value, p, d) {
                spec.fusion = Some((w, None));
            }
        }
        ["device"] => spec.device = Some(value.clone()),
        // The seed axis is the replicate axis: it replaces the base's `seeds`.
        ["seed"] => {
            spec.seed = Some(value.clone());
            spec.seeds = None;
        }
        ["metrics"] => spec.metrics = Some(value.clone()),
        ["stages", stage, key] => {
            if let Some(st) = spec.stages.iter_mut().find(|s| s.name() == *stage) {
                set_param(&mut st.params, key, path, value);
            }
        }
        _ => d.err(path.span, format!("unknown sweep parameter `{p}`")),
    }
}
