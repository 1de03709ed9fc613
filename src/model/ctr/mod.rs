//! CTR backbones over the shared field embedding.
//!
//! [`CtrModel`] is what every stage builds on: `forward` returns the logit and,
//! for every backbone except `lr` and `fm`, the final hidden representation h
//! that the prompt generator reads. `fc_out` (h → logit) is a separate linear
//! named `ctr.fc_out.*` so that a later stage can drop or re-initialise it.
//!
//! Variable names (all under `ctr.`): `embedding.weight` (shared categorical
//! table), `embedding.number`, `linear.*` + `bias` (first-order term of lr/fm),
//! `mlp.{i}.*`, `cross.{l}.*` (dcn, dcnv2), `attention.{l}.*` (autoint),
//! `cin.{k}.*` (xdeepfm), `senet.*`, `bilinear_e.*`, `bilinear_v.*` (fibinet),
//! `fc_out.*`.

pub mod autoint;
pub mod dcn;
pub mod dcnv2;
pub mod fibinet;
pub mod fm;
mod fused;
pub(crate) mod kernel;
pub mod lr;
pub mod mlp;
pub mod xdeepfm;

use anyhow::{bail, Result};
use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

use crate::data::{Batch, DatasetMeta};
use crate::model::embedding::FieldEmbedding;
use crate::model::linear::{linear, Linear};
use crate::model::nn::linear_xavier;
use crate::plan::{Backbone, CtrPlan};
use fused::BodyOp;
use kernel::{BodyKind, BodyShape};

use autoint::SelfAttention;
use dcn::CrossNet;
use dcnv2::CrossNetV2;
use fibinet::{Bilinear, Senet};
use lr::FirstOrder;
use mlp::Mlp;
use xdeepfm::Cin;

/// The fused CPU lookup op (the embedding module sits outside `ctr`).
pub(crate) fn fused_embed_op(shape: kernel::EmbedShape) -> impl candle_core::CustomOp2 {
    fused::EmbedOp { shape }
}

/// Result of a forward pass.
#[derive(Debug, Clone)]
pub struct CtrOutput {
    /// (B,) logits.
    pub logit: Tensor,
    /// (B, hidden_dim) final hidden representation; None for `lr` and `fm`.
    pub hidden: Option<Tensor>,
}

#[derive(Debug, Clone)]
enum Body {
    Lr(FirstOrder),
    Fm(FirstOrder),
    Dnn(Mlp),
    DeepFm(Mlp),
    Dcn(CrossNet, Mlp),
    DcnV2(CrossNetV2, Mlp),
    AutoInt(SelfAttention, Mlp),
    XDeepFm(Cin, Mlp),
    FiBiNet {
        senet: Senet,
        bi_e: Bilinear,
        bi_v: Bilinear,
        mlp: Mlp,
    },
}

/// A CTR backbone: field embedding → interaction network → h → `fc_out` → logit.
#[derive(Debug, Clone)]
pub struct CtrModel {
    embedding: Option<FieldEmbedding>,
    body: Body,
    fc_out: Option<Linear>,
    hidden_dim: Option<usize>,
    name: &'static str,
    /// The whole-network CPU kernel's shape, for backbones it covers
    /// (`dnn`, `deepfm`, `dcnv2`).
    body_shape: Option<BodyShape>,
}

impl CtrModel {
    /// Builds the backbone of `plan` for the fields of `meta`. `vb` is the
    /// ROOT builder: every variable is created under `ctr.`.
    pub fn new(plan: &CtrPlan, meta: &DatasetMeta, vb: VarBuilder) -> Result<Self> {
        let vb = vb.pp("ctr");
        let e = plan.embed;
        let f = meta.fields.len();
        if f == 0 {
            bail!("the CTR model needs at least one field with `ctr` enabled");
        }
        let flat = f * e;
        let embedding = match plan.backbone {
            Backbone::Lr => None,
            _ => Some(FieldEmbedding::new(meta, e, vb.pp("embedding"))?),
        };
        let mlp = |dims: &[usize], dropout: f64| Mlp::new(flat, dims, dropout, vb.pp("mlp"));
        let (body, hidden_dim) = match &plan.backbone {
            Backbone::Lr => (Body::Lr(FirstOrder::new(meta, vb.clone())?), None),
            Backbone::Fm => (Body::Fm(FirstOrder::new(meta, vb.clone())?), None),
            Backbone::Dnn { mlp: dims, dropout } => {
                let m = mlp(dims, *dropout)?;
                let d = m.out_dim();
                (Body::Dnn(m), Some(d))
            }
            Backbone::DeepFm { mlp: dims, dropout } => {
                let m = mlp(dims, *dropout)?;
                let d = m.out_dim() + e;
                (Body::DeepFm(m), Some(d))
            }
            Backbone::Dcn {
                cross,
                mlp: dims,
                dropout,
            } => {
                let m = mlp(dims, *dropout)?;
                let d = flat + if m.is_empty() { 0 } else { m.out_dim() };
                (
                    Body::Dcn(CrossNet::new(flat, *cross, vb.pp("cross"))?, m),
                    Some(d),
                )
            }
            Backbone::DcnV2 {
                cross,
                mlp: dims,
                dropout,
            } => {
                let m = mlp(dims, *dropout)?;
                let d = flat + if m.is_empty() { 0 } else { m.out_dim() };
                (
                    Body::DcnV2(CrossNetV2::new(flat, *cross, vb.pp("cross"))?, m),
                    Some(d),
                )
            }
            Backbone::AutoInt {
                layers,
                heads,
                att_dim,
                mlp: dims,
                dropout,
            } => {
                let att = SelfAttention::new(e, *layers, *heads, *att_dim, vb.pp("attention"))?;
                let m = mlp(dims, *dropout)?;
                let d = f * att.field_dim(e) + if m.is_empty() { 0 } else { m.out_dim() };
                (Body::AutoInt(att, m), Some(d))
            }
            Backbone::XDeepFm {
                cin,
                mlp: dims,
                dropout,
            } => {
                if cin.is_empty() {
                    bail!("xdeepfm needs at least one CIN layer");
                }
                let c = Cin::new(f, cin, vb.pp("cin"))?;
                let m = mlp(dims, *dropout)?;
                let d = c.out_dim() + if m.is_empty() { 0 } else { m.out_dim() };
                (Body::XDeepFm(c, m), Some(d))
            }
            Backbone::FiBiNet {
                reduction,
                bilinear,
                mlp: dims,
                dropout,
            } => {
                if f < 2 {
                    bail!("fibinet needs at least two CTR fields");
                }
                let senet = Senet::new(f, *reduction, vb.pp("senet"))?;
                let bi_e = Bilinear::new(f, e, *bilinear, vb.pp("bilinear_e"))?;
                let bi_v = Bilinear::new(f, e, *bilinear, vb.pp("bilinear_v"))?;
                let m = Mlp::new(2 * bi_e.pairs() * e, dims, *dropout, vb.pp("mlp"))?;
                let d = m.out_dim();
                (
                    Body::FiBiNet {
                        senet,
                        bi_e,
                        bi_v,
                        mlp: m,
                    },
                    Some(d),
                )
            }
        };
        let fc_out = match hidden_dim {
            Some(d) => Some(linear_xavier(d, 1, vb.pp("fc_out"))?),
            None => None,
        };
        let body_shape = match &body {
            Body::Dnn(m) => Some((BodyKind::Mlp, m)),
            Body::DeepFm(m) => Some((
                BodyKind::DeepFm {
                    fields: f,
                    embed: e,
                },
                m,
            )),
            Body::DcnV2(c, m) => Some((BodyKind::DcnV2 { depth: c.depth() }, m)),
            _ => None,
        }
        .map(|(kind, m)| BodyShape {
            kind,
            input: flat,
            mlp: m.widths(),
        });
        Ok(Self {
            embedding,
            body,
            fc_out,
            hidden_dim,
            name: plan.backbone.name(),
            body_shape,
        })
    }

    /// Size of h, or None for backbones without one (`lr`, `fm`).
    pub fn hidden_dim(&self) -> Option<usize> {
        self.hidden_dim
    }

    /// The language's name of the backbone.
    pub fn backbone_name(&self) -> &'static str {
        self.name
    }

    /// The shared field embedding (None for `lr`).
    pub fn embedding(&self) -> Option<&FieldEmbedding> {
        self.embedding.as_ref()
    }

    /// h for a batch (None for `lr`, `fm`). Dropout is active only when `train`.
    pub fn hidden(&self, batch: &Batch, train: bool) -> Result<Option<Tensor>> {
        self.hidden_impl(batch, train, false)
    }

    /// `hidden`, with the weights detached when `detach` (no graph: inference).
    fn hidden_impl(&self, batch: &Batch, train: bool, detach: bool) -> Result<Option<Tensor>> {
        let emb = match &self.embedding {
            Some(e) => e.forward_impl(batch, detach)?,
            None => return Ok(None),
        };
        if let Some(h) = self.fused_hidden(&emb, train, detach)? {
            return Ok(Some(h));
        }
        self.hidden_from_embeddings(&emb, train)
    }

    /// h through the whole-network kernel, where it applies: CPU f32/f64,
    /// a backbone it covers, and no dropout to draw.
    fn fused_hidden(&self, emb: &Tensor, train: bool, detach: bool) -> Result<Option<Tensor>> {
        let Some(shape) = &self.body_shape else {
            return Ok(None);
        };
        let (mlp, cross) = match &self.body {
            Body::Dnn(m) | Body::DeepFm(m) => (m, None),
            Body::DcnV2(c, m) => (m, Some(c)),
            _ => return Ok(None),
        };
        if train && mlp.dropout() > 0.0 {
            return Ok(None);
        }
        let mut weights: Vec<Tensor> = Vec::new();
        for t in cross
            .map(|c| c.params())
            .unwrap_or_default()
            .into_iter()
            .chain(mlp.params())
        {
            let t = t.flatten_all()?;
            weights.push(if detach { t.detach() } else { t });
        }
        let (b, f, e) = emb.dims3()?;
        let x0 = emb.reshape((b, f * e))?;
        let mut all: Vec<&Tensor> = weights.iter().collect();
        all.push(&x0);
        if !fused::supported(&all) {
            return Ok(None);
        }
        let packed = if weights.is_empty() {
            // DeepFM / DNN without MLP layers: nothing to pack.
            Tensor::zeros(0, x0.dtype(), x0.device())?
        } else {
            Tensor::cat(&weights, 0)?
        };
        let save = x0.track_op() || packed.track_op();
        Ok(Some(
            x0.apply_op2(&packed, BodyOp::new(shape.clone(), save))?,
        ))
    }

    /// h from (B, F, E) field embeddings (None for `lr`, `fm`).
    pub fn hidden_from_embeddings(&self, emb: &Tensor, train: bool) -> Result<Option<Tensor>> {
        let (b, f, e) = emb.dims3()?;
        let flat = || emb.reshape((b, f * e));
        let with_mlp = |first: Tensor, mlp: &Mlp, x0: &Tensor| -> Result<Tensor> {
            if mlp.is_empty() {
                Ok(first)
            } else {
                Ok(Tensor::cat(&[first, mlp.forward(x0, train)?], 1)?)
            }
        };
        let h = match &self.body {
            Body::Lr(_) | Body::Fm(_) => return Ok(None),
            Body::Dnn(mlp) => mlp.forward(&flat()?, train)?,
            Body::DeepFm(mlp) => {
                let fm = fm::fm_interaction(emb)?;
                Tensor::cat(&[mlp.forward(&flat()?, train)?, fm], 1)?
            }
            Body::Dcn(cross, mlp) => {
                let x0 = flat()?;
                with_mlp(cross.forward(&x0)?, mlp, &x0)?
            }
            Body::DcnV2(cross, mlp) => {
                let x0 = flat()?;
                with_mlp(cross.forward(&x0)?, mlp, &x0)?
            }
            Body::AutoInt(att, mlp) => {
                let a = att.forward(emb)?;
                let a = a.reshape((b, a.dim(1)? * a.dim(2)?))?;
                with_mlp(a, mlp, &flat()?)?
            }
            Body::XDeepFm(cin, mlp) => with_mlp(cin.forward(emb)?, mlp, &flat()?)?,
            Body::FiBiNet {
                senet,
                bi_e,
                bi_v,
                mlp,
            } => {
                let v = senet.forward(emb)?;
                let p = Tensor::cat(&[bi_e.forward(emb)?, bi_v.forward(&v)?], 1)?;
                let p = p.reshape((b, p.dim(1)? * p.dim(2)?))?;
                mlp.forward(&p, train)?
            }
        };
        Ok(Some(h))
    }

    /// `fc_out(h)` as (B,) logits; an error for `lr`/`fm`.
    pub fn logit_from_hidden(&self, h: &Tensor) -> Result<Tensor> {
        match &self.fc_out {
            Some(fc) => Ok(fc.forward(h)?.squeeze(1)?),
            None => bail!("{} has no hidden representation", self.name),
        }
    }

    /// (B,) logits for inference: no dropout and, for the backbones the
    /// whole-network kernel covers, no autograd graph (detached weights).
    pub fn predict_logits(&self, batch: &Batch) -> Result<Tensor> {
        if self.body_shape.is_none() {
            return Ok(self.forward(batch, false)?.logit);
        }
        let h = match self.hidden_impl(batch, false, true)? {
            Some(h) => h,
            None => bail!("{} produced no hidden representation", self.name),
        };
        match &self.fc_out {
            Some(fc) => Ok(linear(&h, &fc.weight().detach(), &fc.bias().detach())?.squeeze(1)?),
            None => bail!("{} has no hidden representation", self.name),
        }
    }

    pub fn forward(&self, batch: &Batch, train: bool) -> Result<CtrOutput> {
        match &self.body {
            Body::Lr(first) => Ok(CtrOutput {
                logit: first.forward(batch)?,
                hidden: None,
            }),
            Body::Fm(first) => {
                let emb = match &self.embedding {
                    Some(e) => e.forward(batch)?,
                    None => bail!("fm without embedding"),
                };
                let logit = (first.forward(batch)? + fm::fm_pairwise(&emb)?)?;
                Ok(CtrOutput {
                    logit,
                    hidden: None,
                })
            }
            _ => {
                let h = match self.hidden(batch, train)? {
                    Some(h) => h,
                    None => bail!("{} produced no hidden representation", self.name),
                };
                let logit = self.logit_from_hidden(&h)?;
                Ok(CtrOutput {
                    logit,
                    hidden: Some(h),
                })
            }
        }
    }
}
