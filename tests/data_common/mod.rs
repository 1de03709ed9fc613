//! Plan builders shared by the data tests (and mirrored by the data benchmark).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use clickprompt::plan::*;

pub fn field(name: &str, display: &str, kind: FieldKind) -> FieldPlan {
    FieldPlan {
        name: name.into(),
        column: name.into(),
        display: display.into(),
        kind,
        map: Vec::new(),
        ctr: true,
        text: true,
    }
}

pub fn experiment(
    dataset: DatasetPlan,
    template: Option<TemplatePlan>,
    max_len: Option<usize>,
) -> ExperimentPlan {
    ExperimentPlan {
        name: "t".into(),
        experiment: "t".into(),
        sweep: None,
        group: String::new(),
        dataset: dataset.into(),
        template: template.map(Into::into),
        plm: max_len.map(|max_len| PlmPlan {
            name: "plm".into(),
            family: PlmFamily::Bert,
            location: PlmLocation::Local(PathBuf::from("unused")),
            max_len,
            pool: Pooling::Mean,
            layers: None,
        }),
        ctr: None,
        prompts: PromptPlan {
            count: 10,
            mode: PromptMode::Deep,
        },
        fusion: FusionPlan::None,
        stages: Vec::new(),
        device: DeviceSpec::Cpu,
        seed: 1,
        metrics: vec![MetricKind::Auc, MetricKind::Logloss],
    }
}

pub fn each_template(fields: &[&str]) -> TemplatePlan {
    TemplatePlan {
        name: "hard".into(),
        form: TemplateForm::Each {
            pattern: "{name} is {value}.".into(),
            join: " ".into(),
        },
        fields: fields.iter().map(|s| s.to_string()).collect(),
    }
}

/// The reference MovieLens setup: rating > 3, by time 8:1:1, the paper's fields.
pub fn movielens_100k(dir: &Path) -> DatasetPlan {
    let mut gender = field("gender", "Gender", FieldKind::Category);
    gender.map = vec![("M".into(), "male".into()), ("F".into(), "female".into())];
    let mut genres = field("genres", "Genres", FieldKind::Multi { sep: "|".into() });
    genres.text = false;
    DatasetPlan {
        name: "ml100k".into(),
        source: SourcePlan::MovieLens100k {
            dir: dir.to_path_buf(),
        },
        label: LabelRule::Threshold {
            column: "rating".into(),
            op: CmpOp::Gt,
            value: 3.0,
        },
        split: SplitPlan::ByTime {
            column: "timestamp".into(),
            ratios: [8.0, 1.0, 1.0],
        },
        min_count: 1,
        skip_bad_rows: false,
        fields: vec![
            field("user_id", "User ID", FieldKind::Id),
            gender,
            field(
                "age",
                "Age",
                FieldKind::Bucket {
                    edges: vec![18.0, 25.0, 35.0, 45.0, 50.0, 56.0],
                },
            ),
            field("occupation", "Job", FieldKind::Category),
            field("zip", "Zipcode", FieldKind::Category),
            field("item_id", "Movie ID", FieldKind::Id),
            field("title", "Title", FieldKind::Text),
            field("genre", "Film genre", FieldKind::Category),
            genres,
        ],
    }
}

pub fn reference_template() -> TemplatePlan {
    each_template(&[
        "user_id",
        "gender",
        "age",
        "occupation",
        "zip",
        "item_id",
        "title",
        "genre",
    ])
}

/// The MiniLM folder written by `scripts/fetch-plm.sh`, when present.
pub fn minilm_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plm/all-MiniLM-L6-v2");
    d.join("tokenizer.json").is_file().then_some(d)
}

/// A tiny BERT vocabulary written into `dir/vocab.txt`.
pub fn tiny_vocab(dir: &Path, words: &[&str]) -> PathBuf {
    let mut v: Vec<String> = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "(", ")",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(words.iter().map(|s| s.to_string()));
    for d in 0..10 {
        v.push(d.to_string());
        v.push(format!("##{d}"));
    }
    for c in 'a'..='z' {
        v.push(c.to_string());
        v.push(format!("##{c}"));
    }
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("vocab.txt");
    std::fs::write(&p, v.join("\n") + "\n").unwrap();
    p
}
