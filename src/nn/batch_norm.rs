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

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor, Var};
use candle_nn::{Init, VarBuilder};

use crate::error::Result;
use crate::nn::cpu::{on_threads, slice, split_batch};

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
        self.forward_fused(x, mode, false)
    }

    /// Normalises `x` as `mode` says and applies a ReLU, in one pass forward and backward.
    pub fn forward_relu(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        self.forward_fused(x, mode, true)
    }

    fn forward_fused(&self, x: &Tensor, mode: BnMode, relu: bool) -> Result<Tensor> {
        let c = x.dim(1)?;
        let cpu = x.device().is_cpu() && x.dtype() == candle_core::DType::F32;
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
            let y = self.forward_train_ops(x, update)?;
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

/// Sums of `a` and of `a * (b - m)` over one plane, with `a` zero where `keep` (the fused
/// ReLU's output) is not positive: eight f32 lanes, which the compiler vectorises, added up in
/// f64.
fn plane_sums(a: &[f32], b: &[f32], m: f32, keep: Option<&[f32]>) -> (f64, f64) {
    const LANES: usize = 8;
    let (mut s1, mut s2) = ([0f32; LANES], [0f32; LANES]);
    let n = a.len() / LANES * LANES;
    // Separate loops, so that the one without a mask has no select to vectorise around.
    match keep {
        None => {
            for (a, b) in a[..n].chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
                for j in 0..LANES {
                    s1[j] += a[j];
                    s2[j] += a[j] * (b[j] - m);
                }
            }
        }
        Some(k) => {
            // Fixed-size arrays and a bit mask rather than a branch or select: the compiler left
            // the masked loop scalar otherwise.
            for i in (0..n).step_by(LANES) {
                let a: &[f32; LANES] = a[i..i + LANES].try_into().expect("eight values");
                let b: &[f32; LANES] = b[i..i + LANES].try_into().expect("eight values");
                let k: &[f32; LANES] = k[i..i + LANES].try_into().expect("eight values");
                for j in 0..LANES {
                    let keep = ((k[j] > 0.0) as u32).wrapping_neg();
                    let v = f32::from_bits(a[j].to_bits() & keep);
                    s1[j] += v;
                    s2[j] += v * (b[j] - m);
                }
            }
        }
    }
    let (mut t1, mut t2) = (0f64, 0f64);
    for i in n..a.len() {
        let v = match keep {
            Some(k) if k[i] <= 0.0 => 0.0,
            _ => a[i],
        };
        t1 += v as f64;
        t2 += (v * (b[i] - m)) as f64;
    }
    let sum = |s: [f32; LANES]| s.iter().map(|&v| v as f64).sum::<f64>();
    (sum(s1) + t1, sum(s2) + t2)
}

/// Per-channel sums over the batch of `f(plane of channel ch in sample i, ch)`, channels spread
/// over the threads.
fn per_channel(
    b: usize,
    c: usize,
    f: impl Fn(usize, usize) -> (f64, f64) + Sync,
) -> Vec<(f64, f64)> {
    on_threads(c, |ch| {
        (0..b).fold((0.0, 0.0), |acc, i| {
            let v = f(i, ch);
            (acc.0 + v.0, acc.1 + v.1)
        })
    })
}

/// Per-channel mean and biased variance of contiguous (B, C, H, W) data, in two passes: the
/// mean, then sum x (x - m) about it, which gives sum (x - m)^2 = sum x (x - m) - m sum (x - m).
fn channel_stats(x: &[f32], b: usize, c: usize, hw: usize) -> (Vec<f32>, Vec<f32>) {
    let n = (b * hw) as f64;
    let plane = |i: usize, ch: usize| &x[(i * c + ch) * hw..][..hw];
    let mean: Vec<f32> = per_channel(b, c, |i, ch| {
        plane_sums(plane(i, ch), plane(i, ch), 0.0, None)
    })
    .iter()
    .map(|s| (s.0 / n) as f32)
    .collect();
    let var = per_channel(b, c, |i, ch| {
        plane_sums(plane(i, ch), plane(i, ch), mean[ch], None)
    })
    .iter()
    .zip(&mean)
    .map(|(s, &m)| ((s.1 - m as f64 * (s.0 - n * m as f64)) / n).max(0.0) as f32)
    .collect();
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

/// Writes `f(channel, offset of the plane, output plane)` for every plane of (B, C, H*W)
/// values in `out`, the batch spread over the threads.
fn map_planes(
    out: &mut [f32],
    (b, c, hw): (usize, usize, usize),
    f: impl Fn(usize, usize, &mut [f32]) + Sync,
) {
    split_batch(b, c * hw, out, |first, part| {
        for (k, plane) in part.chunks_exact_mut(hw).enumerate() {
            let idx = first * c + k;
            f(idx % c, idx * hw, plane);
        }
    });
}

/// The training-mode forward pass: `(x - mean) / sqrt(var + eps) * weight + bias`, then a ReLU
/// when `relu`. Keeps the batch statistics for the running update and the backward pass.
struct Normalise {
    eps: f64,
    relu: bool,
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
        let [x, w, bias] = operands(
            [(s1, l1), (s2, l2), (s3, l3)],
            ["batch norm input", "batch norm weight", "batch norm bias"],
        )?;
        let (mean, var) = channel_stats(x, b, c, hw);
        let scale: Vec<f32> = (0..c)
            .map(|ch| w[ch] / (var[ch] as f64 + self.eps).sqrt() as f32)
            .collect();
        let shift: Vec<f32> = (0..c).map(|ch| bias[ch] - mean[ch] * scale[ch]).collect();
        let y = affine(x, (b, c, hw), &scale, &shift, self.relu);
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
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, c) = (x.elem_count(), x.dim(1)?);
        let Some((mean, var)) = self.stats.lock().ok().and_then(|s| s.clone()) else {
            candle_core::bail!("batch norm: backward pass before the forward pass");
        };
        let op = Gradients {
            eps: self.eps,
            relu: self.relu,
            weight: w.to_vec1()?,
            mean,
            var,
        };
        let packed = x.apply_op3_no_bwd(&grad.contiguous()?, res, &op)?;
        let dx = packed.narrow(0, 0, n)?.reshape(x.shape())?;
        let dw = packed.narrow(0, n, c)?;
        let db = packed.narrow(0, n + c, c)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// `x * scale + shift` per channel, then a ReLU when `relu`.
fn affine(
    x: &[f32],
    dims: (usize, usize, usize),
    scale: &[f32],
    shift: &[f32],
    relu: bool,
) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    map_planes(&mut y, dims, |ch, at, out| {
        let (a, s) = (scale[ch], shift[ch]);
        let src = &x[at..][..out.len()];
        if relu {
            out.iter_mut()
                .zip(src)
                .for_each(|(o, &v)| *o = (v * a + s).max(0.0));
        } else {
            out.iter_mut().zip(src).for_each(|(o, &v)| *o = v * a + s);
        }
    });
    y
}

/// The backward pass of [`Normalise`] from (x, output gradient, output), with the forward
/// pass's statistics: the input, weight and bias gradients packed into one vector
/// (B*C*H*W + C + C values).
struct Gradients {
    eps: f64,
    relu: bool,
    weight: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
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
        let [x, dy, y] = operands(
            [(s1, l1), (s2, l2), (s3, l3)],
            [
                "batch norm input",
                "batch norm gradient",
                "batch norm output",
            ],
        )?;
        let (w, mean) = (&self.weight, &self.mean);
        let inv_std: Vec<f64> = self
            .var
            .iter()
            .map(|&v| 1.0 / (v as f64 + self.eps).sqrt())
            .collect();
        let keep = |at: usize| self.relu.then(|| &y[at..][..hw]);
        // db = sum dy, dw = sum dy * xhat per channel (dy zero where the ReLU clipped).
        let sums = per_channel(b, c, |i, ch| {
            let at = (i * c + ch) * hw;
            plane_sums(&dy[at..][..hw], &x[at..][..hw], mean[ch], keep(at))
        });
        let db: Vec<f64> = sums.iter().map(|s| s.0).collect();
        let dw: Vec<f64> = sums.iter().zip(&inv_std).map(|(s, i)| s.1 * i).collect();
        // dx = w inv_std / N (N dy - db - xhat dw) = k1 dy - k0 - k2 (x - mean).
        let count = (b * hw) as f64;
        let coef: Vec<(f32, f32, f32)> = (0..c)
            .map(|ch| {
                let k1 = w[ch] as f64 * inv_std[ch];
                let k0 = k1 * db[ch] / count;
                let k2 = k1 * inv_std[ch] * dw[ch] / count;
                (k1 as f32, k0 as f32, k2 as f32)
            })
            .collect();
        let mut out = vec![0f32; x.len() + 2 * c];
        let (dx, rest) = out.split_at_mut(x.len());
        map_planes(dx, (b, c, hw), |ch, at, plane| {
            let (k1, k0, k2, m) = (coef[ch].0, coef[ch].1, coef[ch].2, mean[ch]);
            let (g, xs) = (&dy[at..][..hw], &x[at..][..hw]);
            match keep(at) {
                Some(ys) => {
                    for i in 0..hw {
                        let gi = if ys[i] > 0.0 { g[i] } else { 0.0 };
                        plane[i] = k1 * gi - k0 - k2 * (xs[i] - m);
                    }
                }
                None => {
                    for i in 0..hw {
                        plane[i] = k1 * g[i] - k0 - k2 * (xs[i] - m);
                    }
                }
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

/// The evaluation-mode pass: `x * scale + shift` per channel with constant scale and shift,
/// then a ReLU when `relu`; its backward pass reaches the input only.
struct Affine {
    scale: Vec<f32>,
    shift: Vec<f32>,
    relu: bool,
}

impl CustomOp1 for Affine {
    fn name(&self) -> &'static str {
        "neureg-batch-norm-eval"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = dims(l)?;
        let x = slice(s, l, "batch norm input")?;
        let y = affine(x, dims, &self.scale, &self.shift, self.relu);
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let op = AffineGradient {
            scale: self.scale.clone(),
            relu: self.relu,
        };
        Ok(Some(grad.contiguous()?.apply_op2_no_bwd(res, &op)?))
    }
}

/// The backward pass of [`Affine`] from (output gradient, output): `grad * scale`, zero where
/// the ReLU clipped.
struct AffineGradient {
    scale: Vec<f32>,
    relu: bool,
}

impl CustomOp2 for AffineGradient {
    fn name(&self) -> &'static str {
        "neureg-batch-norm-eval-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = dims(l1)?;
        let dy = slice(s1, l1, "batch norm gradient")?;
        let y = slice(s2, l2, "batch norm output")?;
        let mut dx = vec![0f32; dy.len()];
        map_planes(&mut dx, dims, |ch, at, plane| {
            let a = self.scale[ch];
            let (g, ys) = (&dy[at..][..plane.len()], &y[at..][..plane.len()]);
            for i in 0..plane.len() {
                plane[i] = if self.relu && ys[i] <= 0.0 {
                    0.0
                } else {
                    g[i] * a
                };
            }
        });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
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
}
