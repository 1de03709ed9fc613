//! The encoder configuration, mirroring HuggingFace's `config.json` for the
//! BERT and RoBERTa families.
//!
//! candle-transformers' `bert::Config` is close but requires fields many
//! checkpoints omit (`initializer_range`, `hidden_act`, `pad_token_id`, …,
//! where HF has defaults), lacks `attention_probs_dropout_prob`, and rejects
//! the `gelu_new`/`gelu_pytorch_tanh` spellings, so this keeps its field names
//! and adds HF's defaults. [`Config::to_candle_bert`] gives candle's type for
//! a BERT checkpoint (the encoder is cross-checked against candle's
//! `BertModel` in `tests/plm_candle.rs`).

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::plan::types::PlmFamily;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenAct {
    /// Exact (erf) GELU, HF's `gelu`.
    Gelu,
    /// Tanh approximation: HF's `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`.
    #[serde(alias = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluApproximate,
    Relu,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: HiddenAct,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    #[serde(default)]
    pub model_type: Option<String>,
}

fn default_act() -> HiddenAct {
    HiddenAct::Gelu
}
fn default_dropout() -> f64 {
    0.1
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

impl Config {
    /// Reads and checks `config.json` in a HuggingFace model folder.
    pub fn from_dir(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            crate::error::invalid(format!(
                "cannot read the PLM config {}: {e}",
                path.display()
            ))
        })?;
        let cfg: Config = serde_json::from_str(&text).map_err(|e| {
            crate::error::invalid(format!(
                "{}:{}:{}: not a BERT/RoBERTa config: {e}",
                path.display(),
                e.line(),
                e.column()
            ))
        })?;
        cfg.validate()
            .with_context(|| format!("checking {}", path.display()))?;
        Ok(cfg)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(crate::error::invalid(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        if let Some(p) = &self.position_embedding_type {
            if p != "absolute" {
                return Err(crate::error::invalid(format!(
                    "position_embedding_type \"{p}\" is not supported (only \"absolute\")"
                )));
            }
        }
        if self.type_vocab_size == 0 || self.vocab_size == 0 || self.num_hidden_layers == 0 {
            return Err(crate::error::invalid(
                "vocab_size, type_vocab_size and num_hidden_layers must be positive",
            ));
        }
        Ok(())
    }

    /// Keeps only the first `n` transformer layers (`plm … { layers N }`):
    /// the variables of the later layers are never created, so the
    /// checkpoint's later layers are left unread.
    pub fn truncated(mut self, n: Option<usize>) -> anyhow::Result<Self> {
        if let Some(n) = n {
            if n == 0 || n > self.num_hidden_layers {
                return Err(crate::error::invalid(format!(
                    "`layers {n}`: the checkpoint has {} transformer layers (use 1 to {0})",
                    self.num_hidden_layers
                )));
            }
            self.num_hidden_layers = n;
        }
        Ok(self)
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// The family the checkpoint declares, if it says.
    pub fn declared_family(&self) -> Option<PlmFamily> {
        match self.model_type.as_deref() {
            Some("bert") => Some(PlmFamily::Bert),
            Some("roberta") | Some("xlm-roberta") | Some("camembert") => Some(PlmFamily::Roberta),
            _ => None,
        }
    }

    /// The same configuration as candle-transformers' BERT `Config` (for its
    /// `BertModel`); fields it has and this does not get HF's defaults.
    pub fn to_candle_bert(&self) -> candle_transformers::models::bert::Config {
        use candle_transformers::models::bert;
        bert::Config {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            hidden_act: match self.hidden_act {
                HiddenAct::Gelu => bert::HiddenAct::Gelu,
                HiddenAct::GeluApproximate => bert::HiddenAct::GeluApproximate,
                HiddenAct::Relu => bert::HiddenAct::Relu,
            },
            hidden_dropout_prob: self.hidden_dropout_prob,
            max_position_embeddings: self.max_position_embeddings,
            type_vocab_size: self.type_vocab_size,
            layer_norm_eps: self.layer_norm_eps,
            pad_token_id: self.pad_token_id,
            model_type: self.model_type.clone(),
            ..bert::Config::default()
        }
    }

    /// A small random-init configuration for tests and benchmarks.
    pub fn tiny(vocab_size: usize, hidden: usize, layers: usize, heads: usize) -> Self {
        Self {
            vocab_size,
            hidden_size: hidden,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            intermediate_size: 4 * hidden,
            hidden_act: HiddenAct::Gelu,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 128,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
            position_embedding_type: None,
            model_type: Some("bert".into()),
        }
    }
}
