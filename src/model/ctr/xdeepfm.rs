//! xDeepFM's Compressed Interaction Network (Lian et al., 2018):
//! X^{k+1}_h = Σ_{i,j} W^k_{h,ij} (X^k_i ⊙ X^0_j), sum-pooled over the embedding axis.

use anyhow::{bail, Result};
use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use crate::model::nn::xavier_normal;

#[derive(Debug, Clone)]
pub struct Cin {
    /// (H_{k}·F, H_{k+1}) weights (transposed 1×1 convolution) and (H_{k+1},) biases.
    layers: Vec<(Tensor, Tensor)>,
    out_dim: usize,
}

impl Cin {
    /// Variables `{k}.weight` (H_{k+1}, H_k·F) and `{k}.bias` (H_{k+1}), as a 1×1 Conv1d stores them.
    pub fn new(fields: usize, sizes: &[usize], vb: VarBuilder) -> Result<Self> {
        let mut layers = Vec::with_capacity(sizes.len());
        let mut h = fields;
        for (k, &o) in sizes.iter().enumerate() {
            if o == 0 {
                bail!("xdeepfm: CIN layer {k} has size 0");
            }
            let vb = vb.pp(k.to_string());
            let w = vb.get_with_hints((o, h * fields), "weight", xavier_normal(h * fields, o))?;
            let b = vb.get_with_hints(o, "bias", Init::Const(0.0))?;
            layers.push((w.t()?, b));
            h = o;
        }
        Ok(Self { layers, out_dim: sizes.iter().sum() })
    }

    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// (B, F, E) → (B, ΣH_k).
    pub fn forward(&self, emb: &Tensor) -> Result<Tensor> {
        let (b, f, e) = emb.dims3()?;
        // Work in (B, E, H) layout: the outer product is then a contiguous
        // (B·E, H·F) matrix and each layer is a single matmul.
        let x0 = emb.transpose(1, 2)?.contiguous()?; // (B, E, F)
        let x0u = x0.unsqueeze(2)?; // (B, E, 1, F)
        let mut xk = x0.clone();
        let mut pooled = Vec::with_capacity(self.layers.len());
        for (w, bias) in &self.layers {
            let hk = xk.dim(2)?;
            let z = xk.unsqueeze(3)?.broadcast_mul(&x0u)?; // (B, E, Hk, F)
            let next = z.reshape((b * e, hk * f))?.matmul(w)?.broadcast_add(bias)?; // (B·E, H')
            let next = next.reshape((b, e, w.dim(1)?))?;
            pooled.push(next.sum(1)?);
            xk = next;
        }
        Ok(Tensor::cat(&pooled, 1)?)
    }
}
