//! Golden tests: invalid experiment files, each with the exact `line:col`
//! and message of every diagnostic the checker reports.

use clickprompt::plan::check_source;

const DATA: &str = r#"dataset d {
  source movielens_100k("ml")
  label rating > 3
  split by_time 8:1:1
  field user_id "User" id
  field occupation "Job" category
  field title "Title" text
}
plm m = bert("plm") { max_len 32 }
"#;
// DATA spans lines 1-9; case text appended starts on line 10.

/// `line:col: message` of every diagnostic, in source order.
fn diags(src: &str) -> Vec<String> {
    let mut ds = match check_source(src) {
        Ok(plans) => panic!("expected errors, got {} plans", plans.len()),
        Err(ds) => ds,
    };
    ds.sort_by_key(|d| d.span.start);
    ds.iter()
        .map(|d| {
            let (l, c) = clickprompt::dsl::diagnostic::line_col(src, d.span.start);
            format!("{l}:{c}: {}", d.message)
        })
        .collect()
}

fn hints(src: &str) -> Vec<String> {
    check_source(src)
        .err()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|d| d.hint)
        .collect()
}

fn with_data(rest: &str) -> String {
    format!("{DATA}{rest}")
}

const CASES: &[(&str, &str, &[&str])] = &[
    // ------------------------------------------------------------- syntax
    (
        "misspelled setting keyword",
        "experiment e { promts 10 }",
        &["1:16: expected `data`, `text`, `plm`, `ctr`, `prompts`, `fusion`, `device`, `seed`, `metrics`, `stages`, `stage` or `}`, found `promts`"],
    ),
    ("unclosed block", "experiment e { seed 1", &["1:22: expected `data`, `text`, `plm`, `ctr`, `prompts`, `fusion`, `device`, `seed`, `metrics`, `stages`, `stage` or `}`, found end of file"]),
    ("plm without parentheses", "plm m = bert \"x\"", &["1:14: expected `(`, found a string"]),
    ("ratio with dashes", "dataset d { split by_time 8-1-1 }", &["1:28: expected `:`, found `-1-1`"]),
    ("bad top-level word", "experimnt e {}", &["1:1: expected `dataset`, `experiment`, `plm`, `sweep` or `template`, found `experimnt`"]),
    ("missing map colon", "dataset d { field g \"G\" category map { M \"male\" } }", &["1:42: expected `:`, found a string"]),
];

#[test]
fn syntax_and_semantic_cases() {
    let mut failures = Vec::new();
    for (name, src, want) in CASES {
        let got = diags(src);
        if got != want.iter().map(|s| s.to_string()).collect::<Vec<_>>() {
            failures.push(format!("case `{name}`:\n  want {want:#?}\n  got  {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Cases appended to DATA (line 10 onwards).
const DATA_CASES: &[(&str, &str, &[&str])] = &[
    (
        "unknown backbone",
        "experiment e { data d ctr dcnv3 { embed 16 } stage finetune ctr_only {} }",
        &["10:27: unknown backbone `dcnv3`"],
    ),
    (
        "parameter of another backbone",
        "experiment e { data d ctr deepfm { cross 3 } stage finetune ctr_only {} }",
        &["10:36: `cross` is not a parameter of backbone `deepfm`"],
    ),
    (
        "misspelled backbone parameter",
        "experiment e { data d ctr dcnv2 { crosss 3 } stage finetune ctr_only {} }",
        &["10:35: unknown parameter `crosss` for backbone `dcnv2`"],
    ),
    ("unknown dataset", "experiment e { data dd ctr dnn stage finetune ctr_only {} }", &["10:21: unknown dataset `dd`"]),
    (
        "unknown template",
        "experiment e { data d text tmpl plm m ctr dnn stage finetune joint {} }",
        &["10:28: unknown template `tmpl`"],
    ),
    ("unknown plm", "experiment e { data d plm mm ctr dnn stage finetune joint {} }", &["10:27: unknown plm `mm`"]),
    (
        "unknown base experiment",
        "experiment e extends base { data d }",
        &["10:22: unknown experiment `base`"],
    ),
    (
        "extends cycle",
        "experiment a extends b { data d }\nexperiment b extends a { seed 1 }",
        &["11:22: `extends` forms a cycle: a → b → a"],
    ),
    (
        "duplicate experiment",
        "experiment e { data d ctr dnn stage finetune ctr_only {} }\nexperiment e { data d ctr dnn stage finetune ctr_only {} }",
        &["11:12: experiment or sweep `e` is declared twice"],
    ),
    (
        "duplicate stage",
        "experiment e { data d ctr dnn stage finetune ctr_only {} stage finetune ctr_only {} }",
        &["10:73: experiment `e` has two stages named `ctr_only`"],
    ),
    (
        "zero prompts",
        "experiment e { data d plm m ctr dnn prompts 0 stage finetune joint {} }",
        &["10:45: `prompts` must be at least 1, found `0`"],
    ),
    (
        "mask out of range",
        "experiment e { data d plm m ctr dnn stage pretrain pa_mlm { mask 1.5 } }",
        &["10:66: `mask` must be strictly between 0 and 1, found `1.5`"],
    ),
    (
        "negative learning rate",
        "experiment e { data d ctr dnn stage finetune ctr_only { lr -1e-3 } }",
        &["10:60: `lr` must be greater than 0, found `-1e-3`"],
    ),
    (
        "zero epochs",
        "experiment e { data d ctr dnn stage finetune ctr_only { epochs 0 } }",
        &["10:64: `epochs` must be at least 1, found `0`"],
    ),
    (
        "fractional batch",
        "experiment e { data d ctr dnn stage finetune ctr_only { batch 2.5 } }",
        &["10:63: `batch` expects a whole number, found `2.5`"],
    ),
    (
        "stage needs a PLM",
        "experiment e { data d plm none ctr dnn stage finetune joint {} }",
        &["10:55: stage `joint` needs a PLM, but experiment `e` has none"],
    ),
    (
        "from a later stage",
        "experiment e { data d plm m ctr dnn stage finetune ctr_only { from joint } stage finetune joint {} }",
        &["10:68: `from joint` names no earlier stage"],
    ),
    (
        "backbone without prompts",
        "experiment e { data d plm m ctr fm stage finetune joint {} }",
        &["10:33: backbone `fm` cannot generate prompts (it has no hidden layers)"],
    ),
    (
        "unknown stage kind",
        "experiment e { data d ctr dnn stage finetune join {} }",
        &["10:46: unknown stage kind `join`"],
    ),
    (
        "pa_mlm under finetune",
        "experiment e { data d plm m ctr dnn stage finetune pa_mlm {} }",
        &["10:43: `pa_mlm` is a pretrain stage"],
    ),
    (
        "mask on a joint stage",
        "experiment e { data d plm m ctr dnn stage finetune joint { mask 0.2 } }",
        &["10:60: `mask` applies only to `pretrain pa_mlm` (stage `joint` is `joint`)"],
    ),
    (
        "mask_unit on a joint stage",
        "experiment e { data d plm m ctr dnn stage finetune joint { mask_unit field } }",
        &["10:60: `mask_unit` applies only to `pretrain pa_mlm` (stage `joint` is `joint`)"],
    ),
    (
        "unknown mask unit",
        "experiment e { data d plm m ctr dnn stage pretrain pa_mlm { mask_unit feild } }",
        &["10:71: unknown mask_unit `feild`"],
    ),
    (
        "a ratio with field masking",
        "experiment e { data d plm m ctr dnn stage pretrain pa_mlm { mask_unit field, mask 0.2 } }",
        &["10:78: `mask` has no effect with `mask_unit field`"],
    ),
    (
        "joint from a later stage",
        "experiment e { data d plm m ctr dnn stage pretrain pa_mlm {} stage finetune joint { from [pretrain, ctr_only] } stage finetune ctr_only {} }",
        &["10:101: `from ctr_only` names no earlier stage"],
    ),
    (
        "from on pa_mlm",
        "experiment e { data d plm m ctr dnn stage pretrain pa_mlm { from x } }",
        &["10:61: `from` applies only to `ctr_only`, `joint` and `plm_only` stages (stage `pretrain` is `pa_mlm`)"],
    ),
    (
        "layers zero",
        "experiment e { data d plm m { layers 0 } ctr dnn stage pretrain pa_mlm {} }",
        &["10:38: `layers` must be at least 1, found `0`"],
    ),
    (
        "setting given twice",
        "experiment e { data d seed 1 seed 2 ctr dnn stage finetune ctr_only {} }",
        &["10:30: experiment `e` sets `seed` twice"],
    ),
    (
        "unknown device",
        "experiment e { data d device gpu ctr dnn stage finetune ctr_only {} }",
        &["10:30: unknown device `gpu`"],
    ),
    (
        "unknown pooling",
        "experiment e { data d plm m { pool maen } ctr dnn stage finetune joint {} }",
        &["10:36: unknown pool `maen`"],
    ),
    (
        "max_len too long",
        "experiment e { data d plm m { max_len 1024 } ctr dnn stage finetune joint {} }",
        &["10:39: `max_len` must be at most 512, found `1024`"],
    ),
    (
        "att_dim not divisible by heads",
        "experiment e { data d ctr autoint { heads 3, att_dim 32 } stage finetune ctr_only {} }",
        &["10:54: `att_dim` (32) must be a multiple of `heads` (3)"],
    ),
    (
        "PLM declared but unused",
        "experiment e { data d plm m ctr dnn stage finetune ctr_only {} }",
        &["10:27: PLM `m` is not used by any stage of `e`"],
    ),
    (
        "no stages",
        "experiment e { data d ctr dnn }",
        &["10:12: experiment `e` has no stages"],
    ),
    (
        "sweep over unknown parameter",
        "experiment e { data d ctr dnn stage finetune ctr_only {} }\nsweep s over e { promts in [1, 2] }",
        &["11:18: unknown sweep parameter `promts`"],
    ),
    (
        "sweep over unknown stage",
        "experiment e { data d ctr dnn stage finetune ctr_only {} }\nsweep s over e { stages.joint.lr in [1e-3] }",
        &["11:18: unknown sweep parameter `stages.joint.lr`: experiment `e` has no stage `joint`"],
    ),
    (
        "sweep over unknown experiment",
        "sweep s over nope { prompts in [1] }",
        &["10:14: unknown experiment `nope`"],
    ),
    (
        "sweep value of the wrong type",
        "experiment e { data d ctr dnn stage finetune ctr_only {} }\nsweep s over e { stages.ctr_only.lr in [0.1, fast] }",
        &["11:46: `lr` expects a number, found `fast`"],
    ),
    (
        "placeholder names no field",
        "template t = \"The {ocupation} user.\"\nexperiment e { data d text t plm m ctr dnn stage finetune joint {} }",
        &["10:19: placeholder `{ocupation}` names no field of dataset `d`"],
    ),
    (
        "field placeholder in an each template",
        "template t = each \"{title} is {value}\"",
        &["10:20: placeholder `{title}` in an `each` template"],
    ),
    (
        "several errors are all reported",
        "experiment e { data d ctr dnn { dropout 1.5 } device tpu stage finetune ctr_only { epochs 0, lr 0 } }",
        &[
            "10:41: `dropout` must be at least 0 and below 1, found `1.5`",
            "10:54: unknown device `tpu`",
            "10:91: `epochs` must be at least 1, found `0`",
            "10:97: `lr` must be greater than 0, found `0`",
        ],
    ),
];

#[test]
fn data_cases() {
    let mut failures = Vec::new();
    for (name, rest, want) in DATA_CASES {
        let got = diags(&with_data(rest));
        if got != want.iter().map(|s| s.to_string()).collect::<Vec<_>>() {
            failures.push(format!("case `{name}`:\n  want {want:#?}\n  got  {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Dataset-level mistakes (each file complete).
const DATASET_CASES: &[(&str, &str, &[&str])] = &[
    (
        "ratios must be positive",
        "dataset d { source synthetic label label split random 0:1:1 field user_id id }",
        &["1:55: `split ratio` must be greater than 0, found `0`"],
    ),
    (
        "split needs three parts",
        "dataset d { source synthetic label label split random 8:2 field user_id id }",
        &["1:55: a split has three parts (train:valid:test), found 2"],
    ),
    (
        "unknown source",
        "dataset d { source movielens_10k(\"x\") label rating > 3 split by_time 8:1:1 field user_id id }",
        &["1:20: unknown source `movielens_10k`"],
    ),
    (
        "unknown field kind",
        "dataset d { source synthetic label label split random 8:1:1 field user_id categroy }",
        &["1:75: unknown field kind `categroy`"],
    ),
    (
        "label column read by a field",
        "dataset d { source movielens_100k(\"x\") label rating > 3 split by_time 8:1:1 field rating number }",
        &["1:46: the label column `rating` is also read by field `rating`"],
    ),
    (
        "unknown column of a known source",
        "dataset d { source movielens_100k(\"x\") label rating > 3 split by_time 8:1:1 field occupaton category }",
        &["1:83: `movielens_100k` has no column `occupaton`"],
    ),
    (
        "bucket edges not ascending",
        "dataset d { source synthetic label label split random 8:1:1 field user_id bucket [3, 2] }",
        &["1:82: field `user_id`: bucket edges must be strictly ascending"],
    ),
    (
        "duplicate field",
        "dataset d { source synthetic label label split random 8:1:1 field user_id id field user_id id }",
        &["1:84: field `user_id` is declared twice"],
    ),
    (
        "env variable without default",
        "dataset d { source movielens_100k(env(\"CLICKPROMPT_TEST_SURELY_UNSET\")) label rating > 3 split by_time 8:1:1 field user_id id }",
        &["1:39: environment variable `CLICKPROMPT_TEST_SURELY_UNSET` is not set"],
    ),
    (
        "missing label and split",
        "dataset d { source synthetic field user_id id }",
        &["1:9: dataset `d` has no `label`", "1:9: dataset `d` has no `split`"],
    ),
    (
        "csv without header or columns",
        "dataset d { source csv(\"a.csv\", header false) label clicked split random 8:1:1 field user_id id }",
        &["1:20: a csv source without a header needs `columns [...]`"],
    ),
];

#[test]
fn dataset_cases() {
    let mut failures = Vec::new();
    for (name, src, want) in DATASET_CASES {
        let got = diags(src);
        if got != want.iter().map(|s| s.to_string()).collect::<Vec<_>>() {
            failures.push(format!("case `{name}`:\n  want {want:#?}\n  got  {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn hints_suggest_the_nearest_name() {
    let h = hints(&with_data(
        "experiment e { data d ctr dcnv3 stage finetune ctr_only {} }",
    ));
    assert_eq!(h, vec!["did you mean `dcnv2`?".to_string()]);
    let h = hints("experiment e { promts 10 }");
    assert_eq!(h, vec!["did you mean `prompts`?".to_string()]);
    let h = hints(&with_data(
        "template t = \"The {ocupation} user.\"\nexperiment e { data d text t plm m ctr dnn stage finetune joint {} }",
    ));
    assert_eq!(
        h,
        vec![
            "did you mean `occupation`? fields are `user_id`, `occupation` and `title`".to_string()
        ]
    );
    let h = hints(&with_data(
        "experiment e { data d ctr deepfm { cross 3 } stage finetune ctr_only {} }",
    ));
    assert_eq!(
        h,
        vec![
            "`cross` belongs to `dcn` and `dcnv2`; `deepfm` accepts `embed`, `mlp` and `dropout`"
                .to_string()
        ]
    );
}

#[test]
fn rendered_errors_show_file_line_caret_and_hint() {
    let src = with_data("experiment e { data d ctr dcnv3 stage finetune ctr_only {} }");
    let err = clickprompt::plan::load_str(&src, "x.cp").unwrap_err();
    assert_eq!(clickprompt::error::exit_code(&err), 2);
    let text = err.to_string();
    let want = "x.cp:10:27: error: unknown backbone `dcnv3`\n   |\n10 | experiment e { data d ctr dcnv3 stage finetune ctr_only {} }\n   |                           ^^^^^\n   = hint: did you mean `dcnv2`?\n";
    assert!(text.starts_with(want), "got:\n{text}");
    assert!(text.ends_with("x.cp: 1 error found"), "got:\n{text}");
}
