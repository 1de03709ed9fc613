//! Data pipeline benchmark: ML-100K with the MiniLM tokenizer.
//!
//! `cargo bench --bench data` runs three child processes (so each reports
//! its own peak memory): `cold` (read → encode → render → tokenize → cache
//! write, cache ignored), `warm` (cache read), and `check` (the word-table
//! tokenizer against the library's batch encoder on every text).
//! Data: `$ML100K_DIR`, else `../shared/data/ml-100k` or `/work/shared/data/ml-100k`;
//! tokenizer: `$MINILM_DIR`, else `assets/plm/all-MiniLM-L6-v2`.

#[path = "../tests/data_common/mod.rs"]
mod data_common;

use std::path::PathBuf;
use std::time::Instant;

use clickprompt::data::{self, LoadOptions, LoadStats, TextTokenizer};

fn find(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    std::env::var_os(env)
        .map(PathBuf::from)
        .into_iter()
        .chain(candidates.iter().map(PathBuf::from))
        .find(|p| p.is_dir())
}

fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let Some(ml) = find(
        "ML100K_DIR",
        &["../shared/data/ml-100k", "/work/shared/data/ml-100k"],
    ) else {
        println!("skipped: ML-100K not found (set ML100K_DIR)");
        return Ok(());
    };
    let Some(tok_dir) = find("MINILM_DIR", &["assets/plm/all-MiniLM-L6-v2"]) else {
        println!(
            "skipped: MiniLM tokenizer not found (run scripts/fetch-plm.sh or set MINILM_DIR)"
        );
        return Ok(());
    };
    let plan = data_common::experiment(
        data_common::movielens_100k(&ml),
        Some(data_common::reference_template()),
        Some(64),
    );
    let mode = std::env::args()
        .nth(1)
        .filter(|a| ["cold", "warm", "check"].contains(&a.as_str()));
    let Some(mode) = mode else {
        // Parent: one child per mode, sharing one cache folder.
        let cache =
            std::env::temp_dir().join(format!("clickprompt-data-bench-{}", std::process::id()));
        for m in ["cold", "warm", "check"] {
            let st = std::process::Command::new(std::env::current_exe()?)
                .arg(m)
                .env("DATA_BENCH_CACHE", &cache)
                .status()?;
            anyhow::ensure!(st.success(), "{m} run failed");
        }
        let _ = std::fs::remove_dir_all(&cache);
        return Ok(());
    };
    let cache = std::env::var_os("DATA_BENCH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("clickprompt-data-bench-{}", std::process::id()))
        });
    let opts = |rebuild| LoadOptions {
        cache_dir: cache.clone(),
        rebuild,
        tokenizer_dir: Some(tok_dir.clone()),
    };
    match mode.as_str() {
        "cold" => {
            let mut times = Vec::new();
            let mut last: Option<LoadStats> = None;
            let mut rows = 0;
            for _ in 0..3 {
                let t = Instant::now();
                let l = data::load(&plan, &opts(true))?;
                times.push(t.elapsed().as_secs_f64());
                rows = l.dataset.train.rows + l.dataset.valid.rows + l.dataset.test.rows;
                last = Some(l.stats);
            }
            let m = median(times.clone());
            println!(
                "cold  (read→encode→render→tokenize→cache write): median {:.3} s of {:?}, {:.0} rows/s, peak RSS {:.0} MiB",
                m,
                times.iter().map(|t| (t * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
                rows as f64 / m,
                peak_mib()
            );
            if let Some(s) = last {
                let phases: Vec<String> = s
                    .timings
                    .iter()
                    .map(|(n, d)| format!("{n} {:.3}", d.as_secs_f64()))
                    .collect();
                println!("      phases of the last run (s): {}", phases.join(", "));
            }
        }
        "warm" => {
            let mut times = Vec::new();
            let mut rows = 0;
            for _ in 0..5 {
                let t = Instant::now();
                let l = data::load(&plan, &opts(false))?;
                anyhow::ensure!(l.cache.hit, "expected a cache hit");
                times.push(t.elapsed().as_secs_f64());
                rows = l.dataset.train.rows + l.dataset.valid.rows + l.dataset.test.rows;
            }
            let m = median(times.clone());
            let size = std::fs::read_dir(&cache)?
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>();
            println!(
                "warm  (cache read, {:.1} MiB file): median {:.3} s of {:?}, {:.0} rows/s, peak RSS {:.0} MiB",
                size as f64 / (1 << 20) as f64,
                m,
                times.iter().map(|t| (t * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
                rows as f64 / m,
                peak_mib()
            );
        }
        _ => {
            // Word-table tokenization against the library's own batch encoder.
            let tok = TextTokenizer::from_dir(&tok_dir, 64)?;
            let (table, _) = data::sources::read(&plan.dataset)?;
            let template =
                data::Template::new(plan.template.as_ref().unwrap(), &plan.dataset.fields)?;
            let rows: Vec<u32> = (0..table.rows as u32).collect();
            let texts = data::render::render_rows(&template, &table, &rows, "ml100k")?;
            let refs: Vec<&str> = (0..texts.len()).map(|k| texts.get(k)).collect();
            let t = Instant::now();
            let fast = tok.encode_batch(&refs)?;
            let tf = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let reference = tok.encode_batch_reference(&refs)?;
            let tr = t.elapsed().as_secs_f64();
            anyhow::ensure!(
                fast == reference,
                "word-table tokenization differs from the reference"
            );
            println!(
                "check tokenization of {} texts: word table {:.3} s, library batch encoder {:.3} s, identical ids",
                refs.len(),
                tf,
                tr
            );
        }
    }
    Ok(())
}
