//! What both readouts share: a feature vector and a bias per neuron, applied
//! to the features each readout pooled for each neuron.

use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use crate::error::Result;

/// (C, N) feature weights and (N) biases.
pub struct ReadoutWeights {
    /// (C, N) feature weights.
    pub features: Tensor,
    /// (N) biases.
    pub bias: Tensor,
}

impl ReadoutWeights {
    /// Small positive feature weights, zero biases.
    pub fn new(neurons: usize, channels: usize, vb: &VarBuilder) -> Result<Self> {
        let init = Init::Uniform {
            lo: 0.0,
            up: 1.0 / channels as f64,
        };
        Ok(ReadoutWeights {
            features: vb.get_with_hints((channels, neurons), "readout.features", init)?,
            bias: vb.get_with_hints(neurons, "readout.bias", Init::Const(0.0))?,
        })
    }

    /// (B, N) responses from `pooled` (B, C, N) features.
    pub fn apply(&self, pooled: &Tensor) -> Result<Tensor> {
        let out = pooled.broadcast_mul(&self.features.unsqueeze(0)?)?.sum(1)?;
        Ok(out.broadcast_add(&self.bias.unsqueeze(0)?)?)
    }
}
