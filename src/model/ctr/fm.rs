//! Factorisation machine: first-order term plus Σ_{i<j} <v_i, v_j>.

use anyhow::Result;
use candle_core::{Tensor, D};

/// The FM interaction vector 0.5·((Σ_f v_f)² − Σ_f v_f²), shape (B, E), from
/// (B, F, E) embeddings; its sum over E is Σ_{i<j} <v_i, v_j> in O(F·E).
pub fn fm_interaction(emb: &Tensor) -> Result<Tensor> {
    let sum_sq = emb.sum(D::Minus2)?.sqr()?;
    let sq_sum = emb.sqr()?.sum(D::Minus2)?;
    Ok(((sum_sq - sq_sum)? * 0.5)?)
}

/// Σ_{i<j} <v_i, v_j> per row, shape (B,).
pub fn fm_pairwise(emb: &Tensor) -> Result<Tensor> {
    Ok(fm_interaction(emb)?.sum(D::Minus1)?)
}
