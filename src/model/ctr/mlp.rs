//! The ReLU multi-layer perceptron used inside most backbones.

use anyhow::Result;
use candle_core::Tensor;
use candle_nn::VarBuilder;

use crate::model::linear::Linear;

use crate::model::nn::{dropout, linear_xavier};

/// `Linear → ReLU → dropout` per entry of `dims`; variables `{i}.weight`, `{i}.bias`.
#[derive(Debug, Clone)]
pub struct Mlp {
    layers: Vec<Linear>,
    dropout: f64,
    out_dim: usize,
}

impl Mlp {
    pub fn new(in_dim: usize, dims: &[usize], dropout: f64, vb: VarBuilder) -> Result<Self> {
        let mut layers = Vec::with_capacity(dims.len());
        let mut d = in_dim;
        for (i, &o) in dims.iter().enumerate() {
            if o == 0 {
                anyhow::bail!("MLP layer {i} has size 0");
            }
            layers.push(linear_xavier(d, o, vb.pp(i.to_string()))?);
            d = o;
        }
        Ok(Self {
            layers,
            dropout,
            out_dim: d,
        })
    }

    /// Output width (the input width when there are no layers).
    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// Each layer's output width.
    pub fn widths(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.weight().dims()[0]).collect()
    }

    pub fn dropout(&self) -> f64 {
        self.dropout
    }

    /// Weight then bias of every layer, in order.
    pub fn params(&self) -> Vec<&Tensor> {
        self.layers
            .iter()
            .flat_map(|l| [l.weight(), l.bias()])
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &self.layers {
            h = dropout(&l.forward_relu(&h)?, self.dropout, train)?;
        }
        Ok(h)
    }
}
