//! Differentiable building blocks shared by the CTR backbones and the PLM.
//!
//! candle-nn's fused `LayerNorm`, `softmax_last_dim` and `rms_norm` have no
//! backward pass, so gradients silently stop at them. Everything here is
//! built from ops that candle can differentiate.

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor,
    WithDType, D,
};
use candle_nn::{Init, VarBuilder};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use rayon::prelude::*;

use super::fused::contiguous;
use std::cell::RefCell;

/// Layer normalisation over the last dimension: (x - mean) / sqrt(var + eps) * w + b.
/// On CPU (f32/f64) this runs the fused kernel in `fused` (one pass each way);
/// elsewhere the composed version below.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    if super::fused::supported(x) {
        return super::fused::layer_norm(x, weight, bias, eps);
    }
    layer_norm_composed(x, weight, bias, eps)
}

/// `layer_norm` from differentiable candle ops (any device).
pub fn layer_norm_composed(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centered = x.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centered.broadcast_div(&(var + eps)?.sqrt()?)?;
    normed.broadcast_mul(weight)?.broadcast_add(bias)
}

/// Softmax over the last dimension. The max is detached: it cancels exactly
/// in the result, and keeping it out of the graph saves a backward op.
/// On CPU (f32/f64) this runs the fused kernel in `fused`.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if super::fused::supported(x) {
        return super::fused::softmax_last_dim(x);
    }
    softmax_last_dim_composed(x)
}

/// `softmax_last_dim` from differentiable candle ops (any device).
pub fn softmax_last_dim_composed(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let num = x.broadcast_sub(&max)?.exp()?;
    let den = num.sum_keepdim(D::Minus1)?;
    num.broadcast_div(&den)
}

/// Inverted dropout, active only when `train` is set.
///
/// On CPU the keep-mask comes from [`seed_dropout`]'s generator so that runs
/// are reproducible (candle's CPU RNG cannot be seeded), and it is one custom
/// op that regenerates its mask from a seed in the backward: `x * mask` would
/// keep the mask alive, and candle would also store a gradient for the
/// constant mask that holds `x`, and so the whole forward graph, until the
/// gradients are dropped. On other devices the mask comes from the device RNG
/// (seeded through `Device::set_seed`).
pub fn dropout(x: &Tensor, p: f64, train: bool) -> Result<Tensor> {
    if !train || p <= 0.0 {
        return Ok(x.clone());
    }
    if p >= 1.0 {
        return x.zeros_like();
    }
    if super::fused::supported(x) {
        let op = Dropout {
            threshold: (p * u32::MAX as f64) as u32,
            scale: 1.0 / (1.0 - p),
            seed: dropout_seed(),
        };
        return x.contiguous()?.apply_op1(op);
    }
    let keep = Tensor::rand(0f32, 1f32, x.shape(), x.device())?
        .ge(p as f32)?
        .to_dtype(x.dtype())?;
    (x * keep)? * (1.0 / (1.0 - p))
}

/// `dropout(x, p, train) + r` in one op on CPU: neither the dropped-out
/// tensor nor the sum's extra pass exists (the transformer's residual joins).
pub fn dropout_add(x: &Tensor, r: &Tensor, p: f64, train: bool) -> Result<Tensor> {
    if !train || p <= 0.0 || p >= 1.0 || !super::fused::supported(x) || x.dims() != r.dims() {
        return dropout(x, p, train)? + r;
    }
    let op = Dropout {
        threshold: (p * u32::MAX as f64) as u32,
        scale: 1.0 / (1.0 - p),
        seed: dropout_seed(),
    };
    x.contiguous()?.apply_op2(&r.contiguous()?, op)
}

/// Keeps an element when its draw is at least `threshold`, scaled by `scale`;
/// the backward is the same op. Elements are drawn in chunks of `CHUNK`, each
/// from `SmallRng` seeded by (seed, chunk index): the chunks run in parallel and
/// the mask does not depend on the thread count.
#[derive(Clone, Copy)]
struct Dropout {
    threshold: u32,
    scale: f64,
    seed: u64,
}

const CHUNK: usize = 16 * 1024;

impl Dropout {
    /// dropout(x) [+ add].
    fn apply<T: WithDType>(&self, x: &[T], add: Option<&[T]>) -> Vec<T> {
        let scale = T::from_f64(self.scale);
        let mut out = vec![T::zero(); x.len()];
        out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, o)| {
            let mut rng = SmallRng::seed_from_u64(
                self.seed ^ (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let lo = c * CHUNK;
            // Thresholds on raw u32s, two per draw: no float conversion per element.
            let mut bits = 0u64;
            for (i, (ov, &v)) in o.iter_mut().zip(&x[lo..]).enumerate() {
                if i % 2 == 0 {
                    bits = rng.next_u64();
                } else {
                    bits >>= 32;
                }
                if bits as u32 >= self.threshold {
                    *ov = v * scale;
                }
            }
            if let Some(r) = add {
                for (ov, &rv) in o.iter_mut().zip(&r[lo..]) {
                    *ov += rv;
                }
            }
        });
        out
    }
}

impl CustomOp1 for Dropout {
    fn name(&self) -> &'static str {
        "dropout"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let out = crate::model::fused::per_float!(s.dtype(), "dropout", T => self.apply(contiguous::<T>(s, l, "dropout")?, None));
        Ok((out, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(dy.contiguous()?.apply_op1_no_bwd(self)?))
    }
}

impl CustomOp2 for Dropout {
    fn name(&self) -> &'static str {
        "dropout-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!("dropout_add: shapes {:?} and {:?}", l1.shape(), l2.shape());
        }
        let out = crate::model::fused::per_float!(s1.dtype(), "dropout_add", T => self.apply(
            contiguous::<T>(s1, l1, "dropout_add")?,
            Some(contiguous::<T>(s2, l2, "dropout_add")?),
        ));
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _r: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        Ok((Some(dy.apply_op1_no_bwd(self)?), Some(dy)))
    }
}

thread_local! {
    // Per thread: a stage trains on one thread, and concurrent stages (tests)
    // must not consume each other's draws.
    static DROPOUT_RNG: RefCell<SmallRng> = RefCell::new(SmallRng::seed_from_u64(0));
}

/// Re-seeds this thread's CPU dropout generator (the trainer calls this at the start of each stage).
pub fn seed_dropout(seed: u64) {
    DROPOUT_RNG.with(|cell| *cell.borrow_mut() = SmallRng::seed_from_u64(seed));
}

/// Xavier-normal initialisation for a (fan_out, fan_in) weight, as the reference code uses.
pub fn xavier_normal(fan_in: usize, fan_out: usize) -> Init {
    let std = (2.0 / (fan_in + fan_out) as f64).sqrt();
    Init::Randn {
        mean: 0.0,
        stdev: std,
    }
}

/// A linear layer with Xavier-normal weight and zero bias, named `weight`/`bias` under `vb`.
pub fn linear_xavier(
    in_dim: usize,
    out_dim: usize,
    vb: VarBuilder,
) -> Result<super::linear::Linear> {
    let w = vb.get_with_hints((out_dim, in_dim), "weight", xavier_normal(in_dim, out_dim))?;
    let b = vb.get_with_hints(out_dim, "bias", Init::Const(0.0))?;
    Ok(super::linear::Linear::new(w, b))
}

/// A fresh seed drawn from the (seeded) CPU dropout generator, for fused
/// kernels that draw their own dropout masks (the fused attention).
pub fn dropout_seed() -> u64 {
    DROPOUT_RNG.with(|cell| cell.borrow_mut().next_u64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    /// The CPU dropout drops about p of the elements, scales the rest by
    /// 1/(1-p), repeats itself under the same seed, and its backward applies
    /// exactly the forward's mask.
    #[test]
    fn cpu_dropout_mask_scale_seed_and_gradient() -> Result<()> {
        let dev = Device::Cpu;
        let n = 20_000;
        let x = Var::from_tensor(&Tensor::ones(n, DType::F32, &dev)?)?;
        seed_dropout(5);
        let y = dropout(&x, 0.3, true)?;
        let v: Vec<f32> = y.to_vec1()?;
        let dropped = v.iter().filter(|&&a| a == 0.0).count() as f64 / n as f64;
        assert!((dropped - 0.3).abs() < 0.02, "dropped {dropped}");
        let scale = 1.0 / 0.7f32;
        assert!(v.iter().all(|&a| a == 0.0 || (a - scale).abs() < 1e-6));
        seed_dropout(5);
        let again: Vec<f32> = dropout(&x, 0.3, true)?.to_vec1()?;
        assert_eq!(v, again);
        let r = Tensor::randn(0f32, 1.0, n, &dev)?;
        let g = (&y * &r)?.sum_all()?.backward()?;
        let gx = g.get(&x).expect("grad");
        // x is all ones, so the gradient r·mask·scale is r·y.
        let diff = (gx - (&r * &y)?)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "{diff}");
        assert!(dropout(&x, 0.3, false)?
            .to_vec1::<f32>()?
            .iter()
            .all(|&a| a == 1.0));
        Ok(())
    }

    /// `dropout_add` is `dropout(x) + r` under the same seed, with gradients
    /// mask · dy for x and dy for r.
    #[test]
    fn dropout_add_is_dropout_then_add() -> Result<()> {
        let dev = Device::Cpu;
        let n = 50_000; // several chunks
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, n, &dev)?)?;
        let r = Var::from_tensor(&Tensor::randn(0f32, 1.0, n, &dev)?)?;
        seed_dropout(9);
        let composed = (dropout(&x, 0.2, true)? + r.as_tensor())?;
        seed_dropout(9);
        let fused = dropout_add(&x, &r, 0.2, true)?;
        let diff = (&fused - &composed)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert_eq!(diff, 0.0);
        let w = Tensor::randn(0f32, 1.0, n, &dev)?;
        let gf = (&fused * &w)?.sum_all()?.backward()?;
        let gc = (&composed * &w)?.sum_all()?.backward()?;
        for v in [&x, &r] {
            let d = (gf.get(v).expect("grad") - gc.get(v).expect("grad"))?
                .abs()?
                .max_all()?
                .to_scalar::<f32>()?;
            assert_eq!(d, 0.0);
        }
        // Not training: a plain sum.
        let plain = dropout_add(&x, &r, 0.2, false)?;
        let want = (x.as_tensor() + r.as_tensor())?;
        assert_eq!((plain - want)?.abs()?.max_all()?.to_scalar::<f32>()?, 0.0);
        Ok(())
    }
}
