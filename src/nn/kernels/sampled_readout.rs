//! The Gaussian readout's sampling and feature weighting in one op (CPU, f32):
//! `out[b, n] = sum_c W[c, n] * bilinear(F[b, c], grid[b, n])`, with its backward pass to the
//! features, the grid and the weights.
//!
//! Hand-written because, as candle operations, sampling gathers the four corners of every
//! channel for every neuron into a (C, B, N, 4) tensor and weights it by broadcasting: at the
//! paper's 8000 neurons and batch 64, half a gigabyte per pass, the predictor's slowest step.
//! Here nothing per (channel, neuron) is stored. Bilinear sampling as in
//! [`crate::nn::models::gaussian_readout::bilinear_sample`]: grid values in [-1, 1] (clamped) span the
//! map's corner pixels.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use crate::nn::kernels::cpu::{lane_dot, slice, split_batch};
use crate::nn::kernels::gemm::transpose;

/// (B, N) responses of `weights` (C, N) applied to `features` (B, C, H, W) sampled at `grid`
/// (B, N, 2; x then y).
pub fn sampled_readout(
    features: &Tensor,
    grid: &Tensor,
    weights: &Tensor,
) -> candle_core::Result<Tensor> {
    features
        .contiguous()?
        .apply_op3(&grid.contiguous()?, &weights.contiguous()?, SampledReadout)
}

/// Where one grid point samples a map, and how.
struct Corners {
    /// Offsets of the four corners in a channel's plane: top left, top right, bottom left,
    /// bottom right.
    at: [usize; 4],
    /// (1 - fx, fx) and (1 - fy, fy): the corners' weights are their products.
    fx: f32,
    fy: f32,
    /// d(pixel position) / d(grid value) in x and y: 0 where the grid value was clamped.
    kx: f32,
    ky: f32,
}

impl Corners {
    fn new(h: usize, w: usize, gx: f32, gy: f32) -> Self {
        let scale = |size: usize| (size - 1) as f32 / 2.0;
        let inside = |g: f32, k: f32| if (-1.0..=1.0).contains(&g) { k } else { 0.0 };
        let px = (gx.clamp(-1.0, 1.0) + 1.0) * scale(w);
        let py = (gy.clamp(-1.0, 1.0) + 1.0) * scale(h);
        let x0 = px.floor().clamp(0.0, w.saturating_sub(2) as f32);
        let y0 = py.floor().clamp(0.0, h.saturating_sub(2) as f32);
        let (sx, sy) = (usize::from(w > 1), usize::from(h > 1) * w);
        let base = y0 as usize * w + x0 as usize;
        Corners {
            at: [base, base + sx, base + sy, base + sy + sx],
            fx: px - x0,
            fy: py - y0,
            kx: inside(gx, scale(w)),
            ky: inside(gy, scale(h)),
        }
    }

    /// The four corner values of `plane`.
    fn values(&self, plane: &[f32]) -> [f32; 4] {
        self.at.map(|i| plane[i])
    }

    /// The corners' bilinear weights.
    fn weights(&self) -> [f32; 4] {
        let (fx, fy) = (self.fx, self.fy);
        [
            (1. - fx) * (1. - fy),
            fx * (1. - fy),
            (1. - fx) * fy,
            fx * fy,
        ]
    }
}

fn dot(a: [f32; 4], b: [f32; 4]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3]
}

/// Sizes: batch, channels, plane (H, W), neurons.
struct Dims {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    n: usize,
}

impl Dims {
    fn new(f: &Layout, g: &Layout, wt: &Layout) -> candle_core::Result<Self> {
        let (b, c, h, w) = f.shape().dims4()?;
        let (gb, n, two) = g.shape().dims3()?;
        let (wc, wn) = wt.shape().dims2()?;
        if gb != b || two != 2 || wc != c || wn != n || h == 0 || w == 0 {
            candle_core::bail!(
                "sampled readout: features {:?}, grid {:?} and weights {:?} do not fit",
                f.shape(),
                g.shape(),
                wt.shape()
            );
        }
        Ok(Dims { b, c, h, w, n })
    }

    /// The corners of every neuron of sample `s`.
    fn corners(&self, grid: &[f32], s: usize) -> Vec<Corners> {
        let g = &grid[s * self.n * 2..][..self.n * 2];
        g.chunks_exact(2)
            .map(|p| Corners::new(self.h, self.w, p[0], p[1]))
            .collect()
    }
}

struct SampledReadout;

impl CustomOp3 for SampledReadout {
    fn name(&self) -> &'static str {
        "neureg-sampled-readout"
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
        let d = Dims::new(l1, l2, l3)?;
        let f = slice(s1, l1, "readout features")?;
        let grid = slice(s2, l2, "readout grid")?;
        let wt = slice(s3, l3, "readout weights")?;
        let hw = d.h * d.w;
        // Channels last, a neuron's four corners are four runs of C values, each a dot product
        // with the neuron's weights: SIMD-friendly, where the planes layout gathers per channel.
        let mut wt_t = vec![0f32; d.c * d.n];
        transpose(wt, d.c, d.n, &mut wt_t);
        let mut out = vec![0f32; d.b * d.n];
        split_batch(d.b, d.n, &mut out, |first, part| {
            let mut last = vec![0f32; hw * d.c];
            for (i, out) in part.chunks_exact_mut(d.n).enumerate() {
                let s = first + i;
                transpose(&f[s * d.c * hw..][..d.c * hw], d.c, hw, &mut last);
                let corners = d.corners(grid, s);
                for ((o, k), w_n) in out.iter_mut().zip(&corners).zip(wt_t.chunks_exact(d.c)) {
                    let v = k.at.map(|at| lane_dot(&last[at * d.c..][..d.c], w_n));
                    *o = dot(k.weights(), v);
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((d.b, d.n))))
    }

    fn bwd(
        &self,
        features: &Tensor,
        grid: &Tensor,
        weights: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let op = Gradients {
            grad: grad.contiguous()?.flatten_all()?.to_vec1()?,
        };
        let packed = features.apply_op3_no_bwd(grid, weights, &op)?;
        let (nf, ng) = (features.elem_count(), grid.elem_count());
        let df = packed.narrow(0, 0, nf)?.reshape(features.shape())?;
        let dg = packed.narrow(0, nf, ng)?.reshape(grid.shape())?;
        let dw = packed
            .narrow(0, nf + ng, weights.elem_count())?
            .reshape(weights.shape())?;
        Ok((Some(df), Some(dg), Some(dw)))
    }
}

/// The backward pass of [`SampledReadout`] from (features, grid, weights) and the output
/// gradient: the gradients of the features, the grid and the weights, packed into one vector.
struct Gradients {
    grad: Vec<f32>,
}

impl CustomOp3 for Gradients {
    fn name(&self) -> &'static str {
        "neureg-sampled-readout-grad"
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
        let d = Dims::new(l1, l2, l3)?;
        let f = slice(s1, l1, "readout features")?;
        let grid = slice(s2, l2, "readout grid")?;
        let wt = slice(s3, l3, "readout weights")?;
        if self.grad.len() != d.b * d.n {
            candle_core::bail!("sampled readout: the gradient does not fit the output");
        }
        let (hw, chw) = (d.h * d.w, d.c * d.h * d.w);
        let mut df = vec![0f32; d.b * chw];
        // Each thread: its samples' grid gradients and its share of the weight gradient.
        let parts = split_batch(d.b, chw, &mut df, |first, part| {
            let samples = part.len() / chw;
            let mut dgrid = vec![0f32; samples * d.n * 2];
            let mut dw = vec![0f32; d.c * d.n];
            for i in 0..samples {
                let s = first + i;
                let corners = d.corners(grid, s);
                let g = &self.grad[s * d.n..][..d.n];
                let dg = &mut dgrid[i * d.n * 2..][..d.n * 2];
                for ch in 0..d.c {
                    let plane = &f[(s * d.c + ch) * hw..][..hw];
                    let dplane = &mut part[(i * d.c + ch) * hw..][..hw];
                    let w_c = &wt[ch * d.n..][..d.n];
                    let dw_c = &mut dw[ch * d.n..][..d.n];
                    for j in 0..d.n {
                        let k = &corners[j];
                        let v = k.values(plane);
                        let wts = k.weights();
                        dw_c[j] += g[j] * dot(wts, v);
                        let gw = g[j] * w_c[j];
                        for (&at, wk) in k.at.iter().zip(wts) {
                            dplane[at] += gw * wk;
                        }
                        let (fx, fy) = (k.fx, k.fy);
                        let dx = (v[1] - v[0]) * (1. - fy) + (v[3] - v[2]) * fy;
                        let dy = (v[2] - v[0]) * (1. - fx) + (v[3] - v[1]) * fx;
                        dg[2 * j] += gw * dx * k.kx;
                        dg[2 * j + 1] += gw * dy * k.ky;
                    }
                }
            }
            (dgrid, dw)
        });
        let mut out = df;
        let mut dw = vec![0f32; d.c * d.n];
        let mut dgrid = Vec::with_capacity(d.b * d.n * 2);
        for (g, w) in parts {
            dgrid.extend(g);
            dw.iter_mut().zip(w).for_each(|(a, b)| *a += b);
        }
        out.extend(dgrid);
        out.extend(dw);
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::models::gaussian_readout::bilinear_sample;
    use candle_core::{Device, Var};

    #[test]
    fn values_and_all_gradients_match_candle_operations() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        for (b, c, h, w, n) in [
            (3, 5, 6, 9, 7),
            (1, 2, 2, 2, 3),
            (2, 3, 5, 1, 4),
            (2, 37, 6, 9, 11),
        ] {
            let f = Var::from_tensor(&Tensor::randn(0f32, 1., (b, c, h, w), &dev)?)?;
            // Inside, and beyond the edges (clamped), but not exactly on them.
            let g = Var::from_tensor(&Tensor::rand(-1.3f32, 1.3, (b, n, 2), &dev)?)?;
            let wt = Var::from_tensor(&Tensor::randn(0f32, 1., (c, n), &dev)?)?;
            let ours = sampled_readout(&f, &g, &wt)?;
            let pooled = bilinear_sample(f.as_tensor(), g.as_tensor()).expect("sampling");
            let theirs = pooled.broadcast_mul(&wt.unsqueeze(0)?)?.sum(1)?;
            let diff = |a: &Tensor, r: &Tensor| -> candle_core::Result<f32> {
                (a - r)?.abs()?.max_all()?.to_scalar::<f32>()
            };
            assert!(diff(&ours, &theirs)? < 1e-5);
            let probe = Tensor::randn(0f32, 1., (b, n), &dev)?;
            let g1 = (ours * &probe)?.sum_all()?.backward()?;
            let g2 = (theirs * &probe)?.sum_all()?.backward()?;
            for v in [&f, &g, &wt] {
                let (x, y) = (g1.get(v).expect("ours"), g2.get(v).expect("candle's"));
                assert!(diff(x, y)? < 1e-4, "gradient of {:?}: {x} vs {y}", v.dims());
            }
        }
        Ok(())
    }
}
