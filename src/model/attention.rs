//! Fused multi-head attention for the CPU, with a backward pass.
//!
//! softmax(scale · Q Kᵀ + mask) with dropout, times V, per (batch, head) in
//! one task: the scores never become a tensor, and each (batch, head) runs
//! single-threaded small matmuls while rayon spreads the B·H tasks over the
//! cores. (candle's batched matmul instead runs B·H tiny gemm calls one after
//! another, each split across threads: on attention-sized blocks the
//! synchronisation costs more than the arithmetic.) The backward recomputes
//! the probabilities from Q and K, and the dropout mask from the seed, rather
//! than keeping (B, H, T, S) tensors alive.
//!
//! Elsewhere (CUDA) the composed ops in the encoder are used (`fused::supported`). Verified against
//! the composed path and by finite differences in `tests/plm_grad.rs`.

use std::sync::Arc;

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor,
};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use rayon::prelude::*;

use super::fused::{as_f32, as_f32_mut, contiguous};
use super::gemm::{mm, Float};
use super::simd::{softmax_bwd_row, softmax_row};

/// Additive key mask (B, S) on the host, 0 for visible keys, −1e9 for hidden ones.
#[derive(Debug, Clone)]
struct Attention {
    mask: Arc<Vec<f64>>,
    /// The same mask in f32 for the vectorized f32 softmax.
    mask32: Arc<Vec<f32>>,
    batch: usize,
    heads: usize,
    t: usize,
    s: usize,
    dh: usize,
    scale: f64,
    /// Dropout probability on the attention weights (0 = none).
    p: f64,
    seed: u64,
}

impl Attention {
    fn block_rng(&self, bh: usize) -> SmallRng {
        SmallRng::seed_from_u64(self.seed ^ (bh as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Probabilities (t×s, pre-dropout) of block `bh` into `p`.
    fn probs<T: Float>(&self, bh: usize, q: &[T], k: &[T], p: &mut [T]) {
        let (t, s, dh) = (self.t, self.s, self.dh);
        mm(t, s, dh, p, false, q, (dh, 1), k, (1, dh), self.scale, 1);
        let keys = (bh / self.heads) * s..(bh / self.heads + 1) * s;
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

    /// Dropout keep-scale per element of block `bh` (0 or 1/(1−p)); empty when p = 0.
    fn keep(&self, bh: usize) -> Vec<f64> {
        if self.p <= 0.0 {
            return Vec::new();
        }
        let mut rng = self.block_rng(bh);
        let threshold = (self.p * u32::MAX as f64) as u32;
        let scale = 1.0 / (1.0 - self.p);
        (0..self.t * self.s)
            .map(|_| {
                if rng.next_u32() >= threshold {
                    scale
                } else {
                    0.0
                }
            })
            .collect()
    }

    fn forward<T: Float>(&self, q: &[T], k: &[T], v: &[T]) -> Vec<T> {
        let (t, s, dh) = (self.t, self.s, self.dh);
        let mut out = vec![T::zero(); self.batch * self.heads * t * dh];
        out.par_chunks_mut(t * dh).enumerate().for_each(|(bh, o)| {
            let qb = &q[bh * t * dh..(bh + 1) * t * dh];
            let kb = &k[bh * s * dh..(bh + 1) * s * dh];
            let vb = &v[bh * s * dh..(bh + 1) * s * dh];
            let mut p = vec![T::zero(); t * s];
            self.probs(bh, qb, kb, &mut p);
            let keep = self.keep(bh);
            if !keep.is_empty() {
                for (x, m) in p.iter_mut().zip(&keep) {
                    *x = T::from_f64(x.to_f64() * m);
                }
            }
            mm(t, dh, s, o, false, &p, (s, 1), vb, (dh, 1), 1.0, 1);
        });
        out
    }

    /// Packed gradients per block: dQ (t·dh), dK (s·dh), dV (s·dh).
    fn backward<T: Float>(&self, q: &[T], k: &[T], v: &[T], dout: &[T]) -> Vec<T> {
        let (t, s, dh) = (self.t, self.s, self.dh);
        let block = t * dh + 2 * s * dh;
        let mut out = vec![T::zero(); self.batch * self.heads * block];
        out.par_chunks_mut(block).enumerate().for_each(|(bh, g)| {
            let qb = &q[bh * t * dh..(bh + 1) * t * dh];
            let kb = &k[bh * s * dh..(bh + 1) * s * dh];
            let vb = &v[bh * s * dh..(bh + 1) * s * dh];
            let dob = &dout[bh * t * dh..(bh + 1) * t * dh];
            let mut p = vec![T::zero(); t * s];
            self.probs(bh, qb, kb, &mut p);
            let keep = self.keep(bh);
            let (dq, rest) = g.split_at_mut(t * dh);
            let (dk, dv) = rest.split_at_mut(s * dh);
            // dV = P'ᵀ dO with P' the dropped-out probabilities.
            let dropped: Vec<T> = if keep.is_empty() {
                p.clone()
            } else {
                p.iter()
                    .zip(&keep)
                    .map(|(x, m)| T::from_f64(x.to_f64() * m))
                    .collect()
            };
            mm(s, dh, t, dv, false, &dropped, (1, s), dob, (dh, 1), 1.0, 1);
            // dP' = dO Vᵀ, then through dropout: dP = dP' ⊙ keep.
            let mut dp = vec![T::zero(); t * s];
            mm(t, s, dh, &mut dp, false, dob, (dh, 1), vb, (1, dh), 1.0, 1);
            if !keep.is_empty() {
                for (x, m) in dp.iter_mut().zip(&keep) {
                    *x = T::from_f64(x.to_f64() * m);
                }
            }
            // Softmax backward: dS = P ⊙ (dP − Σ_row dP ⊙ P).
            if let (Some(p32), Some(dp32)) = (as_f32(&p), as_f32_mut(&mut dp)) {
                for (prow, dprow) in p32.chunks(s).zip(dp32.chunks_mut(s)) {
                    softmax_bwd_row(prow, dprow);
                }
            } else {
                for (prow, dprow) in p.chunks(s).zip(dp.chunks_mut(s)) {
                    let dot: f64 = prow
                        .iter()
                        .zip(dprow.iter())
                        .map(|(a, b)| a.to_f64() * b.to_f64())
                        .sum();
                    for (pv, dv) in prow.iter().zip(dprow.iter_mut()) {
                        *dv = T::from_f64(pv.to_f64() * (dv.to_f64() - dot));
                    }
                }
            }
            // dQ = scale · dS K ; dK = scale · dSᵀ Q.
            mm(t, dh, s, dq, false, &dp, (s, 1), kb, (dh, 1), self.scale, 1);
            mm(s, dh, t, dk, false, &dp, (1, s), qb, (dh, 1), self.scale, 1);
        });
        out
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
            contiguous::<T>(s1, l1, "fused attention")?,
            contiguous::<T>(s2, l2, "fused attention")?,
            contiguous::<T>(s3, l3, "fused attention")?,
        ));
        Ok((out, Shape::from((self.batch, self.heads, self.t, self.dh))))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dout = grad_res.contiguous()?;
        let op = AttentionBwd {
            fwd: self.clone(),
            dout,
        };
        let packed = q.apply_op3_no_bwd(k, v, &op)?;
        let (b, h, t, s, dh) = (self.batch, self.heads, self.t, self.s, self.dh);
        let dq = packed.narrow(1, 0, t * dh)?.reshape((b, h, t, dh))?;
        let dk = packed.narrow(1, t * dh, s * dh)?.reshape((b, h, s, dh))?;
        let dv = packed
            .narrow(1, t * dh + s * dh, s * dh)?
            .reshape((b, h, s, dh))?;
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

/// The backward as a no-grad op over (q, k, v) with dO carried along.
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
            contiguous::<T>(s1, l1, "fused attention")?,
            contiguous::<T>(s2, l2, "fused attention")?,
            contiguous::<T>(s3, l3, "fused attention")?,
            contiguous::<T>(dstore, layout, "fused attention")?,
        ));
        let block = a.t * a.dh + 2 * a.s * a.dh;
        Ok((out, Shape::from((a.batch * a.heads, block))))
    }
}

/// softmax(scale · q kᵀ + mask_add) (dropout p when `train`) · v, CPU only.
/// q (B, H, T, dh), k/v (B, H, S, dh), mask_add (B, S) additive (0 / −1e9).
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask_add: &Tensor,
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
    attention_with_seed(q, k, v, mask_add, scale, p, seed)
}

/// `attention` in training mode with an explicit dropout seed (tests, replay).
pub fn attention_with_seed(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask_add: &Tensor,
    scale: f64,
    p: f64,
    seed: u64,
) -> Result<Tensor> {
    let (b, h, t, dh) = q.dims4()?;
    let s = k.dim(2)?;
    if k.dims() != [b, h, s, dh] || v.dims() != [b, h, s, dh] || mask_add.dims() != [b, s] {
        candle_core::bail!(
            "fused attention: shapes q {:?} k {:?} v {:?} mask {:?} do not fit",
            q.dims(),
            k.dims(),
            v.dims(),
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
        batch: b,
        heads: h,
        t,
        s,
        dh,
        scale,
        p,
        seed,
    };
    q.contiguous()?
        .apply_op3(&k.contiguous()?, &v.contiguous()?, op)
}
