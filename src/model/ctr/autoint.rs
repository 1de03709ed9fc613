//! AutoInt: stacked multi-head self-attention over the field embeddings with
//! a residual projection and ReLU (Song et al., 2019).

use anyhow::{bail, Result};
use candle_core::Tensor;
use candle_nn::VarBuilder;

use crate::model::nn::{softmax_last_dim, xavier_normal};

#[derive(Debug, Clone)]
struct AttLayer {
    /// (d_in, A) query, key, value and residual projections; concatenated per
    /// forward (never cached: the optimiser updates the variables in place).
    parts: [Tensor; 4],
}

#[derive(Debug, Clone)]
pub struct SelfAttention {
    layers: Vec<AttLayer>,
    heads: usize,
    att_dim: usize,
}

impl SelfAttention {
    /// `att_dim` is each layer's output width, split over `heads`.
    /// Variables `{l}.query`, `{l}.key`, `{l}.value`, `{l}.residual`, each (d_in, A).
    pub fn new(
        embed: usize,
        layers: usize,
        heads: usize,
        att_dim: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        if heads == 0 || att_dim == 0 || !att_dim.is_multiple_of(heads) {
            bail!("autoint: att_dim ({att_dim}) must be a positive multiple of heads ({heads})");
        }
        let mut out = Vec::with_capacity(layers);
        let mut d_in = embed;
        for l in 0..layers {
            let vb = vb.pp(l.to_string());
            let get =
                |name: &str| vb.get_with_hints((d_in, att_dim), name, xavier_normal(d_in, att_dim));
            out.push(AttLayer {
                parts: [get("query")?, get("key")?, get("value")?, get("residual")?],
            });
            d_in = att_dim;
        }
        Ok(Self {
            layers: out,
            heads,
            att_dim,
        })
    }

    /// Width of one field's output.
    pub fn field_dim(&self, embed: usize) -> usize {
        if self.layers.is_empty() {
            embed
        } else {
            self.att_dim
        }
    }

    /// (B, F, E) → (B, F, A).
    pub fn forward(&self, emb: &Tensor) -> Result<Tensor> {
        let (b, f, _) = emb.dims3()?;
        let a = self.att_dim;
        let h = self.heads;
        let dh = a / h;
        let scale = 1.0 / (dh as f64).sqrt();
        let mut x = emb.clone();
        for layer in &self.layers {
            let d_in = x.dim(2)?;
            // One matmul for all four projections.
            let w = Tensor::cat(&layer.parts, 1)?;
            let p = x
                .reshape((b * f, d_in))?
                .matmul(&w)?
                .reshape((b, f, 4 * a))?;
            let heads = |i: usize| -> Result<Tensor> {
                Ok(p.narrow(2, i * a, a)?
                    .reshape((b, f, h, dh))?
                    .transpose(1, 2)?
                    .contiguous()?)
            };
            let (q, k, v) = (heads(0)?, heads(1)?, heads(2)?);
            let scores = (q.matmul(&k.transpose(2, 3)?)? * scale)?; // (B, H, F, F)
            let att = softmax_last_dim(&scores)?.matmul(&v)?; // (B, H, F, dh)
            let att = att.transpose(1, 2)?.reshape((b, f, a))?;
            x = (att + p.narrow(2, 3 * a, a)?)?.relu()?;
        }
        Ok(x)
    }
}
