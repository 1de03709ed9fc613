//! Fixture runs for the view and key tests, and a snapshot helper.
#![allow(dead_code)]

use std::path::PathBuf;

use clickprompt_tui::*;

pub struct Fixture(pub Vec<RunDetail>);

impl DataSource for Fixture {
    fn runs(&mut self) -> Result<Vec<RunSummary>, String> {
        Ok(self.0.iter().map(|d| d.summary.clone()).collect())
    }
    fn run_detail(&mut self, id: i64) -> Result<RunDetail, String> {
        self.0
            .iter()
            .find(|d| d.summary.id == id)
            .cloned()
            .ok_or_else(|| format!("no run #{id}"))
    }
}

pub fn summary(id: i64, name: &str, status: RunStatus) -> RunSummary {
    RunSummary {
        id,
        experiment: "scratch".into(),
        name: name.into(),
        sweep_point: None,
        status,
        device: "cpu".into(),
        started_at: format!("2026-11-29T18:{:02}:00Z", 10 + id),
        duration_s: Some(60.0 * id as f64 + 5.0),
        best_stage: None,
        test_auc: None,
        test_logloss: None,
        stages: vec![],
        group_id: None,
        group: None,
    }
}

fn stage(name: &str, kind: &str, epochs: usize, spe: usize, state: StageState) -> StageProgress {
    let done = state == StageState::Finished;
    StageProgress {
        name: name.into(),
        kind: kind.into(),
        epochs,
        steps_per_epoch: spe,
        epoch: if done { epochs } else { 0 },
        step: if done { epochs * spe } else { 0 },
        state,
        elapsed_s: if done { Some(42.0) } else { None },
        best_epoch: None,
    }
}

/// A decaying loss curve with a little deterministic wiggle.
fn loss_curve(steps: usize, start: f64, end: f64) -> Vec<(f64, f64)> {
    (1..=steps)
        .map(|s| {
            let t = s as f64 / steps as f64;
            let wiggle = ((s * 7919) % 13) as f64 / 13.0 - 0.5;
            (s as f64, start + (end - start) * t.sqrt() + 0.04 * wiggle)
        })
        .collect()
}

fn valid(stage: &str, epoch: usize, auc: f64, ll: f64) -> EpochEval {
    EpochEval {
        stage: stage.into(),
        epoch,
        split: Split::Valid,
        auc: Some(auc),
        logloss: Some(ll),
        extras: vec![],
    }
}

fn log(ts: &str, level: LogLevel, msg: &str) -> LogLine {
    LogLine {
        ts: ts.into(),
        level,
        message: msg.into(),
    }
}

/// A finished two-stage run (MLM pre-training, then CTR fine-tuning).
pub fn finished_run(id: i64, k: &str, aucs: [f64; 3], test_auc: f64) -> RunDetail {
    let mut s = summary(id, &format!("sweep[prompts={k}]"), RunStatus::Finished);
    s.sweep_point = Some(format!("prompts={k}"));
    s.test_auc = Some(test_auc);
    s.test_logloss = Some(0.9 - test_auc);
    s.best_stage = Some("finetune".into());
    s.stages = vec![StageFigures {
        stage: "finetune".into(),
        valid_auc: aucs.iter().copied().reduce(f64::max),
        test_auc: Some(test_auc),
        test_logloss: Some(0.9 - test_auc),
    }];
    let mut d = RunDetail::new(s);
    let mut pre = stage("pretrain", "mlm", 1, 20, StageState::Finished);
    pre.best_epoch = None;
    let mut ft = stage("finetune", "ctr", 3, 20, StageState::Finished);
    let best = aucs
        .iter()
        .enumerate()
        .fold(0, |b, (i, a)| if *a > aucs[b] { i } else { b });
    ft.best_epoch = Some(best + 1);
    d.stages = vec![pre, ft];
    d.series = vec![
        StageSeries {
            stage: "pretrain".into(),
            loss: loss_curve(20, 6.0, 3.5),
            lr: (1..=20).map(|s| (s as f64, 5e-5)).collect(),
            samples_per_s: (1..=20).map(|s| (s as f64, 300.0 + s as f64)).collect(),
        },
        StageSeries {
            stage: "finetune".into(),
            loss: loss_curve(60, 0.69, 0.45 + 0.01 * id as f64),
            lr: (1..=60)
                .map(|s| (s as f64, 1e-3 * (1.0 - s as f64 / 61.0)))
                .collect(),
            samples_per_s: (1..=60)
                .map(|s| (s as f64, 1000.0 + ((s * 37) % 50) as f64))
                .collect(),
        },
    ];
    d.evals = vec![
        EpochEval {
            stage: "pretrain".into(),
            epoch: 1,
            split: Split::Valid,
            auc: None,
            logloss: None,
            extras: vec![("mlm_acc".into(), 0.4125), ("mlm_loss".into(), 3.2)],
        },
        valid("finetune", 1, aucs[0], 0.55),
        valid("finetune", 2, aucs[1], 0.52),
        valid("finetune", 3, aucs[2], 0.51),
        EpochEval {
            stage: "finetune".into(),
            epoch: best + 1,
            split: Split::Test,
            auc: Some(test_auc),
            logloss: Some(0.9 - test_auc),
            extras: vec![],
        },
    ];
    d.params = vec![
        ("prompts".into(), k.into()),
        ("ctr".into(), "dcnv2".into()),
        ("lr".into(), "0.001".into()),
        ("seed".into(), "42".into()),
    ];
    d.logs = vec![
        log(
            "2026-11-29T18:20:01Z",
            LogLevel::Warn,
            "MLM head created, not loaded",
        ),
        log(
            "2026-11-29T18:21:30Z",
            LogLevel::Info,
            "stage finetune finished",
        ),
    ];
    d
}

pub fn failed_run(id: i64) -> RunDetail {
    let s = summary(id, "scratch", RunStatus::Failed);
    let mut d = RunDetail::new(s);
    let mut st = stage("finetune", "ctr", 2, 10, StageState::Stopped);
    st.epoch = 1;
    st.step = 4;
    d.stages = vec![st];
    d.series = vec![StageSeries {
        stage: "finetune".into(),
        loss: loss_curve(4, 0.7, 0.66),
        lr: (1..=4).map(|s| (s as f64, 1e-3)).collect(),
        samples_per_s: (1..=4).map(|s| (s as f64, 800.0)).collect(),
    }];
    d.error = Some("data file train.csv: line 17: expected 12 fields, found 9".into());
    d.logs = vec![log(
        "2026-11-29T18:25:00Z",
        LogLevel::Error,
        "run failed: data file train.csv: line 17: expected 12 fields, found 9",
    )];
    d
}

/// A run still training whose loss went NaN on some steps.
pub fn nan_running_run(id: i64) -> RunDetail {
    let mut s = summary(id, "nan-probe", RunStatus::Running);
    s.duration_s = Some(95.0);
    let mut d = RunDetail::new(s);
    let mut st = stage("finetune", "ctr", 4, 25, StageState::Running);
    st.epoch = 2;
    st.step = 40;
    st.elapsed_s = Some(80.0);
    let pending = stage("test", "ctr", 1, 1, StageState::Pending);
    d.stages = vec![st, pending];
    let mut loss = loss_curve(40, 0.69, 0.5);
    for i in [9usize, 10, 27] {
        loss[i].1 = f64::NAN;
    }
    d.series = vec![StageSeries {
        stage: "finetune".into(),
        loss,
        lr: (1..=40).map(|s| (s as f64, 1e-3)).collect(),
        samples_per_s: (1..=40)
            .map(|s| (s as f64, 900.0 + (s % 5) as f64 * 20.0))
            .collect(),
    }];
    d.evals = vec![valid("finetune", 1, 0.6812, 0.6011)];
    d.params = vec![("lr".into(), "0.5".into())];
    d.logs = vec![
        log(
            "2026-11-29T18:30:00Z",
            LogLevel::Info,
            "stage finetune started",
        ),
        log(
            "2026-11-29T18:30:40Z",
            LogLevel::Warn,
            "non-finite loss at step 10, batch skipped",
        ),
    ];
    d
}

pub const LONG_NAME: &str = "an-extremely-long-experiment-plan-name-that-goes-on-and-on-past-any-reasonable-column-width-sweep[prompts=20,ctr=dcnv2]";

pub fn long_name_run(id: i64) -> RunDetail {
    let mut d = finished_run(id, "20", [0.70, 0.71, 0.715], 0.7101);
    d.summary.name = LONG_NAME.into();
    d.summary.experiment = "long-experiment-name-for-the-table".into();
    d
}

/// A ClickPrompt run: PA-MLM, then joint and CTR-only fine-tuning, each
/// with its (valid AUC, test AUC); the best stage is chosen on valid AUC.
pub fn clickprompt_run(id: i64, joint: (f64, f64), ctr_only: (f64, f64)) -> RunDetail {
    let mut s = summary(id, "clickprompt_dcnv2", RunStatus::Finished);
    s.stages = vec![
        StageFigures {
            stage: "joint".into(),
            valid_auc: Some(joint.0),
            test_auc: Some(joint.1),
            test_logloss: Some(1.0 - joint.1),
        },
        StageFigures {
            stage: "ctr_only".into(),
            valid_auc: Some(ctr_only.0),
            test_auc: Some(ctr_only.1),
            test_logloss: Some(1.0 - ctr_only.1),
        },
    ];
    let best = StageFigures::best(&s.stages).cloned().unwrap_or_default();
    s.best_stage = Some(best.stage);
    s.test_auc = best.test_auc;
    s.test_logloss = best.test_logloss;
    let mut d = RunDetail::new(s);
    d.stages = vec![
        stage("pretrain", "pa_mlm", 1, 10, StageState::Finished),
        stage("joint", "joint", 2, 10, StageState::Finished),
        stage("ctr_only", "ctr_only", 2, 10, StageState::Finished),
    ];
    d
}

/// ClickPrompt runs where the joint stage wins on validation in two of three.
pub fn clickprompt_runs() -> Fixture {
    Fixture(vec![
        clickprompt_run(1, (0.781, 0.779), (0.775, 0.772)),
        clickprompt_run(2, (0.770, 0.768), (0.784, 0.781)),
        clickprompt_run(3, (0.790, 0.786), (0.790, 0.788)),
        failed_run(4),
    ])
}

/// Every kind of run at once.
pub fn mixed() -> Fixture {
    Fixture(vec![
        finished_run(1, "1", [0.70, 0.72, 0.71], 0.7150),
        finished_run(2, "5", [0.71, 0.73, 0.74], 0.7390),
        failed_run(3),
        long_name_run(4),
        nan_running_run(5),
    ])
}

/// Runs with groups: the `mixed` runs plus the groups and one comparison.
pub struct Grouped {
    pub runs: Fixture,
    pub groups: Vec<GroupSummary>,
    pub comparisons: Vec<GroupComparison>,
}

impl DataSource for Grouped {
    fn runs(&mut self) -> Result<Vec<RunSummary>, String> {
        self.runs.runs()
    }
    fn run_detail(&mut self, id: i64) -> Result<RunDetail, String> {
        self.runs.run_detail(id)
    }
    fn groups(&mut self) -> Result<Vec<GroupSummary>, String> {
        Ok(self.groups.clone())
    }
    fn group_comparison(&mut self, a: i64, b: i64) -> Result<GroupComparison, String> {
        self.comparisons
            .iter()
            .find(|c| (c.a.id, c.b.id) == (a, b))
            .cloned()
            .ok_or_else(|| format!("no comparison of g{a} and g{b}"))
    }
}

pub fn mean_sd(n: usize, mean: f64, sd: Option<f64>) -> MeanSd {
    MeanSd {
        n,
        mean: Some(mean),
        sd,
    }
}

pub fn group(id: i64, name: &str, runs: usize, seeds: &[u64], auc: MeanSd) -> GroupSummary {
    GroupSummary {
        id,
        name: name.into(),
        experiment: "movielens".into(),
        runs,
        finished: seeds.len(),
        seeds: seeds.to_vec(),
        test_auc: auc.clone(),
        test_logloss: mean_sd(auc.n, 0.55, auc.sd.map(|s| s / 2.0)),
        best_valid_auc: mean_sd(auc.n, auc.mean.unwrap_or(0.0) + 0.01, auc.sd),
    }
}

fn diff(seed: u64, a_run: i64, b_run: i64, a: f64, b: f64) -> SeedDiff {
    SeedDiff {
        seed,
        a_run,
        b_run,
        a,
        b,
        diff: b - a,
    }
}

/// Scratch (runs 6-8, AUC 0.70 0.72 0.71) against ClickPrompt (runs 9-11,
/// AUC 0.73 0.72 0.75): differences 0.03, 0, 0.04, mean 0.0233, SE 0.0120.
pub fn grouped() -> Grouped {
    let mut runs = mixed();
    let seeded = |id: i64, group: i64, name: &str, seed: u64, auc: f64| {
        let mut d = finished_run(id, "10", [0.70, 0.71, auc], auc);
        d.summary.sweep_point = None;
        d.summary.name = format!("{name}[seed={seed}]");
        d.summary.group_id = Some(group);
        d.summary.group = Some(name.into());
        d
    };
    for (i, (seed, a, b)) in [(1, 0.70, 0.73), (2, 0.72, 0.72), (3, 0.71, 0.75)]
        .into_iter()
        .enumerate()
    {
        runs.0.push(seeded(6 + i as i64, 6, "scratch", seed, a));
        runs.0.push(seeded(9 + i as i64, 7, "clickprompt", seed, b));
    }
    let scratch = group(6, "scratch", 3, &[1, 2, 3], mean_sd(3, 0.71, Some(0.01)));
    let cp = group(
        7,
        "clickprompt",
        3,
        &[1, 2, 3],
        mean_sd(3, 0.7333, Some(0.0153)),
    );
    let lonely = group(2, "sweep[prompts=5]", 2, &[42], mean_sd(1, 0.739, None));
    let auc = MetricComparison {
        label: "test AUC".into(),
        higher_is_better: Some(true),
        a: scratch.test_auc.clone(),
        b: cp.test_auc.clone(),
        paired: PairedDiff {
            n: 3,
            mean: Some(0.07 / 3.0),
            se: Some(0.012_018_504_251_546_63),
            b_better: 2,
            a_better: 0,
            ties: 1,
            per_seed: vec![
                diff(1, 6, 9, 0.70, 0.73),
                diff(2, 7, 10, 0.72, 0.72),
                diff(3, 8, 11, 0.71, 0.75),
            ],
        },
    };
    let logloss = MetricComparison {
        label: "test LogLoss".into(),
        higher_is_better: Some(false),
        a: mean_sd(3, 0.55, Some(0.005)),
        b: mean_sd(3, 0.5483, Some(0.0104)),
        paired: PairedDiff {
            n: 3,
            mean: Some(-0.005 / 3.0),
            se: Some(0.0044),
            b_better: 1,
            a_better: 1,
            ties: 1,
            per_seed: vec![
                diff(1, 6, 9, 0.55, 0.54),
                diff(2, 7, 10, 0.545, 0.545),
                diff(3, 8, 11, 0.555, 0.56),
            ],
        },
    };
    Grouped {
        runs,
        groups: vec![lonely, scratch.clone(), cp.clone()],
        comparisons: vec![GroupComparison {
            a: scratch,
            b: cp,
            metrics: vec![auc, logloss],
        }],
    }
}

/// Compares `text` with `tests/snapshots/<name>.txt`. Writes the file when it
/// is missing or UPDATE_SNAPSHOTS is set (then review and commit it).
pub fn snapshot(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() || !path.exists() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        eprintln!("wrote snapshot {}", path.display());
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap();
    if want != text {
        panic!(
            "snapshot {name} differs (UPDATE_SNAPSHOTS=1 to accept)\n--- want\n{want}\n--- got\n{text}"
        );
    }
}
