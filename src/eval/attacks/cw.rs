//! Carlini & Wagner (2017), L2: in tanh space (images stay in [0, 1]) Adam
//! minimises `||x' - x||^2 + c * max(z_y - max_{k != y} z_k + kappa, 0)`, with
//! a per-sample search over c: times 10 until an adversarial appears, then
//! bisection. foolbox's settings except the step count: 9 searches of 10000
//! Adam steps are hours on a CPU, so neureg's default is 100 steps with early
//! abort (`--steps 10000 --rounds 9` restores foolbox's).

use candle_core::{Tensor, Var};

use crate::error::{Error, Result};
use crate::eval::attacks::{margin, norms, select, Model, Norm};

/// C&W settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CwConfig {
    /// Searches over the constant c.
    pub binary_search_steps: usize,
    /// Adam steps per search.
    pub steps: usize,
    /// Adam's learning rate.
    pub stepsize: f32,
    /// The margin kappa beyond the boundary.
    pub confidence: f32,
    /// The first c.
    pub initial_const: f32,
    /// Stop a search when the loss has not fallen by 0.01% in a tenth of the steps.
    pub abort_early: bool,
}

impl CwConfig {
    /// foolbox's settings with neureg's step count (see the module doc).
    pub fn neureg() -> Self {
        CwConfig {
            binary_search_steps: 9,
            steps: 100,
            stepsize: 0.01,
            confidence: 0.0,
            initial_const: 1e-3,
            abort_early: true,
        }
    }
}

/// `atanh` of the images mapped to (-1, 1) (times 0.999999, as foolbox, so that 0 and 1 stay finite).
fn to_tanh_space(images: &Tensor) -> Result<Tensor> {
    let z = ((images * 2.0)? - 1.0)?.affine(0.999999, 0.0)?;
    // atanh(z) = ln((1 + z) / (1 - z)) / 2
    Ok((((&z + 1.0)? / (1.0 - &z)?)?.log()? * 0.5)?)
}

fn to_image_space(w: &Tensor) -> Result<Tensor> {
    Ok(((w.tanh()? + 1.0)? * 0.5)?)
}

/// Runs C&W L2 on a batch; returns the smallest adversarial found per sample (the image itself
/// where none was).
pub fn carlini_wagner(
    model: &dyn Model,
    images: &Tensor,
    labels: &[u32],
    config: &CwConfig,
) -> Result<Tensor> {
    let b = labels.len();
    let w0 = to_tanh_space(images)?;
    let reconstructed = to_image_space(&w0)?;
    let mut consts = vec![config.initial_const; b];
    let (mut lower, mut upper) = (vec![0f32; b], vec![f32::INFINITY; b]);
    let mut best_adv = images.clone();
    let mut best_norm = vec![f32::INFINITY; b];
    let check_every = config.steps.div_ceil(10).max(1);
    for search in 0..config.binary_search_steps {
        if search + 1 == config.binary_search_steps && config.binary_search_steps >= 10 {
            consts = upper.iter().map(|u| u.min(1e10)).collect();
        }
        let c = Tensor::from_vec(consts.clone(), b, images.device())?;
        let delta = Var::from_tensor(&images.zeros_like()?)?;
        let mut adam = TensorAdam::new(images, config.stepsize)?;
        let mut found = vec![false; b];
        let mut previous = f32::INFINITY;
        for step in 0..config.steps {
            let x = to_image_space(&(&w0 + delta.as_tensor())?)?;
            let logits = model.logits(&x)?;
            let m = margin(&logits, labels)?;
            let hinge = (&m + config.confidence as f64)?.relu()?;
            let distance = (&x - &reconstructed)?.sqr()?.flatten_from(1)?.sum(1)?;
            let loss = ((hinge * &c)?.sum_all()? + distance.sum_all()?)?;
            let grads = loss.backward()?;
            let g = grads
                .get(delta.as_tensor())
                .ok_or_else(|| Error::Config("no gradient reached the perturbation".into()))?;
            delta.set(&(delta.as_tensor() - adam.step(g)?)?)?;
            let loss = loss.to_scalar::<f32>()?;
            if config.abort_early && step % check_every == 0 {
                if loss > 0.9999 * previous {
                    break;
                }
                previous = loss;
            }
            let margins = m.to_vec1::<f32>()?;
            let size = norms(&(&x - images)?, Norm::L2)?;
            let take: Vec<bool> = (0..b)
                .map(|k| margins[k] + config.confidence < 0.0 && size[k] < best_norm[k])
                .collect();
            for k in 0..b {
                found[k] |= margins[k] + config.confidence < 0.0;
                if take[k] {
                    best_norm[k] = size[k];
                }
            }
            if take.iter().any(|&t| t) {
                best_adv = select(&take, &x.detach(), &best_adv)?;
            }
        }
        for k in 0..b {
            if found[k] {
                upper[k] = consts[k];
            } else {
                lower[k] = consts[k];
            }
            consts[k] = if upper[k].is_infinite() {
                consts[k] * 10.0
            } else {
                (lower[k] + upper[k]) / 2.0
            };
        }
    }
    Ok(best_adv)
}

/// Adam on one tensor (PyTorch's and foolbox's rule: beta 0.9, 0.999, epsilon 1e-8); candle-nn's
/// optimiser works on `Var`s of a model, this is the attack's own perturbation.
struct TensorAdam {
    m: Tensor,
    v: Tensor,
    t: i32,
    lr: f64,
}

impl TensorAdam {
    fn new(like: &Tensor, lr: f32) -> Result<Self> {
        Ok(TensorAdam {
            m: like.zeros_like()?,
            v: like.zeros_like()?,
            t: 0,
            lr: lr as f64,
        })
    }

    /// The step to subtract for gradient `g`.
    fn step(&mut self, g: &Tensor) -> Result<Tensor> {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        self.t += 1;
        let g = g.detach();
        self.m = ((&self.m * B1)? + (&g * (1.0 - B1))?)?;
        self.v = ((&self.v * B2)? + (g.sqr()? * (1.0 - B2))?)?;
        let m_hat = (&self.m / (1.0 - B1.powi(self.t)))?;
        let v_hat = (&self.v / (1.0 - B2.powi(self.t)))?;
        Ok(((m_hat / (v_hat.sqrt()? + 1e-8)?)? * self.lr)?)
    }
}
