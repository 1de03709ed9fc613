//! Fused multi-head attention for the CPU, with a backward pass, reading the
//! fused QKV projection and the deep-prompt prefixes where they lie.
//!
//! softmax(scale · Q [Pk; K]ᵀ + mask) with dropout, times [Pv; V], per
//! (batch, head): the scores never become a tensor, and each batch row runs
//! single-threaded small matmuls while rayon spreads the rows over the cores.
//! (candle's batched matmul instead runs B·H tiny gemm calls one after
//! another, each split across threads: on attention-sized blocks the
//! synchronisation costs more than the arithmetic.) Q, K and V are read with
//! strides from the (B·T, 3d) projection, the prefixes are a second key/value
//! block, and the context is written as (B·T, d) for the output projection:
//! no head permutes, no key/value concatenation and no transposed copy, in
//! either direction. The backward recomputes the probabilities from Q and K,
//! and the dropout mask from the seed, rather than keeping (B, H, T, S)
//! tensors alive.
//!
//! Elsewhere (CUDA) the encoder composes candle ops (`fused::supported`).
//! Verified against that composition and by finite differences in
//! `tests/plm_grad.rs`.

use std::sync::Arc;

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor,
};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use rayon::prelude::*;

use super::fused::{as_f32, as_f32_mut, contiguous};
use super::gemm::{mm_rs, Float};
use super::simd::{softmax_bwd_row, softmax_row};

#[derive(Debug, Clone)]
struct Attention {
    /// Additive key mask (B, K+T) on the host: 0 visible, −1e9 hidden.
    mask: Arc<Vec<f64>>,
    /// The same mask in f32 for the vectorized f32 softmax.
    mask32: Arc<Vec<f32>>,
    batch: usize,
    heads: usize,
    /// Text tokens (queries, and keys after the prefix).
    t: usize,
    /// Prefix keys/values per head (0 without deep prompts).
    kp: usize,
    dh: usize,
    scale: f64,
    /// Dropout probability on the attention weights (0 = none).
    p: f64,
    seed: u64,
}

/// Where (batch row b, head h) finds its operands.
struct Block {
    /// Offset of its first query in the qkv buffer (keys at + d, values at + 2d).
    q: usize,
    /// Offset of its prefix block in pk / pv (and in their gradients).
    prefix: usize,
    /// Offset of its head in the batch row's (T, d) context / gradient chunk.
    head: usize,
}

impl Attention {
    fn d(&self) -> usize {
        self.heads * self.dh
    }

    fn s(&self) -> usize {
        self.kp + self.t
    }

    fn block(&self, b: usize, h: usize) -> Block {
        Block {
            q: b * self.t * 3 * self.d() + h * self.dh,
            prefix: (b * self.heads + h) * self.kp * self.dh,
            head: h * self.dh,
        }
    }

    fn block_rng(&self, bh: usize) -> SmallRng {
        SmallRng::seed_from_u64(self.seed ^ (bh as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Probabilities (T×S, pre-dropout) of (b, h) into `p`: prefix keys in
    /// columns 0..K, text keys in K..S.
    fn probs<T: Float>(&self, b: usize, h: usize, qkv: &[T], pk: &[T], p: &mut [T]) {
        let (t, kp, s, dh, d3) = (self.t, self.kp, self.s(), self.dh, 3 * self.d());
        let blk = self.block(b, h);
        let q = &qkv[blk.q..];
        mm_rs(
            t,
            kp,
            dh,
            p,
            s,
            false,
            q,
            (d3, 1),
            &pk[blk.prefix..],
            (1, dh),
            self.scale,
            1,
        );
        let k = &qkv[blk.q + self.d()..];
        mm_rs(
            t,
            t,
            dh,
            &mut p[kp..],
            s,
            false,
            q,
            (d3, 1),
            k,
            (1, d3),
            self.scale,
            1,
        );
        let keys = b * s..(b + 1) * s;
        if let Some(p32) = as_f32_mut(p) {
            for row in p32.chunks_mut(s) {
                softmax_row(row, &self.mask32[keys.clone()]);
            }
            return;
        }
        let mask = &self.mask[keys];
        for row in p.chunks_mut(s) {
            for (v, m) in row.iter_mut().zip(mask) {
                *v = T::from_f64(v.to_f64() + m);
            }
            super::fused::softmax_in_place(row);
        }
    }

    /// Dropout keep-scale per element of (b, h) (0 or 1/(1−p)) in the
    /// tensor's type, two elements per 64-bit draw; empty when p = 0.
    fn keep<T: Float>(&self, b: usize, h: usize) -> Vec<T> {
        if self.p <= 0.0 {
            return Vec::new();
        }
        let mut rng = self.block_rng(b * self.heads + h);
        let threshold = (self.p * u32::MAX as f64) as u32;
        let scale = T::from_f64(1.0 / (1.0 - self.p));
        let n = self.t * self.s();
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let r = rng.next_u64();
            for half in [r as u32, (r >> 32) as u32] {
                out.push(if half >= threshold { scale } else { T::zero() });
            }
        }
        out.truncate(n);
        out
    }

    fn forward<T: Float>(&self, qkv: &[T], pk: &[T], pv: &[T]) -> Vec<T> {
        let (t, kp, s, dh, d) = (self.t, self.kp, self.s(), self.dh, self.d());
        let mut out = vec![T::zero(); self.batch * t * d];
        out.par_chunks_mut(t * d).enumerate().for_each(|(b, o)| {
            let mut p = vec![T::zero(); t * s];
            for h in 0..self.heads {
                let blk = self.block(b, h);
                self.probs(b, h, qkv, pk, &mut p);
                let keep = self.keep::<T>(b, h);
                if !keep.is_empty() {
                    for (x, &m) in p.iter_mut().zip(&keep) {
                        *x *= m;
                    }
                }
                let o = &mut o[blk.head..];
                mm_rs(
                    t,
                    dh,
                    kp,
                    o,
                    d,
                    false,
                    &p,
                    (s, 1),
                    &pv[blk.prefix..],
                    (dh, 1),
                    1.0,
                    1,
                );
                let v = &qkv[blk.q + 2 * d..];
                mm_rs(
                    t,
                    dh,
                    t,
                    o,
                    d,
                    kp > 0,
                    &p[kp..],
                    (s, 1),
                    v,
                    (3 * d, 1),
                    1.0,
                    1,
                );
            }
        });
        out
    }

    /// Gradients packed as [dqkv (B·T·3d) | dpk (B·H·K·dh) | dpv (B·H·K·dh)].
    fn backward<T: Float>(&self, qkv: &[T], pk: &[T], pv: &[T], dout: &[T]) -> Vec<T> {
        let (t, kp, s, dh, d) = (self.t, self.kp, self.s(), self.dh, self.d());
        let d3 = 3 * d;
        let nq = self.batch * t * d3;
        let np = self.batch * self.heads * kp * dh;
        let mut out = vec![T::zero(); nq + 2 * np];
        let (dqkv, dprefix) = out.split_at_mut(nq);
        let (dpk, dpv) = dprefix.split_at_mut(np);
        // One task per batch row, owning its slices of the three gradients
        // (the prefix ones are empty without deep prompts).
        let tasks: Vec<_> = dqkv
            .chunks_mut(t * d3)
            .zip(per_row(dpk, self.batch, self.heads * kp * dh))
            .zip(per_row(dpv, self.batch, self.heads * kp * dh))
            .enumerate()
            .collect();
        tasks.into_par_iter().for_each(|(b, ((g, gpk), gpv))| {
            let mut p = vec![T::zero(); t * s];
            let mut dp = vec![T::zero(); t * s];
            for h in 0..self.heads {
                let blk = self.block(b, h);
                // Offsets of this block inside the batch row's chunks.
                let (row_q, row_p) = (h * dh, h * kp * dh);
                let q = &qkv[blk.q..];
                let k = &qkv[blk.q + d..];
                let v = &qkv[blk.q + 2 * d..];
                let dob = &dout[b * t * d + blk.head..];
                self.probs(b, h, qkv, pk, &mut p);
                let keep = self.keep::<T>(b, h);
                if !keep.is_empty() {
                    // P' = P ⊙ keep for dV; P itself is needed by the softmax backward.
                    let dropped: Vec<T> = p.iter().zip(&keep).map(|(&x, &m)| x * m).collect();
                    self.dv(&dropped, dob, g, &mut gpv[row_p..], row_q);
                } else {
                    self.dv(&p, dob, g, &mut gpv[row_p..], row_q);
                }
                // dP' = dO [Pv; V]ᵀ, then through dropout.
                mm_rs(
                    t,
                    kp,
                    dh,
                    &mut dp,
                    s,
                    false,
                    dob,
                    (d, 1),
                    &pv[blk.prefix..],
                    (1, dh),
                    1.0,
                    1,
                );
                mm_rs(
                    t,
                    t,
                    dh,
                    &mut dp[kp..],
                    s,
                    false,
                    dob,
                    (d, 1),
                    v,
                    (1, d3),
                    1.0,
                    1,
                );
                if !keep.is_empty() {
                    for (x, &m) in dp.iter_mut().zip(&keep) {
                        *x *= m;
                    }
                }
                softmax_bwd(&p, &mut dp, s);
                // dQ = scale · dS [Pk; K].
                let dq = &mut g[row_q..];
                mm_rs(
                    t,
                    dh,
                    kp,
                    dq,
                    d3,
                    false,
                    &dp,
                    (s, 1),
                    &pk[blk.prefix..],
                    (dh, 1),
                    self.scale,
                    1,
                );
                mm_rs(
                    t,
                    dh,
                    t,
                    dq,
                    d3,
                    kp > 0,
                    &dp[kp..],
                    (s, 1),
                    k,
                    (d3, 1),
                    self.scale,
                    1,
                );
                // dK = scale · dSᵀ Q for the text keys, dPk likewise for the prefix.
                mm_rs(
                    t,
                    dh,
                    t,
                    &mut g[d + row_q..],
                    d3,
                    false,
                    &dp[kp..],
                    (1, s),
                    q,
                    (d3, 1),
                    self.scale,
                    1,
                );
                if kp > 0 {
                    mm_rs(
                        kp,
                        dh,
                        t,
                        &mut gpk[row_p..],
                        dh,
                        false,
                        &dp,
                        (1, s),
                        q,
                        (d3, 1),
                        self.scale,
                        1,
                    );
                }
            }
        });
        out
    }

    /// dV = P'ᵀ dO: text values into the batch row's qkv gradient, prefix
    /// values into its dPv block.
    fn dv<T: Float>(&self, p: &[T], dob: &[T], g: &mut [T], gpv: &mut [T], row_q: usize) {
        let (t, kp, s, dh, d) = (self.t, self.kp, self.s(), self.dh, self.d());
        mm_rs(
            t,
            dh,
            t,
            &mut g[2 * d + row_q..],
            3 * d,
            false,
            &p[kp..],
            (1, s),
            dob,
            (d, 1),
            1.0,
            1,
        );
        if kp > 0 {
            mm_rs(kp, dh, t, gpv, dh, false, p, (1, s), dob, (d, 1), 1.0, 1);
        }
    }
}

/// `g` cut into `rows` chunks of `chunk` (`rows` empty slices when `g` is
/// empty: no deep prompts).
fn per_row<T>(g: &mut [T], rows: usize, chunk: usize) -> Vec<&mut [T]> {
    if g.is_empty() {
        (0..rows).map(|_| <&mut [T]>::default()).collect()
    } else {
        g.chunks_mut(chunk).collect()
    }
}

/// Softmax backward of every row (width `s`) in place: dp ← p ⊙ (dp − Σ p ⊙ dp).
fn softmax_bwd<T: Float>(p: &[T], dp: &mut [T], s: usize) {
    if let (Some(p32), Some(dp32)) = (as_f32(p), as_f32_mut(dp)) {
        for (prow, drow) in p32.chunks(s).zip(dp32.chunks_mut(s)) {
            softmax_bwd_row(prow, drow);
        }
    } else {
        for (prow, drow) in p.chunks(s).zip(dp.chunks_mut(s)) {
            let dot: f64 = prow
                .iter()
                .zip(drow.iter())
                .map(|(a, b)| a.to_f64() * b.to_f64())
                .sum();
            for (pv, dv) in prow.iter().zip(drow.iter_mut()) {
                *dv = T::from_f64(pv.to_f64() * (dv.to_f64() - dot));
            }
        }
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = crate::model::fused::per_float!(s1.dtype(), "fused attention", T => self.forward(
            contiguous::<T>(s1, l1, "fused attention qkv")?,
            contiguous::<T>(s2, l2, "fused attention prefix keys")?,
            contiguous::<T>(s3, l3, "fused attention prefix values")?,
        ));
        Ok((out, Shape::from((self.batch * self.t, self.d()))))
    }

    fn bwd(
        &self,
        qkv: &Tensor,
        pk: &Tensor,
        pv: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dout = grad_res.contiguous()?;
        let op = AttentionBwd {
            fwd: self.clone(),
            dout,
        };
        let packed = qkv.apply_op3_no_bwd(pk, pv, &op)?;
        let nq = self.batch * self.t * 3 * self.d();
        let np = self.batch * self.heads * self.kp * self.dh;
        let prefix_shape = (self.batch, self.heads, self.kp, self.dh);
        let dqkv = packed.narrow(0, 0, nq)?.reshape(qkv.shape())?;
        let dpk = packed.narrow(0, nq, np)?.reshape(prefix_shape)?;
        let dpv = packed.narrow(0, nq + np, np)?.reshape(prefix_shape)?;
        Ok((Some(dqkv), Some(dpk), Some(dpv)))
    }
}

/// The backward as a no-grad op over (qkv, pk, pv) with dO carried along.
struct AttentionBwd {
    fwd: Attention,
    dout: Tensor,
}

impl CustomOp3 for AttentionBwd {
    fn name(&self) -> &'static str {
        "fused-attention-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let a = &self.fwd;
        let (storage, layout) = self.dout.storage_and_layout();
        let dstore = match &*storage {
            candle_core::Storage::Cpu(c) => c,
            _ => candle_core::bail!("fused attention bwd: gradient not on the CPU"),
        };
        let out = crate::model::fused::per_float!(s1.dtype(), "fused attention bwd", T => a.backward(
            contiguous::<T>(s1, l1, "fused attention qkv")?,
            contiguous::<T>(s2, l2, "fused attention prefix keys")?,
            contiguous::<T>(s3, l3, "fused attention prefix values")?,
            contiguous::<T>(dstore, layout, "fused attention gradient")?,
        ));
        let len = out_len(&out);
        Ok((out, Shape::from(len)))
    }
}

fn out_len(s: &CpuStorage) -> usize {
    match s {
        CpuStorage::F32(v) => v.len(),
        CpuStorage::F64(v) => v.len(),
        _ => 0,
    }
}

/// Multi-head attention from the fused projection, CPU only.
///
/// `qkv` (B·T, 3d): per token [q | k | v], each H heads of dh side by side.
/// `prefix`: deep-prompt keys and values (B, H, K, dh) each, put in front of
/// the text's. `mask_add` (B, K+T) additive (0 / −1e9) over prefix + text
/// keys. Dropout p on the weights when `train`. Returns the context
/// (B·T, d), heads side by side.
#[allow(clippy::too_many_arguments)]
pub fn attention_qkv(
    qkv: &Tensor,
    prefix: Option<(&Tensor, &Tensor)>,
    mask_add: &Tensor,
    batch: usize,
    heads: usize,
    scale: f64,
    p: f64,
    train: bool,
) -> Result<Tensor> {
    let p = if train { p } else { 0.0 };
    let seed = if p > 0.0 {
        super::nn::dropout_seed()
    } else {
        0
    };
    attention_qkv_with_seed(qkv, prefix, mask_add, batch, heads, scale, p, seed)
}

/// `attention_qkv` with dropout p (0 = none) under an explicit seed (tests, replay).
#[allow(clippy::too_many_arguments)]
pub fn attention_qkv_with_seed(
    qkv: &Tensor,
    prefix: Option<(&Tensor, &Tensor)>,
    mask_add: &Tensor,
    batch: usize,
    heads: usize,
    scale: f64,
    p: f64,
    seed: u64,
) -> Result<Tensor> {
    let (rows, d3) = qkv.dims2()?;
    let d = d3 / 3;
    if batch == 0 || heads == 0 || d3 % 3 != 0 || d % heads != 0 || rows % batch != 0 {
        candle_core::bail!(
            "fused attention: qkv {:?} does not split into {batch} rows × 3 × {heads} heads",
            qkv.dims()
        );
    }
    let (t, dh) = (rows / batch, d / heads);
    let (pk, pv) = match prefix {
        Some((pk, pv)) => (pk.contiguous()?, pv.contiguous()?),
        None => {
            let empty = Tensor::zeros((batch, heads, 0, dh), qkv.dtype(), qkv.device())?;
            (empty.clone(), empty)
        }
    };
    let kp = pk.dim(2)?;
    if pk.dims() != [batch, heads, kp, dh]
        || pv.dims() != [batch, heads, kp, dh]
        || mask_add.dims() != [batch, kp + t]
    {
        candle_core::bail!(
            "fused attention: prefix keys {:?} / values {:?} / mask {:?} do not fit {batch} rows of {t} tokens, {heads} heads of {dh}",
            pk.dims(),
            pv.dims(),
            mask_add.dims()
        );
    }
    let mask: Vec<f64> = mask_add
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    let mask32 = mask.iter().map(|&m| m as f32).collect();
    let op = Attention {
        mask: Arc::new(mask),
        mask32: Arc::new(mask32),
        batch,
        heads,
        t,
        kp,
        dh,
        scale,
        p,
        seed,
    };
    qkv.contiguous()?.apply_op3(&pk, &pv, op)
}
