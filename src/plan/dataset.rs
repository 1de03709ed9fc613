//! `dataset` declarations → [`DatasetPlan`].

use std::collections::HashSet;
use std::path::PathBuf;

use super::types::*;
use super::values::*;
use crate::dsl::diagnostic::{did_you_mean, list_names};
use crate::dsl::{
    DatasetDecl, DatasetItemKind, Diagnostic, FieldDecl, SourceExpr, Span, ValueKind,
};

pub const SOURCES: [&str; 5] = [
    "movielens_100k",
    "movielens_1m",
    "bookcrossing",
    "csv",
    "synthetic",
];
const FIELD_KINDS: [&str; 6] = ["id", "category", "bucket", "multi", "text", "number"];

const MOVIELENS_COLUMNS: [&str; 12] = [
    "user_id",
    "item_id",
    "rating",
    "timestamp",
    "age",
    "gender",
    "occupation",
    "zip",
    "title",
    "release_date",
    "genres",
    "genre",
];
const BOOKCROSSING_COLUMNS: [&str; 9] = [
    "user_id",
    "location",
    "age",
    "isbn",
    "title",
    "author",
    "year",
    "publisher",
    "rating",
];
const SYNTHETIC_COLUMNS: [&str; 7] = [
    "user_id",
    "item_id",
    "user_taste",
    "title",
    "genre",
    "label",
    "timestamp",
];

/// Columns a source is known to provide (`None`: only known after reading the file).
pub fn known_columns(source: &SourcePlan) -> Option<Vec<String>> {
    let cols: Vec<String> = match source {
        SourcePlan::MovieLens100k { .. } | SourcePlan::MovieLens1m { .. } => {
            MOVIELENS_COLUMNS.iter().map(|s| s.to_string()).collect()
        }
        SourcePlan::Bookcrossing { .. } => {
            BOOKCROSSING_COLUMNS.iter().map(|s| s.to_string()).collect()
        }
        SourcePlan::Synthetic(_) => SYNTHETIC_COLUMNS.iter().map(|s| s.to_string()).collect(),
        SourcePlan::Csv(c) if !c.columns.is_empty() => c.columns.clone(),
        SourcePlan::Csv(_) => return None,
    };
    Some(cols)
}

fn source_name(source: &SourcePlan) -> &'static str {
    match source {
        SourcePlan::MovieLens100k { .. } => "movielens_100k",
        SourcePlan::MovieLens1m { .. } => "movielens_1m",
        SourcePlan::Bookcrossing { .. } => "bookcrossing",
        SourcePlan::Csv(_) => "csv",
        SourcePlan::Synthetic(_) => "synthetic",
    }
}

/// Reports `column` when the source is known not to have it.
fn check_column(
    column: &str,
    span: Span,
    source: &SourcePlan,
    columns: &Option<Vec<String>>,
    d: &mut Diags,
) {
    let Some(cols) = columns else { return };
    if cols.iter().any(|c| c == column) {
        return;
    }
    let hint = did_you_mean(column, cols.iter().map(String::as_str))
        .unwrap_or_else(|| format!("its columns are {}", list_names(cols)));
    d.push(
        Diagnostic::new(
            span,
            format!("`{}` has no column `{column}`", source_name(source)),
        )
        .with_hint(hint),
    );
}

pub fn resolve_dataset(decl: &DatasetDecl, d: &mut Diags) -> Option<DatasetPlan> {
    let before = d.len();
    let name = &decl.name.name;
    let mut source = None;
    let mut skip_bad_rows = false;
    let mut label = None;
    let mut split = None;
    let mut min_count = None;
    let mut fields: Vec<(FieldPlan, &FieldDecl)> = Vec::new();
    let mut field_names = HashSet::new();
    let mut seen: Vec<(&str, Span)> = Vec::new();

    for item in &decl.items {
        let kw = item.keyword.name.as_str();
        if kw != "field" {
            if seen.iter().any(|(k, _)| *k == kw) {
                d.push(
                    Diagnostic::new(
                        item.keyword.span,
                        format!("dataset `{name}` sets `{kw}` twice"),
                    )
                    .with_hint("remove one of them"),
                );
                continue;
            }
            seen.push((kw, item.span));
        }
        match &item.kind {
            DatasetItemKind::Source(s) => {
                if let Some((plan, skip)) = resolve_source(s, d) {
                    source = Some(plan);
                    skip_bad_rows = skip;
                }
            }
            DatasetItemKind::Label(l) => {
                label = match &l.compare {
                    None => Some((
                        LabelRule::Binary {
                            column: l.column.name.clone(),
                        },
                        l.column.span,
                    )),
                    Some((op, v)) => {
                        let op = match op.name.as_str() {
                            ">" => CmpOp::Gt,
                            ">=" => CmpOp::Ge,
                            "<" => CmpOp::Lt,
                            "<=" => CmpOp::Le,
                            "==" => CmpOp::Eq,
                            _ => CmpOp::Ne,
                        };
                        read_f64(v, "label threshold", Range::Any, d).map(|value| {
                            (
                                LabelRule::Threshold {
                                    column: l.column.name.clone(),
                                    op,
                                    value,
                                },
                                l.column.span,
                            )
                        })
                    }
                };
            }
            DatasetItemKind::Split(s) => {
                let mut ratios = [0.0; 3];
                let mut ok = true;
                if s.ratios.len() != 3 {
                    d.push(
                        Diagnostic::new(
                            s.ratios_span,
                            format!(
                                "a split has three parts (train:valid:test), found {}",
                                s.ratios.len()
                            ),
                        )
                        .with_hint("write e.g. `8:1:1`"),
                    );
                    ok = false;
                } else {
                    for (i, r) in s.ratios.iter().enumerate() {
                        match read_f64(r, "split ratio", Range::Positive, d) {
                            Some(x) => ratios[i] = x,
                            None => ok = false,
                        }
                    }
                }
                let total: f64 = ratios.iter().sum();
                let ratios = ratios.map(|r| r / total);
                match s.method.name.as_str() {
                    "by_time" => {
                        if let Some(seed) = &s.seed {
                            d.push(
                                Diagnostic::new(seed.span, "a `by_time` split takes no seed")
                                    .with_hint(
                                        "use `split random ... seed N` for a shuffled split",
                                    ),
                            );
                        }
                        let column = s.column.as_ref().map(|c| (c.name.clone(), c.span));
                        let column = column.unwrap_or(("timestamp".to_string(), s.method.span));
                        if ok {
                            split = Some((
                                SplitPlan::ByTime {
                                    column: column.0,
                                    ratios,
                                },
                                column.1,
                            ));
                        }
                    }
                    "random" => {
                        if let Some(c) = &s.column {
                            d.push(
                                Diagnostic::new(c.span, "a `random` split takes no column")
                                    .with_hint("only `by_time(column)` names a column"),
                            );
                        }
                        let seed = s
                            .seed
                            .as_ref()
                            .and_then(|v| read_usize(v, "seed", 0, d))
                            .unwrap_or(0);
                        if ok {
                            split = Some((
                                SplitPlan::Random {
                                    seed: seed as u64,
                                    ratios,
                                },
                                s.method.span,
                            ));
                        }
                    }
                    other => {
                        let hint = did_you_mean(other, ["by_time", "random"])
                            .unwrap_or_else(|| "use `by_time` or `random`".to_string());
                        d.push(
                            Diagnostic::new(s.method.span, format!("unknown split `{other}`"))
                                .with_hint(hint),
                        );
                    }
                }
            }
            DatasetItemKind::MinCount(v) => min_count = read_usize(v, "min_count", 1, d),
            DatasetItemKind::Field(f) => {
                if !field_names.insert(f.name.name.as_str()) {
                    d.push(
                        Diagnostic::new(
                            f.name.span,
                            format!("field `{}` is declared twice", f.name.name),
                        )
                        .with_hint("field names must be unique within a dataset"),
                    );
                    continue;
                }
                if let Some(fp) = resolve_field(f, d) {
                    fields.push((fp, f));
                }
            }
        }
    }

    let Some(source) = source else {
        if !decl
            .items
            .iter()
            .any(|i| matches!(i.kind, DatasetItemKind::Source(_)))
        {
            d.push(
                Diagnostic::new(decl.name.span, format!("dataset `{name}` has no `source`"))
                    .with_hint("add e.g. `source movielens_100k(\"path/to/ml-100k\")`"),
            );
        }
        return None;
    };
    let columns = known_columns(&source);
    for (f, decl) in &fields {
        let span = decl
            .options
            .iter()
            .find(|o| o.key.name == "column")
            .map(|o| o.value.span)
            .unwrap_or(decl.name.span);
        check_column(&f.column, span, &source, &columns, d);
    }
    if label.is_none()
        && !decl
            .items
            .iter()
            .any(|i| matches!(i.kind, DatasetItemKind::Label(_)))
    {
        d.push(
            Diagnostic::new(decl.name.span, format!("dataset `{name}` has no `label`"))
                .with_hint("add e.g. `label rating > 3` or `label clicked` for a 0/1 column"),
        );
    }
    if let Some((rule, span)) = &label {
        let col = match rule {
            LabelRule::Threshold { column, .. } | LabelRule::Binary { column } => column,
        };
        check_column(col, *span, &source, &columns, d);
        if let Some((f, _)) = fields.iter().find(|(f, _)| &f.column == col) {
            d.push(
                Diagnostic::new(
                    *span,
                    format!(
                        "the label column `{col}` is also read by field `{}`",
                        f.name
                    ),
                )
                .with_hint("the model would see the answer; remove the field"),
            );
        }
    }
    if split.is_none()
        && !decl
            .items
            .iter()
            .any(|i| matches!(i.kind, DatasetItemKind::Split(_)))
    {
        d.push(
            Diagnostic::new(decl.name.span, format!("dataset `{name}` has no `split`"))
                .with_hint("add e.g. `split by_time 8:1:1` or `split random 8:1:1 seed 3`"),
        );
    }
    if let Some((SplitPlan::ByTime { column, .. }, span)) = &split {
        check_column(column, *span, &source, &columns, d);
    }
    if fields.is_empty()
        && !decl
            .items
            .iter()
            .any(|i| matches!(i.kind, DatasetItemKind::Field(_)))
    {
        d.push(
            Diagnostic::new(
                decl.name.span,
                format!("dataset `{name}` declares no fields"),
            )
            .with_hint("add e.g. `field user_id \"User ID\" id`"),
        );
    }
    if d.len() > before {
        return None;
    }
    Some(DatasetPlan {
        name: name.clone(),
        source,
        label: label?.0,
        split: split?.0,
        min_count: min_count.unwrap_or(1) as u32,
        skip_bad_rows,
        fields: fields.into_iter().map(|(f, _)| f).collect(),
    })
}

fn resolve_source(s: &SourceExpr, d: &mut Diags) -> Option<(SourcePlan, bool)> {
    let kind = s.kind.name.as_str();
    let owner = format!("source `{kind}`");
    let block = Block::new(&s.options, owner.clone());
    let one_path = |d: &mut Diags| -> Option<PathBuf> {
        match s.positional.as_slice() {
            [p] => read_path(p, "path", d).map(PathBuf::from),
            [] => {
                d.push(
                    Diagnostic::new(s.kind.span, format!("source `{kind}` needs a path"))
                        .with_hint(format!(
                            "write `{kind}(\"path\")` or `{kind}(env(\"VAR\", \"default\"))`"
                        )),
                );
                None
            }
            [_, extra, ..] => {
                d.err(
                    extra.span,
                    format!(
                        "source `{kind}` takes one path; named options are written `name value`"
                    ),
                );
                None
            }
        }
    };
    match kind {
        "movielens_100k" | "movielens_1m" => {
            block.check_keys(&[], d, |_| None);
            let dir = one_path(d)?;
            Some((
                if kind == "movielens_100k" {
                    SourcePlan::MovieLens100k { dir }
                } else {
                    SourcePlan::MovieLens1m { dir }
                },
                false,
            ))
        }
        "bookcrossing" => {
            block.check_keys(&["skip_bad_rows"], d, |_| None);
            let skip = block.bool_or("skip_bad_rows", false, d);
            let dir = one_path(d)?;
            Some((SourcePlan::Bookcrossing { dir }, skip))
        }
        "csv" => {
            block.check_keys(
                &["sep", "header", "columns", "latin1", "skip_bad_rows"],
                d,
                |_| None,
            );
            let sep = match block.get("sep") {
                Some(p) => match read_string(&p.value, "sep", d) {
                    Some(s) if s.is_empty() => {
                        d.err(p.value.span, "`sep` must not be empty");
                        ",".to_string()
                    }
                    Some(s) => s,
                    None => ",".to_string(),
                },
                None => ",".to_string(),
            };
            let header = block.bool_or("header", true, d);
            let mut columns = Vec::new();
            let mut listed = HashSet::new();
            if let Some(p) = block.get("columns") {
                match &p.value.kind {
                    ValueKind::List(items) => {
                        for it in items {
                            match &it.kind {
                                ValueKind::Str(x) | ValueKind::Word(x) => {
                                    if !listed.insert(x.as_str()) {
                                        d.err(it.span, format!("column `{x}` is listed twice"));
                                    }
                                    columns.push(x.clone());
                                }
                                _ => d.err(it.span, "`columns` expects column names"),
                            }
                        }
                    }
                    _ => d.err(p.value.span, "`columns` expects a list of column names"),
                }
            }
            if !header && columns.is_empty() {
                d.push(
                    Diagnostic::new(
                        s.kind.span,
                        "a csv source without a header needs `columns [...]`",
                    )
                    .with_hint(
                        "name the columns, e.g. `columns [\"user_id\", \"item_id\", \"clicked\"]`",
                    ),
                );
            }
            let latin1 = block.bool_or("latin1", false, d);
            let skip = block.bool_or("skip_bad_rows", false, d);
            let path = one_path(d)?;
            Some((
                SourcePlan::Csv(CsvSource {
                    path,
                    sep,
                    header,
                    columns,
                    latin1,
                }),
                skip,
            ))
        }
        "synthetic" => {
            let keys = [
                "users",
                "items",
                "rows",
                "seed",
                "themes",
                "semantic",
                "collaborative",
                "noise",
            ];
            block.check_keys(&keys, d, |_| None);
            if let Some(p) = s.positional.first() {
                d.push(
                    Diagnostic::new(p.span, "source `synthetic` takes no path")
                        .with_hint("write `synthetic { users 200, items 300, rows 20000 }`"),
                );
            }
            let plan = SyntheticSource {
                users: block.usize_or("users", 200, 1, d),
                items: block.usize_or("items", 300, 1, d),
                rows: block.usize_or("rows", 20000, 1, d),
                seed: block.usize_or("seed", 7, 0, d) as u64,
                themes: block.usize_or("themes", 6, 1, d),
                semantic: block.f64_or("semantic", 2.0, Range::NonNegative, d),
                collaborative: block.f64_or("collaborative", 1.0, Range::NonNegative, d),
                noise: block.f64_or("noise", 1.0, Range::NonNegative, d),
            };
            Some((SourcePlan::Synthetic(plan), false))
        }
        other => {
            let hint = did_you_mean(other, SOURCES)
                .unwrap_or_else(|| format!("sources are {}", list_names(&SOURCES)));
            d.push(
                Diagnostic::new(s.kind.span, format!("unknown source `{other}`")).with_hint(hint),
            );
            None
        }
    }
}

fn resolve_field(f: &FieldDecl, d: &mut Diags) -> Option<FieldPlan> {
    let name = &f.name.name;
    let k = f.kind.name.as_str();
    let takes_arg = |d: &mut Diags| {
        if let Some(a) = &f.kind_arg {
            d.err(a.span, format!("field kind `{k}` takes no argument"));
        }
    };
    let kind = match k {
        "id" => {
            takes_arg(d);
            FieldKind::Id
        }
        "category" => {
            takes_arg(d);
            FieldKind::Category
        }
        "text" => {
            takes_arg(d);
            FieldKind::Text
        }
        "number" => {
            takes_arg(d);
            FieldKind::Number
        }
        "bucket" => match &f.kind_arg {
            None => {
                d.push(
                    Diagnostic::new(
                        f.kind.span,
                        format!("field `{name}`: `bucket` needs its edges"),
                    )
                    .with_hint("write e.g. `bucket [18, 25, 35]`"),
                );
                return None;
            }
            Some(v) => {
                let edges = read_f64_list(v, "bucket", d)?;
                if edges.is_empty() {
                    d.err(
                        v.span,
                        format!("field `{name}`: `bucket` needs at least one edge"),
                    );
                    return None;
                }
                if edges.windows(2).any(|w| w[1] <= w[0]) {
                    d.err(
                        v.span,
                        format!("field `{name}`: bucket edges must be strictly ascending"),
                    );
                    return None;
                }
                FieldKind::Bucket { edges }
            }
        },
        "multi" => match &f.kind_arg {
            None => FieldKind::Multi {
                sep: "|".to_string(),
            },
            Some(v) => match &v.kind {
                ValueKind::Str(s) if !s.is_empty() => FieldKind::Multi { sep: s.clone() },
                _ => {
                    d.push(
                        Diagnostic::new(
                            v.span,
                            format!("field `{name}`: `multi` takes a non-empty separator string"),
                        )
                        .with_hint("write e.g. `multi \"|\"`"),
                    );
                    return None;
                }
            },
        },
        other => {
            let hint = did_you_mean(other, FIELD_KINDS)
                .unwrap_or_else(|| format!("field kinds are {}", list_names(&FIELD_KINDS)));
            d.push(
                Diagnostic::new(f.kind.span, format!("unknown field kind `{other}`"))
                    .with_hint(hint),
            );
            return None;
        }
    };
    let mut map = Vec::new();
    let mut keys = HashSet::new();
    if let Some(m) = &f.map {
        if matches!(kind, FieldKind::Bucket { .. } | FieldKind::Number) {
            d.push(
                Diagnostic::new(m.span, format!("field `{name}` is a `{k}` field; a value map applies only to id, category, multi and text fields"))
            );
        }
        for (key, val) in &m.entries {
            if !keys.insert(key.value.as_str()) {
                d.err(key.span, format!("map key `{}` is given twice", key.value));
                continue;
            }
            map.push((key.value.clone(), val.value.clone()));
        }
    }
    let block = Block::new(&f.options, format!("field `{name}`"));
    block.check_keys(&["column", "ctr", "text"], d, |_| None);
    let column = match block.get("column") {
        Some(p) => read_string(&p.value, "column", d).unwrap_or_else(|| name.clone()),
        None => name.clone(),
    };
    if column.is_empty() {
        if let Some(p) = block.get("column") {
            d.err(p.value.span, "`column` must not be empty");
        }
    }
    let ctr = block.bool_or("ctr", true, d);
    let text = block.bool_or("text", true, d);
    if !ctr && !text {
        d.push(
            Diagnostic::new(
                f.name.span,
                format!("field `{name}` feeds neither the CTR model nor the text"),
            )
            .with_hint("remove the field, or drop `ctr false` / `text false`"),
        );
    }
    Some(FieldPlan {
        name: name.clone(),
        column,
        display: f
            .display
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_else(|| name.clone()),
        kind,
        map,
        ctr,
        text,
    })
}
