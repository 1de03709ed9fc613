//! DCNv2 full-rank cross layers, as the reference uses:
//! x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l.

use anyhow::Result;
use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

use crate::model::linear::Linear;

use crate::model::nn::linear_xavier;

#[derive(Debug, Clone)]
pub struct CrossNetV2 {
    layers: Vec<Linear>,
}

impl CrossNetV2 {
    /// Variables `{l}.weight` (D, D) and `{l}.bias` (D).
    pub fn new(dim: usize, depth: usize, vb: VarBuilder) -> Result<Self> {
        let layers = (0..depth)
            .map(|l| linear_xavier(dim, dim, vb.pp(l.to_string())))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Weight then bias of every layer, in order.
    pub fn params(&self) -> Vec<&Tensor> {
        self.layers
            .iter()
            .flat_map(|l| [l.weight(), l.bias()])
            .collect()
    }

    /// (B, D) → (B, D).
    pub fn forward(&self, x0: &Tensor) -> Result<Tensor> {
        let mut x = x0.clone();
        for l in &self.layers {
            x = ((x0 * l.forward(&x)?)? + x)?;
        }
        Ok(x)
    }
}
