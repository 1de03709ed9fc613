//! Summary figures of a processed dataset (what `clickprompt data inspect` prints).

use std::fmt::{self, Write as _};

use super::types::{Column, Dataset, Split, OOV_ID};
use super::Loaded;

pub struct FieldSummary {
    pub name: String,
    pub layout: String,
    pub vocab_size: usize,
    /// Share of OOV ids per split (for multi: of the non-padding slots); `None` for numbers.
    pub oov: [Option<f64>; 3],
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LengthSummary {
    pub min: usize,
    pub median: usize,
    pub p95: usize,
    pub max: usize,
}

pub struct Summary {
    pub rows: [usize; 3],
    pub positive_rate: [f64; 3],
    pub fields: Vec<FieldSummary>,
    /// Token lengths per split, when the dataset has text.
    pub lengths: Option<[Option<LengthSummary>; 3]>,
}

fn oov_share(col: &Column) -> Option<f64> {
    let (n, oov) = match col {
        Column::Single(ids) => (ids.len(), ids.iter().filter(|&&i| i == OOV_ID).count()),
        Column::Multi { ids, .. } => (
            ids.iter().filter(|&&i| i != super::PAD_ID).count(),
            ids.iter().filter(|&&i| i == OOV_ID).count(),
        ),
        Column::Number(_) => return None,
    };
    Some(if n == 0 { 0.0 } else { oov as f64 / n as f64 })
}

/// Min, median, 95th percentile (nearest rank) and max of the row lengths.
pub fn lengths(split: &Split) -> Option<LengthSummary> {
    let tok = split.tokens.as_ref()?;
    let mut l: Vec<usize> = (0..split.rows).map(|r| tok.len_of(r)).collect();
    if l.is_empty() {
        return None;
    }
    l.sort_unstable();
    let rank = |q: f64| l[((q * l.len() as f64).ceil() as usize).clamp(1, l.len()) - 1];
    Some(LengthSummary {
        min: l[0],
        median: rank(0.5),
        p95: rank(0.95),
        max: l[l.len() - 1],
    })
}

pub fn summarize(d: &Dataset) -> Summary {
    let splits = [&d.train, &d.valid, &d.test];
    let rate = |s: &Split| {
        if s.rows == 0 {
            0.0
        } else {
            s.labels.iter().map(|&x| f64::from(x)).sum::<f64>() / s.rows as f64
        }
    };
    let fields = d
        .meta
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| FieldSummary {
            name: f.name.clone(),
            layout: match f.layout {
                super::ColumnLayout::Single => "single".into(),
                super::ColumnLayout::Multi { width } => format!("multi×{width}"),
                super::ColumnLayout::Number => "number".into(),
            },
            vocab_size: f.vocab_size,
            oov: splits.map(|s| oov_share(&s.columns[i])),
        })
        .collect();
    Summary {
        rows: splits.map(|s| s.rows),
        positive_rate: splits.map(rate),
        fields,
        lengths: d.meta.text.as_ref().map(|_| splits.map(lengths)),
    }
}

/// The full report for a loaded dataset.
pub struct Report<'a> {
    pub dataset_name: &'a str,
    pub loaded: &'a Loaded,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.loaded;
        let s = summarize(&l.dataset);
        let names = super::SPLIT_NAMES;
        writeln!(f, "dataset {}", self.dataset_name)?;
        if l.cache.hit {
            writeln!(
                f,
                "cache   {} (hit, loaded in {:.3} s)",
                l.cache.path.display(),
                l.stats.total().as_secs_f64()
            )?;
        } else {
            let mut phases = String::new();
            for (name, d) in &l.stats.timings {
                let _ = write!(phases, "{name} {:.3}, ", d.as_secs_f64());
            }
            writeln!(
                f,
                "cache   {} (miss: built in {:.3} s — {})",
                l.cache.path.display(),
                l.stats.total().as_secs_f64(),
                phases.trim_end_matches(", ")
            )?;
        }
        let src = &l.stats.source;
        if src.skipped_bad_rows > 0 || src.dropped_unjoined > 0 {
            writeln!(
                f,
                "source  {} rows kept; {} malformed rows skipped; {} interactions without a user/item row dropped",
                src.rows, src.skipped_bad_rows, src.dropped_unjoined
            )?;
            for e in &src.skipped_examples {
                writeln!(f, "        skipped {e}")?;
            }
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:<10}{:>10}{:>10}{:>10}",
            "", names[0], names[1], names[2]
        )?;
        writeln!(
            f,
            "{:<10}{:>10}{:>10}{:>10}",
            "rows", s.rows[0], s.rows[1], s.rows[2]
        )?;
        writeln!(
            f,
            "{:<10}{:>10.4}{:>10.4}{:>10.4}",
            "positive", s.positive_rate[0], s.positive_rate[1], s.positive_rate[2]
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<16}{:<10}{:>8}{:>12}{:>12}{:>12}",
            "field", "layout", "vocab", "OOV train", "OOV valid", "OOV test"
        )?;
        let pct = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{:.2}%", 100.0 * x));
        for fs in &s.fields {
            writeln!(
                f,
                "{:<16}{:<10}{:>8}{:>12}{:>12}{:>12}",
                fs.name,
                fs.layout,
                fs.vocab_size,
                pct(fs.oov[0]),
                pct(fs.oov[1]),
                pct(fs.oov[2])
            )?;
        }
        if let (Some(lens), Some(meta)) = (&s.lengths, &l.dataset.meta.text) {
            writeln!(f)?;
            writeln!(
                f,
                "tokens (max_len {}, vocab {}, pad {}, mask {})",
                meta.max_len, meta.vocab_size, meta.pad_id, meta.mask_id
            )?;
            writeln!(
                f,
                "{:<10}{:>8}{:>8}{:>8}{:>8}",
                "", "min", "median", "p95", "max"
            )?;
            for (name, ls) in names.iter().zip(lens) {
                if let Some(ls) = ls {
                    writeln!(
                        f,
                        "{:<10}{:>8}{:>8}{:>8}{:>8}",
                        name, ls.min, ls.median, ls.p95, ls.max
                    )?;
                }
            }
            let truncated: usize = [&l.dataset.train, &l.dataset.valid, &l.dataset.test]
                .iter()
                .filter_map(|sp| {
                    sp.tokens.as_ref().map(|t| {
                        (0..sp.rows)
                            .filter(|&r| t.len_of(r) >= meta.max_len)
                            .count()
                    })
                })
                .sum();
            if truncated > 0 {
                writeln!(f, "{truncated} rows reach max_len (possibly truncated)")?;
            }
            writeln!(f)?;
            for smp in &l.samples {
                writeln!(
                    f,
                    "[{} row {}] ({} tokens) {}",
                    smp.split, smp.row, smp.tokens, smp.text
                )?;
            }
        }
        Ok(())
    }
}
