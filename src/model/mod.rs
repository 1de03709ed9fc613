//! candle models: field embeddings, CTR backbones, the prompted PLM encoder, heads.

pub mod attention;
pub mod ctr;
pub mod embedding;
pub mod fused;
pub(crate) mod gemm;
pub mod heads;
pub mod linear;
pub mod losses;
pub mod nn;
pub mod plm;
pub mod prompt;
pub mod simd;
pub mod vars;
