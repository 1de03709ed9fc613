//! CTR-side field encoding. Vocabularies are built on the training split
//! only: a value seen fewer than `min_count` times there (or not at all)
//! becomes OOV (id 1); id 0 is padding; real values get ids 2… ordered by
//! training frequency (descending), ties by value, so ids do not depend on
//! row order.
//!
//! * `id`, `category`, `text`: one id per row, after the field's value map
//!   (so a map that sends two values to one word merges them).
//! * `multi`: the cell is split on the separator, elements trimmed, empty
//!   ones dropped, mapped, de-duplicated in order; `width` is the largest
//!   element count over all rows; unused slots are PAD. A cell with no
//!   element gets a single OOV so that a mean over the row is defined.
//! * `bucket`: id 2 + (number of edges ≤ value); missing values → OOV; the
//!   vocabulary is fixed by the edges, not learned.
//! * `number`: standardised with the training mean and (population) standard
//!   deviation (1 when it is 0); missing values → 0 (the training mean).
//!
//! Value maps apply to the CTR side of categorical kinds; for `bucket` and
//! `number` they only change the rendered text.

use std::collections::HashMap;

use anyhow::Result;

use super::raw::{parse_numbers, RawTable, StrColumn};
use super::types::{Column, ColumnLayout, FieldMeta, NumberScale, OOV_ID, PAD_ID};
use crate::error::invalid;
use crate::plan::{FieldKind, FieldPlan};

pub struct EncodedFields {
    pub meta: Vec<FieldMeta>,
    /// Per split (train, valid, test), one column per `meta` entry.
    pub columns: [Vec<Column>; 3],
}

pub fn encode(
    table: &RawTable,
    fields: &[FieldPlan],
    splits: &[Vec<u32>; 3],
    min_count: u32,
    dataset: &str,
) -> Result<EncodedFields> {
    let mut out = EncodedFields {
        meta: Vec::new(),
        columns: [Vec::new(), Vec::new(), Vec::new()],
    };
    for f in fields.iter().filter(|f| f.ctr) {
        let who = format!("field '{}' of dataset '{dataset}'", f.name);
        let col = table.require(&f.column, &who)?;
        let (meta, cols) = match &f.kind {
            FieldKind::Id | FieldKind::Category | FieldKind::Text => {
                single(f, col, splits, min_count)
            }
            FieldKind::Multi { sep } => multi(f, col, sep, splits, min_count, &who)?,
            FieldKind::Bucket { edges } => bucket(table, f, col, edges, splits, &who)?,
            FieldKind::Number => number(table, f, col, splits, &who)?,
        };
        out.meta.push(meta);
        for (dst, c) in out.columns.iter_mut().zip(cols) {
            dst.push(c);
        }
    }
    Ok(out)
}

/// Interns mapped strings: `index[code]` is the mapped value's index in `values`.
struct Mapped<'a> {
    values: Vec<&'a str>,
    lookup: HashMap<&'a str, u32>,
}

impl<'a> Mapped<'a> {
    fn new() -> Self {
        Self {
            values: Vec::new(),
            lookup: HashMap::new(),
        }
    }
    fn intern(&mut self, v: &'a str) -> u32 {
        *self.lookup.entry(v).or_insert_with(|| {
            self.values.push(v);
            (self.values.len() - 1) as u32
        })
    }
}

/// A field's value map as a lookup (a key given twice: the later one wins).
pub fn value_map(map: &[(String, String)]) -> HashMap<&str, &str> {
    map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The elements of a `multi` cell: split on `sep`, trimmed, empty ones dropped
/// (before the value map and de-duplication).
pub fn multi_elements<'a>(cell: &'a str, sep: &'a str) -> impl Iterator<Item = &'a str> {
    cell.split(sep).map(str::trim).filter(|e| !e.is_empty())
}

/// The id of a `bucket` value: 2 + (number of edges ≤ x); missing → OOV.
pub fn bucket_id(x: Option<f64>, edges: &[f64]) -> u32 {
    match x {
        Some(x) => 2 + edges.partition_point(|e| *e <= x) as u32,
        None => OOV_ID,
    }
}

/// Vocabulary from training counts: returns (id per mapped index, values table).
fn vocabulary(mapped: &Mapped<'_>, counts: &[u64], min_count: u32) -> (Vec<u32>, Vec<String>) {
    let min = u64::from(min_count.max(1));
    let mut kept: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] >= min).collect();
    kept.sort_by(|&a, &b| {
        counts[b]
            .cmp(&counts[a])
            .then_with(|| mapped.values[a].cmp(mapped.values[b]))
    });
    let mut id_of = vec![OOV_ID; counts.len()];
    let mut values = vec!["<pad>".to_string(), "<oov>".to_string()];
    for (rank, &i) in kept.iter().enumerate() {
        id_of[i] = rank as u32 + 2;
        values.push(mapped.values[i].to_string());
    }
    (id_of, values)
}

fn single(
    f: &FieldPlan,
    col: &StrColumn,
    splits: &[Vec<u32>; 3],
    min_count: u32,
) -> (FieldMeta, [Column; 3]) {
    let map = value_map(&f.map);
    let mut mapped = Mapped::new();
    let code_to_mapped: Vec<u32> = col
        .dict
        .iter()
        .map(|v| mapped.intern(map.get(v.as_str()).copied().unwrap_or(v)))
        .collect();
    let mut counts = vec![0u64; mapped.values.len()];
    for &r in &splits[0] {
        counts[code_to_mapped[col.codes[r as usize] as usize] as usize] += 1;
    }
    let (id_of, values) = vocabulary(&mapped, &counts, min_count);
    let code_to_id: Vec<u32> = code_to_mapped.iter().map(|&m| id_of[m as usize]).collect();
    let cols = splits.clone().map(|rows| {
        Column::Single(
            rows.iter()
                .map(|&r| code_to_id[col.codes[r as usize] as usize])
                .collect(),
        )
    });
    (
        FieldMeta {
            name: f.name.clone(),
            layout: ColumnLayout::Single,
            vocab_size: values.len(),
            values,
            scale: None,
        },
        cols,
    )
}

fn multi(
    f: &FieldPlan,
    col: &StrColumn,
    sep: &str,
    splits: &[Vec<u32>; 3],
    min_count: u32,
    who: &str,
) -> Result<(FieldMeta, [Column; 3])> {
    if sep.is_empty() {
        return Err(invalid(format!(
            "{who}: the multi-value separator is empty"
        )));
    }
    let map = value_map(&f.map);
    let mut mapped = Mapped::new();
    // Elements (mapped indices) of every distinct cell.
    let elems: Vec<Vec<u32>> = col
        .dict
        .iter()
        .map(|cell| {
            let mut v: Vec<u32> = Vec::new();
            for e in multi_elements(cell, sep) {
                let m = mapped.intern(map.get(e).copied().unwrap_or(e));
                if !v.contains(&m) {
                    v.push(m);
                }
            }
            v
        })
        .collect();
    let mut counts = vec![0u64; mapped.values.len()];
    for &r in &splits[0] {
        for &m in &elems[col.codes[r as usize] as usize] {
            counts[m as usize] += 1;
        }
    }
    let (id_of, values) = vocabulary(&mapped, &counts, min_count);
    let width = splits
        .iter()
        .flatten()
        .map(|&r| elems[col.codes[r as usize] as usize].len())
        .max()
        .unwrap_or(1)
        .max(1);
    let cols = splits.clone().map(|rows| {
        let mut ids = vec![PAD_ID; rows.len() * width];
        for (i, &r) in rows.iter().enumerate() {
            let e = &elems[col.codes[r as usize] as usize];
            if e.is_empty() {
                ids[i * width] = OOV_ID;
            }
            for (k, &m) in e.iter().enumerate() {
                ids[i * width + k] = id_of[m as usize];
            }
        }
        Column::Multi { width, ids }
    });
    Ok((
        FieldMeta {
            name: f.name.clone(),
            layout: ColumnLayout::Multi { width },
            vocab_size: values.len(),
            values,
            scale: None,
        },
        cols,
    ))
}

fn fmt_edge(x: f64) -> String {
    format!("{x}")
}

fn bucket(
    table: &RawTable,
    f: &FieldPlan,
    col: &StrColumn,
    edges: &[f64],
    splits: &[Vec<u32>; 3],
    who: &str,
) -> Result<(FieldMeta, [Column; 3])> {
    if edges.windows(2).any(|w| w[0] >= w[1]) || edges.iter().any(|e| !e.is_finite()) {
        return Err(invalid(format!(
            "{who}: bucket edges {edges:?} must be finite and strictly ascending"
        )));
    }
    let nums = parse_numbers(table, col, &f.column, who)?;
    let code_to_id: Vec<u32> = nums.iter().map(|&x| bucket_id(x, edges)).collect();
    let mut values = vec!["<pad>".to_string(), "<oov>".to_string()];
    for b in 0..=edges.len() {
        values.push(match b {
            0 if edges.is_empty() => "all".to_string(),
            0 => format!("<{}", fmt_edge(edges[0])),
            b if b == edges.len() => format!(">={}", fmt_edge(edges[b - 1])),
            b => format!("[{},{})", fmt_edge(edges[b - 1]), fmt_edge(edges[b])),
        });
    }
    let cols = splits.clone().map(|rows| {
        Column::Single(
            rows.iter()
                .map(|&r| code_to_id[col.codes[r as usize] as usize])
                .collect(),
        )
    });
    Ok((
        FieldMeta {
            name: f.name.clone(),
            layout: ColumnLayout::Single,
            vocab_size: values.len(),
            values,
            scale: None,
        },
        cols,
    ))
}

fn number(
    table: &RawTable,
    f: &FieldPlan,
    col: &StrColumn,
    splits: &[Vec<u32>; 3],
    who: &str,
) -> Result<(FieldMeta, [Column; 3])> {
    let nums = parse_numbers(table, col, &f.column, who)?;
    // Two passes: E[x²] − mean² loses everything on values like timestamps.
    let train = || {
        splits[0]
            .iter()
            .filter_map(|&r| nums[col.codes[r as usize] as usize])
    };
    let n = train().count();
    let mean = if n > 0 {
        train().sum::<f64>() / n as f64
    } else {
        0.0
    };
    let var = if n > 0 {
        train().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64
    } else {
        0.0
    };
    let scale = NumberScale {
        mean,
        std: if var > 0.0 { var.sqrt() } else { 1.0 },
    };
    let code_to_val: Vec<f32> = nums.iter().map(|&x| scale.apply(x)).collect();
    let cols = splits.clone().map(|rows| {
        Column::Number(
            rows.iter()
                .map(|&r| code_to_val[col.codes[r as usize] as usize])
                .collect(),
        )
    });
    Ok((
        FieldMeta {
            name: f.name.clone(),
            layout: ColumnLayout::Number,
            vocab_size: 1,
            values: Vec::new(),
            scale: Some(scale),
        },
        cols,
    ))
}
