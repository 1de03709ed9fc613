//! What a running experiment reports. The trainer emits events; the progress
//! bars, the run database and the live dashboard consume them. Dependencies
//! flow one way: `train` defines this, `store` and the CLI implement sinks.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    StageStarted {
        stage: String,
        kind: String,
        epochs: usize,
        steps_per_epoch: usize,
        rows: usize,
    },
    /// One optimiser step (after accumulation).
    Step {
        stage: String,
        epoch: usize,
        /// Global optimiser step within the stage, from 1.
        step: usize,
        loss: f64,
        lr: f64,
        samples_per_s: f64,
    },
    /// Per-epoch (or final test) evaluation. `metrics` holds extras such as
    /// masked-token accuracy (`mlm_acc`, `mlm_acc_no_prompt`, `mlm_loss`).
    Eval {
        stage: String,
        epoch: usize,
        split: EvalSplit,
        auc: Option<f64>,
        logloss: Option<f64>,
        metrics: Vec<(String, f64)>,
    },
    StageFinished {
        stage: String,
        best_epoch: Option<usize>,
        seconds: f64,
        train_samples_per_s: f64,
        infer_samples_per_s: Option<f64>,
    },
    Checkpoint {
        stage: String,
        epoch: Option<usize>,
        path: String,
        bytes: u64,
        sha256: String,
    },
    Log {
        level: LogLevel,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalSplit {
    Train,
    Valid,
    Test,
}

impl EvalSplit {
    pub fn as_str(&self) -> &'static str {
        match self {
            EvalSplit::Train => "train",
            EvalSplit::Valid => "valid",
            EvalSplit::Test => "test",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

/// Receives events; must be cheap (hand off to a channel, never block on I/O).
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

/// Fans one event out to several sinks.
pub struct Fanout(pub Vec<Box<dyn EventSink>>);

impl EventSink for Fanout {
    fn emit(&self, event: Event) {
        for sink in &self.0 {
            sink.emit(event.clone());
        }
    }
}

/// Collects events in memory (tests, summaries).
#[derive(Default)]
pub struct Collect(pub std::sync::Mutex<Vec<Event>>);

impl EventSink for Collect {
    fn emit(&self, event: Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event);
        }
    }
}
