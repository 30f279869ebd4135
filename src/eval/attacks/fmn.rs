//! Fast minimum-norm attack (Pintor et al. 2021) in L0, L1, L2 and Linf, with
//! foolbox's defaults (100 steps, step size cosine-annealed from 1 to 0.01,
//! norm factor gamma annealed from 0.05 to 0.001), started at the image: a step
//! along the L2-normalised gradient of the logit margin, then a projection onto
//! the ball of an adaptive radius epsilon. Before the first adversarial,
//! epsilon is the current norm plus the linearised distance to the boundary;
//! after it, epsilon shrinks by gamma while the point is adversarial and grows
//! while it is not. The smallest adversarial met is returned.
//!
//! Two deviations: foolbox's L2 projection computes `min(1, norms / norms)` and
//! so never projects; here the L2 ball is projected onto as the paper says.
//! And the radius before the first adversarial is the linearised one grown by
//! gamma: without that, where the model is linear, the projection lands
//! exactly on the boundary, not across it, and stays there (seen on the
//! linear test model in L2).

use candle_core::Tensor;

use crate::error::Result;
use crate::eval::attacks::ddn::cosine_annealed;
use crate::eval::attacks::lp::{l2_normalised, project, worst_norm};
use crate::eval::attacks::{margin_gradient, norms, Model, Norm, Smallest};

/// FMN settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FmnConfig {
    /// The norm minimised.
    pub norm: Norm,
    /// Iterations.
    pub steps: usize,
    /// First step size (L2 length of the step).
    pub max_stepsize: f32,
    /// Last step size.
    pub min_stepsize: f32,
    /// First relative change of epsilon.
    pub gamma: f32,
}

impl FmnConfig {
    /// foolbox's defaults for `norm`.
    pub fn foolbox(norm: Norm) -> Self {
        FmnConfig {
            norm,
            steps: 100,
            max_stepsize: 1.0,
            min_stepsize: 0.01,
            gamma: 0.05,
        }
    }
}

/// The dual exponent's norm of each row: what a linear function's change per unit of `norm`
/// is measured in.
fn dual_norms(g: &Tensor, norm: Norm) -> Result<Vec<f32>> {
    norms(
        g,
        match norm {
            Norm::L1 => Norm::Linf,
            Norm::Linf => Norm::L1,
            _ => Norm::L2,
        },
    )
}

/// Runs FMN on a batch; returns the smallest adversarial found per sample (the image itself
/// where none was).
pub fn fmn(
    model: &dyn Model,
    images: &Tensor,
    labels: &[u32],
    config: &FmnConfig,
) -> Result<Tensor> {
    let b = labels.len();
    let worst = worst_norm(images, config.norm)?;
    let mut best = Smallest::new(images, worst.clone())?;
    let mut delta = images.zeros_like()?;
    let mut found = vec![false; b];
    let mut epsilon = if config.norm == Norm::L0 {
        vec![1.0; b]
    } else {
        vec![f32::INFINITY; b]
    };
    for i in 0..config.steps {
        let stepsize = cosine_annealed(config.max_stepsize, config.min_stepsize, i, config.steps);
        let gamma = cosine_annealed(config.gamma, 0.001, i, config.steps);
        let (margins, g) = margin_gradient(model, &(images + &delta)?, labels)?;
        let adversarial: Vec<bool> = margins.iter().map(|&m| m < 0.0).collect();
        let size = norms(&delta, config.norm)?;
        best.offer(&delta, &size, &adversarial)?;
        let dual = dual_norms(&g, config.norm)?;
        for k in 0..b {
            found[k] |= adversarial[k];
            epsilon[k] = if config.norm == Norm::L0 {
                // Whole pixels: at least one more or one fewer.
                let e = epsilon[k];
                if adversarial[k] {
                    (e - 1.0).min((e * (1.0 - gamma)).floor()).min(best.norm[k])
                } else {
                    (e + 1.0).max((e * (1.0 + gamma)).floor())
                }
                .max(1.0)
            } else if adversarial[k] {
                (epsilon[k] * (1.0 - gamma)).min(best.norm[k])
            } else if found[k] {
                epsilon[k] * (1.0 + gamma)
            } else {
                (size[k] + margins[k].abs() / dual[k].max(1e-12)) * (1.0 + gamma)
            }
            .min(worst[k]);
        }
        // Descend the margin: the step is minus its normalised gradient.
        let step = (l2_normalised(&g)? * -(stepsize as f64))?;
        delta = project(&(delta + step)?, &epsilon, config.norm)?;
        delta = ((images + delta)?.clamp(0f32, 1f32)? - images)?;
    }
    Ok((images + best.delta)?)
}
