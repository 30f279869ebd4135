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

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, Var};
use candle_nn::{Init, VarBuilder};

use crate::error::Result;
use crate::nn::conv::{slice, split_batch};

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
}

/// Per-channel statistics of the last training-mode forward pass (mean, biased variance).
type Stats = Mutex<Option<(Vec<f32>, Vec<f32>)>>;

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
        })
    }

    /// Normalises `x` by the batch's statistics (`train`, updating the running ones) or the
    /// running ones.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_mode(x, BnMode::training(train))
    }

    /// Normalises `x` as `mode` says.
    pub fn forward_mode(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        let c = x.dim(1)?;
        let shape = (1, c, 1, 1);
        if mode == BnMode::Eval {
            // Evaluation trains nothing: constants, so that backward passes (attacks) skip them.
            let scale =
                (&self.weight / (self.running_var.as_tensor() + self.eps)?.sqrt()?)?.detach();
            let shift = (&self.bias - (self.running_mean.as_tensor() * &scale)?)?.detach();
            return Ok(x
                .broadcast_mul(&scale.reshape(shape)?)?
                .broadcast_add(&shift.reshape(shape)?)?);
        }
        let update = mode == BnMode::Train;
        if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
            return self.forward_train_ops(x, update);
        }
        let stats: Arc<Stats> = Arc::default();
        let op = Normalise {
            eps: self.eps,
            stats: stats.clone(),
        };
        let y = x.contiguous()?.apply_op3(&self.weight, &self.bias, op)?;
        let taken = stats.lock().ok().and_then(|mut s| s.take());
        if let (true, Some((mean, var))) = (update, taken) {
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

    /// Batch statistics from candle operations (devices other than the CPU); `update` moves the
    /// running statistics.
    fn forward_train_ops(&self, x: &Tensor, update: bool) -> Result<Tensor> {
        let c = x.dim(1)?;
        let shape = (1, c, 1, 1);
        let mean = x.mean_keepdim((0, 2, 3))?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim((0, 2, 3))?;
        let n = (x.elem_count() / c) as f64;
        if update {
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

/// Per-channel mean and biased variance of contiguous (B, C, H, W) data.
fn channel_stats(x: &[f32], b: usize, c: usize, hw: usize) -> (Vec<f32>, Vec<f32>) {
    let n = (b * hw) as f64;
    let mut mean = vec![0f32; c];
    let mut var = vec![0f32; c];
    for ch in 0..c {
        let planes = (0..b).map(|i| &x[(i * c + ch) * hw..][..hw]);
        let m = planes.clone().flatten().map(|&v| v as f64).sum::<f64>() / n;
        let v = planes
            .flatten()
            .map(|&v| (v as f64 - m).powi(2))
            .sum::<f64>()
            / n;
        mean[ch] = m as f32;
        var[ch] = v as f32;
    }
    (mean, var)
}

/// Sizes of contiguous (B, C, H, W) data.
fn dims(l: &Layout) -> candle_core::Result<(usize, usize, usize)> {
    let (b, c, h, w) = l.shape().dims4()?;
    Ok((b, c, h * w))
}

/// The three operands of an op as contiguous slices.
fn operands<'a>(
    args: [(&'a CpuStorage, &Layout); 3],
    names: [&str; 3],
) -> candle_core::Result<[&'a [f32]; 3]> {
    Ok([
        slice(args[0].0, args[0].1, names[0])?,
        slice(args[1].0, args[1].1, names[1])?,
        slice(args[2].0, args[2].1, names[2])?,
    ])
}

/// The training-mode forward pass: `(x - mean) / sqrt(var + eps) * weight + bias`.
struct Normalise {
    eps: f64,
    stats: Arc<Stats>,
}

impl CustomOp3 for Normalise {
    fn name(&self) -> &'static str {
        "neureg-batch-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c, hw) = dims(l1)?;
        let [x, w, bias] = operands([(s1, l1), (s2, l2), (s3, l3)], ["input", "weight", "bias"])?;
        let (mean, var) = channel_stats(x, b, c, hw);
        let scale: Vec<f32> = (0..c)
            .map(|ch| w[ch] / (var[ch] as f64 + self.eps).sqrt() as f32)
            .collect();
        let shift: Vec<f32> = (0..c).map(|ch| bias[ch] - mean[ch] * scale[ch]).collect();
        let mut y = vec![0f32; x.len()];
        split_batch(b, c * hw, &mut y, |first, out| {
            for (k, v) in out.iter_mut().enumerate() {
                let ch = (k / hw) % c;
                *v = x[first * c * hw + k] * scale[ch] + shift[ch];
            }
        });
        if let Ok(mut s) = self.stats.lock() {
            *s = Some((mean, var));
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, c) = (x.elem_count(), x.dim(1)?);
        let packed = x.apply_op3(w, &grad.contiguous()?, Gradients { eps: self.eps })?;
        let dx = packed.narrow(0, 0, n)?.reshape(x.shape())?;
        let dw = packed.narrow(0, n, c)?;
        let db = packed.narrow(0, n + c, c)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// The backward pass of [`Normalise`] from (x, weight, output gradient): the input, weight and
/// bias gradients packed into one vector (B*C*H*W + C + C values).
struct Gradients {
    eps: f64,
}

impl CustomOp3 for Gradients {
    fn name(&self) -> &'static str {
        "neureg-batch-norm-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c, hw) = dims(l1)?;
        let [x, w, dy] = operands(
            [(s1, l1), (s2, l2), (s3, l3)],
            ["input", "weight", "gradient"],
        )?;
        let (mean, var) = channel_stats(x, b, c, hw);
        let inv_std: Vec<f64> = var
            .iter()
            .map(|&v| 1.0 / (v as f64 + self.eps).sqrt())
            .collect();
        // db = sum dy, dw = sum dy * xhat, per channel.
        let mut db = vec![0f64; c];
        let mut dw = vec![0f64; c];
        for ch in 0..c {
            for i in 0..b {
                let off = (i * c + ch) * hw;
                for k in 0..hw {
                    let g = dy[off + k] as f64;
                    db[ch] += g;
                    dw[ch] += g * (x[off + k] - mean[ch]) as f64 * inv_std[ch];
                }
            }
        }
        // dx = w * inv_std / N * (N dy - db - xhat dw).
        let count = (b * hw) as f64;
        let mut out = vec![0f32; x.len() + 2 * c];
        let (dx, rest) = out.split_at_mut(x.len());
        split_batch(b, c * hw, dx, |first, part| {
            for (k, v) in part.iter_mut().enumerate() {
                let idx = first * c * hw + k;
                let ch = (k / hw) % c;
                let xhat = (x[idx] - mean[ch]) as f64 * inv_std[ch];
                let g = count * dy[idx] as f64 - db[ch] - xhat * dw[ch];
                *v = (w[ch] as f64 * inv_std[ch] / count * g) as f32;
            }
        });
        for ch in 0..c {
            rest[ch] = dw[ch] as f32;
            rest[c + ch] = db[ch] as f32;
        }
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
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
}
