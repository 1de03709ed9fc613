//! Losses, fused for the CPU: mean cross-entropy over vocabulary logits and
//! binary cross-entropy with logits.
//!
//! Both return the scalar alone and recompute what their backward needs from
//! their inputs. Composed from candle ops, a loss also leaves a gradient for
//! its constant input (the labels) in candle's gradient store, computed from
//! the logits and so holding the whole forward graph until the optimizer step.
//!
//! PA-MLM's logits are (masked tokens × vocabulary), ~30 MiB a batch for
//! BERT's 30k vocabulary. candle-nn's `cross_entropy` (log-softmax, then a
//! gather) keeps three more tensors of that size alive for the backward and
//! builds as many again inside it. Here the forward returns the scalar alone
//! and the backward recomputes softmax − one-hot from the logits, which the
//! graph holds anyway. Elsewhere (CUDA) candle-nn's version.

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, WithDType,
};
use rayon::prelude::*;

use super::fused::{as_f32, as_f32_mut, contiguous, supported};

/// Mean over rows of −log softmax(logits)[target]; logits (N, V), targets (N,) u32.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if supported(logits) && targets.dtype() == DType::U32 {
        let targets = targets.contiguous()?;
        return logits.contiguous()?.apply_op2(&targets, CrossEntropy);
    }
    candle_nn::loss::cross_entropy(logits, targets)
}

struct CrossEntropy;

/// log Σ exp(x) of one row, shifted by its max and summed in f64 (f32 rows:
/// vectorized, partial sums in f32 lanes).
fn row_lse<T: WithDType>(row: &[T]) -> f64 {
    if let Some(r) = as_f32(row) {
        return crate::model::simd::lse(r);
    }
    let max = row
        .iter()
        .map(|v| v.to_f64())
        .fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = row.iter().map(|v| (v.to_f64() - max).exp()).sum();
    max + sum.ln()
}

fn check_targets(targets: &[u32], rows: usize, vocab: usize) -> Result<()> {
    if targets.len() != rows {
        candle_core::bail!(
            "cross entropy: {rows} rows of logits but {} targets",
            targets.len()
        );
    }
    if let Some(t) = targets.iter().find(|&&t| t as usize >= vocab) {
        candle_core::bail!("cross entropy: target id {t} outside a vocabulary of {vocab}");
    }
    Ok(())
}

/// Rows per partial sum of the loss.
const LOSS_BAND: usize = 64;

fn loss<T: WithDType>(x: &[T], targets: &[u32], vocab: usize) -> Result<f64> {
    let rows = x.len() / vocab.max(1);
    check_targets(targets, rows, vocab)?;
    if rows == 0 {
        candle_core::bail!("cross entropy of zero rows");
    }
    // Partial sums over fixed bands of rows, added in order: rayon's own
    // `sum` splits the work by thread count and stealing, so the last bits
    // of the loss would change from run to run.
    let parts: Vec<f64> = x
        .par_chunks(vocab * LOSS_BAND)
        .zip(targets.par_chunks(LOSS_BAND))
        .map(|(xs, ts)| {
            xs.chunks(vocab)
                .zip(ts)
                .map(|(row, &t)| row_lse(row) - row[t as usize].to_f64())
                .sum::<f64>()
        })
        .collect();
    Ok(parts.iter().sum::<f64>() / rows as f64)
}

fn grad<T: WithDType>(x: &[T], targets: &[u32], vocab: usize, scale: f64) -> Result<Vec<T>> {
    let rows = x.len() / vocab.max(1);
    check_targets(targets, rows, vocab)?;
    let mut out = vec![T::zero(); x.len()];
    out.par_chunks_mut(vocab)
        .zip(x.par_chunks(vocab).zip(targets.par_iter()))
        .for_each(|(o, (row, &t))| {
            let lse = row_lse(row);
            if let (Some(r), Some(o32)) = (as_f32(row), as_f32_mut(o)) {
                crate::model::simd::exp_shift_scale(r, lse as f32, scale as f32, o32);
            } else {
                for (ov, v) in o.iter_mut().zip(row) {
                    *ov = T::from_f64((v.to_f64() - lse).exp() * scale);
                }
            }
            o[t as usize] = T::from_f64(o[t as usize].to_f64() - scale);
        });
    Ok(out)
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "fused-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, vocab) = l1.shape().dims2()?;
        let targets = contiguous::<u32>(s2, l2, "cross entropy targets")?;
        let out = crate::model::fused::per_float!(s1.dtype(), "fused cross entropy", T => vec![
            T::from_f64(loss(contiguous::<T>(s1, l1, "cross entropy")?, targets, vocab)?)
        ]);
        Ok((out, Shape::from(())))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _loss: &Tensor,
        dloss: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let rows = logits.dim(0)?;
        let scale = dloss.to_dtype(DType::F64)?.to_scalar::<f64>()? / rows as f64;
        let g = logits.apply_op2_no_bwd(targets, &CrossEntropyGrad { scale })?;
        Ok((Some(g), None))
    }
}

/// scale · (softmax(logits) − one-hot(targets)).
struct CrossEntropyGrad {
    scale: f64,
}

impl CustomOp2 for CrossEntropyGrad {
    fn name(&self) -> &'static str {
        "fused-cross-entropy-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, vocab) = l1.shape().dims2()?;
        let targets = contiguous::<u32>(s2, l2, "cross entropy targets")?;
        let out = crate::model::fused::per_float!(s1.dtype(), "fused cross entropy", T => grad(
                contiguous::<T>(s1, l1, "cross entropy")?,
                targets,
                vocab,
                self.scale,
            )?);
        Ok((out, l1.shape().clone()))
    }
}

/// Mean binary cross-entropy with logits, max(z, 0) − z·y + log(1 + e^−|z|):
/// numerically stable for any z. logits and labels (B,).
pub fn bce_with_logits(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    if supported(logits) && labels.dtype() == logits.dtype() && logits.rank() == 1 {
        return logits
            .contiguous()?
            .apply_op2(&labels.contiguous()?, BinaryCrossEntropy);
    }
    let logits = logits.to_dtype(DType::F32)?;
    let labels = labels.to_dtype(DType::F32)?;
    let relu = logits.relu()?;
    let softplus = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    ((relu - (&logits * &labels)?)? + softplus)?.mean_all()
}

struct BinaryCrossEntropy;

fn bce_loss<T: WithDType>(z: &[T], y: &[T]) -> Result<f64> {
    if z.len() != y.len() || z.is_empty() {
        candle_core::bail!(
            "binary cross entropy: {} logits and {} labels",
            z.len(),
            y.len()
        );
    }
    let total: f64 = z
        .iter()
        .zip(y)
        .map(|(z, y)| {
            let (z, y) = (z.to_f64(), y.to_f64());
            z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
        })
        .sum();
    Ok(total / z.len() as f64)
}

/// scale · (σ(z) − y).
fn bce_grad<T: WithDType>(z: &[T], y: &[T], scale: f64) -> Vec<T> {
    z.iter()
        .zip(y)
        .map(|(z, y)| {
            let s = 1.0 / (1.0 + (-z.to_f64()).exp());
            T::from_f64((s - y.to_f64()) * scale)
        })
        .collect()
}

impl CustomOp2 for BinaryCrossEntropy {
    fn name(&self) -> &'static str {
        "fused-bce-with-logits"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = crate::model::fused::per_float!(s1.dtype(), "fused bce", T => vec![
            T::from_f64(bce_loss(
                contiguous::<T>(s1, l1, "bce")?,
                contiguous::<T>(s2, l2, "bce")?,
            )?)
        ]);
        Ok((out, Shape::from(())))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        labels: &Tensor,
        _loss: &Tensor,
        dloss: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let scale = dloss.to_dtype(DType::F64)?.to_scalar::<f64>()? / logits.elem_count() as f64;
        let g = logits.apply_op2_no_bwd(labels, &BinaryCrossEntropyGrad { scale })?;
        Ok((Some(g), None))
    }
}

struct BinaryCrossEntropyGrad {
    scale: f64,
}

impl CustomOp2 for BinaryCrossEntropyGrad {
    fn name(&self) -> &'static str {
        "fused-bce-with-logits-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = crate::model::fused::per_float!(s1.dtype(), "fused bce", T => bce_grad(
            contiguous::<T>(s1, l1, "bce")?,
            contiguous::<T>(s2, l2, "bce")?,
            self.scale,
        ));
        Ok((out, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Value and gradient equal candle-nn's cross entropy (which is
    /// log-softmax + gather), with large logits to exercise the max shift.
    #[test]
    fn matches_candle_nn() -> Result<()> {
        let dev = Device::Cpu;
        let x0 = (Tensor::randn(0f32, 1.0, (5, 11), &dev)? * 30.0)?;
        let t = Tensor::new(&[0u32, 10, 3, 3, 7], &dev)?;
        let x = Var::from_tensor(&x0)?;
        let w = Tensor::new(2.5f32, &dev)?;
        let fused = cross_entropy(&x, &t)?;
        let reference = candle_nn::loss::cross_entropy(&x, &t)?;
        let (a, b) = (fused.to_scalar::<f32>()?, reference.to_scalar::<f32>()?);
        assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "{a} vs {b}");
        let ga = (fused * &w)?.backward()?;
        let gb = (reference * &w)?.backward()?;
        let (ga, gb) = (ga.get(&x).expect("grad"), gb.get(&x).expect("grad"));
        let diff = (ga - gb)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "grad diff {diff}");
        Ok(())
    }

    /// A hand case: two equal logits and target 0 → loss ln 2, gradient ±1/2.
    #[test]
    fn hand_computed() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::new(&[[1.0f64, 1.0]], &dev)?)?;
        let t = Tensor::new(&[0u32], &dev)?;
        let l = cross_entropy(&x, &t)?;
        assert!((l.to_scalar::<f64>()? - 2f64.ln()).abs() < 1e-12);
        let g: Vec<Vec<f64>> = l.backward()?.get(&x).expect("grad").to_vec2()?;
        assert!((g[0][0] + 0.5).abs() < 1e-12 && (g[0][1] - 0.5).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn target_outside_the_vocabulary_is_an_error() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::zeros((2, 4), DType::F32, &dev)?;
        let t = Tensor::new(&[1u32, 4], &dev)?;
        let err = cross_entropy(&x, &t).unwrap_err().to_string();
        assert!(
            err.contains("target id 4 outside a vocabulary of 4"),
            "{err}"
        );
        Ok(())
    }

    /// The fused BCE equals the composed formula in value and gradient,
    /// including extreme logits, and leaves no gradient for the labels.
    #[test]
    fn bce_matches_composed() -> Result<()> {
        let dev = Device::Cpu;
        let z = Var::from_tensor(&Tensor::new(&[-40f32, -2.0, 0.0, 0.5, 3.0, 60.0], &dev)?)?;
        let y = Tensor::new(&[0f32, 1.0, 1.0, 0.0, 1.0, 0.0], &dev)?;
        let fused = bce_with_logits(&z, &y)?;
        let relu = z.relu()?;
        let softplus = (z.abs()?.neg()?.exp()? + 1.0)?.log()?;
        let composed = ((relu - (z.as_tensor() * &y)?)? + softplus)?.mean_all()?;
        let (a, b) = (fused.to_scalar::<f32>()?, composed.to_scalar::<f32>()?);
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        let ga = fused.backward()?;
        let gb = composed.backward()?;
        let diff = (ga.get(&z).expect("grad") - gb.get(&z).expect("grad"))?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(diff < 1e-6, "grad diff {diff}");
        assert!(ga.get(&y).is_none(), "labels got a gradient");
        assert!(
            gb.get(&y).is_some(),
            "the composed path is what this guards against"
        );
        Ok(())
    }
}
