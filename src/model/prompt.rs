//! The prompt generator: the CTR model's hidden vector h becomes soft prompts.
//!
//! Deep: h → Linear(dim h → d) → tanh → Linear(d → K·L·2·d), viewed per sample
//! as (K, 2L, d): for layer l, slot 2l holds K key prefixes and 2l+1 K value
//! prefixes (split into heads inside the encoder).
//! Shallow: K linear maps h → d, computed as one Linear(dim h → K·d) whose
//! output rows k·d..(k+1)·d are map k; the result is (B, K, d).

use candle_core::Module;
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::linear::Linear;

use super::nn::linear_xavier;
use super::plm::{Config, Prompts};
use crate::plan::types::{PromptMode, PromptPlan};

#[derive(Debug, Clone)]
pub struct PromptGenerator {
    mode: PromptMode,
    count: usize,
    layers: usize,
    hidden: usize,
    first: Linear,
    second: Option<Linear>,
}

impl PromptGenerator {
    /// Variables under `vb` (the models use `prompt.`): deep `dense`, `out`; shallow `maps`.
    pub fn new(vb: VarBuilder, h_dim: usize, plm: &Config, plan: &PromptPlan) -> Result<Self> {
        let d = plm.hidden_size;
        let l = plm.num_hidden_layers;
        let k = plan.count;
        if k == 0 {
            candle_core::bail!("the prompt count K must be at least 1");
        }
        let (first, second) = match plan.mode {
            PromptMode::Deep => (
                linear_xavier(h_dim, d, vb.pp("dense"))?,
                Some(linear_xavier(d, k * l * 2 * d, vb.pp("out"))?),
            ),
            PromptMode::Shallow => (linear_xavier(h_dim, k * d, vb.pp("maps"))?, None),
        };
        Ok(Self {
            mode: plan.mode,
            count: k,
            layers: l,
            hidden: d,
            first,
            second,
        })
    }

    pub fn mode(&self) -> PromptMode {
        self.mode
    }

    /// h (B, dim h) → deep (B, K, 2L, d) or shallow (B, K, d).
    pub fn forward(&self, h: &Tensor) -> Result<Tensor> {
        let b = h.dim(0)?;
        let (k, l, d) = (self.count, self.layers, self.hidden);
        match &self.second {
            Some(out) => out
                .forward(&self.first.forward(h)?.tanh()?)?
                .reshape((b, k, 2 * l, d)),
            None => self.first.forward(h)?.reshape((b, k, d)),
        }
    }

    /// Wraps a `forward` result for the encoder.
    pub fn as_prompts<'a>(&self, p: &'a Tensor) -> Prompts<'a> {
        match self.mode {
            PromptMode::Deep => Prompts::Deep(p),
            PromptMode::Shallow => Prompts::Shallow(p),
        }
    }
}
