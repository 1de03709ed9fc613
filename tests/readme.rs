//! The README stays true: its language tour is a valid experiment file, and
//! the two commands it starts with exist.

use std::path::Path;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

#[test]
fn the_language_tour_checks() {
    let text = readme();
    let start = text.find("```\ndataset ").expect("tour block") + 4;
    let end = start + text[start..].find("```").expect("end of the tour block");
    let plans = clickprompt::plan::load_str(&text[start..end], "README.md").unwrap();
    let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), 10, "{names:?}");
    assert!(
        names.contains(&"prompt_count[prompts=5,ctr=dcnv2]"),
        "{names:?}"
    );
    let cp = plans
        .iter()
        .find(|p| p.name == "clickprompt_dcnv2")
        .unwrap();
    assert_eq!(cp.prompts.count, 10);
    assert_eq!(cp.stages.len(), 3);
}

#[test]
fn the_first_commands_exist() {
    let text = readme();
    let block = text.split("```sh\n").nth(1).unwrap();
    let first: Vec<&str> = block.lines().take(2).collect();
    assert!(first[0].starts_with("scripts/quickstart.sh"), "{first:?}");
    assert!(first[1].starts_with("cargo test --workspace"), "{first:?}");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/quickstart.sh");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&script).unwrap().permissions().mode();
    assert!(mode & 0o111 != 0, "scripts/quickstart.sh is not executable");
    let ci =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/run")).unwrap();
    assert!(
        ci.contains("cargo test --workspace"),
        ".ci/run does not run the README's test command"
    );
}
