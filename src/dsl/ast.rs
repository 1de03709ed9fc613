//! The syntax tree of an experiment file. Every node that can be the subject
//! of a diagnostic carries the byte span it was parsed from.

/// Byte range `[start, end)` in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

/// A name as written, with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Str {
    /// The string with escapes resolved.
    pub value: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub kind: ValueKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    /// A number; `text` keeps the spelling (for messages and sweep run names).
    Number {
        value: f64,
        text: String,
    },
    Str(String),
    /// A bare word: `mean`, `true`, `cuda:1`, `dcnv2`.
    Word(String),
    List(Vec<Value>),
    /// `env("VAR", "default")`.
    Env {
        var: Str,
        default: Option<Str>,
    },
    /// `hub("roberta-base")`.
    Hub(Str),
}

impl Value {
    /// The value as it would be written back (sweep run names, messages).
    pub fn display(&self) -> String {
        match &self.kind {
            ValueKind::Number { text, .. } => text.clone(),
            ValueKind::Str(s) => s.clone(),
            ValueKind::Word(w) => w.clone(),
            ValueKind::List(items) => {
                let inner: Vec<String> = items.iter().map(Value::display).collect();
                format!("[{}]", inner.join(","))
            }
            ValueKind::Env { var, default } => match default {
                Some(d) => format!("env({:?},{:?})", var.value, d.value),
                None => format!("env({:?})", var.value),
            },
            ValueKind::Hub(s) => format!("hub({:?})", s.value),
        }
    }

    /// What kind of value this is, in words.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            ValueKind::Number { .. } => "a number",
            ValueKind::Str(_) => "a string",
            ValueKind::Word(_) => "a word",
            ValueKind::List(_) => "a list",
            ValueKind::Env { .. } => "an `env(...)` path",
            ValueKind::Hub(_) => "a `hub(...)` id",
        }
    }
}

/// `key value` inside `{ ... }` or a call's argument list.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub key: Ident,
    pub value: Value,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Dataset(DatasetDecl),
    Template(TemplateDecl),
    Plm(PlmDecl),
    Experiment(ExperimentDecl),
    Sweep(SweepDecl),
}

// ------------------------------------------------------------ datasets

#[derive(Debug, Clone, PartialEq)]
pub struct DatasetDecl {
    pub name: Ident,
    pub items: Vec<DatasetItem>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatasetItem {
    pub kind: DatasetItemKind,
    /// The leading keyword (`source`, `label`, ...).
    pub keyword: Ident,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DatasetItemKind {
    Source(SourceExpr),
    Label(LabelExpr),
    Split(SplitExpr),
    MinCount(Value),
    Field(FieldDecl),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceExpr {
    pub kind: Ident,
    /// Positional arguments (paths), in order.
    pub positional: Vec<Value>,
    /// Named options (`sep ","`, `users 200`).
    pub options: Vec<Param>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabelExpr {
    pub column: Ident,
    /// `> 3`: the comparison and its right-hand side.
    pub compare: Option<(Ident, Value)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SplitExpr {
    pub method: Ident,
    pub column: Option<Ident>,
    pub ratios: Vec<Value>,
    pub ratios_span: Span,
    pub seed: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldDecl {
    pub name: Ident,
    pub display: Option<Str>,
    pub kind: Ident,
    /// `bucket [edges]` or `multi "|"`.
    pub kind_arg: Option<Value>,
    pub map: Option<MapOption>,
    /// `column "src"`, `ctr false`, `text false`, in order written.
    pub options: Vec<Param>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MapOption {
    pub entries: Vec<(Str, Str)>,
    pub span: Span,
}

// ------------------------------------------------------------ templates and PLMs

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateDecl {
    pub name: Ident,
    pub body: TemplateBody,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TemplateBody {
    Each { pattern: Str, join: Option<Str> },
    Free(Str),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlmDecl {
    pub name: Ident,
    pub family: Ident,
    pub location: Value,
    pub params: Vec<Param>,
    pub span: Span,
}

// ------------------------------------------------------------ experiments

#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentDecl {
    pub name: Ident,
    pub extends: Option<Ident>,
    pub items: Vec<ExpItem>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExpItem {
    pub kind: ExpItemKind,
    pub keyword: Ident,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExpItemKind {
    Data(Ident),
    Text(Ident),
    /// `plm minilm { max_len 32 }` or `plm none`.
    Plm {
        name: Ident,
        params: Vec<Param>,
    },
    /// `ctr dcnv2 { ... }` or `ctr none`.
    Ctr {
        backbone: Ident,
        params: Vec<Param>,
    },
    Prompts {
        count: Value,
        mode: Option<Ident>,
    },
    Fusion {
        kind: Ident,
        alpha: Option<Span>,
    },
    Device(Value),
    Seed(Value),
    /// `seeds [1, 2, 3]`: one run per seed, grouped.
    Seeds(Value),
    Metrics(Value),
    Stage(StageDecl),
    Stages(Vec<StageDecl>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageDecl {
    /// `pretrain` or `finetune`.
    pub phase: Ident,
    pub kind: Ident,
    pub alias: Option<Ident>,
    pub params: Vec<Param>,
    pub span: Span,
}

impl StageDecl {
    /// The stage's name: its alias, `pretrain` for PA-MLM, else its kind.
    pub fn name(&self) -> &str {
        if let Some(a) = &self.alias {
            &a.name
        } else if self.kind.name == "pa_mlm" {
            "pretrain"
        } else {
            &self.kind.name
        }
    }

    /// Span naming the stage (alias if any, else kind).
    pub fn name_span(&self) -> Span {
        self.alias
            .as_ref()
            .map(|a| a.span)
            .unwrap_or(self.kind.span)
    }
}

// ------------------------------------------------------------ sweeps

#[derive(Debug, Clone, PartialEq)]
pub struct SweepDecl {
    pub name: Ident,
    pub base: Ident,
    pub axes: Vec<SweepAxis>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SweepAxis {
    /// Dotted parameter path as written (`stages.joint.lr`).
    pub path: Ident,
    pub values: Vec<Value>,
    pub values_span: Span,
}
