//! Validation and resolution of parsed experiment files into typed,
//! fully-defaulted [`ExperimentPlan`]s.

pub mod types;

pub use types::*;
