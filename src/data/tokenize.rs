//! The PLM's tokenizer, with the plan's maximum length and no padding.
//!
//! Loads `tokenizer.json` (its own truncation and padding are replaced:
//! MiniLM's file pads and truncates to 128) or builds a BERT WordPiece
//! tokenizer from `vocab.txt`. Special tokens come from the file's
//! post-processor: `[CLS] … [SEP]` for BERT, `<s> … </s>` for RoBERTa.
//!
//! Batched encoding is parallel. When the normalizer and pre-tokenizer can
//! never join or split across whitespace (BERT's), the text of a row is the
//! concatenation of its whitespace-separated words' tokens, so each distinct
//! word is tokenized once and rows are assembled from a table; templated
//! rows repeat the same few thousand words, which makes this ~10× faster.
//! Other tokenizers (byte-level BPE, where a word's tokens depend on the
//! preceding space) take the library's own batch path. Both give identical
//! ids; tests compare them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{
    AddedToken, NormalizerWrapper, PreTokenizerWrapper, Tokenizer, TruncationDirection,
    TruncationParams, TruncationStrategy,
};

use super::render::{Texts, ValueSpan};
use super::types::{TextMeta, TokenColumn, NO_WORD};
use crate::error::invalid;

pub struct TextTokenizer {
    tok: Tokenizer,
    /// The file it was built from.
    pub file: PathBuf,
    prefix: Vec<u32>,
    suffix: Vec<u32>,
    word_level: bool,
    meta: TextMeta,
}

fn tk_err(e: tokenizers::Error) -> anyhow::Error {
    anyhow!("{e}")
}

/// The file a PLM folder's tokenizer is built from: `tokenizer.json`, else `vocab.txt`.
pub fn tokenizer_file(dir: &Path) -> Result<PathBuf> {
    for name in ["tokenizer.json", "vocab.txt"] {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(invalid(format!(
        "{}: no tokenizer.json or vocab.txt (is this a HuggingFace model folder?)",
        dir.display()
    )))
}

/// Content hash of what determines the tokenizer (for the cache key).
pub fn fingerprint(dir: &Path) -> Result<String> {
    let file = tokenizer_file(dir)?;
    let mut h = Sha256::new();
    h.update(std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?);
    let cfg = dir.join("tokenizer_config.json");
    if cfg.is_file() {
        h.update(std::fs::read(&cfg).with_context(|| format!("reading {}", cfg.display()))?);
    }
    Ok(hex::encode(h.finalize()))
}

fn normalizer_splits_only_within_words(n: &NormalizerWrapper) -> bool {
    match n {
        NormalizerWrapper::BertNormalizer(_)
        | NormalizerWrapper::Lowercase(_)
        | NormalizerWrapper::StripAccents(_)
        | NormalizerWrapper::NFD(_)
        | NormalizerWrapper::NFKD(_) => true,
        NormalizerWrapper::Sequence(s) => {
            s.as_ref().iter().all(normalizer_splits_only_within_words)
        }
        _ => false,
    }
}

impl TextTokenizer {
    /// From a PLM folder (`tokenizer.json` or `vocab.txt`).
    pub fn from_dir(dir: &Path, max_len: usize) -> Result<Self> {
        let file = tokenizer_file(dir)?;
        if file.file_name().is_some_and(|n| n == "tokenizer.json") {
            Self::from_tokenizer_json(&file, max_len)
        } else {
            let lowercase = lowercase_setting(dir, &file)?;
            Self::from_vocab_txt(&file, lowercase, max_len)
        }
    }

    pub fn from_tokenizer_json(path: &Path, max_len: usize) -> Result<Self> {
        let tok = Tokenizer::from_file(path).map_err(|e| {
            invalid(format!(
                "{}: not a usable tokenizer.json: {e}",
                path.display()
            ))
        })?;
        Self::finish(tok, path, max_len)
    }

    /// A BERT WordPiece tokenizer (`[CLS] … [SEP]`, BERT normalisation).
    pub fn from_vocab_txt(path: &Path, lowercase: bool, max_len: usize) -> Result<Self> {
        let p = path
            .to_str()
            .ok_or_else(|| invalid(format!("{}: path is not UTF-8", path.display())))?;
        let wp = WordPiece::from_file(p)
            .unk_token("[UNK]".into())
            .build()
            .map_err(|e| {
                invalid(format!(
                    "{}: not a WordPiece vocabulary: {e}",
                    path.display()
                ))
            })?;
        let mut tok = Tokenizer::new(wp);
        let id = |t: &str| {
            tok.token_to_id(t).ok_or_else(|| {
                invalid(format!(
                    "{}: the vocabulary has no {t} token",
                    path.display()
                ))
            })
        };
        let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
        id("[UNK]")?;
        tok.with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)));
        tok.with_pre_tokenizer(Some(BertPreTokenizer));
        tok.with_post_processor(Some(BertProcessing::new(
            ("[SEP]".into(), sep),
            ("[CLS]".into(), cls),
        )));
        let specials: Vec<AddedToken> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .iter()
            .filter(|t| tok.token_to_id(t).is_some())
            .map(|t| AddedToken::from(*t, true))
            .collect();
        tok.add_special_tokens(&specials);
        Self::finish(tok, path, max_len)
    }

    fn finish(mut tok: Tokenizer, path: &Path, max_len: usize) -> Result<Self> {
        let named = |names: &[&str]| names.iter().find_map(|n| tok.token_to_id(n));
        let pad_id = tok
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| named(&["[PAD]", "<pad>"]))
            .ok_or_else(|| {
                invalid(format!(
                    "{}: no padding token ([PAD] or <pad>)",
                    path.display()
                ))
            })?;
        let mask_id = named(&["[MASK]", "<mask>"]).ok_or_else(|| {
            invalid(format!(
                "{}: no mask token ([MASK] or <mask>)",
                path.display()
            ))
        })?;
        tok.with_padding(None);
        tok.with_truncation(None).map_err(tk_err)?;

        // What the post-processor puts around a sequence.
        let probe = "hello world";
        let bare = tok.encode(probe, false).map_err(tk_err)?.get_ids().to_vec();
        let full = tok.encode(probe, true).map_err(tk_err)?.get_ids().to_vec();
        let at = (0..=full.len().saturating_sub(bare.len()))
            .find(|&i| full[i..].starts_with(&bare))
            .ok_or_else(|| {
                anyhow!(
                    "{}: cannot locate the text between special tokens",
                    path.display()
                )
            })?;
        let prefix = full[..at].to_vec();
        let suffix = full[at + bare.len()..].to_vec();
        if max_len <= prefix.len() + suffix.len() {
            return Err(invalid(format!(
                "max_len {max_len} leaves no room for text next to the {} special tokens",
                prefix.len() + suffix.len()
            )));
        }
        tok.with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length: max_len,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        }))
        .map_err(tk_err)?;

        let added = tok.get_added_tokens_decoder();
        let mut special_ids: Vec<u32> = added
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(&id, _)| id)
            .chain(prefix.iter().copied())
            .chain(suffix.iter().copied())
            .collect();
        special_ids.sort_unstable();
        special_ids.dedup();
        let word_level = tok
            .get_normalizer()
            .is_none_or(normalizer_splits_only_within_words)
            && matches!(
                tok.get_pre_tokenizer(),
                Some(
                    PreTokenizerWrapper::BertPreTokenizer(_)
                        | PreTokenizerWrapper::Whitespace(_)
                        | PreTokenizerWrapper::WhitespaceSplit(_)
                )
            )
            && added
                .values()
                .all(|t| t.special && !t.content.chars().any(char::is_whitespace));
        let meta = TextMeta {
            vocab_size: tok.get_vocab_size(true),
            pad_id,
            mask_id,
            special_ids,
            max_len,
            text_fields: Vec::new(),
        };
        Ok(Self {
            tok,
            file: path.to_path_buf(),
            prefix,
            suffix,
            word_level,
            meta,
        })
    }

    pub fn meta(&self) -> &TextMeta {
        &self.meta
    }

    /// Whether the word-table fast path is used.
    pub fn word_level(&self) -> bool {
        self.word_level
    }

    pub fn inner(&self) -> &Tokenizer {
        &self.tok
    }

    /// Ids of one text, special tokens included, truncated to `max_len`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self
            .tok
            .encode(text, true)
            .map_err(tk_err)?
            .get_ids()
            .to_vec())
    }

    /// Ids of many texts (parallel), special tokens included, truncated to
    /// `max_len`, unpadded; tokens tagged with their words, not with fields.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<TokenColumn> {
        self.encode_spans(texts, &[], 0)
    }

    /// Rendered rows, every token tagged with its word and with the template
    /// field whose value it belongs to.
    pub fn encode_texts(&self, texts: &Texts) -> Result<TokenColumn> {
        let refs: Vec<&str> = (0..texts.len()).map(|k| texts.get(k)).collect();
        self.encode_spans(&refs, &texts.spans, texts.slots)
    }

    /// Row `k`'s value spans are `spans[k * slots..(k + 1) * slots]` (none when `slots` is 0).
    fn encode_spans(
        &self,
        texts: &[&str],
        spans: &[ValueSpan],
        slots: usize,
    ) -> Result<TokenColumn> {
        if self.word_level {
            self.encode_by_words(texts, spans, slots)
        } else {
            self.encode_reference(texts, spans, slots)
        }
    }

    /// The library's own batch encoder (the reference the fast path must match).
    pub fn encode_batch_reference(&self, texts: &[&str]) -> Result<TokenColumn> {
        self.encode_reference(texts, &[], 0)
    }

    /// [`TextTokenizer::encode_texts`] through the library's own batch encoder.
    pub fn encode_texts_reference(&self, texts: &Texts) -> Result<TokenColumn> {
        let refs: Vec<&str> = (0..texts.len()).map(|k| texts.get(k)).collect();
        self.encode_reference(&refs, &texts.spans, texts.slots)
    }

    fn encode_reference(
        &self,
        texts: &[&str],
        spans: &[ValueSpan],
        slots: usize,
    ) -> Result<TokenColumn> {
        let enc = self
            .tok
            .encode_batch(texts.to_vec(), true)
            .map_err(tk_err)?;
        let total = enc.iter().map(|e| e.len()).sum();
        let mut col = TokenColumn {
            offsets: Vec::with_capacity(texts.len() + 1),
            ids: Vec::with_capacity(total),
            fields: Vec::with_capacity(total),
            words: Vec::with_capacity(total),
        };
        col.offsets.push(0u32);
        for (k, e) in enc.iter().enumerate() {
            let row_spans = row_spans(spans, slots, k);
            col.ids.extend_from_slice(e.get_ids());
            for (word, &(a, b)) in e.get_word_ids().iter().zip(e.get_offsets()) {
                match word {
                    Some(w) => {
                        col.words.push(word_index(*w as usize)?);
                        col.fields.push(field_tag(row_spans, a, b));
                    }
                    None => {
                        col.words.push(NO_WORD);
                        col.fields.push(0);
                    }
                }
            }
            col.offsets.push(col.ids.len() as u32);
        }
        Ok(col)
    }

    fn encode_by_words(
        &self,
        texts: &[&str],
        spans: &[ValueSpan],
        slots: usize,
    ) -> Result<TokenColumn> {
        const CHUNK: usize = 4096;
        let words: HashSet<&str> = texts
            .par_chunks(CHUNK)
            .map(|ch| {
                ch.iter()
                    .flat_map(|t| t.split_whitespace())
                    .collect::<HashSet<&str>>()
            })
            .reduce(HashSet::new, |mut a, b| {
                if a.len() < b.len() {
                    return b.into_iter().chain(a).collect();
                }
                a.extend(b);
                a
            });
        let words: Vec<&str> = words.into_iter().collect();
        let enc = self
            .tok
            .encode_batch(words.clone(), false)
            .map_err(tk_err)?;
        // Per distinct whitespace word: its tokens, each token's byte range
        // within the word and its pre-tokenized word within the word.
        let mut table: HashMap<&str, (u32, u32)> = HashMap::with_capacity(words.len());
        let mut flat: Vec<u32> = Vec::new();
        let mut flat_offsets: Vec<(usize, usize)> = Vec::new();
        let mut flat_words: Vec<u32> = Vec::new();
        for (w, e) in words.iter().zip(&enc) {
            table.insert(w, (flat.len() as u32, e.len() as u32));
            flat.extend_from_slice(e.get_ids());
            flat_offsets.extend_from_slice(e.get_offsets());
            flat_words.extend(e.get_word_ids().iter().map(|x| x.unwrap_or(0)));
        }
        let budget = self.meta.max_len - self.prefix.len() - self.suffix.len();
        let specials = |n: usize| std::iter::repeat_n(NO_WORD, n);
        let parts: Vec<(Vec<u32>, TokenColumn)> = texts
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(c, ch)| {
                let mut lens = Vec::with_capacity(ch.len());
                let mut part = TokenColumn::untagged(Vec::new(), Vec::with_capacity(ch.len() * 48));
                for (i, t) in ch.iter().enumerate() {
                    let row_spans = row_spans(spans, slots, c * CHUNK + i);
                    let start = part.ids.len();
                    part.ids.extend_from_slice(&self.prefix);
                    part.words.extend(specials(self.prefix.len()));
                    part.fields
                        .extend(std::iter::repeat_n(0, self.prefix.len()));
                    let mut room = budget;
                    let mut words_before = 0usize;
                    for w in t.split_whitespace() {
                        if room == 0 {
                            break;
                        }
                        let at = w.as_ptr() as usize - t.as_ptr() as usize;
                        let &(s, l) = table.get(w).ok_or_else(|| {
                            anyhow!("internal: word {w:?} missing from the word table")
                        })?;
                        let (s, l) = (s as usize, l as usize);
                        let take = l.min(room);
                        part.ids.extend_from_slice(&flat[s..s + take]);
                        for &w in &flat_words[s..s + take] {
                            part.words.push(word_index(words_before + w as usize)?);
                        }
                        for &(a, b) in &flat_offsets[s..s + take] {
                            part.fields.push(field_tag(row_spans, at + a, at + b));
                        }
                        words_before += flat_words[s..s + l]
                            .iter()
                            .max()
                            .map_or(0, |&m| m as usize + 1);
                        room -= take;
                    }
                    part.ids.extend_from_slice(&self.suffix);
                    part.words.extend(specials(self.suffix.len()));
                    part.fields
                        .extend(std::iter::repeat_n(0, self.suffix.len()));
                    lens.push((part.ids.len() - start) as u32);
                }
                Ok((lens, part))
            })
            .collect::<Result<_>>()?;
        let total: usize = parts.iter().map(|(_, p)| p.ids.len()).sum();
        let mut col = TokenColumn {
            offsets: Vec::with_capacity(texts.len() + 1),
            ids: Vec::with_capacity(total),
            fields: Vec::with_capacity(total),
            words: Vec::with_capacity(total),
        };
        col.offsets.push(0u32);
        for (lens, part) in parts {
            let mut at = col.ids.len() as u32;
            for l in lens {
                at += l;
                col.offsets.push(at);
            }
            col.ids.extend_from_slice(&part.ids);
            col.words.extend_from_slice(&part.words);
            col.fields.extend_from_slice(&part.fields);
        }
        Ok(col)
    }
}

/// Row `k`'s value spans (empty when the texts carry none).
fn row_spans(spans: &[ValueSpan], slots: usize, k: usize) -> &[ValueSpan] {
    spans.get(k * slots..(k + 1) * slots).unwrap_or(&[])
}

/// 1 + the field whose value overlaps bytes `a..b` of the row, else 0.
fn field_tag(spans: &[ValueSpan], a: usize, b: usize) -> u16 {
    spans
        .iter()
        .find(|s| (s.start as usize) < b.max(a + 1) && a < s.end as usize)
        .map_or(0, |s| s.field + 1)
}

fn word_index(w: usize) -> Result<u16> {
    u16::try_from(w)
        .ok()
        .filter(|&w| w != NO_WORD)
        .ok_or_else(|| anyhow!("a row has more than {} words", NO_WORD - 1))
}

/// `[CLS]`, `<s>` and the like.
fn is_bracketed(t: &str) -> bool {
    (t.starts_with('[') && t.ends_with(']')) || (t.starts_with('<') && t.ends_with('>'))
}

/// `do_lower_case` from `tokenizer_config.json`, else lowercase unless the
/// vocabulary has upper-case word pieces (a cased model).
fn lowercase_setting(dir: &Path, vocab: &Path) -> Result<bool> {
    let cfg = dir.join("tokenizer_config.json");
    if let Ok(text) = std::fs::read_to_string(&cfg) {
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| invalid(format!("{}: not valid JSON: {e}", cfg.display())))?;
        if let Some(b) = v.get("do_lower_case").and_then(serde_json::Value::as_bool) {
            return Ok(b);
        }
    }
    let text = std::fs::read_to_string(vocab)
        .map_err(|e| invalid(format!("cannot read {}: {e}", vocab.display())))?;
    let cased = text
        .lines()
        .filter(|t| !is_bracketed(t))
        .any(|t| t.chars().any(char::is_uppercase));
    Ok(!cased)
}
