//! Labels, splits, field encoding, templates and the cache, on small CSV fixtures.

mod data_common;

use std::collections::HashMap;
use std::path::Path;

use clickprompt::data::{
    self, Column, ColumnLayout, Dataset, LoadOptions, LoadStats, OOV_ID, PAD_ID,
};
use clickprompt::error::exit_code;
use clickprompt::plan::*;
use data_common::*;

fn csv(path: &Path) -> SourcePlan {
    SourcePlan::Csv(CsvSource {
        path: path.into(),
        sep: ",".into(),
        header: true,
        columns: Vec::new(),
        latin1: false,
    })
}

fn dataset(path: &Path, fields: Vec<FieldPlan>, split: SplitPlan, min_count: u32) -> DatasetPlan {
    DatasetPlan {
        name: "fixture".into(),
        source: csv(path),
        label: LabelRule::Threshold {
            column: "rating".into(),
            op: CmpOp::Gt,
            value: 3.0,
        },
        split,
        min_count,
        skip_bad_rows: false,
        fields,
    }
}

fn by_time(ratios: [f64; 3]) -> SplitPlan {
    SplitPlan::ByTime {
        column: "ts".into(),
        ratios,
    }
}

fn build(plan: &ExperimentPlan) -> anyhow::Result<Dataset> {
    Ok(data::build(plan, None, &mut LoadStats::default())?.0)
}

fn single(c: &Column) -> &[u32] {
    match c {
        Column::Single(v) => v,
        other => panic!("not single: {other:?}"),
    }
}

fn numbers(c: &Column) -> &[f32] {
    match c {
        Column::Number(v) => v,
        other => panic!("not number: {other:?}"),
    }
}

fn assert_invalid<T>(r: anyhow::Result<T>, fragments: &[&str]) {
    let e = match r {
        Ok(_) => panic!("expected an error containing {fragments:?}"),
        Err(e) => e,
    };
    let msg = format!("{e:#}");
    assert_eq!(exit_code(&e), 2, "not an invalid-input error: {msg}");
    for f in fragments {
        assert!(msg.contains(f), "message {msg:?} lacks {f:?}");
    }
}

/// Ten rows, file order scrambled against time; `item` "late" only in the two latest rows.
const TEN: &str = "user,item,rating,ts,age,genres,clicked
u1,a,5,50,17,Action|Comedy,1
u2,b,1,10,18,Comedy,0
u1,a,4,30,30,,1
u3,c,2,20,NULL,Drama|Action|Comedy,0
u2,a,3,40,25,Action,0
u1,b,5,70,40,Action,1
u3,d,4,60,22,Drama,1
u2,late,5,100,50,Drama,1
u1,a,2,80,19,Comedy,0
u3,late,1,90,33,Action,0
";

fn ten(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("ten.csv");
    std::fs::write(&p, TEN).unwrap();
    p
}

#[test]
fn labels_follow_the_rule() {
    let d = tempfile::tempdir().unwrap();
    let p = ten(d.path());
    let mut ds = dataset(&p, vec![], by_time([8.0, 1.0, 1.0]), 1);
    let got = build(&experiment(ds.clone(), None, None)).unwrap();
    // Time order: ts 10..100 → ratings 1,2,4,3,5,4,5,2,1,5.
    assert_eq!(got.train.labels, [0., 0., 1., 0., 1., 1., 1., 0.]);
    assert_eq!(got.valid.labels, [0.]);
    assert_eq!(got.test.labels, [1.]);
    ds.label = LabelRule::Threshold {
        column: "rating".into(),
        op: CmpOp::Ge,
        value: 5.0,
    };
    let got = build(&experiment(ds.clone(), None, None)).unwrap();
    assert_eq!(got.train.labels, [0., 0., 0., 0., 1., 0., 1., 0.]);
    ds.label = LabelRule::Binary {
        column: "clicked".into(),
    };
    let got = build(&experiment(ds.clone(), None, None)).unwrap();
    assert_eq!(got.train.labels, [0., 0., 1., 0., 1., 1., 1., 0.]);
    // A non-0/1 value and an unparsable rating name the line.
    std::fs::write(
        &p,
        TEN.replace("u3,d,4,60,22,Drama,1", "u3,d,4,60,22,Drama,yes"),
    )
    .unwrap();
    assert_invalid(
        build(&experiment(ds.clone(), None, None)),
        &["ten.csv:8", "\"yes\"", "0 or 1"],
    );
    ds.label = LabelRule::Threshold {
        column: "rating".into(),
        op: CmpOp::Gt,
        value: 3.0,
    };
    std::fs::write(&p, TEN.replace("u2,b,1,10", "u2,b,one,10")).unwrap();
    assert_invalid(
        build(&experiment(ds.clone(), None, None)),
        &["ten.csv:3", "\"one\"", "not a number"],
    );
    ds.label = LabelRule::Binary {
        column: "nope".into(),
    };
    assert_invalid(
        build(&experiment(ds, None, None)),
        &["reads column 'nope'", "user, item, rating"],
    );
}

#[test]
fn by_time_split_sorts_and_cuts_by_ratio() {
    let d = tempfile::tempdir().unwrap();
    let p = ten(d.path());
    let ts = field("ts", "Time", FieldKind::Number);
    let got = build(&experiment(
        dataset(&p, vec![ts], by_time([0.6, 0.2, 0.2]), 1),
        None,
        None,
    ))
    .unwrap();
    assert_eq!((got.train.rows, got.valid.rows, got.test.rows), (6, 2, 2));
    let all: Vec<f32> = [&got.train, &got.valid, &got.test]
        .iter()
        .flat_map(|s| numbers(&s.columns[0]).to_vec())
        .collect();
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "not in time order: {all:?}"
    );
    // Standardised with the training mean (35) and population std of 10..60.
    let std =
        (((10f32 - 35.).powi(2) * 2. + (20f32 - 35.).powi(2) * 2. + (30f32 - 35.).powi(2) * 2.)
            / 6.)
            .sqrt();
    assert!((all[0] - (10. - 35.) / std).abs() < 1e-5);
    assert!((all[9] - (100. - 35.) / std).abs() < 1e-5);
}

#[test]
fn random_split_is_seeded_and_complete() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("h.csv");
    let mut s = String::from("row,rating,ts\n");
    for i in 0..100 {
        s.push_str(&format!("{i},{},{i}\n", i % 5 + 1));
    }
    std::fs::write(&p, s).unwrap();
    let rows = |seed| {
        let ds = dataset(
            &p,
            vec![field("row", "Row", FieldKind::Number)],
            SplitPlan::Random {
                seed,
                ratios: [8.0, 1.0, 1.0],
            },
            1,
        );
        let got = build(&experiment(ds, None, None)).unwrap();
        [&got.train, &got.valid, &got.test].map(|s| numbers(&s.columns[0]).to_vec())
    };
    let a = rows(7);
    assert_eq!(a.clone().map(|v| v.len()), [80, 10, 10]);
    assert_eq!(a, rows(7));
    assert_ne!(a, rows(8));
    let mut all: Vec<f32> = a.concat();
    all.sort_by(f32::total_cmp);
    all.dedup();
    assert_eq!(all.len(), 100);
    // Shuffled, not file order.
    assert!(a[0].windows(2).any(|w| w[0] > w[1]));
}

#[test]
fn vocabularies_come_from_training_rows_only() {
    let d = tempfile::tempdir().unwrap();
    let p = ten(d.path());
    let item = field("item", "Item", FieldKind::Id);
    let got = build(&experiment(
        dataset(&p, vec![item.clone()], by_time([8.0, 1.0, 1.0]), 1),
        None,
        None,
    ))
    .unwrap();
    let meta = &got.meta.fields[0];
    // Train (ts 10..80): b, c, a, a, a, d, b, a → a:4, b:2, c:1, d:1; "late" only after.
    assert_eq!(meta.values, ["<pad>", "<oov>", "a", "b", "c", "d"]);
    assert_eq!(meta.vocab_size, 6);
    assert_eq!(single(&got.train.columns[0]), [3, 4, 2, 2, 2, 5, 3, 2]);
    assert_eq!(single(&got.valid.columns[0]), [OOV_ID]);
    assert_eq!(single(&got.test.columns[0]), [OOV_ID]);
    // min_count 2 folds c and d into OOV.
    let got = build(&experiment(
        dataset(&p, vec![item], by_time([8.0, 1.0, 1.0]), 2),
        None,
        None,
    ))
    .unwrap();
    assert_eq!(got.meta.fields[0].values, ["<pad>", "<oov>", "a", "b"]);
    assert_eq!(
        single(&got.train.columns[0]),
        [3, OOV_ID, 2, 2, 2, OOV_ID, 3, 2]
    );
}

#[test]
fn multi_bucket_number_and_value_maps() {
    let d = tempfile::tempdir().unwrap();
    let p = ten(d.path());
    let mut genres = field("genres", "Genres", FieldKind::Multi { sep: "|".into() });
    genres.map = vec![("Comedy".into(), "funny".into())];
    let age = field(
        "age",
        "Age",
        FieldKind::Bucket {
            edges: vec![18.0, 25.0],
        },
    );
    let mut user = field("user", "User", FieldKind::Category);
    user.map = vec![("u1".into(), "same".into()), ("u2".into(), "same".into())];
    let got = build(&experiment(
        dataset(&p, vec![genres, age, user], by_time([8.0, 1.0, 1.0]), 1),
        None,
        None,
    ))
    .unwrap();
    let g = &got.meta.fields[0];
    assert_eq!(g.layout, ColumnLayout::Multi { width: 3 });
    // Train genres: Comedy | Drama,Action,Comedy | (empty) | Action | Action,Comedy | Drama | Action | Comedy.
    assert_eq!(g.values, ["<pad>", "<oov>", "Action", "funny", "Drama"]);
    let Column::Multi { width, ids } = &got.train.columns[0] else {
        panic!()
    };
    assert_eq!(*width, 3);
    assert_eq!(
        &ids[..9],
        [3, PAD_ID, PAD_ID, 4, 2, 3, OOV_ID, PAD_ID, PAD_ID]
    );
    // Buckets: <18, [18,25), >=25; NULL → OOV. Train ages in time order: 18, NULL, 30, 25, 17, 22, 40, 19.
    let a = &got.meta.fields[1];
    assert_eq!(a.values, ["<pad>", "<oov>", "<18", "[18,25)", ">=25"]);
    assert_eq!(single(&got.train.columns[1]), [3, OOV_ID, 4, 4, 2, 3, 4, 3]);
    // The map merges u1 and u2 into one value.
    assert_eq!(got.meta.fields[2].values, ["<pad>", "<oov>", "same", "u3"]);
    std::fs::write(&p, TEN.replace("u3,d,4,60,22", "u3,d,4,60,2x")).unwrap();
    let age = field("age", "Age", FieldKind::Bucket { edges: vec![18.0] });
    assert_invalid(
        build(&experiment(
            dataset(&p, vec![age], by_time([8.0, 1.0, 1.0]), 1),
            None,
            None,
        )),
        &["ten.csv:8", "column 'age'", "\"2x\"", "field 'age'"],
    );
}

#[test]
fn templates_render_display_names_and_mapped_values() {
    let mut gender = field("gender", "Gender", FieldKind::Category);
    gender.map = vec![("M".into(), "male".into())];
    let genres = field("genres", "Genres", FieldKind::Multi { sep: "|".into() });
    let fields = vec![field("user_id", "User ID", FieldKind::Id), gender, genres];
    let row: HashMap<&str, &str> = [
        ("user_id", "196"),
        ("gender", "M"),
        ("genres", "Action|Comedy"),
    ]
    .into();
    let each = each_template(&["user_id", "gender", "genres"]);
    assert_eq!(
        data::render(&each, &fields, &row).unwrap(),
        "User ID is 196. Gender is male. Genres is Action, Comedy."
    );
    let free = TemplatePlan {
        name: "free".into(),
        form: TemplateForm::Free {
            text: "A {gender} viewer {{#{user_id}}} likes {genres}; again {gender}.".into(),
        },
        fields: vec!["gender".into(), "user_id".into(), "genres".into()],
    };
    assert_eq!(
        data::render(&free, &fields, &row).unwrap(),
        "A male viewer {#196} likes Action, Comedy; again male."
    );
    let bad = TemplatePlan {
        name: "bad".into(),
        form: TemplateForm::Free {
            text: "{job}".into(),
        },
        fields: vec!["job".into()],
    };
    assert_invalid(
        data::render(&bad, &fields, &row),
        &["template 'bad'", "field 'job'"],
    );
}

#[test]
fn cache_hits_misses_and_rebuilds() {
    let d = tempfile::tempdir().unwrap();
    let p = ten(d.path());
    let cache_dir = d.path().join("cache");
    let mut plan = experiment(
        dataset(
            &p,
            vec![field("item", "Item", FieldKind::Id)],
            by_time([8.0, 1.0, 1.0]),
            1,
        ),
        None,
        None,
    );
    let opts = |rebuild| LoadOptions {
        cache_dir: cache_dir.clone(),
        rebuild,
        tokenizer_dir: None,
    };
    let first = data::load(&plan, &opts(false)).unwrap();
    assert!(!first.cache.hit);
    assert!(first.cache.path.is_file());
    let second = data::load(&plan, &opts(false)).unwrap();
    assert!(second.cache.hit);
    assert_eq!(second.cache.path, first.cache.path);
    assert_eq!(second.dataset, first.dataset);
    assert!(!data::load(&plan, &opts(true)).unwrap().cache.hit);
    assert!(data::load(&plan, &opts(false)).unwrap().cache.hit);
    // The declaration is part of the key.
    std::sync::Arc::make_mut(&mut plan.dataset).min_count = 2;
    let changed = data::load(&plan, &opts(false)).unwrap();
    assert!(!changed.cache.hit);
    assert_ne!(changed.cache.key, first.cache.key);
    // So is the source file: new content (size changes) is rebuilt.
    std::fs::write(&p, TEN.replace("u1,a,5,50", "u1,a,5,55")).unwrap();
    std::fs::write(&p, format!("{TEN}u9,z,5,200,20,Drama,1\n")).unwrap();
    let edited = data::load(&plan, &opts(false)).unwrap();
    assert!(!edited.cache.hit);
    assert_eq!(
        edited.dataset.train.rows + edited.dataset.valid.rows + edited.dataset.test.rows,
        11
    );
    // A damaged cache file is rebuilt, not trusted.
    std::fs::write(&edited.cache.path, b"garbage").unwrap();
    let repaired = data::load(&plan, &opts(false)).unwrap();
    assert!(!repaired.cache.hit);
    assert_eq!(repaired.dataset, edited.dataset);
    assert!(data::load(&plan, &opts(false)).unwrap().cache.hit);
}

#[test]
fn plm_without_tokenizer_or_template_is_reported() {
    let d = tempfile::tempdir().unwrap();
    let p = ten(d.path());
    let ds = dataset(
        &p,
        vec![field("item", "Item", FieldKind::Id)],
        by_time([8.0, 1.0, 1.0]),
        1,
    );
    let opts = LoadOptions {
        cache_dir: d.path().join("c"),
        rebuild: false,
        tokenizer_dir: None,
    };
    assert_invalid(
        data::load(&experiment(ds.clone(), None, Some(32)), &opts),
        &["no template"],
    );
    assert_invalid(
        data::load(
            &experiment(ds, Some(each_template(&["item"])), Some(32)),
            &opts,
        ),
        &["no local model folder"],
    );
}
