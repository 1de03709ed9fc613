//! clickprompt: ClickPrompt experiments (CTR models generating soft prompts
//! for a pretrained language model), from an experiment file to stored runs.
//!
//! The pipeline, with dependencies flowing one way:
//! `dsl` (parse) → `plan` (validate, resolve) → `data` → `model` → `train`
//! → `store`; `stats` aggregates stored runs over seeds; `cli` wires them
//! together and feeds the `clickprompt-tui` dashboard.

pub mod alloc;
pub mod cli;
pub mod dashfeed;
pub mod data;
pub mod dsl;
pub mod error;
pub mod model;
pub mod plan;
pub mod stats;
pub mod store;
pub mod train;
