//! A BERT/RoBERTa encoder with soft prompts, built from differentiable ops.
//!
//! Tensor names follow HuggingFace (`embeddings.word_embeddings.weight`,
//! `encoder.layer.{i}.attention.self.query.weight`, ...) under whatever prefix
//! the `VarBuilder` carries (`plm.` in the models), so checkpoints load by name.
//!
//! Prompts:
//! * deep: per layer K key and K value vectors, given as one (B, K, 2L, d)
//!   tensor (slot 2l = keys of layer l, 2l+1 = values), concatenated in front of
//!   the projected keys/values after splitting into heads. Queries come from
//!   text only; the mask is [ones(K) | text mask].
//! * shallow: K soft embeddings (B, K, d) prepended to the word embeddings.
//!
//! In both modes the text position ids are shifted by K, as HuggingFace does
//! with K past key values (BERT: first text token at K; RoBERTa: at
//! padding_idx + 1 + K). RoBERTa gives pad tokens position padding_idx; here
//! every slot uses the shifted arange instead, which cannot change real-token
//! outputs because padded keys are masked out.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Embedding, Init, VarBuilder};

use super::config::{Config, HiddenAct};
use crate::model::linear::{linear, linear_gelu_in};
use crate::model::{attention, fused, nn};
use crate::plan::types::PlmFamily;

/// Soft prompts given to one forward pass.
#[derive(Debug, Clone, Copy)]
pub enum Prompts<'a> {
    None,
    /// (B, K, 2L, d): per layer l, slot 2l = key prefix, 2l+1 = value prefix.
    Deep(&'a Tensor),
    /// (B, K, d) soft input embeddings.
    Shallow(&'a Tensor),
}

impl Prompts<'_> {
    pub fn count(&self) -> Result<usize> {
        match self {
            Prompts::None => Ok(0),
            Prompts::Deep(t) | Prompts::Shallow(t) => t.dim(1),
        }
    }
}

/// Hidden states of the text tokens (prompt slots removed), (B, T, d).
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    pub last: Tensor,
    /// Output of the first transformer layer (kept when asked for).
    pub first: Option<Tensor>,
    /// Output of the second-to-last transformer layer (kept when asked for).
    pub penultimate: Option<Tensor>,
}

fn linear_vars(
    vb: &VarBuilder,
    in_dim: usize,
    out_dim: usize,
    std: f64,
) -> Result<(Tensor, Tensor)> {
    let w = vb.get_with_hints(
        (out_dim, in_dim),
        "weight",
        Init::Randn {
            mean: 0.0,
            stdev: std,
        },
    )?;
    let b = vb.get_with_hints(out_dim, "bias", Init::Const(0.0))?;
    Ok((w, b))
}

fn ln_vars(vb: &VarBuilder, d: usize) -> Result<(Tensor, Tensor)> {
    let w = vb.get_with_hints(d, "weight", Init::Const(1.0))?;
    let b = vb.get_with_hints(d, "bias", Init::Const(0.0))?;
    Ok((w, b))
}

#[derive(Debug, Clone)]
pub struct Embeddings {
    word: Embedding,
    position: Tensor,
    token_type: Tensor,
    ln: (Tensor, Tensor),
}

impl Embeddings {
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let std = Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let d = cfg.hidden_size;
        let word = vb
            .pp("word_embeddings")
            .get_with_hints((cfg.vocab_size, d), "weight", std)?;
        let position = vb.pp("position_embeddings").get_with_hints(
            (cfg.max_position_embeddings, d),
            "weight",
            std,
        )?;
        let token_type = vb.pp("token_type_embeddings").get_with_hints(
            (cfg.type_vocab_size, d),
            "weight",
            std,
        )?;
        let ln = ln_vars(&vb.pp("LayerNorm"), d)?;
        Ok(Self {
            word: Embedding::new(word, d),
            position,
            token_type,
            ln,
        })
    }

    pub fn word_embeddings(&self) -> &Tensor {
        self.word.embeddings()
    }
}

#[derive(Debug, Clone)]
struct Layer {
    q: (Tensor, Tensor),
    k: (Tensor, Tensor),
    v: (Tensor, Tensor),
    attn_out: (Tensor, Tensor),
    attn_ln: (Tensor, Tensor),
    inter: (Tensor, Tensor),
    out: (Tensor, Tensor),
    out_ln: (Tensor, Tensor),
}

impl Layer {
    fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let d = cfg.hidden_size;
        let i = cfg.intermediate_size;
        let std = 0.02;
        let att = vb.pp("attention");
        let slf = att.pp("self");
        Ok(Self {
            q: linear_vars(&slf.pp("query"), d, d, std)?,
            k: linear_vars(&slf.pp("key"), d, d, std)?,
            v: linear_vars(&slf.pp("value"), d, d, std)?,
            attn_out: linear_vars(&att.pp("output").pp("dense"), d, d, std)?,
            attn_ln: ln_vars(&att.pp("output").pp("LayerNorm"), d)?,
            inter: linear_vars(&vb.pp("intermediate").pp("dense"), d, i, std)?,
            out: linear_vars(&vb.pp("output").pp("dense"), i, d, std)?,
            out_ln: ln_vars(&vb.pp("output").pp("LayerNorm"), d)?,
        })
    }

    /// x (B, T, d); mask_add (B, K+T) additive; prefix keys/values (B, H, K, dh).
    /// Returns (B, T, d), or (N, d) for the flat positions `rows` only: every
    /// token still gives its key and value, but the output projection, both
    /// layer norms and the feed-forward run on those N rows alone.
    fn forward(
        &self,
        x: &Tensor,
        mask_add: &Tensor,
        prefix: Option<(Tensor, Tensor)>,
        cfg: &Config,
        train: bool,
        rows: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let h = cfg.num_attention_heads;
        let dh = d / h;
        let x2 = x.reshape((b * t, d))?;
        // One projection for q, k and v: a (3d, d) weight built per step is cheap
        // next to three separate passes over the activations.
        let w = Tensor::cat(&[&self.q.0, &self.k.0, &self.v.0], 0)?;
        let bias = Tensor::cat(&[&self.q.1, &self.k.1, &self.v.1], 0)?;
        let qkv = linear(&x2, &w, &bias)?;
        let scale = 1.0 / (dh as f64).sqrt();
        let p = cfg.attention_probs_dropout_prob;
        let ctx = if fused::supported(&qkv) {
            let prefix = prefix.as_ref().map(|(pk, pv)| (pk, pv));
            attention::attention_qkv(&qkv, prefix, mask_add, b, h, scale, p, train)?
        } else {
            let qkv = qkv
                .reshape((b, t, 3, h, dh))?
                .permute((2, 0, 3, 1, 4))?
                .contiguous()?;
            let (q, mut k, mut v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
            if let Some((pk, pv)) = prefix {
                k = Tensor::cat(&[&pk, &k], 2)?;
                v = Tensor::cat(&[&pv, &v], 2)?;
            }
            let scores = (q * scale)?
                .matmul(&k.t()?)?
                .broadcast_add(&mask_add.unsqueeze(1)?.unsqueeze(1)?)?;
            let probs = nn::softmax_last_dim(&scores)?;
            nn::dropout(&probs, p, train)?
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((b * t, d))?
        };
        let (ctx, x2) = match rows {
            Some(r) => (ctx.index_select(r, 0)?, x2.index_select(r, 0)?),
            None => (ctx, x2),
        };
        let attn = linear(&ctx, &self.attn_out.0, &self.attn_out.1)?;
        let x1 = nn::layer_norm(
            &nn::dropout_add(&attn, &x2, cfg.hidden_dropout_prob, train)?,
            &self.attn_ln.0,
            &self.attn_ln.1,
            cfg.layer_norm_eps,
        )?;
        let z = linear(&x1, &self.inter.0, &self.inter.1)?;
        let out = match cfg.hidden_act {
            HiddenAct::Gelu => linear_gelu_in(&z, &self.out.0, &self.out.1)?,
            HiddenAct::GeluApproximate => linear(&z.gelu()?, &self.out.0, &self.out.1)?,
            HiddenAct::Relu => linear(&z.relu()?, &self.out.0, &self.out.1)?,
        };
        let y = nn::layer_norm(
            &nn::dropout_add(&out, &x1, cfg.hidden_dropout_prob, train)?,
            &self.out_ln.0,
            &self.out_ln.1,
            cfg.layer_norm_eps,
        )?;
        match rows {
            Some(_) => Ok(y),
            None => y.reshape((b, t, d)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlmEncoder {
    pub cfg: Config,
    pub family: PlmFamily,
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

impl PlmEncoder {
    /// Creates the encoder's variables under `vb` (HF names, no `bert.` prefix):
    /// random-initialised as BERT does; a checkpoint is copied in afterwards by
    /// `loading::load_checkpoint`.
    pub fn load(vb: VarBuilder, cfg: &Config, family: PlmFamily) -> Result<Self> {
        let embeddings = Embeddings::load(vb.pp("embeddings"), cfg)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(vb.pp("encoder").pp("layer").pp(i), cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            cfg: cfg.clone(),
            family,
            embeddings,
            layers,
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.cfg.hidden_size
    }

    pub fn num_layers(&self) -> usize {
        self.cfg.num_hidden_layers
    }

    pub fn word_embeddings(&self) -> &Tensor {
        self.embeddings.word_embeddings()
    }

    /// First position id of the text: K (BERT) or padding_idx + 1 + K (RoBERTa).
    fn position_offset(&self, k: usize) -> usize {
        match self.family {
            PlmFamily::Bert => k,
            PlmFamily::Roberta => self.cfg.pad_token_id + 1 + k,
        }
    }

    /// ids (B, T) u32, mask (B, T) 1/0. Returns the text tokens' hidden states.
    /// `keep_layers` keeps the first and second-to-last layer outputs (pooling).
    pub fn forward(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        prompts: Prompts,
        train: bool,
        keep_layers: bool,
    ) -> Result<EncoderOutput> {
        self.run(ids, mask, prompts, train, keep_layers, None)
    }

    /// The last layer's hidden states at the flat text positions `rows`
    /// ((N,) u32, row · T + column) only, (N, d). Same values as gathering
    /// `forward(..).last` there; PA-MLM reads only its masked positions, so the
    /// last layer's per-token work after attention is skipped elsewhere.
    pub fn forward_at(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        prompts: Prompts,
        train: bool,
        rows: &Tensor,
    ) -> Result<Tensor> {
        Ok(self.run(ids, mask, prompts, train, false, Some(rows))?.last)
    }

    fn run(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        prompts: Prompts,
        train: bool,
        keep_layers: bool,
        last_rows: Option<&Tensor>,
    ) -> Result<EncoderOutput> {
        let (b, t) = ids.dims2()?;
        let d = self.cfg.hidden_size;
        let l = self.cfg.num_hidden_layers;
        let h = self.cfg.num_attention_heads;
        let k = prompts.count()?;
        let start = self.position_offset(k);
        // Shallow prompts occupy K input slots (positions start-K .. start-1).
        let (first_pos, n_slots) = match prompts {
            Prompts::Shallow(_) => (start - k, k + t),
            _ => (start, t),
        };
        if first_pos + n_slots > self.cfg.max_position_embeddings {
            candle_core::bail!(
                "text of {t} tokens with {k} prompts needs position {} but the PLM has {} \
                 position embeddings; lower max_len or the prompt count",
                first_pos + n_slots - 1,
                self.cfg.max_position_embeddings
            );
        }
        let dtype = self.embeddings.word.embeddings().dtype();
        let words = self.embeddings.word.forward(ids)?;
        let inputs = match prompts {
            Prompts::Shallow(p) => {
                if p.dims() != [b, k, d] {
                    candle_core::bail!(
                        "shallow prompts must be (B, K, d) = ({b}, {k}, {d}), got {:?}",
                        p.dims()
                    );
                }
                Tensor::cat(&[&p.to_dtype(dtype)?, &words], 1)?
            }
            _ => words,
        };
        let pos = self.embeddings.position.narrow(0, first_pos, n_slots)?;
        let tt = self.embeddings.token_type.narrow(0, 0, 1)?;
        let x = inputs.broadcast_add(&(pos.broadcast_add(&tt)?))?;
        let x = nn::layer_norm(
            &x,
            &self.embeddings.ln.0,
            &self.embeddings.ln.1,
            self.cfg.layer_norm_eps,
        )?;
        let mut x = nn::dropout(&x, self.cfg.hidden_dropout_prob, train)?;

        let mask = mask.to_dtype(dtype)?;
        let full_mask = match prompts {
            Prompts::None => mask,
            _ => Tensor::cat(&[&Tensor::ones((b, k), dtype, ids.device())?, &mask], 1)?,
        };
        // (1 - m) * -1e9: masked keys get exp(...) = 0 exactly after the max shift.
        let mask_add = ((full_mask.affine(-1.0, 1.0)?) * -1e9)?;
        // Key/value mask for layers with deep prefixes; shallow runs use the full
        // mask against K + T slots, and no-prompt runs use the text mask itself.
        let deep = match prompts {
            Prompts::Deep(p) => {
                if p.dims() != [b, k, 2 * l, d] {
                    candle_core::bail!(
                        "deep prompts must be (B, K, 2L, d) = ({b}, {k}, {}, {d}), got {:?}",
                        2 * l,
                        p.dims()
                    );
                }
                // (B, K, 2L, H, dh) → (2L, B, H, K, dh) once, so each layer reads a
                // contiguous slice.
                Some(
                    p.to_dtype(dtype)?
                        .reshape((b, k, 2 * l, h, d / h))?
                        .permute((2, 0, 3, 1, 4))?
                        .contiguous()?,
                )
            }
            _ => None,
        };
        // Shallow prompts occupy the first K of K + T slots in every row.
        let last_rows = match (last_rows, prompts) {
            (Some(r), Prompts::Shallow(_)) => {
                let slots: Vec<u32> = r
                    .to_vec1::<u32>()?
                    .into_iter()
                    .map(|p| {
                        let (row, col) = (p as usize / t, p as usize % t);
                        (row * (k + t) + k + col) as u32
                    })
                    .collect();
                Some(Tensor::new(slots, r.device())?)
            }
            (r, _) => r.cloned(),
        };
        let (mut first, mut penultimate) = (None, None);
        for (i, layer) in self.layers.iter().enumerate() {
            let prefix = match &deep {
                Some(p) => Some((p.get(2 * i)?, p.get(2 * i + 1)?)),
                None => None,
            };
            let rows = if i + 1 == l { last_rows.as_ref() } else { None };
            x = layer.forward(&x, &mask_add, prefix, &self.cfg, train, rows)?;
            if keep_layers {
                if i == 0 {
                    first = Some(x.clone());
                }
                if i + 2 == l {
                    penultimate = Some(x.clone());
                }
            }
        }
        if last_rows.is_some() {
            return Ok(EncoderOutput {
                last: x,
                first: None,
                penultimate: None,
            });
        }
        let text = |x: Tensor| -> Result<Tensor> {
            match prompts {
                Prompts::Shallow(_) => x.narrow(1, k, t),
                _ => Ok(x),
            }
        };
        if keep_layers && l == 1 {
            // One layer: it is both the first and the only earlier output is the embedding;
            // top2 then averages the last layer with itself.
            penultimate = Some(x.clone());
        }
        Ok(EncoderOutput {
            last: text(x)?,
            first: first.map(text).transpose()?,
            penultimate: penultimate.map(text).transpose()?,
        })
    }
}
