//! Deep & Cross Network (v1): x_{l+1} = x_0 · (x_lᵀ w_l) + b_l + x_l, a rank-one
//! cross per layer, in parallel with a ReLU MLP.

use anyhow::Result;
use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use crate::model::nn::xavier_normal;

#[derive(Debug, Clone)]
pub struct CrossNet {
    /// (D, 1) weight and (D,) bias per layer.
    layers: Vec<(Tensor, Tensor)>,
}

impl CrossNet {
    /// Variables `{l}.weight` (D, 1) and `{l}.bias` (D).
    pub fn new(dim: usize, depth: usize, vb: VarBuilder) -> Result<Self> {
        let layers = (0..depth)
            .map(|l| {
                let vb = vb.pp(l.to_string());
                let w = vb.get_with_hints((dim, 1), "weight", xavier_normal(dim, 1))?;
                let b = vb.get_with_hints(dim, "bias", Init::Const(0.0))?;
                Ok((w, b))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    /// (B, D) → (B, D).
    pub fn forward(&self, x0: &Tensor) -> Result<Tensor> {
        let mut x = x0.clone();
        for (w, b) in &self.layers {
            let s = x.matmul(w)?; // (B, 1)
            x = ((x0.broadcast_mul(&s)?.broadcast_add(b))? + x)?;
        }
        Ok(x)
    }
}
