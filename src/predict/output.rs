//! Where scored rows go: `row,probability` CSV or one JSON document,
//! written as rows arrive.
//!
//! A probability is the f64 sigmoid of the model's logit
//! (`train::metrics::probability`), printed in the shortest form that reads
//! back to the same f64: AUC and LogLoss computed from the output equal the
//! ones the run's evaluation computed.

use std::io::Write;

use anyhow::Result;

use super::PredictReport;

/// Receives scored rows in input order.
pub trait PredictionSink {
    /// One scored row: its input line and its click probability.
    fn row(&mut self, line: u64, probability: f64) -> Result<()>;
    /// After the last row.
    fn finish(&mut self, report: &PredictReport) -> Result<()>;
}

/// `row,probability` lines after a header; `row` is the input line number.
pub struct CsvSink<W: Write> {
    out: W,
}

impl<W: Write> CsvSink<W> {
    pub fn new(mut out: W) -> Result<Self> {
        writeln!(out, "row,probability")?;
        Ok(Self { out })
    }
}

impl<W: Write> PredictionSink for CsvSink<W> {
    fn row(&mut self, line: u64, probability: f64) -> Result<()> {
        writeln!(self.out, "{line},{probability}")?;
        Ok(())
    }

    fn finish(&mut self, _report: &PredictReport) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

/// One JSON object: `{"run", "stage", "epoch", "predictions": [{"row",
/// "probability"}, …], "rows", "skipped_bad_rows", "skipped"}`, the
/// predictions streamed as they come.
pub struct JsonSink<W: Write> {
    out: W,
    first: bool,
}

impl<W: Write> JsonSink<W> {
    pub fn new(mut out: W, run: i64, stage: &str, epoch: Option<i64>) -> Result<Self> {
        write!(
            out,
            "{{\"run\":{run},\"stage\":{},\"epoch\":{},\"predictions\":[",
            serde_json::to_string(stage)?,
            epoch.map_or("null".to_string(), |e| e.to_string())
        )?;
        Ok(Self { out, first: true })
    }
}

impl<W: Write> PredictionSink for JsonSink<W> {
    fn row(&mut self, line: u64, probability: f64) -> Result<()> {
        let sep = if self.first { "\n" } else { ",\n" };
        self.first = false;
        // A probability is always finite (a sigmoid), so it is a JSON number.
        write!(
            self.out,
            "{sep}{{\"row\":{line},\"probability\":{probability}}}"
        )?;
        Ok(())
    }

    fn finish(&mut self, report: &PredictReport) -> Result<()> {
        writeln!(
            self.out,
            "\n],\"rows\":{},\"skipped_bad_rows\":{},\"skipped\":{}}}",
            report.rows,
            report.skipped,
            serde_json::to_string(&report.skipped_examples)?
        )?;
        self.out.flush()?;
        Ok(())
    }
}

/// Collects probabilities in memory (tests, examples).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Collected {
    pub lines: Vec<u64>,
    pub probabilities: Vec<f64>,
}

impl PredictionSink for Collected {
    fn row(&mut self, line: u64, probability: f64) -> Result<()> {
        self.lines.push(line);
        self.probabilities.push(probability);
        Ok(())
    }

    fn finish(&mut self, _report: &PredictReport) -> Result<()> {
        Ok(())
    }
}
