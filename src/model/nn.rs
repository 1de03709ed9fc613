//! Differentiable building blocks shared by the CTR backbones and the PLM.
//!
//! candle-nn's fused `LayerNorm`, `softmax_last_dim` and `rms_norm` have no
//! backward pass, so gradients silently stop at them. Everything here is
//! built from ops that candle can differentiate.

use candle_core::{DType, Result, Tensor, D};
use candle_nn::{Init, VarBuilder};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
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
/// are reproducible (candle's CPU RNG cannot be seeded); on other devices it
/// comes from the device RNG (seeded through `Device::set_seed`).
pub fn dropout(x: &Tensor, p: f64, train: bool) -> Result<Tensor> {
    if !train || p <= 0.0 {
        return Ok(x.clone());
    }
    if p >= 1.0 {
        return x.zeros_like();
    }
    let scale = 1.0 / (1.0 - p);
    if x.device().is_cpu() {
        let n = x.elem_count();
        // Threshold on raw u32s: no float conversion per draw.
        let threshold = (p * u32::MAX as f64) as u32;
        let mut mask = vec![0f32; n];
        DROPOUT_RNG.with(|cell| {
            let mut rng = cell.borrow_mut();
            for m in mask.iter_mut() {
                if rng.next_u32() >= threshold {
                    *m = scale as f32;
                }
            }
        });
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        return x * mask;
    }
    let keep = Tensor::rand(0f32, 1f32, x.shape(), x.device())?
        .ge(p as f32)?
        .to_dtype(x.dtype())?;
    (x * keep)? * scale
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

/// Numerically stable binary cross-entropy with logits, averaged:
/// max(z, 0) - z*y + log(1 + exp(-|z|)).
pub fn bce_with_logits(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let logits = logits.to_dtype(DType::F32)?;
    let relu = logits.relu()?;
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    ((relu - (&logits * labels)?)? + softplus)?.mean_all()
}

/// A fresh seed drawn from the (seeded) CPU dropout generator, for fused
/// kernels that draw their own dropout masks (the fused attention).
pub fn dropout_seed() -> u64 {
    DROPOUT_RNG.with(|cell| cell.borrow_mut().next_u64())
}
