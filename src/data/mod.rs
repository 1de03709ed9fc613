//! Data pipeline: sources → labels → splits → field encoding → text
//! rendering → tokenization → cache → batches.

pub mod batch;
pub mod types;

pub use batch::{epoch_batches, Batch, DeviceSplit, OrderSpec, TextBatch};
pub use types::*;
