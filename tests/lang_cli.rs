//! `clickprompt check` and `clickprompt plan` through the CLI definitions.

use std::path::Path;

use clap::{CommandFactory, Parser};
use clickprompt::cli::{dispatch, Cli};
use clickprompt::error::exit_code;

fn run(args: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["clickprompt"];
    argv.extend_from_slice(args);
    dispatch(Cli::try_parse_from(argv).map_err(|e| anyhow::anyhow!("{e}"))?)
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("experiments")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn check_accepts_every_example() {
    let mut args = vec!["check".to_string()];
    for f in [
        "quickstart.cp",
        "ml100k_scratch.cp",
        "ml100k_prompt_sweep.cp",
    ] {
        args.push(example(f));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&refs).unwrap();
}

#[test]
fn check_reports_every_file_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.cp");
    std::fs::write(
        &bad,
        "experiment e { data nope ctr dnn stage finetune ctr_only { epochs 0 } }\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.cp");
    let err = run(&["check", bad.to_str().unwrap(), missing.to_str().unwrap()]).unwrap_err();
    assert_eq!(exit_code(&err), 2);
    let text = err.to_string();
    println!("{text}");
    assert!(
        text.contains("bad.cp:1:21: error: unknown dataset `nope`"),
        "{text}"
    );
    assert!(
        text.contains("bad.cp:1:67: error: `epochs` must be at least 1, found `0`"),
        "{text}"
    );
    assert!(text.contains("bad.cp: 2 errors found"), "{text}");
    assert!(
        text.contains("missing.cp: cannot read experiment file"),
        "{text}"
    );
}

#[test]
fn plan_prints_selected_runs_and_rejects_unknown_names() {
    let f = example("ml100k_prompt_sweep.cp");
    run(&["plan", &f, "--experiment", "joint_lr", "--format", "json"]).unwrap();
    run(&["plan", &f, "-e", "clickprompt"]).unwrap();
    let err = run(&["plan", &f, "-e", "nope"]).unwrap_err();
    assert_eq!(exit_code(&err), 2);
    assert!(run(&["plan", &f, "--format", "toml"]).is_err());
}

#[test]
fn help_texts_are_complete() {
    let mut cmd = Cli::command();
    let check = cmd
        .find_subcommand_mut("check")
        .unwrap()
        .render_long_help()
        .to_string();
    for want in ["Exit codes", "--quiet", "FILE", "Examples", "caret"] {
        assert!(check.contains(want), "check help lacks {want}:\n{check}");
    }
    let plan = cmd
        .find_subcommand_mut("plan")
        .unwrap()
        .render_long_help()
        .to_string();
    for want in [
        "--experiment",
        "--format",
        "yaml",
        "json",
        "sweep",
        "Examples",
    ] {
        assert!(plan.contains(want), "plan help lacks {want}:\n{plan}");
    }
}
