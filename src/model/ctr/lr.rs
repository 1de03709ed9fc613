//! Logistic regression: one learned weight per field value plus a bias.
//! It has no hidden representation, so it cannot generate prompts.

use anyhow::Result;
use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use crate::data::{Batch, DatasetMeta};
use crate::model::embedding::FieldEmbedding;

/// First-order term Σ_f w[x_f] + b; variables `linear.weight`, `linear.number`, `bias`.
#[derive(Debug, Clone)]
pub struct FirstOrder {
    weights: FieldEmbedding,
    bias: Tensor,
}

impl FirstOrder {
    pub fn new(meta: &DatasetMeta, vb: VarBuilder) -> Result<Self> {
        let weights = FieldEmbedding::new(meta, 1, vb.pp("linear"))?;
        let bias = vb.get_with_hints(1, "bias", Init::Const(0.0))?;
        Ok(Self { weights, bias })
    }

    /// (B,) logits.
    pub fn forward(&self, batch: &Batch) -> Result<Tensor> {
        let w = self.weights.forward(batch)?; // (B, F, 1)
        Ok(w.sum((1, 2))?.broadcast_add(&self.bias)?)
    }
}
