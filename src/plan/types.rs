//! The resolved, fully-defaulted experiment plan.
//!
//! This is the contract between the language (`dsl` → `plan`) and everything
//! that runs (`data`, `model`, `train`, `store`). Every value the language can
//! express lands here with its default filled in; nothing downstream reads the
//! AST. Plans serialise to YAML (stored with each run) and round-trip exactly.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// One runnable experiment: a declared `experiment`, or one point of a `sweep`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentPlan {
    /// Unique run name within the file: the experiment name, or for a sweep
    /// point `sweep[param=value,...]`.
    pub name: String,
    /// The declared experiment this plan came from (the sweep's base for sweep points).
    pub experiment: String,
    /// Set for sweep points.
    pub sweep: Option<SweepPoint>,
    /// The group of runs this one repeats over seeds: the name without its
    /// seed assignment (`exp` for `exp[seed=2]`, `sw[prompts=5]` for
    /// `sw[prompts=5,seed=2]`); the run's own name when it has no repeats.
    /// Empty in plans stored before groups existed (see [`Self::group_name`]).
    #[serde(default)]
    pub group: String,
    /// Shared by every run of a file that names it: a sweep of 2 000 points
    /// over a dataset with a 6 000-entry `map` must not copy it 2 000 times.
    pub dataset: Arc<DatasetPlan>,
    /// Field-to-text template; present whenever a PLM is used.
    pub template: Option<Arc<TemplatePlan>>,
    pub plm: Option<PlmPlan>,
    /// The CTR backbone; absent only for PLM-only experiments.
    pub ctr: Option<CtrPlan>,
    pub prompts: PromptPlan,
    pub fusion: FusionPlan,
    /// In execution order.
    pub stages: Vec<StagePlan>,
    pub device: DeviceSpec,
    pub seed: u64,
    /// Metrics reported on validation and test, in order (default `[auc, logloss]`).
    pub metrics: Vec<MetricKind>,
}

impl ExperimentPlan {
    /// The run's group name; a plan from before groups is its own group.
    pub fn group_name(&self) -> &str {
        if self.group.is_empty() {
            &self.name
        } else {
            &self.group
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    pub sweep: String,
    /// (parameter path as written in the sweep, value rendered as text), in sweep order.
    pub assignments: Vec<(String, String)>,
}

// ---------------------------------------------------------------- data

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetPlan {
    pub name: String,
    pub source: SourcePlan,
    pub label: LabelRule,
    pub split: SplitPlan,
    /// Values seen fewer than this many times in the training split map to OOV.
    pub min_count: u32,
    /// Skip rows a source knows to be malformed (BookCrossing) instead of failing.
    pub skip_bad_rows: bool,
    /// In declaration order; this order is the field order everywhere.
    pub fields: Vec<FieldPlan>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourcePlan {
    #[serde(rename = "movielens_100k")]
    MovieLens100k {
        dir: PathBuf,
    },
    #[serde(rename = "movielens_1m")]
    MovieLens1m {
        dir: PathBuf,
    },
    Bookcrossing {
        dir: PathBuf,
    },
    Csv(CsvSource),
    Synthetic(SyntheticSource),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsvSource {
    pub path: PathBuf,
    /// Field separator (one or more characters, e.g. "," or "::").
    pub sep: String,
    /// The first line names the columns.
    pub header: bool,
    /// Column names when there is no header (or to rename them); empty = from header.
    pub columns: Vec<String>,
    /// Latin-1 input instead of UTF-8.
    pub latin1: bool,
}

/// Parameters of the built-in generator (see `data::synthetic` for the process).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticSource {
    pub users: usize,
    pub items: usize,
    pub rows: usize,
    pub seed: u64,
    /// Number of themes (item meaning groups / user tastes).
    pub themes: usize,
    /// Strength of the semantic (taste ↔ item meaning) signal, in logits.
    pub semantic: f64,
    /// Strength of the collaborative (id-only) signal, in logits.
    pub collaborative: f64,
    /// Logistic noise scale.
    pub noise: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LabelRule {
    /// `rating > 3`: positive when `column op value`.
    Threshold {
        column: String,
        op: CmpOp,
        value: f64,
    },
    /// `label clicked`: the column already holds 0/1.
    Binary { column: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SplitPlan {
    /// Sort by `column` (a timestamp), then cut train/valid/test by `ratios`
    /// (the language normalises ratios to sum to 1).
    ByTime { column: String, ratios: [f64; 3] },
    /// Seeded shuffle, then cut by `ratios`.
    Random { seed: u64, ratios: [f64; 3] },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldPlan {
    /// Identifier used in templates and plans.
    pub name: String,
    /// Source column this field reads (defaults to `name`).
    pub column: String,
    /// Name used in rendered text ("Job").
    pub display: String,
    pub kind: FieldKind,
    /// Value map applied before text rendering (`M: "male"`), in declaration order.
    pub map: Vec<(String, String)>,
    /// Feeds the CTR model.
    pub ctr: bool,
    /// Feeds the text.
    pub text: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FieldKind {
    /// High-cardinality identifier (user id, item id).
    Id,
    Category,
    /// Numeric value bucketised by ascending `edges` (len(edges)+1 buckets).
    Bucket {
        edges: Vec<f64>,
    },
    /// Several values in one cell separated by `sep`; mean-pooled embedding.
    Multi {
        sep: String,
    },
    /// Free text: rendered verbatim in the template; on the CTR side one id per distinct value.
    Text,
    /// A real number: scales a learned field embedding on the CTR side.
    Number,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplatePlan {
    pub name: String,
    pub form: TemplateForm,
    /// Fields rendered, in order (the dataset's `text` fields for `each`;
    /// the placeholders in order of appearance for `free`).
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TemplateForm {
    /// `each "{name} is {value}." join " "`: `pattern` rendered per field
    /// with `{name}` = display name and `{value}` = mapped value.
    Each { pattern: String, join: String },
    /// Free text with `{field}` placeholders.
    Free { text: String },
}

// ---------------------------------------------------------------- PLM

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlmPlan {
    pub name: String,
    pub family: PlmFamily,
    pub location: PlmLocation,
    /// Maximum text tokens (special tokens included); prompts come on top.
    pub max_len: usize,
    pub pool: Pooling,
    /// Use only the checkpoint's first N transformer layers (a cheaper PLM);
    /// `None` = all of them.
    #[serde(default)]
    pub layers: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlmFamily {
    Bert,
    Roberta,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlmLocation {
    /// A local HuggingFace-format folder.
    Local(PathBuf),
    /// A hub model id such as `roberta-base`.
    Hub(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    Mean,
    Cls,
    FirstLast,
    Top2,
}

// ---------------------------------------------------------------- CTR

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtrPlan {
    /// Embedding size per field (unused by `lr`, kept for uniformity).
    pub embed: usize,
    pub backbone: Backbone,
}

/// Each backbone carries exactly the parameters it accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Backbone {
    Lr,
    Fm,
    Dnn {
        mlp: Vec<usize>,
        dropout: f64,
    },
    #[serde(rename = "deepfm")]
    DeepFm {
        mlp: Vec<usize>,
        dropout: f64,
    },
    Dcn {
        cross: usize,
        mlp: Vec<usize>,
        dropout: f64,
    },
    #[serde(rename = "dcnv2")]
    DcnV2 {
        cross: usize,
        mlp: Vec<usize>,
        dropout: f64,
    },
    #[serde(rename = "autoint")]
    AutoInt {
        layers: usize,
        heads: usize,
        att_dim: usize,
        mlp: Vec<usize>,
        dropout: f64,
    },
    #[serde(rename = "xdeepfm")]
    XDeepFm {
        cin: Vec<usize>,
        mlp: Vec<usize>,
        dropout: f64,
    },
    #[serde(rename = "fibinet")]
    FiBiNet {
        reduction: usize,
        bilinear: BilinearKind,
        mlp: Vec<usize>,
        dropout: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BilinearKind {
    FieldAll,
    FieldEach,
    FieldInteraction,
}

impl Backbone {
    /// The language's name for the backbone (`dcnv2`).
    pub fn name(&self) -> &'static str {
        match self {
            Backbone::Lr => "lr",
            Backbone::Fm => "fm",
            Backbone::Dnn { .. } => "dnn",
            Backbone::DeepFm { .. } => "deepfm",
            Backbone::Dcn { .. } => "dcn",
            Backbone::DcnV2 { .. } => "dcnv2",
            Backbone::AutoInt { .. } => "autoint",
            Backbone::XDeepFm { .. } => "xdeepfm",
            Backbone::FiBiNet { .. } => "fibinet",
        }
    }

    /// Whether the backbone has a hidden representation to generate prompts from.
    pub fn can_prompt(&self) -> bool {
        !matches!(self, Backbone::Lr | Backbone::Fm)
    }
}

// ---------------------------------------------------------------- prompts

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptPlan {
    /// K, the number of soft prompts (≥ 1; ignored without a PLM).
    pub count: usize,
    pub mode: PromptMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptMode {
    /// Key/value prefixes in every layer.
    Deep,
    /// K soft embeddings prepended to the first layer's input.
    Shallow,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FusionPlan {
    /// logit = PLM logit + CTR logit, or α·PLM + (1−α)·CTR with learnable α.
    PrefixAdd { learnable_alpha: bool },
    /// logit = PLM logit alone.
    None,
}

// ---------------------------------------------------------------- stages

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagePlan {
    /// Unique within the experiment: `pretrain` for PA-MLM, else the finetune
    /// kind (`joint`, `ctr_only`, `plm_only`) unless renamed with `as`.
    pub name: String,
    pub kind: StageKind,
    /// `joint` and `plm_only`: the earlier stages whose best weights
    /// initialise this one, loaded by name in order (later ones win); empty =
    /// the previous stage's. (`ctr_only` names its source in its kind.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
    pub train: TrainPlan,
    /// Pooling of PLM states for the PLM's click prediction, for `joint` and
    /// `plm_only` stages: the stage's `pool` if given, else the PLM's. `None`
    /// for stages that do not pool (`pa_mlm`, `ctr_only`).
    #[serde(default)]
    pub pool: Option<Pooling>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StageKind {
    /// Prompt-augmented MLM; `mask` is the masking ratio (0 < mask < 1) of
    /// tokens or words; `mask_unit field` masks one whole field per row.
    PaMlm {
        mask: f64,
        #[serde(default)]
        mask_unit: MaskUnit,
        /// Optimiser steps that train the fresh MLM head alone (PLM, prompts
        /// and CTR model frozen) before PA-MLM proper; 0 = none.
        #[serde(default)]
        head_warmup: usize,
    },
    Joint,
    /// CTR backbone alone, initialised by name from stage `from` (if any).
    CtrOnly {
        from: Option<String>,
    },
    PlmOnly,
}

/// What PA-MLM masks together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskUnit {
    /// Each eligible token independently (BERT, the paper's).
    #[default]
    Token,
    /// Whole words: all tokens of a chosen word.
    Word,
    /// The whole rendered value of one randomly chosen template field per row.
    Field,
}

impl MaskUnit {
    pub fn as_str(&self) -> &'static str {
        match self {
            MaskUnit::Token => "token",
            MaskUnit::Word => "word",
            MaskUnit::Field => "field",
        }
    }
}

impl StageKind {
    pub fn needs_plm(&self) -> bool {
        matches!(
            self,
            StageKind::PaMlm { .. } | StageKind::Joint | StageKind::PlmOnly
        )
    }
    pub fn needs_ctr(&self) -> bool {
        matches!(
            self,
            StageKind::PaMlm { .. } | StageKind::Joint | StageKind::CtrOnly { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainPlan {
    pub epochs: usize,
    pub batch: usize,
    /// Learning rate of the CTR group (and of everything when `plm_lr` is unset).
    pub lr: f64,
    /// Learning rate of the PLM group (PLM, prompt generator, MLM/PLM head); defaults to `lr`.
    pub plm_lr: Option<f64>,
    pub weight_decay: f64,
    /// Warm-up as a fraction of total optimiser steps.
    pub warmup: f64,
    pub schedule: Schedule,
    /// Early-stopping patience in epochs (None = never stop early).
    pub patience: Option<usize>,
    /// Clip the global gradient norm to this value.
    pub grad_clip: Option<f64>,
    /// Micro-batches accumulated per optimiser step.
    pub accumulate: usize,
    pub eval_batch: usize,
    /// Use at most this many training rows per epoch (budgeted runs).
    pub max_rows: Option<usize>,
    /// Validate on this many rows of the validation split, drawn once per
    /// stage from the seed (the test split is always scored in full).
    #[serde(default)]
    pub valid_rows: Option<usize>,
    /// Bucket rows of similar token length into batches to cut padding.
    pub bucket_by_length: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    Linear,
    Cosine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceSpec {
    Auto,
    Cpu,
    Cuda(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    Auc,
    Logloss,
}
