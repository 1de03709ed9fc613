//! The processed dataset on disk, keyed by everything it depends on: the
//! source files' paths, sizes and modification times, the dataset
//! declaration, the template and the tokenizer (content hash, max length)
//! when text is produced, and the pipeline's format version. bincode with
//! fixed-width integers: the big arrays decode at memory speed.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::sources::SourceStats;
use super::types::Dataset;
use super::SampleText;
use crate::error::invalid;

/// Bump whenever processing changes what a cached dataset holds.
pub const FORMAT_VERSION: u32 = 3;

const MAGIC: &str = "clickprompt-dataset";

#[derive(Serialize, Deserialize)]
pub struct CacheFile {
    pub magic: String,
    pub key: String,
    pub dataset: Dataset,
    pub source: SourceStats,
    pub samples: Vec<SampleText>,
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_fixed_int_encoding()
}

/// What goes into the key besides the files.
#[derive(Serialize)]
pub struct KeyParts<'a> {
    pub format: u32,
    pub crate_version: &'static str,
    pub dataset: &'a crate::plan::DatasetPlan,
    pub template: Option<&'a crate::plan::TemplatePlan>,
    pub tokenizer: Option<String>,
    pub max_len: Option<usize>,
}

/// Hex SHA-256 of the key parts and of each source file's (path, size, mtime).
pub fn key(parts: &KeyParts<'_>, files: &[PathBuf]) -> Result<String> {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(parts).context("serialising the cache key")?);
    for f in files {
        let m = std::fs::metadata(f)
            .map_err(|e| invalid(format!("cannot read {}: {e}", f.display())))?;
        let mtime = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        h.update(f.to_string_lossy().as_bytes());
        h.update(m.len().to_le_bytes());
        h.update(mtime.to_le_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

pub fn path_for(dir: &Path, dataset: &str, key: &str) -> PathBuf {
    let name: String = dataset
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{name}-{}.bin", &key[..16]))
}

/// Reads a cache file; `None` when absent, unreadable, or for another key
/// (a stale or foreign file is rebuilt, not trusted).
pub fn read(path: &Path, key: &str) -> Option<CacheFile> {
    let bytes = std::fs::read(path).ok()?;
    let (file, _): (CacheFile, usize) = bincode::serde::decode_from_slice(&bytes, config()).ok()?;
    (file.magic == MAGIC && file.key == key).then_some(file)
}

/// Writes atomically (temporary file, then rename).
pub fn write(
    path: &Path,
    key: &str,
    dataset: &Dataset,
    source: &SourceStats,
    samples: &[SampleText],
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating cache folder {}", dir.display()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let file = CacheFileRef {
        magic: MAGIC,
        key,
        dataset,
        source,
        samples,
    };
    let f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    bincode::serde::encode_into_std_write(&file, &mut w, config())
        .with_context(|| format!("writing {}", tmp.display()))?;
    w.flush()
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(w);
    std::fs::rename(&tmp, path)
        .with_context(|| format!("moving the cache into {}", path.display()))?;
    Ok(())
}

/// Borrowing twin of [`CacheFile`] (same field order, so the same encoding).
#[derive(Serialize)]
struct CacheFileRef<'a> {
    magic: &'a str,
    key: &'a str,
    dataset: &'a Dataset,
    source: &'a SourceStats,
    samples: &'a [SampleText],
}
