//! Prompt-augmented masked language modelling (PA-MLM): BERT-style masking of
//! the text, the CTR model's prompts in every layer, cross-entropy on the
//! masked positions only.

use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::trainer::{EvalCtx, Evaluation, StageModel, StepCtx};
use crate::data::batch::split_unit_tag;
use crate::data::{epoch_batches, Batch, DeviceSplit, OrderSpec, TextBatch, TextMeta, NO_WORD};
use crate::model::ctr::CtrModel;
use crate::model::heads::MlmHead;
use crate::model::plm::{PlmEncoder, Prompts};
use crate::model::prompt::PromptGenerator;
use crate::plan::MaskUnit;

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
    /// Per chosen position: 1 + the template field it belongs to, 0 for
    /// template text; empty when the batch carries no token tags.
    pub fields: Vec<u16>,
}

/// BERT masking. `unit` decides what is chosen: each real, non-special
/// token with probability `ratio` (`token`); every token of a word chosen
/// with probability `ratio` (`word`); every token of one template field's
/// value per row, the field drawn uniformly among those present (`field`).
/// A chosen token becomes [MASK] with p 0.8, a random vocabulary id with
/// p 0.1, else stays. The uniforms come from the seeded host `rng` (the CPU
/// tensor RNG cannot be seeded). Returns None when no token was chosen.
pub fn mask_tokens(
    text: &TextBatch,
    meta: &TextMeta,
    ratio: f64,
    unit: MaskUnit,
    rng: &mut StdRng,
) -> Result<Option<MaskedText>> {
    let ids = &text.ids;
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
    let u_kind = Tensor::from_vec(u_kind, (b, t), dev)?;
    let random_ids = Tensor::from_vec(random_ids, (b, t), dev)?;

    let real = text.mask.to_dtype(DType::F32)?.gt(0.5)?;
    let mut special = ids.eq(meta.pad_id)?;
    for &s in &meta.special_ids {
        special = special.maximum(&ids.eq(s)?)?;
    }
    let eligible = real.minimum(&special.eq(0u8)?)?;
    let units: Option<Vec<u32>> = text
        .units
        .as_ref()
        .map(|u| u.flatten_all()?.to_vec1())
        .transpose()?;
    let chosen = match unit {
        MaskUnit::Token => {
            let u_sel = Tensor::from_vec(u_sel, (b, t), dev)?;
            eligible.minimum(&u_sel.lt(ratio as f32)?)?
        }
        MaskUnit::Word | MaskUnit::Field => {
            let units = units.as_deref().context(
                "word and field masking need token tags (rebuild the dataset cache with --rebuild)",
            )?;
            let eligible: Vec<u8> = eligible.flatten_all()?.to_vec1()?;
            let flags = choose_units(&eligible, units, t, ratio, unit, rng);
            Tensor::from_vec(flags, (b, t), dev)?
        }
    };
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
    let fields = match &units {
        Some(u) => pos
            .iter()
            .map(|&p| split_unit_tag(u[p as usize]).0)
            .collect(),
        None => Vec::new(),
    };
    let count = pos.len();
    let positions = Tensor::from_vec(pos, count, dev)?;
    let targets = ids.flatten_all()?.index_select(&positions, 0)?;
    Ok(Some(MaskedText {
        ids: new_ids,
        positions,
        targets,
        count,
        fields,
    }))
}

/// Which of the (B·T) tokens to mask when whole words or fields go
/// together (host-side: per-row grouping has no tensor form here, and a
/// batch is a few thousand tags).
fn choose_units(
    eligible: &[u8],
    units: &[u32],
    t: usize,
    ratio: f64,
    unit: MaskUnit,
    rng: &mut StdRng,
) -> Vec<u8> {
    let mut flags = vec![0u8; eligible.len()];
    let mut draws: Vec<f32> = Vec::new();
    let mut present: Vec<u16> = Vec::new();
    for (row, (elig, tags)) in eligible.chunks(t).zip(units.chunks(t)).enumerate() {
        let out = &mut flags[row * t..(row + 1) * t];
        let tokens = elig.iter().zip(tags).zip(out.iter_mut());
        match unit {
            MaskUnit::Word => {
                let words = tags
                    .iter()
                    .map(|&u| split_unit_tag(u).1)
                    .filter(|&w| w != NO_WORD)
                    .max()
                    .map_or(0, |w| w as usize + 1);
                draws.clear();
                draws.extend((0..words).map(|_| rng.random::<f32>()));
                for ((&e, &u), f) in tokens {
                    let w = split_unit_tag(u).1 as usize;
                    *f = u8::from(e != 0 && w < words && (draws[w] as f64) < ratio);
                }
            }
            _ => {
                present.clear();
                for (&e, &u) in elig.iter().zip(tags) {
                    let field = split_unit_tag(u).0;
                    if e != 0 && field != 0 && !present.contains(&field) {
                        present.push(field);
                    }
                }
                if present.is_empty() {
                    continue;
                }
                let pick = present[rng.random_range(0..present.len())];
                for ((&e, &u), f) in tokens {
                    *f = u8::from(e != 0 && split_unit_tag(u).0 == pick);
                }
            }
        }
    }
    flags
}

/// CTR model → prompt generator → PLM → MLM head.
pub struct PaMlmModel {
    pub ctr: CtrModel,
    pub generator: PromptGenerator,
    pub encoder: PlmEncoder,
    pub mlm: MlmHead,
    pub text: TextMeta,
    /// Masking ratio (of tokens or words).
    pub ratio: f64,
    pub unit: MaskUnit,
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

    /// Masked-token loss with the encoder's output detached: only the MLM
    /// head gets gradients (`head_warmup`). No dropout.
    pub fn head_loss(&self, batch: &Batch, masked: &MaskedText) -> Result<Tensor> {
        let text = batch
            .text
            .as_ref()
            .context("PA-MLM needs the text side of the batch")?;
        let h = self
            .ctr
            .hidden(batch, false)?
            .context("the CTR backbone has no hidden representation to generate prompts from")?;
        let p = self.generator.forward(&h)?.detach();
        let picked = self
            .encoder
            .forward_at(
                &masked.ids,
                &text.mask,
                self.generator.as_prompts(&p),
                false,
                &masked.positions,
            )?
            .detach();
        Ok(crate::model::losses::cross_entropy(
            &self.mlm.forward(&picked)?,
            &masked.targets,
        )?)
    }

    /// Summed CE and, per masked position, whether the prediction was
    /// right; without dropout.
    pub fn eval_counts(
        &self,
        batch: &Batch,
        masked: &MaskedText,
        zero_prompts: bool,
    ) -> Result<(f64, Vec<u8>)> {
        let logits = self.masked_logits(batch, masked, false, zero_prompts)?;
        let ce = crate::model::losses::cross_entropy(&logits, &masked.targets)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
        let correct = logits.argmax(1)?.eq(&masked.targets)?.to_vec1::<u8>()?;
        Ok((ce * masked.count as f64, correct))
    }
}

/// Masked-token hits with and without the prompts.
#[derive(Debug, Clone, Copy, Default)]
struct Hits {
    tokens: usize,
    with: usize,
    without: usize,
}

impl Hits {
    fn with(&self) -> f64 {
        self.with as f64 / self.tokens.max(1) as f64
    }
    fn without(&self) -> f64 {
        self.without as f64 / self.tokens.max(1) as f64
    }
}

/// [`Hits`] overall and per template field.
struct Accuracy {
    all: Hits,
    fields: Vec<Hits>,
}

impl Accuracy {
    fn new(fields: usize) -> Self {
        Accuracy {
            all: Hits::default(),
            fields: vec![Hits::default(); fields],
        }
    }

    /// `tags`: the positions' field tags (may be empty); `with`/`without`:
    /// per position, 1 when predicted right.
    fn add(&mut self, tags: &[u16], with: &[u8], without: &[u8]) {
        for (i, (&k, &k0)) in with.iter().zip(without).enumerate() {
            let (k, k0) = (usize::from(k != 0), usize::from(k0 != 0));
            self.all.tokens += 1;
            self.all.with += k;
            self.all.without += k0;
            let field = tags.get(i).copied().unwrap_or(0) as usize;
            if let Some(h) = field.checked_sub(1).and_then(|f| self.fields.get_mut(f)) {
                h.tokens += 1;
                h.with += k;
                h.without += k0;
            }
        }
    }
}

/// A masking generator for one micro-batch, derived from (seed, epoch, micro):
/// reproducible, and independent of evaluation order.
pub(crate) fn step_rng(seed: u64, epoch: usize, micro: usize) -> StdRng {
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
        match mask_tokens(text, &self.text, self.ratio, self.unit, &mut rng)? {
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
        let (mut ce, mut ce0) = (0f64, 0f64);
        let mut acc = Accuracy::new(self.text.text_fields.len());
        for rows in order {
            ctx.check_cancel()?;
            let b = split.batch(&rows)?;
            let text = b
                .text
                .as_ref()
                .context("PA-MLM needs the text side of the batch")?;
            let Some(m) = mask_tokens(text, &self.text, self.ratio, self.unit, &mut rng)? else {
                continue;
            };
            let (c, k) = self.eval_counts(&b, &m, false)?;
            let (c0, k0) = self.eval_counts(&b, &m, true)?;
            ce += c;
            ce0 += c0;
            acc.add(&m.fields, &k, &k0);
        }
        let n = acc.all.tokens;
        if n == 0 {
            anyhow::bail!("no maskable tokens in the {} split", ctx.split.as_str());
        }
        let n = n as f64;
        let loss = ce / n;
        let mut metrics = vec![
            ("mlm_loss".into(), loss),
            ("mlm_acc".into(), acc.all.with()),
            ("mlm_loss_no_prompt".into(), ce0 / n),
            ("mlm_acc_no_prompt".into(), acc.all.without()),
            ("prompt_gap".into(), acc.all.with() - acc.all.without()),
            ("mlm_tokens".into(), n),
        ];
        // Which fields the prompts carry: the same accuracies over the masked
        // tokens of each field's value.
        for (name, c) in self.text.text_fields.iter().zip(&acc.fields) {
            if c.tokens > 0 {
                metrics.push((format!("mlm_acc[{name}]"), c.with()));
                metrics.push((format!("mlm_acc_no_prompt[{name}]"), c.without()));
                metrics.push((format!("prompt_gap[{name}]"), c.with() - c.without()));
                metrics.push((format!("mlm_tokens[{name}]"), c.tokens as f64));
            }
        }
        Ok(Evaluation {
            auc: None,
            logloss: None,
            metrics,
            score: -loss,
            rows: split.rows,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::batch::unit_tag;
    use candle_core::Device;

    const MASK_ID: u32 = 4;

    /// Two rows: [CLS] a b | c d e | f [SEP] [PAD], fields 1 (a b), 2 (c d e),
    /// template text f; every token its own word except "d e" (one word).
    fn batch() -> (TextBatch, TextMeta) {
        let dev = Device::Cpu;
        let ids: Vec<u32> = vec![
            2, 10, 11, 12, 13, 14, 15, 3, 0, //
            2, 20, 21, 22, 23, 24, 25, 3, 0,
        ];
        let field = [0u16, 1, 1, 2, 2, 2, 0, 0, 0];
        let word = [NO_WORD, 0, 1, 2, 3, 3, 4, NO_WORD, NO_WORD];
        let row: Vec<u32> = field
            .iter()
            .zip(&word)
            .map(|(&f, &w)| unit_tag(f, w))
            .collect();
        let units: Vec<u32> = row.iter().chain(&row).copied().collect();
        let mask: Vec<f32> = (0..18)
            .map(|i| if i % 9 == 8 { 0.0 } else { 1.0 })
            .collect();
        let text = TextBatch {
            ids: Tensor::from_vec(ids, (2, 9), &dev).unwrap(),
            mask: Tensor::from_vec(mask, (2, 9), &dev).unwrap(),
            lengths: vec![8, 8],
            units: Some(Tensor::from_vec(units, (2, 9), &dev).unwrap()),
        };
        let meta = TextMeta {
            vocab_size: 40,
            pad_id: 0,
            mask_id: MASK_ID,
            special_ids: vec![0, 1, 2, 3, 4],
            max_len: 9,
            text_fields: vec!["f1".into(), "f2".into()],
        };
        (text, meta)
    }

    fn chosen_columns(m: &MaskedText, row: u32) -> Vec<u32> {
        let pos: Vec<u32> = m.positions.to_vec1().unwrap();
        pos.iter()
            .filter(|&&p| p / 9 == row)
            .map(|p| p % 9)
            .collect()
    }

    #[test]
    fn a_field_mask_covers_exactly_one_fields_tokens() {
        let (text, meta) = batch();
        let mut seen = [false; 2];
        for seed in 0..40 {
            let mut rng = StdRng::seed_from_u64(seed);
            let m = mask_tokens(&text, &meta, 0.15, MaskUnit::Field, &mut rng)
                .unwrap()
                .unwrap();
            for row in 0..2 {
                let cols = chosen_columns(&m, row);
                match cols.as_slice() {
                    [1, 2] => seen[0] = true,
                    [3, 4, 5] => seen[1] = true,
                    other => panic!("seed {seed} row {row}: masked columns {other:?}"),
                }
            }
            // The tags travel with the positions, for per-field accuracies.
            let want: Vec<u16> = (0..2)
                .flat_map(|r| chosen_columns(&m, r))
                .map(|c| if c <= 2 { 1 } else { 2 })
                .collect();
            assert_eq!(m.fields, want);
        }
        assert_eq!(seen, [true, true], "both fields get chosen");
    }

    #[test]
    fn a_word_mask_takes_all_tokens_of_a_word() {
        let (text, meta) = batch();
        let mut together = 0;
        for seed in 0..200 {
            let mut rng = StdRng::seed_from_u64(seed);
            let Some(m) = mask_tokens(&text, &meta, 0.3, MaskUnit::Word, &mut rng).unwrap() else {
                continue;
            };
            for row in 0..2 {
                let cols = chosen_columns(&m, row);
                assert!(cols.iter().all(|c| (1..=6).contains(c)), "{cols:?}");
                // Columns 4 and 5 are one word: both or neither.
                assert_eq!(
                    cols.contains(&4),
                    cols.contains(&5),
                    "seed {seed}: {cols:?}"
                );
                together += usize::from(cols.contains(&4));
            }
        }
        assert!(
            together > 20,
            "the two-token word was chosen {together} times"
        );
    }

    #[test]
    fn replaced_tokens_follow_bert_proportions() {
        let (text, meta) = batch();
        let (mut masked, mut total) = (0usize, 0usize);
        for seed in 0..300 {
            let mut rng = StdRng::seed_from_u64(seed);
            let m = mask_tokens(&text, &meta, 0.15, MaskUnit::Field, &mut rng)
                .unwrap()
                .unwrap();
            let ids: Vec<u32> = m.ids.flatten_all().unwrap().to_vec1().unwrap();
            let pos: Vec<u32> = m.positions.to_vec1().unwrap();
            masked += pos.iter().filter(|&&p| ids[p as usize] == MASK_ID).count();
            total += pos.len();
        }
        let share = masked as f64 / total as f64;
        assert!((share - 0.8).abs() < 0.04, "[MASK] share {share}");
    }

    #[test]
    fn per_field_accuracy_counts_only_that_fields_tokens() {
        let mut acc = Accuracy::new(2);
        acc.add(&[1, 1, 2, 0], &[1, 0, 1, 1], &[0, 0, 1, 0]);
        assert_eq!((acc.all.tokens, acc.all.with, acc.all.without), (4, 3, 1));
        assert_eq!(
            (
                acc.fields[0].tokens,
                acc.fields[0].with,
                acc.fields[0].without
            ),
            (2, 1, 0)
        );
        assert_eq!(
            (
                acc.fields[1].tokens,
                acc.fields[1].with,
                acc.fields[1].without
            ),
            (1, 1, 1)
        );
        assert_eq!(acc.fields[0].with() - acc.fields[0].without(), 0.5);
    }
}
