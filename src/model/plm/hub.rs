//! Finding a PLM's folder: a local HuggingFace-format directory, or a hub id
//! resolved through the HuggingFace cache (`HF_HOME`, default
//! `~/.cache/huggingface`) and downloaded with `hf-hub` unless
//! `HF_HUB_OFFLINE` is set.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::invalid;
use crate::plan::types::{PlmLocation, PlmPlan};

/// Files a folder needs besides the weights.
const REQUIRED: [&str; 1] = ["config.json"];
/// Weight files, in order of preference.
const WEIGHTS: [&str; 3] = [
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
];
const TOKENIZERS: [&str; 2] = ["tokenizer.json", "vocab.txt"];

/// Why a folder cannot serve as a PLM, or None when it can.
pub fn folder_problem(dir: &Path) -> Option<String> {
    if !dir.is_dir() {
        return Some(format!("{} is not a directory", dir.display()));
    }
    for f in REQUIRED {
        if !dir.join(f).is_file() {
            return Some(format!("{} has no {f}", dir.display()));
        }
    }
    if !WEIGHTS.iter().any(|f| dir.join(f).is_file()) {
        return Some(format!(
            "{} has no weights ({})",
            dir.display(),
            WEIGHTS.join(", ")
        ));
    }
    if !TOKENIZERS.iter().any(|f| dir.join(f).is_file()) {
        return Some(format!(
            "{} has no tokenizer ({})",
            dir.display(),
            TOKENIZERS.join(" or ")
        ));
    }
    None
}

fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| !matches!(v.trim(), "" | "0" | "false" | "False" | "FALSE"))
        .unwrap_or(false)
}

fn hint_local(id: &str) -> String {
    let cache = hf_hub::Cache::from_env();
    format!(
        "download the model folder of \"{id}\" (config.json, model.safetensors or pytorch_model.bin, \
         tokenizer.json) — e.g. `huggingface-cli download {id}` on a machine with network access, \
         which fills the HuggingFace cache at {} (set HF_HOME to move it) — or copy the folder \
         anywhere and give the PLM that folder's path instead of `hub(\"{id}\")`",
        cache.path().display()
    )
}

/// The snapshot folder of a cached hub model holding every file we need.
fn cached(id: &str) -> Option<PathBuf> {
    let repo = hf_hub::Cache::from_env().model(id.to_string());
    let dir = repo.get("config.json")?.parent()?.to_path_buf();
    folder_problem(&dir).is_none().then_some(dir)
}

fn download(id: &str) -> Result<PathBuf> {
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(false)
        .build()
        .map_err(|e| {
            invalid(format!(
                "cannot set up the HuggingFace hub client: {e}; {}",
                hint_local(id)
            ))
        })?;
    let repo = api.model(id.to_string());
    let config = repo.get("config.json").map_err(|e| {
        invalid(format!(
            "cannot fetch \"{id}\" from the HuggingFace hub ({e}); {}",
            hint_local(id)
        ))
    })?;
    let mut weights_ok = false;
    for f in WEIGHTS {
        if repo.get(f).is_ok() {
            weights_ok = true;
            if f == "model.safetensors.index.json" {
                fetch_shards(&repo, &config)?;
            }
            break;
        }
    }
    if !weights_ok {
        return Err(invalid(format!(
            "\"{id}\" on the hub has none of {}; {}",
            WEIGHTS.join(", "),
            hint_local(id)
        )));
    }
    for f in TOKENIZERS {
        if repo.get(f).is_ok() {
            break;
        }
    }
    let dir = config
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow::anyhow!("hub cache path {} has no parent", config.display()))?;
    match folder_problem(&dir) {
        None => Ok(dir),
        Some(p) => Err(invalid(format!(
            "after downloading \"{id}\": {p}; {}",
            hint_local(id)
        ))),
    }
}

fn fetch_shards(repo: &hf_hub::api::sync::ApiRepo, config: &Path) -> Result<()> {
    let Some(dir) = config.parent() else {
        return Ok(());
    };
    let text = std::fs::read_to_string(dir.join("model.safetensors.index.json"))?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    let mut shards: Vec<&str> = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .map(|m| m.values().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    shards.sort();
    shards.dedup();
    for s in shards {
        repo.get(s)
            .map_err(|e| invalid(format!("cannot fetch shard {s}: {e}")))?;
    }
    Ok(())
}

/// The folder the PLM (weights, config and tokenizer) lives in; the runner
/// calls this before loading data, since the tokenizer comes from there.
pub fn resolve_plm_dir(plan: &PlmPlan) -> Result<PathBuf> {
    match &plan.location {
        PlmLocation::Local(dir) => match folder_problem(dir) {
            None => Ok(dir.clone()),
            Some(p) => {
                let fetch = if dir.ends_with("all-MiniLM-L6-v2") {
                    " (run scripts/fetch-plm.sh to fetch it)"
                } else {
                    ""
                };
                Err(invalid(format!("PLM \"{}\": {p}{fetch}", plan.name)))
            }
        },
        PlmLocation::Hub(id) => {
            // Where scripts/fetch-plm.sh and users put models for offline use.
            let name = id.rsplit('/').next().unwrap_or(id);
            let fetched = Path::new("assets/plm").join(name);
            if folder_problem(&fetched).is_none() {
                return Ok(fetched);
            }
            if let Some(dir) = cached(id) {
                return Ok(dir);
            }
            if offline() {
                return Err(invalid(format!(
                    "PLM \"{}\": \"{id}\" is not in the HuggingFace cache and HF_HUB_OFFLINE is set; {}",
                    plan.name,
                    hint_local(id)
                )));
            }
            download(id)
        }
    }
}
