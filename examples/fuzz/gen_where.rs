//! Random `--where` expressions (`grammar/where.pest`): fields the store
//! knows and ones it does not, every operator, numbers, quoted and bare
//! texts, `and`/`or`/`not`, groups and `is [not] null`.

use crate::rng::Rng;

pub const FIELDS: &[&str] = &[
    "id",
    "experiment",
    "name",
    "sweep",
    "sweep_point",
    "status",
    "started",
    "started_at",
    "ended",
    "duration",
    "duration_s",
    "device",
    "host",
    "seed",
    "version",
    "error",
    "final_stage",
    "best_stage",
    "best_valid_auc",
    "valid_auc",
    "test_auc",
    "test_logloss",
    "group",
    "group_id",
    "joint.test_auc",
    "pa_mlm.valid_logloss",
    "ctr_only.valid.prompt_gap",
    "joint.valid.",
    ".test_auc",
    "params.",
    "params.ctr.backbone.name",
    "params.prompts.count",
    "joint.bogus",
    "tset_auc",
    "STATUS",
    "Test_AUC",
    "ünïcode",
    "a.b.c.d",
];

const OPS: &[&str] = &[
    "=", "==", "!=", "<>", "<", "<=", ">", ">=", "~", "!", "=>", "=<",
];

fn value(r: &mut Rng) -> String {
    match r.below(10) {
        0 => format!("{}", r.below(100)),
        1 => format!("0.{}", r.below(1000)),
        2 => r
            .pick(&[
                "1e309",
                "-1e-400",
                "1e",
                ".5",
                "-.5",
                "+3",
                "1.2.3",
                "5x",
                "0x10",
                "NaN",
                "inf",
                "99999999999999999999999999",
            ])
            .to_string(),
        3 => format!(
            "'{}'",
            r.pick(&["done", "failed", "it's", "", "a\\'b", "日本"])
        ),
        4 => format!("\"{}\"", r.pick(&["running", "x y", "\\\"", ""])),
        5 => r
            .pick(&[
                "done",
                "failed",
                "running",
                "interrupted",
                "cpu",
                "cuda:0",
                "a/b",
                "x-y",
            ])
            .to_string(),
        6 => r
            .pick(&["'unterminated", "\"open", "and", "null", "not"])
            .to_string(),
        _ => format!("{}", r.below(3)),
    }
}

fn test(r: &mut Rng) -> String {
    let f = r.pick(FIELDS);
    match r.below(6) {
        0 => format!("{f} is {}null", if r.one_in(2) { "not " } else { "" }),
        _ => {
            let sp = if r.one_in(4) { "" } else { " " };
            format!("{f}{sp}{}{sp}{}", r.pick(OPS), value(r))
        }
    }
}

pub fn expr(r: &mut Rng, depth: usize) -> String {
    if depth > 6 || r.one_in(3) {
        return test(r);
    }
    match r.below(5) {
        0 => format!("not {}", expr(r, depth + 1)),
        1 => format!("({})", expr(r, depth + 1)),
        2 => format!(
            "{} {} {}",
            expr(r, depth + 1),
            r.pick(&["or", "OR", "Or"]),
            expr(r, depth + 1)
        ),
        3 if r.one_in(20) => {
            // Long chains and deep groups: what a script or a paste can produce.
            let n = 1 + r.below(500);
            if r.one_in(2) {
                (0..n).map(|_| test(r)).collect::<Vec<_>>().join(" and ")
            } else {
                format!("{}{}{}", "(".repeat(n), test(r), ")".repeat(n))
            }
        }
        _ => format!(
            "{} {} {}",
            expr(r, depth + 1),
            r.pick(&["and", "AND"]),
            expr(r, depth + 1)
        ),
    }
}
