//! The factorised readout option (SPEC 6): per neuron a spatial mask over the
//! feature map times a feature vector, plus a bias.

use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use crate::error::Result;

/// Learned masks (N, H*W), feature weights (C, N) and biases (N).
pub struct FactorizedReadout {
    /// (N, H*W) spatial masks.
    pub masks: Tensor,
    /// (C, N) feature weights.
    pub features: Tensor,
    /// (N) biases.
    pub bias: Tensor,
}

impl FactorizedReadout {
    /// Small random masks and feature weights, zero biases.
    pub fn new(
        neurons: usize,
        channels: usize,
        (h, w): (usize, usize),
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(FactorizedReadout {
            masks: vb.get_with_hints(
                (neurons, h * w),
                "readout.masks",
                Init::Uniform {
                    lo: 0.0,
                    up: 1.0 / (h * w) as f64,
                },
            )?,
            features: vb.get_with_hints(
                (channels, neurons),
                "readout.features",
                Init::Uniform {
                    lo: 0.0,
                    up: 1.0 / channels as f64,
                },
            )?,
            bias: vb.get_with_hints(neurons, "readout.bias", Init::Const(0.0))?,
        })
    }

    /// (B, N) linear responses to `features` (B, C, H, W).
    pub fn forward(&self, features: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = features.dims4()?;
        let flat = features.reshape((b * c, h * w))?;
        let pooled = flat.matmul(&self.masks.t()?)?.reshape((b, c, ()))?; // (B, C, N)
        let out = pooled.broadcast_mul(&self.features.unsqueeze(0)?)?.sum(1)?;
        Ok(out.broadcast_add(&self.bias.unsqueeze(0)?)?)
    }
}
