//! Minimal adversarial perturbations (docs/method.md section 8, the paper's Fig. 5): untargeted
//! attacks on [0, 1] images, batched, on the model's device, one file per
//! attack. Whatever an attack reports, the distance and the success of each
//! adversarial are measured again here from the images and the model.

pub mod brendel_bethge;
pub mod cw;
pub mod ddn;
pub mod deepfool;
pub mod fgsm;
pub mod fmn;
pub mod lp;
pub mod pgd;
pub mod trust_region;

use candle_core::{Tensor, Var, D};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::runs::classifier::Classifier;

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

/// The logits of `images` and the gradient of the scalar `objective(logits)` with respect to
/// the images.
pub fn logits_and_gradient(
    model: &dyn Model,
    images: &Tensor,
    objective: &dyn Fn(&Tensor) -> Result<Tensor>,
) -> Result<(Tensor, Tensor)> {
    let x = Var::from_tensor(&images.detach())?;
    let logits = model.logits(x.as_tensor())?;
    let grads = objective(&logits)?.backward()?;
    // Detached: attacks accumulate steps, which must not keep each step's graph alive.
    let g = match grads.get(x.as_tensor()) {
        Some(g) => g.detach(),
        None => images.zeros_like()?,
    };
    Ok((logits.detach(), g))
}

/// The gradient of the summed cross-entropy with respect to the images.
pub fn input_gradient(model: &dyn Model, images: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let b = images.dim(0)? as f64;
    let objective = |logits: &Tensor| Ok((candle_nn::loss::cross_entropy(logits, labels)? * b)?);
    Ok(logits_and_gradient(model, images, &objective)?.1)
}

/// Per sample the margin `z_y - max_{k != y} z_k` of the logits (B): negative where the model
/// misclassifies. The runner-up class is chosen on the host from the logits' values.
pub fn margin(logits: &Tensor, labels: &[u32]) -> Result<Tensor> {
    let rows = logits.to_vec2::<f32>()?;
    let others: Vec<u32> = rows
        .iter()
        .zip(labels)
        .map(|(row, &y)| {
            (0..row.len() as u32)
                .filter(|&k| k != y)
                .max_by(|&a, &b| row[a as usize].total_cmp(&row[b as usize]))
                .unwrap_or(y)
        })
        .collect();
    let dev = logits.device();
    let pick = |c: &[u32]| -> Result<Tensor> {
        Ok(logits.gather(&Tensor::new(c, dev)?.unsqueeze(1)?, 1)?)
    };
    Ok((pick(labels)? - pick(&others)?)?.squeeze(1)?)
}

/// The margins of `images` (host) and the gradient of their sum with respect to the images.
pub fn margin_gradient(
    model: &dyn Model,
    images: &Tensor,
    labels: &[u32],
) -> Result<(Vec<f32>, Tensor)> {
    let objective = |logits: &Tensor| Ok(margin(logits, labels)?.sum_all()?);
    let (logits, g) = logits_and_gradient(model, images, &objective)?;
    Ok((margin(&logits, labels)?.to_vec1::<f32>()?, g))
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
            Some(b) => keep_smaller(b, found)?,
        });
    }
    best.ok_or_else(|| crate::error::Error::Config("an attack returned no candidate".into()))
}

/// Per sample, the smaller of two verified results.
fn keep_smaller(a: Found, b: Found) -> Result<Found> {
    let take: Vec<bool> = a
        .distance
        .iter()
        .zip(&b.distance)
        .map(|(x, y)| y < x)
        .collect();
    if !take.iter().any(|&t| t) {
        return Ok(a);
    }
    let pick = |i: usize, x: u32, y: u32| if take[i] { y } else { x };
    Ok(Found {
        adversarial: select(&take, &b.adversarial, &a.adversarial)?,
        distance: a
            .distance
            .iter()
            .zip(&b.distance)
            .map(|(x, y)| x.min(*y))
            .collect(),
        predicted: (0..take.len())
            .map(|i| pick(i, a.predicted[i], b.predicted[i]))
            .collect(),
    })
}

/// Row `i` of `new` where `take[i]`, else row `i` of `old` (B, ...).
pub fn select(take: &[bool], new: &Tensor, old: &Tensor) -> Result<Tensor> {
    let mask: Vec<u8> = take.iter().map(|&t| t as u8).collect();
    let mask = Tensor::from_vec(mask, (take.len(), 1, 1, 1), new.device())?;
    Ok(mask.broadcast_as(new.shape())?.where_cond(new, old)?)
}

/// Per sample the smallest adversarial perturbation an iterative attack has met so far.
pub struct Smallest {
    /// The perturbations (zero where none was adversarial).
    pub delta: Tensor,
    /// Their norms (the largest possible where none was adversarial).
    pub norm: Vec<f32>,
}

impl Smallest {
    /// Nothing found yet: zero perturbations of the images' shape, norms `worst`.
    pub fn new(images: &Tensor, worst: Vec<f32>) -> Result<Self> {
        Ok(Smallest {
            delta: images.zeros_like()?,
            norm: worst,
        })
    }

    /// Keeps each perturbation of `delta` that is adversarial and no larger than the best so far.
    pub fn offer(&mut self, delta: &Tensor, norm: &[f32], adversarial: &[bool]) -> Result<()> {
        let take: Vec<bool> = (0..norm.len())
            .map(|i| adversarial[i] && norm[i] <= self.norm[i])
            .collect();
        if take.iter().any(|&t| t) {
            self.delta = select(&take, delta, &self.delta)?;
            for (i, _) in take.iter().enumerate().filter(|(_, &t)| t) {
                self.norm[i] = norm[i];
            }
        }
        Ok(())
    }
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
        best = keep_smaller(best, found)?;
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
