//! The Brendel & Bethge attack (2019) in L2 and Linf, with foolbox's defaults
//! (1000 steps, trust region 0.001 x pixels halved 20 times, momentum 0.8 on
//! the boundary normal, overshoot 1.1): from an adversarial starting point
//! moved onto the boundary by bisection, follow the boundary towards the
//! original, each step the best move within a trust region under the
//! linearised margin (`trust_region::step`). Starting points: uniform noise
//! blended into the image (foolbox's default), else PGD at the largest
//! epsilon; a sample neither breaks stays unbroken.

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::eval::attacks::pgd::{pgd, PgdConfig};
use crate::eval::attacks::trust_region::step;
use crate::eval::attacks::{margin_gradient, misclassified, norms, select, Model, Norm};

/// Brendel & Bethge settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BrendelBethgeConfig {
    /// L2 or Linf.
    pub norm: Norm,
    /// Steps along the boundary.
    pub steps: usize,
    /// Trust region per pixel (times the number of pixels: the L2 radius).
    pub lr: f32,
    /// Factor of each trust-region decay.
    pub lr_decay: f32,
    /// Number of decays over the steps.
    pub lr_num_decay: usize,
    /// Weight of the previous boundary normal.
    pub momentum: f32,
    /// How far past the linearised boundary a step aims (1.1: 10%).
    pub overshoot: f32,
    /// Bisection steps moving the starting points onto the boundary.
    pub binary_search_steps: usize,
    /// Seed of the noise starting points.
    pub seed: u64,
}

impl BrendelBethgeConfig {
    /// foolbox's defaults for `norm`.
    pub fn foolbox(norm: Norm) -> Self {
        BrendelBethgeConfig {
            norm,
            steps: 1000,
            lr: 1e-3,
            lr_decay: 0.5,
            lr_num_decay: 20,
            momentum: 0.8,
            overshoot: 1.1,
            binary_search_steps: 10,
            seed: 0,
        }
    }
}

/// Adversarial starting points: up to ten uniform noise images per sample, else PGD at the
/// largest epsilon. Returns the points and which samples have one.
fn starting_points(
    model: &dyn Model,
    images: &Tensor,
    labels: &[u32],
    config: &BrendelBethgeConfig,
) -> Result<(Tensor, Vec<bool>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut start = images.clone();
    let mut found = vec![false; labels.len()];
    // Takes the candidates the model misclassifies for samples without a start yet.
    let adopt = |candidates: &Tensor, start: &mut Tensor, found: &mut Vec<bool>| -> Result<()> {
        let fooled = misclassified(model, candidates, labels)?;
        let take: Vec<bool> = (0..found.len()).map(|i| fooled[i] && !found[i]).collect();
        *start = select(&take, candidates, start)?;
        found.iter_mut().zip(&take).for_each(|(f, t)| *f |= t);
        Ok(())
    };
    for _ in 0..10 {
        if found.iter().all(|&f| f) {
            break;
        }
        let noise: Vec<f32> = (0..images.elem_count()).map(|_| rng.random()).collect();
        let noise = Tensor::from_vec(noise, images.shape(), images.device())?;
        adopt(&noise, &mut start, &mut found)?;
    }
    if !found.iter().all(|&f| f) {
        let y = Tensor::new(labels, images.device())?;
        let pixels = images.elem_count() / labels.len().max(1);
        let eps = match config.norm {
            Norm::Linf => 1.0,
            _ => (pixels as f32).sqrt(),
        };
        let pgd_config = PgdConfig::foolbox(config.norm);
        let adv = pgd(model, images, &y, &vec![eps; labels.len()], &pgd_config)?;
        adopt(&adv, &mut start, &mut found)?;
    }
    Ok((start, found))
}

/// The point a fraction `t` (B) of the way from `x0` to `x1`: blended for L2; for Linf the
/// perturbation clipped at `t` (foolbox's choice, closer in Linf).
fn mid_points(x0: &Tensor, x1: &Tensor, t: &[f32], norm: Norm) -> Result<Tensor> {
    let t = Tensor::from_vec(t.to_vec(), (t.len(), 1, 1, 1), x0.device())?;
    let delta = (x1 - x0)?;
    Ok(match norm {
        Norm::Linf => (x0 + delta.broadcast_minimum(&t)?.broadcast_maximum(&t.neg()?)?)?,
        _ => (x0 + delta.broadcast_mul(&t)?)?,
    })
}

/// Runs the attack on a batch; returns the smallest adversarial found per sample (the image
/// itself where none was).
pub fn brendel_bethge(
    model: &dyn Model,
    images: &Tensor,
    labels: &[u32],
    config: &BrendelBethgeConfig,
) -> Result<Tensor> {
    if !matches!(config.norm, Norm::L2 | Norm::Linf) {
        return Err(Error::Config(format!(
            "the Brendel & Bethge attack is built here for L2 and Linf, not {:?}",
            config.norm
        )));
    }
    let b = labels.len();
    let (start, found) = starting_points(model, images, labels, config)?;
    // Onto the boundary: bisection along the way from the image to the start.
    let (mut lower, mut upper) = (vec![0f32; b], vec![1f32; b]);
    for _ in 0..config.binary_search_steps {
        let mid: Vec<f32> = lower
            .iter()
            .zip(&upper)
            .map(|(l, u)| 0.5 * (l + u))
            .collect();
        let fooled = misclassified(
            model,
            &mid_points(images, &start, &mid, config.norm)?,
            labels,
        )?;
        for i in 0..b {
            if fooled[i] {
                upper[i] = mid[i];
            } else {
                lower[i] = mid[i];
            }
        }
    }
    let mut x = mid_points(images, &start, &upper, config.norm)?;
    let mut best = select(&found, &x, images)?;
    let mut best_norm: Vec<f32> = norms(&(&best - images)?, config.norm)?
        .into_iter()
        .zip(&found)
        .map(|(n, &f)| if f { n } else { f32::INFINITY })
        .collect();
    let x0 = to_rows(images)?;
    let pixels = x0.first().map_or(0, Vec::len);
    let mut lr = vec![config.lr as f64; b];
    let decay_every = (config.steps / config.lr_num_decay.max(1)).max(1);
    let mut normal: Option<Vec<Vec<f64>>> = None;
    for k in 1..=config.steps {
        let (margins, g) = margin_gradient(model, &x, labels)?;
        let size = norms(&(&x - images)?, config.norm)?;
        let take: Vec<bool> = (0..b)
            .map(|i| found[i] && margins[i] < 0.0 && size[i] < best_norm[i])
            .collect();
        if take.iter().any(|&t| t) {
            best = select(&take, &x, &best)?;
            for i in (0..b).filter(|&i| take[i]) {
                best_norm[i] = size[i];
            }
        }
        // A denoised estimate of the boundary normal: momentum over its history.
        let g = to_rows(&g)?;
        let m = config.momentum as f64;
        normal = Some(match normal {
            None => g,
            Some(prev) => prev
                .iter()
                .zip(&g)
                .map(|(p, g)| {
                    p.iter()
                        .zip(g)
                        .map(|(p, g)| m * p + (1.0 - m) * g)
                        .collect()
                })
                .collect(),
        });
        if (k + 1) % decay_every == 0 {
            lr.iter_mut().for_each(|l| *l *= config.lr_decay as f64);
        }
        let rows = to_rows(&x)?;
        let normals = normal.as_ref().map_or(&[][..], |n| n.as_slice());
        let o = config.overshoot as f64;
        let deltas: Vec<Vec<f64>> = (0..b)
            .into_par_iter()
            .map(|i| {
                if !found[i] {
                    return vec![0.0; pixels];
                }
                // Aim slightly past the linearised boundary from outside, slightly short of
                // it from inside, so as to stay adversarial.
                let diff = margins[i] as f64;
                let c = if diff > 0.0 {
                    -o * diff
                } else {
                    -(2.0 - o) * diff
                };
                let r = lr[i] * pixels as f64;
                step(config.norm, &x0[i], &rows[i], &normals[i], c, r)
            })
            .collect();
        let moved: Vec<f32> = rows
            .iter()
            .zip(&deltas)
            .flat_map(|(x, d)| x.iter().zip(d).map(|(x, d)| (x + d).clamp(0.0, 1.0) as f32))
            .collect();
        x = Tensor::from_vec(moved, images.shape(), images.device())?;
    }
    Ok(best)
}

/// The rows of a (B, ...) tensor in f64.
fn to_rows(t: &Tensor) -> Result<Vec<Vec<f64>>> {
    Ok(t.flatten_from(1)?
        .to_vec2::<f32>()?
        .into_iter()
        .map(|r| r.into_iter().map(f64::from).collect())
        .collect())
}
