//! candle models: field embeddings, CTR backbones, the prompted PLM encoder, heads.

pub mod nn;
