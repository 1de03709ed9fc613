//! Run groups in the store: ids shared by the seeds of one run across store
//! handles (processes), the migration that gives old runs their groups, and
//! `runs list --groups` / `runs compare gA gB` through the real binary, with
//! the paired difference checked against a hand computation; on SQLite and
//! PostgreSQL, except the migration from a SQLite file of before groups
//! (`store_migrations` upgrades PostgreSQL databases).

mod store_support;

use clickprompt::plan::ExperimentPlan;
use clickprompt::store::{group_key, NewRun, RunFilter, RunStatus, Store, SQLITE_MIGRATOR};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use store_support::*;

fn seeded(group: &str, seed: u64) -> ExperimentPlan {
    let mut p = plan(&format!("{group}[seed={seed}]"), dnn(), 5);
    p.group = group.to_string();
    p.seed = seed;
    p
}

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn group_of(store: &Store, run: i64) -> (i64, String) {
    let s = store.run_summary(run).expect("run");
    (
        s.group_id.expect("every run has a group"),
        s.group_name.expect("group name"),
    )
}

fn seeds_of_one_run_share_a_group_across_store_handles(test_db: &TestDb) {
    let db = &test_db.target;
    let one = Store::open(db).expect("open");
    let two = Store::open(db).expect("second handle, as another process");
    let a1 = start(&one, &seeded("scratch", 1));
    let a2 = start(&two, &seeded("scratch", 2));
    let b1 = start(&one, &seeded("clickprompt", 1));
    let plain = start(&two, &plan("movielens", dnn(), 5));
    let (ga, name) = group_of(&one, a1.run_id());
    assert_eq!(name, "scratch");
    assert_eq!(group_of(&two, a2.run_id()), (ga, "scratch".to_string()));
    let (gb, name_b) = group_of(&one, b1.run_id());
    assert_ne!(gb, ga);
    assert_eq!(name_b, "clickprompt");
    // A run without repeats is its own group, named after itself.
    let (gp, name_p) = group_of(&one, plain.run_id());
    assert!(gp != ga && gp != gb);
    assert_eq!(name_p, "movielens");

    let info = one.group(ga).expect("group");
    assert_eq!(info.key, format!("{}/scratch", sha(SOURCE)));
    assert_eq!(info.key, group_key(&sha(SOURCE), "scratch"));
    assert_eq!(info.experiment.as_deref(), Some("movielens"));
    let members: Vec<i64> = one
        .group_runs(ga)
        .expect("runs")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(members, [a1.run_id(), a2.run_id()]);
    assert_eq!(one.groups_named("scratch").expect("named").len(), 1);

    // The same group name from a changed file is another group.
    let changed = "experiment movielens { seed 3 }\n";
    let p = seeded("scratch", 3);
    let c = one
        .start_run(NewRun::new(
            &p,
            Path::new("exp/movielens.cp"),
            changed,
            "cpu",
        ))
        .expect("start");
    let (gc, _) = group_of(&one, c.run_id());
    assert_ne!(gc, ga);
    assert_eq!(one.groups_named("scratch").expect("named").len(), 2);
    assert!(one.group(9999).is_err());

    for rec in [a1, a2, b1, plain, c] {
        finish_ok(rec);
    }
    // Deleting a group's last runs deletes the group.
    let ids = members.clone();
    one.delete_runs(&ids).expect("delete");
    assert_eq!(
        test_db.scalar_i64(&format!("SELECT COUNT(*) FROM run_groups WHERE id = {ga}")),
        0
    );
    assert_eq!(
        test_db.scalar_i64(&format!("SELECT COUNT(*) FROM run_groups WHERE id = {gb}")),
        1
    );
}

fn concurrent_starts_of_one_group_create_it_once(test_db: &TestDb) {
    let db = test_db.target.clone();
    drop(Store::open(&db).expect("create"));
    let handles: Vec<_> = (1..=4)
        .map(|seed| {
            let db = db.clone();
            std::thread::spawn(move || {
                let store = Store::open(&db).expect("open");
                let rec = start(&store, &seeded("par", seed));
                let id = rec.run_id();
                finish_ok(rec);
                group_of(&store, id).0
            })
        })
        .collect();
    let groups: Vec<i64> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    assert!(groups.iter().all(|g| *g == groups[0]), "{groups:?}");
    assert_eq!(
        test_db.scalar_i64("SELECT COUNT(*) FROM run_groups WHERE name = 'par'"),
        1
    );
}

/// A database as the release before groups left it: migrations 0001 and 0002.
fn old_database(db: &Path, dir: &Path) {
    let old = dir.join("old_migrations");
    std::fs::create_dir(&old).expect("mkdir");
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .expect("migrations dir")
        .filter_map(|e| e.ok())
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("0001_") || name.starts_with("0002_") {
            std::fs::copy(entry.path(), old.join(&name)).expect("copy");
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", db.display()))
                .await
                .expect("connect");
        let m = sqlx::migrate::Migrator::new(old.as_path())
            .await
            .expect("old migrator");
        m.run(&mut conn).await.expect("apply 0001, 0002");
        conn.close().await.expect("close");
    });
}

#[test]
fn the_migration_gives_old_runs_one_group_per_file_and_name() {
    let dir = tempdir();
    let db = db_in(&dir);
    old_database(&db, dir.path());
    assert_eq!(scalar_i64(&db, "SELECT COUNT(*) FROM _sqlx_migrations"), 2);
    let hash = sha(SOURCE);
    let run = |id: i64, exp: i64, name: &str| {
        format!(
            "INSERT INTO runs (id, experiment_id, name, sweep_point, status, started_at, ended_at, device, host, pid,
                proc_start, crate_version, seed, plan_yaml, error)
             VALUES ({id}, {exp}, '{name}', NULL, 'FINISHED', '2026-01-0{id}T00:00:00.000Z', NULL,
                'cpu', 'h', 1, NULL, '0.0.1', {id}, 'name: {name}', NULL)"
        )
    };
    sql(
        &db,
        &[
            &format!("INSERT INTO experiments VALUES (1, 'movielens', 'm.cp', '{hash}', 'x', '2026-01-01T00:00:00.000Z')"),
            "INSERT INTO experiments VALUES (2, 'movielens', 'm.cp', 'def', 'y', '2026-01-01T00:00:00.000Z')",
            &run(1, 1, "movielens"),
            &run(2, 1, "movielens"),
            &run(3, 1, "sweep[prompts=5]"),
            &run(4, 2, "movielens"),
        ],
    );

    let store = Store::open(&db).expect("migrates");
    assert_eq!(
        scalar_i64(&db, "SELECT COUNT(*) FROM _sqlx_migrations"),
        SQLITE_MIGRATOR.iter().count() as i64
    );
    assert_eq!(scalar_i64(&db, "SELECT COUNT(*) FROM run_groups"), 3);
    assert_eq!(
        scalar_i64(&db, "SELECT COUNT(*) FROM runs WHERE group_id IS NULL"),
        0
    );
    let (g1, n1) = group_of(&store, 1);
    assert_eq!(group_of(&store, 2), (g1, n1.clone()));
    assert_eq!(n1, "movielens");
    let (g3, n3) = group_of(&store, 3);
    assert_eq!(n3, "sweep[prompts=5]");
    let (g4, _) = group_of(&store, 4);
    assert!(
        g3 != g1 && g4 != g1 && g4 != g3,
        "another file, another group"
    );
    let info = store.group(g1).expect("group");
    assert_eq!(info.key, group_key(&hash, "movielens"));
    assert_eq!(info.created_at, "2026-01-01T00:00:00.000Z");
    assert_eq!(store.group(g4).expect("g4").key, "def/movielens");

    // A new run of the same file and name joins the backfilled group.
    let rec = start(&store, &plan("movielens", dnn(), 5));
    assert_eq!(group_of(&store, rec.run_id()).0, g1);
    finish_ok(rec);
    let listed = store
        .list_runs(&RunFilter {
            where_expr: Some(format!("group_id = {g1}")),
            ..RunFilter::default()
        })
        .expect("list");
    assert_eq!(listed.len(), 3);
    let listed = store
        .list_runs(&RunFilter {
            where_expr: Some("group = 'sweep[prompts=5]'".into()),
            ..RunFilter::default()
        })
        .expect("list");
    assert_eq!(listed.iter().map(|r| r.id).collect::<Vec<_>>(), [3]);
}

// ---------------------------------------------------------------- CLI

/// Group g1 `scratch`: an early seed-1 run (AUC 0.60, superseded), then seeds
/// 1-3 with test AUC 0.70 0.72 0.71. Group g2 `clickprompt`: seeds 1-3 with
/// 0.73 0.72 0.75 and a failed seed 4. Paired B − A: 0.03, 0, 0.04.
fn fixture(test_db: &TestDb) -> String {
    let store = test_db.open();
    let finished = |group: &str, seed: u64, auc: f64, ll: f64| {
        let rec = start(&store, &seeded(group, seed));
        full_run(&rec, [auc - 0.02, auc + 0.01], auc, ll, 3);
        finish_ok(rec);
    };
    finished("scratch", 1, 0.60, 0.70);
    finished("scratch", 1, 0.70, 0.55);
    finished("scratch", 2, 0.72, 0.545);
    finished("scratch", 3, 0.71, 0.555);
    finished("clickprompt", 1, 0.73, 0.54);
    finished("clickprompt", 2, 0.72, 0.545);
    finished("clickprompt", 3, 0.75, 0.56);
    let rec = start(&store, &seeded("clickprompt", 4));
    full_run(&rec, [0.98, 0.99], 0.99, 0.1, 3);
    rec.finish(RunStatus::Failed("boom".into()))
        .expect("finish");
    test_db.arg()
}

fn cp(db: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clickprompt"))
        .arg("runs")
        .args(args)
        .arg("--db")
        .arg(db)
        .env_remove("NO_COLOR")
        .env_remove("CLICKPROMPT_DB")
        .stdin(Stdio::null())
        .output()
        .expect("run clickprompt")
}

fn ok(db: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> String {
    let out = cp(db, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8(out.stdout).expect("utf-8")
}

fn fails(db: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> (i32, String) {
    let out = cp(db, args);
    assert!(!out.status.success(), "{args:?} should fail");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn close(v: &serde_json::Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-9)
}

fn list_groups_shows_mean_and_sd_over_seeds(test_db: &TestDb) {
    let db = fixture(test_db);
    let text = ok(&db, &["list", "--groups"]);
    assert_eq!(
        text,
        "GROUP  EXPERIMENT  NAME         RUNS  SEEDS         TEST AUC     TEST LOGLOSS   BEST VALID AUC\n\
         \x20  g2  movielens   clickprompt   3/4  1,2,3  0.7333 ± 0.0153  0.5483 ± 0.0104  0.7433 ± 0.0153\n\
         \x20  g1  movielens   scratch       4/4  1,2,3  0.7100 ± 0.0100  0.5500 ± 0.0050  0.7200 ± 0.0100\n\
         RUNS: finished/total; metrics: mean ± sample sd over seeds (the latest finished run per seed)\n"
    );
    // Filters select member runs; sort by a group mean, best first.
    let text = ok(
        &db,
        &[
            "list",
            "--groups",
            "--where",
            "seed <= 2",
            "--sort",
            "test_auc",
            "--asc",
        ],
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[1].contains("g1") && lines[1].contains("1,2"),
        "{text}"
    );
    assert!(lines[1].contains("0.7100 ± 0.0141"), "{text}");
    assert!(
        lines[2].contains("g2") && lines[2].contains("0.7250 ± 0.0071"),
        "{text}"
    );
    let text = ok(&db, &["list", "--groups", "--experiment", "nope"]);
    assert!(text.starts_with("no runs match"), "{text}");
    let (code, err) = fails(&db, &["list", "--groups", "--sort", "seed"]);
    assert_eq!(code, 2);
    assert!(err.contains("groups sort by the mean of test_auc"), "{err}");

    let json: serde_json::Value =
        serde_json::from_str(&ok(&db, &["list", "--groups", "--json", "--limit", "1"]))
            .expect("json");
    let groups = json.as_array().expect("array");
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!(g["group_id"], 2);
    assert_eq!(g["group"], "clickprompt");
    assert_eq!(g["experiment"], "movielens");
    assert_eq!(
        (g["runs"].as_u64(), g["finished"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(g["seeds"], serde_json::json!([1, 2, 3]));
    assert_eq!(g["seed_runs"], serde_json::json!([5, 6, 7]));
    assert_eq!(g["run_ids"], serde_json::json!([5, 6, 7, 8]));
    let auc = &g["metrics"][0];
    assert_eq!(auc["metric"], "test_auc");
    assert_eq!(auc["better"], "higher");
    assert_eq!(auc["n"], 3);
    assert!(close(&auc["mean"], (0.73 + 0.72 + 0.75) / 3.0), "{auc}");
    assert!(close(&auc["sd"], 0.015_275_252_316_519_468), "{auc}");
    assert_eq!(g["metrics"][1]["better"], "lower");

    // Every run shows its seed and, in `show`, its group.
    let list = ok(&db, &["list", "--limit", "1"]);
    assert!(
        list.lines()
            .next()
            .unwrap_or("")
            .contains("SWEEP  SEED  STATUS"),
        "{list}"
    );
    let show = ok(&db, &["show", "2"]);
    assert!(
        show.contains("group:     g1 scratch (4 runs, seeds 1,2,3;"),
        "{show}"
    );
}

fn compare_two_groups_pairs_by_seed(test_db: &TestDb) {
    let db = fixture(test_db);
    let text = ok(&db, &["compare", "g1", "g2"]);
    for want in [
        "A  g1 scratch (experiment movielens): 4 run(s), 4 finished, seeds 1,2,3",
        "B  g2 clickprompt (experiment movielens): 4 run(s), 3 finished, seeds 1,2,3",
        "(none besides the seeds)",
    ] {
        assert!(text.contains(want), "missing {want:?}\n{text}");
    }
    let row = |label: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no row {label}\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    // mean 0.07/3, sd 0.020817, se 0.012019, t 1.94; B better on 2 of 3, one tie.
    assert_eq!(
        row("test AUC"),
        "test AUC higher 0.7100 ± 0.0100 0.7333 ± 0.0153 +0.0233 0.0120 +1.94 2 of 3 (1 tied)"
    );
    // LogLoss diffs −0.01, 0, +0.005: lower is better, so B wins seed 1, loses seed 3.
    assert_eq!(
        row("test LogLoss"),
        "test LogLoss lower 0.5500 ± 0.0050 0.5483 ± 0.0104 -0.0017 0.0044 -0.38 1 of 3 (1 tied)"
    );
    let per_seed: Vec<String> = text
        .lines()
        .skip_while(|l| !l.contains("per seed (B − A)"))
        .skip(2)
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        per_seed,
        [
            "1 2 5 +0.0300 -0.0100 +0.0300",
            "2 3 6 +0.0000 +0.0000 +0.0000",
            "3 4 7 +0.0400 +0.0050 +0.0400",
        ]
    );

    // The same by name, as JSON.
    let json: serde_json::Value =
        serde_json::from_str(&ok(&db, &["compare", "scratch", "clickprompt", "--json"]))
            .expect("json");
    assert_eq!(json["a"]["group_id"], 1);
    assert_eq!(json["b"]["group_id"], 2);
    assert_eq!(json["a"]["seed_runs"], serde_json::json!([2, 3, 4]));
    assert_eq!(json["params"], serde_json::json!([]));
    let auc = &json["metrics"][0];
    assert_eq!(auc["metric"], "test_auc");
    assert_eq!(auc["better"], "higher");
    assert!(close(&auc["a"]["mean"], 0.71), "{auc}");
    assert!(close(&auc["a"]["sd"], 0.01), "{auc}");
    let p = &auc["paired"];
    assert_eq!(p["n"], 3);
    let mean = 0.07 / 3.0;
    let sd = (((0.03f64 - mean).powi(2) + mean.powi(2) + (0.04 - mean).powi(2)) / 2.0).sqrt();
    assert!(close(&p["mean"], mean), "{p}");
    assert!(close(&p["sd"], sd), "{p}");
    assert!(close(&p["se"], sd / 3f64.sqrt()), "{p}");
    assert_eq!(
        (
            p["b_better"].as_u64(),
            p["a_better"].as_u64(),
            p["ties"].as_u64()
        ),
        (Some(2), Some(0), Some(1))
    );
    let rows = p["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 3);
    assert_eq!(
        (
            rows[0]["seed"].as_u64(),
            rows[0]["a_run"].as_i64(),
            rows[0]["b_run"].as_i64()
        ),
        (Some(1), Some(2), Some(5))
    );
    assert!(close(&rows[2]["diff"], 0.75 - 0.71), "{p}");

    // --metric picks other fields.
    let json: serde_json::Value = serde_json::from_str(&ok(
        &db,
        &[
            "compare",
            "g1",
            "g2",
            "--metric",
            "ctr_only.valid_auc",
            "--json",
        ],
    ))
    .expect("json");
    let m = json["metrics"].as_array().expect("metrics");
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["metric"], "ctr_only.valid_auc");
    assert!(close(&m[0]["paired"]["mean"], mean), "{}", m[0]);
}

fn group_arguments_are_checked(test_db: &TestDb) {
    let db = fixture(test_db);
    let (code, err) = fails(&db, &["compare", "g1", "5"]);
    assert_eq!(code, 2);
    assert!(err.contains("run ids (numbers) or groups"), "{err}");
    let (code, err) = fails(&db, &["compare", "g1", "g2", "g1"]);
    assert_eq!(code, 2);
    assert!(err.contains("exactly two groups"), "{err}");
    let (code, err) = fails(&db, &["compare", "g1", "g99"]);
    assert_eq!(code, 2);
    assert!(err.contains("no group g99"), "{err}");
    let (code, err) = fails(&db, &["compare", "g1", "nosuch"]);
    assert_eq!(code, 2);
    assert!(err.contains("no run group named `nosuch`"), "{err}");
    let (code, err) = fails(&db, &["compare", "1", "2", "--metric", "test_auc"]);
    assert_eq!(code, 2);
    assert!(err.contains("--metric applies to groups"), "{err}");
    let (code, err) = fails(&db, &["compare", "g1", "g2", "--metric", "bogus"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown field `bogus`"), "{err}");
    // Plain run comparisons still work.
    let text = ok(&db, &["compare", "2", "5"]);
    assert!(text.contains("params that differ"), "{text}");
}

/// ClickPrompt groups (joint and CTR-only stages) whose best stage differs
/// between seeds: the defaults average each run's best stage's figures, a
/// stage named in `--metric` averages that stage's.
fn group_compare_takes_the_best_stage_or_a_stage_by_name(test_db: &TestDb) {
    let db = test_db.arg();
    let store = test_db.open();
    // (valid AUC, test AUC) of joint and CTR-only per seed; the best stage
    // is the higher valid AUC: A joint, ctr, ctr; B joint, joint, ctr.
    let groups = [
        (
            "plain",
            [
                ((0.78, 0.775), (0.77, 0.768)),
                ((0.75, 0.745), (0.76, 0.760)),
                ((0.74, 0.735), (0.75, 0.750)),
            ],
        ),
        (
            "aligned",
            [
                ((0.80, 0.795), (0.79, 0.785)),
                ((0.79, 0.790), (0.78, 0.770)),
                ((0.76, 0.755), (0.77, 0.775)),
            ],
        ),
    ];
    for (group, seeds) in groups {
        for (i, ((jv, jt), (cv, ct))) in seeds.into_iter().enumerate() {
            let rec = start(&store, &seeded(group, i as u64 + 1));
            clickprompt_run(&rec, ([jv - 0.01, jv], jt), ([cv - 0.01, cv], ct));
            finish_ok(rec);
        }
    }
    drop(store);
    let compare = |metrics: &[&str]| -> serde_json::Value {
        let mut args = vec!["compare", "plain", "aligned", "--json"];
        for m in metrics {
            args.extend(["--metric", m]);
        }
        serde_json::from_str(&ok(&db, &args)).expect("json")
    };
    let paired_mean =
        |json: &serde_json::Value, i: usize| json["metrics"][i]["paired"]["mean"].clone();

    // Best stages: A 0.775 0.760 0.750, B 0.795 0.790 0.775 → diffs .020 .030 .025.
    let json = compare(&[]);
    assert_eq!(json["metrics"][0]["metric"], "test_auc");
    assert!(
        close(&json["metrics"][0]["a"]["mean"], 2.285 / 3.0),
        "{json}"
    );
    assert!(close(&paired_mean(&json, 0), 0.025), "{json}");
    // best_valid_auc: A 0.78 0.76 0.75, B 0.80 0.79 0.77.
    assert_eq!(json["metrics"][2]["metric"], "best_valid_auc");
    assert!(close(&paired_mean(&json, 2), 0.07 / 3.0), "{json}");

    // By stage: CTR-only A 0.768 0.760 0.750, B 0.785 0.770 0.775 → .017 .010 .025;
    // joint A 0.775 0.745 0.735, B 0.795 0.790 0.755 → .020 .045 .020.
    let json = compare(&["ctr_only.test_auc", "joint.test_auc", "joint.valid_auc"]);
    let m = &json["metrics"];
    assert_eq!(m[0]["metric"], "ctr_only.test_auc");
    assert_eq!(m[0]["better"], "higher");
    assert_eq!(m[0]["paired"]["n"], 3);
    assert!(close(&m[0]["a"]["mean"], 2.278 / 3.0), "{m}");
    assert!(close(&m[0]["b"]["mean"], 2.33 / 3.0), "{m}");
    assert!(close(&paired_mean(&json, 0), 0.052 / 3.0), "{m}");
    assert!(close(&paired_mean(&json, 1), 0.085 / 3.0), "{m}");
    assert!(close(&paired_mean(&json, 2), 0.08 / 3.0), "{m}");
    assert_eq!(m[1]["paired"]["b_better"], 3);

    // The table names the stage fields as given.
    let text = ok(
        &db,
        &[
            "compare",
            "plain",
            "aligned",
            "--metric",
            "ctr_only.test_logloss",
        ],
    );
    assert!(text.contains("ctr_only.test_logloss"), "{text}");
    assert!(text.contains("lower"), "{text}");

    // A stage no run has is refused, as in `runs best --metric`.
    let (code, err) = fails(
        &db,
        &[
            "compare",
            "plain",
            "aligned",
            "--metric",
            "ctronly.test_auc",
        ],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("invalid --metric `ctronly.test_auc`: no run has a stage `ctronly` (did you mean `ctr_only`?)"),
        "{err}"
    );
}

/// A PA-MLM stage whose best epoch (1) has prompt gap `gap`; epoch 2 is worse.
fn pretrain(sink: &dyn clickprompt::train::events::EventSink, gap: f64) {
    use clickprompt::train::events::{EvalSplit, Event};
    sink.emit(Event::StageStarted {
        stage: "pretrain".into(),
        kind: "pa_mlm".into(),
        epochs: 2,
        steps_per_epoch: 1,
        rows: 32,
    });
    for (epoch, g) in [(1, gap), (2, gap - 0.5)] {
        sink.emit(Event::Eval {
            stage: "pretrain".into(),
            epoch,
            split: EvalSplit::Valid,
            auc: None,
            logloss: None,
            metrics: vec![
                ("mlm_acc".into(), 0.4 + g),
                ("prompt_gap".into(), g),
                ("prompt_gap[title]".into(), 2.0 * g),
            ],
        });
    }
    sink.emit(Event::StageFinished {
        stage: "pretrain".into(),
        best_epoch: Some(1),
        seconds: 1.0,
        train_samples_per_s: 32.0,
        infer_samples_per_s: None,
    });
}

fn validation_metrics_of_a_stage_compare_over_seeds(test_db: &TestDb) {
    let db = &test_db.target;
    let arg = test_db.arg();
    let store = Store::open(db).expect("open");
    // Prompt gaps: A 0.01 0.02 0.00, B 0.05 0.03 0.04 → B − A 0.04 0.01 0.04.
    for (group, gaps) in [
        ("zeroed", [0.01, 0.02, 0.0]),
        ("aligned", [0.05, 0.03, 0.04]),
    ] {
        for (i, g) in gaps.into_iter().enumerate() {
            let rec = start(&store, &seeded(group, i as u64 + 1));
            pretrain(&rec, g);
            finish_ok(rec);
        }
    }
    drop(store);
    let json: serde_json::Value = serde_json::from_str(&ok(
        &arg,
        &[
            "compare",
            "zeroed",
            "aligned",
            "--metric",
            "pretrain.valid.prompt_gap",
            "--metric",
            "pretrain.valid.prompt_gap[title]",
            "--json",
        ],
    ))
    .expect("json");
    let m = &json["metrics"][0];
    assert_eq!(m["metric"], "pretrain.valid.prompt_gap");
    assert_eq!(m["better"], "higher");
    assert!(close(&m["a"]["mean"], 0.01), "{m}");
    assert!(close(&m["b"]["mean"], 0.04), "{m}");
    let p = &m["paired"];
    assert!(close(&p["mean"], 0.03), "{p}");
    // Diffs 0.04, 0.01, 0.04: sd √((0.01² + 0.02² + 0.01²)/2) = √3e-4.
    assert!(close(&p["sd"], 3e-4f64.sqrt()), "{p}");
    assert!(close(&p["se"], 1e-4f64.sqrt()), "{p}");
    assert_eq!(p["b_better"], 3);
    assert!(
        close(&json["metrics"][1]["paired"]["mean"], 0.06),
        "{}",
        json["metrics"][1]
    );
    // The same field filters and sorts runs.
    let text = ok(
        &arg,
        &[
            "list",
            "--where",
            "pretrain.valid.prompt_gap >= 0.04",
            "--sort",
            "pretrain.valid.mlm_acc",
        ],
    );
    let ids: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ids, ["4", "6"], "{text}");
    let (code, err) = fails(&arg, &["list", "--where", "pretrain.valid. > 1"]);
    assert_eq!(code, 2);
    assert!(err.contains("needs a metric after `valid.`"), "{err}");
}

// ---------------------------------------------------------------- dashboard

fn the_dashboard_feed_aggregates_groups_the_same_way(test_db: &TestDb) {
    use clickprompt::dashfeed::StoreSource;
    use clickprompt_tui::DataSource;

    fixture(test_db);
    let mut src = StoreSource::open(&test_db.target).expect("open");
    let runs = src.runs().expect("runs");
    let r5 = runs.iter().find(|r| r.id == 5).expect("run 5");
    assert_eq!(
        (r5.group_id, r5.group.as_deref()),
        (Some(2), Some("clickprompt"))
    );

    let mut groups = src.groups().expect("groups");
    groups.sort_by_key(|g| g.id);
    assert_eq!(groups.len(), 2);
    let (a, b) = (&groups[0], &groups[1]);
    assert_eq!((a.name.as_str(), a.runs, a.finished), ("scratch", 4, 4));
    assert_eq!((b.name.as_str(), b.runs, b.finished), ("clickprompt", 4, 3));
    assert_eq!(b.seeds, [1, 2, 3]);
    assert_eq!(a.test_auc.n, 3);
    assert!((a.test_auc.mean.unwrap() - 0.71).abs() < 1e-9);
    assert!((a.test_auc.sd.unwrap() - 0.01).abs() < 1e-9);
    assert!((b.best_valid_auc.mean.unwrap() - (0.74 + 0.73 + 0.76) / 3.0).abs() < 1e-9);

    let c = src.group_comparison(1, 2).expect("comparison");
    assert_eq!((c.a.id, c.b.id), (1, 2));
    let auc = &c.metrics[0];
    assert_eq!(auc.label, "test AUC");
    assert_eq!(auc.higher_is_better, Some(true));
    let mean = 0.07 / 3.0;
    let sd = (((0.03f64 - mean).powi(2) + mean.powi(2) + (0.04 - mean).powi(2)) / 2.0).sqrt();
    assert!((auc.paired.mean.unwrap() - mean).abs() < 1e-9);
    assert!((auc.paired.se.unwrap() - sd / 3f64.sqrt()).abs() < 1e-9);
    assert_eq!(
        (auc.paired.b_better, auc.paired.a_better, auc.paired.ties),
        (2, 0, 1)
    );
    let seeds: Vec<(u64, i64, i64)> = auc
        .paired
        .per_seed
        .iter()
        .map(|d| (d.seed, d.a_run, d.b_run))
        .collect();
    assert_eq!(seeds, [(1, 2, 5), (2, 3, 6), (3, 4, 7)]);
    assert_eq!(c.metrics[1].higher_is_better, Some(false));
    assert!(src.group_comparison(1, 99).is_err());
}

#[test]
fn the_dashboard_reads_a_database_from_before_groups() {
    use clickprompt::dashfeed::StoreSource;
    use clickprompt_tui::DataSource;

    let dir = tempdir();
    let db = db_in(&dir);
    old_database(&db, dir.path());
    sql(
        &db,
        &[
            "INSERT INTO experiments VALUES (1, 'movielens', 'm.cp', 'abc', 'x', '2026-01-01T00:00:00.000Z')",
            "INSERT INTO runs (id, experiment_id, name, status, started_at, ended_at, device, host, pid,
                crate_version, seed, plan_yaml)
             VALUES (1, 1, 'movielens', 'FINISHED', '2026-01-01T00:00:00.000Z', '2026-01-01T00:01:00.000Z',
                'cpu', 'h', 1, '0.0.1', 42, 'name: movielens')",
        ],
    );
    let mut src = StoreSource::open(&db).expect("open, read-only");
    let runs = src.runs().expect("runs still show");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].group_id, None);
    let err = src.groups().expect_err("no groups yet");
    assert!(err.contains("predates run groups"), "{err}");
    assert!(err.contains("runs list --db"), "{err}");
    // The dashboard only reads: the file is still at migration 2.
    assert_eq!(scalar_i64(&db, "SELECT COUNT(*) FROM _sqlx_migrations"), 2);
}

both_backends!(
    seeds_of_one_run_share_a_group_across_store_handles,
    concurrent_starts_of_one_group_create_it_once,
    list_groups_shows_mean_and_sd_over_seeds,
    compare_two_groups_pairs_by_seed,
    group_arguments_are_checked,
    group_compare_takes_the_best_stage_or_a_stage_by_name,
    validation_metrics_of_a_stage_compare_over_seeds,
    the_dashboard_feed_aggregates_groups_the_same_way,
);
