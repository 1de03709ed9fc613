//! Random derivations of the experiment language (`grammar/clickprompt.pest`):
//! every declaration kind with names and values mostly drawn from what the
//! checker knows (sources, field kinds, backbones, stages, parameters) so
//! inputs reach plan resolution, and sometimes from anywhere so they do not.

use crate::rng::Rng;

pub const WORDS: &[&str] = &[
    // declarations and keywords
    "dataset",
    "template",
    "plm",
    "experiment",
    "sweep",
    "source",
    "label",
    "split",
    "min_count",
    "field",
    "map",
    "column",
    "extends",
    "data",
    "text",
    "ctr",
    "prompts",
    "deep",
    "shallow",
    "fusion",
    "alpha",
    "device",
    "seed",
    "seeds",
    "metrics",
    "stages",
    "stage",
    "pretrain",
    "finetune",
    "as",
    "each",
    "join",
    "over",
    "in",
    "env",
    "hub",
    "none",
    // sources, kinds, models, stages
    "movielens_100k",
    "movielens_1m",
    "bookcrossing",
    "csv",
    "synthetic",
    "id",
    "category",
    "bucket",
    "multi",
    "number",
    "bert",
    "roberta",
    "mean",
    "cls",
    "first_last",
    "top2",
    "lr",
    "fm",
    "dnn",
    "deepfm",
    "dcn",
    "dcnv2",
    "autoint",
    "xdeepfm",
    "fibinet",
    "pa_mlm",
    "joint",
    "ctr_only",
    "plm_only",
    "prefix_add",
    "prefix",
    "add",
    "auto",
    "cpu",
    "cuda",
    "cuda:0",
    "by_time",
    "random",
    "by_user",
    "auc",
    "logloss",
    // parameters
    "epochs",
    "batch",
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
    "mask",
    "pool",
    "from",
    "embed",
    "cross",
    "mlp",
    "dropout",
    "layers",
    "heads",
    "att_dim",
    "cin",
    "reduction",
    "bilinear",
    "max_len",
    "users",
    "items",
    "rows",
    "themes",
    "semantic",
    "collaborative",
    "noise",
    "path",
    "sep",
    "header",
    "columns",
    "latin1",
    "skip_bad_rows",
    "dir",
    "mode",
    // columns
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
    "year",
    "genres",
    "genre",
    "user_taste",
    "location",
    "isbn",
    "author",
    "publisher",
];

const SWEEP_PATHS: &[&str] = &[
    "data",
    "text",
    "plm",
    "plm.max_len",
    "plm.pool",
    "plm.layers",
    "ctr",
    "prompts",
    "prompts.mode",
    "fusion",
    "device",
    "seed",
    "metrics",
    "ctr.embed",
    "ctr.mlp",
    "ctr.dropout",
    "stages.joint.lr",
    "stages.pa_mlm.epochs",
    "stages.ctr_only.batch",
    "stages.nope.lr",
    "bogus.path",
];

/// Identifiers: mostly known words, sometimes fresh ones.
fn ident(r: &mut Rng) -> String {
    match r.below(10) {
        0 => format!("x{}", r.below(5)),
        1 => "_".repeat(1 + r.below(3)),
        2 if r.one_in(20) => "a".repeat(1 + r.below(3000)),
        _ => r.pick(WORDS).to_string(),
    }
}

fn number(r: &mut Rng) -> String {
    match r.below(12) {
        0 => format!("{}", r.below(3)),
        1 => format!("{}e{}", r.below(10), r.below(40) as i64 - 20),
        2 => r
            .pick(&[
                "1e309",
                "-1e309",
                "99999999999999999999",
                "18446744073709551616",
                "9007199254740993",
                "-0",
                "0.0",
                "1_000",
                "4294967296",
            ])
            .to_string(),
        3 => format!("-{}", r.below(100)),
        4 => format!("0.{}", r.below(1000)),
        _ => format!("{}", r.below(600)),
    }
}

fn string(r: &mut Rng) -> String {
    let body = match r.below(8) {
        0 => "{user_id} likes {title}".to_string(),
        1 => "{name} is {value}.".to_string(),
        2 => format!("{{{}}}", ident(r)),
        3 => "\\u{1F980}\\n\\t\\\"".to_string(),
        4 => "assets/plm/all-MiniLM-L6-v2".to_string(),
        5 => "../shared/data/ml-100k".to_string(),
        6 => "{".to_string(),
        _ => ident(r),
    };
    format!("\"{body}\"")
}

pub fn value(r: &mut Rng, depth: usize) -> String {
    match r.below(if depth > 3 { 6 } else { 8 }) {
        0 | 1 => number(r),
        2 => string(r),
        3..=5 => ident(r),
        6 => {
            let n = if r.one_in(30) {
                1 + r.below(400)
            } else {
                r.below(5)
            };
            let items: Vec<String> = (0..n).map(|_| value(r, depth + 1)).collect();
            format!(
                "[{}{}]",
                items.join(", "),
                if r.one_in(4) { "," } else { "" }
            )
        }
        _ => {
            if r.one_in(2) {
                format!(
                    "env({}{})",
                    string(r),
                    if r.one_in(2) {
                        format!(", {}", string(r))
                    } else {
                        String::new()
                    }
                )
            } else {
                format!("hub({})", string(r))
            }
        }
    }
}

fn params(r: &mut Rng) -> String {
    let n = r.below(6);
    let ps: Vec<String> = (0..n)
        .map(|_| format!("{} {}", ident(r), value(r, 1)))
        .collect();
    format!("{{ {} }}", ps.join(if r.one_in(3) { " " } else { ", " }))
}

fn dataset(r: &mut Rng) -> String {
    let mut s = format!("dataset {} {{\n", ident(r));
    for _ in 0..r.below(10) {
        let line = match r.below(6) {
            0 => match r.below(3) {
                0 => format!("  source {}({})", ident(r), value(r, 1)),
                1 => format!("  source {} {}", ident(r), params(r)),
                _ => format!("  source {}", ident(r)),
            },
            1 => format!(
                "  label {} {} {}",
                ident(r),
                r.pick(&[">", ">=", "<", "<=", "==", "!="]),
                value(r, 1)
            ),
            2 => {
                let n = 2 + r.below(3);
                let ratios: Vec<String> = (0..n).map(|_| number(r)).collect();
                let col = if r.one_in(3) {
                    format!(" ({})", ident(r))
                } else {
                    String::new()
                };
                let seed = if r.one_in(3) {
                    format!(" seed {}", value(r, 1))
                } else {
                    String::new()
                };
                format!("  split {}{col} {}{seed}", ident(r), ratios.join(":"))
            }
            3 => format!("  min_count {}", value(r, 1)),
            _ => {
                let disp = if r.one_in(2) {
                    format!(" {}", string(r))
                } else {
                    String::new()
                };
                let arg = match r.below(4) {
                    0 => format!(" {}", value(r, 2)),
                    _ => String::new(),
                };
                let mut f = format!("  field {}{disp} {}{arg}", ident(r), ident(r));
                match r.below(5) {
                    0 => f.push_str(&format!(" map {{ {}: {} }}", ident(r), string(r))),
                    1 => f.push_str(&format!(" column {}", string(r))),
                    2 => f.push_str(&format!(" ctr {}", value(r, 1))),
                    3 => f.push_str(&format!(" text {}", value(r, 1))),
                    _ => {}
                }
                f
            }
        };
        s.push_str(&line);
        s.push('\n');
    }
    s.push('}');
    s
}

fn stage(r: &mut Rng) -> String {
    let phase = r.pick(&["pretrain", "finetune"]);
    let alias = if r.one_in(4) {
        format!(" as {}", ident(r))
    } else {
        String::new()
    };
    let ps = if r.one_in(4) {
        String::new()
    } else {
        params(r)
    };
    format!(
        "{phase} {}{alias} {ps}",
        r.pick(&["pa_mlm", "joint", "ctr_only", "plm_only", "x"])
    )
}

fn experiment(r: &mut Rng, names: &[String]) -> String {
    let ext = if r.one_in(3) && !names.is_empty() {
        format!(" extends {}", r.pick(names))
    } else {
        String::new()
    };
    let mut s = format!("experiment {}{ext} {{\n", ident(r));
    for _ in 0..r.below(12) {
        let line = match r.below(12) {
            0 => format!("  data {}", ident(r)),
            1 => format!("  text {}", ident(r)),
            2 => format!(
                "  plm {}{}",
                ident(r),
                if r.one_in(2) {
                    params(r)
                } else {
                    String::new()
                }
            ),
            3 => format!(
                "  ctr {}{}",
                r.pick(&[
                    "dcnv2", "deepfm", "lr", "fm", "autoint", "xdeepfm", "fibinet", "dcn", "dnn",
                    "none", "bogus"
                ]),
                if r.one_in(2) {
                    params(r)
                } else {
                    String::new()
                }
            ),
            4 => format!(
                "  prompts {}{}",
                value(r, 1),
                r.pick(&["", " deep", " shallow"])
            ),
            5 => format!(
                "  fusion {}{}",
                ident(r),
                if r.one_in(3) { " alpha" } else { "" }
            ),
            6 => format!("  device {}", value(r, 1)),
            7 => format!("  seed {}", value(r, 1)),
            8 => format!("  seeds {}", value(r, 1)),
            9 => format!("  metrics {}", value(r, 1)),
            10 => {
                let n = r.below(4);
                let st: Vec<String> = (0..n)
                    .map(|_| format!("{}{}", if r.one_in(2) { "stage " } else { "" }, stage(r)))
                    .collect();
                format!("  stages {{ {} }}", st.join(", "))
            }
            _ => format!("  stage {}", stage(r)),
        };
        s.push_str(&line);
        s.push('\n');
    }
    s.push('}');
    s
}

fn sweep(r: &mut Rng, names: &[String]) -> String {
    let base = if names.is_empty() {
        ident(r)
    } else {
        r.pick(names).clone()
    };
    let mut s = format!("sweep {} over {base} {{\n", ident(r));
    for _ in 0..r.below(5) {
        let n = if r.one_in(20) {
            1 + r.below(120)
        } else {
            r.below(5)
        };
        let vals: Vec<String> = (0..n)
            .map(|i| {
                if r.one_in(3) {
                    value(r, 2)
                } else {
                    format!("{}", i + 1)
                }
            })
            .collect();
        s.push_str(&format!(
            "  {} in [{}],\n",
            r.pick(SWEEP_PATHS),
            vals.join(", ")
        ));
    }
    s.push('}');
    s
}

/// One random file: a few declarations, experiments referring to earlier ones.
pub fn file(r: &mut Rng) -> String {
    let mut out = Vec::new();
    let mut exps: Vec<String> = Vec::new();
    for _ in 0..1 + r.below(6) {
        let decl = match r.below(6) {
            0 => dataset(r),
            1 => format!(
                "template {} = {}",
                ident(r),
                if r.one_in(2) {
                    format!(
                        "each {}{}",
                        string(r),
                        if r.one_in(2) {
                            format!(" join {}", string(r))
                        } else {
                            String::new()
                        }
                    )
                } else {
                    string(r)
                }
            ),
            2 => format!(
                "plm {} = {}({}){}",
                ident(r),
                r.pick(&["bert", "roberta", "gpt"]),
                value(r, 1),
                if r.one_in(2) {
                    params(r)
                } else {
                    String::new()
                }
            ),
            3 | 4 => {
                let e = experiment(r, &exps);
                if let Some(name) = e.split_whitespace().nth(1) {
                    exps.push(name.to_string());
                }
                e
            }
            _ => sweep(r, &exps),
        };
        out.push(decl);
        if r.one_in(6) {
            out.push(format!("# {}", ident(r)));
        }
    }
    out.join("\n\n")
}
