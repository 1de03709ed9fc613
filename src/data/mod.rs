//! Data pipeline: sources → labels → splits → field encoding → text
//! rendering → tokenization → cache → batches.
//!
//! [`load`] turns an experiment's dataset declaration into a [`Dataset`]:
//! CTR-side field ids per split and, when the experiment has a PLM, the
//! rendered text's token ids, row-aligned. The result is cached on disk.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub mod batch;
pub mod cache;
pub mod encode;
pub mod input;
pub mod inspect;
pub mod label;
pub mod raw;
pub mod render;
pub mod sources;
pub mod split;
pub mod synthetic;
pub mod tokenize;
pub mod types;
pub mod vocab;

pub use batch::{epoch_batches, sample_rows, Batch, DeviceSplit, OrderSpec, TextBatch};
pub use render::{render, Template};
pub use sources::SourceStats;
pub use tokenize::TextTokenizer;
pub use types::*;

use crate::error::invalid;
use crate::plan::ExperimentPlan;

pub struct LoadOptions {
    /// Folder of cached datasets.
    pub cache_dir: PathBuf,
    /// Ignore (and overwrite) a cached copy.
    pub rebuild: bool,
    /// The local PLM folder (tokenizer.json or vocab.txt); needed when the plan has a PLM.
    pub tokenizer_dir: Option<PathBuf>,
}

pub struct Loaded {
    pub dataset: Dataset,
    pub cache: CacheInfo,
    pub stats: LoadStats,
    /// A rendered text from each non-empty split (empty without a PLM).
    pub samples: Vec<SampleText>,
}

#[derive(Debug, Clone)]
pub struct CacheInfo {
    pub path: PathBuf,
    pub hit: bool,
    pub key: String,
}

#[derive(Debug, Clone, Default)]
pub struct LoadStats {
    pub source: SourceStats,
    /// Wall time per phase, in order.
    pub timings: Vec<(&'static str, Duration)>,
}

impl LoadStats {
    pub fn total(&self) -> Duration {
        self.timings.iter().map(|(_, d)| *d).sum()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleText {
    pub split: String,
    /// Row within the split.
    pub row: usize,
    pub text: String,
    pub tokens: usize,
}

pub const SPLIT_NAMES: [&str; 3] = ["train", "valid", "test"];

/// Loads the plan's dataset from the cache, or builds and caches it.
pub fn load(plan: &ExperimentPlan, opts: &LoadOptions) -> Result<Loaded> {
    let t0 = Instant::now();
    let text = text_inputs(plan, opts)?;
    let files = sources::files(&plan.dataset.source);
    let key = cache::key(
        &cache::KeyParts {
            format: cache::FORMAT_VERSION,
            crate_version: env!("CARGO_PKG_VERSION"),
            dataset: &plan.dataset,
            template: text.as_ref().map(|t| t.0),
            tokenizer: match &text {
                Some((_, dir, _)) => Some(tokenize::fingerprint(dir)?),
                None => None,
            },
            max_len: text.as_ref().map(|t| t.2),
        },
        &files,
    )?;
    let path = cache::path_for(&opts.cache_dir, &plan.dataset.name, &key);
    if !opts.rebuild {
        if let Some(c) = cache::read(&path, &key) {
            return Ok(Loaded {
                dataset: c.dataset,
                cache: CacheInfo {
                    path,
                    hit: true,
                    key,
                },
                stats: LoadStats {
                    source: c.source,
                    timings: vec![("cache read", t0.elapsed())],
                },
                samples: c.samples,
            });
        }
    }
    let tokenizer = match &text {
        Some((_, dir, max_len)) => Some(TextTokenizer::from_dir(dir, *max_len)?),
        None => None,
    };
    let mut stats = LoadStats::default();
    stats.timings.push(("key", t0.elapsed()));
    let built = build(plan, tokenizer.as_ref(), &mut stats)?;
    let t = Instant::now();
    cache::write(&path, &key, &built.0, &stats.source, &built.1)?;
    stats.timings.push(("cache write", t.elapsed()));
    Ok(Loaded {
        dataset: built.0,
        cache: CacheInfo {
            path,
            hit: false,
            key,
        },
        stats,
        samples: built.1,
    })
}

/// (template, tokenizer folder, max_len) when the plan produces text.
fn text_inputs<'a>(
    plan: &'a ExperimentPlan,
    opts: &'a LoadOptions,
) -> Result<Option<(&'a crate::plan::TemplatePlan, &'a std::path::Path, usize)>> {
    let Some(plm) = &plan.plm else {
        return Ok(None);
    };
    let template = plan.template.as_ref().ok_or_else(|| {
        invalid(format!(
            "experiment '{}' uses PLM '{}' but has no template",
            plan.name, plm.name
        ))
    })?;
    let dir = opts.tokenizer_dir.as_deref().ok_or_else(|| {
        invalid(format!(
            "experiment '{}' uses PLM '{}' but no local model folder was given for its tokenizer",
            plan.name, plm.name
        ))
    })?;
    Ok(Some((template, dir, plm.max_len)))
}

/// Builds the dataset without the cache: read → labels → split → encode →
/// (render → tokenize when `tokenizer` is given). Appends phase timings to `stats`.
pub fn build(
    plan: &ExperimentPlan,
    tokenizer: Option<&TextTokenizer>,
    stats: &mut LoadStats,
) -> Result<(Dataset, Vec<SampleText>)> {
    let d = &plan.dataset;
    let mut t = Instant::now();
    let mut lap = |stats: &mut LoadStats, name: &'static str| {
        stats.timings.push((name, t.elapsed()));
        t = Instant::now();
    };
    let (table, source) = sources::read(d)?;
    stats.source = source;
    lap(stats, "read");
    let labels = label::labels(&table, &d.label, &d.name)?;
    let rows = split::split(&table, &d.split, &d.name)?;
    lap(stats, "label+split");
    let enc = encode::encode(&table, &d.fields, &rows, d.min_count, &d.name)?;
    lap(stats, "encode");

    let mut tokens: [Option<TokenColumn>; 3] = [None, None, None];
    let mut samples = Vec::new();
    let text_meta = match (tokenizer, &plan.template) {
        (Some(tok), Some(tp)) => {
            let template = Template::new(tp, &d.fields)?;
            let mut texts = Vec::with_capacity(3);
            for r in &rows {
                texts.push(render::render_rows(&template, &table, r, &d.name)?);
            }
            lap(stats, "render");
            for (s, tx) in texts.iter().enumerate() {
                let col = tok.encode_texts(tx)?;
                if !tx.is_empty() {
                    samples.push(SampleText {
                        split: SPLIT_NAMES[s].to_string(),
                        row: 0,
                        text: tx.get(0).to_string(),
                        tokens: col.len_of(0),
                    });
                }
                tokens[s] = Some(col);
            }
            lap(stats, "tokenize");
            Some(TextMeta {
                text_fields: template.fields.iter().map(|f| f.name.clone()).collect(),
                ..tok.meta().clone()
            })
        }
        (Some(_), None) => {
            return Err(invalid(format!(
                "experiment '{}' uses a PLM but has no template",
                plan.name
            )))
        }
        _ => None,
    };

    let [c0, c1, c2] = enc.columns;
    let [t0, t1, t2] = tokens;
    let mk = |r: &Vec<u32>, columns: Vec<Column>, tokens: Option<TokenColumn>| Split {
        rows: r.len(),
        labels: r.iter().map(|&i| labels[i as usize]).collect(),
        columns,
        tokens,
    };
    let dataset = Dataset {
        meta: DatasetMeta {
            fields: enc.meta,
            text: text_meta,
        },
        train: mk(&rows[0], c0, t0),
        valid: mk(&rows[1], c1, t1),
        test: mk(&rows[2], c2, t2),
    };
    Ok((dataset, samples))
}

/// The source table of a dataset and its (train, valid, test) row indices,
/// as `build` splits them: the raw rows behind each split, e.g. to write the
/// test rows out and score them with `predict`.
pub fn read_splits(d: &crate::plan::DatasetPlan) -> Result<(raw::RawTable, [Vec<u32>; 3])> {
    let (table, _) = sources::read(d)?;
    let rows = split::split(&table, &d.split, &d.name)?;
    Ok((table, rows))
}

/// Adds where the failing dataset was declared to a load error, keeping an
/// invalid-input error invalid input (its message is what users see).
pub fn with_declaration(
    err: anyhow::Error,
    file: &std::path::Path,
    plan: &ExperimentPlan,
) -> anyhow::Error {
    let note = format!(
        "note: while loading dataset `{}` for experiment `{}` of {}",
        plan.dataset.name,
        plan.name,
        file.display()
    );
    match err
        .chain()
        .find_map(|e| e.downcast_ref::<crate::error::InvalidInput>())
    {
        Some(inv) => invalid(format!("{}\n{note}", inv.0)),
        None => err.context(note),
    }
}

impl Dataset {
    pub fn splits(&self) -> [(&'static str, &Split); 3] {
        [
            ("train", &self.train),
            ("valid", &self.valid),
            ("test", &self.test),
        ]
    }
}
