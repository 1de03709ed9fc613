//! Prompt-augmented masked language modelling (PA-MLM): BERT-style masking of
//! the text, the CTR model's prompts in every layer, cross-entropy on the
//! masked positions only.

use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::trainer::{EvalCtx, Evaluation, StageModel, StepCtx};
use crate::data::{epoch_batches, Batch, DeviceSplit, OrderSpec, TextMeta};
use crate::model::ctr::CtrModel;
use crate::model::heads::MlmHead;
use crate::model::plm::{PlmEncoder, Prompts};
use crate::model::prompt::PromptGenerator;

/// A batch's text after masking.
#[derive(Debug, Clone)]
pub struct MaskedText {
    /// (B, T) ids with the chosen positions replaced (80% [MASK], 10% random, 10% kept).
    pub ids: Tensor,
    /// (N,) u32 flat indices (row · T + column) of the chosen positions.
    pub positions: Tensor,
    /// (N,) u32 original ids at those positions.
    pub targets: Tensor,
    pub count: usize,
}

/// BERT masking: each real, non-special token is chosen with probability
/// `ratio`; a chosen token becomes [MASK] with p 0.8, a random vocabulary id
/// with p 0.1, else stays. The uniforms come from the seeded host `rng` (the
/// CPU tensor RNG cannot be seeded); the selection itself is tensor ops.
/// Returns None when no token was chosen.
pub fn mask_tokens(
    ids: &Tensor,
    mask: &Tensor,
    meta: &TextMeta,
    ratio: f64,
    rng: &mut StdRng,
) -> Result<Option<MaskedText>> {
    let (b, t) = ids.dims2()?;
    let dev = ids.device();
    let n = b * t;
    let mut u_sel = Vec::with_capacity(n);
    let mut u_kind = Vec::with_capacity(n);
    let mut random_ids = Vec::with_capacity(n);
    let vocab = meta.vocab_size.max(1) as u32;
    for _ in 0..n {
        u_sel.push(rng.random::<f32>());
        u_kind.push(rng.random::<f32>());
        random_ids.push(rng.random_range(0..vocab));
    }
    let u_sel = Tensor::from_vec(u_sel, (b, t), dev)?;
    let u_kind = Tensor::from_vec(u_kind, (b, t), dev)?;
    let random_ids = Tensor::from_vec(random_ids, (b, t), dev)?;

    let real = mask.to_dtype(DType::F32)?.gt(0.5)?;
    let mut special = ids.eq(meta.pad_id)?;
    for &s in &meta.special_ids {
        special = special.maximum(&ids.eq(s)?)?;
    }
    let eligible = real.minimum(&special.eq(0u8)?)?;
    let chosen = eligible.minimum(&u_sel.lt(ratio as f32)?)?;
    let to_mask = chosen.minimum(&u_kind.lt(0.8f32)?)?;
    let to_random = chosen.minimum(&u_kind.ge(0.8f32)?.minimum(&u_kind.lt(0.9f32)?)?)?;
    let mask_ids = Tensor::full(meta.mask_id, (b, t), dev)?;
    let new_ids = to_mask.where_cond(&mask_ids, &to_random.where_cond(&random_ids, ids)?)?;

    let flags: Vec<u8> = chosen.flatten_all()?.to_vec1()?;
    let pos: Vec<u32> = flags
        .iter()
        .enumerate()
        .filter(|(_, &f)| f != 0)
        .map(|(i, _)| i as u32)
        .collect();
    if pos.is_empty() {
        return Ok(None);
    }
    let count = pos.len();
    let positions = Tensor::from_vec(pos, count, dev)?;
    let targets = ids.flatten_all()?.index_select(&positions, 0)?;
    Ok(Some(MaskedText {
        ids: new_ids,
        positions,
        targets,
        count,
    }))
}

/// CTR model → prompt generator → PLM → MLM head.
pub struct PaMlmModel {
    pub ctr: CtrModel,
    pub generator: PromptGenerator,
    pub encoder: PlmEncoder,
    pub mlm: MlmHead,
    pub text: TextMeta,
    /// Masking ratio.
    pub ratio: f64,
}

impl PaMlmModel {
    /// Vocabulary logits (N, V) at the masked positions. Only those N hidden
    /// states reach the decoder: the vocabulary projection is the costliest
    /// matmul, and PA-MLM needs ~15% of it.
    pub fn masked_logits(
        &self,
        batch: &Batch,
        masked: &MaskedText,
        train: bool,
        zero_prompts: bool,
    ) -> Result<Tensor> {
        let text = batch
            .text
            .as_ref()
            .context("PA-MLM needs the text side of the batch")?;
        let h = self
            .ctr
            .hidden(batch, train)?
            .context("the CTR backbone has no hidden representation to generate prompts from")?;
        let mut p = self.generator.forward(&h)?;
        if zero_prompts {
            p = p.zeros_like()?;
        }
        let prompts: Prompts = self.generator.as_prompts(&p);
        let picked =
            self.encoder
                .forward_at(&masked.ids, &text.mask, prompts, train, &masked.positions)?;
        Ok(self.mlm.forward(&picked)?)
    }

    /// Mean cross-entropy over the masked positions.
    pub fn loss_masked(&self, batch: &Batch, masked: &MaskedText, train: bool) -> Result<Tensor> {
        let logits = self.masked_logits(batch, masked, train, false)?;
        Ok(crate::model::losses::cross_entropy(
            &logits,
            &masked.targets,
        )?)
    }

    /// (summed CE, correct predictions) at the masked positions, without dropout.
    pub fn eval_counts(
        &self,
        batch: &Batch,
        masked: &MaskedText,
        zero_prompts: bool,
    ) -> Result<(f64, usize)> {
        let logits = self.masked_logits(batch, masked, false, zero_prompts)?;
        let ce = crate::model::losses::cross_entropy(&logits, &masked.targets)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
        let pred = logits.argmax(1)?;
        let correct = pred
            .eq(&masked.targets)?
            .to_dtype(DType::U32)?
            .sum_all()?
            .to_scalar::<u32>()? as usize;
        Ok((ce * masked.count as f64, correct))
    }
}

/// A masking generator for one micro-batch, derived from (seed, epoch, micro):
/// reproducible, and independent of evaluation order.
fn step_rng(seed: u64, epoch: usize, micro: usize) -> StdRng {
    let mix = seed
        ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (micro as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    StdRng::seed_from_u64(mix)
}

impl StageModel for PaMlmModel {
    fn loss(&self, batch: &Batch, train: bool, ctx: &StepCtx) -> Result<Tensor> {
        let text = batch
            .text
            .as_ref()
            .context("PA-MLM needs the text side of the batch")?;
        let mut rng = step_rng(ctx.seed, ctx.epoch, ctx.micro);
        match mask_tokens(&text.ids, &text.mask, &self.text, self.ratio, &mut rng)? {
            Some(m) => self.loss_masked(batch, &m, train),
            // Nothing eligible was drawn: a constant loss leaves every gradient empty.
            None => Ok(Tensor::zeros((), DType::F32, text.ids.device())?),
        }
    }

    fn predict_logits(&self, _batch: &Batch) -> Result<Tensor> {
        anyhow::bail!("PA-MLM predicts tokens, not clicks")
    }

    /// Masked-token loss and accuracy with the prompts and with the prompts
    /// zeroed, on a masking fixed by the seed (comparable across epochs).
    /// Score: minus the masked-token loss.
    fn evaluate(
        &self,
        split: &DeviceSplit,
        eval_batch: usize,
        ctx: &EvalCtx<'_>,
    ) -> Result<Evaluation> {
        let start = Instant::now();
        let mut rng = step_rng(ctx.seed ^ 0x5EED_E7A1, 0, 0);
        let order = epoch_batches(
            split.rows,
            split.token_lengths(),
            OrderSpec {
                batch: eval_batch.max(1),
                shuffle: false,
                bucket_by_length: true,
                seed: ctx.seed,
                epoch: 0,
                max_rows: None,
            },
        );
        let (mut ce, mut ok, mut ce0, mut ok0, mut n) = (0f64, 0usize, 0f64, 0usize, 0usize);
        for rows in order {
            ctx.check_cancel()?;
            let b = split.batch(&rows)?;
            let text = b
                .text
                .as_ref()
                .context("PA-MLM needs the text side of the batch")?;
            let Some(m) = mask_tokens(&text.ids, &text.mask, &self.text, self.ratio, &mut rng)?
            else {
                continue;
            };
            let (c, k) = self.eval_counts(&b, &m, false)?;
            let (c0, k0) = self.eval_counts(&b, &m, true)?;
            ce += c;
            ok += k;
            ce0 += c0;
            ok0 += k0;
            n += m.count;
        }
        if n == 0 {
            anyhow::bail!("no maskable tokens in the {} split", ctx.split.as_str());
        }
        let n = n as f64;
        let loss = ce / n;
        Ok(Evaluation {
            auc: None,
            logloss: None,
            metrics: vec![
                ("mlm_loss".into(), loss),
                ("mlm_acc".into(), ok as f64 / n),
                ("mlm_loss_no_prompt".into(), ce0 / n),
                ("mlm_acc_no_prompt".into(), ok0 as f64 / n),
                ("mlm_tokens".into(), n),
            ],
            score: -loss,
            rows: split.rows,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}
