//! An experiment's settings after `extends` is applied, still as syntax
//! (with spans), so sweeps can override any of them and resolution reports
//! errors where the value was written.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use super::budget::Budget;
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

impl Spec {
    /// Bytes of source text its settings span: a measure of what resolving
    /// it once (or copying it) costs, for the checking [`Budget`].
    pub fn weight(&self) -> usize {
        fn value(v: &Value) -> usize {
            v.span.end.saturating_sub(v.span.start)
        }
        fn params(ps: &[Param]) -> usize {
            ps.iter()
                .map(|p| p.span.end.saturating_sub(p.span.start))
                .sum()
        }
        let mut w = 64;
        for (_, ps) in [&self.plm, &self.ctr].into_iter().flatten() {
            w += params(ps);
        }
        for v in [&self.device, &self.seed, &self.seeds, &self.metrics]
            .into_iter()
            .flatten()
        {
            w += value(v);
        }
        if let Some((count, _)) = &self.prompts {
            w += value(count);
        }
        w + self
            .stages
            .iter()
            .map(|st| 32 + params(&st.params))
            .sum::<usize>()
    }

    /// [`Self::weight`] of one copy of its resolved plan per seed: the
    /// `seeds` list is read once, not copied into each run.
    pub fn copy_weight(&self) -> usize {
        let seeds = self
            .seeds
            .as_ref()
            .map_or(0, |v| v.span.end.saturating_sub(v.span.start));
        self.weight().saturating_sub(seeds)
    }
}

/// Builds the spec of every experiment, applying `extends` (cycles and
/// unknown bases are reported; such experiments get no spec). Each spec
/// built spends its weight from `budget`; once it runs out the rest get none.
pub fn build_specs(
    exps: &[&ExperimentDecl],
    budget: &mut Budget,
    d: &mut Diags,
) -> HashMap<String, Rc<Spec>> {
    let by_name: HashMap<&str, &ExperimentDecl> =
        exps.iter().map(|e| (e.name.name.as_str(), *e)).collect();
    let mut done: HashMap<String, Option<Rc<Spec>>> = HashMap::new();
    let mut chain = Chain::default();
    for e in exps {
        build(e, &by_name, &mut done, &mut chain, budget, d);
    }
    done.into_iter()
        .filter_map(|(k, v)| v.map(|s| (k, s)))
        .collect()
}

/// The experiments being built, outermost first, to report `extends`
/// cycles; and every experiment's name, sorted once for hints.
#[derive(Default)]
struct Chain<'a> {
    names: Vec<String>,
    set: HashSet<String>,
    sorted: Option<Vec<&'a str>>,
}

impl<'a> Chain<'a> {
    fn sorted_names(&mut self, by_name: &HashMap<&'a str, &ExperimentDecl>) -> &[&'a str] {
        self.sorted.get_or_insert_with(|| {
            let mut v: Vec<&str> = by_name.keys().copied().collect();
            v.sort();
            v
        })
    }
}

fn build<'a>(
    e: &ExperimentDecl,
    by_name: &HashMap<&'a str, &ExperimentDecl>,
    done: &mut HashMap<String, Option<Rc<Spec>>>,
    chain: &mut Chain<'a>,
    budget: &mut Budget,
    d: &mut Diags,
) -> Option<Rc<Spec>> {
    if let Some(s) = done.get(&e.name.name) {
        return s.clone();
    }
    if budget.stopped() {
        return None;
    }
    chain.names.push(e.name.name.clone());
    chain.set.insert(e.name.name.clone());
    let base = match &e.extends {
        None => Some(Spec::empty(e.name.clone())),
        Some(b) if chain.set.contains(&b.name) => {
            let pos = chain.names.iter().position(|c| *c == b.name).unwrap_or(0);
            let mut cycle: Vec<String> = chain.names[pos..].to_vec();
            cycle.push(b.name.clone());
            d.push(
                Diagnostic::new(
                    b.span,
                    format!("`extends` forms a cycle: {}", cycle.join(" → ")),
                )
                .with_hint("an experiment cannot extend itself, directly or through others"),
            );
            None
        }
        Some(b) => match by_name.get(b.name.as_str()) {
            Some(base_decl) => {
                // The one copy of the base that this experiment then changes.
                build(base_decl, by_name, done, chain, budget, d).map(|base| Spec {
                    name: e.name.clone(),
                    ..(*base).clone()
                })
            }
            None => {
                let sorted = chain.sorted_names(by_name);
                let hint = did_you_mean(&b.name, sorted.iter().copied())
                    .unwrap_or_else(|| format!("experiments are {}", list_names(sorted)));
                d.push(
                    Diagnostic::new(b.span, format!("unknown experiment `{}`", b.name))
                        .with_hint(hint),
                );
                None
            }
        },
    };
    chain.names.pop();
    chain.set.remove(&e.name.name);
    let spec = base
        .map(|b| apply_items(b, e, d))
        // Copying a base for `extends` costs about twice what resolving it
        // does, byte for byte (every value is copied, then dropped).
        .filter(|s| budget.spend(2 * s.weight(), e.name.span, d))
        .map(Rc::new);
    done.insert(e.name.name.clone(), spec.clone());
    spec
}

/// Applies an experiment's own items over its base: each setting replaces
/// the base's; `stages { }` replaces the stage list; `stage X` overrides the
/// inherited stage named X parameter by parameter, or appends a new stage.
fn apply_items(mut s: Spec, e: &ExperimentDecl, d: &mut Diags) -> Spec {
    let inherited: HashSet<String> = s.stages.iter().map(|st| st.name().to_string()).collect();
    let mut overridden: HashSet<String> = HashSet::new();
    // Stage name → position in `s.stages` (the first, as `position` found).
    let mut at: HashMap<String, usize> = HashMap::new();
    for (i, st) in s.stages.iter().enumerate() {
        at.entry(st.name().to_string()).or_insert(i);
    }
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
                at.clear();
                for (i, st) in s.stages.iter().enumerate() {
                    at.entry(st.name().to_string()).or_insert(i);
                }
            }
            ExpItemKind::Stage(st) => {
                let name = st.name().to_string();
                match at.get(&name).copied() {
                    Some(i) if inherited.contains(&name) && !overridden.contains(&name) => {
                        let base = &s.stages[i];
                        let merged = if base.kind.name == st.kind.name {
                            // The stage's own keys replace the inherited ones.
                            let own: HashSet<&str> =
                                st.params.iter().map(|p| p.key.name.as_str()).collect();
                            let params = base
                                .params
                                .iter()
                                .filter(|q| !own.contains(q.key.name.as_str()))
                                .chain(&st.params)
                                .cloned()
                                .collect();
                            StageDecl {
                                params,
                                ..st.clone()
                            }
                        } else {
                            st.clone()
                        };
                        s.stages[i] = merged;
                        overridden.insert(name);
                    }
                    _ => {
                        at.entry(name.clone()).or_insert(s.stages.len());
                        s.stages.push(st.clone());
                        overridden.insert(name);
                    }
                }
            }
        }
    }
    s
}
