//! A classifier run's network as the store keeps it: loaded frozen from the run's checkpoint
//! for evaluation, attacks and inspection (beside the stored predictor, `predictor.rs`).

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::nn::checkpoint;
use crate::nn::kernels::batch_norm::BnMode;
use crate::nn::models::resnet::ResNet;
use crate::runs::config::RunConfig;
use crate::runs::run_dir::RunDir;

/// Name of the trained layer-mixing logits theta (Eq. 10) among the variables.
pub const THETA: &str = "similarity.theta";

/// A trained (or training) network with the normalisation of its inputs.
pub struct Classifier {
    /// The network.
    pub net: ResNet,
    /// Pixel mean of the training images.
    pub mean: f32,
    /// Pixel standard deviation of the training images.
    pub std: f32,
}

impl Classifier {
    /// Class scores (B, classes) of (B, 1, H, W) images on [0, 1] (normalised here, as in
    /// training), in evaluation mode.
    pub fn logits(&self, images: &Tensor) -> Result<Tensor> {
        self.net.logits(&self.normalised(images)?, BnMode::Eval)
    }

    /// Images on [0, 1] normalised by the training images' statistics.
    fn normalised(&self, images: &Tensor) -> Result<Tensor> {
        Ok(((images - self.mean as f64)? / self.std as f64)?)
    }

    /// The activations at the network's taps of (B, 1, H, W) images on [0, 1], normalised as
    /// in training, in evaluation mode.
    pub fn taps(&self, images: &Tensor) -> Result<Vec<Tensor>> {
        self.taps_in(images, BnMode::Eval)
    }

    /// [`Classifier::taps`] with batch norm in `mode`.
    pub fn taps_in(&self, images: &Tensor, mode: BnMode) -> Result<Vec<Tensor>> {
        self.net.taps(&self.normalised(images)?, mode)
    }

    /// The predicted class of each image on [0, 1].
    pub fn predict(&self, images: &Tensor) -> Result<Vec<u32>> {
        Ok(self.logits(images)?.argmax(1)?.to_vec1::<u32>()?)
    }
}

/// Loads the network of a run folder from its last checkpoint, frozen: its weights are plain
/// tensors, so gradients flow to the images only (what evaluation and attacks need).
pub fn load_classifier(dir: &Path, device: &Device) -> Result<Classifier> {
    let config = RunConfig::load(dir)?;
    let path = RunDir(dir).checkpoint();
    let tensors = checkpoint::load(&path, device)?;
    let classes = tensors
        .get("fc.bias")
        .ok_or_else(|| {
            Error::file(
                path.display(),
                "checkpoint of another architecture: no fc.bias",
            )
        })?
        .dim(0)?;
    let vb = candle_nn::VarBuilder::from_tensors(tensors.clone(), DType::F32, device);
    let net = ResNet::new(&config.network(classes), vb).map_err(|e| {
        Error::file(
            path.display(),
            format!(
                "checkpoint of another architecture than {}: {e}",
                RunDir(dir).config().display()
            ),
        )
    })?;
    let scalar = |k: &str| -> Result<f32> {
        Ok(tensors
            .get(k)
            .ok_or_else(|| Error::file(path.display(), format!("checkpoint without {k}")))?
            .to_scalar::<f32>()?)
    };
    Ok(Classifier {
        net,
        mean: scalar("data.mean")?,
        std: scalar("data.std")?,
    })
}
