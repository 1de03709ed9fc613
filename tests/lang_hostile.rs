//! Hostile experiment files (found by `examples/fuzz.rs --target checker` or
//! written for the caps it needs): each is an error with a line and column
//! inside the file, quickly, never a panic or a stack overflow.

use clickprompt::error::exit_code;
use clickprompt::plan::{load_bytes, load_str, MAX_RUNS, MAX_SWEEP_POINTS};
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
        let src = format!("experiment x {{\n  seeds {}\n}}\n", open.repeat(200_000));
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
