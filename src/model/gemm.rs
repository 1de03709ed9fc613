//! The `gemm` crate behind the fused CPU kernels (attention, linear layers).

use candle_core::WithDType;

pub(crate) trait Float: WithDType {}
impl Float for f32 {}
impl Float for f64 {}

/// dst (m×n, contiguous) = [dst +] alpha · A(m×k) B(k×n), with arbitrary
/// element strides for A and B. `threads` ≤ 1 runs on the calling thread
/// (the attention kernel already runs one task per batch row).
#[allow(clippy::too_many_arguments)]
pub(crate) fn mm<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    accumulate: bool,
    a: &[T],
    a_strides: (usize, usize),
    b: &[T],
    b_strides: (usize, usize),
    alpha: f64,
    threads: usize,
) {
    mm_rs(
        m, n, k, dst, n, accumulate, a, a_strides, b, b_strides, alpha, threads,
    )
}

/// `mm` into rows `dst_rs` elements apart (a column block of a wider matrix).
#[allow(clippy::too_many_arguments)]
pub(crate) fn mm_rs<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    dst_rs: usize,
    accumulate: bool,
    a: &[T],
    (a_rs, a_cs): (usize, usize),
    b: &[T],
    (b_rs, b_cs): (usize, usize),
    alpha: f64,
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        dst_rs >= n && dst.len() >= (m - 1) * dst_rs + n,
        "gemm: destination too small"
    );
    if k == 0 {
        // An empty product: gemm would leave dst untouched.
        if !accumulate {
            for row in 0..m {
                dst[row * dst_rs..row * dst_rs + n].fill(T::zero());
            }
        }
        return;
    }
    assert!(
        a.len() > (m - 1) * a_rs + (k - 1) * a_cs,
        "gemm: lhs too small"
    );
    assert!(
        b.len() > (k - 1) * b_rs + (n - 1) * b_cs,
        "gemm: rhs too small"
    );
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the assertions above keep every addressed element inside the
    // slices; dst is a unique borrow, so it aliases neither a nor b.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            T::from_f64(1.0),
            T::from_f64(alpha),
            false,
            false,
            false,
            par,
        )
    }
}
