//! The `--where` language and field references for `--sort` / `--metric`.
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | "(" expr ")" | field test
//! test    := op value | "~" value | "is" ["not"] "null"
//! op      := = | == | != | <> | < | <= | > | >=
//! value   := number | 'text' | "text" | word
//! field   := column | params.<key> | <stage>.<metric>
//! ```
//!
//! The grammar is `grammar/where.pest`, parsed in `filter/parse.rs`; every
//! SQL fragment is made here. Expressions compile to SQL over the
//! `run_summary` view (alias `s`) with every user value bound as a parameter;
//! field names only select from fixed SQL fragments, so no user text ever
//! reaches the SQL string. The SQL is the same for SQLite and PostgreSQL;
//! placeholders are written `?` and numbered for the backend by [`Sql::render`].

mod parse;

use super::dialect::Placeholders;
use crate::error::invalid;
use parse::At;
pub(crate) use parse::StageRef;

/// A value bound to a `?` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Text(String),
    Real(f64),
    /// Integers where the SQL needs one (`LIMIT`).
    Int(i64),
}

/// A piece of SQL with its bindings, in placeholder order.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Sql {
    pub sql: String,
    pub binds: Vec<Bind>,
}

impl Sql {
    /// The SQL text with its `?` placeholders in `style`, numbered from 1.
    pub fn render(&self, style: Placeholders) -> String {
        style.render(&self.sql, 1)
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }

    /// Appends another fragment and its bindings.
    pub fn append(&mut self, other: Sql) {
        self.sql.push_str(&other.sql);
        self.binds.extend(other.binds);
    }

    /// Appends `?` bound to `value`.
    pub fn push_bind(&mut self, value: Bind) {
        self.sql.push('?');
        self.binds.push(value);
    }
}

/// Which way is better for a field (for `--sort` defaults, `best`, `compare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    /// No natural order of quality (ids, names): sort ascending.
    Neither,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Num,
    Text,
    Status,
}

/// Columns of `run_summary` usable in expressions: (name, SQL column, type, better).
const COLUMNS: &[(&str, &str, Ty, Better)] = &[
    ("id", "id", Ty::Num, Better::Neither),
    ("experiment", "experiment", Ty::Text, Better::Neither),
    ("name", "name", Ty::Text, Better::Neither),
    ("sweep", "sweep_point", Ty::Text, Better::Neither),
    ("sweep_point", "sweep_point", Ty::Text, Better::Neither),
    ("status", "status", Ty::Status, Better::Neither),
    ("started", "started_at", Ty::Text, Better::Neither),
    ("started_at", "started_at", Ty::Text, Better::Neither),
    ("ended", "ended_at", Ty::Text, Better::Neither),
    ("ended_at", "ended_at", Ty::Text, Better::Neither),
    ("duration", "duration_s", Ty::Num, Better::Lower),
    ("duration_s", "duration_s", Ty::Num, Better::Lower),
    ("device", "device", Ty::Text, Better::Neither),
    ("host", "host", Ty::Text, Better::Neither),
    ("seed", "seed", Ty::Num, Better::Neither),
    ("version", "crate_version", Ty::Text, Better::Neither),
    ("crate_version", "crate_version", Ty::Text, Better::Neither),
    ("error", "error", Ty::Text, Better::Neither),
    ("final_stage", "final_stage", Ty::Text, Better::Neither),
    ("best_stage", "best_stage", Ty::Text, Better::Neither),
    ("best_valid_auc", "best_valid_auc", Ty::Num, Better::Higher),
    ("valid_auc", "best_valid_auc", Ty::Num, Better::Higher),
    ("test_auc", "test_auc", Ty::Num, Better::Higher),
    ("test_logloss", "test_logloss", Ty::Num, Better::Lower),
    ("group", "group_name", Ty::Text, Better::Neither),
    ("group_name", "group_name", Ty::Text, Better::Neither),
    ("group_id", "group_id", Ty::Num, Better::Neither),
];

/// Per-stage metrics: `<stage>.<metric>`.
const STAGE_METRICS: &[&str] = &[
    "train_auc",
    "train_logloss",
    "valid_auc",
    "valid_logloss",
    "test_auc",
    "test_logloss",
    "best_epoch",
    "seconds",
    "train_samples_per_s",
    "infer_samples_per_s",
];

pub(crate) const STATUSES: &[&str] = &["RUNNING", "FINISHED", "FAILED", "INTERRUPTED"];

/// A resolved field reference.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field {
    Column {
        sql: &'static str,
        ty_num: bool,
        status: bool,
        better: Better,
    },
    Param(String),
    Stage {
        stage: String,
        metric: &'static str,
    },
    /// `<stage>.valid.<key>`: a metric of the stage's validation (PA-MLM's
    /// `mlm_acc`, `prompt_gap`, `prompt_gap[title]`) at its best epoch.
    Extra {
        stage: String,
        key: String,
    },
}

impl Field {
    pub fn better(&self) -> Better {
        match self {
            Field::Column { better, .. } => *better,
            Field::Param(_) => Better::Neither,
            Field::Stage { metric, .. } => stage_metric_better(metric),
            Field::Extra { key, .. } => extra_better(key),
        }
    }

    fn is_num(&self) -> bool {
        match self {
            Field::Column { ty_num, .. } => *ty_num,
            Field::Param(_) => false,
            Field::Stage { .. } | Field::Extra { .. } => true,
        }
    }

    /// SQL for the field's value on run `s` (params: the text value).
    pub fn value_sql(&self) -> Sql {
        match self {
            Field::Column { sql, .. } => Sql {
                sql: format!("s.{sql}"),
                binds: vec![],
            },
            Field::Param(key) => Sql {
                sql: "(SELECT p.value FROM params p WHERE p.run_id = s.id AND p.key = ?)".into(),
                binds: vec![Bind::Text(key.clone())],
            },
            Field::Stage { stage, metric } => stage_metric_sql(stage, metric),
            // The best epoch's validation (the last one when none is marked best).
            Field::Extra { stage, key } => Sql {
                sql: "(SELECT json_extract(e.extra_json, '$.\"' || ? || '\"') FROM evaluations e \
                      LEFT JOIN stages st ON st.run_id = e.run_id AND st.stage = e.stage \
                      WHERE e.run_id = s.id AND e.stage = ? AND e.split = 'valid' \
                      ORDER BY (e.epoch = st.best_epoch) DESC, e.epoch DESC LIMIT 1)"
                    .into(),
                binds: vec![Bind::Text(key.clone()), Bind::Text(stage.clone())],
            },
        }
    }

    /// SQL for the field's numeric value: params their numeric reading,
    /// numeric fields as a real, text fields NULL.
    pub fn number_sql(&self) -> Sql {
        match self {
            Field::Param(key) => Sql {
                sql: "(SELECT p.num FROM params p WHERE p.run_id = s.id AND p.key = ?)".into(),
                binds: vec![Bind::Text(key.clone())],
            },
            f if f.is_num() => {
                let v = f.value_sql();
                Sql {
                    sql: format!("CAST({} AS DOUBLE PRECISION)", v.sql),
                    binds: v.binds,
                }
            }
            _ => Sql {
                sql: "CAST(NULL AS DOUBLE PRECISION)".into(),
                binds: vec![],
            },
        }
    }

    /// `ORDER BY` terms sorting by this field: runs without a value last in
    /// either direction (spelled out: SQLite sorts NULL first, PostgreSQL
    /// last), ties newest first. Params sort numerically where their value
    /// is a number, those before the textual ones.
    pub fn order_sql(&self, descending: bool) -> Sql {
        let dir = if descending { "DESC" } else { "ASC" };
        let mut out = Sql::default();
        match self {
            Field::Param(key) => {
                let sub = |col: &str| Sql {
                    sql: format!(
                        "(SELECT p.{col} FROM params p WHERE p.run_id = s.id AND p.key = ?)"
                    ),
                    binds: vec![Bind::Text(key.clone())],
                };
                let (value, num) = (sub("value"), sub("num"));
                out.append(value.clone());
                out.push(" IS NULL, ");
                out.append(num.clone());
                out.push(" IS NULL, ");
                out.append(num);
                out.push(&format!(" {dir}, "));
                out.append(value);
                out.push(&format!(" {dir}"));
            }
            other => {
                let v = other.value_sql();
                out.push("(");
                out.append(v.clone());
                out.push(") IS NULL, ");
                out.append(v);
                out.push(&format!(" {dir}"));
            }
        }
        out.push(", s.id DESC");
        out
    }
}

fn stage_metric_better(metric: &str) -> Better {
    if metric.ends_with("_auc") || metric.ends_with("samples_per_s") {
        Better::Higher
    } else if metric.ends_with("_logloss") || metric == "seconds" {
        Better::Lower
    } else {
        Better::Neither
    }
}

/// Accuracies and prompt gaps: higher; losses: lower; counts: neither.
fn extra_better(key: &str) -> Better {
    if key.starts_with("mlm_acc") || key.starts_with("prompt_gap") || key.ends_with("_auc") {
        Better::Higher
    } else if key.contains("loss") {
        Better::Lower
    } else {
        Better::Neither
    }
}

fn stage_metric_sql(stage: &str, metric: &str) -> Sql {
    let binds = vec![Bind::Text(stage.to_string())];
    let sql = match metric.split_once('_') {
        Some((split @ ("train" | "valid" | "test"), m @ ("auc" | "logloss")))
            if !metric.contains("samples") =>
        {
            if split == "test" {
                format!(
                    "(SELECT e.{m} FROM evaluations e WHERE e.run_id = s.id AND e.stage = ? AND e.split = 'test' \
                     ORDER BY e.epoch DESC LIMIT 1)"
                )
            } else {
                // Over epochs: the best value.
                let agg = if m == "auc" { "MAX" } else { "MIN" };
                format!(
                    "(SELECT {agg}(e.{m}) FROM evaluations e WHERE e.run_id = s.id AND e.stage = ? AND e.split = '{split}')"
                )
            }
        }
        _ => {
            // best_epoch, seconds, train_samples_per_s, infer_samples_per_s: stage columns.
            let col = STAGE_METRICS
                .iter()
                .find(|m| **m == metric)
                .copied()
                .unwrap_or("seconds");
            format!("(SELECT st.{col} FROM stages st WHERE st.run_id = s.id AND st.stage = ?)")
        }
    };
    Sql { sql, binds }
}

/// Resolves a field name; `Err` carries a message (without position).
pub(crate) fn resolve_field(name: &str) -> Result<Field, String> {
    if let Some(key) = name.strip_prefix("params.") {
        if key.is_empty() {
            return Err("`params.` needs a key, e.g. `params.ctr.backbone.name`".into());
        }
        return Ok(Field::Param(key.to_string()));
    }
    if let Some(&(_, sql, ty, better)) = COLUMNS.iter().find(|c| c.0.eq_ignore_ascii_case(name)) {
        return Ok(Field::Column {
            sql,
            ty_num: ty == Ty::Num,
            status: ty == Ty::Status,
            better,
        });
    }
    if let Some((stage, metric)) = name.split_once('.') {
        if stage.is_empty() {
            return Err(format!("`{name}` names no stage before the dot"));
        }
        if let Some(key) = metric.strip_prefix("valid.") {
            if key.is_empty() {
                return Err(format!(
                    "`{name}` needs a metric after `valid.`, e.g. `{stage}.valid.prompt_gap`"
                ));
            }
            return Ok(Field::Extra {
                stage: stage.to_string(),
                key: key.to_string(),
            });
        }
        return match STAGE_METRICS.iter().find(|m| **m == metric) {
            Some(m) => Ok(Field::Stage {
                stage: stage.to_string(),
                metric: m,
            }),
            None => {
                let hint = suggest(metric, STAGE_METRICS.iter().copied());
                Err(format!(
                    "unknown stage metric `{metric}` in `{name}`{hint}; stage metrics: {}, \
                     or valid.<key> for another validation metric at the best epoch (valid.mlm_acc, valid.prompt_gap)",
                    STAGE_METRICS.join(", ")
                ))
            }
        };
    }
    let hint = suggest(name, COLUMNS.iter().map(|c| c.0));
    Err(format!("unknown field `{name}`{hint}; {}", fields_help()))
}

pub(crate) fn fields_help() -> String {
    let mut cols: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
    cols.dedup();
    format!(
        "fields are {}, params.<key>, and <stage>.<metric>",
        cols.join(", ")
    )
}

pub(crate) fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    if name.len() > crate::dsl::diagnostic::MAX_SUGGEST_LEN {
        return String::new();
    }
    candidates
        .map(|c| (strsim::levenshtein(&name.to_ascii_lowercase(), c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

// ---------------------------------------------------------------- SQL of tests

/// A value as written: a number (with its text) or text.
pub(super) enum Value {
    Num(f64, String),
    Text(String),
}

pub(super) fn combine(left: Sql, op: &str, right: Sql) -> Sql {
    let mut binds = left.binds;
    binds.extend(right.binds);
    Sql {
        sql: format!("({} {op} {})", left.sql, right.sql),
        binds,
    }
}

pub(super) fn null_test(field: &Field, negate: bool) -> Sql {
    match field {
        Field::Param(key) => {
            // A param is null when absent or unset (`flatten_params` renders None as "none").
            let exists = "EXISTS (SELECT 1 FROM params p WHERE p.run_id = s.id AND p.key = ? AND p.value != 'none')";
            Sql {
                sql: if negate {
                    exists.to_string()
                } else {
                    format!("NOT {exists}")
                },
                binds: vec![Bind::Text(key.clone())],
            }
        }
        other => {
            let v = other.value_sql();
            Sql {
                sql: format!("({} IS {}NULL)", v.sql, if negate { "NOT " } else { "" }),
                binds: v.binds,
            }
        }
    }
}

fn sql_op(op: &str) -> &'static str {
    match op {
        "=" => "=",
        "!=" => "!=",
        "<" => "<",
        "<=" => "<=",
        ">" => ">",
        _ => ">=",
    }
}

pub(super) fn compare(field: &Field, name: &str, op: &str, value: Value) -> Result<Sql, String> {
    match field {
        Field::Param(key) => {
            let key = Bind::Text(key.clone());
            let cond = match (&value, op) {
                (_, "~") => {
                    let text = match value {
                        Value::Num(_, t) | Value::Text(t) => t,
                    };
                    return Ok(Sql {
                        sql: format!(
                            "EXISTS (SELECT 1 FROM params p WHERE p.run_id = s.id AND p.key = ? AND {})",
                            contains_sql("p.value")
                        ),
                        binds: vec![key, contains_pattern(&text)],
                    });
                }
                (Value::Num(v, text), "=" | "!=") => {
                    // Equal as a number or as written text.
                    let eq = "(COALESCE(p.num = ?, FALSE) OR p.value = ?)";
                    let cond = if op == "=" {
                        eq.to_string()
                    } else {
                        format!("NOT {eq}")
                    };
                    (cond, vec![Bind::Real(*v), Bind::Text(text.clone())])
                }
                (Value::Num(v, _), _) => (format!("p.num {} ?", sql_op(op)), vec![Bind::Real(*v)]),
                (Value::Text(t), _) => (
                    format!("p.value {} ?", sql_op(op)),
                    vec![Bind::Text(t.clone())],
                ),
            };
            let mut binds = vec![key];
            binds.extend(cond.1);
            Ok(Sql {
                sql: format!(
                    "EXISTS (SELECT 1 FROM params p WHERE p.run_id = s.id AND p.key = ? AND {})",
                    cond.0
                ),
                binds,
            })
        }
        _ => {
            let lhs = field.value_sql();
            let status = matches!(field, Field::Column { status: true, .. });
            let rhs = match value {
                Value::Num(v, _) if field.is_num() => Bind::Real(v),
                Value::Text(t) if field.is_num() => {
                    return Err(format!("`{name}` is a number, but `{t}` is text"));
                }
                Value::Num(_, t) | Value::Text(t) => {
                    if status {
                        let up = t.to_ascii_uppercase();
                        if !STATUSES.contains(&up.as_str()) {
                            return Err(format!(
                                "`{t}` is not a run status; statuses are {}",
                                STATUSES.join(", ")
                            ));
                        }
                        Bind::Text(up)
                    } else {
                        Bind::Text(t)
                    }
                }
            };
            let sql = if op == "~" {
                if field.is_num() {
                    return Err(format!(
                        "`~` (contains) needs a text field; `{name}` is a number"
                    ));
                }
                format!("({})", contains_sql(&lhs.sql))
            } else {
                format!("({} {} ?)", lhs.sql, sql_op(op))
            };
            let rhs = match rhs {
                Bind::Text(t) if op == "~" => contains_pattern(&t),
                other => other,
            };
            let mut binds = lhs.binds;
            binds.push(rhs);
            Ok(Sql { sql, binds })
        }
    }
}

/// Case-insensitive substring test of `expr` against a pattern bound by
/// [`contains_pattern`]: `LIKE` with an explicit escape character reads the
/// same in SQLite and PostgreSQL (`instr` and `strpos` do not).
fn contains_sql(expr: &str) -> String {
    format!("lower({expr}) LIKE lower(?) ESCAPE '\\'")
}

/// `%text%` with LIKE's wildcards in `text` escaped, so `~ 50%` means the
/// characters "50%".
fn contains_pattern(text: &str) -> Bind {
    let mut p = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    Bind::Text(p)
}

fn render(src: &str, at: &At) -> String {
    let col = src[..at.start.min(src.len())].chars().count();
    let width = src[at.start.min(src.len())..at.end.min(src.len())]
        .chars()
        .count()
        .max(1);
    format!(
        "invalid --where expression: {}\n  {}\n  {}{}",
        at.msg,
        src,
        " ".repeat(col),
        "^".repeat(width)
    )
}

/// Longer expressions are refused before parsing: lexing costs ~0.4 µs a
/// character, so a 700 000-character paste took 300 ms (found by fuzzing),
/// and no filter a person writes comes near this.
pub const MAX_WHERE_CHARS: usize = 4096;

/// A compiled `--where` expression and the stages its fields name.
pub(crate) struct Where {
    pub sql: Sql,
    pub stages: Vec<StageRef>,
}

/// Compiles a `--where` expression; errors are `crate::error::invalid` with a
/// caret under the offending token.
#[cfg(test)]
pub(crate) fn parse_where(src: &str) -> anyhow::Result<Sql> {
    compile_where(src).map(|w| w.sql)
}

/// Compiles a `--where` expression and lists the stages it names; errors are
/// `crate::error::invalid` with a caret under the offending token.
pub(crate) fn compile_where(src: &str) -> anyhow::Result<Where> {
    let chars = src.chars().count();
    if chars > MAX_WHERE_CHARS {
        return Err(invalid(format!(
            "invalid --where expression: it is {chars} characters long, more than the {MAX_WHERE_CHARS} allowed \
             (filters are a few conditions; use `--experiment`, `--sweep` or several commands)"
        )));
    }
    match parse::compile(src) {
        Ok(Some(c)) => Ok(Where {
            sql: c.sql,
            stages: c.stages,
        }),
        Ok(None) => Err(invalid(
            "invalid --where expression: it is empty (try `test_auc > 0.78`)",
        )),
        Err(at) => Err(invalid(render(src, &at))),
    }
}

/// An error about part of a `--where` expression, with the caret under it.
pub(crate) fn where_error(src: &str, at: &StageRef, msg: String) -> anyhow::Error {
    invalid(render(
        src,
        &At {
            start: at.start,
            end: at.end,
            msg,
        },
    ))
}

/// Resolves a field for `--sort` / `--metric`, as an invalid-input error.
pub(crate) fn field_arg(flag: &str, name: &str) -> anyhow::Result<Field> {
    resolve_field(name.trim()).map_err(|msg| invalid(format!("invalid {flag} `{name}`: {msg}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        parse_where(src)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn compiles_with_bound_values_only() {
        let sql =
            parse_where("test_auc > 0.78 and params.ctr.backbone.name = dcnv2").expect("parses");
        assert_eq!(
            sql.binds,
            vec![
                Bind::Real(0.78),
                Bind::Text("ctr.backbone.name".into()),
                Bind::Text("dcnv2".into())
            ]
        );
        assert!(sql.sql.starts_with("((s.test_auc > ?) AND EXISTS"));
        assert!(!sql.sql.contains("dcnv2"));
        // Hostile text stays a bound value.
        let sql = parse_where("name = \"x'); DROP TABLE runs; --\"").expect("parses");
        assert_eq!(sql.sql, "(s.name = ?)");
        assert_eq!(
            sql.binds,
            vec![Bind::Text("x'); DROP TABLE runs; --".into())]
        );
    }

    #[test]
    fn precedence_not_and_or_and_parentheses() {
        let sql =
            parse_where("status = finished or not (test_auc >= 1e-1 and joint.valid_auc < .9)")
                .expect("parses");
        assert_eq!(
            sql.sql,
            "((s.status = ?) OR NOT COALESCE((((s.test_auc >= ?) AND ((SELECT MAX(e.auc) FROM evaluations e \
             WHERE e.run_id = s.id AND e.stage = ? AND e.split = 'valid') < ?))), FALSE))"
        );
        assert_eq!(
            sql.render(Placeholders::Numbered),
            "((s.status = $1) OR NOT COALESCE((((s.test_auc >= $2) AND ((SELECT MAX(e.auc) FROM evaluations e \
             WHERE e.run_id = s.id AND e.stage = $3 AND e.split = 'valid') < $4))), FALSE))"
        );
        assert_eq!(
            sql.binds,
            vec![
                Bind::Text("FINISHED".into()),
                Bind::Real(0.1),
                Bind::Text("joint".into()),
                Bind::Real(0.9)
            ]
        );
        let sql = parse_where("test_logloss is not null and params.x is null").expect("parses");
        assert!(sql.sql.contains("IS NOT NULL"));
        assert!(sql.sql.contains("NOT EXISTS"));
    }

    #[test]
    fn contains_binds_an_escaped_pattern() {
        let sql = parse_where("error ~ '50%_off' or params.note ~ x").expect("parses");
        assert_eq!(
            sql.sql,
            "((lower(s.error) LIKE lower(?) ESCAPE '\\') OR EXISTS (SELECT 1 FROM params p \
             WHERE p.run_id = s.id AND p.key = ? AND lower(p.value) LIKE lower(?) ESCAPE '\\'))"
        );
        assert_eq!(
            sql.binds,
            vec![
                Bind::Text("%50\\%\\_off%".into()),
                Bind::Text("note".into()),
                Bind::Text("%x%".into())
            ]
        );
    }

    #[test]
    fn errors_point_at_the_token() {
        let e = err("test_auc > 0.78 and tset_auc > 1");
        assert!(
            e.contains("unknown field `tset_auc` (did you mean `test_auc`?)"),
            "{e}"
        );
        assert!(
            e.ends_with("\n  test_auc > 0.78 and tset_auc > 1\n                      ^^^^^^^^"),
            "{e}"
        );

        let e = err("test_auc >");
        assert!(
            e.contains("expected a value after `>`, the expression ended"),
            "{e}"
        );
        assert!(e.ends_with("            ^"), "{e}");

        let e = err("test_auc > abc");
        assert!(
            e.contains("`test_auc` is a number, but `abc` is text"),
            "{e}"
        );
        assert!(e.ends_with("             ^^^"), "{e}");

        let e = err("(test_auc > 1");
        assert!(e.contains("expected `)`, the expression ended"), "{e}");

        let e = err("test_auc > 1 test_logloss < 2");
        assert!(
            e.contains("expected `and`, `or` or the end, found `test_logloss`"),
            "{e}"
        );

        assert!(err("status = done").contains("`done` is not a run status"));
        assert!(err("joint.valid_acu > 1").contains("unknown stage metric `valid_acu`"));
        assert!(err("name = 'open").contains("unterminated text"));
        assert!(err("test_auc ! 1").contains("`!` must be followed by `=`"));
        assert!(err("test_auc > 5x").contains("`5x` is not a number"));
        assert!(err("test_auc @ 1").contains("unexpected character `@`"));
        assert!(err("  ").contains("it is empty"));
        assert!(err(&"(".repeat(100)).contains("nested deeper"));
        let e = parse_where("test_auc >").expect_err("error");
        assert_eq!(crate::error::exit_code(&e), 2);
    }

    #[test]
    fn the_first_mistake_is_reported_in_the_old_order() {
        // A lexical mistake anywhere comes before a syntax error earlier on.
        let e = err("test_auc > > 1 and name = 'open");
        assert!(e.contains("unterminated text: missing closing '"), "{e}");
        // An unknown field before a syntax error is the first mistake.
        let e = err("tset_auc > 1 and");
        assert!(e.contains("unknown field `tset_auc`"), "{e}");
        let e = err("test_auc > abc or (");
        assert!(
            e.contains("`test_auc` is a number, but `abc` is text"),
            "{e}"
        );
        // After the syntax error, fields are not looked at.
        let e = err("test_auc > 1 1 and tset_auc > 1");
        assert!(
            e.contains("expected `and`, `or` or the end, found `1`"),
            "{e}"
        );
        // Deep nesting is refused where it gets too deep, whatever follows.
        let e = err(&format!("{}test_auc > 1", "not (".repeat(40)));
        assert!(e.contains("nested deeper than 64 levels"), "{e}");
        assert!(parse_where(&format!("{}test_auc > 1{}", "(".repeat(60), ")".repeat(60))).is_ok());
    }

    #[test]
    fn compiled_expressions_name_their_stages_where_written() {
        let src = "joint.test_auc > 0.7 or (not ctr_only.valid_auc is null and params.a.b = 1)";
        let w = compile_where(src).expect("parses");
        let stages: Vec<(&str, &str)> = w
            .stages
            .iter()
            .map(|r| (r.stage.as_str(), &src[r.start..r.end]))
            .collect();
        assert_eq!(
            stages,
            vec![
                ("joint", "joint.test_auc"),
                ("ctr_only", "ctr_only.valid_auc")
            ]
        );
        let e = where_error(src, &w.stages[1], "no such stage".into()).to_string();
        assert!(
            e.ends_with("\n                               ^^^^^^^^^^^^^^^^^^"),
            "{e}"
        );
    }
}
