//! End-to-end scoring benchmark: `clickprompt predict` on a 1-million-row
//! CSV with a CTR-only DCNv2, parsing, encoding and writing included.
//!
//! `cargo bench --bench predict [-- ROWS]` (ROWS defaults to 1 000 000).
//! Trains a run on synthetic clicks (DCNv2: embedding 16, 3 cross layers,
//! 3×256 MLP — the CTR benchmark's model — over the synthetic source's 5
//! fields, one epoch on 20 000 rows) into a temporary database, writes
//! ROWS fresh synthetic rows as a CSV, then times the release binary
//! scoring them to a CSV file (3 runs; CPU time and peak RSS of each
//! process from `wait4`), the same on a tenth of the rows (memory must not
//! grow with the input), and the model's forward pass alone on pre-encoded
//! batches of 4096 and 1024 rows (what the pipeline adds on top of it).
//! Rows per CPU second are less at the mercy of other processes on a shared
//! machine than rows per second.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use clickprompt::data::input::{InputFormat, Next};
use clickprompt::data::vocab::RowEncoder;
use clickprompt::plan::{
    Backbone, CtrPlan, DatasetPlan, DeviceSpec, ExperimentPlan, FieldKind, FieldPlan, LabelRule,
    SourcePlan, SplitPlan, StageKind, StagePlan, SyntheticSource,
};
use clickprompt::predict::TrainedRun;
use clickprompt::session::Session;
use clickprompt::train::events::Collect;
use clickprompt::train::predict::Scorer;

fn source(rows: usize, seed: u64) -> SourcePlan {
    SourcePlan::Synthetic(SyntheticSource {
        users: 2000,
        items: 3000,
        rows,
        seed,
        themes: 8,
        semantic: 2.0,
        collaborative: 1.0,
        noise: 1.0,
    })
}

fn plan() -> ExperimentPlan {
    let mut data = DatasetPlan::new(
        "synth",
        source(20_000, 7),
        LabelRule::Binary {
            column: "label".into(),
        },
        SplitPlan::ByTime {
            column: "timestamp".into(),
            ratios: [0.8, 0.1, 0.1],
        },
    );
    data.fields = vec![
        FieldPlan::new("user_id", "User", FieldKind::Id),
        FieldPlan::new("user_taste", "Taste", FieldKind::Text),
        FieldPlan::new("item_id", "Item", FieldKind::Id),
        FieldPlan::new("title", "Title", FieldKind::Text),
        FieldPlan::new("genre", "Genre", FieldKind::Category),
    ];
    let mut plan = ExperimentPlan::new("predict_bench", data);
    plan.ctr = Some(CtrPlan {
        embed: 16,
        backbone: Backbone::DcnV2 {
            cross: 3,
            mlp: vec![256, 256, 256],
            dropout: 0.0,
        },
    });
    let mut stage = StagePlan::new("ctr_only", StageKind::CtrOnly { from: None }, false);
    stage.train.batch = 1024;
    plan.stages.push(stage);
    plan.device = DeviceSpec::Cpu;
    plan
}

/// Fresh rows (another seed than training's) as the synthetic source's CSV.
fn write_rows(path: &Path, rows: usize) -> Result<()> {
    let mut d = (*plan().dataset).clone();
    d.source = source(rows, 99);
    let (table, _) = clickprompt::data::sources::read(&d)?;
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let all: Vec<u32> = (0..rows as u32).collect();
    table.write_csv(&all, &mut out)?;
    out.flush()?;
    Ok(())
}

fn cpu_seconds(u: &libc::rusage) -> f64 {
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// CPU seconds (user + system) this process has used so far.
fn own_cpu() -> f64 {
    // SAFETY: getrusage fills a plain struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    cpu_seconds(&u)
}

/// Wall time, CPU time (user + system, all threads) and peak RSS (MiB) of
/// one child process.
fn timed(cmd: &mut Command) -> Result<(f64, f64, f64)> {
    let t = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = t.elapsed().as_secs_f64();
    ensure!(r == pid, "wait4 failed");
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child failed ({status})"
    );
    Ok((secs, cpu_seconds(&usage), usage.ru_maxrss as f64 / 1024.0))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The model's forward pass alone over `rows` pre-encoded rows in batches
/// of `batch`: (rows per second, rows per CPU second).
fn forward_only(trained: &TrainedRun, csv: &Path, rows: usize, batch: usize) -> Result<(f64, f64)> {
    let device = candle_core::Device::Cpu;
    let vocab = &trained.vocabularies;
    let (scorer, _) = Scorer::load(
        &trained.plan,
        &trained.stage,
        &vocab.meta(),
        None,
        &trained.checkpoint,
        &device,
    )?;
    let cols = vocab.columns();
    let input = std::io::BufReader::new(std::fs::File::open(csv)?);
    let mut reader = clickprompt::data::input::RowReader::open(
        input,
        "rows",
        &trained.plan.dataset.source,
        InputFormat::Csv,
        &cols,
    )?;
    let mut encoder = RowEncoder::new(vocab)?;
    let mut batches = Vec::new();
    let mut values = Vec::new();
    for _ in 0..rows {
        match reader.next(&mut values)? {
            Next::Row { .. } => encoder.push(&values).map_err(|e| anyhow::anyhow!("{e}"))?,
            other => anyhow::bail!("unexpected {other:?}"),
        }
        if encoder.rows() == batch {
            batches.push(encoder.take_batch(&device)?);
        }
    }
    scorer.logits(&batches[0])?; // warm-up
    let (t, cpu) = (Instant::now(), own_cpu());
    let mut n = 0;
    for b in &batches {
        n += scorer.logits(b)?.len();
    }
    let n = n as f64;
    Ok((n / t.elapsed().as_secs_f64(), n / (own_cpu() - cpu)))
}

fn main() -> Result<()> {
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir =
        std::env::temp_dir().join(format!("clickprompt-predict-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&dir, rows);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run(dir: &Path, rows: usize) -> Result<()> {
    println!("load average at start: {}", load_average());
    let db = dir.join("runs.db");
    let session = Session::open(&db)?
        .cache_dir(dir.join("cache"))
        .checkpoints(dir.join("checkpoints"));
    let t = Instant::now();
    let run = session.run_plan(&plan(), &Collect::default())?;
    println!(
        "trained run {} in {:.1}s: test AUC {:.4}",
        run.id,
        t.elapsed().as_secs_f64(),
        run.summary.stages[0].test_auc.unwrap_or(f64::NAN)
    );
    let trained = session.trained_run(run.id, None)?;

    let big = dir.join("rows.csv");
    let small = dir.join("rows-small.csv");
    let t = Instant::now();
    write_rows(&big, rows)?;
    write_rows(&small, rows / 10)?;
    println!(
        "wrote {rows} rows ({:.0} MB) in {:.1}s",
        std::fs::metadata(&big)?.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let bin = PathBuf::from(env!("CARGO_BIN_EXE_clickprompt"));
    let predict = |input: &Path| {
        let mut c = Command::new(&bin);
        c.args(["predict", "--run", &run.id.to_string()])
            .arg(input)
            .arg("-o")
            .arg(dir.join("scores.csv"))
            .arg("--db")
            .arg(&db)
            .stderr(std::process::Stdio::null());
        c
    };
    let (mut times, mut cpus, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let (s, c, m) = timed(&mut predict(&big))?;
        times.push(s);
        cpus.push(c);
        peaks.push(m);
    }
    let lines = std::fs::read_to_string(dir.join("scores.csv"))?
        .lines()
        .count();
    ensure!(lines == rows + 1, "{lines} output lines for {rows} rows");
    let (small_s, small_c, small_m) = timed(&mut predict(&small))?;

    let fwd4096 = forward_only(&trained, &small, (rows / 10).min(100_000), 4096)
        .context("forward pass, batch 4096")?;
    let fwd1024 = forward_only(&trained, &small, (rows / 10).min(100_000), 1024)
        .context("forward pass, batch 1024")?;

    let med = median(times.clone());
    let med_cpu = median(cpus.clone());
    let range = |v: &[f64]| {
        (
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(0.0, f64::max),
        )
    };
    let (t0, t1) = range(&times);
    let (m0, m1) = range(&peaks);
    println!();
    println!("| path | rows | wall s | rows/s | rows per CPU s | peak RSS |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| `clickprompt predict` CSV → CSV (median of 3; {t0:.2}–{t1:.2} s) | {rows} | {med:.2} | {:.0} | {:.0} | {m0:.0}–{m1:.0} MiB |",
        rows as f64 / med,
        rows as f64 / med_cpu,
    );
    println!(
        "| same, a tenth of the rows | {} | {small_s:.2} | {:.0} | {:.0} | {small_m:.0} MiB |",
        rows / 10,
        (rows / 10) as f64 / small_s,
        (rows / 10) as f64 / small_c
    );
    println!(
        "| model forward only, batch 4096 | – | – | {:.0} | {:.0} | – |",
        fwd4096.0, fwd4096.1
    );
    println!(
        "| model forward only, batch 1024 | – | – | {:.0} | {:.0} | – |",
        fwd1024.0, fwd1024.1
    );
    println!();
    println!("load average at end: {}", load_average());
    Ok(())
}
