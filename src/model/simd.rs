//! f32 element-wise kernels (exp, GELU, softmax rows) written so that LLVM
//! vectorizes them, compiled twice: for AVX2 + FMA, chosen at run time, and
//! for the baseline target. The crate is built for plain x86-64 (SSE2), and
//! libm's scalar `expf` stops any loop that calls it from vectorizing; in
//! MiniLM's forward pass GELU and the attention softmax were about a tenth of
//! the time, most of it in those scalar calls.

/// e^x for f32, |relative error| ≲ 2 ulp; exactly 0 below −87.33 (where the
/// result would be subnormal: masked attention scores are −1e9 and must give
/// exactly zero weight); saturates at e^88 above 88 (callers pass x ≤ 0).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n · LN2_HI is exact for |n| < 2^9.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 · 2^23 rounds to the nearest integer without a
    // call (LLVM does not fold it away: no fast-math).
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-87.33, 88.0);
    let shifted = xc * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    // Cephes expf polynomial on [−ln2/2, ln2/2].
    let p = 1.987_569_2e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // n sits in the low mantissa bits of `shifted` (its ulp is 1): reading it
    // there avoids `as i32`, whose saturation LLVM does lane by lane.
    let n_int = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let scale = f32::from_bits((n_int.wrapping_add(127) as u32) << 23);
    if x < -87.33 {
        0.0
    } else {
        e * scale
    }
}

const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// GELU (erf form) or, with `grad`, its derivative. erf by Abramowitz & Stegun
/// 7.1.26 (|error| ≤ 1.5e-7): one `exp` of −x²/2, shared with the density term.
#[inline(always)]
pub fn gelu(v: f32, grad: bool) -> f32 {
    let z = v * std::f32::consts::FRAC_1_SQRT_2;
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    let e = exp_f32(-a * a);
    let cdf = 0.5 * (1.0 + (1.0 - poly * e).copysign(z));
    if grad {
        cdf + v * e * FRAC_1_SQRT_2PI
    } else {
        v * cdf
    }
}

/// Runs `$body` compiled for AVX2 + FMA when the CPU has them.
macro_rules! dispatch {
    ($avx:ident, $generic:ident, ($($arg:ident : $ty:ty),*)) => {
        dispatch!($avx, $generic, ($($arg: $ty),*) -> ())
    };
    ($avx:ident, $generic:ident, ($($arg:ident : $ty:ty),*) -> $ret:ty) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2,fma")]
            fn $avx($($arg: $ty),*) -> $ret {
                $generic($($arg),*)
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the features the function was compiled for are present.
                return unsafe { $avx($($arg),*) };
            }
        }
        $generic($($arg),*)
    }};
}

#[inline(always)]
fn gelu_generic(x: &[f32], dy: Option<&[f32]>, out: &mut [f32]) {
    match dy {
        None => {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = gelu(v, false);
            }
        }
        Some(dy) => {
            for ((o, &v), &d) in out.iter_mut().zip(x).zip(dy) {
                *o = gelu(v, true) * d;
            }
        }
    }
}

/// out = GELU(x), or with `dy` the backward dy · GELU'(x).
pub fn gelu_slice(x: &[f32], dy: Option<&[f32]>, out: &mut [f32]) {
    dispatch!(gelu_avx2, gelu_generic, (x: &[f32], dy: Option<&[f32]>, out: &mut [f32]))
}

/// Σ of a slice with eight running sums (a single sum is a serial chain that
/// cannot vectorize).
#[inline(always)]
fn sum8(xs: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn dot8(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn softmax_generic(row: &mut [f32], mask: &[f32]) {
    if !mask.is_empty() {
        for (v, m) in row.iter_mut().zip(mask) {
            *v += m;
        }
    }
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for v in row.iter_mut() {
        *v = exp_f32(*v - max);
    }
    let inv = 1.0 / sum8(row);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// Softmax of one row in place after adding `mask` (empty: no mask).
pub fn softmax_row(row: &mut [f32], mask: &[f32]) {
    dispatch!(softmax_avx2, softmax_generic, (row: &mut [f32], mask: &[f32]))
}

#[inline(always)]
fn softmax_bwd_generic(p: &[f32], dp: &mut [f32]) {
    let dot = dot8(p, dp);
    for (d, &pv) in dp.iter_mut().zip(p) {
        *d = pv * (*d - dot);
    }
}

/// Softmax backward of one row in place: dp ← p ⊙ (dp − Σ p ⊙ dp).
pub fn softmax_bwd_row(p: &[f32], dp: &mut [f32]) {
    dispatch!(softmax_bwd_avx2, softmax_bwd_generic, (p: &[f32], dp: &mut [f32]))
}

/// Max of a slice in eight lanes (a select, not `f32::max`, whose NaN rule
/// keeps the reduction scalar).
#[inline(always)]
fn max8(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v > *a { v } else { *a };
        }
    }
    acc.iter().fold(tail, |m, &v| if v > m { v } else { m })
}

#[inline(always)]
fn lse_generic(row: &[f32]) -> f64 {
    let max = max8(row);
    // Exponentials through a stack block: a plain map loop vectorizes, a
    // map fused into the lane sums does not.
    let mut block = [0f32; 256];
    let mut sum = 0f64;
    for c in row.chunks(256) {
        let b = &mut block[..c.len()];
        for (o, &v) in b.iter_mut().zip(c) {
            *o = exp_f32(v - max);
        }
        sum += sum8(b) as f64;
    }
    max as f64 + sum.ln()
}

/// log Σ exp(row), max-shifted (the cross-entropy over a vocabulary row).
pub fn lse(row: &[f32]) -> f64 {
    dispatch!(lse_avx2, lse_generic, (row: &[f32]) -> f64)
}

#[inline(always)]
fn exp_shift_scale_generic(row: &[f32], shift: f32, scale: f32, out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(row) {
        *o = exp_f32(v - shift) * scale;
    }
}

/// out = scale · exp(row − shift) (softmax times a scale when shift = lse).
pub fn exp_shift_scale(row: &[f32], shift: f32, scale: f32, out: &mut [f32]) {
    dispatch!(exp_shift_scale_avx2, exp_shift_scale_generic, (row: &[f32], shift: f32, scale: f32, out: &mut [f32]))
}

/// Σ (x − mean)² in eight lanes.
#[inline(always)]
fn sq_dev8(xs: &[f32], mean: f32) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|&v| (v - mean) * (v - mean))
        .sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += (v - mean) * (v - mean);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Mean and 1/√(var + eps) of one row.
#[inline(always)]
fn row_stats(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = sum8(row) / n;
    let var = sq_dev8(row, mean) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

#[inline(always)]
fn layer_norm_generic(x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
    let d = w.len();
    for (orow, xrow) in out.chunks_mut(d).zip(x.chunks(d)) {
        let (mean, rstd) = row_stats(xrow, eps);
        for (((o, &xv), &wv), &bv) in orow.iter_mut().zip(xrow).zip(w).zip(b) {
            *o = (xv - mean) * rstd * wv + bv;
        }
    }
}

/// Layer norm of whole rows (width `w.len()`) of `x` into `out`.
pub fn layer_norm_rows(x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
    dispatch!(layer_norm_avx2, layer_norm_generic, (x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]))
}

#[inline(always)]
fn layer_norm_bwd_generic(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    eps: f32,
    dx: &mut [f32],
    acc: &mut [f32],
) {
    let d = w.len();
    let (dw, rest) = acc.split_at_mut(d);
    let (db, scratch) = rest.split_at_mut(d);
    let (xhat, g) = scratch.split_at_mut(d);
    for ((dxrow, xrow), dyrow) in dx.chunks_mut(d).zip(x.chunks(d)).zip(dy.chunks(d)) {
        let (mean, rstd) = row_stats(xrow, eps);
        for (((xh, gv), &xv), (&dyv, &wv)) in xhat
            .iter_mut()
            .zip(g.iter_mut())
            .zip(xrow)
            .zip(dyrow.iter().zip(w))
        {
            *xh = (xv - mean) * rstd;
            *gv = dyv * wv;
        }
        let mg = sum8(g) / d as f32;
        let mgx = dot8(g, xhat) / d as f32;
        for ((o, &gv), &xh) in dxrow.iter_mut().zip(g.iter()).zip(xhat.iter()) {
            *o = rstd * (gv - mg - xh * mgx);
        }
        for (((a, bsum), &dyv), &xh) in dw.iter_mut().zip(db.iter_mut()).zip(dyrow).zip(xhat.iter())
        {
            *a += dyv * xh;
            *bsum += dyv;
        }
    }
}

/// Layer-norm backward of whole rows: dx into `dx`; Σ dy ⊙ x̂ and Σ dy added
/// into `acc[..d]` and `acc[d..2d]` (`acc` has 4d slots, the rest scratch).
pub fn layer_norm_bwd_rows(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    eps: f32,
    dx: &mut [f32],
    acc: &mut [f32],
) {
    dispatch!(layer_norm_bwd_avx2, layer_norm_bwd_generic, (x: &[f32], w: &[f32], dy: &[f32], eps: f32, dx: &mut [f32], acc: &mut [f32]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_to_a_few_ulp() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let exact = (x as f64).exp();
            let rel = ((exp_f32(x) as f64 - exact) / exact).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(-1e9), 0.0);
        assert_eq!(exp_f32(-88.0), 0.0);
        assert!(exp_f32(88.0).is_finite());
    }

    #[test]
    fn log_sum_exp_and_scaled_softmax_of_a_vocabulary_row() {
        let row: Vec<f32> = (0..30_522)
            .map(|i| ((i * 37 % 1000) as f32) / 90.0 - 4.0)
            .collect();
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let want = max
            + row
                .iter()
                .map(|&v| (v as f64 - max).exp())
                .sum::<f64>()
                .ln();
        let got = lse(&row);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        let mut out = vec![0f32; row.len()];
        exp_shift_scale(&row, got as f32, 0.25, &mut out);
        let total: f64 = out.iter().map(|&v| v as f64).sum();
        assert!(
            (total - 0.25).abs() < 1e-5,
            "softmax · 0.25 sums to {total}"
        );
        let i = 777;
        let exact = 0.25 * (row[i] as f64 - want).exp();
        let rel = (out[i] as f64 - exact).abs() / exact;
        assert!(rel < 4e-6, "relative error {rel}");
    }

    #[test]
    fn dispatched_kernels_match_the_scalar_definitions() {
        let x: Vec<f32> = (0..1003).map(|i| (i as f32 - 500.0) / 37.0).collect();
        let dy: Vec<f32> = (0..1003).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        let mut out = vec![0f32; x.len()];
        gelu_slice(&x, None, &mut out);
        for (o, &v) in out.iter().zip(&x) {
            assert_eq!(*o, gelu(v, false));
        }
        gelu_slice(&x, Some(&dy), &mut out);
        for ((o, &v), &d) in out.iter().zip(&x).zip(&dy) {
            assert!((*o - gelu(v, true) * d).abs() <= 1e-6 * (1.0 + o.abs()));
        }
        // Softmax of a 21-wide row (not a multiple of 8) with two masked slots.
        let mut row: Vec<f32> = (0..21).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let mut mask = vec![0f32; 21];
        mask[4] = -1e9;
        mask[20] = -1e9;
        let logits = row.clone();
        softmax_row(&mut row, &mask);
        let z: f64 = logits
            .iter()
            .zip(&mask)
            .filter(|(_, m)| **m == 0.0)
            .map(|(v, _)| (*v as f64).exp())
            .sum();
        for (i, (p, l)) in row.iter().zip(&logits).enumerate() {
            let want = if mask[i] == 0.0 {
                (*l as f64).exp() / z
            } else {
                0.0
            };
            assert!((*p as f64 - want).abs() < 1e-6, "slot {i}: {p} vs {want}");
        }
        let mut dp: Vec<f32> = (0..21).map(|i| i as f32 * 0.1 - 1.0).collect();
        let dot: f64 = row.iter().zip(&dp).map(|(a, b)| (*a * *b) as f64).sum();
        let want: Vec<f64> = row
            .iter()
            .zip(&dp)
            .map(|(p, d)| *p as f64 * (*d as f64 - dot))
            .collect();
        softmax_bwd_row(&row, &mut dp);
        for (g, w) in dp.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-6);
        }
    }
}
