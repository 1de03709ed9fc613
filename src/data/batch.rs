//! Batches on a device. A split is uploaded once (columns as tensors, tokens
//! padded to the plan's max length); each batch is then a handful of
//! `index_select`s plus a narrow to the batch's longest row, so padding is
//! per batch and no per-row work happens on the host beyond ordering.

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::types::{Column, DatasetMeta, Split, TokenColumn};

/// Model inputs for one batch; field order is: every `Single` field, then
/// every `Multi` field, then every `Number` field, each in `DatasetMeta::fields` order.
#[derive(Debug, Clone)]
pub struct Batch {
    pub rows: usize,
    /// (B, n_single) u32 field-local ids, or None when no single-valued field feeds the CTR side.
    pub single: Option<Tensor>,
    /// One (B, width) u32 tensor of field-local ids (PAD = 0) per multi-valued field.
    pub multi: Vec<Tensor>,
    /// (B, n_number) f32, or None.
    pub numbers: Option<Tensor>,
    /// (B,) f32 labels 0/1.
    pub labels: Tensor,
    pub text: Option<TextBatch>,
}

#[derive(Debug, Clone)]
pub struct TextBatch {
    /// (B, T) u32 token ids, T = longest row in this batch; padded with the pad id.
    pub ids: Tensor,
    /// (B, T) f32, 1 on real tokens, 0 on padding.
    pub mask: Tensor,
    /// Real length of each row (host copy, for bucketing statistics).
    pub lengths: Vec<usize>,
    /// (B, T) u32 token tags, [`unit_tag`]`(field, word)` (PA-MLM's word and
    /// field masking, per-field accuracies); None when the split has no tags.
    pub units: Option<Tensor>,
}

/// A token's tag in [`TextBatch::units`]: `field` (1 + template field, 0 =
/// template text) in the high half, its word index in the low half.
pub fn unit_tag(field: u16, word: u16) -> u32 {
    (u32::from(field) << 16) | u32::from(word)
}

/// (field, word) of a [`unit_tag`].
pub fn split_unit_tag(tag: u32) -> (u16, u16) {
    ((tag >> 16) as u16, tag as u16)
}

/// Token ids of a split on a device, padded to its longest row.
#[derive(Clone)]
struct DeviceTokens {
    ids: Tensor,
    lengths: Vec<usize>,
    units: Option<Tensor>,
}

/// A split resident on a device.
pub struct DeviceSplit {
    pub rows: usize,
    single: Option<Tensor>,
    multi: Vec<Tensor>,
    numbers: Option<Tensor>,
    labels: Tensor,
    tokens: Option<DeviceTokens>,
    device: Device,
}

impl DeviceSplit {
    pub fn new(split: &Split, meta: &DatasetMeta, device: &Device) -> Result<Self> {
        let n = split.rows;
        let mut single_cols: Vec<&[u32]> = Vec::new();
        let mut multi = Vec::new();
        let mut number_cols: Vec<&[f32]> = Vec::new();
        for col in &split.columns {
            match col {
                Column::Single(ids) => single_cols.push(ids),
                Column::Multi { width, ids } => {
                    multi.push(Tensor::from_slice(ids, (n, *width), device)?)
                }
                Column::Number(v) => number_cols.push(v),
            }
        }
        let single = if single_cols.is_empty() {
            None
        } else {
            Some(interleave_u32(&single_cols, n, device)?)
        };
        let numbers = if number_cols.is_empty() {
            None
        } else {
            let mut flat = vec![0f32; n * number_cols.len()];
            let w = number_cols.len();
            for (f, col) in number_cols.iter().enumerate() {
                for (r, v) in col.iter().enumerate() {
                    flat[r * w + f] = *v;
                }
            }
            Some(Tensor::from_vec(flat, (n, w), device)?)
        };
        let labels = Tensor::from_slice(&split.labels, n, device)?;
        let tokens = match (&split.tokens, &meta.text) {
            (Some(tok), Some(text)) => Some(pad_tokens(tok, n, text.max_len, text.pad_id, device)?),
            _ => None,
        };
        Ok(Self {
            rows: n,
            single,
            multi,
            numbers,
            labels,
            tokens,
            device: device.clone(),
        })
    }

    /// Token length of every row (empty when the split has no text).
    pub fn token_lengths(&self) -> &[usize] {
        self.tokens
            .as_ref()
            .map(|t| t.lengths.as_slice())
            .unwrap_or(&[])
    }

    /// The same rows without their text (shares the tensors): batches of a
    /// model that reads only the fields skip gathering and masking tokens.
    pub fn without_text(&self) -> Self {
        Self {
            tokens: None,
            ..self.clone_handles()
        }
    }

    /// A second handle on the same split (the tensors are shared, not copied).
    pub fn clone_handles(&self) -> Self {
        Self {
            rows: self.rows,
            single: self.single.clone(),
            multi: self.multi.clone(),
            numbers: self.numbers.clone(),
            labels: self.labels.clone(),
            tokens: self.tokens.clone(),
            device: self.device.clone(),
        }
    }

    /// The split restricted to `rows` (in that order).
    pub fn subset(&self, rows: &[usize]) -> Result<Self> {
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.rows) {
            anyhow::bail!("row {bad} outside a split of {} rows", self.rows);
        }
        let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let idx = Tensor::from_vec(idx, rows.len(), &self.device)?;
        let take = |t: &Tensor| t.index_select(&idx, 0);
        Ok(Self {
            rows: rows.len(),
            single: self.single.as_ref().map(take).transpose()?,
            multi: self
                .multi
                .iter()
                .map(take)
                .collect::<candle_core::Result<_>>()?,
            numbers: self.numbers.as_ref().map(take).transpose()?,
            labels: take(&self.labels)?,
            tokens: match &self.tokens {
                Some(t) => Some(DeviceTokens {
                    ids: take(&t.ids)?,
                    lengths: rows.iter().map(|&r| t.lengths[r]).collect(),
                    units: t.units.as_ref().map(take).transpose()?,
                }),
                None => None,
            },
            device: self.device.clone(),
        })
    }

    /// The rows' batch: text cut to the longest of them, with its mask.
    pub fn batch(&self, rows: &[usize]) -> Result<Batch> {
        let s = self.subset(rows)?;
        let text = match s.tokens {
            Some(DeviceTokens {
                ids,
                lengths,
                units,
            }) => {
                let t = lengths.iter().copied().max().unwrap_or(1).max(1);
                let ids = ids.narrow(1, 0, t)?;
                let units = units.map(|u| u.narrow(1, 0, t)).transpose()?;
                let len_t = Tensor::from_vec(
                    lengths.iter().map(|&l| l as u32).collect::<Vec<_>>(),
                    (rows.len(), 1),
                    &self.device,
                )?;
                let pos = Tensor::arange(0u32, t as u32, &self.device)?.unsqueeze(0)?;
                let mask = pos.broadcast_lt(&len_t)?.to_dtype(DType::F32)?;
                Some(TextBatch {
                    ids,
                    mask,
                    lengths,
                    units,
                })
            }
            None => None,
        };
        Ok(Batch {
            rows: rows.len(),
            single: s.single,
            multi: s.multi,
            numbers: s.numbers,
            labels: s.labels,
            text,
        })
    }
}

fn interleave_u32(cols: &[&[u32]], n: usize, device: &Device) -> Result<Tensor> {
    // Stacking (F, N) then transposing keeps this a tensor op instead of a row loop.
    let flat: Vec<u32> = cols.iter().flat_map(|c| c.iter().copied()).collect();
    Ok(Tensor::from_vec(flat, (cols.len(), n), device)?
        .t()?
        .contiguous()?)
}

fn pad_tokens(
    tok: &TokenColumn,
    n: usize,
    max_len: usize,
    pad: u32,
    device: &Device,
) -> Result<DeviceTokens> {
    let width = (0..n)
        .map(|r| tok.len_of(r))
        .max()
        .unwrap_or(1)
        .clamp(1, max_len.max(1));
    let tagged = tok.fields.len() == tok.ids.len() && tok.words.len() == tok.ids.len();
    let mut flat = vec![pad; n * width];
    let mut units = vec![unit_tag(0, crate::data::NO_WORD); if tagged { n * width } else { 0 }];
    let mut lengths = Vec::with_capacity(n);
    for r in 0..n {
        let (a, b) = (tok.offsets[r] as usize, tok.offsets[r + 1] as usize);
        let l = (b - a).min(width);
        flat[r * width..r * width + l].copy_from_slice(&tok.ids[a..a + l]);
        if tagged {
            for (u, (&f, &w)) in units[r * width..r * width + l]
                .iter_mut()
                .zip(tok.fields[a..a + l].iter().zip(&tok.words[a..a + l]))
            {
                *u = unit_tag(f, w);
            }
        }
        lengths.push(l);
    }
    let ids = Tensor::from_vec(flat, (n, width), device).context("uploading token ids")?;
    let units = if tagged {
        Some(Tensor::from_vec(units, (n, width), device).context("uploading token tags")?)
    } else {
        None
    };
    Ok(DeviceTokens {
        ids,
        lengths,
        units,
    })
}

/// Batch orders for one epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderSpec {
    pub batch: usize,
    pub shuffle: bool,
    /// Sort by token length inside windows of `batch * 50` rows, then shuffle batches.
    pub bucket_by_length: bool,
    pub seed: u64,
    pub epoch: usize,
    /// Use at most this many rows (after shuffling).
    pub max_rows: Option<usize>,
}

/// `n` distinct rows of `rows` drawn from `seed`, in ascending order (all
/// rows when `n` ≥ `rows`).
pub fn sample_rows(rows: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows).collect();
    if n < rows {
        order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(
            seed ^ 0x0A11_D0E5_CAFE_F00D,
        ));
        order.truncate(n);
        order.sort_unstable();
    }
    order
}

/// Row indices grouped into batches. Deterministic for (seed, epoch).
pub fn epoch_batches(rows: usize, token_lengths: &[usize], spec: OrderSpec) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..rows).collect();
    if let Some(m) = spec.max_rows.filter(|&m| m < rows) {
        // One subset for the whole stage, drawn from the seed alone: `max_rows`
        // is a budget of rows, each seen once per epoch, not a fresh sample
        // per epoch (which would see ~epochs × m distinct rows).
        if spec.shuffle {
            order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(
                spec.seed ^ 0x5B5E_7D0F_2A1C_3E49,
            ));
        }
        order.truncate(m);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        spec.seed ^ (spec.epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    if spec.shuffle {
        order.shuffle(&mut rng);
    }
    let batch = spec.batch.max(1);
    if spec.bucket_by_length && token_lengths.len() == rows {
        for window in order.chunks_mut(batch * 50) {
            window.sort_by_key(|&r| token_lengths[r]);
        }
    }
    let mut batches: Vec<Vec<usize>> = order.chunks(batch).map(|c| c.to_vec()).collect();
    if spec.bucket_by_length && spec.shuffle {
        batches.shuffle(&mut rng);
    }
    batches
}
