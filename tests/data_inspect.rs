//! `clickprompt data inspect` on experiment files written here.

mod data_common;

use std::path::Path;

use clickprompt::cli::data::{inspect, InspectArgs};
use clickprompt::error::exit_code;

fn write_cp(dir: &Path, body: &str) -> std::path::PathBuf {
    let p = dir.join("e.cp");
    std::fs::write(&p, body).unwrap();
    p
}

fn args(file: &Path, cache: &Path, rebuild: bool) -> InspectArgs {
    InspectArgs {
        file: file.to_path_buf(),
        experiment: None,
        rebuild,
        cache_dir: cache.to_path_buf(),
    }
}

#[test]
fn inspect_reports_splits_fields_tokens_samples_and_cache() {
    let d = tempfile::tempdir().unwrap();
    let plm = d.path().join("plm");
    data_common::tiny_vocab(
        &plm,
        &["is", "title", "taste", "genre", "user", "id", "and", "the"],
    );
    let cp = write_cp(
        d.path(),
        &format!(
            r#"
dataset syn {{
  source synthetic {{ users 50, items 80, rows 2000, seed 3 }}
  label  label
  split  by_time 8:1:1
  field user_id    "User ID" id
  field user_taste "Taste"   text
  field title      "Title"   text
  field genre      "Genre"   category
}}
template t = each "{{name}} is {{value}}." join " "
plm tiny = bert("{}") {{ max_len 32 }}
experiment e {{
  data syn  text t  plm tiny
  ctr dcnv2 {{ embed 8, cross 1, mlp [16] }}
  stage finetune joint {{ epochs 1, batch 8, lr 1e-3 }}
}}
"#,
            plm.display()
        ),
    );
    let cache = d.path().join("cache");
    let first = inspect(&args(&cp, &cache, false)).unwrap();
    println!("{first}");
    for want in [
        "== experiment e",
        "dataset syn",
        "(miss: built in",
        "rows            1600       200       200",
        "2000 rows reach max_len",
        "positive",
        "user_id         single",
        "genre           single",
        "tokens (max_len 32",
        "[train row 0] (",
        "User ID is ",
        "Taste is ",
    ] {
        assert!(first.contains(want), "report lacks {want:?}");
    }
    let second = inspect(&args(&cp, &cache, false)).unwrap();
    assert!(second.contains("(hit, loaded in"), "{second}");
    let rebuilt = inspect(&args(&cp, &cache, true)).unwrap();
    assert!(rebuilt.contains("(miss: built in"), "{rebuilt}");
}

#[test]
fn inspect_names_the_missing_column() {
    let d = tempfile::tempdir().unwrap();
    let csv = d.path().join("c.csv");
    std::fs::write(&csv, "user,rating,ts\nu1,4,1\nu2,2,2\n").unwrap();
    let cp = write_cp(
        d.path(),
        &format!(
            r#"
dataset c {{
  source csv("{}")
  label  rating > 3
  split  by_time(ts) 8:1:1
  field user "User" id
  field item "Item" id
}}
experiment e {{
  data c
  ctr dcnv2 {{ embed 8, cross 1, mlp [16] }}
  stage finetune ctr_only {{ epochs 1, batch 8, lr 1e-3 }}
}}
"#,
            csv.display()
        ),
    );
    let e = inspect(&args(&cp, &d.path().join("cache"), false)).unwrap_err();
    let msg = format!("{e:#}");
    assert_eq!(exit_code(&e), 2, "{msg}");
    assert!(
        msg.contains("field 'item' of dataset 'c' reads column 'item'"),
        "{msg}"
    );
    assert!(msg.contains("user, rating, ts"), "{msg}");
    assert!(
        msg.contains("while loading dataset `c` for experiment `e` of"),
        "{msg}"
    );
    // What main prints for invalid input is the top-level message: it must carry both.
    assert!(e.to_string().contains("reads column 'item'") && e.to_string().contains("e.cp"));
}
