//! Linear layers with the bias (and optionally a ReLU) fused into the matmul.
//!
//! Composed, `relu(x·Wᵀ + b)` keeps three activations alive per layer, and its
//! backward builds the ReLU mask with a comparison op, sums the bias gradient
//! with a strided reduction and accumulates each partial gradient into a fresh
//! zero tensor. At CTR sizes (1024 × 256) those small ops cost as much as the
//! matmuls. On CPU one custom op writes the bias into the output, accumulates
//! the matmul onto it and clamps in place; its backward needs only the output
//! (the ReLU mask is `y > 0`). Elsewhere (CUDA, other dtypes) the composed ops.
//!
//! The transformer's feed-forward output layer takes its GELU on the input
//! side instead (`linear_gelu_in`): GELU(z) is made inside the op and dropped,
//! and the backward recomputes it, so the widest activation of the layer
//! (B·T × 4d) is neither kept for the backward nor given a gradient of its own.

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Module, Result,
    Shape, Tensor, WithDType,
};
use rayon::prelude::*;

use super::fused::{contiguous, supported};
use super::gemm::{mm, Float};

/// A linear layer `y = x·Wᵀ + b` with weight (out, in) and bias (out).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Tensor) -> Self {
        Self { weight, bias }
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// `relu(x·Wᵀ + b)` in one op on CPU.
    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        linear_act(x, &self.weight, &self.bias, true)
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        linear_act(x, &self.weight, &self.bias, false)
    }
}

/// `x·Wᵀ + b` over the last dimension of `x` (any rank ≥ 1).
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    linear_act(x, w, b, false)
}

/// `GELU(z)·Wᵀ + b` (exact, erf GELU) in one op on CPU.
pub fn linear_gelu_in(z: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !fusable(z, w, b) {
        return linear(&super::fused::gelu_erf(z)?, w, b);
    }
    apply(
        z,
        w,
        b,
        FusedLinear {
            relu: false,
            gelu_in: true,
        },
    )
}

fn fusable(x: &Tensor, w: &Tensor, b: &Tensor) -> bool {
    supported(x) && w.dtype() == x.dtype() && b.dtype() == x.dtype()
}

fn linear_act(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool) -> Result<Tensor> {
    apply(
        x,
        w,
        b,
        FusedLinear {
            relu,
            gelu_in: false,
        },
    )
}

/// `op` over the last dimension of `x` (any rank ≥ 1); the composed ops where
/// the fused one does not apply (`linear_gelu_in` has applied its GELU then).
fn apply(x: &Tensor, w: &Tensor, b: &Tensor, op: FusedLinear) -> Result<Tensor> {
    let dims = x.dims();
    let Some(&in_dim) = dims.last() else {
        candle_core::bail!("linear: the input must have at least one dimension")
    };
    let out_dim = w.dim(0)?;
    let rows = x.elem_count() / in_dim.max(1);
    let x2 = x.reshape((rows, in_dim))?;
    let y = if fusable(x, w, b) {
        x2.contiguous()?
            .apply_op3(&w.contiguous()?, &b.contiguous()?, op)?
    } else {
        let y = x2.matmul(&w.t()?)?.broadcast_add(b)?;
        if op.relu {
            y.relu()?
        } else {
            y
        }
    };
    let mut out_shape = dims.to_vec();
    let last = out_shape.len() - 1;
    out_shape[last] = out_dim;
    y.reshape(out_shape)
}

struct FusedLinear {
    relu: bool,
    /// The input is z and the layer applies to GELU(z).
    gelu_in: bool,
}

impl FusedLinear {
    fn run<T: Float>(
        &self,
        x: &[T],
        w: &[T],
        b: &[T],
        (rows, in_dim, out_dim): (usize, usize, usize),
    ) -> Vec<T> {
        let activated;
        let x = if self.gelu_in {
            activated = super::fused::gelu_map(x, None);
            &activated[..]
        } else {
            x
        };
        let mut y = Vec::with_capacity(rows * out_dim);
        for _ in 0..rows {
            y.extend_from_slice(b);
        }
        // Wᵀ as the right operand: element (k, n) is w[n·in + k].
        mm(
            rows,
            out_dim,
            in_dim,
            &mut y,
            true,
            x,
            (in_dim, 1),
            w,
            (1, in_dim),
            1.0,
            candle_core::utils::get_num_threads(),
        );
        if self.relu {
            // `<` keeps NaN, so a diverging model still trips the NaN check.
            for v in y.iter_mut() {
                if *v < T::zero() {
                    *v = T::zero();
                }
            }
        }
        y
    }
}

impl CustomOp3 for FusedLinear {
    fn name(&self) -> &'static str {
        match (self.relu, self.gelu_in) {
            (true, _) => "fused-linear-relu",
            (false, true) => "fused-gelu-linear",
            (false, false) => "fused-linear",
        }
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (rows, in_dim) = xl.shape().dims2()?;
        let (out_dim, w_in) = wl.shape().dims2()?;
        let b_out = bl.shape().dims1()?;
        if w_in != in_dim || b_out != out_dim {
            candle_core::bail!(
                "linear: input width {in_dim}, weight {out_dim}×{w_in}, bias {b_out} do not fit"
            );
        }
        let sizes = (rows, in_dim, out_dim);
        let y = crate::model::fused::per_float!(xs.dtype(), "fused linear", T => self.run(
            contiguous::<T>(xs, xl, "linear")?,
            contiguous::<T>(ws, wl, "linear")?,
            contiguous::<T>(bs, bl, "linear")?,
            sizes,
        ));
        Ok((y, Shape::from((rows, out_dim))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dz = if self.relu {
            dy.contiguous()?.apply_op2_no_bwd(y, &ReluGrad)?
        } else {
            dy.contiguous()?
        };
        // Detached: x and w are tracked, so these products would otherwise
        // carry ops pointing at them, and candle's gradient store, which keeps
        // whatever it is given until it is dropped, would hold every layer's
        // input (and with it the whole forward graph) through the optimizer step.
        let (dx, dw) = if self.gelu_in {
            let a = x.apply_op1_no_bwd(&super::fused::GeluErf)?;
            let da = dz.matmul(w)?;
            let dx = x.apply_op2_no_bwd(&da, &super::fused::GeluErfBwd)?;
            (dx, dz.t()?.matmul(&a)?.detach())
        } else {
            (dz.matmul(w)?.detach(), dz.t()?.matmul(x)?.detach())
        };
        let db = dz.apply_op1_no_bwd(&ColumnSum)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// dy where y > 0, else 0 (same shapes).
struct ReluGrad;

fn relu_grad<T: WithDType>(dy: &[T], y: &[T]) -> Vec<T> {
    dy.iter()
        .zip(y)
        .map(|(&g, &v)| if v > T::zero() { g } else { T::zero() })
        .collect()
}

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = crate::model::fused::per_float!(s1.dtype(), "relu grad", T => relu_grad(
            contiguous::<T>(s1, l1, "relu grad")?,
            contiguous::<T>(s2, l2, "relu grad")?,
        ));
        Ok((out, l1.shape().clone()))
    }
}

/// (rows, n) → (n,): the sum of the rows (the bias gradient).
struct ColumnSum;

fn column_sum<T: WithDType>(x: &[T], n: usize) -> Vec<T> {
    // Each task sums a contiguous band of rows; the bands' partial sums are
    // then added, so the inner loop runs along rows (vectorisable).
    let rows = x.len() / n.max(1);
    let band = rows
        .div_ceil(candle_core::utils::get_num_threads().max(1))
        .max(64)
        * n;
    let partial: Vec<Vec<T>> = x
        .par_chunks(band.max(n))
        .map(|chunk| {
            let mut acc = vec![T::zero(); n];
            for row in chunk.chunks(n) {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v;
                }
            }
            acc
        })
        .collect();
    let mut out = vec![T::zero(); n];
    for p in partial {
        for (o, v) in out.iter_mut().zip(p) {
            *o += v;
        }
    }
    out
}

impl CustomOp1 for ColumnSum {
    fn name(&self) -> &'static str {
        "column-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (_, n) = l.shape().dims2()?;
        let out = crate::model::fused::per_float!(s.dtype(), "column sum", T => column_sum(contiguous::<T>(s, l, "column sum")?, n));
        Ok((out, Shape::from(n)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    fn composed(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool) -> Result<Tensor> {
        let (r, i) = (
            x.elem_count() / x.dims()[x.rank() - 1],
            x.dims()[x.rank() - 1],
        );
        let y = x.reshape((r, i))?.matmul(&w.t()?)?.broadcast_add(b)?;
        let y = if relu { y.relu()? } else { y };
        let mut s = x.dims().to_vec();
        let last = s.len() - 1;
        s[last] = w.dim(0)?;
        y.reshape(s)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    /// Forward values and all three gradients agree with the composed ops,
    /// for 2-D and 3-D inputs, with and without the ReLU.
    #[test]
    fn fused_matches_composed() -> Result<()> {
        let dev = Device::Cpu;
        for (shape, relu) in [
            (vec![7usize, 5], false),
            (vec![7, 5], true),
            (vec![3, 4, 5], true),
            (vec![3, 4, 5], false),
        ] {
            let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, shape.as_slice(), &dev)?)?;
            let w = Var::from_tensor(&Tensor::randn(0f32, 1.0, (6, 5), &dev)?)?;
            let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, 6, &dev)?)?;
            // A fixed, non-uniform upstream gradient.
            let out_shape: Vec<usize> = shape[..shape.len() - 1]
                .iter()
                .copied()
                .chain([6])
                .collect();
            let r = Tensor::randn(0f32, 1.0, out_shape.as_slice(), &dev)?;
            let fused = linear_act(&x, &w, &b, relu)?;
            let reference = composed(&x, &w, &b, relu)?;
            assert_eq!(fused.dims(), reference.dims());
            assert!(max_diff(&fused, &reference) < 1e-5);
            if relu {
                let zeros = fused.eq(0f32)?.to_dtype(DType::F32)?.sum_all()?;
                assert!(
                    zeros.to_scalar::<f32>()? > 0.0,
                    "test input must hit the clamp"
                );
            }
            let gf = (&fused * &r)?.sum_all()?.backward()?;
            let gr = (&reference * &r)?.sum_all()?.backward()?;
            for v in [&x, &w, &b] {
                let a = gf.get(v).expect("fused grad");
                let c = gr.get(v).expect("composed grad");
                assert_eq!(a.dims(), c.dims());
                assert!(max_diff(a, c) < 1e-4, "grad mismatch {}", max_diff(a, c));
            }
        }
        Ok(())
    }

    /// Central finite differences in f64 on every weight, bias and input entry.
    #[test]
    fn fused_gradient_finite_differences() -> Result<()> {
        let dev = Device::Cpu;
        let x0 = Tensor::randn(0f64, 1.0, (4, 3), &dev)?;
        let w0 = Tensor::randn(0f64, 1.0, (2, 3), &dev)?;
        let b0 = Tensor::new(&[0.3f64, -0.2], &dev)?;
        let r = Tensor::randn(0f64, 1.0, (4, 2), &dev)?;
        let f = |x: &Tensor, w: &Tensor, b: &Tensor| -> Result<f64> {
            (linear_act(x, w, b, true)? * &r)?
                .sum_all()?
                .to_scalar::<f64>()
        };
        let (x, w, b) = (
            Var::from_tensor(&x0)?,
            Var::from_tensor(&w0)?,
            Var::from_tensor(&b0)?,
        );
        let grads = (linear_act(&x, &w, &b, true)? * &r)?
            .sum_all()?
            .backward()?;
        let eps = 1e-6;
        for which in 0..3 {
            let base = [&x0, &w0, &b0][which];
            let analytic: Vec<f64> = grads
                .get([&x, &w, &b][which])
                .expect("grad")
                .flatten_all()?
                .to_vec1()?;
            let flat: Vec<f64> = base.flatten_all()?.to_vec1()?;
            for i in 0..flat.len() {
                let bump = |d: f64| -> Result<Tensor> {
                    let mut v = flat.clone();
                    v[i] += d;
                    Tensor::from_vec(v, base.shape(), &dev)
                };
                let mut args = [x0.clone(), w0.clone(), b0.clone()];
                args[which] = bump(eps)?;
                let up = f(&args[0], &args[1], &args[2])?;
                args[which] = bump(-eps)?;
                let down = f(&args[0], &args[1], &args[2])?;
                let numeric = (up - down) / (2.0 * eps);
                assert!(
                    (numeric - analytic[i]).abs() < 1e-5,
                    "arg {which} entry {i}: numeric {numeric} analytic {}",
                    analytic[i]
                );
            }
        }
        Ok(())
    }

    /// GELU on the input side: values and the three gradients against candle's
    /// composed `gelu_erf` + linear (f64, 2-D and 3-D), and the input gradient
    /// by central finite differences.
    #[test]
    fn gelu_input_matches_composed_and_finite_differences() -> Result<()> {
        let dev = Device::Cpu;
        for shape in [vec![7usize, 5], vec![3, 4, 5]] {
            let z0 = Tensor::randn(0f64, 1.5, shape.as_slice(), &dev)?;
            let z = Var::from_tensor(&z0)?;
            let w = Var::from_tensor(&Tensor::randn(0f64, 1.0, (6, 5), &dev)?)?;
            let b = Var::from_tensor(&Tensor::randn(0f64, 1.0, 6, &dev)?)?;
            let out_shape: Vec<usize> = shape[..shape.len() - 1]
                .iter()
                .copied()
                .chain([6])
                .collect();
            let r = Tensor::randn(0f64, 1.0, out_shape.as_slice(), &dev)?;
            let fused = linear_gelu_in(&z, &w, &b)?;
            let reference = composed(&z.as_tensor().gelu_erf()?, &w, &b, false)?;
            assert_eq!(fused.dims(), reference.dims());
            assert!(max_diff(&fused, &reference) < 1e-12);
            let gf = (&fused * &r)?.sum_all()?.backward()?;
            let gr = (&reference * &r)?.sum_all()?.backward()?;
            for v in [&z, &w, &b] {
                let a = gf.get(v).expect("fused grad");
                let c = gr.get(v).expect("composed grad");
                // candle's own gelu_erf backward differs from the exact
                // derivative by ~1e-6 (as in tests/plm_grad.rs); the finite
                // differences below are the exact check.
                assert!(max_diff(a, c) < 1e-5, "grad mismatch {}", max_diff(a, c));
            }
            let analytic: Vec<f64> = gf.get(&z).expect("grad").flatten_all()?.to_vec1()?;
            let flat: Vec<f64> = z0.flatten_all()?.to_vec1()?;
            let f = |v: Vec<f64>| -> Result<f64> {
                let zz = Tensor::from_vec(v, z0.shape(), &dev)?;
                (linear_gelu_in(&zz, &w, &b)? * &r)?
                    .sum_all()?
                    .to_scalar::<f64>()
            };
            for i in [0, 3, 11, 19, flat.len() - 1] {
                let (mut up, mut down) = (flat.clone(), flat.clone());
                up[i] += 1e-6;
                down[i] -= 1e-6;
                let numeric = (f(up)? - f(down)?) / 2e-6;
                assert!(
                    (numeric - analytic[i]).abs() < 1e-6,
                    "entry {i}: numeric {numeric} analytic {}",
                    analytic[i]
                );
            }
        }
        Ok(())
    }

    #[test]
    fn column_sum_of_a_large_matrix() -> Result<()> {
        let dev = Device::Cpu;
        // Small integers: every order of summation gives the same f32.
        let v: Vec<f32> = (0..3000 * 7).map(|i| (i % 13) as f32).collect();
        let x = Tensor::from_vec(v, (3000, 7), &dev)?;
        let got: Vec<f32> = x.apply_op1_no_bwd(&ColumnSum)?.to_vec1()?;
        let want: Vec<f32> = x.sum(0)?.to_vec1()?;
        assert_eq!(got, want);
        Ok(())
    }

    #[test]
    fn mismatched_bias_is_an_error() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::zeros((2, 3), DType::F32, &dev)?;
        let w = Tensor::zeros((4, 3), DType::F32, &dev)?;
        let b = Tensor::zeros(5, DType::F32, &dev)?;
        let err = linear(&x, &w, &b).unwrap_err().to_string();
        assert!(err.contains("do not fit"), "{err}");
        Ok(())
    }
}
