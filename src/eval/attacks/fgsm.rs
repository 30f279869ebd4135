//! The fast gradient sign method (Goodfellow et al. 2015), Linf: one step of
//! size epsilon along the sign of the loss gradient.

use candle_core::Tensor;

use crate::error::Result;
use crate::eval::attacks::{input_gradient, per_sample, Model};

/// FGSM with one epsilon per sample: `clip(x + eps * sign(grad), 0, 1)`.
pub fn fgsm(model: &dyn Model, images: &Tensor, labels: &Tensor, eps: &[f32]) -> Result<Tensor> {
    let g = input_gradient(model, images, labels)?;
    let step = g.sign()?.broadcast_mul(&per_sample(eps, images)?)?;
    Ok((images + step)?.clamp(0f32, 1f32)?)
}
