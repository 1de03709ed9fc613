//! Whole-network CPU kernels for the CTR backbones that are an MLP, DeepFM
//! or DCNv2 over the field embeddings: forward, and backward into the input
//! and every weight, in plain loops over row chunks.
//!
//! A CTR step at batch 1024 is a few dozen small ops (1024 × 128…384). Run
//! as separate tensor ops, each one allocates its output, makes a pass over
//! memory and, multi-threaded, ends in a barrier; its backward allocates and
//! accumulates again. Here the batch is split into one chunk of rows per
//! thread and each chunk runs the whole network on its own (single-threaded
//! matmuls on data that stays in the core's cache), so the threads meet once,
//! when their weight gradients are summed. The composed ops in `ctr::*` stay
//! the reference (and the path on other devices); the tests check this
//! against them and by finite differences.
//!
//! Weights arrive packed in one vector in the model's variable order: for
//! DCNv2 `cross.{l}.weight` (D × D), `cross.{l}.bias` (D) for every l, then
//! `mlp.{i}.weight` (out × in), `mlp.{i}.bias` for every i.

use rayon::prelude::*;

use crate::model::gemm::{mm, mm_new, Float};

/// Which network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// h = mlp(x0).
    Mlp,
    /// h = [mlp(x0) | fm(x0)], the FM interaction vector over `fields` × `embed`.
    DeepFm { fields: usize, embed: usize },
    /// h = [cross(x0) | mlp(x0)] (the MLP part absent when it has no layers).
    DcnV2 { depth: usize },
}

/// The network's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodyShape {
    pub kind: BodyKind,
    /// D = F · E.
    pub input: usize,
    /// Output width of each MLP layer (each is Linear → ReLU).
    pub mlp: Vec<usize>,
}

/// Where one weight lives in the packed vector.
#[derive(Debug, Clone, Copy)]
struct Slot {
    w: usize,
    b: usize,
    out: usize,
    inp: usize,
}

impl BodyShape {
    /// Width of h.
    pub fn out_dim(&self) -> usize {
        let mlp = self.mlp.last().copied();
        match self.kind {
            BodyKind::Mlp => mlp.unwrap_or(self.input),
            BodyKind::DeepFm { embed, .. } => mlp.unwrap_or(self.input) + embed,
            BodyKind::DcnV2 { .. } => self.input + mlp.unwrap_or(0),
        }
    }

    fn cross_depth(&self) -> usize {
        match self.kind {
            BodyKind::DcnV2 { depth } => depth,
            _ => 0,
        }
    }

    /// (cross slots, mlp slots).
    fn slots(&self) -> (Vec<Slot>, Vec<Slot>) {
        let d = self.input;
        let mut at = 0;
        let mut take = |out: usize, inp: usize| {
            let s = Slot {
                w: at,
                b: at + out * inp,
                out,
                inp,
            };
            at += out * inp + out;
            s
        };
        let cross = (0..self.cross_depth()).map(|_| take(d, d)).collect();
        let mut inp = d;
        let mlp = self
            .mlp
            .iter()
            .map(|&o| {
                let s = take(o, inp);
                inp = o;
                s
            })
            .collect();
        (cross, mlp)
    }

    /// Length of the packed weight vector.
    pub fn packed_len(&self) -> usize {
        let (c, m) = self.slots();
        c.iter()
            .chain(&m)
            .map(|s| s.out * s.inp + s.out)
            .sum::<usize>()
    }

    /// Where the MLP's output starts in a row of h.
    fn mlp_col(&self) -> usize {
        match self.kind {
            BodyKind::DcnV2 { .. } => self.input,
            _ => 0,
        }
    }
}

/// What the backward needs from the forward, for one chunk of rows.
#[derive(Debug)]
pub(crate) struct Saved<T> {
    /// DCNv2: the input x_l of cross layers 1.. (layer 0's is x0), and
    /// z_l = x_l·Wᵀ + b of every layer.
    xs: Vec<Vec<T>>,
    zs: Vec<Vec<T>>,
    /// Every MLP layer's output (after the ReLU).
    acts: Vec<Vec<T>>,
}

impl<T> Default for Saved<T> {
    fn default() -> Self {
        Self {
            xs: Vec::new(),
            zs: Vec::new(),
            acts: Vec::new(),
        }
    }
}

/// What `forward` saved: the rows per chunk and each chunk's activations.
#[derive(Debug)]
pub(crate) struct Activations<T> {
    per: usize,
    chunks: Vec<Saved<T>>,
}

/// Row chunks: one per thread, at least 16 rows each.
fn chunks(rows: usize) -> usize {
    let threads = candle_core::utils::get_num_threads().max(1);
    threads.min(rows.div_ceil(16)).max(1)
}

/// x (r × inp) · Wᵀ (single-threaded, a new vector; the bias is added by
/// the pass that follows).
#[inline(always)]
fn product<T: Float>(x: &[T], w: &[T], s: Slot, r: usize) -> Vec<T> {
    mm_new(r, s.out, s.inp, x, (s.inp, 1), w, (1, s.inp))
}

/// z += b (row-wise), and the cross layer's output x0 ⊙ z + x.
#[inline(always)]
fn cross_join<T: Float>(x0: &[T], z: &mut [T], b: &[T], x: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(z.len());
    for ((zr, x0r), xr) in z
        .chunks_mut(b.len())
        .zip(x0.chunks(b.len()))
        .zip(x.chunks(b.len()))
    {
        for (zv, &bv) in zr.iter_mut().zip(b) {
            *zv += bv;
        }
        out.extend(zr.iter().zip(x0r).zip(xr).map(|((&zv, &a), &c)| a * zv + c));
    }
    out
}

/// y = relu(y + b) row-wise, in place: a select rather than a conditional
/// store, so that it vectorizes. `<` keeps NaN, so a diverging model still
/// trips the loss check.
#[inline(always)]
fn bias_relu<T: Float>(y: &mut [T], b: &[T]) {
    for row in y.chunks_mut(b.len()) {
        for (v, &bv) in row.iter_mut().zip(b) {
            let t = *v + bv;
            *v = if t < T::zero() { T::zero() } else { t };
        }
    }
}

/// The forward of `r` rows: x0 (r × D) → h (r × H, rows `h_rs` apart).
#[inline(always)]
fn forward_chunk<T: Float>(
    shape: &BodyShape,
    x0: &[T],
    w: &[T],
    r: usize,
    h: &mut [T],
    h_rs: usize,
    mut saved: Option<&mut Saved<T>>,
) {
    let d = shape.input;
    let (cross, mlp) = shape.slots();
    if !cross.is_empty() {
        let n = r * d;
        let keep = saved.is_some();
        let (mut xs, mut zs) = (Vec::new(), Vec::new());
        let mut x: Vec<T> = Vec::new();
        for (l, s) in cross.iter().enumerate() {
            let input = if l == 0 { &x0[..n] } else { &x[..] };
            let mut z = product(input, &w[s.w..s.b], *s, r);
            let next = cross_join(&x0[..n], &mut z, &w[s.b..s.b + s.out], input);
            let prev = std::mem::replace(&mut x, next);
            if keep {
                if l > 0 {
                    xs.push(prev);
                }
                zs.push(z);
            }
        }
        for (row, src) in h.chunks_mut(h_rs).zip(x.chunks(d)).take(r) {
            row[..d].copy_from_slice(src);
        }
        if let Some(sv) = saved.as_deref_mut() {
            sv.xs = xs;
            sv.zs = zs;
        }
    }
    let mut acts: Vec<Vec<T>> = Vec::with_capacity(mlp.len());
    for (i, s) in mlp.iter().enumerate() {
        let input = match acts.last() {
            Some(a) => &a[..],
            None => x0,
        };
        let mut y = product(input, &w[s.w..s.b], *s, r);
        bias_relu(&mut y, &w[s.b..s.b + s.out]);
        if saved.is_none() && i > 0 {
            // Inference: only the previous layer's output is still needed.
            acts.clear();
        }
        acts.push(y);
    }
    let col = shape.mlp_col();
    match acts.last() {
        Some(a) => {
            let o = mlp[mlp.len() - 1].out;
            for (row, src) in h.chunks_mut(h_rs).zip(a.chunks(o)).take(r) {
                row[col..col + o].copy_from_slice(src);
            }
        }
        None if !matches!(shape.kind, BodyKind::DcnV2 { .. }) => {
            for (row, src) in h.chunks_mut(h_rs).zip(x0.chunks(d)).take(r) {
                row[..d].copy_from_slice(src);
            }
        }
        None => {}
    }
    if let BodyKind::DeepFm { fields, embed } = shape.kind {
        let col = shape.out_dim() - embed;
        let half = T::from_f64(0.5);
        for (row, v) in h.chunks_mut(h_rs).zip(x0.chunks(d)).take(r) {
            for e in 0..embed {
                let (mut sum, mut sq) = (T::zero(), T::zero());
                for f in 0..fields {
                    let x = v[f * embed + e];
                    sum += x;
                    sq += x * x;
                }
                row[col + e] = half * (sum * sum - sq);
            }
        }
    }
    if let Some(sv) = saved {
        sv.acts = acts;
    }
}

/// dW (out × inp) += dzᵀ · x and db += Σ_rows dz.
#[inline(always)]
fn weight_grad<T: Float>(dz: &[T], x: &[T], s: Slot, r: usize, g: &mut [T]) {
    mm(
        s.out,
        s.inp,
        r,
        &mut g[s.w..s.b],
        true,
        dz,
        (1, s.out),
        x,
        (s.inp, 1),
        1.0,
        1,
    );
    let db = &mut g[s.b..s.b + s.out];
    for row in dz.chunks(s.out).take(r) {
        for (a, &v) in db.iter_mut().zip(row) {
            *a += v;
        }
    }
}

/// dx (r × inp) [+]= dz · W.
#[inline(always)]
fn input_grad<T: Float>(dz: &[T], w: &[T], s: Slot, r: usize, dx: &mut [T], accumulate: bool) {
    mm(
        r,
        s.inp,
        s.out,
        dx,
        accumulate,
        dz,
        (s.out, 1),
        &w[s.w..s.b],
        (s.inp, 1),
        1.0,
        1,
    );
}

/// The backward of `r` rows: dh (r × H) → dx0 (r × D, overwritten), and the
/// weight gradients added into `g` (packed like the weights).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_chunk<T: Float>(
    shape: &BodyShape,
    x0: &[T],
    w: &[T],
    saved: &Saved<T>,
    dh: &[T],
    r: usize,
    dx0: &mut [T],
    g: &mut [T],
) {
    let d = shape.input;
    let h_dim = shape.out_dim();
    let (cross, mlp) = shape.slots();
    // dx0 arrives zeroed (`backward` allocates it so).
    if let BodyKind::DeepFm { fields, embed } = shape.kind {
        let col = h_dim - embed;
        for ((dx, v), gh) in dx0.chunks_mut(d).zip(x0.chunks(d)).zip(dh.chunks(h_dim)) {
            for e in 0..embed {
                let mut sum = T::zero();
                for f in 0..fields {
                    sum += v[f * embed + e];
                }
                let gf = gh[col + e];
                for f in 0..fields {
                    dx[f * embed + e] += gf * (sum - v[f * embed + e]);
                }
            }
        }
    }
    if let Some(last) = mlp.last() {
        let col = shape.mlp_col();
        let mut da: Vec<T> = dh
            .chunks(h_dim)
            .take(r)
            .flat_map(|row| row[col..col + last.out].iter().copied())
            .collect();
        for i in (0..mlp.len()).rev() {
            let s = mlp[i];
            let a = &saved.acts[i];
            for (gv, &av) in da.iter_mut().zip(a) {
                *gv = if av > T::zero() { *gv } else { T::zero() };
            }
            let input = if i == 0 { x0 } else { &saved.acts[i - 1][..] };
            weight_grad(&da, input, s, r, g);
            if i == 0 {
                input_grad(&da, w, s, r, dx0, true);
            } else {
                let mut prev = vec![T::zero(); r * s.inp];
                input_grad(&da, w, s, r, &mut prev, false);
                da = prev;
            }
        }
    } else if !matches!(shape.kind, BodyKind::DcnV2 { .. }) {
        for (dx, gh) in dx0.chunks_mut(d).zip(dh.chunks(h_dim)).take(r) {
            for (a, &v) in dx.iter_mut().zip(&gh[..d]) {
                *a += v;
            }
        }
    }
    if !cross.is_empty() {
        let n = r * d;
        let mut dy: Vec<T> = dh
            .chunks(h_dim)
            .take(r)
            .flat_map(|row| row[..d].iter().copied())
            .collect();
        let mut dz = vec![T::zero(); n];
        for l in (0..cross.len()).rev() {
            let s = cross[l];
            let x = if l == 0 {
                &x0[..n]
            } else {
                &saved.xs[l - 1][..]
            };
            let z = &saved.zs[l][..];
            // y = x0 ⊙ z + x
            for (((dz, dx), &g), (&a, &zv)) in dz
                .iter_mut()
                .zip(dx0.iter_mut())
                .zip(&dy)
                .zip(x0.iter().zip(z))
            {
                *dz = g * a;
                *dx += g * zv;
            }
            weight_grad(&dz, x, s, r, g);
            // dx = dy + dz·W
            input_grad(&dz, w, s, r, &mut dy, true);
        }
        for (a, &v) in dx0.iter_mut().zip(&dy) {
            *a += v;
        }
    }
}

/// Whether the chunk kernels' AVX2 + FMA build can run (the crate itself
/// targets baseline x86-64, where the element-wise loops stay SSE).
fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_chunk_avx2<T: Float>(
    shape: &BodyShape,
    x0: &[T],
    w: &[T],
    r: usize,
    h: &mut [T],
    h_rs: usize,
    saved: Option<&mut Saved<T>>,
) {
    forward_chunk(shape, x0, w, r, h, h_rs, saved)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn backward_chunk_avx2<T: Float>(
    shape: &BodyShape,
    x0: &[T],
    w: &[T],
    saved: &Saved<T>,
    dh: &[T],
    r: usize,
    dx0: &mut [T],
    g: &mut [T],
) {
    backward_chunk(shape, x0, w, saved, dh, r, dx0, g)
}

#[cfg(not(target_arch = "x86_64"))]
use {backward_chunk as backward_chunk_avx2, forward_chunk as forward_chunk_avx2};

/// h (B × H) of x0 (B × D); with `save`, what the backward needs, per chunk.
pub(crate) fn forward<T: Float>(
    shape: &BodyShape,
    x0: &[T],
    w: &[T],
    save: bool,
) -> (Vec<T>, Option<Activations<T>>) {
    let d = shape.input;
    let h_dim = shape.out_dim();
    let rows = x0.len() / d.max(1);
    let per = rows.div_ceil(chunks(rows)).max(1);
    let mut h = vec![T::zero(); rows * h_dim];
    let saved: Vec<Saved<T>> = h
        .par_chunks_mut(per * h_dim)
        .zip(x0.par_chunks(per * d))
        .map(|(hc, xc)| {
            let r = xc.len() / d;
            let mut sv = Saved::default();
            let sv_ref = save.then_some(&mut sv);
            if avx2() {
                // SAFETY: the CPU has AVX2 and FMA.
                unsafe { forward_chunk_avx2(shape, xc, w, r, hc, h_dim, sv_ref) }
            } else {
                forward_chunk(shape, xc, w, r, hc, h_dim, sv_ref)
            }
            sv
        })
        .collect();
    (h, save.then_some(Activations { per, chunks: saved }))
}

/// (dx0, dW packed) from dh, with what `forward` saved.
pub(crate) fn backward<T: Float>(
    shape: &BodyShape,
    x0: &[T],
    w: &[T],
    saved: &Activations<T>,
    dh: &[T],
) -> (Vec<T>, Vec<T>) {
    let d = shape.input;
    let h_dim = shape.out_dim();
    let rows = x0.len() / d.max(1);
    let per = saved.per;
    let mut dx0 = vec![T::zero(); rows * d];
    let p = shape.packed_len();
    let grads: Vec<Vec<T>> = dx0
        .par_chunks_mut(per * d)
        .zip(x0.par_chunks(per * d))
        .zip(dh.par_chunks(per * h_dim))
        .zip(saved.chunks.par_iter())
        .map(|(((dx, xc), dhc), sv)| {
            let r = xc.len() / d;
            let mut g = vec![T::zero(); p];
            if avx2() {
                // SAFETY: the CPU has AVX2 and FMA.
                unsafe { backward_chunk_avx2(shape, xc, w, sv, dhc, r, dx, &mut g) }
            } else {
                backward_chunk(shape, xc, w, sv, dhc, r, dx, &mut g)
            }
            g
        })
        .collect();
    let mut it = grads.into_iter();
    let mut total = it.next().unwrap_or_else(|| vec![T::zero(); p]);
    for g in it {
        for (a, v) in total.iter_mut().zip(g) {
            *a += v;
        }
    }
    (dx0, total)
}

/// The field-embedding lookup: single fields copy their row of the shared
/// table, multi-valued fields average their non-PAD rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EmbedShape {
    pub dim: usize,
    /// Row offset of each single field in the table.
    pub single: Vec<u32>,
    /// (row offset, width) of each multi-valued field.
    pub multi: Vec<(u32, usize)>,
}

impl EmbedShape {
    /// Ids per row: the single fields, then every multi field's slots.
    pub fn ids_per_row(&self) -> usize {
        self.single.len() + self.multi.iter().map(|m| m.1).sum::<usize>()
    }

    pub fn fields(&self) -> usize {
        self.single.len() + self.multi.len()
    }

    /// The first id whose table row is past `table_rows`, if any.
    pub fn check(&self, ids: &[u32], table_rows: usize) -> Result<(), u32> {
        let per = self.ids_per_row();
        for row in ids.chunks(per.max(1)) {
            for (k, &off) in self.single.iter().enumerate() {
                if (off as usize) + row[k] as usize >= table_rows {
                    return Err(row[k]);
                }
            }
            let mut at = self.single.len();
            for &(off, w) in &self.multi {
                for &id in &row[at..at + w] {
                    if id != 0 && (off as usize) + id as usize >= table_rows {
                        return Err(id);
                    }
                }
                at += w;
            }
        }
        Ok(())
    }
}

/// (B × F·E) embeddings; `ids` (B × ids_per_row) must be in range (`check`).
pub(crate) fn embed<T: Float>(shape: &EmbedShape, table: &[T], ids: &[u32]) -> Vec<T> {
    let (e, per, f) = (shape.dim, shape.ids_per_row(), shape.fields());
    let rows = ids.len() / per.max(1);
    let mut out = vec![T::zero(); rows * f * e];
    let band = rows.div_ceil(chunks(rows)).max(1);
    out.par_chunks_mut(band * f * e)
        .zip(ids.par_chunks(band * per))
        .for_each(|(o, idc)| {
            for (orow, irow) in o.chunks_mut(f * e).zip(idc.chunks(per)) {
                for (k, &off) in shape.single.iter().enumerate() {
                    let t = (off + irow[k]) as usize * e;
                    orow[k * e..(k + 1) * e].copy_from_slice(&table[t..t + e]);
                }
                let mut at = shape.single.len();
                for (m, &(off, w)) in shape.multi.iter().enumerate() {
                    let dst = &mut orow[(shape.single.len() + m) * e..][..e];
                    let mut count = 0usize;
                    for &id in &irow[at..at + w] {
                        if id != 0 {
                            let t = (off + id) as usize * e;
                            for (a, &v) in dst.iter_mut().zip(&table[t..t + e]) {
                                *a += v;
                            }
                            count += 1;
                        }
                    }
                    let inv = T::from_f64(1.0 / count.max(1) as f64);
                    for a in dst.iter_mut() {
                        *a *= inv;
                    }
                    at += w;
                }
            }
        });
    out
}

/// The table's gradient (table_rows × E) from d(embeddings) (B × F·E).
pub(crate) fn embed_grad<T: Float>(
    shape: &EmbedShape,
    ids: &[u32],
    dout: &[T],
    table_rows: usize,
) -> Vec<T> {
    let (e, per, f) = (shape.dim, shape.ids_per_row(), shape.fields());
    let mut g = vec![T::zero(); table_rows * e];
    for (irow, drow) in ids.chunks(per).zip(dout.chunks(f * e)) {
        for (k, &off) in shape.single.iter().enumerate() {
            let t = (off + irow[k]) as usize * e;
            for (a, &v) in g[t..t + e].iter_mut().zip(&drow[k * e..(k + 1) * e]) {
                *a += v;
            }
        }
        let mut at = shape.single.len();
        for (m, &(off, w)) in shape.multi.iter().enumerate() {
            let slots = &irow[at..at + w];
            let count = slots.iter().filter(|&&id| id != 0).count();
            if count > 0 {
                let inv = T::from_f64(1.0 / count as f64);
                let src = &drow[(shape.single.len() + m) * e..][..e];
                for &id in slots.iter().filter(|&&id| id != 0) {
                    let t = (off + id) as usize * e;
                    for (a, &v) in g[t..t + e].iter_mut().zip(src) {
                        *a += v * inv;
                    }
                }
            }
            at += w;
        }
    }
    g
}
