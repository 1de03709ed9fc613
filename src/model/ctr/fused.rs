//! candle ops over the whole-network kernels in `kernel`: the field
//! embedding lookup (table, ids → B × F·E) and the MLP / DeepFM / DCNv2 body
//! (x0, packed weights → h), each with its backward. CPU, f32 / f64; the
//! model uses the composed ops elsewhere.
//!
//! The body's weights reach the op as one packed tensor (`Tensor::cat` of the
//! flattened weights, a copy of ~0.2 M values a step), so that candle's
//! backward hands each weight its slice of the packed gradient. The forward
//! keeps the activations its backward needs inside the op, and only when a
//! gradient can flow (an input tracks its graph); the inference path passes
//! detached weights, so it keeps nothing and builds no graph.

use std::sync::Mutex;

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Storage, Tensor,
};

use super::kernel::{self, Activations, BodyShape, EmbedShape};
use crate::model::fused::contiguous;

/// Activations of one forward, by dtype.
enum Kept {
    F32(Activations<f32>),
    F64(Activations<f64>),
}

/// h = body(x0; packed weights).
pub(crate) struct BodyOp {
    pub shape: BodyShape,
    /// Keep the activations for a backward.
    pub save: bool,
    kept: Mutex<Option<Kept>>,
}

impl BodyOp {
    pub fn new(shape: BodyShape, save: bool) -> Self {
        Self {
            shape,
            save,
            kept: Mutex::new(None),
        }
    }
}

/// Whether the fused CTR ops apply to these tensors.
pub(crate) fn supported(ts: &[&Tensor]) -> bool {
    ts.iter().all(|t| crate::model::fused::supported(t))
        && ts.windows(2).all(|w| w[0].dtype() == w[1].dtype())
}

fn check_body(shape: &BodyShape, xl: &Layout, wl: &Layout) -> Result<usize> {
    let (rows, d) = xl.shape().dims2()?;
    if d != shape.input {
        candle_core::bail!("ctr body: input width {d}, expected {}", shape.input);
    }
    let p = wl.shape().dims1()?;
    if p != shape.packed_len() {
        candle_core::bail!(
            "ctr body: {p} packed weights, expected {}",
            shape.packed_len()
        );
    }
    Ok(rows)
}

impl CustomOp2 for BodyOp {
    fn name(&self) -> &'static str {
        "ctr-body"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let rows = check_body(&self.shape, xl, wl)?;
        let out = Shape::from((rows, self.shape.out_dim()));
        let mut kept = self
            .kept
            .lock()
            .map_err(|_| candle_core::Error::Msg("ctr body: lock poisoned".into()))?;
        match xs.dtype() {
            DType::F32 => {
                let (h, a) = kernel::forward(
                    &self.shape,
                    contiguous::<f32>(xs, xl, "ctr body")?,
                    contiguous::<f32>(ws, wl, "ctr body")?,
                    self.save,
                );
                *kept = a.map(Kept::F32);
                Ok((CpuStorage::F32(h), out))
            }
            DType::F64 => {
                let (h, a) = kernel::forward(
                    &self.shape,
                    contiguous::<f64>(xs, xl, "ctr body")?,
                    contiguous::<f64>(ws, wl, "ctr body")?,
                    self.save,
                );
                *kept = a.map(Kept::F64);
                Ok((CpuStorage::F64(h), out))
            }
            dt => candle_core::bail!("ctr body: unsupported dtype {dt:?}"),
        }
    }

    fn bwd(
        &self,
        x0: &Tensor,
        w: &Tensor,
        _h: &Tensor,
        dh: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let kept = self
            .kept
            .lock()
            .map_err(|_| candle_core::Error::Msg("ctr body: lock poisoned".into()))?
            .take();
        let Some(kept) = kept else {
            candle_core::bail!("ctr body: backward without saved activations (run it once)")
        };
        let dh = dh.contiguous()?;
        let (rows, d) = x0.dims2()?;
        let (dx, dw) = match kept {
            Kept::F32(a) => {
                let (dx, dw) = with3(x0, w, &dh, |x, w, g| {
                    kernel::backward(&self.shape, x, w, &a, g)
                })?;
                (
                    Tensor::from_vec(dx, (rows, d), x0.device())?,
                    Tensor::from_vec(dw, w.dims(), w.device())?,
                )
            }
            Kept::F64(a) => {
                let (dx, dw) = with3(x0, w, &dh, |x, w, g| {
                    kernel::backward(&self.shape, x, w, &a, g)
                })?;
                (
                    Tensor::from_vec(dx, (rows, d), x0.device())?,
                    Tensor::from_vec(dw, w.dims(), w.device())?,
                )
            }
        };
        Ok((Some(dx), Some(dw)))
    }
}

/// Runs `f` on the contiguous CPU slices of three tensors of one dtype.
fn with3<T: candle_core::WithDType, R>(
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    f: impl FnOnce(&[T], &[T], &[T]) -> R,
) -> Result<R> {
    let (sa, la) = a.storage_and_layout();
    let (sb, lb) = b.storage_and_layout();
    let (sc, lc) = c.storage_and_layout();
    match (&*sa, &*sb, &*sc) {
        (Storage::Cpu(sa), Storage::Cpu(sb), Storage::Cpu(sc)) => Ok(f(
            contiguous::<T>(sa, la, "ctr body")?,
            contiguous::<T>(sb, lb, "ctr body")?,
            contiguous::<T>(sc, lc, "ctr body")?,
        )),
        _ => candle_core::bail!("ctr body: CPU tensors only"),
    }
}

/// (B, F·E) embeddings = lookup(table, ids (B × ids_per_row) u32).
pub(crate) struct EmbedOp {
    pub shape: EmbedShape,
}

impl CustomOp2 for EmbedOp {
    fn name(&self) -> &'static str {
        "ctr-embedding"
    }

    fn cpu_fwd(
        &self,
        ts: &CpuStorage,
        tl: &Layout,
        is: &CpuStorage,
        il: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (table_rows, e) = tl.shape().dims2()?;
        let (rows, per) = il.shape().dims2()?;
        if e != self.shape.dim || per != self.shape.ids_per_row() {
            candle_core::bail!(
                "ctr embedding: table width {e} / {per} ids a row, expected {} / {}",
                self.shape.dim,
                self.shape.ids_per_row()
            );
        }
        let ids = contiguous::<u32>(is, il, "ctr embedding")?;
        if let Err(id) = self.shape.check(ids, table_rows) {
            candle_core::bail!("ctr embedding: id {id} outside the table of {table_rows} rows");
        }
        let out = Shape::from((rows, self.shape.fields() * e));
        let v = crate::model::fused::per_float!(ts.dtype(), "ctr embedding", T => kernel::embed(
            &self.shape,
            contiguous::<T>(ts, tl, "ctr embedding")?,
            ids,
        ));
        Ok((v, out))
    }

    fn bwd(
        &self,
        table: &Tensor,
        ids: &Tensor,
        _out: &Tensor,
        dout: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (table_rows, _) = table.dims2()?;
        let ids_v = ids.flatten_all()?.to_vec1::<u32>()?;
        let dout = dout.contiguous()?.flatten_all()?;
        let g = match dout.dtype() {
            DType::F32 => Tensor::from_vec(
                kernel::embed_grad(&self.shape, &ids_v, &dout.to_vec1::<f32>()?, table_rows),
                table.dims(),
                table.device(),
            )?,
            DType::F64 => Tensor::from_vec(
                kernel::embed_grad(&self.shape, &ids_v, &dout.to_vec1::<f64>()?, table_rows),
                table.dims(),
                table.device(),
            )?,
            dt => candle_core::bail!("ctr embedding: unsupported dtype {dt:?}"),
        };
        Ok((Some(g), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Batch, ColumnLayout, DatasetMeta, FieldMeta};
    use crate::model::ctr::CtrModel;
    use crate::model::embedding::FieldEmbedding;
    use crate::model::vars::{seeded_var_builder, sorted_vars};
    use crate::plan::{Backbone, CtrPlan};
    use candle_core::{Device, Var};
    use candle_nn::VarMap;

    type R = anyhow::Result<()>;

    fn field(name: &str, layout: ColumnLayout, vocab: usize) -> FieldMeta {
        FieldMeta {
            name: name.into(),
            layout,
            vocab_size: vocab,
            values: vec![],
            scale: None,
        }
    }

    /// Two single fields and one multi-valued field of width 3.
    fn meta() -> DatasetMeta {
        DatasetMeta {
            fields: vec![
                field("user", ColumnLayout::Single, 9),
                field("genres", ColumnLayout::Multi { width: 3 }, 6),
                field("item", ColumnLayout::Single, 11),
            ],
            text: None,
        }
    }

    fn batch(rows: usize, dev: &Device) -> anyhow::Result<Batch> {
        let single: Vec<u32> = (0..rows)
            .flat_map(|r| [(r * 7 % 9) as u32, (r * 5 % 11) as u32])
            .collect();
        // Row 0 all PAD, others one to three genres.
        let multi: Vec<u32> = (0..rows)
            .flat_map(|r| match r % 4 {
                0 => [0, 0, 0],
                1 => [(r % 5 + 1) as u32, 0, 0],
                2 => [1, (r % 4 + 2) as u32, 0],
                _ => [2, 3, 5],
            })
            .collect();
        Ok(Batch {
            rows,
            single: Some(Tensor::from_vec(single, (rows, 2), dev)?),
            multi: vec![Tensor::from_vec(multi, (rows, 3), dev)?],
            numbers: None,
            labels: Tensor::zeros(rows, DType::F32, dev)?,
            text: None,
        })
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> anyhow::Result<f64> {
        Ok((a - b)?
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?)
    }

    fn backbones() -> Vec<Backbone> {
        let mlp = vec![8, 6];
        vec![
            Backbone::Dnn {
                mlp: mlp.clone(),
                dropout: 0.0,
            },
            Backbone::DeepFm {
                mlp: mlp.clone(),
                dropout: 0.0,
            },
            Backbone::DeepFm {
                mlp: vec![],
                dropout: 0.0,
            },
            Backbone::DcnV2 {
                cross: 2,
                mlp,
                dropout: 0.0,
            },
            Backbone::DcnV2 {
                cross: 3,
                mlp: vec![],
                dropout: 0.0,
            },
        ]
    }

    /// The whole-network kernel against the composed candle ops: h and the
    /// gradient of every variable and of the embeddings, f64 and f32, on a
    /// batch split unevenly over the threads.
    #[test]
    fn body_matches_composed_ops() -> R {
        let dev = Device::Cpu;
        for dtype in [DType::F64, DType::F32] {
            let tol = if dtype == DType::F64 { 1e-11 } else { 2e-4 };
            for bb in backbones() {
                let vm = VarMap::new();
                let plan = CtrPlan {
                    embed: 4,
                    backbone: bb.clone(),
                };
                let model = CtrModel::new(&plan, &meta(), seeded_var_builder(&vm, 3, dtype, &dev))?;
                let emb = Var::from_tensor(
                    &Tensor::randn(0f64, 1.0, (37, 3, 4), &dev)?.to_dtype(dtype)?,
                )?;
                let fused = model
                    .fused_hidden(&emb, true, false)?
                    .expect("the kernel covers this backbone");
                let composed = model.hidden_from_embeddings(&emb, false)?.expect("hidden");
                assert_eq!(fused.dims(), composed.dims(), "{bb:?}");
                let d = max_diff(&fused, &composed)?;
                assert!(d < tol, "{bb:?} {dtype:?}: h differs by {d}");
                let r = Tensor::randn(0f64, 1.0, fused.dims(), &dev)?.to_dtype(dtype)?;
                let gf = (&fused * &r)?.sum_all()?.backward()?;
                let gc = (&composed * &r)?.sum_all()?.backward()?;
                let mut vars = sorted_vars(&vm)?;
                vars.push(("embeddings".into(), emb.clone()));
                for (name, v) in &vars {
                    if name.starts_with("ctr.fc_out") || name.starts_with("ctr.embedding") {
                        continue;
                    }
                    let a = gf
                        .get(v)
                        .unwrap_or_else(|| panic!("{bb:?}: no fused grad for {name}"));
                    let c = gc
                        .get(v)
                        .unwrap_or_else(|| panic!("{bb:?}: no composed grad for {name}"));
                    let d = max_diff(a, c)?;
                    assert!(
                        d < tol * 10.0,
                        "{bb:?} {dtype:?}: grad of {name} differs by {d}"
                    );
                }
            }
        }
        Ok(())
    }

    /// Central finite differences (f64) through the op itself, for the input
    /// and the packed weights.
    #[test]
    fn body_gradient_finite_differences() -> R {
        let dev = Device::Cpu;
        for bb in backbones() {
            let vm = VarMap::new();
            let plan = CtrPlan {
                embed: 2,
                backbone: bb.clone(),
            };
            let model =
                CtrModel::new(&plan, &meta(), seeded_var_builder(&vm, 5, DType::F64, &dev))?;
            let shape = model.body_shape.clone().expect("covered");
            let x0 = Tensor::randn(0f64, 1.0, (5, shape.input), &dev)?;
            let w = Tensor::randn(0f64, 0.5, shape.packed_len(), &dev)?;
            let r = Tensor::randn(0f64, 1.0, (5, shape.out_dim()), &dev)?;
            let f = |x: &Tensor, w: &Tensor| -> anyhow::Result<f64> {
                let h = x.apply_op2(w, BodyOp::new(shape.clone(), false))?;
                Ok((h * &r)?.sum_all()?.to_scalar::<f64>()?)
            };
            let (xv, wv) = (Var::from_tensor(&x0)?, Var::from_tensor(&w)?);
            let h = xv.apply_op2(&wv, BodyOp::new(shape.clone(), true))?;
            let g = (h * &r)?.sum_all()?.backward()?;
            for (which, base) in [(0, &x0), (1, &w)] {
                let analytic: Vec<f64> = g
                    .get(if which == 0 { &xv } else { &wv })
                    .expect("grad")
                    .flatten_all()?
                    .to_vec1()?;
                let flat: Vec<f64> = base.flatten_all()?.to_vec1()?;
                let step = (flat.len() / 23).max(1);
                for i in (0..flat.len()).step_by(step) {
                    let bump = |e: f64| -> anyhow::Result<Tensor> {
                        let mut v = flat.clone();
                        v[i] += e;
                        Ok(Tensor::from_vec(v, base.shape(), &dev)?)
                    };
                    let (up, down) = if which == 0 {
                        (f(&bump(1e-6)?, &w)?, f(&bump(-1e-6)?, &w)?)
                    } else {
                        (f(&x0, &bump(1e-6)?)?, f(&x0, &bump(-1e-6)?)?)
                    };
                    let numeric = (up - down) / 2e-6;
                    assert!(
                        (numeric - analytic[i]).abs() < 1e-6 * (1.0 + numeric.abs()),
                        "{bb:?} arg {which} entry {i}: numeric {numeric} analytic {}",
                        analytic[i]
                    );
                }
            }
        }
        Ok(())
    }

    /// The fused lookup against the composed one: values (single fields,
    /// mean-pooled multi field with PAD slots, an all-PAD row) and the
    /// table's gradient.
    #[test]
    fn embedding_matches_composed_lookup() -> R {
        let dev = Device::Cpu;
        for dtype in [DType::F64, DType::F32] {
            let vm = VarMap::new();
            let emb = FieldEmbedding::new(&meta(), 5, seeded_var_builder(&vm, 2, dtype, &dev))?;
            let b = batch(19, &dev)?;
            let fused = emb.forward(&b)?;
            let composed = emb.forward_composed(&b)?;
            assert!(max_diff(&fused, &composed)? < 1e-6);
            // Row 0's genres are all PAD: zeros, not NaN.
            let row0: Vec<f64> = fused.get(0)?.get(2)?.to_dtype(DType::F64)?.to_vec1()?;
            assert!(row0.iter().all(|&v| v == 0.0));
            let r = Tensor::randn(0f64, 1.0, fused.dims(), &dev)?.to_dtype(dtype)?;
            let gf = (&fused * &r)?.sum_all()?.backward()?;
            let gc = (&composed * &r)?.sum_all()?.backward()?;
            let (_, table) = &sorted_vars(&vm)?[0];
            let d = max_diff(gf.get(table).expect("grad"), gc.get(table).expect("grad"))?;
            assert!(d < 1e-5, "table gradient differs by {d}");
        }
        Ok(())
    }

    #[test]
    fn embedding_id_outside_the_table_is_an_error() -> R {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let emb = FieldEmbedding::new(&meta(), 5, seeded_var_builder(&vm, 2, DType::F32, &dev))?;
        let mut b = batch(4, &dev)?;
        b.single = Some(Tensor::new(&[[0u32, 1], [2, 3], [4, 500], [1, 1]], &dev)?);
        let err = emb.forward(&b).unwrap_err().to_string();
        assert!(err.contains("outside the table"), "{err}");
        Ok(())
    }

    /// Inference builds no graph and gives the training path's logits.
    #[test]
    fn predict_builds_no_graph() -> R {
        let dev = Device::Cpu;
        for bb in backbones() {
            let vm = VarMap::new();
            let plan = CtrPlan {
                embed: 4,
                backbone: bb.clone(),
            };
            let model =
                CtrModel::new(&plan, &meta(), seeded_var_builder(&vm, 3, DType::F32, &dev))?;
            let b = batch(33, &dev)?;
            let p = model.predict_logits(&b)?;
            assert!(!p.track_op(), "{bb:?}: inference tracked a graph");
            let t = model.forward(&b, false)?.logit;
            assert!(t.track_op());
            assert!(max_diff(&p, &t)? < 1e-6, "{bb:?}");
        }
        Ok(())
    }
}
