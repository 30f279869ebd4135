//! Reproducible weight initialisation: a `VarBuilder` backend that creates the
//! trainable variables of a `VarMap` from a seeded generator.
//!
//! Hand-written because candle's CPU random generator cannot be seeded
//! (`Device::Cpu.set_seed` is refused), so two fits with one seed would
//! otherwise start from different weights. Variables are drawn in the order
//! the model asks for them, which is fixed by its construction code.

use std::sync::Mutex;

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::init::{Init, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Linear, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Creates missing variables of `varmap` from a seeded generator.
pub struct SeededInit {
    varmap: VarMap,
    rng: Mutex<ChaCha8Rng>,
}

/// A `VarBuilder` whose new variables land in `varmap`, drawn from `seed`.
pub fn seeded_var_builder(varmap: &VarMap, seed: u64, device: &Device) -> VarBuilder<'static> {
    let backend = SeededInit {
        varmap: varmap.clone(),
        rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
    };
    VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone())
}

/// PyTorch's default for `nn.Linear` and `nn.Conv2d` weights and biases (Kaiming uniform with
/// a = sqrt(5)): uniform in +-1/sqrt(fan in).
pub fn torch_default(fan_in: usize) -> Init {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// A linear layer initialised as PyTorch's `nn.Linear` is (candle's `linear` draws Kaiming normal
/// weights, 2.4 times wider).
pub fn torch_linear(inputs: usize, outputs: usize, vb: VarBuilder) -> candle_core::Result<Linear> {
    let init = torch_default(inputs);
    let weight = vb.get_with_hints((outputs, inputs), "weight", init)?;
    let bias = vb.get_with_hints(outputs, "bias", init)?;
    Ok(Linear::new(weight, Some(bias)))
}

/// Values of `init` for a tensor of `shape`, drawn from `rng`.
fn draw(init: Init, shape: &Shape, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let n = shape.elem_count();
    let normal = |rng: &mut ChaCha8Rng, mean: f64, std: f64| {
        (0..n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(rng);
                (mean + std * z) as f32
            })
            .collect::<Vec<f32>>()
    };
    let uniform = |rng: &mut ChaCha8Rng, lo: f64, up: f64| {
        (0..n)
            .map(|_| rng.random_range(lo..up.max(lo + f64::EPSILON)) as f32)
            .collect::<Vec<f32>>()
    };
    match init {
        Init::Const(v) => vec![v as f32; n],
        Init::Randn { mean, stdev } => normal(rng, mean, stdev),
        Init::Uniform { lo, up } => uniform(rng, lo, up),
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let std = non_linearity.gain() / (fan.for_shape(shape).max(1) as f64).sqrt();
            match dist {
                NormalOrUniform::Normal => normal(rng, 0.0, std),
                NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * std;
                    uniform(rng, -bound, bound)
                }
            }
        }
    }
}

impl SimpleBackend for SeededInit {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut vars = self
            .varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("variable map poisoned".into()))?;
        if let Some(var) = vars.get(name) {
            if var.shape() != &shape {
                candle_core::bail!(
                    "variable {name}: shape {:?}, asked for {shape:?}",
                    var.shape()
                );
            }
            return Ok(var.as_tensor().clone());
        }
        let values = {
            let mut rng = self
                .rng
                .lock()
                .map_err(|_| candle_core::Error::Msg("generator poisoned".into()))?;
            draw(init, &shape, &mut rng)
        };
        let var = Var::from_tensor(&Tensor::from_vec(values, shape, dev)?.to_dtype(dtype)?)?;
        let tensor = var.as_tensor().clone();
        vars.insert(name.to_string(), var);
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("variable {name} has no shape to create it with")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap
            .data()
            .lock()
            .is_ok_and(|v| v.contains_key(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(seed: u64) -> Vec<f32> {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, seed, &Device::Cpu);
        let l = candle_nn::linear(8, 4, vb.pp("l")).unwrap();
        let mut all = l.weight().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        all.extend(l.bias().unwrap().to_vec1::<f32>().unwrap());
        assert_eq!(varmap.all_vars().len(), 2, "both land in the variable map");
        all
    }

    #[test]
    fn same_seed_same_weights_other_seed_other_weights() {
        assert_eq!(weights(3), weights(3));
        assert_ne!(weights(3), weights(4));
    }

    #[test]
    fn kaiming_normal_has_the_expected_spread() {
        let shape = Shape::from((64, 32, 3, 3));
        let v = draw(
            candle_nn::init::DEFAULT_KAIMING_NORMAL,
            &shape,
            &mut ChaCha8Rng::seed_from_u64(0),
        );
        let var = v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32;
        // DEFAULT_KAIMING_NORMAL: fan in 32 * 9, ReLU gain sqrt(2).
        let expected = 2.0 / (32.0 * 9.0);
        assert!((var / expected - 1.0).abs() < 0.05, "{var} vs {expected}");
    }

    #[test]
    fn torch_linear_is_uniform_within_one_over_root_fan_in() {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, 0, &Device::Cpu);
        let l = torch_linear(25, 400, vb.pp("l")).unwrap();
        let w = l.weight().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = l.bias().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(l.weight().dims(), [400, 25]);
        // Bound 1/sqrt(25) = 0.2; a uniform variable's variance is bound^2 / 3.
        for v in [&w, &b] {
            assert!(v.iter().all(|x| x.abs() <= 0.2));
        }
        let var = w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32;
        assert!((var / (0.04 / 3.0) - 1.0).abs() < 0.05, "variance {var}");
    }
}
