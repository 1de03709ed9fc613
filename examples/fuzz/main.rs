//! Fuzz driver for the inputs users write, on stable Rust:
//!
//! ```text
//! cargo run --release --example fuzz -- --target checker|where|data --inputs N --seed S [--out DIR]
//! cargo run --release --example fuzz -- --target checker|where --replay FILE...
//! ```
//!
//! `--replay` checks saved inputs (a finding, or any file) and prints each
//! one's best CPU time of five and what the check said.
//!
//! * `checker`: random derivations of the experiment language and mutations
//!   of `experiments/*.cp`, through `plan::load_bytes` (what `clickprompt
//!   check` does after reading the file; no data or network is touched).
//! * `where`: `runs list --where` expressions through `store::where_sql`.
//! * `data`: damaged MovieLens / Book-Crossing / CSV files through
//!   `data::sources::read`.
//!
//! Every input runs under `catch_unwind` and is timed in thread CPU time.
//! Panics, inputs slower than 50 ms (twice in a row) and errors that do not
//! point into the input ("wrong": no `line:col` inside the file, no file
//! name and line for data) are saved under `--out` (default `fuzz-out/`).
//! The last line is the summary. Exit status 1 when anything was found.

mod gen_cp;
mod gen_data;
mod gen_where;
mod mutate;
mod rng;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rng::Rng;

const SLOW_MS: f64 = 50.0;
/// Saved inputs per kind of finding; the counts go on regardless.
const SAVE_MAX: usize = 200;

struct Args {
    target: String,
    inputs: u64,
    seed: u64,
    out: PathBuf,
    replay: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        target: String::new(),
        inputs: 100_000,
        seed: 1,
        out: PathBuf::from("fuzz-out"),
        replay: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--target" => a.target = val()?,
            "--inputs" => {
                a.inputs = val()?
                    .replace('_', "")
                    .parse()
                    .map_err(|e| format!("--inputs: {e}"))?
            }
            "--seed" => a.seed = val()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--out" => a.out = PathBuf::from(val()?),
            "--replay" => a.replay.extend(it.by_ref().map(PathBuf::from)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !["checker", "where", "data"].contains(&a.target.as_str()) {
        return Err("--target must be checker, where or data".into());
    }
    if !a.replay.is_empty() && a.target == "data" {
        return Err("--replay takes checker or where inputs".into());
    }
    Ok(a)
}

/// CPU time of this thread in seconds: what the input cost, whatever else
/// the (shared) machine is doing.
fn cpu_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// What running one input gave.
enum Outcome {
    Ok,
    /// An error that does not say where in the input it is.
    Wrong(String),
}

/// One generated input: its bytes (as saved) and a label of how it was made.
struct Input {
    bytes: Vec<u8>,
    kind: &'static str,
    data: Option<gen_data::DataCase>,
}

#[derive(Default)]
struct Stats {
    inputs: u64,
    panics: u64,
    wrong: u64,
    slow: u64,
    total_cpu: f64,
    slowest: f64,
    slowest_kind: String,
    saved: std::collections::HashMap<&'static str, usize>,
}

struct Fuzzer {
    args: Args,
    rng: Rng,
    corpus: Vec<Vec<u8>>,
    exp_names: Vec<String>,
    scratch: PathBuf,
    stats: Stats,
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fuzz: {e}\nusage: fuzz --target checker|where|data --inputs N --seed S [--out DIR]");
            std::process::exit(2);
        }
    };
    // Panics are counted and saved, not printed 10 million times.
    std::panic::set_hook(Box::new(|_| {}));
    // The CLI checks on the main thread (8 MiB stack); fuzz with the same.
    let worker = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || run(args))
        .expect("spawning the fuzz thread");
    let found = worker.join().unwrap_or(true);
    std::process::exit(i32::from(found));
}

fn load_corpus() -> (Vec<Vec<u8>>, Vec<String>) {
    let mut corpus = Vec::new();
    let mut names = Vec::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.sort();
    for p in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cp"))
    {
        if let Ok(b) = std::fs::read(p) {
            let text = String::from_utf8_lossy(&b);
            let mut words = text.split_whitespace();
            while let Some(w) = words.next() {
                if w == "experiment" || w == "sweep" {
                    if let Some(n) = words.next() {
                        names.push(n.to_string());
                    }
                }
            }
            corpus.push(b);
        }
    }
    (corpus, names)
}

fn run(args: Args) -> bool {
    let (corpus, exp_names) = load_corpus();
    // Data inputs are files: in memory (/dev/shm) where there is one.
    let tmp = Some(PathBuf::from("/dev/shm"))
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let scratch = tmp.join(format!("clickprompt-fuzz-{}", std::process::id()));
    if args.target == "data" {
        if let Err(e) = std::fs::create_dir_all(&scratch) {
            eprintln!("fuzz: cannot create {}: {e}", scratch.display());
            return true;
        }
    }
    let _ = std::fs::create_dir_all(&args.out);
    let mut f = Fuzzer {
        rng: Rng::new(args.seed),
        args,
        corpus,
        exp_names,
        scratch,
        stats: Stats::default(),
    };
    if !f.args.replay.is_empty() {
        return f.replay();
    }
    let wall = Instant::now();
    let report_every = (f.args.inputs / 50).max(1);
    for i in 0..f.args.inputs {
        let input = f.generate();
        f.exercise(input);
        if (i + 1) % report_every == 0 {
            eprintln!(
                "{} after {:.0} s",
                f.summary(),
                wall.elapsed().as_secs_f64()
            );
        }
    }
    if f.args.target == "data" {
        let _ = std::fs::remove_dir_all(&f.scratch);
    }
    println!("{} wall_s={:.1}", f.summary(), wall.elapsed().as_secs_f64());
    f.stats.panics + f.stats.slow + f.stats.wrong > 0
}

impl Fuzzer {
    /// Times each `--replay` file; true when one panics, is wrong or slow.
    fn replay(&self) -> bool {
        let mut found = false;
        for path in &self.args.replay {
            let bytes = match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    found = true;
                    continue;
                }
            };
            let input = Input {
                bytes,
                kind: "replay",
                data: None,
            };
            let mut best = f64::INFINITY;
            let mut said = String::new();
            for _ in 0..5 {
                let t0 = cpu_now();
                let out = catch_unwind(AssertUnwindSafe(|| self.check(&input)));
                best = best.min(cpu_now() - t0);
                said = match out {
                    Ok(Outcome::Ok) => "ok".into(),
                    Ok(Outcome::Wrong(m)) => format!("WRONG: {}", first_line(&m)),
                    Err(_) => "PANIC".into(),
                };
            }
            found |= said != "ok" || best * 1e3 > SLOW_MS;
            println!(
                "{:>9.2} ms  {:>8} B  {}  {said}",
                best * 1e3,
                input.bytes.len(),
                path.display()
            );
        }
        found
    }

    fn summary(&self) -> String {
        let s = &self.stats;
        format!(
            "SUMMARY target={} seed={} inputs={} panics={} wrong={} over_50ms={} slowest_ms={:.2} slowest_kind={} mean_us={:.1}",
            self.args.target,
            self.args.seed,
            s.inputs,
            s.panics,
            s.wrong,
            s.slow,
            s.slowest * 1e3,
            if s.slowest_kind.is_empty() { "-" } else { &s.slowest_kind },
            if s.inputs > 0 { s.total_cpu / s.inputs as f64 * 1e6 } else { 0.0 }
        )
    }

    fn generate(&mut self) -> Input {
        let r = &mut self.rng;
        match self.args.target.as_str() {
            "checker" => {
                let (kind, bytes) = match r.below(8) {
                    0 | 1 => ("generated", gen_cp::file(r).into_bytes()),
                    2 => {
                        let g = gen_cp::file(r).into_bytes();
                        (
                            "generated+mutated",
                            mutate::mutate(r, &g, &self.corpus, gen_cp::WORDS),
                        )
                    }
                    3 => {
                        // An example file with generated declarations after it,
                        // so sweeps and `extends` reach its real experiments.
                        let mut b = r.pick(&self.corpus).clone();
                        let names: Vec<String> = self.exp_names.clone();
                        for _ in 0..1 + r.below(3) {
                            b.extend(b"\n");
                            let decl = gen_cp::file(r);
                            let decl = match names.is_empty() {
                                true => decl,
                                false => {
                                    decl.replace(" over ", &format!(" over {} #", r.pick(&names)))
                                }
                            };
                            b.extend(decl.into_bytes());
                        }
                        ("example+generated", b)
                    }
                    _ => {
                        let base = r.pick(&self.corpus).clone();
                        (
                            "example mutated",
                            mutate::mutate(r, &base, &self.corpus, gen_cp::WORDS),
                        )
                    }
                };
                Input {
                    bytes,
                    kind,
                    data: None,
                }
            }
            "where" => {
                let e = gen_where::expr(r, 0).into_bytes();
                let (kind, bytes) = if r.one_in(3) {
                    let others = vec![gen_where::expr(r, 0).into_bytes()];
                    (
                        "where mutated",
                        mutate::mutate(r, &e, &others, gen_where::FIELDS),
                    )
                } else {
                    ("where generated", e)
                };
                Input {
                    bytes,
                    kind,
                    data: None,
                }
            }
            _ => {
                let c = gen_data::case(r);
                Input {
                    bytes: Vec::new(),
                    kind: c.kind,
                    data: Some(c),
                }
            }
        }
    }

    /// Runs one input: what the user's command would do with it.
    fn check(&self, input: &Input) -> Outcome {
        match self.args.target.as_str() {
            "checker" => match clickprompt::plan::load_bytes(&input.bytes, "fuzz.cp") {
                Ok(_) => Outcome::Ok,
                Err(e) => check_cp_error(&e, &input.bytes),
            },
            "where" => {
                // Command-line arguments reach `--where` as UTF-8 (clap refuses others).
                let text = String::from_utf8_lossy(&input.bytes);
                match clickprompt::store::where_sql(&text) {
                    Ok(_) => Outcome::Ok,
                    Err(e) => check_where_error(&e, &text),
                }
            }
            _ => {
                let Some(case) = &input.data else {
                    return Outcome::Ok;
                };
                let plan = clickprompt::plan::DatasetPlan::new(
                    "fuzz",
                    case.source(&self.scratch),
                    clickprompt::plan::LabelRule::Threshold {
                        column: "rating".into(),
                        op: clickprompt::plan::CmpOp::Gt,
                        value: 3.0,
                    },
                    clickprompt::plan::SplitPlan::ByTime {
                        column: "timestamp".into(),
                        ratios: [8.0, 1.0, 1.0],
                    },
                );
                match clickprompt::data::sources::read(&plan) {
                    Ok(_) => Outcome::Ok,
                    Err(e) => check_data_error(&e, case),
                }
            }
        }
    }

    fn timed(&self, input: &Input) -> (Result<Outcome, String>, f64) {
        let t0 = cpu_now();
        let r = catch_unwind(AssertUnwindSafe(|| self.check(input))).map_err(|p| {
            p.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into())
        });
        (r, cpu_now() - t0)
    }

    fn exercise(&mut self, input: Input) {
        if let Some(case) = &input.data {
            if let Err(e) = case.write(&self.scratch) {
                eprintln!("fuzz: cannot write the data files: {e}");
                return;
            }
        }
        let (result, mut secs) = self.timed(&input);
        if secs * 1e3 > SLOW_MS {
            // Count it only when a second run is slow too: a page-fault storm
            // or a descheduled timer should not count as a slow input.
            secs = secs.min(self.timed(&input).1);
        }
        let s = &mut self.stats;
        s.inputs += 1;
        s.total_cpu += secs;
        if secs > s.slowest {
            s.slowest = secs;
            s.slowest_kind = format!("{} ({} bytes)", input.kind, input_len(&input));
        }
        let mut finding: Option<(&'static str, String)> = None;
        match result {
            Err(msg) => {
                s.panics += 1;
                finding = Some(("panic", msg));
            }
            Ok(Outcome::Wrong(msg)) => {
                s.wrong += 1;
                finding = Some(("wrong", msg));
            }
            Ok(Outcome::Ok) => {}
        }
        if secs * 1e3 > SLOW_MS {
            s.slow += 1;
            if finding.is_none() {
                finding = Some(("slow", format!("{:.1} ms cpu", secs * 1e3)));
            }
        }
        if let Some((what, msg)) = finding {
            self.save(what, &input, &msg);
        }
    }

    fn save(&mut self, what: &'static str, input: &Input, msg: &str) {
        let n = self.stats.saved.entry(what).or_default();
        *n += 1;
        if *n > SAVE_MAX {
            return;
        }
        let stem = format!("{}-{what}-s{}-{}", self.args.target, self.args.seed, *n);
        let bytes = match &input.data {
            Some(c) => c.dump(),
            None => input.bytes.clone(),
        };
        let ext = match self.args.target.as_str() {
            "checker" => "cp",
            "where" => "where",
            _ => "data",
        };
        let _ = std::fs::write(self.args.out.join(format!("{stem}.{ext}")), bytes);
        let _ = std::fs::write(
            self.args.out.join(format!("{stem}.txt")),
            format!("{}\n{msg}\n", input.kind),
        );
        if let Some(c) = &input.data {
            // The files themselves, ready for `clickprompt data` or a test.
            let dir = self.args.out.join(&stem);
            if std::fs::create_dir_all(&dir).is_ok() {
                let _ = c.write(&dir);
            }
        }
    }
}

fn input_len(i: &Input) -> usize {
    match &i.data {
        Some(c) => c.files.iter().map(|f| f.1.len()).sum(),
        None => i.bytes.len(),
    }
}

/// Every `fuzz.cp:LINE:COL:` in the message must be a position in the input.
fn check_cp_error(e: &anyhow::Error, bytes: &[u8]) -> Outcome {
    let msg = format!("{e:#}");
    if clickprompt::error::exit_code(e) != 2 {
        return Outcome::Wrong(format!("not an invalid-input error: {msg}"));
    }
    if msg.contains("internal parser error") {
        return Outcome::Wrong(msg);
    }
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.split('\n').collect();
    let mut positions = 0;
    for l in msg.lines() {
        let Some(rest) = l.strip_prefix("fuzz.cp:") else {
            continue;
        };
        let mut parts = rest.splitn(3, ':');
        let line = parts.next().and_then(|x| x.parse::<usize>().ok());
        let col = parts.next().and_then(|x| x.parse::<usize>().ok());
        let (Some(line), Some(col)) = (line, col) else {
            continue;
        };
        positions += 1;
        let ok = line >= 1
            && line <= lines.len()
            && col >= 1
            && col <= lines[line - 1].chars().count() + 1;
        if !ok {
            return Outcome::Wrong(format!("position {line}:{col} outside the input: {msg}"));
        }
    }
    if positions == 0 {
        return Outcome::Wrong(format!("no line:col: {msg}"));
    }
    Outcome::Ok
}

/// A `--where` error shows the expression with a caret under the token.
fn check_where_error(e: &anyhow::Error, text: &str) -> Outcome {
    let msg = format!("{e:#}");
    if clickprompt::error::exit_code(e) != 2 {
        return Outcome::Wrong(format!("not an invalid-input error: {msg}"));
    }
    // Over-long expressions are refused whole, without a caret.
    if text.trim().is_empty() || msg.contains('^') || msg.contains("characters long, more than") {
        Outcome::Ok
    } else {
        Outcome::Wrong(format!("no caret: {msg}"))
    }
}

/// A data error names one of the source's files (with its line for a bad row).
fn check_data_error(e: &anyhow::Error, case: &gen_data::DataCase) -> Outcome {
    let msg = format!("{e:#}");
    if clickprompt::error::exit_code(e) != 2 {
        return Outcome::Wrong(format!("not an invalid-input error: {msg}"));
    }
    let names_file = case.files.iter().any(|(name, _)| msg.contains(name));
    let has_no_rows = msg.contains("has no rows");
    if names_file || has_no_rows {
        Outcome::Ok
    } else {
        Outcome::Wrong(format!("names no file (damaged {}): {msg}", case.damaged))
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}
