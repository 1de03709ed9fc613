//! candle models: field embeddings, CTR backbones, the prompted PLM encoder, heads.

pub mod ctr;
pub mod embedding;
pub mod nn;
pub mod vars;
