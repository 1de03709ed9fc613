//! An experiment [`Spec`] → [`ExperimentPlan`]: defaults, cross-checks.

use std::cell::{OnceCell, RefCell};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::decls::{
    default_template, pooling, resolve_plm, resolve_template, MAX_POSITIONS, POOLINGS,
};
use super::spec::Spec;
use super::types::*;
use super::values::*;
use crate::dsl::diagnostic::{did_you_mean, list_names};
use crate::dsl::{Diagnostic, Ident, Param, PlmDecl, StageDecl, TemplateDecl, ValueKind};

pub const BACKBONES: [&str; 9] = [
    "lr", "fm", "dnn", "deepfm", "dcn", "dcnv2", "autoint", "xdeepfm", "fibinet",
];
pub const STAGE_KINDS: [&str; 4] = ["pa_mlm", "joint", "ctr_only", "plm_only"];
pub const STAGE_PARAMS: [&str; 17] = [
    "epochs",
    "batch",
    "lr",
    "plm_lr",
    "weight_decay",
    "warmup",
    "schedule",
    "patience",
    "grad_clip",
    "accumulate",
    "eval_batch",
    "max_rows",
    "valid_rows",
    "bucket",
    "mask",
    "pool",
    "from",
];
const METRICS: [&str; 2] = ["auc", "logloss"];
const DEFAULT_MLP: [usize; 3] = [256, 256, 256];

/// The parameters each backbone accepts.
pub fn backbone_params(name: &str) -> &'static [&'static str] {
    match name {
        "lr" => &[],
        "fm" => &["embed"],
        "dnn" | "deepfm" => &["embed", "mlp", "dropout"],
        "dcn" | "dcnv2" => &["embed", "cross", "mlp", "dropout"],
        "autoint" => &["embed", "layers", "heads", "att_dim", "mlp", "dropout"],
        "xdeepfm" => &["embed", "cin", "mlp", "dropout"],
        "fibinet" => &["embed", "reduction", "bilinear", "mlp", "dropout"],
        _ => &[],
    }
}

/// Every backbone parameter name (for sweep-path checks).
pub fn all_backbone_params() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = Vec::new();
    for b in BACKBONES {
        for p in backbone_params(b) {
            if !all.contains(p) {
                all.push(p);
            }
        }
    }
    all
}

pub struct Ctx<'a> {
    pub datasets: HashMap<String, Option<Arc<DatasetPlan>>>,
    pub templates: HashMap<String, &'a TemplateDecl>,
    pub plms: HashMap<String, &'a PlmDecl>,
    /// Templates resolved against a dataset, by (template or `None` for the
    /// default, dataset), with the diagnostics that gave: every run of a
    /// sweep names the same pair, and a template may be long.
    resolved: RefCell<HashMap<(Option<String>, String), ResolvedTemplate>>,
    /// Declared names per kind, sorted once for hints.
    dataset_names: OnceCell<Vec<String>>,
    template_names: OnceCell<Vec<String>>,
    plm_names: OnceCell<Vec<String>>,
}

type ResolvedTemplate = (Option<Arc<TemplatePlan>>, Vec<Diagnostic>);

impl<'a> Ctx<'a> {
    pub fn new() -> Self {
        Ctx {
            datasets: HashMap::new(),
            templates: HashMap::new(),
            plms: HashMap::new(),
            resolved: RefCell::new(HashMap::new()),
            dataset_names: OnceCell::new(),
            template_names: OnceCell::new(),
            plm_names: OnceCell::new(),
        }
    }

    /// `template` (or the default one) as used with `ds`, resolved once.
    fn template_for(
        &self,
        template: Option<&TemplateDecl>,
        ds: &DatasetPlan,
        d: &mut Diags,
    ) -> Option<Arc<TemplatePlan>> {
        let key = (template.map(|t| t.name.name.clone()), ds.name.clone());
        let mut memo = self.resolved.borrow_mut();
        let (plan, diags) = memo.entry(key).or_insert_with(|| {
            let mut td = Diags::default();
            let plan = match template {
                Some(t) => resolve_template(t, ds, &mut td),
                None => Some(default_template(ds)),
            };
            (plan.map(Arc::new), td.into_vec())
        });
        for e in diags.iter() {
            d.push(e.clone());
        }
        plan.clone()
    }
}

/// The keys of `map`, sorted once into `cell`: a file may declare thousands
/// of names, and many experiments may get one wrong.
fn sorted<'c, V>(cell: &'c OnceCell<Vec<String>>, map: &HashMap<String, V>) -> &'c [String] {
    cell.get_or_init(|| {
        let mut names: Vec<String> = map.keys().cloned().collect();
        names.sort();
        names
    })
}

fn unknown(d: &mut Diags, what: &str, id: &Ident, sorted: &[String]) {
    let hint = did_you_mean(&id.name, sorted.iter().map(String::as_str)).unwrap_or_else(|| {
        if sorted.is_empty() {
            format!("this file declares no {what}")
        } else {
            format!("known: {}", list_names(sorted))
        }
    });
    d.push(Diagnostic::new(id.span, format!("unknown {what} `{}`", id.name)).with_hint(hint));
}

pub fn resolve(spec: &Spec, ctx: &Ctx, d: &mut Diags) -> Option<ExperimentPlan> {
    let before = d.len();
    let ename = &spec.name.name;

    // ---------------- dataset
    let dataset = match &spec.data {
        None => {
            d.push(
                Diagnostic::new(
                    spec.name.span,
                    format!("experiment `{ename}` names no dataset"),
                )
                .with_hint("add `data NAME`"),
            );
            None
        }
        Some(id) => match ctx.datasets.get(&id.name) {
            Some(ds) => ds.clone(),
            None => {
                unknown(d, "dataset", id, sorted(&ctx.dataset_names, &ctx.datasets));
                None
            }
        },
    };

    // ---------------- PLM and template
    let mut plm = None;
    let mut plm_ident = None;
    if let Some((id, overrides)) = &spec.plm {
        if id.name == "none" {
            if let Some(p) = overrides.first() {
                d.err(p.key.span, "`plm none` takes no parameters");
            }
        } else {
            plm_ident = Some(id.clone());
            match ctx.plms.get(&id.name) {
                Some(decl) => plm = resolve_plm(decl, overrides, d),
                None => {
                    unknown(d, "plm", id, sorted(&ctx.plm_names, &ctx.plms));
                }
            }
        }
    }
    let mut template = None;
    if let (Some(ds), true) = (&dataset, plm_ident.is_some()) {
        template = match &spec.text {
            Some(id) => match ctx.templates.get(&id.name) {
                Some(t) => ctx.template_for(Some(t), ds, d),
                None => {
                    unknown(
                        d,
                        "template",
                        id,
                        sorted(&ctx.template_names, &ctx.templates),
                    );
                    None
                }
            },
            None => ctx.template_for(None, ds, d),
        };
    } else if let Some(id) = &spec.text {
        if !ctx.templates.contains_key(&id.name) {
            unknown(
                d,
                "template",
                id,
                sorted(&ctx.template_names, &ctx.templates),
            );
        }
    }

    // ---------------- CTR backbone
    let mut ctr = None;
    let mut ctr_ident = None;
    if let Some((id, params)) = &spec.ctr {
        if id.name == "none" {
            if let Some(p) = params.first() {
                d.err(p.key.span, "`ctr none` takes no parameters");
            }
        } else {
            ctr_ident = Some(id.clone());
            ctr = resolve_backbone(id, params, d);
        }
    }

    // ---------------- prompts, fusion, device, seed, metrics
    let (count, mode) = match &spec.prompts {
        None => (5, PromptMode::Deep),
        Some((v, m)) => {
            let count = read_usize(v, "prompts", 1, d).unwrap_or(5);
            let mode = match m.as_ref().map(|m| m.name.as_str()) {
                Some("shallow") => PromptMode::Shallow,
                Some("deep") | None => PromptMode::Deep,
                Some(other) => {
                    let hint = did_you_mean(other, ["deep", "shallow"])
                        .unwrap_or_else(|| "use `deep` or `shallow`".into());
                    if let Some(m) = m {
                        d.push(
                            Diagnostic::new(m.span, format!("unknown prompt mode `{other}`"))
                                .with_hint(hint),
                        );
                    }
                    PromptMode::Deep
                }
            };
            (count, mode)
        }
    };
    let fusion = match &spec.fusion {
        None => FusionPlan::PrefixAdd {
            learnable_alpha: false,
        },
        Some((k, alpha)) => match k.name.as_str() {
            "prefix_add" => FusionPlan::PrefixAdd {
                learnable_alpha: alpha.is_some(),
            },
            "none" => {
                if let Some(a) = alpha {
                    d.err(*a, "`alpha` applies only to `fusion prefix_add`");
                }
                FusionPlan::None
            }
            other => {
                let hint = did_you_mean(other, ["prefix_add", "none"])
                    .unwrap_or_else(|| "use `prefix_add` or `none`".into());
                d.push(
                    Diagnostic::new(k.span, format!("unknown fusion `{other}`")).with_hint(hint),
                );
                FusionPlan::None
            }
        },
    };
    let device = match &spec.device {
        None => DeviceSpec::Auto,
        Some(v) => read_device(v, d).unwrap_or(DeviceSpec::Auto),
    };
    let seed = match &spec.seed {
        None => 42,
        Some(v) => read_usize(v, "seed", 0, d).unwrap_or(42) as u64,
    };
    let metrics = match &spec.metrics {
        None => vec![MetricKind::Auc, MetricKind::Logloss],
        Some(v) => read_metrics(v, d),
    };

    // ---------------- stages
    if spec.stages.is_empty() {
        d.push(
            Diagnostic::new(
                spec.name.span,
                format!("experiment `{ename}` has no stages"),
            )
            .with_hint("add e.g. `stage finetune ctr_only { epochs 5, batch 1024, lr 1e-3 }`"),
        );
    }
    let mut stages: Vec<StagePlan> = Vec::new();
    let mut names = Earlier::default();
    for st in &spec.stages {
        let name = st.name();
        if names.set.contains(name) {
            d.push(
                Diagnostic::new(
                    st.name_span(),
                    format!("experiment `{ename}` has two stages named `{name}`"),
                )
                .with_hint(
                    "rename one with `as NAME`, e.g. `stage finetune ctr_only as ctr_long { ... }`",
                ),
            );
        }
        if let Some(sp) = resolve_stage(st, &names, plm.as_ref(), d) {
            if sp.kind.needs_plm() && plm_ident.is_none() {
                d.push(
                    Diagnostic::new(
                        st.kind.span,
                        format!("stage `{name}` needs a PLM, but experiment `{ename}` has none"),
                    )
                    .with_hint("add `plm NAME` (declared with `plm NAME = bert(\"path\")`)"),
                );
            }
            if sp.kind.needs_ctr() && ctr_ident.is_none() {
                d.push(
                    Diagnostic::new(st.kind.span, format!("stage `{name}` needs a CTR backbone, but experiment `{ename}` has none"))
                        .with_hint("add e.g. `ctr dcnv2 { embed 16 }`"),
                );
            }
            stages.push(sp);
        }
        names.push(name);
    }
    // With an unknown stage kind, "unused" would be a misleading follow-on error.
    let kinds_known = spec
        .stages
        .iter()
        .all(|s| STAGE_KINDS.contains(&s.kind.name.as_str()));
    let uses_plm = !kinds_known
        || spec
            .stages
            .iter()
            .any(|s| matches!(s.kind.name.as_str(), "pa_mlm" | "joint" | "plm_only"));
    let uses_ctr = !kinds_known
        || spec
            .stages
            .iter()
            .any(|s| matches!(s.kind.name.as_str(), "pa_mlm" | "joint" | "ctr_only"));
    let uses_prompts = spec
        .stages
        .iter()
        .any(|s| matches!(s.kind.name.as_str(), "pa_mlm" | "joint"));
    if let (Some(id), false, false) = (&plm_ident, uses_plm, spec.stages.is_empty()) {
        d.push(
            Diagnostic::new(
                id.span,
                format!("PLM `{}` is not used by any stage of `{ename}`", id.name),
            )
            .with_hint("write `plm none`, or add a `pa_mlm`, `joint` or `plm_only` stage"),
        );
    }
    if let (Some(id), false, false) = (&ctr_ident, uses_ctr, spec.stages.is_empty()) {
        d.push(
            Diagnostic::new(
                id.span,
                format!(
                    "backbone `{}` is not used by any stage of `{ename}`",
                    id.name
                ),
            )
            .with_hint("write `ctr none`, or add a `joint`, `pa_mlm` or `ctr_only` stage"),
        );
    }
    if let (Some(c), Some(id)) = (&ctr, &ctr_ident) {
        if uses_prompts && !c.backbone.can_prompt() {
            d.push(
                Diagnostic::new(id.span, format!("backbone `{}` cannot generate prompts (it has no hidden layers)", id.name))
                    .with_hint("use dnn, deepfm, dcn, dcnv2, autoint, xdeepfm or fibinet with `pa_mlm`/`joint` stages"),
            );
        }
    }
    if let (Some(p), PromptMode::Shallow, true) = (&plm, mode, uses_prompts) {
        if p.max_len + count > MAX_POSITIONS {
            if let Some((v, _)) = &spec.prompts {
                d.err(v.span, format!("{count} shallow prompts plus max_len {} exceed the PLM's {MAX_POSITIONS} positions", p.max_len));
            }
        }
    }
    if let (Some(ds), true) = (&dataset, ctr_ident.is_some()) {
        if !ds.fields.iter().any(|f| f.ctr) {
            if let Some(id) = &spec.data {
                d.err(
                    id.span,
                    format!(
                        "dataset `{}` has no field feeding the CTR model (all are `ctr false`)",
                        ds.name
                    ),
                );
            }
        }
    }

    if d.len() > before {
        return None;
    }
    Some(ExperimentPlan {
        name: ename.clone(),
        experiment: ename.clone(),
        sweep: None,
        group: ename.clone(),
        dataset: dataset?,
        template: if plm.is_some() { template } else { None },
        plm,
        ctr,
        prompts: PromptPlan { count, mode },
        fusion,
        stages,
        device,
        seed,
        metrics,
    })
}

fn read_device(v: &crate::dsl::Value, d: &mut Diags) -> Option<DeviceSpec> {
    let ValueKind::Word(w) = &v.kind else {
        d.err(v.span, "`device` expects `auto`, `cpu`, `cuda` or `cuda:N`");
        return None;
    };
    match w.as_str() {
        "auto" => Some(DeviceSpec::Auto),
        "cpu" => Some(DeviceSpec::Cpu),
        "cuda" => Some(DeviceSpec::Cuda(0)),
        other => {
            if let Some(n) = other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<usize>().ok())
            {
                return Some(DeviceSpec::Cuda(n));
            }
            let hint = did_you_mean(other, ["auto", "cpu", "cuda"])
                .unwrap_or_else(|| "use `auto`, `cpu`, `cuda` or `cuda:N`".into());
            d.push(Diagnostic::new(v.span, format!("unknown device `{other}`")).with_hint(hint));
            None
        }
    }
}

fn read_metrics(v: &crate::dsl::Value, d: &mut Diags) -> Vec<MetricKind> {
    let items: Vec<&crate::dsl::Value> = match &v.kind {
        ValueKind::List(items) => items.iter().collect(),
        _ => vec![v],
    };
    if items.is_empty() {
        d.err(v.span, "`metrics` needs at least one metric");
    }
    let mut out = Vec::new();
    for it in items {
        match read_choice(it, "metric", &METRICS, d) {
            Some("auc") if !out.contains(&MetricKind::Auc) => out.push(MetricKind::Auc),
            Some("logloss") if !out.contains(&MetricKind::Logloss) => out.push(MetricKind::Logloss),
            Some(m) => d.err(it.span, format!("metric `{m}` is listed twice")),
            None => {}
        }
    }
    out
}

fn resolve_backbone(id: &Ident, params: &[Param], d: &mut Diags) -> Option<CtrPlan> {
    let name = id.name.as_str();
    if !BACKBONES.contains(&name) {
        let hint = did_you_mean(name, BACKBONES)
            .unwrap_or_else(|| format!("backbones are {}", list_names(&BACKBONES)));
        d.push(Diagnostic::new(id.span, format!("unknown backbone `{name}`")).with_hint(hint));
        return None;
    }
    let accepted = backbone_params(name);
    let block = Block::new(params, format!("backbone `{name}`"));
    block.check_keys(accepted, d, |k| {
        let owners: Vec<&str> = BACKBONES
            .iter()
            .copied()
            .filter(|b| backbone_params(b).contains(&k))
            .collect();
        if owners.is_empty() {
            return None;
        }
        let accepts = if accepted.is_empty() {
            format!("`{name}` takes no parameters")
        } else {
            format!("`{name}` accepts {}", list_names(accepted))
        };
        Some((
            format!("`{k}` is not a parameter of backbone `{name}`"),
            format!("`{k}` belongs to {}; {accepts}", list_names(&owners)),
        ))
    });
    let before = d.len();
    let embed = block.usize_or("embed", 16, 1, d);
    let needs_mlp = name != "autoint";
    let mlp_checked = |d: &mut Diags| {
        let v = block.usize_list_or("mlp", &DEFAULT_MLP, 1, d);
        if v.is_empty() && needs_mlp {
            if let Some(p) = block.get("mlp") {
                d.err(
                    p.value.span,
                    format!("`mlp` of `{name}` needs at least one layer"),
                );
            }
        }
        v
    };
    let dropout = |d: &mut Diags| block.f64_or("dropout", 0.0, Range::UnitHalfOpen, d);
    let backbone = match name {
        "lr" => Backbone::Lr,
        "fm" => Backbone::Fm,
        "dnn" => Backbone::Dnn {
            mlp: mlp_checked(d),
            dropout: dropout(d),
        },
        "deepfm" => Backbone::DeepFm {
            mlp: mlp_checked(d),
            dropout: dropout(d),
        },
        "dcn" => Backbone::Dcn {
            cross: block.usize_or("cross", 3, 1, d),
            mlp: mlp_checked(d),
            dropout: dropout(d),
        },
        "dcnv2" => Backbone::DcnV2 {
            cross: block.usize_or("cross", 3, 1, d),
            mlp: mlp_checked(d),
            dropout: dropout(d),
        },
        "autoint" => {
            let heads = block.usize_or("heads", 2, 1, d);
            let att_dim = block.usize_or("att_dim", 32, 1, d);
            if !att_dim.is_multiple_of(heads) {
                let span = block
                    .get("att_dim")
                    .or(block.get("heads"))
                    .map(|p| p.value.span)
                    .unwrap_or(id.span);
                d.err(
                    span,
                    format!("`att_dim` ({att_dim}) must be a multiple of `heads` ({heads})"),
                );
            }
            Backbone::AutoInt {
                layers: block.usize_or("layers", 3, 1, d),
                heads,
                att_dim,
                mlp: block.usize_list_or("mlp", &DEFAULT_MLP, 1, d),
                dropout: dropout(d),
            }
        }
        "xdeepfm" => {
            let cin = block.usize_list_or("cin", &[128, 128], 1, d);
            if cin.is_empty() {
                if let Some(p) = block.get("cin") {
                    d.err(p.value.span, "`cin` needs at least one layer");
                }
            }
            Backbone::XDeepFm {
                cin,
                mlp: mlp_checked(d),
                dropout: dropout(d),
            }
        }
        _ => {
            let bilinear = match block.choice(
                "bilinear",
                &["field_all", "field_each", "field_interaction"],
                d,
            ) {
                Some("field_all") => BilinearKind::FieldAll,
                Some("field_each") => BilinearKind::FieldEach,
                _ => BilinearKind::FieldInteraction,
            };
            Backbone::FiBiNet {
                reduction: block.usize_or("reduction", 3, 1, d),
                bilinear,
                mlp: mlp_checked(d),
                dropout: dropout(d),
            }
        }
    };
    (d.len() == before).then_some(CtrPlan { embed, backbone })
}

/// The names of the stages before the one being resolved, in order and as
/// a set: an experiment may have thousands, and each `from` and each name is
/// looked up once.
#[derive(Default)]
struct Earlier<'a> {
    list: Vec<&'a str>,
    set: HashSet<&'a str>,
}

impl<'a> Earlier<'a> {
    fn push(&mut self, name: &'a str) {
        self.list.push(name);
        self.set.insert(name);
    }
}

fn resolve_stage(
    st: &StageDecl,
    earlier: &Earlier,
    plm: Option<&PlmPlan>,
    d: &mut Diags,
) -> Option<StagePlan> {
    let before = d.len();
    let kind_name = st.kind.name.as_str();
    let name = st.name().to_string();
    let phase = st.phase.name.as_str();
    if !STAGE_KINDS.contains(&kind_name) {
        let hint = did_you_mean(kind_name, STAGE_KINDS)
            .unwrap_or_else(|| format!("stage kinds are {}", list_names(&STAGE_KINDS)));
        d.push(
            Diagnostic::new(st.kind.span, format!("unknown stage kind `{kind_name}`"))
                .with_hint(hint),
        );
        return None;
    }
    let expected_phase = if kind_name == "pa_mlm" {
        "pretrain"
    } else {
        "finetune"
    };
    if phase != expected_phase {
        d.push(
            Diagnostic::new(
                st.phase.span,
                format!("`{kind_name}` is a {expected_phase} stage"),
            )
            .with_hint(format!("write `stage {expected_phase} {kind_name}`")),
        );
    }
    let uses_plm = kind_name != "ctr_only";
    let mut allowed: Vec<&str> = vec![
        "epochs",
        "batch",
        "lr",
        "weight_decay",
        "warmup",
        "schedule",
        "patience",
        "grad_clip",
        "accumulate",
        "eval_batch",
        "max_rows",
        "valid_rows",
    ];
    if uses_plm {
        allowed.extend(["plm_lr", "bucket"]);
    }
    match kind_name {
        "pa_mlm" => allowed.extend(["mask", "mask_unit", "head_warmup"]),
        "joint" | "plm_only" => allowed.extend(["pool", "from"]),
        _ => allowed.push("from"),
    }
    let block = Block::new(&st.params, format!("stage `{name}`"));
    block.check_keys(&allowed, d, |k| {
        let (msg, hint) = match k {
            "mask" | "mask_unit" | "head_warmup" => {
                return Some((
                    format!(
                        "`{k}` applies only to `pretrain pa_mlm` (stage `{name}` is `{kind_name}`)"
                    ),
                    "masking belongs to the PA-MLM stage".to_string(),
                ))
            }
            "pool" => (
                "`pool` applies only to `joint` and `plm_only` stages",
                "set pooling on the PLM: `plm NAME = bert(...) { pool mean }`",
            ),
            "from" => (
                "`from` applies only to `ctr_only`, `joint` and `plm_only` stages",
                "`pa_mlm` starts from the PLM checkpoint",
            ),
            "plm_lr" | "bucket" => (
                "this parameter applies only to stages that use the PLM",
                "`ctr_only` trains the backbone alone",
            ),
            _ => return None,
        };
        Some((
            format!("{msg} (stage `{name}` is `{kind_name}`)"),
            hint.to_string(),
        ))
    });
    let ctr_only = kind_name == "ctr_only";
    let schedule = match block.choice("schedule", &["constant", "linear", "cosine"], d) {
        Some("constant") => Schedule::Constant,
        Some("linear") => Schedule::Linear,
        Some("cosine") => Schedule::Cosine,
        _ if ctr_only => Schedule::Constant,
        _ => Schedule::Linear,
    };
    // The reference setup's two rates (docs/language.md): in `pa_mlm` and
    // `joint` the CTR side learns at 1e-3 and the PLM side at 5e-5; with the
    // CTR side at 5e-5 a short PA-MLM leaves the prompts uninformative.
    let (default_lr, default_plm_lr) = match kind_name {
        "pa_mlm" | "joint" => (1e-3, Some(5e-5)),
        "plm_only" => (5e-5, None),
        _ => (1e-3, None),
    };
    let train = TrainPlan {
        epochs: block.usize_or("epochs", 1, 1, d),
        batch: block.usize_or("batch", if ctr_only { 1024 } else { 32 }, 1, d),
        lr: block.f64_or("lr", default_lr, Range::Positive, d),
        plm_lr: block
            .opt_f64("plm_lr", Range::Positive, d)
            .or(default_plm_lr),
        weight_decay: block.f64_or("weight_decay", 0.0, Range::NonNegative, d),
        warmup: block.f64_or("warmup", 0.0, Range::UnitHalfOpen, d),
        schedule,
        patience: block.opt_usize("patience", 1, d),
        grad_clip: block.opt_f64("grad_clip", Range::Positive, d),
        accumulate: block.usize_or("accumulate", 1, 1, d),
        eval_batch: block.usize_or("eval_batch", if ctr_only { 4096 } else { 256 }, 1, d),
        max_rows: block.opt_usize("max_rows", 1, d),
        valid_rows: block.opt_usize("valid_rows", 1, d),
        bucket_by_length: block.bool_or("bucket", uses_plm, d),
    };
    let kind = match kind_name {
        "pa_mlm" => {
            let mask_unit = match block.choice("mask_unit", &["token", "word", "field"], d) {
                Some("word") => MaskUnit::Word,
                Some("field") => MaskUnit::Field,
                _ => MaskUnit::Token,
            };
            // One field per row is masked whole: a ratio would mean nothing.
            if let (MaskUnit::Field, Some(p)) = (mask_unit, block.get("mask")) {
                d.push(
                    Diagnostic::new(p.key.span, "`mask` has no effect with `mask_unit field`")
                        .with_hint(
                            "`mask_unit field` masks one whole field per row; remove `mask`",
                        ),
                );
            }
            StageKind::PaMlm {
                mask: block.f64_or("mask", 0.15, Range::UnitOpen, d),
                mask_unit,
                head_warmup: block.usize_or("head_warmup", 0, 0, d),
            }
        }
        "joint" => StageKind::Joint,
        "plm_only" => StageKind::PlmOnly,
        _ => {
            let from = block
                .get("from")
                .and_then(|p| read_word(&p.value, "from", d));
            if let Some(f) = &from {
                check_earlier(f, &name, earlier, d);
            }
            StageKind::CtrOnly {
                from: from.map(|f| f.name),
            }
        }
    };
    // `joint`/`plm_only { from [a, b] }`: those stages' weights, in order.
    let from = match (&kind, block.get("from")) {
        (StageKind::Joint | StageKind::PlmOnly, Some(p)) => {
            let words: Vec<Ident> = match &p.value.kind {
                ValueKind::List(items) => items
                    .iter()
                    .filter_map(|v| read_word(v, "from", d))
                    .collect(),
                _ => read_word(&p.value, "from", d).into_iter().collect(),
            };
            if words.is_empty() {
                d.err(p.value.span, "`from` needs at least one earlier stage");
            }
            for w in &words {
                check_earlier(w, &name, earlier, d);
            }
            words.into_iter().map(|w| w.name).collect()
        }
        _ => Vec::new(),
    };
    let pool_override = block.choice("pool", &POOLINGS, d).and_then(pooling);
    let pool = match kind {
        StageKind::Joint | StageKind::PlmOnly => pool_override.or(plm.map(|p| p.pool)),
        _ => None,
    };
    (d.len() == before).then_some(StagePlan {
        name,
        kind,
        from,
        train,
        pool,
    })
}

/// Reports `from X` when X is not a stage before `name`.
fn check_earlier(f: &Ident, name: &str, earlier: &Earlier, d: &mut Diags) {
    if earlier.set.contains(f.name.as_str()) {
        return;
    }
    let earlier = &earlier.list;
    let hint = if f.name == name {
        "a stage cannot start from itself".to_string()
    } else if earlier.is_empty() {
        format!("`{name}` is the first stage; remove `from`")
    } else {
        did_you_mean(&f.name, earlier.iter().copied())
            .unwrap_or_else(|| format!("earlier stages are {}", list_names(earlier)))
    };
    d.push(
        Diagnostic::new(f.span, format!("`from {}` names no earlier stage", f.name))
            .with_hint(hint),
    );
}
