//! Copying a HuggingFace checkpoint into the trainable variables.
//!
//! The model's variables are created first (in a `VarMap`, so the optimiser
//! owns them); this module then overwrites their values from the checkpoint by
//! name. Accepted layouts: `model.safetensors`, sharded safetensors with
//! `model.safetensors.index.json`, and `pytorch_model.bin` (candle's pickle
//! reader). Checkpoint names may carry a `bert.`/`roberta.` prefix and the old
//! `LayerNorm.gamma`/`beta` spelling.
//!
//! Variable prefixes: `plm.` = the encoder (HF names below it), `mlm.` = the
//! MLM head (`mlm.dense`, `mlm.layer_norm`, `mlm.bias`; the decoder is tied to
//! the word embeddings and has no variable of its own).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use crate::error::invalid;

/// Every tensor of a checkpoint, by normalised name, on the CPU.
pub struct Checkpoint {
    pub source: PathBuf,
    tensors: HashMap<String, Tensor>,
}

/// Strips the model-family prefix and maps old LayerNorm names to new ones.
pub fn normalise_name(name: &str) -> String {
    let n = name
        .strip_prefix("bert.")
        .or_else(|| name.strip_prefix("roberta."))
        .unwrap_or(name);
    if let Some(stem) = n.strip_suffix(".gamma") {
        format!("{stem}.weight")
    } else if let Some(stem) = n.strip_suffix(".beta") {
        format!("{stem}.bias")
    } else {
        n.to_string()
    }
}

impl Checkpoint {
    pub fn open(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let bin = dir.join("pytorch_model.bin");
        let (source, raw): (PathBuf, Vec<(String, Tensor)>) = if single.is_file() {
            let t = candle_core::safetensors::load(&single, &Device::Cpu)
                .with_context(|| format!("reading {}", single.display()))?;
            (single, t.into_iter().collect())
        } else if index.is_file() {
            let text = std::fs::read_to_string(&index)
                .with_context(|| format!("reading {}", index.display()))?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| invalid(format!("{}:{}: {e}", index.display(), e.line())))?;
            let map = json
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| invalid(format!("{}: no \"weight_map\" object", index.display())))?;
            let mut shards: Vec<String> = map
                .values()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            shards.sort();
            shards.dedup();
            let mut all = Vec::new();
            for s in shards {
                let p = dir.join(&s);
                let t = candle_core::safetensors::load(&p, &Device::Cpu)
                    .with_context(|| format!("reading shard {}", p.display()))?;
                all.extend(t);
            }
            (index, all)
        } else if bin.is_file() {
            let t = candle_core::pickle::read_all(&bin)
                .with_context(|| format!("reading {}", bin.display()))?;
            (bin, t)
        } else {
            return Err(invalid(format!(
                "{} holds no weights: expected model.safetensors, \
                 model.safetensors.index.json (+ shards) or pytorch_model.bin",
                dir.display()
            )));
        };
        let tensors = raw
            .into_iter()
            .map(|(k, v)| (normalise_name(&k), v))
            .collect();
        Ok(Self { source, tensors })
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.tensors.keys()
    }
}

/// What `load_checkpoint` did.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Variables whose values now come from the checkpoint.
    pub loaded: Vec<String>,
    /// Whether the MLM head came from the checkpoint (false: freshly created).
    pub mlm_head_loaded: bool,
    /// Whether the model has MLM-head variables at all.
    pub has_mlm_head: bool,
}

/// Checkpoint names for an MLM-head variable (`mlm.` stripped), BERT then RoBERTa.
fn mlm_candidates(rest: &str) -> Vec<String> {
    let bert = match rest {
        "bias" => "cls.predictions.bias".to_string(),
        r => {
            let r = r.replacen("layer_norm.", "LayerNorm.", 1);
            format!("cls.predictions.transform.{r}")
        }
    };
    vec![bert, format!("lm_head.{rest}")]
}

/// Overwrites every `plm.*` variable (required) and `mlm.*` variable (all or
/// none) in `varmap` with the checkpoint's values.
pub fn load_checkpoint(varmap: &VarMap, ckpt: &Checkpoint) -> Result<LoadReport> {
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("variable map lock poisoned"))?
        .clone();
    let mut report = LoadReport::default();
    let mut missing = Vec::new();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    let check = |name: &str, var: &candle_core::Var, t: &Tensor| -> Result<Tensor> {
        if t.dims() != var.dims() {
            return Err(invalid(format!(
                "{}: tensor for {name} has shape {:?}, the config implies {:?}",
                ckpt.source.display(),
                t.dims(),
                var.dims()
            )));
        }
        Ok(t.to_dtype(var.dtype())?.to_device(var.device())?)
    };
    for name in names.iter().filter(|n| n.starts_with("plm.")) {
        let var = &vars[*name];
        let key = &name["plm.".len()..];
        match ckpt.get(key) {
            Some(t) => {
                var.set(&check(name, var, t)?)?;
                report.loaded.push((*name).clone());
            }
            None => missing.push(key.to_string()),
        }
    }
    if !missing.is_empty() {
        let shown: Vec<_> = missing.iter().take(8).cloned().collect();
        return Err(invalid(format!(
            "{} lacks {} encoder tensor(s) the config implies, e.g. {}; is this a BERT/RoBERTa checkpoint \
             matching its config.json?",
            ckpt.source.display(),
            missing.len(),
            shown.join(", ")
        )));
    }
    let mlm: Vec<&String> = names
        .iter()
        .copied()
        .filter(|n| n.starts_with("mlm."))
        .collect();
    report.has_mlm_head = !mlm.is_empty();
    // The head loads only when every one of its tensors is there, from one family.
    'family: for fam in 0..2 {
        let mut found = Vec::new();
        for name in &mlm {
            let rest = &name["mlm.".len()..];
            match ckpt.get(&mlm_candidates(rest)[fam]) {
                Some(t) => found.push((*name, t)),
                None => continue 'family,
            }
        }
        if found.is_empty() {
            break;
        }
        for (name, t) in found {
            let var = &vars[name];
            var.set(&check(name, var, t)?)?;
            report.loaded.push(name.clone());
        }
        report.mlm_head_loaded = true;
        break;
    }
    Ok(report)
}
