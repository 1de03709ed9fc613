//! Scoring new rows with a recorded run: `clickprompt predict` and its
//! library form.
//!
//! ```ignore
//! use clickprompt::predict::{PredictOptions, Predictor, TrainedRun};
//! let store = clickprompt::store::Store::open_existing(&db)?;
//! let trained = TrainedRun::open(&store, run_id, None)?;     // last stage with a checkpoint
//! let mut predictor = Predictor::new(&trained, &PredictOptions::default())?;
//! let p = predictor.score(&[vec!["17", "402", "galaxy and comet", …]])?;  // values in `columns()` order
//! ```
//!
//! Rows are encoded with the run's stored vocabularies (`data::vocab`):
//! nothing is re-read from the training data, and unknown values become OOV
//! exactly as in the run's evaluation. Input streams through in chunks —
//! the stage's `eval_batch` rows for a CTR stage (one forward pass each),
//! `eval_batch × 50` for a PLM stage, length-bucketed as evaluation does —
//! so memory stays flat however long the input, and the test split's rows,
//! in order, score to exactly the run's recorded test AUC and LogLoss.

pub mod output;
mod run;

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::data::input::{InputFormat, Next, RowReader};
use crate::data::render::{value_text, Template};
use crate::data::tokenize::{fingerprint, TextTokenizer};
use crate::data::vocab::RowEncoder;
use crate::error::invalid;
use crate::model::plm::resolve_plm_dir;
use crate::plan::{DeviceSpec, FieldPlan};
use crate::train::metrics::probability;
use crate::train::predict::Scorer;
use crate::train::runner::select_device;

pub use output::{Collected, CsvSink, JsonSink, PredictionSink};
pub use run::TrainedRun;

/// How to score.
#[derive(Debug, Clone, Default)]
pub struct PredictOptions {
    /// Overrides the run's device.
    pub device: Option<DeviceSpec>,
    /// Rows per forward pass instead of the stage's `eval_batch` (results
    /// may then differ from the run's evaluation in the last bits).
    pub batch: Option<usize>,
    /// The PLM folder instead of the one the run's plan names (PLM stages;
    /// its tokenizer must be the one the run used).
    pub plm_dir: Option<PathBuf>,
    /// Skip malformed rows (counted, first few reported) instead of failing.
    pub skip_bad_rows: bool,
}

/// What a scoring pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PredictReport {
    pub rows: usize,
    pub skipped: usize,
    /// The first few skipped rows, as `input:line: reason`.
    pub skipped_examples: Vec<String>,
    pub seconds: f64,
}

/// The text side of a PLM stage: template and tokenizer.
struct TextSide {
    template: Template,
    tokenizer: TextTokenizer,
    /// Index into the row values of each template field's column.
    pick: Vec<usize>,
    buf: String,
    offsets: Vec<usize>,
}

/// A loaded stage plus everything to turn raw rows into its inputs.
pub struct Predictor {
    scorer: Scorer,
    encoder: RowEncoder,
    text: Option<TextSide>,
    /// The source columns a row must provide: the CTR fields' first, in field order.
    columns: Vec<String>,
    n_ctr: usize,
    /// Rows gathered before scoring.
    chunk: usize,
    skip_bad_rows: bool,
    trained: TrainedRun,
}

/// The columns rows must provide: every CTR field's, in field order, then
/// the template fields' that are not among them; and where each template
/// field finds its value.
fn needed_columns(ctr: &[&str], template: Option<&[FieldPlan]>) -> (Vec<String>, Vec<usize>) {
    let mut columns: Vec<String> = ctr.iter().map(|c| c.to_string()).collect();
    let mut pick = Vec::new();
    for f in template.unwrap_or(&[]) {
        let i = match columns.iter().position(|c| *c == f.column) {
            Some(i) => i,
            None => {
                columns.push(f.column.clone());
                columns.len() - 1
            }
        };
        pick.push(i);
    }
    (columns, pick)
}

impl Predictor {
    /// Loads the stage's model and the run's encoders.
    pub fn new(trained: &TrainedRun, opts: &PredictOptions) -> Result<Self> {
        let plan = &trained.plan;
        let stage = &trained.stage;
        let device = select_device(opts.device.unwrap_or(plan.device)).map_err(|e| {
            if opts.device.is_none() {
                invalid(format!(
                    "{e:#}\n(the run's plan asks for device {:?}; pass --device cpu to score on the CPU)",
                    plan.device
                ))
            } else {
                e
            }
        })?;
        let vocab = &trained.vocabularies;
        let needs_plm = stage.kind.needs_plm();
        let plm_dir = match (needs_plm, &opts.plm_dir, &plan.plm) {
            (false, _, _) => None,
            (true, Some(dir), _) => Some(dir.clone()),
            (true, None, Some(plm)) => Some(resolve_plm_dir(plm).with_context(|| {
                "the run's PLM folder (pass --plm DIR if it moved)".to_string()
            })?),
            (true, None, None) => {
                return Err(invalid(format!(
                    "stage `{}` needs a PLM but the run's plan has none",
                    stage.name
                )))
            }
        };
        let text = match &plm_dir {
            None => None,
            Some(dir) => {
                let stored = vocab.text.as_ref().ok_or_else(|| {
                    invalid("the run's vocabularies have no text side (the run rendered no text)")
                })?;
                let found = fingerprint(dir)?;
                if found != stored.tokenizer {
                    return Err(invalid(format!(
                        "the tokenizer in {} is not the one run {} used (its files changed or this is another model); \
                         pass --plm DIR with the run's PLM folder",
                        dir.display(),
                        trained.run_id
                    )));
                }
                let tp = plan.template.as_ref().ok_or_else(|| {
                    invalid(format!(
                        "stage `{}` needs a template but the run's plan has none",
                        stage.name
                    ))
                })?;
                let template = Template::new(tp, &plan.dataset.fields)?;
                let tokenizer = TextTokenizer::from_dir(dir, stored.meta.max_len)?;
                Some((template, tokenizer))
            }
        };
        let (scorer, _) = Scorer::load(
            plan,
            stage,
            &vocab.meta(),
            plm_dir.as_deref(),
            &trained.checkpoint,
            &device,
        )?;
        let ctr_columns = vocab.columns();
        let (columns, text_pick) = needed_columns(
            &ctr_columns,
            text.as_ref().map(|(t, _)| t.fields.as_slice()),
        );
        let batch = opts.batch.unwrap_or(scorer.batch).max(1);
        let chunk = if scorer.needs_text() {
            batch * 50
        } else {
            batch
        };
        let mut scorer = scorer;
        scorer.batch = batch;
        Ok(Self {
            encoder: RowEncoder::new(vocab)?,
            text: text.map(|(template, tokenizer)| TextSide {
                template,
                tokenizer,
                pick: text_pick,
                buf: String::new(),
                offsets: vec![0],
            }),
            n_ctr: ctr_columns.len(),
            columns,
            chunk,
            skip_bad_rows: opts.skip_bad_rows,
            scorer,
            trained: trained.clone(),
        })
    }

    /// The source columns each row must provide, in the order [`Predictor::score`] takes them.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    pub fn trained(&self) -> &TrainedRun {
        &self.trained
    }

    /// Opens `input` in `format` for this run's dataset (`name`: how
    /// messages call it, a path or `<stdin>`).
    pub fn reader<R: BufRead>(
        &self,
        input: R,
        name: &str,
        format: InputFormat,
    ) -> Result<RowReader<R>> {
        let cols: Vec<&str> = self.columns.iter().map(String::as_str).collect();
        RowReader::open(
            input,
            name,
            &self.trained.plan.dataset.source,
            format,
            &cols,
        )
    }

    /// Click probabilities of rows given as values in [`Predictor::columns`] order.
    /// A row that cannot be encoded is an error naming it (from 0).
    pub fn score<S: AsRef<str>>(&mut self, rows: &[Vec<S>]) -> Result<Vec<f64>> {
        let mut out = Collected::default();
        let mut lines = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            if row.len() != self.columns.len() {
                return Err(invalid(format!(
                    "row {i}: {} values for the {} columns {}",
                    row.len(),
                    self.columns.len(),
                    self.columns.join(", ")
                )));
            }
            self.add(row)
                .map_err(|e| invalid(format!("row {i}: {e}")))?;
            lines.push(i as u64);
            if self.encoder.rows() == self.chunk {
                self.flush(&mut lines, &mut out)?;
            }
        }
        self.flush(&mut lines, &mut out)?;
        Ok(out.probabilities)
    }

    /// Scores every row `reader` yields into `sink`, in input order.
    /// A malformed row fails the pass, or is skipped with `skip_bad_rows`.
    pub fn predict<R: BufRead>(
        &mut self,
        reader: &mut RowReader<R>,
        sink: &mut dyn PredictionSink,
    ) -> Result<PredictReport> {
        let start = Instant::now();
        let mut report = PredictReport::default();
        let mut values: Vec<String> = Vec::new();
        let mut lines: Vec<u64> = Vec::with_capacity(self.chunk);
        loop {
            let bad = match reader.next(&mut values)? {
                Next::End => break,
                Next::Bad { message, .. } => Some(message),
                Next::Row { line } => match self.add(&values) {
                    Ok(()) => {
                        lines.push(line);
                        None
                    }
                    Err(why) => Some(format!("{}:{line}: {why}", reader.name())),
                },
            };
            if let Some(message) = bad {
                if !self.skip_bad_rows {
                    return Err(invalid(format!(
                        "{message}\n(malformed rows can be skipped: --skip-bad-rows)"
                    )));
                }
                report.skipped += 1;
                if report.skipped_examples.len() < 5 {
                    report.skipped_examples.push(message);
                }
                continue;
            }
            if self.encoder.rows() == self.chunk {
                report.rows += self.flush(&mut lines, sink)?;
            }
        }
        report.rows += self.flush(&mut lines, sink)?;
        report.seconds = start.elapsed().as_secs_f64();
        sink.finish(&report)?;
        Ok(report)
    }

    /// Encodes one row (and renders its text); on error nothing is added.
    fn add<S: AsRef<str>>(&mut self, values: &[S]) -> std::result::Result<(), String> {
        self.encoder.push(&values[..self.n_ctr])?;
        if let Some(t) = &mut self.text {
            let texts: Vec<String> = t
                .template
                .fields
                .iter()
                .zip(&t.pick)
                .map(|(f, &i)| value_text(f, values[i].as_ref()))
                .collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            t.template.render_into(&refs, &mut t.buf);
            t.offsets.push(t.buf.len());
        }
        Ok(())
    }

    /// Scores the gathered rows into `sink`; returns how many.
    fn flush(&mut self, lines: &mut Vec<u64>, sink: &mut dyn PredictionSink) -> Result<usize> {
        let n = self.encoder.rows();
        if n == 0 {
            return Ok(0);
        }
        let logits = match &mut self.text {
            None => {
                let batch = self.encoder.take_batch(self.scorer.device())?;
                self.scorer.logits(&batch)?
            }
            Some(t) => {
                let mut split = self.encoder.take_split();
                let refs: Vec<&str> = t.offsets.windows(2).map(|w| &t.buf[w[0]..w[1]]).collect();
                split.tokens = Some(t.tokenizer.encode_batch(&refs)?);
                t.buf.clear();
                t.offsets.truncate(1);
                self.scorer.logits_of_split(&split)?
            }
        };
        for (&line, &z) in lines.iter().zip(&logits) {
            sink.row(line, probability(z))?;
        }
        lines.clear();
        Ok(n)
    }
}
