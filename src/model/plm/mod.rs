//! The pretrained language model: configuration, checkpoint loading, the
//! prompted encoder, and locating model folders (local or hub).

pub mod config;
pub mod encoder;
pub mod hub;
pub mod loading;

pub use config::{Config, HiddenAct};
pub use encoder::{EncoderOutput, PlmEncoder, Prompts};
pub use hub::resolve_plm_dir;
pub use loading::{load_checkpoint, Checkpoint, LoadReport};
