//! pest pairs → AST, one `parse_x` per grammar rule.

use pest::iterators::{Pair, Pairs};
use pest::Parser as _;

use super::ast::*;
use super::diagnostic::Diagnostic;
use super::syntax;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/clickprompt.pest"]
pub struct CpParser;

type Res<T> = Result<T, Diagnostic>;

/// Parses a whole file. A syntax error stops parsing; it is returned as one diagnostic.
pub fn parse_file(source: &str) -> Res<File> {
    super::nesting::check_nesting(source)?;
    let mut pairs = match parse_rule(source, false) {
        Ok(pairs) => pairs,
        Err(fast) => {
            // Same grammar, same input: it fails again, now with the detail.
            let e = parse_rule(source, true).err().unwrap_or(fast);
            return Err(syntax::to_diagnostic(&e, source));
        }
    };
    let file = next(&mut pairs, Rule::file, Span::default())?;
    let mut items = Vec::new();
    for p in file.into_inner() {
        match p.as_rule() {
            Rule::dataset_decl => items.push(Item::Dataset(parse_dataset(p)?)),
            Rule::template_decl => items.push(Item::Template(parse_template(p)?)),
            Rule::plm_decl => items.push(Item::Plm(parse_plm(p)?)),
            Rule::experiment_decl => items.push(Item::Experiment(parse_experiment(p)?)),
            Rule::sweep_decl => items.push(Item::Sweep(parse_sweep(p)?)),
            Rule::EOI => {}
            r => return Err(unexpected(&p, r)),
        }
    }
    Ok(File { items })
}

/// Parses with or without pest's record of every attempted token. That
/// record names what was expected at a syntax error but slows a parse by
/// 40–70 %; so a file is parsed without it, and again with it only when it
/// does not parse. The switch is process-wide in pest: the lock keeps
/// another thread from flipping it between setting and parsing.
fn parse_rule(source: &str, detail: bool) -> Result<Pairs<'_, Rule>, pest::error::Error<Rule>> {
    static SWITCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = SWITCH
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    pest::set_error_detail(detail);
    CpParser::parse(Rule::file, source)
}

fn span_of(p: &Pair<Rule>) -> Span {
    let s = p.as_span();
    Span::new(s.start(), s.end())
}

/// The grammar guarantees shapes; a mismatch is a bug in this file, reported
/// as a diagnostic rather than a panic.
fn unexpected(p: &Pair<Rule>, r: Rule) -> Diagnostic {
    Diagnostic::new(
        span_of(p),
        format!("internal parser error: unexpected {r:?}"),
    )
}

fn next<'a>(pairs: &mut Pairs<'a, Rule>, want: Rule, at: Span) -> Res<Pair<'a, Rule>> {
    match pairs.next() {
        Some(p) if p.as_rule() == want => Ok(p),
        Some(p) => Err(Diagnostic::new(
            span_of(&p),
            format!(
                "internal parser error: expected {want:?}, found {:?}",
                p.as_rule()
            ),
        )),
        None => Err(Diagnostic::new(
            at,
            format!("internal parser error: missing {want:?}"),
        )),
    }
}

/// Skips a keyword pair and returns it as an identifier.
fn keyword(pairs: &mut Pairs<Rule>, at: Span) -> Res<Ident> {
    match pairs.next() {
        Some(p) => Ok(Ident {
            name: p.as_str().to_string(),
            span: span_of(&p),
        }),
        None => Err(Diagnostic::new(
            at,
            "internal parser error: missing keyword",
        )),
    }
}

fn parse_ident(p: Pair<Rule>) -> Ident {
    Ident {
        name: p.as_str().to_string(),
        span: span_of(&p),
    }
}

fn ident(pairs: &mut Pairs<Rule>, at: Span) -> Res<Ident> {
    Ok(parse_ident(next(pairs, Rule::ident, at)?))
}

fn parse_string(p: Pair<Rule>) -> Res<Str> {
    let span = span_of(&p);
    let raw = p.into_inner().next().map(|i| i.as_str()).unwrap_or("");
    Ok(Str {
        value: unescape(raw, span)?,
        span,
    })
}

fn unescape(raw: &str, span: Span) -> Res<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('u') => {
                let hex: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                match ch {
                    Some(ch) => out.push(ch),
                    None => {
                        return Err(Diagnostic::new(
                            span,
                            format!("`\\u{{{hex}}}` is not a valid character"),
                        ))
                    }
                }
            }
            _ => return Err(Diagnostic::new(span, "invalid escape in string")),
        }
    }
    Ok(out)
}

fn parse_number(p: Pair<Rule>) -> Res<Value> {
    let span = span_of(&p);
    let text = p.as_str().to_string();
    let cleaned: String = text.chars().filter(|c| *c != '_').collect();
    match cleaned.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Value {
            kind: ValueKind::Number { value: v, text },
            span,
        }),
        _ => Err(Diagnostic::new(
            span,
            format!("`{text}` is not a finite number"),
        )),
    }
}

fn parse_value(p: Pair<Rule>) -> Res<Value> {
    let span = span_of(&p);
    let inner = p.into_inner().next();
    let Some(inner) = inner else {
        return Err(Diagnostic::new(span, "internal parser error: empty value"));
    };
    let kind = match inner.as_rule() {
        Rule::number => return parse_number(inner),
        Rule::string => ValueKind::Str(parse_string(inner)?.value),
        Rule::word => ValueKind::Word(inner.as_str().to_string()),
        Rule::list => ValueKind::List(parse_list(inner)?),
        Rule::env_call => {
            let mut it = inner.into_inner();
            keyword(&mut it, span)?;
            let var = parse_string(next(&mut it, Rule::string, span)?)?;
            let default = match it.next() {
                Some(d) => Some(parse_string(d)?),
                None => None,
            };
            ValueKind::Env { var, default }
        }
        Rule::hub_call => {
            let mut it = inner.into_inner();
            keyword(&mut it, span)?;
            ValueKind::Hub(parse_string(next(&mut it, Rule::string, span)?)?)
        }
        r => return Err(unexpected(&inner, r)),
    };
    Ok(Value { kind, span })
}

fn parse_list(p: Pair<Rule>) -> Res<Vec<Value>> {
    p.into_inner().map(parse_value).collect()
}

fn parse_param(p: Pair<Rule>) -> Res<Param> {
    let span = span_of(&p);
    let mut it = p.into_inner();
    let key = ident(&mut it, span)?;
    let value = parse_value(next(&mut it, Rule::value, span)?)?;
    Ok(Param { key, value, span })
}

fn parse_params(p: Pair<Rule>) -> Res<Vec<Param>> {
    p.into_inner().map(parse_param).collect()
}

// ------------------------------------------------------------ datasets

fn parse_dataset(p: Pair<Rule>) -> Res<DatasetDecl> {
    let span = span_of(&p);
    let mut it = p.into_inner();
    keyword(&mut it, span)?;
    let name = ident(&mut it, span)?;
    let mut items = Vec::new();
    for item in it {
        items.push(parse_dataset_item(item)?);
    }
    Ok(DatasetDecl { name, items, span })
}

fn parse_dataset_item(p: Pair<Rule>) -> Res<DatasetItem> {
    let span = span_of(&p);
    let rule = p.as_rule();
    if rule == Rule::field_decl {
        let field = parse_field(p)?;
        let keyword = Ident {
            name: "field".into(),
            span: Span::new(span.start, span.start + 5),
        };
        return Ok(DatasetItem {
            kind: DatasetItemKind::Field(field),
            keyword,
            span,
        });
    }
    let mut it = p.into_inner();
    let kw = keyword(&mut it, span)?;
    let kind = match rule {
        Rule::source_item => DatasetItemKind::Source(parse_source(it, span)?),
        Rule::label_item => {
            let column = ident(&mut it, span)?;
            let compare = match it.next() {
                Some(op) => {
                    let op = parse_ident(op);
                    let v = parse_value(next(&mut it, Rule::value, span)?)?;
                    Some((op, v))
                }
                None => None,
            };
            DatasetItemKind::Label(LabelExpr { column, compare })
        }
        Rule::split_item => {
            let method = ident(&mut it, span)?;
            let mut column = None;
            let mut ratios = Vec::new();
            let mut ratios_span = span;
            let mut seed = None;
            for part in it {
                match part.as_rule() {
                    Rule::split_column => {
                        let s = span_of(&part);
                        column = Some(ident(&mut part.into_inner(), s)?);
                    }
                    Rule::ratios => {
                        ratios_span = span_of(&part);
                        for n in part.into_inner() {
                            ratios.push(parse_number(n)?);
                        }
                    }
                    Rule::split_seed => {
                        let s = span_of(&part);
                        let mut pi = part.into_inner();
                        keyword(&mut pi, s)?;
                        seed = Some(parse_value(next(&mut pi, Rule::value, s)?)?);
                    }
                    r => return Err(unexpected(&part, r)),
                }
            }
            DatasetItemKind::Split(SplitExpr {
                method,
                column,
                ratios,
                ratios_span,
                seed,
            })
        }
        Rule::min_count_item => {
            DatasetItemKind::MinCount(parse_value(next(&mut it, Rule::value, span)?)?)
        }
        _ => {
            return Err(Diagnostic::new(
                span,
                format!("internal parser error: unexpected {rule:?}"),
            ))
        }
    };
    Ok(DatasetItem {
        kind,
        keyword: kw,
        span,
    })
}

fn parse_source(mut it: Pairs<Rule>, span: Span) -> Res<SourceExpr> {
    let kind = ident(&mut it, span)?;
    let mut positional = Vec::new();
    let mut options = Vec::new();
    if let Some(args) = it.next() {
        for a in args.into_inner() {
            match a.as_rule() {
                Rule::param => options.push(parse_param(a)?),
                Rule::value => positional.push(parse_value(a)?),
                r => return Err(unexpected(&a, r)),
            }
        }
    }
    Ok(SourceExpr {
        kind,
        positional,
        options,
        span,
    })
}

fn parse_field(p: Pair<Rule>) -> Res<FieldDecl> {
    let span = span_of(&p);
    let mut it = p.into_inner();
    keyword(&mut it, span)?;
    let name = ident(&mut it, span)?;
    let mut display = None;
    let mut kind = None;
    let mut kind_arg = None;
    let mut map = None;
    let mut options = Vec::new();
    for part in it {
        match part.as_rule() {
            Rule::string => display = Some(parse_string(part)?),
            Rule::field_kind => {
                let s = span_of(&part);
                let mut ki = part.into_inner();
                kind = Some(ident(&mut ki, s)?);
                if let Some(arg) = ki.next() {
                    let arg_span = span_of(&arg);
                    let k = match arg.as_rule() {
                        Rule::list => ValueKind::List(parse_list(arg)?),
                        Rule::string => ValueKind::Str(parse_string(arg)?.value),
                        r => return Err(unexpected(&arg, r)),
                    };
                    kind_arg = Some(Value {
                        kind: k,
                        span: arg_span,
                    });
                }
            }
            Rule::map_option => {
                let s = span_of(&part);
                let mut entries = Vec::new();
                let mut mi = part.into_inner();
                keyword(&mut mi, s)?;
                for e in mi {
                    let es = span_of(&e);
                    let mut ei = e.into_inner();
                    let key = next(&mut ei, Rule::map_key, es)?;
                    let ks = span_of(&key);
                    let key = match key.into_inner().next() {
                        Some(k) if k.as_rule() == Rule::string => parse_string(k)?,
                        Some(k) => Str {
                            value: k.as_str().to_string(),
                            span: ks,
                        },
                        None => {
                            return Err(Diagnostic::new(ks, "internal parser error: empty map key"))
                        }
                    };
                    let val = parse_string(next(&mut ei, Rule::string, es)?)?;
                    entries.push((key, val));
                }
                if map.is_some() {
                    return Err(Diagnostic::new(s, "this field already has a `map`"));
                }
                map = Some(MapOption { entries, span: s });
            }
            Rule::column_option | Rule::ctr_option | Rule::text_option => {
                let s = span_of(&part);
                let mut oi = part.into_inner();
                let key = keyword(&mut oi, s)?;
                let value = match oi.next() {
                    Some(v) if v.as_rule() == Rule::string => {
                        let st = parse_string(v)?;
                        Value {
                            kind: ValueKind::Str(st.value),
                            span: st.span,
                        }
                    }
                    Some(v) => parse_value(v)?,
                    None => {
                        return Err(Diagnostic::new(
                            s,
                            "internal parser error: option without value",
                        ))
                    }
                };
                options.push(Param {
                    key,
                    value,
                    span: s,
                });
            }
            r => return Err(unexpected(&part, r)),
        }
    }
    let Some(kind) = kind else {
        return Err(Diagnostic::new(
            span,
            "internal parser error: field without kind",
        ));
    };
    Ok(FieldDecl {
        name,
        display,
        kind,
        kind_arg,
        map,
        options,
        span,
    })
}

// ------------------------------------------------------------ templates and PLMs

fn parse_template(p: Pair<Rule>) -> Res<TemplateDecl> {
    let span = span_of(&p);
    let mut it = p.into_inner();
    keyword(&mut it, span)?;
    let name = ident(&mut it, span)?;
    let Some(body) = it.next() else {
        return Err(Diagnostic::new(
            span,
            "internal parser error: template without body",
        ));
    };
    let body = match body.as_rule() {
        Rule::each_template => {
            let s = span_of(&body);
            let mut bi = body.into_inner();
            keyword(&mut bi, s)?;
            let pattern = parse_string(next(&mut bi, Rule::string, s)?)?;
            let join = match bi.next() {
                Some(_kw) => Some(parse_string(next(&mut bi, Rule::string, s)?)?),
                None => None,
            };
            TemplateBody::Each { pattern, join }
        }
        Rule::free_template => {
            let s = span_of(&body);
            TemplateBody::Free(parse_string(next(
                &mut body.into_inner(),
                Rule::string,
                s,
            )?)?)
        }
        r => return Err(unexpected(&body, r)),
    };
    Ok(TemplateDecl { name, body, span })
}

fn parse_plm(p: Pair<Rule>) -> Res<PlmDecl> {
    let span = span_of(&p);
    let mut it = p.into_inner();
    keyword(&mut it, span)?;
    let name = ident(&mut it, span)?;
    let family = ident(&mut it, span)?;
    let location = parse_value(next(&mut it, Rule::value, span)?)?;
    let params = match it.next() {
        Some(ps) => parse_params(ps)?,
        None => Vec::new(),
    };
    Ok(PlmDecl {
        name,
        family,
        location,
        params,
        span,
    })
}

// ------------------------------------------------------------ experiments

fn parse_experiment(p: Pair<Rule>) -> Res<ExperimentDecl> {
    let span = span_of(&p);
    let mut it = p.into_inner();
    keyword(&mut it, span)?;
    let name = ident(&mut it, span)?;
    let mut extends = None;
    let mut items = Vec::new();
    for part in it {
        if part.as_rule() == Rule::extends {
            let s = span_of(&part);
            let mut ei = part.into_inner();
            keyword(&mut ei, s)?;
            extends = Some(ident(&mut ei, s)?);
        } else {
            items.push(parse_exp_item(part)?);
        }
    }
    Ok(ExperimentDecl {
        name,
        extends,
        items,
        span,
    })
}

fn parse_exp_item(p: Pair<Rule>) -> Res<ExpItem> {
    let span = span_of(&p);
    let rule = p.as_rule();
    let mut it = p.into_inner();
    let kw = keyword(&mut it, span)?;
    let kind = match rule {
        Rule::data_item => ExpItemKind::Data(ident(&mut it, span)?),
        Rule::text_item => ExpItemKind::Text(ident(&mut it, span)?),
        Rule::plm_item => {
            let name = ident(&mut it, span)?;
            let params = match it.next() {
                Some(ps) => parse_params(ps)?,
                None => Vec::new(),
            };
            ExpItemKind::Plm { name, params }
        }
        Rule::ctr_item => {
            let backbone = ident(&mut it, span)?;
            let params = match it.next() {
                Some(ps) => parse_params(ps)?,
                None => Vec::new(),
            };
            ExpItemKind::Ctr { backbone, params }
        }
        Rule::prompts_item => {
            let count = parse_value(next(&mut it, Rule::value, span)?)?;
            let mode = it.next().map(|m| Ident {
                name: m.as_str().to_string(),
                span: span_of(&m),
            });
            ExpItemKind::Prompts { count, mode }
        }
        Rule::fusion_item => {
            let kind = ident(&mut it, span)?;
            let alpha = it.next().map(|a| span_of(&a));
            ExpItemKind::Fusion { kind, alpha }
        }
        Rule::device_item => ExpItemKind::Device(parse_value(next(&mut it, Rule::value, span)?)?),
        Rule::seed_item => ExpItemKind::Seed(parse_value(next(&mut it, Rule::value, span)?)?),
        Rule::seeds_item => ExpItemKind::Seeds(parse_value(next(&mut it, Rule::value, span)?)?),
        Rule::metrics_item => ExpItemKind::Metrics(parse_value(next(&mut it, Rule::value, span)?)?),
        Rule::stage_item => {
            ExpItemKind::Stage(parse_stage(next(&mut it, Rule::stage_body, span)?)?)
        }
        Rule::stages_item => {
            let mut stages = Vec::new();
            for s in it {
                match s.as_rule() {
                    Rule::kw_stage => {}
                    Rule::stage_body => stages.push(parse_stage(s)?),
                    r => return Err(unexpected(&s, r)),
                }
            }
            ExpItemKind::Stages(stages)
        }
        _ => {
            return Err(Diagnostic::new(
                span,
                format!("internal parser error: unexpected {rule:?}"),
            ))
        }
    };
    Ok(ExpItem {
        kind,
        keyword: kw,
        span,
    })
}

fn parse_stage(p: Pair<Rule>) -> Res<StageDecl> {
    let span = span_of(&p);
    let mut it = p.into_inner();
    let phase = parse_ident(next(&mut it, Rule::stage_phase, span)?);
    let kind = ident(&mut it, span)?;
    let mut alias = None;
    let mut params = Vec::new();
    for part in it {
        match part.as_rule() {
            Rule::stage_alias => {
                let s = span_of(&part);
                let mut ai = part.into_inner();
                keyword(&mut ai, s)?;
                alias = Some(ident(&mut ai, s)?);
            }
            Rule::params => params = parse_params(part)?,
            r => return Err(unexpected(&part, r)),
        }
    }
    Ok(StageDecl {
        phase,
        kind,
        alias,
        params,
        span,
    })
}

// ------------------------------------------------------------ sweeps

fn parse_sweep(p: Pair<Rule>) -> Res<SweepDecl> {
    let span = span_of(&p);
    let mut it = p.into_inner();
    keyword(&mut it, span)?;
    let name = ident(&mut it, span)?;
    keyword(&mut it, span)?;
    let base = ident(&mut it, span)?;
    let mut axes = Vec::new();
    for axis in it {
        let s = span_of(&axis);
        let mut ai = axis.into_inner();
        let path = parse_ident(next(&mut ai, Rule::param_path, s)?);
        keyword(&mut ai, s)?;
        let list = next(&mut ai, Rule::list, s)?;
        let values_span = span_of(&list);
        let values = parse_list(list)?;
        axes.push(SweepAxis {
            path,
            values,
            values_span,
        });
    }
    Ok(SweepDecl {
        name,
        base,
        axes,
        span,
    })
}
