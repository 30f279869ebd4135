//! DeepFool (Moosavi-Dezfooli et al. 2016) in L2 and Linf, with foolbox's
//! defaults (50 steps, the 10 most likely classes as candidates, overshoot
//! 0.02): linearise the model around the current point, step to the nearest
//! linearised class boundary, repeat until the label changes. On a linear
//! model one step reaches the minimal perturbation (times 1 + overshoot).

use candle_core::{Tensor, Var, D};

use crate::error::{Error, Result};
use crate::eval::attacks::{Model, Norm};

/// DeepFool settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeepFoolConfig {
    /// L2 or Linf.
    pub norm: Norm,
    /// Largest number of linearisation steps.
    pub steps: usize,
    /// Classes considered (the most likely ones, the true one included).
    pub candidates: usize,
    /// Relative overshoot of the final perturbation.
    pub overshoot: f32,
}

impl DeepFoolConfig {
    /// foolbox's defaults for `norm`.
    pub fn foolbox(norm: Norm) -> Self {
        DeepFoolConfig {
            norm,
            steps: 50,
            candidates: 10,
            overshoot: 0.02,
        }
    }
}

/// Runs DeepFool on a batch; returns the perturbed images.
pub fn deepfool(
    model: &dyn Model,
    images: &Tensor,
    labels: &[u32],
    config: &DeepFoolConfig,
) -> Result<Tensor> {
    if !matches!(config.norm, Norm::L2 | Norm::Linf) {
        return Err(Error::Config(format!(
            "DeepFool is defined for L2 and Linf, not {:?}",
            config.norm
        )));
    }
    let b = labels.len();
    let x0 = images.flatten_from(1)?.to_vec2::<f32>()?;
    let d = x0.first().map_or(0, Vec::len);
    // The candidate classes of each sample: the most likely ones at the start, the true one first.
    let logits0 = model.logits(images)?.to_vec2::<f32>()?;
    let classes = logits0.first().map_or(0, Vec::len);
    let candidates: Vec<Vec<u32>> = logits0
        .iter()
        .zip(labels)
        .map(|(row, &y)| {
            let mut order: Vec<u32> = (0..classes as u32).filter(|&k| k != y).collect();
            order.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]));
            order.truncate(config.candidates.saturating_sub(1).max(1));
            order
        })
        .collect();
    let mut p = vec![vec![0f32; d]; b];
    let mut x = images.clone();
    let label_t = Tensor::new(labels, images.device())?.unsqueeze(1)?;
    for _ in 0..config.steps {
        let var = Var::from_tensor(&x.detach())?;
        let logits = model.logits(var.as_tensor())?;
        let predicted = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
        let active: Vec<bool> = predicted.iter().zip(labels).map(|(p, y)| p == y).collect();
        if !active.iter().any(|&a| a) {
            break;
        }
        let true_logit = logits.gather(&label_t, 1)?;
        // Per sample, the nearest linearised boundary among its candidates.
        let mut best: Vec<Option<(f32, f32, Vec<f32>)>> = vec![None; b];
        for j in 0..candidates[0].len() {
            let k: Vec<u32> = candidates.iter().map(|c| c[j.min(c.len() - 1)]).collect();
            let k_t = Tensor::new(k.as_slice(), images.device())?.unsqueeze(1)?;
            let f = (logits.gather(&k_t, 1)? - &true_logit)?;
            let grads = f.sum_all()?.backward()?;
            let w = grads
                .get(var.as_tensor())
                .ok_or_else(|| Error::Config("no gradient reached the images".into()))?
                .flatten_from(1)?
                .to_vec2::<f32>()?;
            let f = f.flatten_all()?.to_vec1::<f32>()?;
            for i in (0..b).filter(|&i| active[i]) {
                let dual = match config.norm {
                    Norm::L2 => w[i].iter().map(|v| v * v).sum::<f32>().sqrt(),
                    _ => w[i].iter().map(|v| v.abs()).sum::<f32>(),
                };
                let distance = f[i].abs() / dual.max(1e-12);
                if best[i].as_ref().is_none_or(|(dist, _, _)| distance < *dist) {
                    best[i] = Some((distance, f[i], w[i].clone()));
                }
            }
        }
        for (i, chosen) in best.into_iter().enumerate() {
            let Some((_, f, w)) = chosen else { continue };
            match config.norm {
                Norm::L2 => {
                    let n2 = w.iter().map(|v| v * v).sum::<f32>().max(1e-12);
                    let s = (f.abs() + 1e-4) / n2;
                    p[i].iter_mut().zip(&w).for_each(|(p, w)| *p += s * w);
                }
                _ => {
                    let n1 = w.iter().map(|v| v.abs()).sum::<f32>().max(1e-12);
                    let s = (f.abs() + 1e-4) / n1;
                    p[i].iter_mut()
                        .zip(&w)
                        .for_each(|(p, w)| *p += s * w.signum());
                }
            }
        }
        let scale = 1.0 + config.overshoot;
        let moved: Vec<f32> = x0
            .iter()
            .zip(&p)
            .flat_map(|(x, p)| {
                x.iter()
                    .zip(p)
                    .map(|(x, p)| (x + scale * p).clamp(0.0, 1.0))
                    .collect::<Vec<_>>()
            })
            .collect();
        x = Tensor::from_vec(moved, images.shape(), images.device())?;
    }
    Ok(x)
}
