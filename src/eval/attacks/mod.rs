//! Minimal adversarial perturbations (SPEC 8, the paper's Fig. 5): untargeted
//! attacks on [0, 1] images, batched, on the model's device, one file per
//! attack. Whatever an attack reports, the distance and the success of each
//! adversarial are measured again here from the images and the model.

pub mod deepfool;
pub mod fgsm;
pub mod pgd;

use candle_core::{Tensor, Var, D};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::train::classifier::Classifier;

/// The norm a perturbation is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// Number of changed pixels.
    L0,
    /// Sum of absolute changes.
    L1,
    /// Euclidean length.
    L2,
    /// Largest absolute change.
    Linf,
}

/// Anything that maps (B, 1, H, W) images on [0, 1] to class scores, differentiably.
pub trait Model {
    /// Class scores (B, classes).
    fn logits(&self, images: &Tensor) -> Result<Tensor>;
}

impl Model for Classifier {
    fn logits(&self, images: &Tensor) -> Result<Tensor> {
        Classifier::logits(self, images)
    }
}

/// The norm of each row of `delta` (B, ...).
pub fn norms(delta: &Tensor, norm: Norm) -> Result<Vec<f32>> {
    let d = delta.flatten_from(1)?;
    let v = match norm {
        Norm::L0 => d
            .abs()?
            .gt(1e-7)?
            .to_dtype(candle_core::DType::F32)?
            .sum(1)?,
        Norm::L1 => d.abs()?.sum(1)?,
        Norm::L2 => d.sqr()?.sum(1)?.sqrt()?,
        Norm::Linf => d.abs()?.max(1)?,
    };
    Ok(v.to_vec1::<f32>()?)
}

/// The gradient of the summed cross-entropy with respect to the images.
pub fn input_gradient(model: &dyn Model, images: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let x = Var::from_tensor(&images.detach())?;
    let logits = model.logits(x.as_tensor())?;
    let loss = (candle_nn::loss::cross_entropy(&logits, labels)? * images.dim(0)? as f64)?;
    let grads = loss.backward()?;
    Ok(grads
        .get(x.as_tensor())
        .cloned()
        .unwrap_or(images.zeros_like()?))
}

/// The class the model gives each image.
pub fn predicted(model: &dyn Model, images: &Tensor) -> Result<Vec<u32>> {
    Ok(model.logits(images)?.argmax(D::Minus1)?.to_vec1::<u32>()?)
}

/// Whether the model misclassifies each image.
pub fn misclassified(model: &dyn Model, images: &Tensor, labels: &[u32]) -> Result<Vec<bool>> {
    let p = predicted(model, images)?;
    Ok(p.iter().zip(labels).map(|(p, l)| p != l).collect())
}

/// The verified result of an attack on a batch.
#[derive(Debug, Clone)]
pub struct Found {
    /// The adversarial images (B, 1, H, W) (the originals where none was found).
    pub adversarial: Tensor,
    /// Measured distance of each adversarial from its original; infinite where the model still
    /// classifies it correctly; 0 where the original is already misclassified.
    pub distance: Vec<f32>,
    /// The class the model gives each adversarial.
    pub predicted: Vec<u32>,
}

/// Checks candidates against the model and measures them: the distance of each sample is its
/// measured norm if the model misclassifies it, infinity if not, 0 if the original already is.
pub fn verify(
    model: &dyn Model,
    originals: &Tensor,
    candidates: &Tensor,
    labels: &[u32],
    norm: Norm,
) -> Result<Found> {
    let already = misclassified(model, originals, labels)?;
    let classes = predicted(model, candidates)?;
    let fooled: Vec<bool> = classes.iter().zip(labels).map(|(p, l)| p != l).collect();
    let measured = norms(&(candidates - originals)?, norm)?;
    let distance = (0..labels.len())
        .map(|i| {
            if already[i] {
                0.0
            } else if fooled[i] {
                measured[i]
            } else {
                f32::INFINITY
            }
        })
        .collect();
    Ok(Found {
        adversarial: candidates.clone(),
        distance,
        predicted: classes,
    })
}

/// The best verified candidate of each sample: the smallest distance among those the model
/// misclassifies.
pub fn verify_best(
    model: &dyn Model,
    originals: &Tensor,
    candidates: &[Tensor],
    labels: &[u32],
    norm: Norm,
) -> Result<Found> {
    let mut best: Option<Found> = None;
    for c in candidates {
        let found = verify(model, originals, c, labels, norm)?;
        best = Some(match best {
            None => found,
            Some(b) => keep_smaller(b, found, originals)?,
        });
    }
    best.ok_or_else(|| crate::error::Error::Config("an attack returned no candidate".into()))
}

/// Per sample, the smaller of two verified results.
fn keep_smaller(a: Found, b: Found, like: &Tensor) -> Result<Found> {
    let take: Vec<f32> = a
        .distance
        .iter()
        .zip(&b.distance)
        .map(|(x, y)| if y < x { 1.0 } else { 0.0 })
        .collect();
    if take.iter().all(|&t| t == 0.0) {
        return Ok(a);
    }
    let distance = a
        .distance
        .iter()
        .zip(&b.distance)
        .map(|(x, y)| x.min(*y))
        .collect();
    let predicted = (0..take.len())
        .map(|i| {
            if take[i] > 0.0 {
                b.predicted[i]
            } else {
                a.predicted[i]
            }
        })
        .collect();
    let mask = Tensor::from_vec(take, (a.distance.len(), 1, 1, 1), like.device())?;
    let adversarial = mask
        .broadcast_mul(&b.adversarial)?
        .add(&(1.0 - &mask)?.broadcast_mul(&a.adversarial)?)?;
    Ok(Found {
        adversarial,
        distance,
        predicted,
    })
}

/// Per-sample bisection for the smallest epsilon at which an attack succeeds, keeping the
/// smallest verified adversarial of each sample. `attack` gets one epsilon per sample (B) and
/// returns one or more candidate batches (e.g. several starts).
pub fn epsilon_search(
    model: &dyn Model,
    images: &Tensor,
    labels: &[u32],
    norm: Norm,
    max_epsilon: f32,
    rounds: usize,
    attack: &mut dyn FnMut(&[f32]) -> Result<Vec<Tensor>>,
) -> Result<Found> {
    let b = labels.len();
    let mut best = verify_best(model, images, &attack(&vec![max_epsilon; b])?, labels, norm)?;
    let (mut lo, mut hi) = (vec![0f32; b], vec![max_epsilon; b]);
    for _ in 0..rounds {
        let mid: Vec<f32> = lo.iter().zip(&hi).map(|(l, h)| 0.5 * (l + h)).collect();
        let found = verify_best(model, images, &attack(&mid)?, labels, norm)?;
        for i in 0..b {
            if found.distance[i].is_finite() {
                hi[i] = mid[i];
            } else {
                lo[i] = mid[i];
            }
        }
        best = keep_smaller(best, found, images)?;
    }
    Ok(best)
}

/// A per-sample epsilon as a (B, 1, 1, 1) tensor on the images' device.
pub fn per_sample(eps: &[f32], like: &Tensor) -> Result<Tensor> {
    Ok(Tensor::from_vec(
        eps.to_vec(),
        (eps.len(), 1, 1, 1),
        like.device(),
    )?)
}
