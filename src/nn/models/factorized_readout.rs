//! The factorised readout option (docs/method.md section 6): per neuron a spatial mask over the
//! feature map times a feature vector, plus a bias.

use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use crate::error::Result;
use crate::nn::models::readout_weights::ReadoutWeights;

/// Learned masks (N, H*W), feature weights and biases.
pub struct FactorizedReadout {
    /// (N, H*W) spatial masks.
    pub masks: Tensor,
    /// Feature weights and biases.
    pub weights: ReadoutWeights,
}

impl FactorizedReadout {
    /// Small random masks and feature weights, zero biases.
    pub fn new(
        neurons: usize,
        channels: usize,
        (h, w): (usize, usize),
        vb: VarBuilder,
    ) -> Result<Self> {
        let init = Init::Uniform {
            lo: 0.0,
            up: 1.0 / (h * w) as f64,
        };
        Ok(FactorizedReadout {
            masks: vb.get_with_hints((neurons, h * w), "readout.masks", init)?,
            weights: ReadoutWeights::new(neurons, channels, &vb)?,
        })
    }

    /// (B, N) linear responses to `features` (B, C, H, W).
    pub fn forward(&self, features: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = features.dims4()?;
        let flat = features.reshape((b * c, h * w))?;
        let pooled = flat.matmul(&self.masks.t()?)?.reshape((b, c, ()))?; // (B, C, N)
        self.weights.apply(&pooled)
    }
}
