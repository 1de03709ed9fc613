//! Safetensors checkpoints, named by run and stage, and loading by name.
//!
//! Layout: `<root>/<run>/<stage>/epoch-N.safetensors` after every epoch and
//! `<root>/<run>/<stage>/best.safetensors` for the best epoch. A later stage
//! loads an earlier stage's `best` by variable name and reports what matched.

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::model::vars::sorted_vars;

/// A run name made safe for a directory (`sweep[lr=0.1]` → `sweep_lr=0.1_`).
pub fn path_component(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=' | ',') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `<root>/<run>/<stage>`.
pub fn stage_dir(root: &Path, run: &str, stage: &str) -> PathBuf {
    root.join(path_component(run)).join(path_component(stage))
}

/// `<root>/<run>/<stage>/best.safetensors`.
pub fn best_path(root: &Path, run: &str, stage: &str) -> PathBuf {
    stage_dir(root, run, stage).join("best.safetensors")
}

/// `<root>/<run>/vocabularies.yaml`: the run's field vocabularies
/// (`data::vocab`), written before its first stage.
pub fn vocab_path(root: &Path, run: &str) -> PathBuf {
    root.join(path_component(run))
        .join(crate::data::vocab::VOCAB_FILE)
}

/// The checkpoint root of run `id` under the `--checkpoints` folder:
/// `<root>/run-<id>`, so that re-running an experiment never overwrites an
/// earlier run's files.
pub fn run_root(root: &Path, id: i64) -> PathBuf {
    root.join(format!("run-{id}"))
}

/// `<root>/<run>/<stage>/epoch-N.safetensors`.
pub fn epoch_path(root: &Path, run: &str, stage: &str, epoch: usize) -> PathBuf {
    stage_dir(root, run, stage).join(format!("epoch-{epoch}.safetensors"))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

/// Writes every variable of `varmap` to `path` (parents created) and hashes the file.
pub fn save(varmap: &VarMap, path: &Path) -> Result<Saved> {
    let tensors: HashMap<String, Tensor> = sorted_vars(varmap)?
        .into_iter()
        .map(|(n, v)| (n, v.as_tensor().clone()))
        .collect();
    save_tensors(&tensors, path)
}

/// Writes named tensors to `path` (parents created) and hashes the file.
pub fn save_tensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<Saved> {
    create_parent(path)?;
    let tmp = temp_path(path);
    let written = candle_core::safetensors::save(tensors, &tmp)
        .with_context(|| format!("writing {}", tmp.display()));
    written.and_then(|()| persist(&tmp, path))?;
    describe(path)
}

/// Writes `bytes` to `path` (parents created) through a temporary name, and hashes them.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<Saved> {
    create_parent(path)?;
    let tmp = temp_path(path);
    std::fs::write(&tmp, bytes)
        .with_context(|| format!("writing {}", tmp.display()))
        .and_then(|()| persist(&tmp, path))?;
    Ok(Saved {
        path: path.to_path_buf(),
        bytes: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
    })
}

fn create_parent(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

/// `<path>.tmp`, in the same directory: a rename within one file system is
/// atomic, across file systems it is a copy.
fn temp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// Makes the fully written `tmp` the file at `path`: its data flushed to
/// disk, renamed over `path`, and the directory flushed so that the rename
/// itself survives a power cut. A crash at any point leaves the old file or
/// the new one under `path`, never a torn one. On failure `tmp` is removed.
fn persist(tmp: &Path, path: &Path) -> Result<()> {
    let done = (|| -> Result<()> {
        std::fs::File::open(tmp)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("flushing {} to disk", tmp.display()))?;
        std::fs::rename(tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        sync_dir(path);
        Ok(())
    })();
    if done.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    done
}

/// Flushes the directory entry of `path`. Best effort: some platforms and
/// file systems cannot open or sync a directory, and the file itself is
/// already on disk by then.
fn sync_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Size and hash of a checkpoint already on disk.
pub fn describe(path: &Path) -> Result<Saved> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Saved {
        path: path.to_path_buf(),
        bytes: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
    })
}

/// Copies a saved checkpoint to `to` (e.g. `best.safetensors`), through a
/// temporary name like [`save_tensors`]: a kill mid-copy must not leave a
/// torn file under the name the next stage loads.
pub fn copy(from: &Saved, to: &Path) -> Result<Saved> {
    create_parent(to)?;
    let tmp = temp_path(to);
    std::fs::copy(&from.path, &tmp)
        .with_context(|| format!("writing {}", tmp.display()))
        .and_then(|_| persist(&tmp, to))?;
    Ok(Saved {
        path: to.to_path_buf(),
        bytes: from.bytes,
        sha256: from.sha256.clone(),
    })
}

/// What loading by name did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// In the model and the file: copied from the file.
    pub loaded: Vec<String>,
    /// In the model but not taken from the file (absent, or excluded): kept as initialised.
    pub initialised: Vec<String>,
    /// In the file but not used by the model (absent, or excluded).
    pub dropped: Vec<String>,
}

impl LoadReport {
    /// One line for the run log.
    pub fn summary(&self, path: &Path) -> String {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else if v.len() <= 8 {
                v.join(", ")
            } else {
                // Long lists (a whole PLM) by top-level module: `110 (plm.*: 101, mlm.*: 5, …)`.
                let mut groups: Vec<(&str, usize)> = Vec::new();
                for name in v {
                    let top = name.split('.').next().unwrap_or(name);
                    match groups.iter_mut().find(|(g, _)| *g == top) {
                        Some((_, n)) => *n += 1,
                        None => groups.push((top, 1)),
                    }
                }
                let parts: Vec<String> =
                    groups.iter().map(|(g, n)| format!("{g}.*: {n}")).collect();
                format!("{} ({})", v.len(), parts.join(", "))
            }
        };
        format!(
            "loaded {} tensors from {}; newly initialised: {}; dropped: {}",
            self.loaded.len(),
            path.display(),
            list(&self.initialised),
            list(&self.dropped)
        )
    }
}

/// Copies every tensor of the file at `path` into the variable of the same name.
pub fn load_by_name(varmap: &VarMap, path: &Path) -> Result<LoadReport> {
    load_by_name_except(varmap, path, |_| false)
}

/// Like [`load_by_name`], but names for which `exclude` is true are not
/// loaded (they keep their fresh initialisation, e.g. `ctr.fc_out.*`).
/// A shape mismatch between file and model is an error.
pub fn load_by_name_except(
    varmap: &VarMap,
    path: &Path,
    exclude: impl Fn(&str) -> bool,
) -> Result<LoadReport> {
    if !path.exists() {
        bail!("checkpoint {} does not exist", path.display());
    }
    let file = candle_core::safetensors::load(path, &Device::Cpu)
        .with_context(|| format!("reading checkpoint {}", path.display()))?;
    let mut report = LoadReport::default();
    for (name, var) in sorted_vars(varmap)? {
        match file.get(&name) {
            Some(t) if !exclude(&name) => {
                if t.shape() != var.as_tensor().shape() {
                    bail!(
                        "checkpoint {}: tensor {name} has shape {:?}, the model expects {:?}",
                        path.display(),
                        t.shape().dims(),
                        var.as_tensor().shape().dims()
                    );
                }
                var.set(&t.to_dtype(var.dtype())?.to_device(var.device())?)
                    .with_context(|| format!("loading {name}"))?;
                report.loaded.push(name);
            }
            _ => report.initialised.push(name),
        }
    }
    let model: std::collections::HashSet<&String> = report.loaded.iter().collect();
    let mut dropped: Vec<String> = file
        .keys()
        .filter(|k| !model.contains(k))
        .cloned()
        .collect();
    dropped.sort();
    report.dropped = dropped;
    Ok(report)
}
