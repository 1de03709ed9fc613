//! The shared field-embedding layer of every CTR backbone.
//!
//! All categorical fields (single- and multi-valued) share ONE table: field
//! `f`'s local id `i` lives at row `offset[f] + i`, so a batch of single
//! fields is embedded by one broadcast add and one `index_select`.
//! Multi-valued fields are mean-pooled over their non-PAD ids; number fields
//! are `value × learned vector`. The output is (B, F, E) in the model's field
//! order: single fields, then multi, then numbers, each in `DatasetMeta::fields`
//! order (the order [`crate::data::Batch`] delivers them in).
//!
//! Variables (under the builder passed in, e.g. `ctr.embedding`):
//! `weight` (total categorical vocab, E) and, with number fields, `number` (F_num, E).

use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;

use crate::data::{Batch, ColumnLayout, DatasetMeta, PAD_ID};
use crate::model::nn::xavier_normal;

/// Per-field embeddings of a batch, shape (B, F, E).
#[derive(Debug, Clone)]
pub struct FieldEmbedding {
    table: Tensor,
    numbers: Option<Tensor>,
    /// (1, n_single) u32 row offsets of the single fields.
    single_offsets: Option<Tensor>,
    /// The same offsets on the host (the fused CPU lookup).
    single_offsets_host: Vec<u32>,
    /// Row offset of each multi-valued field.
    multi_offsets: Vec<u32>,
    n_single: usize,
    n_multi: usize,
    n_number: usize,
    dim: usize,
}

impl FieldEmbedding {
    /// `vb` is the embedding's own prefix (the CTR model passes `vb.pp("embedding")`).
    pub fn new(meta: &DatasetMeta, dim: usize, vb: VarBuilder) -> Result<Self> {
        if dim == 0 {
            bail!("embedding size must be at least 1");
        }
        let mut single_off = Vec::new();
        let mut multi_off = Vec::new();
        let mut n_number = 0usize;
        let mut total = 0usize;
        // Offsets follow the model's field order: singles first, then multis.
        for f in meta
            .fields
            .iter()
            .filter(|f| f.layout == ColumnLayout::Single)
        {
            single_off.push(total as u32);
            total += f.vocab_size.max(1);
        }
        for f in &meta.fields {
            match f.layout {
                ColumnLayout::Single => {}
                ColumnLayout::Multi { .. } => {
                    multi_off.push(total as u32);
                    total += f.vocab_size.max(1);
                }
                ColumnLayout::Number => n_number += 1,
            }
        }
        if meta.fields.is_empty() {
            bail!("the CTR model needs at least one field with `ctr` enabled");
        }
        if total > u32::MAX as usize {
            bail!("embedding table of {total} rows exceeds the u32 id range");
        }
        let device = vb.device().clone();
        let table = vb.get_with_hints(
            (total.max(1), dim),
            "weight",
            xavier_normal(dim, total.max(1)),
        )?;
        let numbers = if n_number > 0 {
            Some(vb.get_with_hints((n_number, dim), "number", xavier_normal(dim, n_number))?)
        } else {
            None
        };
        let n_single = single_off.len();
        let single_offsets_host = single_off.clone();
        let single_offsets = if n_single > 0 {
            Some(Tensor::from_vec(single_off, (1, n_single), &device)?)
        } else {
            None
        };
        Ok(Self {
            table,
            numbers,
            single_offsets,
            single_offsets_host,
            n_multi: multi_off.len(),
            multi_offsets: multi_off,
            n_single,
            n_number,
            dim,
        })
    }

    /// Number of fields F (single + multi + number).
    pub fn num_fields(&self) -> usize {
        self.n_single + self.n_multi + self.n_number
    }

    /// Embedding size E.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The shared categorical table (rows = total vocabulary).
    pub fn table(&self) -> &Tensor {
        &self.table
    }

    pub fn device(&self) -> &Device {
        self.table.device()
    }

    /// (B, F, E) embeddings of a batch.
    pub fn forward(&self, batch: &Batch) -> Result<Tensor> {
        self.forward_impl(batch, false)
    }

    /// `forward`; with `detach`, from the detached table (no graph).
    pub(crate) fn forward_impl(&self, batch: &Batch, detach: bool) -> Result<Tensor> {
        if let Some(out) = self.fused_forward(batch, detach)? {
            return Ok(out);
        }
        if detach {
            let mut plain = self.clone();
            plain.table = self.table.detach();
            plain.numbers = self.numbers.as_ref().map(|n| n.detach());
            return plain.forward_composed(batch);
        }
        self.forward_composed(batch)
    }

    /// One CPU op for categorical fields (single and multi-valued; no
    /// number fields): ids of the batch in, (B, F, E) out, a scatter-add back.
    fn fused_forward(&self, batch: &Batch, detach: bool) -> Result<Option<Tensor>> {
        if self.n_number > 0
            || batch.multi.len() != self.n_multi
            || !crate::model::fused::supported(&self.table)
        {
            return Ok(None);
        }
        let mut parts: Vec<&Tensor> = Vec::with_capacity(1 + self.n_multi);
        if self.n_single > 0 {
            match &batch.single {
                Some(ids) if ids.dims2()?.1 == self.n_single => parts.push(ids),
                _ => return Ok(None),
            }
        }
        let mut multi = Vec::with_capacity(self.n_multi);
        for (ids, &off) in batch.multi.iter().zip(&self.multi_offsets) {
            multi.push((off, ids.dims2()?.1));
            parts.push(ids);
        }
        if parts.iter().any(|t| t.dtype() != DType::U32) || parts.is_empty() {
            return Ok(None);
        }
        let ids = if parts.len() == 1 {
            parts[0].contiguous()?
        } else {
            Tensor::cat(&parts, 1)?
        };
        let shape = crate::model::ctr::kernel::EmbedShape {
            dim: self.dim,
            single: self.single_offsets_host.clone(),
            multi,
        };
        let table = if detach {
            self.table.detach()
        } else {
            self.table.clone()
        };
        let out = table.apply_op2(&ids, crate::model::ctr::fused_embed_op(shape))?;
        Ok(Some(out.reshape((
            batch.rows,
            self.num_fields(),
            self.dim,
        ))?))
    }

    /// The composed lookup (any device, number fields).
    pub(crate) fn forward_composed(&self, batch: &Batch) -> Result<Tensor> {
        let b = batch.rows;
        let mut parts: Vec<Tensor> = Vec::with_capacity(2 + self.n_multi);
        if let Some(off) = &self.single_offsets {
            let ids = match &batch.single {
                Some(ids) => ids,
                None => bail!(
                    "batch has no single-valued fields but the model expects {}",
                    self.n_single
                ),
            };
            let (_, fs) = ids.dims2()?;
            if fs != self.n_single {
                bail!(
                    "batch has {fs} single-valued fields, the model expects {}",
                    self.n_single
                );
            }
            let rows = ids.broadcast_add(off)?.flatten_all()?;
            parts.push(
                self.table
                    .index_select(&rows, 0)?
                    .reshape((b, fs, self.dim))?,
            );
        }
        if batch.multi.len() != self.n_multi {
            bail!(
                "batch has {} multi-valued fields, the model expects {}",
                batch.multi.len(),
                self.n_multi
            );
        }
        for (ids, &off) in batch.multi.iter().zip(&self.multi_offsets) {
            let (_, w) = ids.dims2()?;
            let rows = (ids.to_dtype(DType::U32)? + off as f64)?;
            let emb = self
                .table
                .index_select(&rows.flatten_all()?, 0)?
                .reshape((b, w, self.dim))?;
            let mask = ids.ne(PAD_ID)?.to_dtype(emb.dtype())?; // (B, W)
            let count = mask.sum_keepdim(1)?.clamp(1f64, f64::MAX)?; // (B, 1)
            let pooled = emb.broadcast_mul(&mask.unsqueeze(2)?)?.sum(1)?; // (B, E)
            parts.push(pooled.broadcast_div(&count)?.unsqueeze(1)?);
        }
        if let Some(vecs) = &self.numbers {
            let values = match &batch.numbers {
                Some(v) => v,
                None => bail!(
                    "batch has no number fields but the model expects {}",
                    self.n_number
                ),
            };
            let (_, fnum) = values.dims2()?;
            if fnum != self.n_number {
                bail!(
                    "batch has {fnum} number fields, the model expects {}",
                    self.n_number
                );
            }
            let v = values.to_dtype(vecs.dtype())?.unsqueeze(2)?; // (B, Fn, 1)
            parts.push(v.broadcast_mul(&vecs.unsqueeze(0)?)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Tensor::cat(&parts, 1)?
        })
    }

    /// Sum over fields of a (B, F, E) output, as (B, E): the first-order term when E = 1.
    pub fn sum_fields(x: &Tensor) -> Result<Tensor> {
        Ok(x.sum(D::Minus2)?)
    }
}
