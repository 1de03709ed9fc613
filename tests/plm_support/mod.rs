//! A tiny random BERT folder for the tests that run PLM stages through the
//! command line: a 2-layer model with a character-level WordPiece vocabulary.
// Each test binary uses part of this module.
#![allow(dead_code)]

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use clickprompt::model::plm::{Config, PlmEncoder};
use clickprompt::plan::types::PlmFamily;

/// Writes `vocab.txt`, `config.json` and `model.safetensors` to `dir`; each of
/// `extra` becomes one more vocabulary entry.
pub fn tiny_plm(dir: &Path, extra: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for c in 'a'..='z' {
        vocab.push(c.to_string());
        vocab.push(format!("##{c}"));
    }
    vocab.extend(extra.iter().map(|s| s.to_string()));
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n") + "\n").unwrap();
    write_checkpoint(dir, &Config::tiny(vocab.len(), 16, 2, 2));
}

/// Writes `config.json` and randomly initialised BERT weights
/// (`model.safetensors`) for `cfg` to `dir`.
pub fn write_checkpoint(dir: &Path, cfg: &Config) {
    std::fs::write(dir.join("config.json"), serde_json::to_string(cfg).unwrap()).unwrap();
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    PlmEncoder::load(vb.pp("bert"), cfg, PlmFamily::Bert).unwrap();
    vm.save(dir.join("model.safetensors")).unwrap();
}
