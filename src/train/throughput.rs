//! Images per second of the regularised classifier's training step (docs/method.md section 7) and of inference,
//! on random data and any device: what `neureg speed` prints and `benches/classifier.rs`
//! compares with PyTorch.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use serde::Serialize;

use crate::error::Result;
use crate::nn::kernels::batch_norm::BnMode;
use crate::nn::models::resnet::{Depth, ResNet, ResNetConfig};
use crate::nn::optim::sgd::Sgd;
use crate::nn::seeded_init::seeded_var_builder;
use crate::train::similarity_loss::{atanh_clamped, similarity_loss};

/// Rates in images per second.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Throughput {
    /// Channel multiplier of the ResNet18.
    pub width: f64,
    /// Images per batch.
    pub batch: usize,
    /// SGD steps on 1 x 32 x 32 images, cross-entropy only.
    pub train: f64,
    /// The same with the similarity loss: a second batch of 36 x 64 scan-sized images through
    /// the taps (Eq. 8-10), strength 20.
    pub train_regularised: f64,
    /// Evaluation-mode forward passes.
    pub inference: f64,
}

/// Times `steps` steps of each kind (after one untimed warm-up step) of a seeded ResNet18 of
/// `width` at batch `batch` on `device`, waiting for the device before each clock reading.
pub fn measure(device: &Device, width: f64, batch: usize, steps: usize) -> Result<Throughput> {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, 0, device);
    let config = ResNetConfig {
        depth: Depth::Resnet18,
        width,
        classes: 10,
        taps: Depth::Resnet18.default_taps(),
        blur: None,
    };
    let net = ResNet::new(&config, vb.clone())?;
    let theta = vb.get_with_hints(config.taps.len(), "theta", candle_nn::Init::Const(0.0))?;
    let mut sgd = Sgd::new(crate::nn::named_vars(&varmap), 0.01, 0.9, 5e-4, vec![]);
    let x = Tensor::randn(0f32, 1., (batch, 1, 32, 32), device)?;
    let y = Tensor::zeros(batch, DType::U32, device)?;
    let sx = Tensor::randn(0f32, 1., (batch, 1, 36, 64), device)?;
    let t = atanh_clamped(&((Tensor::rand(0f32, 1., (batch, batch), device)? * 1.8)? - 0.9)?)?;
    let mut step = |regularised: bool| -> Result<()> {
        let logits = net.logits(&x, BnMode::Train)?;
        let mut loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        if regularised {
            let taps = net.taps(&sx, BnMode::BatchOnly)?;
            loss = (loss + (similarity_loss(&taps, &theta, &t)?.loss * 20.0)?)?;
        }
        sgd.apply(&loss.backward()?)
    };
    let rate = |run: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        run()?;
        device.synchronize()?;
        let start = Instant::now();
        for _ in 0..steps {
            run()?;
        }
        device.synchronize()?;
        Ok((steps * batch) as f64 / start.elapsed().as_secs_f64())
    };
    let train = rate(&mut || step(false))?;
    let train_regularised = rate(&mut || step(true))?;
    let inference = rate(&mut || net.logits(&x, BnMode::Eval).map(drop))?;
    Ok(Throughput {
        width,
        batch,
        train,
        train_regularised,
        inference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_positive_and_finite() -> Result<()> {
        let r = measure(&Device::Cpu, 0.0625, 4, 1)?;
        for v in [r.train, r.train_regularised, r.inference] {
            assert!(v.is_finite() && v > 0.0, "{r:?}");
        }
        Ok(())
    }
}
