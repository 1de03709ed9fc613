//! An experiment's settings after `extends` is applied, still as syntax
//! (with spans), so sweeps can override any of them and resolution reports
//! errors where the value was written.

use std::collections::HashMap;

use super::values::Diags;
use crate::dsl::diagnostic::{did_you_mean, list_names};
use crate::dsl::{Diagnostic, ExpItemKind, ExperimentDecl, Ident, Param, Span, StageDecl, Value};

#[derive(Debug, Clone)]
pub struct Spec {
    pub name: Ident,
    pub data: Option<Ident>,
    pub text: Option<Ident>,
    pub plm: Option<(Ident, Vec<Param>)>,
    pub ctr: Option<(Ident, Vec<Param>)>,
    pub prompts: Option<(Value, Option<Ident>)>,
    pub fusion: Option<(Ident, Option<Span>)>,
    pub device: Option<Value>,
    pub seed: Option<Value>,
    /// `seeds [1, 2, 3]`; replaces `seed` (whichever is set later wins
    /// through `extends`; both in one declaration is an error).
    pub seeds: Option<Value>,
    pub metrics: Option<Value>,
    pub stages: Vec<StageDecl>,
}

impl Spec {
    fn empty(name: Ident) -> Self {
        Spec {
            name,
            data: None,
            text: None,
            plm: None,
            ctr: None,
            prompts: None,
            fusion: None,
            device: None,
            seed: None,
            seeds: None,
            metrics: None,
            stages: Vec::new(),
        }
    }
}

/// Builds the spec of every experiment, applying `extends` (cycles and
/// unknown bases are reported; such experiments get no spec).
pub fn build_specs(exps: &[&ExperimentDecl], d: &mut Diags) -> HashMap<String, Spec> {
    let by_name: HashMap<&str, &ExperimentDecl> =
        exps.iter().map(|e| (e.name.name.as_str(), *e)).collect();
    let mut done: HashMap<String, Option<Spec>> = HashMap::new();
    for e in exps {
        let mut chain = Vec::new();
        build(e, &by_name, &mut done, &mut chain, d);
    }
    done.into_iter()
        .filter_map(|(k, v)| v.map(|s| (k, s)))
        .collect()
}

fn build(
    e: &ExperimentDecl,
    by_name: &HashMap<&str, &ExperimentDecl>,
    done: &mut HashMap<String, Option<Spec>>,
    chain: &mut Vec<String>,
    d: &mut Diags,
) -> Option<Spec> {
    if let Some(s) = done.get(&e.name.name) {
        return s.clone();
    }
    chain.push(e.name.name.clone());
    let base = match &e.extends {
        None => Some(Spec::empty(e.name.clone())),
        Some(b) => {
            if let Some(pos) = chain.iter().position(|c| *c == b.name) {
                let mut cycle: Vec<String> = chain[pos..].to_vec();
                cycle.push(b.name.clone());
                d.push(
                    Diagnostic::new(
                        b.span,
                        format!("`extends` forms a cycle: {}", cycle.join(" → ")),
                    )
                    .with_hint("an experiment cannot extend itself, directly or through others"),
                );
                None
            } else {
                match by_name.get(b.name.as_str()) {
                    Some(base_decl) => build(base_decl, by_name, done, chain, d).map(|mut s| {
                        s.name = e.name.clone();
                        s
                    }),
                    None => {
                        let names: Vec<&str> = by_name.keys().copied().collect();
                        let mut sorted = names.clone();
                        sorted.sort();
                        let hint = did_you_mean(&b.name, names.iter().copied())
                            .unwrap_or_else(|| format!("experiments are {}", list_names(&sorted)));
                        d.push(
                            Diagnostic::new(b.span, format!("unknown experiment `{}`", b.name))
                                .with_hint(hint),
                        );
                        None
                    }
                }
            }
        }
    };
    chain.pop();
    let spec = base.map(|b| apply_items(b, e, d));
    done.insert(e.name.name.clone(), spec.clone());
    spec
}

/// Applies an experiment's own items over its base: each setting replaces
/// the base's; `stages { }` replaces the stage list; `stage X` overrides the
/// inherited stage named X parameter by parameter, or appends a new stage.
fn apply_items(mut s: Spec, e: &ExperimentDecl, d: &mut Diags) -> Spec {
    let inherited: Vec<String> = s.stages.iter().map(|st| st.name().to_string()).collect();
    let mut overridden: Vec<String> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for item in &e.items {
        let kw = item.keyword.name.as_str();
        if kw != "stage" {
            if seen.contains(&kw) {
                d.push(
                    Diagnostic::new(
                        item.keyword.span,
                        format!("experiment `{}` sets `{kw}` twice", e.name.name),
                    )
                    .with_hint("remove one of them"),
                );
                continue;
            }
            // One run seed and a list of them contradict each other.
            let other = match kw {
                "seed" => Some("seeds"),
                "seeds" => Some("seed"),
                _ => None,
            };
            if other.is_some_and(|o| seen.contains(&o)) {
                d.push(
                    Diagnostic::new(
                        item.keyword.span,
                        format!(
                            "experiment `{}` sets both `seed` and `seeds`",
                            e.name.name
                        ),
                    )
                    .with_hint(
                        "`seeds [1, 2, 3]` runs one run per seed, `seed N` a single run: keep one of them",
                    ),
                );
                continue;
            }
            seen.push(kw);
        }
        match &item.kind {
            ExpItemKind::Data(x) => s.data = Some(x.clone()),
            ExpItemKind::Text(x) => s.text = Some(x.clone()),
            ExpItemKind::Plm { name, params } => s.plm = Some((name.clone(), params.clone())),
            ExpItemKind::Ctr { backbone, params } => {
                s.ctr = Some((backbone.clone(), params.clone()))
            }
            ExpItemKind::Prompts { count, mode } => s.prompts = Some((count.clone(), mode.clone())),
            ExpItemKind::Fusion { kind, alpha } => s.fusion = Some((kind.clone(), *alpha)),
            ExpItemKind::Device(v) => s.device = Some(v.clone()),
            ExpItemKind::Seed(v) => {
                s.seed = Some(v.clone());
                s.seeds = None;
            }
            ExpItemKind::Seeds(v) => {
                s.seeds = Some(v.clone());
                s.seed = None;
            }
            ExpItemKind::Metrics(v) => s.metrics = Some(v.clone()),
            ExpItemKind::Stages(list) => {
                s.stages = list.clone();
                overridden.clear();
                overridden.extend(list.iter().map(|st| st.name().to_string()));
            }
            ExpItemKind::Stage(st) => {
                let name = st.name().to_string();
                let pos = s.stages.iter().position(|x| x.name() == name);
                match pos {
                    Some(i) if inherited.contains(&name) && !overridden.contains(&name) => {
                        let base = &s.stages[i];
                        let merged = if base.kind.name == st.kind.name {
                            let mut params = base.params.clone();
                            for p in &st.params {
                                params.retain(|q| q.key.name != p.key.name);
                                params.push(p.clone());
                            }
                            StageDecl {
                                params,
                                ..st.clone()
                            }
                        } else {
                            st.clone()
                        };
                        s.stages[i] = merged;
                        overridden.push(name);
                    }
                    _ => {
                        s.stages.push(st.clone());
                        overridden.push(name);
                    }
                }
            }
        }
    }
    s
}
