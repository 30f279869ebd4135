//! Decoupled direction and norm (Rony et al. 2019), L2, with foolbox's
//! defaults (100 steps, initial norm 1, norm factor 0.05): a step of
//! cosine-annealed size along the normalised cross-entropy gradient, then the
//! perturbation rescaled to a norm that shrinks by 5% while the point is
//! adversarial and grows by 5% while it is not. The smallest adversarial met
//! is returned.

use candle_core::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::Result;
use crate::eval::attacks::lp::{l2_normalised, worst_norm};
use crate::eval::attacks::{logits_and_gradient, norms, per_sample, Model, Norm, Smallest};

/// DDN settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DdnConfig {
    /// Iterations.
    pub steps: usize,
    /// The norm of the first projection.
    pub init_epsilon: f32,
    /// Relative change of the norm per step.
    pub gamma: f32,
    /// Seed of the random directions that replace vanishing gradients.
    pub seed: u64,
}

impl DdnConfig {
    /// foolbox's defaults.
    pub fn foolbox() -> Self {
        DdnConfig {
            steps: 100,
            init_epsilon: 1.0,
            gamma: 0.05,
            seed: 0,
        }
    }
}

/// The step size at iteration `i` of `steps`: cosine annealing from `max` to `min`.
pub fn cosine_annealed(max: f32, min: f32, i: usize, steps: usize) -> f32 {
    let phase = std::f32::consts::PI * i as f32 / steps.max(1) as f32;
    min + (max - min) * (1.0 + phase.cos()) / 2.0
}

/// Runs DDN on a batch; returns the smallest adversarial found per sample (the image itself
/// where none was).
pub fn ddn(
    model: &dyn Model,
    images: &Tensor,
    labels: &Tensor,
    config: &DdnConfig,
) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let label_list = labels.to_vec1::<u32>()?;
    let b = label_list.len();
    let worst = worst_norm(images, Norm::L2)?;
    let mut best = Smallest::new(images, worst.clone())?;
    let mut delta = images.zeros_like()?;
    let mut epsilon = vec![config.init_epsilon; b];
    let objective = |logits: &Tensor| Ok(candle_nn::loss::cross_entropy(logits, labels)?);
    for i in 0..config.steps {
        let stepsize = cosine_annealed(1.0, 0.01, i, config.steps);
        let x_adv = (images + &delta)?;
        let (logits, g) = logits_and_gradient(model, &x_adv, &objective)?;
        let predicted = logits.argmax(1)?.to_vec1::<u32>()?;
        let adversarial: Vec<bool> = predicted
            .iter()
            .zip(&label_list)
            .map(|(p, y)| p != y)
            .collect();
        best.offer(&delta, &norms(&delta, Norm::L2)?, &adversarial)?;
        let direction = l2_normalised(&random_where_zero(&g, &mut rng)?)?;
        delta = (delta + (direction * stepsize as f64)?)?;
        for k in 0..b {
            let factor = if adversarial[k] {
                1.0 - config.gamma
            } else {
                1.0 + config.gamma
            };
            epsilon[k] = (epsilon[k] * factor).min(worst[k]);
        }
        // Onto the sphere of radius epsilon, then into the box.
        let length = norms(&delta, Norm::L2)?;
        let scale: Vec<f32> = epsilon
            .iter()
            .zip(&length)
            .map(|(e, l)| e / l.max(1e-12))
            .collect();
        delta = delta.broadcast_mul(&per_sample(&scale, images)?)?;
        delta = ((images + delta)?.clamp(0f32, 1f32)? - images)?;
    }
    Ok((images + best.delta)?)
}

/// `g` with rows of zeros (a saturated softmax) replaced by Gaussian noise, as foolbox does, so
/// that the attack keeps moving.
fn random_where_zero(g: &Tensor, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let length = norms(g, Norm::L2)?;
    if length.iter().all(|&l| l > 0.0) {
        return Ok(g.clone());
    }
    let mut rows = g.flatten_from(1)?.to_vec2::<f32>()?;
    for (row, _) in rows.iter_mut().zip(&length).filter(|(_, &l)| l == 0.0) {
        row.iter_mut().for_each(|v| *v = StandardNormal.sample(rng));
    }
    Ok(Tensor::from_vec(rows.concat(), g.shape(), g.device())?)
}
