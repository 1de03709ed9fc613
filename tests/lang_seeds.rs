//! `seeds [..]` and a sweep's `seed` axis: run names, seeds and groups of the
//! expanded plans, inheritance through `extends`, selection by group, and
//! every mistake reported at its line and column.

use clickprompt::plan::{self, check_source, ExperimentPlan};

const DATA: &str = r#"dataset d {
  source synthetic { rows 500 }
  label label
  split random 8:1:1
  field user_id "User" id
  field title "Title" text
}
"#;
// DATA spans lines 1-7; case text appended starts on line 8.

fn with_data(rest: &str) -> String {
    format!("{DATA}{rest}")
}

fn plans(rest: &str) -> Vec<ExperimentPlan> {
    plan::load_str(&with_data(rest), "t.cp").unwrap_or_else(|e| panic!("{e}"))
}

/// (name, group, seed) of every plan, in order.
fn runs(rest: &str) -> Vec<(String, String, u64)> {
    plans(rest)
        .into_iter()
        .map(|p| (p.name, p.group, p.seed))
        .collect()
}

fn r(name: &str, group: &str, seed: u64) -> (String, String, u64) {
    (name.to_string(), group.to_string(), seed)
}

/// `line:col: message` of every diagnostic, in source order.
fn diags(rest: &str) -> Vec<String> {
    let src = with_data(rest);
    let mut ds = match check_source(&src) {
        Ok(p) => panic!("expected errors, got {} plans", p.len()),
        Err(ds) => ds,
    };
    ds.sort_by_key(|d| d.span.start);
    ds.iter()
        .map(|d| {
            let (l, c) = clickprompt::dsl::diagnostic::line_col(&src, d.span.start);
            format!("{l}:{c}: {}", d.message)
        })
        .collect()
}

const BASE: &str =
    "experiment e { data d ctr dnn seeds [3, 1, 2] stage finetune ctr_only { epochs 1 } }\n";

#[test]
fn seeds_expand_into_one_run_per_seed_in_one_group() {
    assert_eq!(
        runs(BASE),
        [
            r("e[seed=3]", "e", 3),
            r("e[seed=1]", "e", 1),
            r("e[seed=2]", "e", 2)
        ]
    );
    // Only the seed (and the name) differs between the repeats.
    let ps = plans(BASE);
    let mut a = ps[0].clone();
    a.seed = ps[1].seed;
    a.name = ps[1].name.clone();
    assert_eq!(a, ps[1]);
    assert_eq!(ps[0].experiment, "e");
    assert!(ps[0].sweep.is_none());
}

#[test]
fn a_run_without_seeds_is_its_own_group() {
    let got = runs("experiment e { data d ctr dnn seed 7 stage finetune ctr_only {} }");
    assert_eq!(got, [r("e", "e", 7)]);
    let got = runs("experiment e { data d ctr dnn stage finetune ctr_only {} }");
    assert_eq!(got, [r("e", "e", 42)]);
    let got = runs("experiment e { data d ctr dnn seeds [5] stage finetune ctr_only {} }");
    assert_eq!(got, [r("e[seed=5]", "e", 5)]);
}

#[test]
fn seeds_are_inherited_and_the_later_setting_wins() {
    let src = format!(
        "{BASE}experiment child extends e {{ ctr deepfm }}\n\
         experiment single extends e {{ seed 9 }}\n\
         experiment again extends single {{ seeds [4, 5] }}\n"
    );
    let got = runs(&src);
    assert_eq!(
        got[3..],
        [
            r("child[seed=3]", "child", 3),
            r("child[seed=1]", "child", 1),
            r("child[seed=2]", "child", 2),
            r("single", "single", 9),
            r("again[seed=4]", "again", 4),
            r("again[seed=5]", "again", 5),
        ]
    );
}

#[test]
fn a_sweep_over_an_experiment_with_seeds_repeats_every_point() {
    let src = format!("{BASE}sweep sw over e {{ ctr.embed in [8, 16] }}\n");
    let got = runs(&src);
    assert_eq!(
        got[3..],
        [
            r("sw[ctr.embed=8,seed=3]", "sw[ctr.embed=8]", 3),
            r("sw[ctr.embed=8,seed=1]", "sw[ctr.embed=8]", 1),
            r("sw[ctr.embed=8,seed=2]", "sw[ctr.embed=8]", 2),
            r("sw[ctr.embed=16,seed=3]", "sw[ctr.embed=16]", 3),
            r("sw[ctr.embed=16,seed=1]", "sw[ctr.embed=16]", 1),
            r("sw[ctr.embed=16,seed=2]", "sw[ctr.embed=16]", 2),
        ]
    );
    let ps = plans(&src);
    let point = ps[4].sweep.as_ref().expect("a sweep point");
    assert_eq!(point.sweep, "sw");
    assert_eq!(
        point.assignments,
        [
            ("ctr.embed".to_string(), "8".to_string()),
            ("seed".to_string(), "1".to_string())
        ]
    );
    assert_eq!(ps[4].experiment, "e");
}

#[test]
fn a_seed_axis_is_the_replicate_axis() {
    // The axis replaces the base's seeds; the group leaves the seed out.
    let src = format!("{BASE}sweep sw over e {{ seed in [1, 2], ctr.embed in [8, 16] }}\n");
    let got = runs(&src);
    assert_eq!(
        got[3..],
        [
            r("sw[seed=1,ctr.embed=8]", "sw[ctr.embed=8]", 1),
            r("sw[seed=1,ctr.embed=16]", "sw[ctr.embed=16]", 1),
            r("sw[seed=2,ctr.embed=8]", "sw[ctr.embed=8]", 2),
            r("sw[seed=2,ctr.embed=16]", "sw[ctr.embed=16]", 2),
        ]
    );
    // A seed axis alone: one group named after the sweep.
    let src = "experiment e { data d ctr dnn stage finetune ctr_only {} }\n\
               sweep reps over e { seed in [7, 8] }\n";
    assert_eq!(
        runs(src)[1..],
        [r("reps[seed=7]", "reps", 7), r("reps[seed=8]", "reps", 8)]
    );
    // A sweep without seeds: each point is its own group.
    let src = "experiment e { data d ctr dnn stage finetune ctr_only {} }\n\
               sweep sw over e { ctr.embed in [8] }\n";
    assert_eq!(
        runs(src)[1..],
        [r("sw[ctr.embed=8]", "sw[ctr.embed=8]", 42)]
    );
}

#[test]
fn select_takes_a_group_a_single_seed_or_a_sweep() {
    let src = format!("{BASE}sweep sw over e {{ ctr.embed in [8, 16] }}\n");
    let all = plans(&src);
    let names = |sel: &str| -> Vec<String> {
        plan::select(all.clone(), Some(sel))
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|p| p.name)
            .collect()
    };
    assert_eq!(names("e"), ["e[seed=3]", "e[seed=1]", "e[seed=2]"]);
    assert_eq!(names("e[seed=1]"), ["e[seed=1]"]);
    assert_eq!(names("sw").len(), 6);
    assert_eq!(
        names("sw[ctr.embed=16]"),
        [
            "sw[ctr.embed=16,seed=3]",
            "sw[ctr.embed=16,seed=1]",
            "sw[ctr.embed=16,seed=2]"
        ]
    );
    let err = plan::select(all, Some("f")).unwrap_err().to_string();
    assert!(
        err.contains("no experiment or sweep named `f`; the file has `e` and `sw`")
            || err.contains("the file has `e`, `sw`"),
        "{err}"
    );
}

#[test]
fn the_group_is_in_the_plan_and_old_plans_read_as_their_own_group() {
    let p = &plans(BASE)[1];
    let yaml = plan::to_yaml(p).unwrap();
    assert!(yaml.contains("\ngroup: e\n"), "{yaml}");
    assert_eq!(&plan::from_yaml(&yaml).unwrap(), p);
    // A plan stored before groups existed has no `group` key.
    let old = yaml.replace("group: e\n", "");
    let back = plan::from_yaml(&old).unwrap();
    assert_eq!(back.group, "");
    assert_eq!(back.group_name(), "e[seed=1]");
    assert_eq!(p.group_name(), "e");
}

#[test]
fn mistakes_point_at_line_and_column() {
    let exp = |items: &str| {
        format!("experiment e {{ data d ctr dnn {items} stage finetune ctr_only {{}} }}")
    };
    // Line 8, column 31 is where `{items}` starts.
    let cases: &[(&str, String, &[&str])] = &[
        (
            "not a list",
            exp("seeds 3"),
            &["8:37: `seeds` expects a list of seeds such as `[1, 2, 3]`, found `3`"],
        ),
        (
            "empty list",
            exp("seeds []"),
            &["8:37: `seeds` needs at least one seed"],
        ),
        (
            "repeated seed",
            exp("seeds [1, 2, 1]"),
            &["8:44: seed 1 is listed twice"],
        ),
        (
            "negative seed",
            exp("seeds [1, -2]"),
            &["8:41: `seeds` expects a whole number, found `-2`"],
        ),
        (
            "fractional seed",
            exp("seeds [1.5]"),
            &["8:38: `seeds` expects a whole number, found `1.5`"],
        ),
        (
            "a word",
            exp("seeds [one]"),
            &["8:38: `seeds` expects a whole number, found `one`"],
        ),
        (
            "seed and seeds",
            exp("seed 1 seeds [1, 2]"),
            &["8:38: experiment `e` sets both `seed` and `seeds`"],
        ),
        (
            "seeds and seed",
            exp("seeds [1, 2] seed 1"),
            &["8:44: experiment `e` sets both `seed` and `seeds`"],
        ),
        (
            "seeds twice",
            exp("seeds [1] seeds [2]"),
            &["8:41: experiment `e` sets `seeds` twice"],
        ),
        (
            "sweep axis misspelled",
            format!("{}\nsweep sw over e {{ seeds in [1, 2] }}", exp("")),
            &["9:19: unknown sweep parameter `seeds`"],
        ),
        (
            "sweep seed listed twice",
            format!("{}\nsweep sw over e {{ seed in [1, 1] }}", exp("")),
            &["9:31: value `1` is listed twice"],
        ),
    ];
    let mut failures = Vec::new();
    for (name, src, want) in cases {
        let got = diags(src);
        if got != want.iter().map(|s| s.to_string()).collect::<Vec<_>>() {
            failures.push(format!("case `{name}`:\n  want {want:#?}\n  got  {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_base_with_bad_seeds_is_reported_once_for_all_its_users() {
    let src = "experiment e { data d ctr dnn seeds [2, 2] stage finetune ctr_only {} }\n\
               experiment f extends e { }\n\
               sweep sw over e { ctr.embed in [4] }";
    assert_eq!(diags(src), ["8:41: seed 2 is listed twice"]);
}

#[test]
fn rendered_errors_have_a_caret_and_a_hint() {
    let src =
        with_data("experiment e { data d ctr dnn seed 1 seeds [1, 2] stage finetune ctr_only {} }");
    let err = plan::load_str(&src, "x.cp").unwrap_err();
    assert_eq!(clickprompt::error::exit_code(&err), 2);
    let text = err.to_string();
    let want = "x.cp:8:38: error: experiment `e` sets both `seed` and `seeds`\n  |\n8 | experiment e { data d ctr dnn seed 1 seeds [1, 2] stage finetune ctr_only {} }\n  |                                      ^^^^^\n  = hint:";
    assert!(text.starts_with(want), "got:\n{text}");
    assert!(text.contains("runs one run per seed"), "{text}");

    let src = with_data("experiment e { data d ctr dnn seeds 3 stage finetune ctr_only {} }");
    let text = plan::load_str(&src, "x.cp").unwrap_err().to_string();
    assert!(
        text.contains("= hint: for a single run write `seed N`"),
        "{text}"
    );
}
