//! The CTR objective: binary cross-entropy with logits over a [`CtrModel`].

use anyhow::Result;
use candle_core::Tensor;

use crate::data::Batch;
use crate::model::ctr::CtrModel;
use crate::model::losses::bce_with_logits;
use crate::train::trainer::{StageModel, StepCtx};

impl StageModel for CtrModel {
    fn loss(&self, batch: &Batch, train: bool, _ctx: &StepCtx) -> Result<Tensor> {
        let out = self.forward(batch, train)?;
        Ok(bce_with_logits(&out.logit, &batch.labels)?)
    }

    fn predict_logits(&self, batch: &Batch) -> Result<Tensor> {
        CtrModel::predict_logits(self, batch)
    }
}
