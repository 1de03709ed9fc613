//! Evaluation metrics: exact tie-aware ROC AUC and LogLoss.
//!
//! A click probability is the f64 sigmoid of the model's f32 logit
//! ([`probability`]): f64 keeps distinct logits distinct (an f32 sigmoid
//! maps neighbouring logits near 0 or 1 onto one value, which would add
//! ties), so the AUC of the probabilities `predict` writes equals the AUC of
//! the logits, and their LogLoss equals the evaluation's bit for bit.

use std::cmp::Ordering;
use std::fmt::Display;

use anyhow::{bail, Result};

/// What AUC ranks: f32 logits or f64 probabilities.
pub trait Score: Copy + PartialEq + Display {
    fn finite(self) -> bool;
    fn order(&self, other: &Self) -> Ordering;
}

impl Score for f32 {
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn order(&self, other: &Self) -> Ordering {
        self.total_cmp(other)
    }
}

impl Score for f64 {
    fn finite(self) -> bool {
        self.is_finite()
    }
    fn order(&self, other: &Self) -> Ordering {
        self.total_cmp(other)
    }
}

/// Exact ROC AUC: the probability that a random positive scores above a
/// random negative, ties counting one half. Sort-based, O(n log n): tied
/// scores share their average rank (Mann–Whitney U).
///
/// Errors on length mismatch, on non-finite scores, on labels other than
/// 0/1, and when only one class is present (AUC is undefined there).
pub fn auc<S: Score>(scores: &[S], labels: &[f32]) -> Result<f64> {
    if scores.len() != labels.len() {
        bail!("auc: {} scores but {} labels", scores.len(), labels.len());
    }
    let mut pos = 0usize;
    for (i, (&s, &y)) in scores.iter().zip(labels).enumerate() {
        if !s.finite() {
            bail!("auc: score {i} is {s}");
        }
        if y == 1.0 {
            pos += 1;
        } else if y != 0.0 {
            bail!("auc: label {i} is {y}, expected 0 or 1");
        }
    }
    let neg = scores.len() - pos;
    if pos == 0 || neg == 0 {
        bail!(
            "auc is undefined with a single class ({} positives, {} negatives)",
            pos,
            neg
        );
    }
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| scores[a as usize].order(&scores[b as usize]));
    // Sum of (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0f64;
    let mut i = 0usize;
    while i < order.len() {
        let s = scores[order[i] as usize];
        let mut j = i;
        let mut pos_in_group = 0usize;
        while j < order.len() && scores[order[j] as usize] == s {
            if labels[order[j] as usize] == 1.0 {
                pos_in_group += 1;
            }
            j += 1;
        }
        let avg_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg_rank * pos_in_group as f64;
        i = j;
    }
    let p = pos as f64;
    Ok((rank_sum - p * (p + 1.0) / 2.0) / (p * neg as f64))
}

/// Probabilities are clipped to [EPS, 1 − EPS] before taking logs.
pub const LOGLOSS_EPS: f64 = 1e-7;

/// Mean binary cross-entropy of probabilities `probs` (f32 or f64) against 0/1 `labels`.
pub fn logloss<P: Copy + Into<f64>>(probs: &[P], labels: &[f32]) -> Result<f64> {
    if probs.len() != labels.len() {
        bail!(
            "logloss: {} predictions but {} labels",
            probs.len(),
            labels.len()
        );
    }
    if probs.is_empty() {
        bail!("logloss of an empty set");
    }
    let mut sum = 0f64;
    for (i, (&p, &y)) in probs.iter().zip(labels).enumerate() {
        let p: f64 = p.into();
        if !p.is_finite() {
            bail!("logloss: prediction {i} is {p}");
        }
        let p = p.clamp(LOGLOSS_EPS, 1.0 - LOGLOSS_EPS);
        let y = y as f64;
        sum -= y * p.ln() + (1.0 - y) * (1.0 - p).ln();
    }
    Ok(sum / probs.len() as f64)
}

/// LogLoss from logits, through [`probability`].
pub fn logloss_from_logits(logits: &[f32], labels: &[f32]) -> Result<f64> {
    let probs: Vec<f64> = logits.iter().map(|&z| probability(z)).collect();
    logloss(&probs, labels)
}

/// The click probability of a logit: its sigmoid, in f64.
pub fn probability(logit: f32) -> f64 {
    let z = logit as f64;
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

pub fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn auc_hand_cases() {
        close(
            auc(&[0.1, 0.4, 0.35, 0.8], &[0., 0., 1., 1.]).unwrap(),
            0.75,
        );
        close(auc(&[0.9, 0.8, 0.1], &[1., 1., 0.]).unwrap(), 1.0);
        close(auc(&[0.1, 0.2, 0.9], &[1., 1., 0.]).unwrap(), 0.0);
        // All tied: every pair counts one half.
        close(auc(&[0.5; 4], &[0., 1., 0., 1.]).unwrap(), 0.5);
        // Pairs (pos, neg): (0.5,0.5)=½, (0.5,0.2)=1, (0.9,0.5)=1, (0.9,0.2)=1 → 3.5/4.
        close(
            auc(&[0.5, 0.9, 0.5, 0.2], &[1., 1., 0., 0.]).unwrap(),
            0.875,
        );
    }

    #[test]
    fn auc_matches_brute_force_with_ties() {
        let scores: Vec<f32> = (0..200).map(|i| ((i * 37) % 11) as f32 / 10.0).collect();
        let labels: Vec<f32> = (0..200).map(|i| ((i * 13) % 3 == 0) as u8 as f32).collect();
        let mut num = 0f64;
        let mut den = 0f64;
        for (i, &yi) in labels.iter().enumerate() {
            for (j, &yj) in labels.iter().enumerate() {
                if yi == 1.0 && yj == 0.0 {
                    den += 1.0;
                    num += if scores[i] > scores[j] {
                        1.0
                    } else if scores[i] == scores[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        close(auc(&scores, &labels).unwrap(), num / den);
    }

    #[test]
    fn auc_errors() {
        assert!(auc(&[0.1, 0.2], &[1., 1.])
            .unwrap_err()
            .to_string()
            .contains("single class"));
        assert!(auc(&[0.1, 0.2], &[0., 0.]).is_err());
        assert!(auc::<f32>(&[], &[]).is_err());
        assert!(auc(&[0.1, f32::NAN], &[0., 1.]).is_err());
        assert!(auc(&[0.1], &[0., 1.]).is_err());
        assert!(auc(&[0.1, 0.2], &[0., 2.]).is_err());
    }

    #[test]
    fn f64_probabilities_keep_distinct_logits_apart() {
        // Neighbouring f32 logits whose f32 sigmoids coincide.
        let z = 9.0f32;
        let next = f32::from_bits(z.to_bits() + 1);
        assert_eq!(sigmoid(z), sigmoid(next));
        assert!(probability(z) < probability(next));
        let labels = [0.0, 1.0];
        assert_eq!(auc(&[z, next], &labels).unwrap(), 1.0);
        assert_eq!(
            auc(&[probability(z), probability(next)], &labels).unwrap(),
            1.0
        );
        assert_eq!(auc(&[sigmoid(z), sigmoid(next)], &labels).unwrap(), 0.5);
        let logits = [-3.5f32, 0.25, 7.0];
        let probs: Vec<f64> = logits.iter().map(|&z| probability(z)).collect();
        assert_eq!(
            logloss_from_logits(&logits, &[0., 1., 1.]).unwrap(),
            logloss(&probs, &[0., 1., 1.]).unwrap()
        );
    }

    #[test]
    fn logloss_hand_cases() {
        let v = logloss(&[0.8, 0.3], &[1., 0.]).unwrap();
        assert!((v - -(0.8f64.ln() + 0.7f64.ln()) / 2.0).abs() < 1e-6, "{v}");
        // Clipped, finite for certain-and-wrong predictions.
        let v = logloss(&[0.0, 1.0], &[1., 0.]).unwrap();
        assert!((v - (-(LOGLOSS_EPS.ln()))).abs() < 1e-6, "{v}");
        let z = logloss_from_logits(&[0.0, 2.0], &[1., 1.]).unwrap();
        let want = (2f64.ln() + (1.0 + (-2f64).exp()).ln()) / 2.0;
        assert!((z - want).abs() < 1e-6);
        assert!(logloss::<f32>(&[], &[]).is_err());
    }
}
