//! Fused CPU kernels for softmax and layer normalisation, with backward passes.
//!
//! The composed versions in `nn` make 5–8 passes over the data forward and as
//! many tensors again backward; in the PLM these two ops sit on the largest
//! activations (attention scores, every residual stream), so one pass each way
//! matters. Each op recomputes what its backward needs from its inputs instead
//! of keeping extra tensors alive. Only CPU f32/f64 is implemented here; the
//! callers in `nn` fall back to the composed ops everywhere else (CUDA).
//! Verified against the composed ops and by finite differences in the tests.

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result,
    Shape, Tensor, WithDType,
};
use rayon::prelude::*;

/// Rows handed to one rayon task: enough work to amortise scheduling.
fn rows_per_task(rows: usize, width: usize) -> usize {
    let per = (16 * 1024 / width.max(1)).max(1);
    per.min(rows.max(1))
}

pub(crate) fn contiguous<'a, T: WithDType>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&T::cpu_storage_as_slice(s)?[a..b]),
        None => candle_core::bail!("{what}: input must be contiguous"),
    }
}

/// The dtype dispatch of every CPU custom op's `cpu_fwd`: evaluates `$body`
/// with `$t` bound to `f32` or `f64` and wraps the `Vec` in the matching
/// `CpuStorage`; other dtypes are an error naming the op.
macro_rules! per_float {
    ($dtype:expr, $what:expr, $t:ident => $body:expr) => {
        match $dtype {
            candle_core::DType::F32 => {
                type $t = f32;
                candle_core::CpuStorage::F32($body)
            }
            candle_core::DType::F64 => {
                type $t = f64;
                candle_core::CpuStorage::F64($body)
            }
            dt => candle_core::bail!("{}: unsupported dtype {dt:?}", $what),
        }
    };
}
pub(crate) use per_float;

/// Whether the fused path applies: CPU tensors of a float dtype we implement.
pub fn supported(t: &Tensor) -> bool {
    t.device().is_cpu() && matches!(t.dtype(), DType::F32 | DType::F64)
}

// ------------------------------------------------------------------ softmax

struct Softmax;

/// `xs` as `&[f32]` when `T` is f32 (the vectorized kernels in `simd`).
pub(crate) fn as_f32<T: WithDType>(xs: &[T]) -> Option<&[f32]> {
    // SAFETY: candle implements `WithDType` with DTYPE F32 for f32 alone, so the
    // slice already is a `[f32]` of the same length.
    (T::DTYPE == DType::F32)
        .then(|| unsafe { std::slice::from_raw_parts(xs.as_ptr().cast::<f32>(), xs.len()) })
}

/// `as_f32` for a mutable slice.
pub(crate) fn as_f32_mut<T: WithDType>(xs: &mut [T]) -> Option<&mut [f32]> {
    // SAFETY: as in `as_f32`; the borrow is unique and moves into the result.
    (T::DTYPE == DType::F32)
        .then(|| unsafe { std::slice::from_raw_parts_mut(xs.as_mut_ptr().cast::<f32>(), xs.len()) })
}

/// Softmax of one row in place (max-shifted; f32 rows vectorized).
pub(crate) fn softmax_in_place<T: WithDType>(row: &mut [T]) {
    if let Some(r) = as_f32_mut(row) {
        return super::simd::softmax_row(r, &[]);
    }
    let max = row.iter().fold(f64::NEG_INFINITY, |m, v| m.max(v.to_f64()));
    let mut sum = 0f64;
    for v in row.iter_mut() {
        let e = (v.to_f64() - max).exp();
        sum += e;
        *v = T::from_f64(e);
    }
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v = T::from_f64(v.to_f64() * inv);
    }
}

fn softmax_rows<T: WithDType>(x: &[T], width: usize) -> Vec<T> {
    let mut out = x.to_vec();
    let chunk = rows_per_task(x.len() / width.max(1), width) * width;
    out.par_chunks_mut(chunk).for_each(|o| {
        for row in o.chunks_mut(width) {
            softmax_in_place(row);
        }
    });
    out
}

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "fused-softmax-last-dim"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let width = l.dims().last().copied().unwrap_or(1);
        let out = crate::model::fused::per_float!(s.dtype(), "fused softmax", T => softmax_rows(contiguous::<T>(s, l, "softmax")?, width));
        Ok((out, l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let dy = grad_res.contiguous()?;
        Ok(Some(res.apply_op2_no_bwd(&dy, &SoftmaxBwd)?))
    }
}

/// dx = y ⊙ (dy − Σ y ⊙ dy), row by row.
struct SoftmaxBwd;

fn softmax_bwd_rows<T: WithDType>(y: &[T], dy: &[T], width: usize) -> Vec<T> {
    let mut out = vec![T::zero(); y.len()];
    let chunk = rows_per_task(y.len() / width.max(1), width) * width;
    out.par_chunks_mut(chunk)
        .zip(y.par_chunks(chunk).zip(dy.par_chunks(chunk)))
        .for_each(|(o, (yc, dyc))| {
            for ((orow, yrow), dyrow) in o
                .chunks_mut(width)
                .zip(yc.chunks(width))
                .zip(dyc.chunks(width))
            {
                let dot: f64 = yrow
                    .iter()
                    .zip(dyrow)
                    .map(|(a, b)| a.to_f64() * b.to_f64())
                    .sum();
                for ((ov, yv), dyv) in orow.iter_mut().zip(yrow).zip(dyrow) {
                    *ov = T::from_f64(yv.to_f64() * (dyv.to_f64() - dot));
                }
            }
        });
    out
}

impl CustomOp2 for SoftmaxBwd {
    fn name(&self) -> &'static str {
        "fused-softmax-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let width = l1.dims().last().copied().unwrap_or(1);
        let out = crate::model::fused::per_float!(s1.dtype(), "fused softmax bwd", T => softmax_bwd_rows(
            contiguous::<T>(s1, l1, "softmax bwd")?,
            contiguous::<T>(s2, l2, "softmax bwd")?,
            width,
        ));
        Ok((out, l1.shape().clone()))
    }
}

/// Softmax over the last dimension in one pass (CPU, f32/f64), differentiable.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Softmax)
}

// ------------------------------------------------------------------ layer norm

struct LayerNorm {
    eps: f64,
}

/// Mean and 1/sqrt(var + eps) of one row, accumulated in f64.
fn row_stats<T: WithDType>(row: &[T], eps: f64) -> (f64, f64) {
    let n = row.len() as f64;
    let mean = row.iter().map(|v| v.to_f64()).sum::<f64>() / n;
    let var = row
        .iter()
        .map(|v| {
            let c = v.to_f64() - mean;
            c * c
        })
        .sum::<f64>()
        / n;
    (mean, 1.0 / (var + eps).sqrt())
}

fn layer_norm_rows<T: WithDType>(x: &[T], w: &[T], b: &[T], eps: f64) -> Vec<T> {
    let width = w.len();
    let mut out = vec![T::zero(); x.len()];
    let chunk = rows_per_task(x.len() / width.max(1), width) * width;
    out.par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk))
        .for_each(|(o, xc)| {
            if let (Some(x32), Some(w32), Some(b32)) = (as_f32(xc), as_f32(w), as_f32(b)) {
                if let Some(o32) = as_f32_mut(o) {
                    return super::simd::layer_norm_rows(x32, w32, b32, eps as f32, o32);
                }
            }
            for (orow, xrow) in o.chunks_mut(width).zip(xc.chunks(width)) {
                let (mean, rstd) = row_stats(xrow, eps);
                for (j, (ov, xv)) in orow.iter_mut().zip(xrow).enumerate() {
                    let xhat = (xv.to_f64() - mean) * rstd;
                    *ov = T::from_f64(xhat * w[j].to_f64() + b[j].to_f64());
                }
            }
        });
    out
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
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
        let out = crate::model::fused::per_float!(s1.dtype(), "fused layer_norm", T => layer_norm_rows(
            contiguous::<T>(s1, l1, "layer_norm x")?,
            contiguous::<T>(s2, l2, "layer_norm weight")?,
            contiguous::<T>(s3, l3, "layer_norm bias")?,
            self.eps,
        ));
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = w.elem_count();
        let rows = x.elem_count() / d.max(1);
        let dy = grad_res.contiguous()?;
        // One kernel returns dx (rows × d) stacked on dw and db (one row each).
        let packed = x.apply_op3_no_bwd(w, &dy, &LayerNormBwd { eps: self.eps })?;
        let dx = packed.narrow(0, 0, rows)?.reshape(x.shape())?;
        let dw = packed.narrow(0, rows, 1)?.reshape(w.shape())?;
        let db = packed.narrow(0, rows + 1, 1)?.reshape(w.shape())?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

struct LayerNormBwd {
    eps: f64,
}

/// dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)) with g = dy ⊙ w;
/// dw = Σ_rows dy ⊙ x̂; db = Σ_rows dy.
fn layer_norm_bwd_rows<T: WithDType>(x: &[T], w: &[T], dy: &[T], eps: f64) -> Vec<T> {
    let width = w.len();
    let rows = x.len() / width.max(1);
    let mut out = vec![T::zero(); (rows + 2) * width];
    let (dx, tail) = out.split_at_mut(rows * width);
    let chunk = rows_per_task(rows, width) * width;
    let (dw, db) = dx
        .par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk).zip(dy.par_chunks(chunk)))
        .map(|(o, (xc, dyc))| {
            if let (Some(x32), Some(w32), Some(dy32)) = (as_f32(xc), as_f32(w), as_f32(dyc)) {
                if let Some(o32) = as_f32_mut(o) {
                    let mut acc = vec![0f32; 4 * width];
                    super::simd::layer_norm_bwd_rows(x32, w32, dy32, eps as f32, o32, &mut acc);
                    let sums: Vec<f64> = acc[..2 * width].iter().map(|&v| v as f64).collect();
                    return (sums[..width].to_vec(), sums[width..].to_vec());
                }
            }
            let mut dw = vec![0f64; width];
            let mut db = vec![0f64; width];
            let mut g = vec![0f64; width];
            let mut xhat = vec![0f64; width];
            for ((orow, xrow), dyrow) in o
                .chunks_mut(width)
                .zip(xc.chunks(width))
                .zip(dyc.chunks(width))
            {
                let (mean, rstd) = row_stats(xrow, eps);
                let (mut mg, mut mgx) = (0f64, 0f64);
                for j in 0..width {
                    let dyj = dyrow[j].to_f64();
                    xhat[j] = (xrow[j].to_f64() - mean) * rstd;
                    g[j] = dyj * w[j].to_f64();
                    mg += g[j];
                    mgx += g[j] * xhat[j];
                    dw[j] += dyj * xhat[j];
                    db[j] += dyj;
                }
                mg /= width as f64;
                mgx /= width as f64;
                for j in 0..width {
                    orow[j] = T::from_f64(rstd * (g[j] - mg - xhat[j] * mgx));
                }
            }
            (dw, db)
        })
        .reduce(
            || (vec![0f64; width], vec![0f64; width]),
            |(mut aw, mut ab), (bw, bb)| {
                aw.iter_mut().zip(&bw).for_each(|(a, b)| *a += b);
                ab.iter_mut().zip(&bb).for_each(|(a, b)| *a += b);
                (aw, ab)
            },
        );
    for j in 0..width {
        tail[j] = T::from_f64(dw[j]);
        tail[width + j] = T::from_f64(db[j]);
    }
    out
}

impl CustomOp3 for LayerNormBwd {
    fn name(&self) -> &'static str {
        "fused-layer-norm-bwd"
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
        let width = l2.shape().elem_count();
        let rows = l1.shape().elem_count() / width.max(1);
        let out = crate::model::fused::per_float!(s1.dtype(), "fused layer_norm bwd", T => layer_norm_bwd_rows(
            contiguous::<T>(s1, l1, "layer_norm bwd x")?,
            contiguous::<T>(s2, l2, "layer_norm bwd weight")?,
            contiguous::<T>(s3, l3, "layer_norm bwd grad")?,
            self.eps,
        ));
        Ok((out, Shape::from((rows + 2, width))))
    }
}

/// Layer norm over the last dimension in one pass (CPU, f32/f64), differentiable
/// in x, weight and bias.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let d = x.dims().last().copied().unwrap_or(0);
    if weight.elem_count() != d || bias.elem_count() != d {
        candle_core::bail!(
            "layer_norm: weight/bias have {} / {} elements, last dim is {d}",
            weight.elem_count(),
            bias.elem_count()
        );
    }
    x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        LayerNorm { eps },
    )
}

// ------------------------------------------------------------------ GELU (erf)

pub(crate) struct GeluErf;

const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// GELU (or its derivative) at one point with libm's erf in f64: the f64 path,
/// and the reference for `simd::gelu` in the tests.
#[inline]
fn gelu_point<T: WithDType>(x: T, grad: bool) -> f64 {
    let v = x.to_f64();
    let cdf = 0.5 * (1.0 + candle_core::cpu::erf::erf_f64(v * std::f64::consts::FRAC_1_SQRT_2));
    if grad {
        cdf + v * (-0.5 * v * v).exp() * FRAC_1_SQRT_2PI
    } else {
        v * cdf
    }
}

/// GELU of `x`, or with `dy` the backward dy · GELU'(x), in parallel chunks.
pub(crate) fn gelu_map<T: WithDType>(x: &[T], dy: Option<&[T]>) -> Vec<T> {
    let mut out = vec![T::zero(); x.len()];
    let chunk = 16 * 1024;
    out.par_chunks_mut(chunk).enumerate().for_each(|(c, o)| {
        let lo = c * chunk;
        let xs = &x[lo..lo + o.len()];
        let ds = dy.map(|d| &d[lo..lo + o.len()]);
        if let (Some(x32), Some(o32)) = (as_f32(xs), as_f32_mut(o)) {
            let d32 = ds.and_then(as_f32);
            return super::simd::gelu_slice(x32, d32, o32);
        }
        match dy {
            None => {
                for (ov, xv) in o.iter_mut().zip(xs) {
                    *ov = T::from_f64(gelu_point(*xv, false));
                }
            }
            Some(dy) => {
                let ds = &dy[lo..lo + o.len()];
                for ((ov, xv), d) in o.iter_mut().zip(xs).zip(ds) {
                    *ov = T::from_f64(gelu_point(*xv, true) * d.to_f64());
                }
            }
        }
    });
    out
}

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "fused-gelu-erf"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let out = crate::model::fused::per_float!(s.dtype(), "fused gelu", T => gelu_map(contiguous::<T>(s, l, "gelu")?, None));
        Ok((out, l.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let dy = grad_res.contiguous()?;
        Ok(Some(arg.apply_op2_no_bwd(&dy, &GeluErfBwd)?))
    }
}

/// dx = dy · (Φ(x) + x·φ(x)).
pub(crate) struct GeluErfBwd;

impl CustomOp2 for GeluErfBwd {
    fn name(&self) -> &'static str {
        "fused-gelu-erf-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = crate::model::fused::per_float!(s1.dtype(), "fused gelu bwd", T => gelu_map(
            contiguous::<T>(s1, l1, "gelu bwd")?,
            Some(contiguous::<T>(s2, l2, "gelu bwd")?),
        ));
        Ok((out, l1.shape().clone()))
    }
}

/// Exact (erf) GELU, parallel on CPU f32/f64 with a fused backward; candle's
/// `gelu_erf` (one thread, composed backward) elsewhere.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if supported(x) {
        x.contiguous()?.apply_op1(GeluErf)
    } else {
        x.gelu_erf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_f32_gelu_matches_the_f64_reference() {
        let mut worst = (0f64, 0f64);
        for i in -2000..=2000 {
            let x = i as f64 / 200.0; // [-10, 10]
            for grad in [false, true] {
                let exact = gelu_point(x, grad);
                let fast = crate::model::simd::gelu(x as f32, grad) as f64;
                let err = (fast - exact).abs();
                if err > worst.0 {
                    worst = (err, x);
                }
            }
        }
        assert!(worst.0 < 2e-6, "worst error {} at x = {}", worst.0, worst.1);
    }
}
