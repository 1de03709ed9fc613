//! Training: optimiser, schedules, metrics, the stage loop, checkpoints, events.

pub mod checkpoint;
pub mod ctr_stage;
pub mod evaluation;
pub mod events;
pub mod head_warmup;
pub mod joint;
pub mod metrics;
pub mod optim;
pub mod pa_mlm;
pub mod plm_stages;
pub mod predict;
pub mod runner;
pub mod trainer;
