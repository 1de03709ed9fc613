//! Heads on the PLM: the MLM head (PA-MLM), pooling, and the classification
//! head that turns pooled text into a logit (joint, plm_only).

use candle_core::{Result, Tensor, D};
use candle_nn::{Init, VarBuilder};

use super::nn;
use super::plm::{Config, EncoderOutput};
use crate::plan::types::Pooling;

/// dense → GELU → LayerNorm → decoder tied to the word embeddings + bias.
/// Variables: `dense.{weight,bias}`, `layer_norm.{weight,bias}`, `bias`
/// (under `mlm.`; loaded from `cls.predictions.*` / `lm_head.*` when present).
#[derive(Debug, Clone)]
pub struct MlmHead {
    dense: (Tensor, Tensor),
    ln: (Tensor, Tensor),
    bias: Tensor,
    decoder: Tensor,
    eps: f64,
}

impl MlmHead {
    pub fn new(vb: VarBuilder, cfg: &Config, word_embeddings: &Tensor) -> Result<Self> {
        let d = cfg.hidden_size;
        let std = Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let dense = (
            vb.pp("dense").get_with_hints((d, d), "weight", std)?,
            vb.pp("dense").get_with_hints(d, "bias", Init::Const(0.0))?,
        );
        let ln = (
            vb.pp("layer_norm")
                .get_with_hints(d, "weight", Init::Const(1.0))?,
            vb.pp("layer_norm")
                .get_with_hints(d, "bias", Init::Const(0.0))?,
        );
        let bias = vb.get_with_hints(cfg.vocab_size, "bias", Init::Const(0.0))?;
        Ok(Self {
            dense,
            ln,
            bias,
            decoder: word_embeddings.clone(),
            eps: cfg.layer_norm_eps,
        })
    }

    /// hidden (N, d) of the positions to predict → logits (N, vocab).
    pub fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        let x = super::fused::gelu_erf(&super::linear::linear(
            hidden,
            &self.dense.0,
            &self.dense.1,
        )?)?;
        let x = nn::layer_norm(&x, &self.ln.0, &self.ln.1, self.eps)?;
        super::linear::linear(&x, &self.decoder, &self.bias)
    }
}

/// Masked mean over the text tokens: Σ h·m / Σ m, (B, T, d) → (B, d).
pub fn masked_mean(h: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let m = mask.to_dtype(h.dtype())?;
    let sum = h.broadcast_mul(&m.unsqueeze(D::Minus1)?)?.sum(1)?;
    let count = m.sum_keepdim(1)?.clamp(1.0, f64::INFINITY)?;
    sum.broadcast_div(&count)
}

/// Pools text hidden states into one vector per row.
/// * `mean`: masked mean of the last layer;
/// * `cls`: the last layer at the first token;
/// * `first_last`: masked mean of (first layer output + last layer output) / 2;
/// * `top2`: masked mean of (second-to-last + last layer outputs) / 2.
///
/// "Layer output" is a transformer layer's output (the embedding output is
/// not a layer). `first_last`/`top2` need `EncoderOutput` built with `keep_layers`.
pub fn pool(out: &EncoderOutput, mask: &Tensor, pooling: Pooling) -> Result<Tensor> {
    let need = |t: &Option<Tensor>| -> Result<Tensor> {
        t.clone().ok_or_else(|| {
            candle_core::Error::Msg(
                "pooling needs the encoder's layer outputs (keep_layers)".into(),
            )
        })
    };
    match pooling {
        Pooling::Mean => masked_mean(&out.last, mask),
        Pooling::Cls => out.last.narrow(1, 0, 1)?.squeeze(1),
        Pooling::FirstLast => masked_mean(&((need(&out.first)? + &out.last)? * 0.5)?, mask),
        Pooling::Top2 => masked_mean(&((need(&out.penultimate)? + &out.last)? * 0.5)?, mask),
    }
}

/// Whether a pooling mode needs intermediate layer outputs.
pub fn pooling_needs_layers(pooling: Pooling) -> bool {
    matches!(pooling, Pooling::FirstLast | Pooling::Top2)
}

/// Linear(d→d) → tanh → Linear(d→1): the PLM logit. Variables `dense`, `out`.
#[derive(Debug, Clone)]
pub struct ClassificationHead {
    dense: super::linear::Linear,
    out: super::linear::Linear,
}

impl ClassificationHead {
    pub fn new(vb: VarBuilder, d: usize) -> Result<Self> {
        Ok(Self {
            dense: nn::linear_xavier(d, d, vb.pp("dense"))?,
            out: nn::linear_xavier(d, 1, vb.pp("out"))?,
        })
    }

    /// pooled (B, d) → logits (B,).
    pub fn forward(&self, pooled: &Tensor) -> Result<Tensor> {
        use candle_nn::Module;
        self.out
            .forward(&self.dense.forward(pooled)?.tanh()?)?
            .squeeze(D::Minus1)
    }
}
