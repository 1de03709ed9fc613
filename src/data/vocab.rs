//! A run's field vocabularies, stored with its checkpoints, and the encoder
//! that turns raw rows into model inputs with them.
//!
//! Scoring new rows must encode them exactly as the run's own evaluation
//! did, without the training data: the same value → id tables (built on the
//! training split), the same value maps, multi-value widths, bucket edges and
//! number standardisation. [`Vocabularies`] holds all of it for the CTR-side
//! fields, plus the text side's tokenizer fingerprint, and is written by the
//! runner as `vocabularies.yaml` next to the run's stage folders. YAML like
//! the stored plans: its numbers read back bit for bit (serde_json's default
//! float parsing may be off by one unit in the last place).
//!
//! [`RowEncoder`] applies the rules of `encode`: a value the vocabulary does
//! not hold (never seen in training, or seen fewer than `min_count` times)
//! is OOV (id 1); a `multi` cell's elements are split, trimmed, mapped and
//! de-duplicated, an empty cell is one OOV, and a cell with more elements
//! than the training width keeps its first `width`; `bucket` and `number`
//! values that are missing map to OOV and to the training mean. A value that
//! should be a number and is not makes the row malformed.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::batch::Batch;
use super::encode::{bucket_id, multi_elements};
use super::raw::parse_number;
use super::types::{
    Column, ColumnLayout, DatasetMeta, FieldMeta, NumberScale, Split, TextMeta, OOV_ID, PAD_ID,
};
use crate::error::invalid;
use crate::plan::{ExperimentPlan, FieldKind};

/// File name of the vocabularies in a run's checkpoint folder.
pub const VOCAB_FILE: &str = "vocabularies.yaml";
const FORMAT: &str = "clickprompt-vocabularies";
/// Bumped when the file's meaning changes; older readers refuse newer files.
pub const VOCAB_VERSION: u32 = 1;

/// Everything needed to encode raw rows as a run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vocabularies {
    pub format: String,
    pub version: u32,
    pub dataset: String,
    /// The CTR-side fields, in model order.
    pub fields: Vec<FieldVocab>,
    /// Present when the run rendered and tokenized text.
    pub text: Option<TextVocab>,
}

/// One CTR-side field: how its source column is read and its value table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldVocab {
    pub name: String,
    /// The source column it reads.
    pub column: String,
    pub kind: FieldKind,
    /// Value map applied before the lookup (categorical kinds).
    pub map: Vec<(String, String)>,
    pub layout: ColumnLayout,
    /// Index → value (0 = `<pad>`, 1 = `<oov>`); bucket labels for `bucket`; empty for `number`.
    pub values: Vec<String>,
    /// `number` fields: the training mean and standard deviation.
    pub scale: Option<NumberScale>,
}

/// The text side: the tokenizer's settings and a hash of its files, so that
/// a different tokenizer is caught before it silently changes the ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextVocab {
    pub meta: TextMeta,
    /// `data::tokenize::fingerprint` of the PLM folder the run used.
    pub tokenizer: String,
}

impl Vocabularies {
    /// The vocabularies of a processed dataset (`meta`) built from `plan`.
    pub fn new(
        plan: &ExperimentPlan,
        meta: &DatasetMeta,
        tokenizer: Option<String>,
    ) -> Result<Self> {
        let fields = meta
            .fields
            .iter()
            .map(|m| {
                let f = plan
                    .dataset
                    .fields
                    .iter()
                    .find(|f| f.name == m.name)
                    .with_context(|| {
                        format!(
                            "field {} of the processed dataset is not in the plan",
                            m.name
                        )
                    })?;
                Ok(FieldVocab {
                    name: m.name.clone(),
                    column: f.column.clone(),
                    kind: f.kind.clone(),
                    map: f.map.clone(),
                    layout: m.layout,
                    values: m.values.clone(),
                    scale: m.scale,
                })
            })
            .collect::<Result<_>>()?;
        let text = match (&meta.text, tokenizer) {
            (Some(meta), Some(tokenizer)) => Some(TextVocab {
                meta: meta.clone(),
                tokenizer,
            }),
            _ => None,
        };
        Ok(Self {
            format: FORMAT.into(),
            version: VOCAB_VERSION,
            dataset: plan.dataset.name.clone(),
            fields,
            text,
        })
    }

    /// The dataset description the model is built from.
    pub fn meta(&self) -> DatasetMeta {
        DatasetMeta {
            fields: self
                .fields
                .iter()
                .map(|f| FieldMeta {
                    name: f.name.clone(),
                    layout: f.layout,
                    vocab_size: match f.layout {
                        ColumnLayout::Number => 1,
                        _ => f.values.len(),
                    },
                    values: f.values.clone(),
                    scale: f.scale,
                })
                .collect(),
            text: self.text.as_ref().map(|t| t.meta.clone()),
        }
    }

    pub fn to_yaml(&self) -> Result<String> {
        serde_yaml::to_string(self).context("serialising the vocabularies")
    }

    pub fn from_yaml(text: &str, origin: &Path) -> Result<Self> {
        #[derive(Deserialize)]
        struct Head {
            format: String,
            version: u32,
        }
        let head: Head = serde_yaml::from_str(text).map_err(|e| {
            invalid(format!(
                "{}: not a vocabularies file: {e}",
                origin.display()
            ))
        })?;
        if head.format != FORMAT {
            return Err(invalid(format!(
                "{}: not a vocabularies file (format \"{}\")",
                origin.display(),
                head.format
            )));
        }
        if head.version > VOCAB_VERSION {
            return Err(invalid(format!(
                "{}: vocabularies version {} were written by a newer clickprompt (this one reads up to {VOCAB_VERSION})",
                origin.display(),
                head.version
            )));
        }
        let v: Self = serde_yaml::from_str(text).map_err(|e| {
            invalid(format!(
                "{}: damaged vocabularies file: {e}",
                origin.display()
            ))
        })?;
        v.check(origin)?;
        Ok(v)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
        Self::from_yaml(&text, path)
    }

    /// The encoder needs the reserved ids and sane widths; a hand-edited file
    /// must fail here rather than index out of range later.
    fn check(&self, origin: &Path) -> Result<()> {
        for f in &self.fields {
            let bad = |why: &str| {
                Err(invalid(format!(
                    "{}: field {}: {why}",
                    origin.display(),
                    f.name
                )))
            };
            match (&f.layout, &f.kind) {
                (ColumnLayout::Number, FieldKind::Number) => {
                    if f.scale
                        .is_none_or(|s| !(s.std.is_finite() && s.std > 0.0 && s.mean.is_finite()))
                    {
                        return bad("a number field needs a finite mean and a positive std");
                    }
                }
                (ColumnLayout::Multi { width }, FieldKind::Multi { sep }) => {
                    if *width == 0 || sep.is_empty() {
                        return bad("a multi field needs a width ≥ 1 and a separator");
                    }
                }
                (ColumnLayout::Single, FieldKind::Bucket { edges }) => {
                    if f.values.len() != edges.len() + 3 {
                        return bad("bucket labels do not match the edges");
                    }
                }
                (ColumnLayout::Single, FieldKind::Id | FieldKind::Category | FieldKind::Text) => {}
                _ => return bad("layout and kind disagree"),
            }
            if !matches!(f.layout, ColumnLayout::Number) && f.values.len() < 2 {
                return bad("the value table lacks <pad> and <oov>");
            }
        }
        Ok(())
    }

    /// The source columns the CTR side reads, one per field, in field order.
    pub fn columns(&self) -> Vec<&str> {
        self.fields.iter().map(|f| f.column.as_str()).collect()
    }
}

/// How one field turns its raw value into ids or a number.
enum FieldCodec {
    /// `id`, `category`, `text`: map, then look up.
    Lookup {
        map: HashMap<String, String>,
        ids: HashMap<String, u32>,
    },
    Multi {
        sep: String,
        width: usize,
        map: HashMap<String, String>,
        ids: HashMap<String, u32>,
    },
    Bucket {
        edges: Vec<f64>,
    },
    Number {
        scale: NumberScale,
    },
}

impl FieldCodec {
    fn new(f: &FieldVocab) -> Result<Self> {
        // Later keys win, as in `encode::value_map`.
        let map = || -> HashMap<String, String> { f.map.iter().cloned().collect() };
        let ids = || -> HashMap<String, u32> {
            f.values
                .iter()
                .enumerate()
                .skip(2)
                .map(|(i, v)| (v.clone(), i as u32))
                .collect()
        };
        Ok(match (&f.kind, f.layout, f.scale) {
            (FieldKind::Number, _, Some(scale)) => FieldCodec::Number { scale },
            (FieldKind::Number, _, None) => {
                return Err(invalid(format!(
                    "field {}: a number field without its training mean and deviation",
                    f.name
                )))
            }
            (FieldKind::Bucket { edges }, _, _) => FieldCodec::Bucket {
                edges: edges.clone(),
            },
            (FieldKind::Multi { sep }, ColumnLayout::Multi { width }, _) => FieldCodec::Multi {
                sep: sep.clone(),
                width,
                map: map(),
                ids: ids(),
            },
            _ => FieldCodec::Lookup {
                map: map(),
                ids: ids(),
            },
        })
    }
}

fn lookup(map: &HashMap<String, String>, ids: &HashMap<String, u32>, raw: &str) -> u32 {
    let v = map.get(raw).map_or(raw, String::as_str);
    ids.get(v).copied().unwrap_or(OOV_ID)
}

/// Where a field's encoded value goes in the batch buffers.
#[derive(Clone, Copy)]
enum Slot {
    Single(usize),
    Multi(usize),
    Number(usize),
}

/// Encodes raw rows (one string per field, in field order) into batch
/// buffers laid out as [`Batch`] wants them: single-valued ids row-major
/// (B, n_single), one (B, width) block per multi field, numbers (B, n_number).
pub struct RowEncoder {
    codecs: Vec<(FieldCodec, Slot)>,
    n_single: usize,
    widths: Vec<usize>,
    n_number: usize,
    rows: usize,
    single: Vec<u32>,
    multi: Vec<Vec<u32>>,
    numbers: Vec<f32>,
    meta: DatasetMeta,
    /// One row's values before it is committed (a bad value leaves the buffers untouched).
    /// `elems`/`seen`: a multi cell's ids and its distinct unknown values.
    row_single: Vec<u32>,
    row_multi: Vec<Vec<u32>>,
    row_numbers: Vec<f32>,
    elems: Vec<u32>,
    seen: Vec<String>,
}

impl RowEncoder {
    pub fn new(v: &Vocabularies) -> Result<Self> {
        let (mut n_single, mut widths, mut n_number) = (0, Vec::new(), 0);
        let codecs = v
            .fields
            .iter()
            .map(|f| {
                let slot = match f.layout {
                    ColumnLayout::Single => {
                        n_single += 1;
                        Slot::Single(n_single - 1)
                    }
                    ColumnLayout::Multi { width } => {
                        widths.push(width);
                        Slot::Multi(widths.len() - 1)
                    }
                    ColumnLayout::Number => {
                        n_number += 1;
                        Slot::Number(n_number - 1)
                    }
                };
                Ok((FieldCodec::new(f)?, slot))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            codecs,
            n_single,
            n_number,
            rows: 0,
            single: Vec::new(),
            multi: widths.iter().map(|_| Vec::new()).collect(),
            numbers: Vec::new(),
            meta: v.meta(),
            row_single: vec![0; n_single],
            row_multi: widths.iter().map(|&w| vec![PAD_ID; w]).collect(),
            row_numbers: vec![0.0; n_number],
            widths,
            elems: Vec::new(),
            seen: Vec::new(),
        })
    }

    /// The dataset description of the encoded columns.
    pub fn meta(&self) -> &DatasetMeta {
        &self.meta
    }

    /// Rows encoded since the last [`RowEncoder::take_batch`] / [`RowEncoder::take_split`].
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Encodes one row; `values[i]` is the raw value of field `i`. A value
    /// that cannot be encoded (a number field holding text) is an `Err`
    /// naming the field, and the row is not added.
    pub fn push<S: AsRef<str>>(&mut self, values: &[S]) -> std::result::Result<(), String> {
        if values.len() != self.codecs.len() {
            return Err(format!(
                "{} values for {} fields",
                values.len(),
                self.codecs.len()
            ));
        }
        for (i, ((codec, slot), raw)) in self.codecs.iter().zip(values).enumerate() {
            let raw = raw.as_ref();
            match (codec, *slot) {
                (FieldCodec::Lookup { map, ids }, Slot::Single(s)) => {
                    self.row_single[s] = lookup(map, ids, raw);
                }
                (FieldCodec::Bucket { edges }, Slot::Single(s)) => {
                    let x = parse_number(raw).ok_or_else(|| not_a_number(&self.meta, i, raw))?;
                    self.row_single[s] = bucket_id(x, edges);
                }
                (FieldCodec::Number { scale }, Slot::Number(s)) => {
                    let x = parse_number(raw).ok_or_else(|| not_a_number(&self.meta, i, raw))?;
                    self.row_numbers[s] = scale.apply(x);
                }
                (
                    FieldCodec::Multi {
                        sep,
                        width,
                        map,
                        ids,
                    },
                    Slot::Multi(m),
                ) => {
                    // De-duplicated on the mapped value, as in training.
                    self.elems.clear();
                    self.seen.clear();
                    for e in multi_elements(raw, sep) {
                        let v = map.get(e).map_or(e, String::as_str);
                        // Known values have distinct ids; unknown ones all
                        // become OOV, once per distinct value.
                        match ids.get(v) {
                            Some(&id) => {
                                if !self.elems.contains(&id) {
                                    self.elems.push(id);
                                }
                            }
                            None => {
                                if !self.seen.iter().any(|s| s == v) {
                                    self.seen.push(v.to_string());
                                    self.elems.push(OOV_ID);
                                }
                            }
                        }
                    }
                    let row = &mut self.row_multi[m];
                    row.fill(PAD_ID);
                    if self.elems.is_empty() {
                        row[0] = OOV_ID;
                    }
                    for (slot, &id) in row.iter_mut().zip(self.elems.iter().take(*width)) {
                        *slot = id;
                    }
                }
                _ => {
                    return Err(format!(
                        "field {}: internal layout mismatch",
                        self.meta.fields[i].name
                    ))
                }
            }
        }
        self.single.extend_from_slice(&self.row_single);
        for (dst, row) in self.multi.iter_mut().zip(&self.row_multi) {
            dst.extend_from_slice(row);
        }
        self.numbers.extend_from_slice(&self.row_numbers);
        self.rows += 1;
        Ok(())
    }

    /// The encoded rows as one batch on `device` (labels are zeros); the
    /// encoder is emptied for the next batch, keeping its buffers' capacity.
    pub fn take_batch(&mut self, device: &Device) -> Result<Batch> {
        let n = self.rows;
        let single = if self.n_single > 0 {
            Some(Tensor::from_slice(
                &self.single,
                (n, self.n_single),
                device,
            )?)
        } else {
            None
        };
        let multi = self
            .multi
            .iter()
            .zip(&self.widths)
            .map(|(ids, &w)| Tensor::from_slice(ids, (n, w), device))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let numbers = if self.n_number > 0 {
            Some(Tensor::from_slice(
                &self.numbers,
                (n, self.n_number),
                device,
            )?)
        } else {
            None
        };
        let labels = Tensor::zeros(n, candle_core::DType::F32, device)?;
        self.clear();
        Ok(Batch {
            rows: n,
            single,
            multi,
            numbers,
            labels,
            text: None,
        })
    }

    /// The encoded rows as a columnar split (no tokens, labels zero), in
    /// field order; the encoder is emptied.
    pub fn take_split(&mut self) -> Split {
        let n = self.rows;
        let columns = self
            .codecs
            .iter()
            .map(|(_, slot)| match *slot {
                Slot::Single(s) => {
                    Column::Single((0..n).map(|r| self.single[r * self.n_single + s]).collect())
                }
                Slot::Multi(m) => Column::Multi {
                    width: self.widths[m],
                    ids: self.multi[m].clone(),
                },
                Slot::Number(s) => Column::Number(
                    (0..n)
                        .map(|r| self.numbers[r * self.n_number + s])
                        .collect(),
                ),
            })
            .collect();
        self.clear();
        Split {
            rows: n,
            labels: vec![0.0; n],
            columns,
            tokens: None,
        }
    }

    fn clear(&mut self) {
        self.rows = 0;
        self.single.clear();
        for m in &mut self.multi {
            m.clear();
        }
        self.numbers.clear();
    }
}

fn not_a_number(meta: &DatasetMeta, field: usize, raw: &str) -> String {
    format!(
        "field {} needs a number, got \"{raw}\"",
        meta.fields[field].name
    )
}
