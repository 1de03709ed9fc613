//! The `--where` language parsed with pest (`grammar/where.pest`): one
//! `parse_x` per grammar rule, each returning its SQL (built by the parent
//! module, which holds every SQL fragment).
//!
//! Errors name the token at fault with a caret under it. In order: the first
//! lexical mistake anywhere (unterminated text, `5x`, a lone `!`, a stray
//! character), then nesting deeper than [`MAX_DEPTH`], then the syntax error
//! pest stops at, in words ("expected a value after `>`, found `)`"), then
//! unknown fields and mistyped values, left to right.

use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::Parser as _;

use super::{combine, compare, null_test, resolve_field, Field, Sql, Value};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/where.pest"]
struct WhereParser;

/// Parentheses and `not`s nested deeper than this are refused (the parser
/// recurses once per level).
pub(super) const MAX_DEPTH: usize = 64;

/// An error at a byte range of the expression.
#[derive(Debug)]
pub(super) struct At {
    pub start: usize,
    pub end: usize,
    pub msg: String,
}

impl At {
    fn new(start: usize, end: usize, msg: impl Into<String>) -> At {
        At {
            start,
            end,
            msg: msg.into(),
        }
    }

    fn of(p: &Pair<Rule>, msg: impl Into<String>) -> At {
        let s = p.as_span();
        At::new(s.start(), s.end(), msg)
    }
}

/// A token of the expression (from the `tokens` rule).
struct Token<'a> {
    rule: Rule,
    text: &'a str,
    start: usize,
    end: usize,
    pair: Pair<'a, Rule>,
}

impl Token<'_> {
    fn keyword(&self, kw: &str) -> bool {
        self.rule == Rule::word && self.text.eq_ignore_ascii_case(kw)
    }
}

/// A stage named in a field (`joint.test_auc`), with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StageRef {
    pub stage: String,
    pub start: usize,
    pub end: usize,
}

/// A compiled expression, and the stages it names.
pub(super) struct Compiled {
    pub sql: Sql,
    pub stages: Vec<StageRef>,
}

/// `Ok(None)` for an expression with no tokens.
pub(super) fn compile(src: &str) -> Result<Option<Compiled>, At> {
    let toks = tokens(src)?;
    if toks.is_empty() {
        return Ok(None);
    }
    check_depth(&toks, src.len())?;
    let mut pairs = WhereParser::parse(Rule::where_expr, src).map_err(|e| {
        let at = syntax_error(&e, &toks, src);
        // A mistaken field or value before the syntax error is the first mistake.
        meaning_error_before(&toks, at.start).unwrap_or(at)
    })?;
    let top = pairs
        .next()
        .ok_or_else(|| At::new(0, src.len(), "internal parser error: no expression"))?;
    let mut stages = Vec::new();
    let sql = parse_where_expr(top, &mut stages)?;
    Ok(Some(Compiled { sql, stages }))
}

// ---------------------------------------------------------------- tokens

fn tokens(src: &str) -> Result<Vec<Token<'_>>, At> {
    let pairs = WhereParser::parse(Rule::tokens, src).map_err(|e| {
        // `stray` takes any character, so this cannot fail; say so if it does.
        At::new(0, src.len(), format!("internal parser error: {e}"))
    })?;
    let mut out = Vec::new();
    for p in pairs.flatten() {
        let span = p.as_span();
        let (start, end, text) = (span.start(), span.end(), span.as_str());
        let rule = p.as_rule();
        match rule {
            Rule::tokens | Rule::EOI => continue,
            Rule::lone_bang => return Err(At::new(start, end, "`!` must be followed by `=`")),
            Rule::bad_number => {
                return Err(At::new(
                    start,
                    end,
                    format!("`{text}` is not a number (quote text that starts with a digit)"),
                ))
            }
            Rule::number if number_value(text).is_none() => {
                return Err(At::new(start, end, format!("`{text}` is not a number")))
            }
            Rule::unterminated => {
                let quote = text.chars().next().unwrap_or('\'');
                return Err(At::new(
                    start,
                    end,
                    format!("unterminated text: missing closing {quote}"),
                ));
            }
            Rule::stray => {
                return Err(At::new(
                    start,
                    end,
                    format!("unexpected character `{text}`"),
                ))
            }
            // The pieces inside a text token.
            Rule::sq_body | Rule::dq_body => continue,
            _ => {}
        }
        out.push(Token {
            rule,
            text,
            start,
            end,
            pair: p,
        });
    }
    Ok(out)
}

fn number_value(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Refuses nesting deeper than [`MAX_DEPTH`] before the recursive parse sees
/// it, at the token where it happens: each `(` and each `not` in a chain
/// opens a level; `)` closes its group and the `not`s in front of it; `and`
/// and `or` close the `not`s of the operand before them.
fn check_depth(toks: &[Token], src_len: usize) -> Result<(), At> {
    #[derive(PartialEq)]
    enum Open {
        Paren,
        Not,
    }
    let deep = |start: usize, end: usize| {
        At::new(
            start,
            end,
            format!("expression nested deeper than {MAX_DEPTH} levels"),
        )
    };
    let mut open: Vec<Open> = Vec::new();
    let mut operand_next = true;
    let close_nots = |open: &mut Vec<Open>| {
        while open.last() == Some(&Open::Not) {
            open.pop();
        }
    };
    for t in toks {
        if operand_next && open.len() > MAX_DEPTH {
            return Err(deep(t.start, t.end));
        }
        match t.rule {
            Rule::lparen => {
                open.push(Open::Paren);
                operand_next = true;
            }
            Rule::rparen => {
                close_nots(&mut open);
                if open.last() == Some(&Open::Paren) {
                    open.pop();
                }
                operand_next = false;
            }
            _ if operand_next && t.keyword("not") => open.push(Open::Not),
            _ if t.keyword("and") || t.keyword("or") => {
                close_nots(&mut open);
                operand_next = true;
            }
            _ => operand_next = false,
        }
    }
    if operand_next && open.len() > MAX_DEPTH {
        return Err(deep(src_len, src_len));
    }
    Ok(())
}

/// The first unknown field or mistyped value among the tokens before `pos`
/// (a syntactically valid prefix), in the roles the grammar gives them: a
/// word where an operand starts is a field, the token after its operator a value.
fn meaning_error_before(toks: &[Token], pos: usize) -> Option<At> {
    enum Role<'t> {
        Operand,
        AfterField(Field, &'t str),
        AfterOp(Field, &'t str, &'t str),
        Other,
    }
    let mut role = Role::Operand;
    for t in toks.iter().take_while(|t| t.start < pos) {
        let keyword = ["and", "or", "not", "is", "null"]
            .iter()
            .any(|k| t.keyword(k));
        role = match role {
            Role::Operand if t.rule == Rule::word && !keyword => match parse_field(&t.pair) {
                Ok(f) => Role::AfterField(f, t.text),
                Err(at) => return Some(at),
            },
            Role::Operand if t.rule == Rule::lparen || t.keyword("not") => Role::Operand,
            Role::AfterField(f, name) if t.rule == Rule::op => Role::AfterOp(f, name, t.text),
            Role::AfterOp(f, name, op) => {
                let value = match t.rule {
                    Rule::number => parse_number(&t.pair).ok(),
                    Rule::text => parse_text(t.pair.clone()).ok(),
                    Rule::word if !keyword => Some(Value::Text(t.text.to_string())),
                    _ => None,
                };
                if let Some(v) = value {
                    if let Err(msg) = compare(&f, name, normalise_op(op), v) {
                        return Some(At::new(t.start, t.end, msg));
                    }
                }
                Role::Other
            }
            _ if t.keyword("and") || t.keyword("or") => Role::Operand,
            _ => Role::Other,
        };
    }
    None
}

// ---------------------------------------------------------------- syntax errors

/// pest's failure in words: what was expected where it stopped, after which
/// token, and what was found there.
fn syntax_error(e: &pest::error::Error<Rule>, toks: &[Token], src: &str) -> At {
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let here = toks.iter().find(|t| t.start >= pos);
    let (start, end, found) = match here {
        Some(t) => (t.start, t.end, format!("found `{}`", t.text)),
        None => (src.len(), src.len(), "the expression ended".to_string()),
    };
    let before = toks.iter().rev().find(|t| t.end <= pos);
    let positives: &[Rule] = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => positives,
        ErrorVariant::CustomError { message } => return At::new(start, end, message.clone()),
    };
    let wants = |r: Rule| positives.contains(&r);
    let msg = if wants(Rule::rparen) {
        format!("expected `)`, {found}")
    } else if wants(Rule::EOI) {
        format!("expected `and`, `or` or the end, {found}")
    } else if wants(Rule::kw_null) {
        format!("expected `null` after `is`, {found}")
    } else if wants(Rule::op) || wants(Rule::kw_is) {
        let name = before.map(|t| t.text).unwrap_or_default();
        format!("expected an operator (=, !=, <, <=, >, >=, ~, is null) after `{name}`, {found}")
    } else if wants(Rule::value) {
        let op = before.map(|t| normalise_op(t.text)).unwrap_or_default();
        format!("expected a value after `{op}`, {found}")
    } else if wants(Rule::unary) || wants(Rule::field) {
        format!("expected a field name such as `test_auc` or `params.ctr.embed`, {found}")
    } else {
        let named: Vec<&str> = positives.iter().filter_map(|r| describe(*r)).collect();
        format!("expected {}, {found}", named.join(" or "))
    };
    At::new(start, end, msg)
}

/// Rule names as a user would write them (for the messages not worded above).
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::op => "an operator",
        Rule::kw_and => "`and`",
        Rule::kw_or => "`or`",
        Rule::kw_not => "`not`",
        Rule::kw_is => "`is`",
        Rule::kw_null => "`null`",
        Rule::value | Rule::number | Rule::text | Rule::bare_word => "a value",
        Rule::unary | Rule::field | Rule::test => "a field name",
        Rule::EOI => "the end",
        _ => return None,
    })
}

fn normalise_op(op: &str) -> &str {
    match op {
        "==" => "=",
        "<>" => "!=",
        other => other,
    }
}

// ---------------------------------------------------------------- parse_x per rule

type Res<T> = Result<T, At>;

/// The grammar guarantees shapes; a mismatch is a bug here, reported rather
/// than panicking.
fn shape(p: &Pair<Rule>, what: &str) -> At {
    At::of(
        p,
        format!(
            "internal parser error: expected {what} in {:?}",
            p.as_rule()
        ),
    )
}

fn parse_where_expr(p: Pair<Rule>, stages: &mut Vec<StageRef>) -> Res<Sql> {
    let inner = p
        .clone()
        .into_inner()
        .find(|q| q.as_rule() == Rule::or_expr)
        .ok_or_else(|| shape(&p, "an expression"))?;
    parse_or_expr(inner, stages)
}

fn parse_or_expr(p: Pair<Rule>, stages: &mut Vec<StageRef>) -> Res<Sql> {
    let mut left: Option<Sql> = None;
    for q in p.clone().into_inner() {
        match q.as_rule() {
            Rule::and_expr => {
                let right = parse_and_expr(q, stages)?;
                left = Some(match left {
                    None => right,
                    Some(l) => combine(l, "OR", right),
                });
            }
            Rule::kw_or => {}
            _ => return Err(shape(&q, "`and` operands")),
        }
    }
    left.ok_or_else(|| shape(&p, "an operand"))
}

fn parse_and_expr(p: Pair<Rule>, stages: &mut Vec<StageRef>) -> Res<Sql> {
    let mut left: Option<Sql> = None;
    for q in p.clone().into_inner() {
        match q.as_rule() {
            Rule::unary => {
                let right = parse_unary(q, stages)?;
                left = Some(match left {
                    None => right,
                    Some(l) => combine(l, "AND", right),
                });
            }
            Rule::kw_and => {}
            _ => return Err(shape(&q, "operands")),
        }
    }
    left.ok_or_else(|| shape(&p, "an operand"))
}

fn parse_unary(p: Pair<Rule>, stages: &mut Vec<StageRef>) -> Res<Sql> {
    let q = p
        .clone()
        .into_inner()
        .next()
        .ok_or_else(|| shape(&p, "an operand"))?;
    match q.as_rule() {
        Rule::not_expr => parse_not_expr(q, stages),
        Rule::group => parse_group(q, stages),
        Rule::test => parse_test(q, stages),
        _ => Err(shape(&q, "`not`, `(` or a field")),
    }
}

fn parse_not_expr(p: Pair<Rule>, stages: &mut Vec<StageRef>) -> Res<Sql> {
    let q = p
        .clone()
        .into_inner()
        .find(|q| q.as_rule() == Rule::unary)
        .ok_or_else(|| shape(&p, "an operand"))?;
    let inner = parse_unary(q, stages)?;
    // NULL comparisons count as false, so NOT of them is true.
    Ok(Sql {
        sql: format!("NOT COALESCE({}, FALSE)", inner.sql),
        binds: inner.binds,
    })
}

fn parse_group(p: Pair<Rule>, stages: &mut Vec<StageRef>) -> Res<Sql> {
    let q = p
        .clone()
        .into_inner()
        .find(|q| q.as_rule() == Rule::or_expr)
        .ok_or_else(|| shape(&p, "an expression"))?;
    let inner = parse_or_expr(q, stages)?;
    Ok(Sql {
        sql: format!("({})", inner.sql),
        binds: inner.binds,
    })
}

fn parse_test(p: Pair<Rule>, stages: &mut Vec<StageRef>) -> Res<Sql> {
    let mut inner = p.clone().into_inner();
    let (Some(fp), Some(tp)) = (inner.next(), inner.next()) else {
        return Err(shape(&p, "a field and a test"));
    };
    let name = fp.as_str();
    let field = parse_field(&fp)?;
    if let Field::Stage { stage, .. } | Field::Extra { stage, .. } = &field {
        let s = fp.as_span();
        stages.push(StageRef {
            stage: stage.clone(),
            start: s.start(),
            end: s.end(),
        });
    }
    match tp.as_rule() {
        Rule::null_test => Ok(parse_null_test(tp, &field)),
        Rule::comparison => parse_comparison(tp, &field, name),
        _ => Err(shape(&tp, "a test")),
    }
}

fn parse_field(p: &Pair<Rule>) -> Res<Field> {
    resolve_field(p.as_str()).map_err(|msg| At::of(p, msg))
}

fn parse_null_test(p: Pair<Rule>, field: &Field) -> Sql {
    let negate = p.into_inner().any(|q| q.as_rule() == Rule::kw_not);
    null_test(field, negate)
}

fn parse_comparison(p: Pair<Rule>, field: &Field, name: &str) -> Res<Sql> {
    let mut inner = p.clone().into_inner();
    let (Some(op), Some(vp)) = (inner.next(), inner.next()) else {
        return Err(shape(&p, "an operator and a value"));
    };
    let at = At::of(&vp, "");
    let value = parse_value(vp)?;
    compare(field, name, normalise_op(op.as_str()), value).map_err(|msg| At { msg, ..at })
}

fn parse_value(p: Pair<Rule>) -> Res<Value> {
    let q = p
        .clone()
        .into_inner()
        .next()
        .ok_or_else(|| shape(&p, "a value"))?;
    match q.as_rule() {
        Rule::number => parse_number(&q),
        Rule::text => parse_text(q),
        Rule::bare_word => Ok(Value::Text(q.as_str().to_string())),
        _ => Err(shape(&q, "a number, text or word")),
    }
}

fn parse_number(p: &Pair<Rule>) -> Res<Value> {
    let text = p.as_str();
    number_value(text)
        .map(|v| Value::Num(v, text.to_string()))
        .ok_or_else(|| At::of(p, format!("`{text}` is not a number")))
}

fn parse_text(p: Pair<Rule>) -> Res<Value> {
    let body = p
        .clone()
        .into_inner()
        .next()
        .ok_or_else(|| shape(&p, "text"))?;
    let mut out = String::with_capacity(body.as_str().len());
    let mut chars = body.as_str().chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    Ok(Value::Text(out))
}
