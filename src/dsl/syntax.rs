//! pest syntax errors in words: rule names become what a user would write
//! ("expected `{` or a parameter name"), with did-you-mean over keywords.

use pest::error::{Error, ErrorVariant, InputLocation};

use super::ast::Span;
use super::diagnostic::{closest, list_alternatives, Diagnostic};
use super::parser::Rule;

/// What the user can write for a rule, or `None` to leave it out.
fn describe(rule: Rule) -> Option<String> {
    let s = match rule {
        Rule::ident | Rule::param_path => "a name",
        Rule::word => "a word",
        Rule::number => "a number",
        Rule::string | Rule::free_template => "a string",
        Rule::value => "a value",
        Rule::list => "a list `[...]`",
        Rule::param => "a parameter (`name value`)",
        Rule::params => "`{`",
        Rule::call_args => "`(`",
        Rule::cmp_op => "a comparison (`>`, `>=`, `<`, `<=`, `==`, `!=`)",
        Rule::ratios => "ratios such as `8:1:1`",
        Rule::field_kind => "a field kind",
        Rule::map_entry => "a map entry (`key: \"text\"`)",
        Rule::map_key => "a map key",
        Rule::escape => "an escape (`\\n`, `\\t`, `\\\"`, `\\\\`, `\\u{...}`)",
        Rule::EOI => "end of file",
        Rule::dataset_decl => "`dataset`",
        Rule::template_decl => "`template`",
        Rule::plm_decl => "`plm`",
        Rule::experiment_decl => "`experiment`",
        Rule::sweep_decl => "`sweep`",
        Rule::source_item => "`source`",
        Rule::label_item => "`label`",
        Rule::split_item => "`split`",
        Rule::split_seed => "`seed`",
        Rule::split_column => "`(`",
        Rule::min_count_item => "`min_count`",
        Rule::field_decl => "`field`",
        Rule::map_option => "`map`",
        Rule::column_option => "`column`",
        Rule::ctr_option => "`ctr`",
        Rule::text_option => "`text`",
        Rule::each_template => "`each`",
        Rule::extends => "`extends`",
        Rule::data_item => "`data`",
        Rule::text_item => "`text`",
        Rule::plm_item => "`plm`",
        Rule::ctr_item => "`ctr`",
        Rule::prompts_item => "`prompts`",
        Rule::prompt_mode => "`deep` or `shallow`",
        Rule::fusion_item => "`fusion`",
        Rule::alpha => "`alpha`",
        Rule::device_item => "`device`",
        Rule::seed_item => "`seed`",
        Rule::seeds_item => "`seeds`",
        Rule::metrics_item => "`metrics`",
        Rule::stage_item => "`stage`",
        Rule::stages_item => "`stages`",
        Rule::stage_body | Rule::stage_phase => "`pretrain` or `finetune`",
        Rule::stage_alias => "`as`",
        Rule::sweep_axis => "a sweep axis (`path in [...]`)",
        Rule::env_call => "`env(...)`",
        Rule::hub_call => "`hub(...)`",
        r => {
            let name = format!("{r:?}");
            return name.strip_prefix("kw_").map(|k| format!("`{k}`"));
        }
    };
    Some(s.to_string())
}

/// Literal tokens worth naming: punctuation and keywords, not whitespace,
/// comment starts or pieces of numbers and escapes.
fn describe_token(token: &str) -> Option<String> {
    const PUNCT: [&str; 12] = ["{", "}", "(", ")", "[", "]", "=", ":", ",", ">", "<", "!="];
    let keyword = token.len() > 1 && token.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    (PUNCT.contains(&token) || keyword).then(|| format!("`{token}`"))
}

fn found_at(source: &str, pos: usize) -> (String, Span, Option<String>) {
    let rest = &source[pos.min(source.len())..];
    let Some(first) = rest.chars().next() else {
        return ("end of file".into(), Span::new(pos, pos), None);
    };
    if first.is_ascii_alphabetic() || first == '_' {
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let w = &rest[..len];
        return (
            format!("`{w}`"),
            Span::new(pos, pos + len),
            Some(w.to_string()),
        );
    }
    if first.is_ascii_digit() || first == '-' {
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'))
            .unwrap_or(rest.len());
        return (
            format!("`{}`", &rest[..len]),
            Span::new(pos, pos + len),
            None,
        );
    }
    if first == '"' {
        return ("a string".into(), Span::new(pos, pos + 1), None);
    }
    let shown = match first {
        '\n' | '\r' => "end of line".to_string(),
        c => format!("`{c}`"),
    };
    (shown, Span::new(pos, pos + first.len_utf8()), None)
}

pub fn to_diagnostic(err: &Error<Rule>, source: &str) -> Diagnostic {
    let pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    // pest positions errors at the last *rule* attempt; a literal (`:`, `)`)
    // that failed further on is the better place to point at.
    let attempts = err.parse_attempts();
    let further = attempts.as_ref().filter(|a| a.max_position > pos);
    let pos = further.map(|a| a.max_position).unwrap_or(pos);
    let (found, span, word) = found_at(source, pos);
    match &err.variant {
        ErrorVariant::CustomError { message } => Diagnostic::new(span, message.clone()),
        ErrorVariant::ParsingError { positives, .. } => {
            let mut expected: Vec<String> = Vec::new();
            let mut push = |s: String| {
                if !expected.contains(&s) {
                    expected.push(s);
                }
            };
            let mut rules = positives.clone();
            rules.sort();
            if further.is_none() {
                for r in &rules {
                    if let Some(d) = describe(*r) {
                        push(d);
                    }
                }
            }
            if let Some(attempts) = &attempts {
                if attempts.max_position == pos {
                    for t in attempts.expected_tokens() {
                        if let Some(d) = describe_token(&t.to_string()) {
                            push(d);
                        }
                    }
                }
            }
            // Keywords the user may have misspelled.
            let keywords: Vec<String> = expected
                .iter()
                .filter(|e| {
                    e.starts_with('`')
                        && e.ends_with('`')
                        && e[1..e.len() - 1]
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
                .map(|e| e[1..e.len() - 1].to_string())
                .collect();
            let hint = word.as_deref().and_then(|w| {
                closest(w, keywords.iter().map(String::as_str))
                    .map(|k| format!("did you mean `{k}`?"))
            });
            let message = if expected.is_empty() {
                format!("unexpected {found}")
            } else {
                format!("expected {}, found {found}", list_alternatives(&expected))
            };
            Diagnostic::new(span, message).hint_opt(hint)
        }
    }
}
