//! Training: optimiser, schedules, metrics, the stage loop, checkpoints, events.

pub mod events;
pub mod metrics;
pub mod optim;
pub mod checkpoint;
pub mod ctr_stage;
pub mod trainer;
