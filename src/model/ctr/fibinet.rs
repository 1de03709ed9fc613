//! FiBiNET (Huang et al., 2019): a SENET re-weights the field embeddings,
//! bilinear interactions are taken for both the original and the re-weighted
//! embeddings, and the concatenation feeds an MLP.

use anyhow::Result;
use candle_core::{Device, Tensor, D};
use candle_nn::VarBuilder;

use crate::model::nn::xavier_normal;
use crate::plan::BilinearKind;

#[derive(Debug, Clone)]
pub struct Senet {
    /// (F, R) and (R, F), no biases.
    w1: Tensor,
    w2: Tensor,
}

impl Senet {
    /// Variables `excite1` (R, F) and `excite2` (F, R), R = max(1, F / reduction).
    pub fn new(fields: usize, reduction: usize, vb: VarBuilder) -> Result<Self> {
        let r = (fields / reduction.max(1)).max(1);
        let w1 = vb.get_with_hints((r, fields), "excite1", xavier_normal(fields, r))?.t()?;
        let w2 = vb.get_with_hints((fields, r), "excite2", xavier_normal(r, fields))?.t()?;
        Ok(Self { w1, w2 })
    }

    /// (B, F, E) → re-weighted (B, F, E).
    pub fn forward(&self, emb: &Tensor) -> Result<Tensor> {
        let z = emb.mean(D::Minus1)?; // squeeze: (B, F)
        let a = z.matmul(&self.w1)?.relu()?.matmul(&self.w2)?.relu()?; // excitation
        Ok(emb.broadcast_mul(&a.unsqueeze(2)?)?)
    }
}

#[derive(Debug, Clone)]
pub struct Bilinear {
    kind: BilinearKind,
    /// FieldAll: (E, E); FieldEach: (F, E, E); FieldInteraction: (P, E, E).
    weight: Tensor,
    left: Tensor,
    right: Tensor,
    pairs: usize,
}

impl Bilinear {
    /// Variable `weight` with the shape of `kind`.
    pub fn new(fields: usize, embed: usize, kind: BilinearKind, vb: VarBuilder) -> Result<Self> {
        let (li, ri): (Vec<u32>, Vec<u32>) = (0..fields as u32)
            .flat_map(|i| (i + 1..fields as u32).map(move |j| (i, j)))
            .unzip();
        let pairs = li.len();
        let init = xavier_normal(embed, embed);
        let weight = match kind {
            BilinearKind::FieldAll => vb.get_with_hints((embed, embed), "weight", init)?,
            BilinearKind::FieldEach => vb.get_with_hints((fields, embed, embed), "weight", init)?,
            BilinearKind::FieldInteraction => vb.get_with_hints((pairs.max(1), embed, embed), "weight", init)?,
        };
        let dev: &Device = vb.device();
        Ok(Self {
            kind,
            weight,
            left: Tensor::from_vec(li, pairs, dev)?,
            right: Tensor::from_vec(ri, pairs, dev)?,
            pairs,
        })
    }

    pub fn pairs(&self) -> usize {
        self.pairs
    }

    /// (B, F, E) → (B, P, E) with p_ij = (v_i W) ⊙ v_j for i < j.
    pub fn forward(&self, emb: &Tensor) -> Result<Tensor> {
        let (b, f, e) = emb.dims3()?;
        let right = emb.index_select(&self.right, 1)?;
        let left = match self.kind {
            BilinearKind::FieldAll => emb.reshape((b * f, e))?.matmul(&self.weight)?.reshape((b, f, e))?.index_select(&self.left, 1)?,
            BilinearKind::FieldEach => {
                // (F, B, E) × (F, E, E): one batched matmul over fields.
                let t = emb.transpose(0, 1)?.contiguous()?.matmul(&self.weight)?;
                t.index_select(&self.left, 0)?.transpose(0, 1)?
            }
            BilinearKind::FieldInteraction => {
                let l = emb.index_select(&self.left, 1)?.transpose(0, 1)?.contiguous()?; // (P, B, E)
                l.matmul(&self.weight)?.transpose(0, 1)?
            }
        };
        Ok((left * right)?)
    }
}
