//! The processed dataset: columnar, encoded, aligned row by row across the
//! CTR side (field ids) and the text side (token ids).

use serde::{Deserialize, Serialize};

/// Id 0 of every field vocabulary is padding, id 1 is out-of-vocabulary;
/// real values start at 2.
pub const PAD_ID: u32 = 0;
pub const OOV_ID: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    pub meta: DatasetMeta,
    pub train: Split,
    pub valid: Split,
    pub test: Split,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetMeta {
    /// The CTR-side fields (those with `ctr = true`), in plan order.
    pub fields: Vec<FieldMeta>,
    /// Present when the plan has a PLM (text was rendered and tokenized).
    pub text: Option<TextMeta>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldMeta {
    pub name: String,
    pub layout: ColumnLayout,
    /// Vocabulary size including PAD and OOV (for `Number`: 1).
    pub vocab_size: usize,
    /// Index → value string (index 0 = "<pad>", 1 = "<oov>"); empty for numbers.
    pub values: Vec<String>,
    /// `Number` fields: the training split's mean and standard deviation
    /// the values were standardised with (None for every other layout).
    #[serde(default)]
    pub scale: Option<NumberScale>,
}

/// Standardisation of a `number` field: `(x − mean) / std`, missing → 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NumberScale {
    pub mean: f64,
    /// Population standard deviation over the training split (1 when it is 0).
    pub std: f64,
}

impl NumberScale {
    /// The encoded value of `x` (`None` = missing, which maps to the training mean, 0).
    pub fn apply(&self, x: Option<f64>) -> f32 {
        x.map_or(0.0, |x| ((x - self.mean) / self.std) as f32)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnLayout {
    /// One id per row.
    Single,
    /// Up to `width` ids per row, PAD-filled.
    Multi { width: usize },
    /// One standardised real value per row.
    Number,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextMeta {
    pub vocab_size: usize,
    pub pad_id: u32,
    pub mask_id: u32,
    /// Ids of special tokens ([CLS], [SEP], <s>, </s>, …) never masked by PA-MLM.
    pub special_ids: Vec<u32>,
    pub max_len: usize,
    /// Template fields in tag order: tag `f + 1` in [`TokenColumn::fields`]
    /// is `text_fields[f]`.
    #[serde(default)]
    pub text_fields: Vec<String>,
}

/// One split, columnar. All columns have `rows` entries (Multi: `rows * width`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub rows: usize,
    /// 0.0 / 1.0.
    pub labels: Vec<f32>,
    /// One column per `DatasetMeta::fields` entry, same order.
    pub columns: Vec<Column>,
    pub tokens: Option<TokenColumn>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Column {
    Single(Vec<u32>),
    Multi { width: usize, ids: Vec<u32> },
    Number(Vec<f32>),
}

/// Ragged token ids: row `i` is `ids[offsets[i]..offsets[i+1]]`, special
/// tokens included, already truncated to `max_len`; no padding stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenColumn {
    pub offsets: Vec<u32>,
    pub ids: Vec<u32>,
    /// Per token, aligned with `ids`: 1 + the template field whose rendered
    /// value the token belongs to, 0 for template text and special tokens.
    /// Empty when unknown (every token then counts as template text).
    #[serde(default)]
    pub fields: Vec<u16>,
    /// Per token: its word's index within the row (the tokenizer's
    /// pre-tokenized words), [`NO_WORD`] for special tokens. Empty when unknown.
    #[serde(default)]
    pub words: Vec<u16>,
}

/// The word index of special tokens in [`TokenColumn::words`].
pub const NO_WORD: u16 = u16::MAX;

impl TokenColumn {
    pub fn len_of(&self, row: usize) -> usize {
        (self.offsets[row + 1] - self.offsets[row]) as usize
    }
    pub fn row(&self, row: usize) -> &[u32] {
        &self.ids[self.offsets[row] as usize..self.offsets[row + 1] as usize]
    }
    /// Untagged ids (every token template text, no word grouping).
    pub fn untagged(offsets: Vec<u32>, ids: Vec<u32>) -> Self {
        TokenColumn {
            offsets,
            ids,
            fields: Vec::new(),
            words: Vec::new(),
        }
    }
}
