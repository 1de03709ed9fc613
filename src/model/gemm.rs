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

/// A new m×n matrix = A(m×k) B(k×n), single-threaded (strides as in `mm`).
/// gemm writes every element without reading the destination, so the vector
/// is not zero-filled first.
pub(crate) fn mm_new<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    a_strides: (usize, usize),
    b: &[T],
    b_strides: (usize, usize),
) -> Vec<T> {
    if k == 0 || m == 0 || n == 0 {
        return vec![T::zero(); m * n];
    }
    assert!(
        a.len() > (m - 1) * a_strides.0 + (k - 1) * a_strides.1,
        "gemm: lhs too small"
    );
    assert!(
        b.len() > (k - 1) * b_strides.0 + (n - 1) * b_strides.1,
        "gemm: rhs too small"
    );
    let mut dst: Vec<T> = Vec::with_capacity(m * n);
    // SAFETY: the assertions keep every addressed element of a and b inside
    // the slices; dst has room for m·n elements, and with `read_dst = false`
    // gemm writes each of them exactly once without reading any, so they are
    // all initialised before `set_len`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            a_strides.1 as isize,
            a_strides.0 as isize,
            b.as_ptr(),
            b_strides.1 as isize,
            b_strides.0 as isize,
            T::from_f64(0.0),
            T::from_f64(1.0),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
        dst.set_len(m * n);
    }
    dst
}
