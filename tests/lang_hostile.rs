//! Hostile experiment files (found by `examples/fuzz.rs --target checker` or
//! written for the caps it needs): each is an error with a line and column
//! inside the file, quickly, never a panic or a stack overflow.

use std::time::Instant;

use clickprompt::error::exit_code;
use clickprompt::plan::{load_bytes, load_str, MAX_RUNS};

const BASE: &str = include_str!("../experiments/quickstart.cp");

/// The rendered error, asserting it is invalid input that took under a second.
fn error_of(bytes: &[u8]) -> String {
    let t0 = Instant::now();
    let err = load_bytes(bytes, "h.cp").err().expect("an error");
    let took = t0.elapsed();
    assert!(took.as_millis() < 1000, "took {took:?}");
    assert_eq!(exit_code(&err), 2, "{err:#}");
    format!("{err:#}")
}

#[test]
fn deep_nesting_is_an_error_at_the_bracket_not_a_stack_overflow() {
    for open in ["[", "(", "{"] {
        let src = format!("experiment x {{\n  seeds {}\n}}\n", open.repeat(200_000));
        let msg = error_of(src.as_bytes());
        // Line 2, column 9 + 31: the 33rd bracket (the block's `{` is the first).
        assert!(msg.starts_with("h.cp:2:40: error: brackets nested deeper than 32"), "{msg}");
    }
}

#[test]
fn text_that_is_not_utf8_is_located() {
    let mut bytes = b"experiment x {\n  seed 1\n  data d\xff\n}\n".to_vec();
    let msg = error_of(&bytes);
    assert!(msg.starts_with("h.cp:3:9: error: the file is not valid UTF-8 (byte 0xff)"), "{msg}");
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
        msg.contains("sweep `huge` has 1000000 points (100 × 100 × 100), more than the 10000 allowed"),
        "{msg}"
    );
    let line = BASE.lines().count() + 2;
    assert!(msg.contains(&format!("h.cp:{line}:7: error: sweep `huge`")), "{msg}");
}

#[test]
fn seeds_and_sweeps_together_are_capped_in_runs() {
    let seeds: Vec<String> = (1..=900).map(|i| i.to_string()).collect();
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
    let msg = error_of(BASE.replace("seed 42", &format!("seeds [{}]", many.join(","))).as_bytes());
    assert!(msg.contains("`seeds` lists 1001 seeds, more than the 1000 allowed"), "{msg}");
    let msg = error_of(BASE.replace("seed 42", "seeds [1, 2, 1]").as_bytes());
    assert!(msg.contains("seed 1 is listed twice"), "{msg}");
}
