//! `clickprompt predict`: scores rows with a recorded run's trained stage
//! and writes `row,probability` CSV (or JSON).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::run::parse_device;
use crate::data::input::InputFormat;
use crate::error::invalid;
use crate::predict::{CsvSink, JsonSink, PredictOptions, PredictReport, Predictor, TrainedRun};
use crate::store::{self, Store};

const AFTER_HELP: &str = "\
INPUT is read in the format of the run's dataset source (--format source):
a csv(...) source's own separator and header; MovieLens rating lines
(user, item[, rating, timestamp]) joined with the attribute files of the
recorded source folder; Book-Crossing rating lines likewise; for the
synthetic source, a comma-separated file with a header. --format csv|tsv
reads a header naming the source's columns (`user_id,item_id,title,...`).

Rows are encoded with the vocabularies stored with the run (unknown values
become out-of-vocabulary, as in the run's evaluation) and scored with the
stage's best epoch. Output: `row,probability` per scored row, `row` being
the input line number; --json writes one JSON document instead.

A malformed row stops with its line number, or is skipped and counted with
--skip-bad-rows.

Examples:
  clickprompt predict --run 3 new_rows.csv -o scores.csv
  clickprompt predict --run 3 --stage joint --json u.test
  cut -f1,2 u.test | clickprompt predict --run 3 -";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct PredictArgs {
    /// The run whose trained model scores the rows (its id in the database).
    #[arg(long, value_name = "ID")]
    pub run: i64,
    /// The stage to score with (default: the run's last stage with a checkpoint).
    #[arg(long, value_name = "NAME")]
    pub stage: Option<String>,
    /// Rows to score; `-` reads stdin.
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// Write here instead of stdout (replaced only when scoring succeeds).
    #[arg(short, long, value_name = "OUTPUT")]
    pub output: Option<PathBuf>,
    /// One JSON document: run, stage, epoch, predictions [{row, probability}], counts.
    #[arg(long)]
    pub json: bool,
    /// Skip malformed rows (counted and reported) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Input layout: `source` (the dataset's own format), `csv` or `tsv` (with a header).
    #[arg(long, default_value = "source", value_parser = ["source", "csv", "tsv"])]
    pub format: String,
    /// Override the run's device: `auto`, `cpu`, `cuda` or `cuda:N`.
    #[arg(long)]
    pub device: Option<String>,
    /// Rows per forward pass (default: the stage's eval_batch, which reproduces its evaluation exactly).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: Option<u64>,
    /// PLM folder for joint / plm_only stages, if the run's has moved (same tokenizer required).
    #[arg(long, value_name = "DIR")]
    pub plm: Option<PathBuf>,
    /// Run database: a SQLite file or a postgres:// URL [default: $CLICKPROMPT_DB, else ./runs.db].
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<store::DbTarget>,
}

pub fn run(args: PredictArgs) -> Result<()> {
    let store = Store::open_existing(args.db.clone().unwrap_or_else(store::default_db))?;
    let trained = TrainedRun::open(&store, args.run, args.stage.as_deref())?;
    for note in &trained.notes {
        eprintln!("warning: {note}");
    }
    let opts = PredictOptions {
        device: args.device.as_deref().map(parse_device).transpose()?,
        batch: args.batch.map(|b| b as usize),
        plm_dir: args.plm.clone(),
        skip_bad_rows: args.skip_bad_rows,
    };
    let mut predictor = Predictor::new(&trained, &opts)?;
    let format = InputFormat::parse(&args.format)?;
    let (input, name): (Box<dyn BufRead>, String) = if args.input == Path::new("-") {
        (Box::new(std::io::stdin().lock()), "<stdin>".into())
    } else {
        let f = File::open(&args.input)
            .map_err(|e| invalid(format!("cannot read {}: {e}", args.input.display())))?;
        (
            Box::new(BufReader::with_capacity(1 << 16, f)),
            args.input.display().to_string(),
        )
    };
    let mut reader = predictor.reader(input, &name, format)?;

    let report = match &args.output {
        None => {
            let out = BufWriter::new(std::io::stdout().lock());
            score(&mut predictor, &mut reader, out, &args, &trained)?
        }
        Some(path) => {
            // Written beside the target and renamed at the end, so a failed
            // pass never leaves a partial file under the requested name.
            let mut tmp = path.as_os_str().to_owned();
            tmp.push(".partial");
            let tmp = PathBuf::from(tmp);
            let file = File::create(&tmp)
                .map_err(|e| invalid(format!("cannot write {}: {e}", path.display())))?;
            // Ctrl-C (or SIGTERM) must not leave the partial file behind either.
            let partial = tmp.clone();
            let _ = ctrlc::set_handler(move || {
                let _ = std::fs::remove_file(&partial);
                eprintln!("\ninterrupted: nothing written");
                std::process::exit(130);
            });
            let result = score(
                &mut predictor,
                &mut reader,
                BufWriter::with_capacity(1 << 16, file),
                &args,
                &trained,
            );
            match result {
                Ok(r) => {
                    std::fs::rename(&tmp, path).with_context(|| {
                        format!("renaming {} to {}", tmp.display(), path.display())
                    })?;
                    r
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
            }
        }
    };
    let rate = if report.seconds > 0.0 {
        format!(" ({:.0} rows/s)", report.rows as f64 / report.seconds)
    } else {
        String::new()
    };
    eprintln!(
        "scored {} rows with run {}, stage {} (epoch {}) in {:.2}s{rate}",
        report.rows,
        trained.run_id,
        trained.stage.name,
        trained.epoch.map_or("-".into(), |e| e.to_string()),
        report.seconds
    );
    if report.skipped > 0 {
        eprintln!("skipped {} malformed row(s):", report.skipped);
        for m in &report.skipped_examples {
            eprintln!("  {m}");
        }
        if report.skipped > report.skipped_examples.len() {
            eprintln!("  …");
        }
    }
    Ok(())
}

fn score<R: BufRead, W: Write>(
    predictor: &mut Predictor,
    reader: &mut crate::data::input::RowReader<R>,
    out: W,
    args: &PredictArgs,
    trained: &TrainedRun,
) -> Result<PredictReport> {
    if args.json {
        let mut sink = JsonSink::new(out, trained.run_id, &trained.stage.name, trained.epoch)?;
        predictor.predict(reader, &mut sink)
    } else {
        let mut sink = CsvSink::new(out)?;
        predictor.predict(reader, &mut sink)
    }
}
