//! A classifier run's network while it trains: built from the run's config (seeded), and its
//! accuracy on a tier. The stored network is `runs::classifier`.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{Init, VarMap};

use crate::error::{Error, Result};
use crate::nn::kernels::batch_norm::BnMode;
use crate::nn::models::resnet::ResNet;
use crate::nn::seeded_init::seeded_var_builder;
use crate::runs::classifier::THETA;
use crate::runs::config::RunConfig;
use crate::train::classifier_data::{image_batch, PreparedSet};
use crate::train::step_scalars::correct_count;

/// Builds the run's network (seeded initial weights) and theta.
pub(crate) fn build(
    config: &RunConfig,
    classes: usize,
    device: &Device,
) -> Result<(ResNet, VarMap, Var)> {
    let varmap = VarMap::new();
    let vb = seeded_var_builder(&varmap, config.seed, device);
    let network = config.network(classes);
    let net = ResNet::new(&network, vb.clone())?;
    vb.get_with_hints(network.taps.len(), THETA, Init::Const(0.0))?;
    let theta = varmap
        .data()
        .lock()
        .map_err(|_| Error::Config("model variables are locked by a failed job".into()))?
        .get(THETA)
        .cloned()
        .ok_or_else(|| Error::Config("theta was not created".into()))?;
    Ok((net, varmap, theta))
}

/// Fraction of the images of `tier` the network classifies correctly (evaluation mode), counted
/// on the device and read once.
pub fn accuracy(
    net: &ResNet,
    set: &PreparedSet,
    tier: &crate::data::LabelledImages,
    device: &Device,
) -> Result<f64> {
    let indices: Vec<usize> = (0..tier.len()).collect();
    let mut correct = Tensor::zeros((), DType::F32, device)?;
    for chunk in indices.chunks(200) {
        let (x, y) = image_batch(set, tier, chunk, None, device)?;
        let logits = net.logits(&x, BnMode::Eval)?;
        correct = (correct + correct_count(&logits, &y)?)?;
    }
    Ok(correct.to_scalar::<f32>()? as f64 / tier.len().max(1) as f64)
}
