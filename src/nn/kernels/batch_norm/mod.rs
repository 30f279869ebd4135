//! 2-D batch normalisation with a fused forward and backward pass on the CPU.
//!
//! Hand-written because candle-nn's batch norm is a chain of about ten
//! broadcast tensor operations, each allocating a full activation-sized
//! tensor, forward and backward; in the ResNet that traffic cost more than the
//! normalisation itself. Training mode normalises by the batch statistics
//! (biased variance) and moves the running statistics towards them (unbiased
//! variance, momentum 0.1), as PyTorch does; evaluation mode uses the running
//! statistics. Variable names are candle's and torchvision's (`weight`,
//! `bias`, `running_mean`, `running_var`). Other devices use candle operations.

mod kernels;

use std::sync::{Arc, Mutex};

use candle_core::{Tensor, Var};
use candle_nn::{Init, VarBuilder};

use crate::error::Result;

use kernels::*;

/// How a forward pass uses and updates the batch-norm statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BnMode {
    /// Training: normalise by the batch's statistics and move the running statistics towards them.
    Train,
    /// Normalise by the batch's statistics and leave the running statistics alone: a training
    /// pass over images that evaluation must not be normalised by (the similarity batch).
    BatchOnly,
    /// Evaluation: normalise by the running statistics.
    Eval,
    /// Normalise by the batch's statistics and add them to a precise recomputation of the running
    /// statistics begun by [`BatchNorm2d::begin_precise`].
    Collect,
}

impl BnMode {
    /// `Train` or `Eval`.
    pub fn training(train: bool) -> Self {
        if train {
            BnMode::Train
        } else {
            BnMode::Eval
        }
    }
}

/// Batch norm over the channels of (B, C, H, W) activations.
#[derive(Debug, Clone)]
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    momentum: f64,
    eps: f64,
    precise: Arc<Mutex<Option<Precise>>>,
}

/// Per-channel statistics of the last training-mode forward pass (mean, biased variance).
type Stats = Mutex<Option<(Vec<f32>, Vec<f32>)>>;

/// A precise recomputation under way: values seen per channel, and the sums of the batches'
/// means and mean squares weighted by their values.
#[derive(Debug, Default)]
struct Precise {
    count: f64,
    mean: Vec<f64>,
    square: Vec<f64>,
}

impl BatchNorm2d {
    /// A batch norm of `channels` with torchvision's defaults (momentum 0.1, eps 1e-5).
    pub fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        let running = |name: &str, v: f64| -> Result<Var> {
            let t = vb.get_with_hints(channels, name, Init::Const(v))?;
            Ok(Var::from_tensor(&t)?)
        };
        Ok(BatchNorm2d {
            running_mean: running("running_mean", 0.0)?,
            running_var: running("running_var", 1.0)?,
            weight: vb.get_with_hints(channels, "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints(channels, "bias", Init::Const(0.0))?,
            momentum: 0.1,
            eps: 1e-5,
            precise: Arc::default(),
        })
    }

    /// Begins a precise recomputation of the running statistics (Wu and Johnson 2021, "precise
    /// BN"): passes in [`BnMode::Collect`] add their batches' statistics until
    /// [`BatchNorm2d::end_precise`] replaces the running statistics by the exact mean and variance
    /// of everything seen.
    pub fn begin_precise(&self) -> Result<()> {
        *self.precise.lock().map_err(|_| poisoned())? = Some(Precise::default());
        Ok(())
    }

    /// Ends a precise recomputation: the running mean and variance become the mean and the
    /// (pooled, biased) variance of every value the collecting passes saw; unchanged when they
    /// saw none.
    pub fn end_precise(&self) -> Result<()> {
        let Some(p) = self.precise.lock().map_err(|_| poisoned())?.take() else {
            return Ok(());
        };
        if p.count == 0.0 {
            return Ok(());
        }
        let mean: Vec<f32> = p.mean.iter().map(|m| (m / p.count) as f32).collect();
        let var: Vec<f32> = p
            .square
            .iter()
            .zip(&p.mean)
            .map(|(s, m)| ((s / p.count) - (m / p.count).powi(2)).max(0.0) as f32)
            .collect();
        let device = self.running_mean.device();
        let c = mean.len();
        self.running_mean.set(&Tensor::from_vec(mean, c, device)?)?;
        self.running_var.set(&Tensor::from_vec(var, c, device)?)?;
        Ok(())
    }

    /// Adds a batch's per-channel mean and biased variance over `n` values each to a precise
    /// recomputation.
    fn collect(&self, mean: &[f32], var: &[f32], n: f64) -> Result<()> {
        let mut guard = self.precise.lock().map_err(|_| poisoned())?;
        let Some(p) = guard.as_mut() else {
            return Err(crate::error::Error::Config(
                "a collecting batch-norm pass outside a precise recomputation".into(),
            ));
        };
        if p.mean.is_empty() {
            p.mean = vec![0.0; mean.len()];
            p.square = vec![0.0; mean.len()];
        }
        p.count += n;
        for (k, (&m, &v)) in mean.iter().zip(var).enumerate() {
            p.mean[k] += n * m as f64;
            p.square[k] += n * (v as f64 + (m as f64).powi(2));
        }
        Ok(())
    }

    /// Normalises `x` by the batch's statistics (`train`, updating the running ones) or the
    /// running ones.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_mode(x, BnMode::training(train))
    }

    /// Normalises `x` as `mode` says.
    pub fn forward_mode(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        self.forward_fused(x, mode, false)
    }

    /// Normalises `x` as `mode` says and applies a ReLU, in one pass forward and backward.
    pub fn forward_relu(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        self.forward_fused(x, mode, true)
    }

    fn forward_fused(&self, x: &Tensor, mode: BnMode, relu: bool) -> Result<Tensor> {
        let c = x.dim(1)?;
        let cpu = crate::nn::kernels::cpu::kernels_apply(x.device(), x.dtype());
        if mode == BnMode::Eval {
            // Evaluation trains nothing: constants, so that backward passes (attacks) skip them.
            let scale =
                (&self.weight / (self.running_var.as_tensor() + self.eps)?.sqrt()?)?.detach();
            let shift = (&self.bias - (self.running_mean.as_tensor() * &scale)?)?.detach();
            if cpu {
                let op = Affine {
                    scale: scale.to_vec1()?,
                    shift: shift.to_vec1()?,
                    relu,
                };
                return Ok(x.contiguous()?.apply_op1(op)?);
            }
            let shape = (1, c, 1, 1);
            let y = x
                .broadcast_mul(&scale.reshape(shape)?)?
                .broadcast_add(&shift.reshape(shape)?)?;
            return Ok(if relu { y.relu()? } else { y });
        }
        let update = mode == BnMode::Train;
        if !cpu {
            let y = self.forward_train_ops(x, mode)?;
            return Ok(if relu { y.relu()? } else { y });
        }
        let stats: Arc<Stats> = Arc::default();
        let op = Normalise {
            eps: self.eps,
            relu,
            stats: stats.clone(),
        };
        let y = x.contiguous()?.apply_op3(&self.weight, &self.bias, op)?;
        let computed = stats.lock().ok().and_then(|s| s.clone());
        if let (BnMode::Collect, Some((mean, var))) = (mode, &computed) {
            self.collect(mean, var, (x.elem_count() / c) as f64)?;
        }
        if let (true, Some((mean, var))) = (update, computed) {
            let n = (x.elem_count() / c) as f32;
            let unbiased: Vec<f32> = var.iter().map(|v| v * n / (n - 1.0).max(1.0)).collect();
            self.update_running(
                &Tensor::from_vec(mean, c, x.device())?,
                &Tensor::from_vec(unbiased, c, x.device())?,
            )?;
        }
        Ok(y)
    }

    fn update_running(&self, mean: &Tensor, var: &Tensor) -> Result<()> {
        let m = self.momentum;
        self.running_mean
            .set(&((self.running_mean.as_tensor() * (1.0 - m))? + (mean * m)?)?)?;
        self.running_var
            .set(&((self.running_var.as_tensor() * (1.0 - m))? + (var * m)?)?)?;
        Ok(())
    }

    /// Batch statistics from candle operations (devices other than the CPU); `Train` moves the
    /// running statistics, `Collect` adds to a precise recomputation.
    fn forward_train_ops(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        let c = x.dim(1)?;
        let shape = (1, c, 1, 1);
        let mean = x.mean_keepdim((0, 2, 3))?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim((0, 2, 3))?;
        let n = (x.elem_count() / c) as f64;
        if mode == BnMode::Collect {
            self.collect(
                &mean.flatten_all()?.to_vec1::<f32>()?,
                &var.flatten_all()?.to_vec1::<f32>()?,
                n,
            )?;
        }
        if mode == BnMode::Train {
            self.update_running(
                &mean.flatten_all()?.detach(),
                &(var.flatten_all()? * (n / (n - 1.0).max(1.0)))?.detach(),
            )?;
        }
        Ok(centred
            .broadcast_div(&(var + self.eps)?.sqrt()?)?
            .broadcast_mul(&self.weight.reshape(shape)?)?
            .broadcast_add(&self.bias.reshape(shape)?)?)
    }
}
fn poisoned() -> crate::error::Error {
    crate::error::Error::Config("batch-norm statistics are locked by a failed job".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    /// candle's own batch norm, the reference.
    fn reference(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
        let mean = x.mean_keepdim((0, 2, 3)).unwrap();
        let centred = x.broadcast_sub(&mean).unwrap();
        let var = centred.sqr().unwrap().mean_keepdim((0, 2, 3)).unwrap();
        let c = x.dim(1).unwrap();
        centred
            .broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(&w.reshape((1, c, 1, 1)).unwrap())
            .unwrap()
            .broadcast_add(&b.reshape((1, c, 1, 1)).unwrap())
            .unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn values_and_all_three_gradients_match_candle_operations() {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let bn = BatchNorm2d::new(3, vb).unwrap();
        let w = Var::new(&[0.5f32, 2.0, -1.0], &dev).unwrap();
        let b = Var::new(&[0.1f32, 0.0, -0.3], &dev).unwrap();
        let bn = BatchNorm2d {
            weight: w.as_tensor().clone(),
            bias: b.as_tensor().clone(),
            ..bn
        };
        let x = Tensor::randn(1f32, 3., (4, 3, 5, 6), &dev).unwrap();
        let x = Var::from_tensor(&x).unwrap();
        let probe = Tensor::randn(0f32, 1., (4, 3, 5, 6), &dev).unwrap();
        let ours = bn.forward_t(&x, true).unwrap();
        let theirs = reference(&x, &w, &b);
        assert!(max_diff(&ours, &theirs) < 1e-4);
        let g1 = (ours * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g2 = (theirs * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [x.as_tensor(), w.as_tensor(), b.as_tensor()] {
            let (a, r) = (g1.get(v).unwrap(), g2.get(v).unwrap());
            assert!(max_diff(a, r) < 1e-3, "{a} vs {r}");
        }
    }

    /// Checks values and the gradients of `vars` of `ours` against `theirs`.
    fn same_values_and_gradients(ours: &Tensor, theirs: &Tensor, vars: &[&Tensor]) {
        assert!(max_diff(ours, theirs) < 1e-4, "values");
        let probe = Tensor::randn(0f32, 1., ours.shape(), ours.device()).unwrap();
        let g1 = (ours * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g2 = (theirs * &probe)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in vars {
            let (a, r) = (g1.get(v).unwrap(), g2.get(v).unwrap());
            assert!(max_diff(a, r) < 1e-3, "{a} vs {r}");
        }
    }

    #[test]
    fn the_fused_relu_and_evaluation_mode_match_candle_operations() {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let bn = BatchNorm2d::new(7, VarBuilder::from_varmap(&varmap, DType::F32, &dev)).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f32, 1., 7, &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::randn(0f32, 1., 7, &dev).unwrap()).unwrap();
        let bn = BatchNorm2d {
            weight: w.as_tensor().clone(),
            bias: b.as_tensor().clone(),
            ..bn
        };
        // Odd sizes, batch 1 and a batch of several, mean far from zero.
        for dims in [(1, 7, 5, 3), (3, 7, 4, 9)] {
            let x = Var::from_tensor(&Tensor::randn(4f32, 2., dims, &dev).unwrap()).unwrap();
            let ours = bn.forward_relu(&x, BnMode::BatchOnly).unwrap();
            let theirs = reference(&x, &w, &b).relu().unwrap();
            same_values_and_gradients(
                &ours,
                &theirs,
                &[x.as_tensor(), w.as_tensor(), b.as_tensor()],
            );
            // Evaluation mode: the running statistics as constants; the gradient reaches x only.
            bn.forward_t(&x, true).unwrap();
            let (m, v) = (bn.running_mean.as_tensor(), bn.running_var.as_tensor());
            let scale = (w.as_tensor() / (v + 1e-5).unwrap().sqrt().unwrap()).unwrap();
            let shift = (b.as_tensor() - (m * &scale).unwrap()).unwrap();
            let shape = (1, 7, 1, 1);
            let affine = x
                .broadcast_mul(&scale.reshape(shape).unwrap().detach())
                .unwrap()
                .broadcast_add(&shift.reshape(shape).unwrap().detach())
                .unwrap();
            for relu in [false, true] {
                let ours = bn.forward_fused(&x, BnMode::Eval, relu).unwrap();
                let theirs = if relu {
                    affine.relu().unwrap()
                } else {
                    affine.clone()
                };
                same_values_and_gradients(&ours, &theirs, &[x.as_tensor()]);
            }
        }
    }

    #[test]
    fn after_many_steps_on_one_batch_evaluation_mode_matches_training_mode() {
        // The running statistics converge to the batch's (variance up to n / (n - 1)).
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let bn = BatchNorm2d::new(5, VarBuilder::from_varmap(&varmap, DType::F32, &dev)).unwrap();
        let x = Tensor::randn(3f32, 2., (16, 5, 4, 4), &dev).unwrap();
        for _ in 0..200 {
            bn.forward_relu(&x, BnMode::Train).unwrap();
        }
        let train = bn.forward_relu(&x, BnMode::BatchOnly).unwrap();
        let eval = bn.forward_relu(&x, BnMode::Eval).unwrap();
        assert!(
            max_diff(&train, &eval) < 1e-2,
            "{}",
            max_diff(&train, &eval)
        );
    }

    #[test]
    fn running_statistics_follow_pytorch() {
        // One channel, values 1..=4: mean 2.5, unbiased variance 5/3; momentum 0.1 from (0, 1).
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let bn = BatchNorm2d::new(1, VarBuilder::from_varmap(&varmap, DType::F32, &dev)).unwrap();
        let x = Tensor::new(&[1f32, 2., 3., 4.], &dev)
            .unwrap()
            .reshape((2, 1, 1, 2))
            .unwrap();
        bn.forward_t(&x, true).unwrap();
        let m = bn.running_mean.as_tensor().to_vec1::<f32>().unwrap()[0];
        let v = bn.running_var.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!((m - 0.25).abs() < 1e-6 && (v - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-6);
        // Evaluation mode uses them: (x - 0.25) / sqrt(v + eps).
        let y = bn
            .forward_t(&x, false)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!((y[0] - (1.0 - 0.25) / (v + 1e-5).sqrt()).abs() < 1e-5);
    }

    #[test]
    fn a_batch_only_pass_normalises_by_the_batch_and_leaves_the_running_statistics() {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let bn = BatchNorm2d::new(2, VarBuilder::from_varmap(&varmap, DType::F32, &dev)).unwrap();
        let x = Tensor::randn(3f32, 2., (4, 2, 3, 3), &dev).unwrap();
        let running = |bn: &BatchNorm2d| {
            let m = bn.running_mean.as_tensor().to_vec1::<f32>().unwrap();
            let v = bn.running_var.as_tensor().to_vec1::<f32>().unwrap();
            (m, v)
        };
        let before = running(&bn);
        let batch_only = bn.forward_mode(&x, BnMode::BatchOnly).unwrap();
        assert_eq!(running(&bn), before);
        let train = bn.forward_mode(&x, BnMode::Train).unwrap();
        assert!(max_diff(&batch_only, &train) < 1e-6);
        assert_ne!(running(&bn), before);
    }

    #[test]
    fn a_precise_recomputation_gives_the_exact_statistics_of_all_batches() {
        // Two batches of one channel: 1, 2 and 3, 4, 5, 6: mean 3.5, variance 35/12.
        for ops in [false, true] {
            let dev = Device::Cpu;
            let varmap = VarMap::new();
            let bn =
                BatchNorm2d::new(1, VarBuilder::from_varmap(&varmap, DType::F32, &dev)).unwrap();
            let batch = |v: &[f32]| {
                Tensor::new(v, &dev)
                    .unwrap()
                    .reshape((v.len(), 1, 1, 1))
                    .unwrap()
            };
            bn.begin_precise().unwrap();
            for b in [batch(&[1., 2.]), batch(&[3., 4., 5., 6.])] {
                let y = if ops {
                    bn.forward_train_ops(&b, BnMode::Collect).unwrap()
                } else {
                    bn.forward_mode(&b, BnMode::Collect).unwrap()
                };
                // Normalised by the batch, as in training.
                let first = y.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0];
                assert!(first < 0.0);
            }
            bn.end_precise().unwrap();
            let m = bn.running_mean.as_tensor().to_vec1::<f32>().unwrap()[0];
            let v = bn.running_var.as_tensor().to_vec1::<f32>().unwrap()[0];
            assert!(
                (m - 3.5).abs() < 1e-6 && (v - 35.0 / 12.0).abs() < 1e-5,
                "{m} {v}"
            );
            // Outside a recomputation a collecting pass is refused.
            assert!(bn.forward_mode(&batch(&[1., 2.]), BnMode::Collect).is_err());
        }
    }
}
