//! Eq. 9 on the CPU in one op forward and one backward: the cosine similarity (B x B) of a
//! batch's flattened features centred by their batch mean. As candle operations it took a dozen
//! feature-sized tensors and passes each way (the mean, the centring, the squares, the norms,
//! the division, the product and each one's gradient): a third of a regularised training step at
//! width 0.25. Hand-written because candle has no fused ops; other devices and dtypes use the
//! candle operations of [`layer_similarity_ops`].
//!
//! Forward: `m = mean_b x_b`, `c_b = x_b - m`, `n_b = sqrt(|c_b|^2 + eps)`, `e_b = c_b / n_b`,
//! `S = e e^T`. Backward from `dS`: `dE = (dS + dS^T) e`, `dc_b = (dE_b - e_b (e_b . dE_b)) / n_b`,
//! `dx_b = dc_b - mean_b' dc_b'`. The forward computes `c c^T` and divides by the norms, which
//! are its diagonal; the backward recomputes `e` from `x` (two passes) rather than keeping a
//! second feature-sized tensor alive until the backward pass.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

use crate::error::Result;
use crate::nn::kernels::cpu::{
    kernels_apply, lane_dot, on_threads, slice, split_batch, split_samples, with_scratch,
};
use crate::nn::kernels::gemm::{matmul, Store, View};

/// Added to each squared norm, so that a row equal to the batch mean has similarity 0, not NaN.
pub const EPS: f32 = 1e-12;

/// Eq. 9: cosine similarity (B, B) of the flattened features `f` (B, ...) centred by their
/// batch mean.
pub fn layer_similarity(f: &Tensor) -> Result<Tensor> {
    let b = f.dim(0)?;
    let x = f.reshape((b, ()))?;
    if kernels_apply(x.device(), x.dtype()) {
        return Ok(layer_similarity_cpu(&x)?);
    }
    layer_similarity_ops(&x)
}

/// [`layer_similarity`] of the rows of `x` (B, D) as candle operations (other devices; the CPU
/// op's reference).
pub(crate) fn layer_similarity_ops(x: &Tensor) -> Result<Tensor> {
    let centred = x.broadcast_sub(&x.mean_keepdim(0)?)?;
    let norm = (centred.sqr()?.sum_keepdim(1)? + f64::from(EPS))?.sqrt()?;
    let e = centred.broadcast_div(&norm)?;
    Ok(e.matmul(&e.t()?)?)
}

/// `S = e e^T` for the rows of `x` (B, D), a contiguous f32 CPU tensor.
pub fn layer_similarity_cpu(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(LayerSimilarity)
}

/// The mean over the `b` rows of `x` (b x d), the columns split across the threads.
fn column_means(x: &[f32], b: usize, d: usize) -> Vec<f32> {
    const PART: usize = 1 << 12;
    let parts = d.div_ceil(PART);
    on_threads(parts, |p| {
        let cols = p * PART..((p + 1) * PART).min(d);
        let mut sum = vec![0f32; cols.len()];
        for row in x.chunks_exact(d) {
            for (s, v) in sum.iter_mut().zip(&row[cols.clone()]) {
                *s += v;
            }
        }
        sum.iter_mut().for_each(|s| *s /= b as f32);
        sum
    })
    .concat()
}

/// The unit rows `e` (b x d) of `x` centred by their mean, and each row's norm `n_b`.
fn unit_rows(x: &[f32], b: usize, d: usize) -> (Vec<f32>, Vec<f32>) {
    let mean = column_means(x, b, d);
    let mut e = vec![0f32; b * d];
    let norms = split_batch(b, d, &mut e, |first, part| {
        part.chunks_exact_mut(d)
            .enumerate()
            .map(|(i, dst)| {
                let row = &x[(first + i) * d..][..d];
                for ((c, &v), &m) in dst.iter_mut().zip(row).zip(&mean) {
                    *c = v - m;
                }
                let n = (lane_dot(dst, dst) + EPS).sqrt();
                dst.iter_mut().for_each(|c| *c /= n);
                n
            })
            .collect::<Vec<f32>>()
    })
    .concat();
    (e, norms)
}

/// The (b x d) operand of a contiguous (b, ...) tensor.
fn rows_of<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<(&'a [f32], usize, usize)> {
    let x = slice(s, l, what)?;
    let b = l.dims().first().copied().unwrap_or(1);
    Ok((x, b, x.len().checked_div(b).unwrap_or(0)))
}

struct LayerSimilarity;

impl CustomOp1 for LayerSimilarity {
    fn name(&self) -> &'static str {
        "neureg-layer-similarity"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, b, d) = rows_of(s, l, "features")?;
        let mean = column_means(x, b, d);
        // Each thread the Gram matrix c c^T of its share of the columns, block by block: the
        // block's centred values written transposed (columns x b, in cache), which is the layout
        // gemm reads fastest on both sides (read from row-major c, its packing took two thirds of
        // the product's time).
        const BLOCK: usize = 1024;
        let partial = split_samples(d, |first, count| {
            let mut gram = vec![0f32; b * b];
            with_scratch([BLOCK * b], |[ct]| {
                for start in (first..first + count).step_by(BLOCK) {
                    let cols = BLOCK.min(first + count - start);
                    let ct = &mut ct[..cols * b];
                    for (i, row) in x.chunks_exact(d).enumerate() {
                        let (row, m) = (&row[start..][..cols], &mean[start..][..cols]);
                        for (k, (&v, &m)) in row.iter().zip(m).enumerate() {
                            ct[k * b + i] = v - m;
                        }
                    }
                    let c = View::dense(ct, cols, b);
                    matmul(&mut gram, Store::Rows, c.t(), c, start > first);
                }
            });
            gram
        });
        let mut sim = vec![0f32; b * b];
        for gram in &partial {
            sim.iter_mut().zip(gram).for_each(|(s, g)| *s += g);
        }
        // The squared norms are the diagonal.
        let norms: Vec<f32> = (0..b).map(|i| (sim[i * b + i] + EPS).sqrt()).collect();
        for (k, v) in sim.iter_mut().enumerate() {
            *v /= norms[k / b] * norms[k % b];
        }
        Ok((CpuStorage::F32(sim), Shape::from((b, b))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &Gradient)?))
    }
}

/// The gradient with respect to the features `x` (first operand) of `S`, given `dS` (second).
struct Gradient;

impl CustomOp2 for Gradient {
    fn name(&self) -> &'static str {
        "neureg-layer-similarity-gradient"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, b, d) = rows_of(s1, l1, "features")?;
        let ds = slice(s2, l2, "similarity gradient")?;
        if ds.len() != b * b {
            candle_core::bail!(
                "similarity gradient: {} values for a {b} x {b} matrix",
                ds.len()
            );
        }
        let (e, norms) = unit_rows(x, b, d);
        // dS + dS^T: S is symmetric, so both of its factors receive the gradient.
        let h: Vec<f32> = (0..b * b)
            .map(|k| ds[k] + ds[(k % b) * b + k / b])
            .collect();
        let mut dx = vec![0f32; b * d];
        split_batch(b, d, &mut dx, |first, part| {
            let rows = part.len() / d.max(1);
            let mine = View::rows(&h[first * b..], rows, b, b);
            matmul(part, Store::Rows, mine, View::dense(&e, b, d), false);
            for (i, de) in part.chunks_exact_mut(d).enumerate() {
                let row = &e[(first + i) * d..][..d];
                let (along, n) = (lane_dot(row, de), norms[first + i]);
                for (g, &u) in de.iter_mut().zip(row) {
                    *g = (*g - u * along) / n;
                }
            }
        });
        // Through the centring: each column's mean gradient is taken off.
        let mean = column_means(&dx, b, d);
        let parts: Vec<Mutex<&mut [f32]>> = dx.chunks_mut(d.max(1)).map(Mutex::new).collect();
        on_threads(parts.len(), |r| {
            if let Ok(mut row) = parts[r].lock() {
                row.iter_mut().zip(&mean).for_each(|(g, m)| *g -= m);
            }
        });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::kernels::cpu::rel_diff;
    use candle_core::{Device, Var};

    /// The op's values and gradient against candle's operations, for a random `dS`.
    fn check(b: usize, d: usize) {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0.5f32, 2., (b, d), &dev).unwrap()).unwrap();
        let ds = Tensor::randn(0f32, 1., (b, b), &dev).unwrap();
        let (ours, theirs) = (
            layer_similarity_cpu(x.as_tensor()).unwrap(),
            layer_similarity_ops(x.as_tensor()).unwrap(),
        );
        // Relative to the largest value, at least 1e-3 (the gradients here are small).
        let gap = |a: &Tensor, b: &Tensor| rel_diff(a, b, 1e-3).unwrap();
        assert!(gap(&ours, &theirs) < 1e-5, "values, b {b} d {d}");
        let grad = |s: &Tensor| {
            let g = (s * &ds).unwrap().sum_all().unwrap().backward().unwrap();
            g.get(&x).unwrap().clone()
        };
        let (g1, g2) = (grad(&ours), grad(&theirs));
        assert!(
            gap(&g1, &g2) < 1e-4,
            "gradients, b {b} d {d}: {}",
            gap(&g1, &g2)
        );
    }

    #[test]
    fn matches_candle_operations_on_awkward_shapes() {
        for (b, d) in [(3, 2), (3, 7), (5, 17), (64, 4097), (9, 36 * 64 + 3)] {
            check(b, d);
        }
    }

    #[test]
    fn constant_similarities_have_zero_gradient() {
        // One sample: S = 0. One feature: the centred values are +-|c|, S = +-1 whatever x is.
        for x in [
            vec![vec![1f32, 2., 3.]],
            vec![vec![0.3f32], vec![-1.7], vec![2.2]],
        ] {
            let x = Var::new(x, &Device::Cpu).unwrap();
            let s = layer_similarity_cpu(x.as_tensor()).unwrap();
            let values = s.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(values
                .iter()
                .all(|v| v.abs() < 1e-6 || (v.abs() - 1.0).abs() < 1e-6));
            let g = (s * 0.7).unwrap().sum_all().unwrap().backward().unwrap();
            let g = g
                .get(&x)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert!(g.iter().all(|v| v.abs() < 1e-5), "{g:?}");
        }
    }
}
