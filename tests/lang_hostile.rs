//! Hostile experiment files (found by `examples/fuzz.rs --target checker` or
//! written for the caps it needs): each is an error with a line and column
//! inside the file, quickly, never a panic or a stack overflow.

use clickprompt::error::exit_code;
use clickprompt::plan::{
    load_bytes, load_file, load_str, MAX_RUNS, MAX_SOURCE_BYTES, MAX_SWEEP_POINTS,
};
use clickprompt::store::where_sql;

const BASE: &str = include_str!("../experiments/quickstart.cp");

/// The rendered error, asserting it is invalid input. (Time is measured by
/// the fuzzer, `examples/fuzz`, not here: these pin the behaviour that
/// keeps it bounded.)
fn error_of(bytes: &[u8]) -> String {
    let err = load_bytes(bytes, "h.cp").expect_err("an error");
    assert_eq!(exit_code(&err), 2, "{err:#}");
    format!("{err:#}")
}

#[test]
fn deep_nesting_is_an_error_at_the_bracket_not_a_stack_overflow() {
    for open in ["[", "(", "{"] {
        let src = format!("experiment x {{\n  seeds {}\n}}\n", open.repeat(100_000));
        let msg = error_of(src.as_bytes());
        // Line 2, column 9 + 31: the 33rd bracket (the block's `{` is the first).
        assert!(
            msg.starts_with("h.cp:2:40: error: brackets nested deeper than 32"),
            "{msg}"
        );
    }
}

#[test]
fn text_that_is_not_utf8_is_located() {
    let mut bytes = b"experiment x {\n  seed 1\n  data d\xff\n}\n".to_vec();
    let msg = error_of(&bytes);
    assert!(
        msg.starts_with("h.cp:3:9: error: the file is not valid UTF-8 (byte 0xff)"),
        "{msg}"
    );
    // A multibyte character cut short at the very start.
    bytes = b"\xe2\x82".to_vec();
    assert!(error_of(&bytes).starts_with("h.cp:1:1:"));
}

#[test]
fn a_sweep_over_too_many_points_is_refused_before_expanding() {
    let axis = |name: &str, n: usize| {
        let vals: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
        format!("  {name} in [{}],\n", vals.join(", "))
    };
    let src = format!(
        "{BASE}\nsweep huge over quickstart {{\n{}{}{}}}\n",
        axis("prompts", 100),
        axis("seed", 100),
        axis("stages.joint.epochs", 100)
    );
    let msg = error_of(src.as_bytes());
    assert!(
        msg.contains(&format!(
            "sweep `huge` has 1000000 points (100 × 100 × 100), more than the {MAX_SWEEP_POINTS} allowed"
        )),
        "{msg}"
    );
    let line = BASE.lines().count() + 2;
    assert!(
        msg.contains(&format!("h.cp:{line}:7: error: sweep `huge`")),
        "{msg}"
    );
}

/// A file at the cap still checks quickly (the cap bounds `check`'s time).
#[test]
fn a_sweep_at_the_cap_checks() {
    let v = |n: usize| {
        (1..=n)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let src = format!(
        "{BASE}\nsweep grid over quickstart {{ prompts in [{}], stages.joint.epochs in [{}] }}\n",
        v(40),
        v(MAX_SWEEP_POINTS / 40 - 1)
    );
    let plans = load_str(&src, "cap.cp").expect("within the cap");
    assert_eq!(plans.len(), 2 + 40 * (MAX_SWEEP_POINTS / 40 - 1));
}

#[test]
fn seeds_and_sweeps_together_are_capped_in_runs() {
    let seeds: Vec<String> = (1..=200).map(|i| i.to_string()).collect();
    let prompts: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
    let src = format!(
        "{}\nsweep wide over quickstart {{ prompts in [{}] }}\n",
        BASE.replace("seed 42", &format!("seeds [{}]", seeds.join(", "))),
        prompts.join(", ")
    );
    let msg = error_of(src.as_bytes());
    assert!(msg.contains(&format!("more than {MAX_RUNS} runs")), "{msg}");
    // Within the caps the same file checks.
    let ok = BASE.replace("seed 42", "seeds [1, 2, 3]");
    assert_eq!(load_str(&ok, "ok.cp").expect("valid").len(), 6);
}

#[test]
fn too_many_seeds_and_repeated_ones_are_errors() {
    let many: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
    let msg = error_of(
        BASE.replace("seed 42", &format!("seeds [{}]", many.join(",")))
            .as_bytes(),
    );
    assert!(
        msg.contains("`seeds` lists 1001 seeds, more than the 1000 allowed"),
        "{msg}"
    );
    let msg = error_of(BASE.replace("seed 42", "seeds [1, 2, 1]").as_bytes());
    assert!(msg.contains("seed 1 is listed twice"), "{msg}");
}

/// A 120 000-character parameter name (a fuzzer's duplicated span) took
/// 58 ms in the did-you-mean edit distance; long names get no suggestion.
#[test]
fn a_huge_unknown_name_is_reported_quickly_without_a_suggestion() {
    let long = "a".repeat(120_000);
    let src = BASE.replace("epochs 1, batch 32", &format!("{long} 1, batch 32"));
    let msg = error_of(src.as_bytes());
    assert!(
        msg.contains(&format!("unknown parameter `{long}`")),
        "{}",
        &msg[..200]
    );
    assert!(!msg.contains("did you mean"));
}

/// `--where` pastes of hundreds of kilobytes (fuzzer: 700 000 `[`, 340 ms)
/// are refused by length before lexing; typical expressions still compile.
#[test]
fn an_over_long_where_expression_is_refused_quickly() {
    let huge = format!("test_auc > 0.7 and {}", "[".repeat(700_000));
    let err = where_sql(&huge).expect_err("refused");
    assert_eq!(exit_code(&err), 2);
    assert!(
        err.to_string()
            .contains("700019 characters long, more than the 4096 allowed"),
        "{err}"
    );
    let chain = vec!["test_auc > 0.7"; 200].join(" and ");
    assert!(where_sql(&chain).is_ok());
    let long_word = format!("{} = 1", "x".repeat(4000));
    let msg = where_sql(&long_word)
        .expect_err("unknown field")
        .to_string();
    assert!(
        msg.contains("unknown field") && !msg.contains("did you mean"),
        "{}",
        &msg[..100]
    );
}

/// A fuzzed file (90 ms to check): a sweep of 1 472 points over an experiment
/// that does not resolve, so every point repeated the base's errors. The
/// sweep stops after 16 failing points, and says so at its name.
#[test]
fn a_sweep_over_a_broken_base_stops_after_sixteen_failing_points() {
    let values: Vec<String> = (0..92).map(|i| format!("0.{i:02}")).collect();
    let src = format!(
        "experiment broken {{\n  data missing\n  ctr dcnv2 {{ embed 8 }}\n  stage finetune ctr_only {{ epochs 1 }}\n}}\n\nsweep many over broken {{\n  prompts in [1, 2, 3, 4],\n  ctr.dropout in [{}],\n}}\n",
        values.join(", ")
    );
    let msg = error_of(src.as_bytes());
    assert!(
        msg.contains(
            "h.cp:7:7: error: sweep `many`: 16 points failed to check; the others were not checked"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("h.cp:2:8"),
        "the base's own error is reported: {msg}"
    );
}

/// Two fuzzed files, mutated copies of the examples (264 KB: 56 ms; 660 KB
/// with 660 experiments and 496 `seeds` lines: 223 ms), spent their time
/// parsing and locating thousands of diagnostics. Files past 128 KiB are
/// refused at the byte where they cross the limit, from text or from disk.
#[test]
fn a_file_past_the_size_limit_is_refused_where_it_crosses_it() {
    let study = include_str!("../experiments/study.cp");
    let src = study.repeat(MAX_SOURCE_BYTES / study.len() + 2);
    let before = &src[..MAX_SOURCE_BYTES];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    let kib = src.len().div_ceil(1024);
    let want = format!(
        "h.cp:{line}:{col}: error: the file is {kib} KiB, past the 128 KiB an experiment file may hold (here)"
    );
    let msg = error_of(src.as_bytes());
    assert!(msg.starts_with(&want), "{}", &msg[..300]);
    assert!(msg.contains("hint: describe many runs with `sweep` or `seeds`"));
    assert!(msg.ends_with("h.cp: 1 error found"));

    // From disk, a 64 MiB file is refused from its first bytes, alike.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.cp");
    let mut big = src.clone().into_bytes();
    big.resize(64 << 20, b'\n');
    std::fs::write(&path, &big).unwrap();
    let err = load_file(&path).expect_err("too large");
    assert_eq!(exit_code(&err), 2);
    let msg = format!("{err:#}");
    let want = want
        .replacen("h.cp", &path.display().to_string(), 1)
        .replace(&format!("{kib} KiB"), "65536 KiB");
    assert!(msg.starts_with(&want), "{}", &msg[..300]);

    // Just under the limit is checked as usual.
    let mut fits = String::from(BASE);
    fits.push_str(&"# padding\n".repeat((MAX_SOURCE_BYTES - BASE.len()) / 10));
    assert!(fits.len() <= MAX_SOURCE_BYTES);
    assert!(load_str(&fits, "h.cp").is_ok());
}

/// Hundreds of errors: the first 100 in file order are shown, all are
/// counted (the 660 KB fuzzed file had 2 600).
#[test]
fn hundreds_of_errors_show_the_first_hundred_and_count_all() {
    let src = BASE.repeat(70);
    let msg = error_of(src.as_bytes());
    let shown: Vec<&str> = msg.lines().filter(|l| l.contains(": error: ")).collect();
    assert_eq!(shown.len(), 100, "{}", &msg[..300]);
    let total: usize = msg
        .rsplit_once("h.cp: ")
        .and_then(|(_, tail)| tail.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a count line");
    assert!(total > 100, "{total}");
    assert!(
        msg.ends_with(&format!(
            "h.cp: {total} errors found (the first 100 are shown)"
        )),
        "{}",
        &msg[msg.len() - 200..]
    );
    // In file order: the first error is the second copy's first name.
    let first_line = BASE.lines().count() + 1;
    assert!(
        shown[0].starts_with(&format!("h.cp:{}:", first_line + first_decl_line() - 1)),
        "{}",
        shown[0]
    );
}

/// 1-based line of the first declaration in the quickstart file.
fn first_decl_line() -> usize {
    BASE.lines()
        .position(|l| l.starts_with("dataset") || l.starts_with("template"))
        .expect("a declaration")
        + 1
}

/// `line:col` of the first occurrence of `needle` in `src` (1-based).
fn pos_of(src: &str, needle: &str) -> String {
    let at = src.find(needle).expect("needle in source");
    let before = &src[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("{line}:{col}")
}

fn axis(name: &str, n: usize) -> String {
    let v: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    format!("{name} in [{}]", v.join(", "))
}

/// Every run of a sweep resolves its experiment again: a 60 KB `mlp` list
/// under a 2 000-point sweep took 2.3 s. Checking stops at the sweep once
/// the work budget is spent, and says why there.
#[test]
fn a_sweep_over_a_huge_experiment_stops_at_the_work_budget() {
    let mlp = format!("mlp [{}8]", "8, ".repeat(20_000));
    let src = BASE.replacen("mlp [64, 64]", &mlp, 1)
        + &format!(
            "\nsweep wide over quickstart {{ {}, {} }}\n",
            axis("prompts", 40),
            axis("seed", 50)
        );
    let msg = error_of(src.as_bytes());
    let at = pos_of(&src, "wide over");
    assert!(
        msg.starts_with(&format!(
            "h.cp:{at}: error: checking stops here: the runs so far resolve more than 2 MB of experiment settings"
        )),
        "{}",
        &msg[..msg.len().min(400)]
    );
    assert!(msg.contains("hint: sweeps, `seeds` and `extends` repeat an experiment's settings"));
    // The same sweep over the experiment as written checks: 2 000 runs of a
    // typical experiment are well inside the budget.
    let src = BASE.to_string()
        + &format!(
            "\nsweep wide over quickstart {{ {}, {} }}\n",
            axis("prompts", 40),
            axis("seed", 49)
        );
    assert_eq!(load_str(&src, "h.cp").expect("checks").len(), 2 + 40 * 49);
}

/// `extends` copies its base into every child: 1 800 children of a base
/// with a 54 KB list took 80 ms. The copies stop at the budget, at the
/// child where it ran out.
#[test]
fn many_children_of_a_huge_base_stop_at_the_work_budget() {
    let mlp = format!("mlp [{}8]", "8, ".repeat(18_000));
    let mut src = BASE.replacen("mlp [64, 64]", &mlp, 1);
    for i in 0..1_800 {
        src.push_str(&format!("experiment k{i} extends quickstart {{}}\n"));
    }
    let msg = error_of(src.as_bytes());
    let first = msg.lines().next().unwrap_or_default();
    assert!(
        first.contains(": error: checking stops here: the runs so far resolve more than 2 MB"),
        "{first}"
    );
    // At a child's name, early on: roughly 2 MB / (2 × 54 KB) children.
    let line: usize = first.split(':').nth(1).unwrap().parse().unwrap();
    let child = line - BASE.lines().count();
    assert!(
        (5..100).contains(&child),
        "stopped at child {child}: {first}"
    );
    assert!(msg.ends_with("h.cp: 1 error found"), "{msg}");
    // A thousand children of the base as written are well inside it.
    let mut src = BASE.to_string();
    for i in 0..1_000 {
        src.push_str(&format!(
            "experiment k{i} extends quickstart {{ seed {i} }}\n"
        ));
    }
    assert_eq!(load_str(&src, "h.cp").expect("checks").len(), 1_002);
}

/// A base with 6 000 unknown parameters extended 1 500 times took 15 s:
/// every child raised its base's 6 000 errors again. Checking stops once
/// 1 000 have been raised (here at the second experiment); the first 100
/// are shown. With 1 500 children the copies alone use up the budget.
#[test]
fn a_broken_base_extended_many_times_stops_after_a_thousand_errors() {
    let params: String = (0..6_000).map(|i| format!("zz{i} 1, ")).collect();
    let base = BASE.replacen("ctr dcnv2 {", &format!("ctr dcnv2 {{ {params}"), 1);
    let children = |n: usize| -> String {
        (0..n)
            .map(|i| format!("experiment k{i} extends quickstart {{}}\n"))
            .collect()
    };
    let many = error_of((base.clone() + &children(1_500)).as_bytes());
    assert!(
        many.contains("error: checking stops here"),
        "{}",
        &many[..300]
    );
    let src = base + &children(10);
    let msg = error_of(src.as_bytes());
    let at = pos_of(&src, "dcnv2_scratch extends");
    assert!(
        msg.contains(&format!(
            "h.cp:{at}: error: checking stops here after 1000 errors"
        )),
        "{}",
        &msg[msg.len().saturating_sub(600)..]
    );
    assert!(
        msg.contains(": error: checking stops here after 1000 errors"),
        "{}",
        &msg[msg.len().saturating_sub(600)..]
    );
    assert!(msg.contains("(the first 100 are shown)"));
    assert!(msg.contains("unknown parameter `zz0` for backbone `dcnv2`"));
}

/// Every run of a file shares its dataset: a 6 000-entry `map` under a
/// 1 920-point sweep was copied into each run (0.9 s); now one copy serves
/// them all, and the file checks.
#[test]
fn a_large_dataset_is_shared_by_every_run_not_copied() {
    let entries: String = (0..6_000).map(|i| format!("k{i}: \"v{i}\", ")).collect();
    let src = BASE.replacen(
        "field genre      \"Genre\"        category",
        &format!("field genre \"Genre\" category map {{ {entries} }}"),
        1,
    ) + &format!(
        "\nsweep wide over quickstart {{ {}, {} }}\n",
        axis("prompts", 40),
        axis("seed", 48)
    );
    let plans = load_str(&src, "h.cp").expect("checks");
    assert_eq!(plans.len(), 2 + 40 * 48);
    let genre = plans[0]
        .dataset
        .fields
        .iter()
        .find(|f| f.name == "genre")
        .expect("genre");
    assert_eq!(genre.map.len(), 6_000);
    assert!(plans
        .iter()
        .all(|p| std::sync::Arc::ptr_eq(&p.dataset, &plans[0].dataset)));
    assert!(plans.iter().skip(2).all(|p| p
        .template
        .as_ref()
        .zip(plans[0].template.as_ref())
        .is_some_and(|(a, b)| std::sync::Arc::ptr_eq(a, b))));
}

/// Duplicates among thousands of fields, map keys and stages are found
/// with hashed lookups (they were pairwise), and each is reported where it
/// is written.
#[test]
fn duplicates_among_thousands_are_each_reported_where_written() {
    let fields: String = (0..1_500)
        .map(|i| format!("  field f{i} \"F\" category column \"genre\"\n"))
        .collect();
    let keys: String = (0..1_500).map(|i| format!("k{i}: \"v\", ")).collect();
    let stages: String = (0..500)
        .map(|i| format!("  stage finetune ctr_only as c{i} {{ epochs 1 }}\n"))
        .collect();
    let src = BASE
        .replacen(
            "  field genre      \"Genre\"        category\n",
            &format!(
                "{fields}  field f1499 \"again\" category column \"genre\"\n  field genre \"Genre\" category map {{ {keys}k1499: \"again\" }}\n"
            ),
            1,
        )
        .replacen(
            "experiment quickstart {\n",
            &format!("experiment quickstart {{\n{stages}  stage finetune ctr_only as c499 {{ epochs 2 }}\n"),
            1,
        );
    let msg = error_of(src.as_bytes());
    let errors: Vec<&str> = msg.lines().filter(|l| l.contains(": error: ")).collect();
    let field = pos_of(&src, "f1499 \"again\"");
    let key = pos_of(&src, "k1499: \"again\"");
    assert!(
        errors.contains(&format!("h.cp:{field}: error: field `f1499` is declared twice").as_str()),
        "{errors:#?}"
    );
    assert!(
        errors.contains(&format!("h.cp:{key}: error: map key `k1499` is given twice").as_str()),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("experiment `quickstart` has two stages named `c499`")),
        "{errors:#?}"
    );
}

/// Among hundreds of declared names a did-you-mean is a guess and searching
/// them for every unknown name was quadratic: no suggestion past 256
/// candidates, and hints list at most 12 names.
#[test]
fn hints_among_hundreds_of_names_list_twelve_and_suggest_nothing() {
    let datasets: String = (0..300)
        .map(|i| {
            format!("dataset d{i:03} {{ source synthetic {{ users 3 }} label label split by_time 8:1:1 field user_id \"U\" id }}\n")
        })
        .collect();
    let src = format!(
        "{datasets}experiment x {{\n  data d0000\n  ctr dnn {{ embed 4 }}\n  stage finetune ctr_only {{ epochs 1 }}\n}}\n"
    );
    let msg = error_of(src.as_bytes());
    assert!(msg.contains("unknown dataset `d0000`"), "{msg}");
    assert!(!msg.contains("did you mean"), "{msg}");
    assert!(
        msg.contains("hint: known: `d000`, `d001`, `d002`, `d003`, `d004`, `d005`, `d006`, `d007`, `d008`, `d009`, `d010`, `d011` and 288 more"),
        "{msg}"
    );
    // A handful of names still gets its suggestion.
    let few = src.replacen(
        &datasets,
        &datasets[..datasets.find("dataset d010").unwrap()],
        1,
    );
    assert!(error_of(few.as_bytes()).contains("did you mean `d000`?"));
}
