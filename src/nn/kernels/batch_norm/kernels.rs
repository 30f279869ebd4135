//! The batch norm's CPU kernels: statistics, the fused normalisation (and ReLU) and its
//! gradients, each a candle custom op.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use crate::nn::kernels::cpu::{on_threads, slice, split_batch};

use super::*;

/// Sums of `a` and of `a * (b - m)` over one plane, with `a` zero where `keep` (the fused
/// ReLU's output) is not positive: eight f32 lanes, which the compiler vectorises, added up in
/// f64.
pub(super) fn plane_sums(a: &[f32], b: &[f32], m: f32, keep: Option<&[f32]>) -> (f64, f64) {
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
pub(super) fn per_channel(
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
pub(super) fn channel_stats(x: &[f32], b: usize, c: usize, hw: usize) -> (Vec<f32>, Vec<f32>) {
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
pub(super) fn dims(l: &Layout) -> candle_core::Result<(usize, usize, usize)> {
    let (b, c, h, w) = l.shape().dims4()?;
    Ok((b, c, h * w))
}

/// The three operands of an op as contiguous slices.
pub(super) fn operands<'a>(
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
pub(super) fn map_planes(
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
pub(super) struct Normalise {
    pub(super) eps: f64,
    pub(super) relu: bool,
    pub(super) stats: Arc<Stats>,
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
pub(super) fn affine(
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
pub(super) struct Gradients {
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
pub(super) struct Affine {
    pub(super) scale: Vec<f32>,
    pub(super) shift: Vec<f32>,
    pub(super) relu: bool,
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
pub(super) struct AffineGradient {
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
