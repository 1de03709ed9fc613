//! clickprompt: ClickPrompt experiments (CTR models generating soft prompts
//! for a pretrained language model), from an experiment file to stored runs.
//!
//! The pipeline, with dependencies flowing one way:
//! `dsl` (parse) → `plan` (validate, resolve) → `data` → `model` → `train`
//! → `store`; `stats` aggregates stored runs over seeds; `predict` scores
//! new rows with a recorded run; `cli` wires them together and feeds the
//! `clickprompt-tui` dashboard. [`session`] is the way in from code: run
//! experiment files or plans built in code, recorded as the command records
//! them, and score rows with the results (see `examples/`).

pub mod alloc;
pub mod cli;
pub mod dashfeed;
pub mod data;
pub mod dsl;
pub mod error;
pub mod model;
pub mod plan;
pub mod predict;
pub mod session;
pub mod stats;
pub mod store;
pub mod train;
