//! Similarity of population responses (docs/method.md section 3, Eq. 2).

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::nn::kernels::cpu::{kernels_apply, split_batch};

/// A pair of stimuli (a, b) and their similarity.
pub type Pair = (usize, usize, f32);

/// A square, symmetric similarity matrix over a list of stimuli.
#[derive(Debug, Clone, PartialEq)]
pub struct SimilarityMatrix {
    /// Number of stimuli n.
    pub n: usize,
    /// n x n values, row-major.
    pub values: Vec<f32>,
}

impl SimilarityMatrix {
    /// A square matrix (at least 2 x 2, every entry finite) from a `.npy` file of any numeric
    /// dtype.
    pub fn read_npy(path: &std::path::Path) -> Result<SimilarityMatrix> {
        let name = path.display().to_string();
        let a = crate::data::npy::read_f32(&crate::data::npy::read_file(path)?, &name)?;
        let n = a.shape.first().copied().unwrap_or(0);
        if a.shape != [n, n] || n < 2 {
            return Err(Error::file(
                &name,
                format!("must be a square matrix, this is {:?}", a.shape),
            ));
        }
        if let Some(k) = a.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::file(
                &name,
                format!("entry ({}, {}) is {}", k / n, k % n, a.data[k]),
            ));
        }
        Ok(SimilarityMatrix { n, values: a.data })
    }

    /// The entry for stimuli `a` and `b`.
    pub fn get(&self, a: usize, b: usize) -> f32 {
        self.values[a * self.n + b]
    }

    /// The entries above the diagonal, row by row (pairs a < b).
    pub fn upper(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.n * self.n.saturating_sub(1) / 2);
        for a in 0..self.n {
            out.extend_from_slice(&self.values[a * self.n + a + 1..(a + 1) * self.n]);
        }
        out
    }

    /// The element-wise mean of several matrices of the same size.
    pub fn mean(matrices: &[&SimilarityMatrix]) -> Option<SimilarityMatrix> {
        let first = matrices.first()?;
        let mut values = vec![0.0f32; first.values.len()];
        for m in matrices {
            for (acc, v) in values.iter_mut().zip(&m.values) {
                *acc += v / matrices.len() as f32;
            }
        }
        Some(SimilarityMatrix { n: first.n, values })
    }

    /// The same matrix with rows and columns taken in `order`.
    pub fn reordered(&self, order: &[usize]) -> SimilarityMatrix {
        let values = order
            .iter()
            .flat_map(|&a| order.iter().map(move |&b| (a, b)))
            .map(|(a, b)| self.get(a, b))
            .collect();
        SimilarityMatrix {
            n: order.len(),
            values,
        }
    }

    /// The `k` most and the `k` least similar pairs a < b, as (a, b, value), most similar first.
    pub fn extreme_pairs(&self, k: usize) -> (Vec<Pair>, Vec<Pair>) {
        let mut pairs: Vec<(usize, usize, f32)> = (0..self.n)
            .flat_map(|a| (a + 1..self.n).map(move |b| (a, b)))
            .map(|(a, b)| (a, b, self.get(a, b)))
            .collect();
        pairs.sort_by(|x, y| y.2.total_cmp(&x.2));
        let most = pairs.iter().take(k).copied().collect();
        let least = pairs.iter().rev().take(k).copied().collect();
        (most, least)
    }
}

/// The unit response vectors `e` of Eq. 2 as an (n x N) tensor: rows of
/// `responses` (n stimuli x N neurons) scaled by `weights`, centred by their
/// mean over these n rows (the stimulus set that defines `xbar`), normalised.
///
/// `what` names the data in errors. A row with zero norm after centring is an error.
pub fn unit_responses(
    responses: &[f32],
    n: usize,
    weights: &[f32],
    device: &Device,
    what: &str,
) -> Result<Tensor> {
    let neurons = weights.len();
    if n == 0 || responses.len() != n * neurons {
        return Err(Error::analysis(
            what,
            format!(
                "{} responses do not form {n} stimuli x {neurons} neurons",
                responses.len()
            ),
        ));
    }
    if kernels_apply(device, candle_core::DType::F32) {
        unit_responses_cpu(responses, n, weights, what)
    } else {
        unit_responses_ops(responses, n, weights, device, what)
    }
}

/// [`unit_responses`] from candle's operations (other devices; the CPU version's reference).
fn unit_responses_ops(
    responses: &[f32],
    n: usize,
    weights: &[f32],
    device: &Device,
    what: &str,
) -> Result<Tensor> {
    let neurons = weights.len();
    let x = Tensor::from_slice(responses, (n, neurons), device)?;
    let w = Tensor::from_slice(weights, (1, neurons), device)?;
    let x = x.broadcast_mul(&w)?;
    let centred = x.broadcast_sub(&x.mean_keepdim(0)?)?;
    let norms = centred.sqr()?.sum_keepdim(1)?.sqrt()?;
    let norm_values: Vec<f32> = norms.flatten_all()?.to_vec1()?;
    let scale = x
        .sqr()?
        .sum_keepdim(1)?
        .sqrt()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f32>()?;
    if let Some(row) = norm_values
        .iter()
        .position(|&v| v.is_nan() || v <= 1e-6 * scale.max(f32::MIN_POSITIVE) || !v.is_finite())
    {
        return Err(zero_norm(what, row));
    }
    Ok(centred.broadcast_div(&norms)?)
}

/// The refusal of a stimulus whose centred response has no length.
fn zero_norm(what: &str, row: usize) -> Error {
    Error::analysis(
        what,
        format!("the weighted response of stimulus {row} equals the mean response (zero norm after centring), so its similarity is undefined"),
    )
}

/// [`unit_responses`] on the CPU in three passes over the responses (column means, then each row
/// centred, measured and scaled), where candle's operations took nine.
fn unit_responses_cpu(responses: &[f32], n: usize, weights: &[f32], what: &str) -> Result<Tensor> {
    let neurons = weights.len();
    let mut mean = vec![0f64; neurons];
    for row in responses.chunks_exact(neurons) {
        for ((m, &r), &w) in mean.iter_mut().zip(row).zip(weights) {
            *m += (r * w) as f64;
        }
    }
    let mean: Vec<f32> = mean.iter().map(|&m| (m / n as f64) as f32).collect();
    let mut out = vec![0f32; n * neurons];
    // Per chunk of rows: each row's centred norm, and the largest uncentred norm (the scale that
    // tells a zero norm from a small one).
    let parts = split_batch(n, neurons, &mut out, |first, part| {
        let mut norms = Vec::new();
        let mut scale = 0f32;
        for (i, dst) in part.chunks_exact_mut(neurons).enumerate() {
            let row = &responses[(first + i) * neurons..][..neurons];
            let (mut centred, mut raw) = (0f64, 0f64);
            for (((d, &r), &w), &m) in dst.iter_mut().zip(row).zip(weights).zip(&mean) {
                let x = r * w;
                *d = x - m;
                centred += (*d as f64).powi(2);
                raw += (x as f64).powi(2);
            }
            let norm = centred.sqrt() as f32;
            if norm > 0.0 && norm.is_finite() {
                dst.iter_mut().for_each(|d| *d /= norm);
            }
            norms.push(norm);
            scale = scale.max(raw.sqrt() as f32);
        }
        (norms, scale)
    });
    let scale = parts.iter().map(|p| p.1).fold(0f32, f32::max);
    let norms = parts.iter().flat_map(|p| p.0.iter());
    for (row, &v) in norms.enumerate() {
        if v.is_nan() || v <= 1e-6 * scale.max(f32::MIN_POSITIVE) || !v.is_finite() {
            return Err(zero_norm(what, row));
        }
    }
    Ok(Tensor::from_vec(out, (n, neurons), &Device::Cpu)?)
}

/// Eq. 2: `S[alpha, beta] = e[alpha] . e[beta]` for the rows of `responses`
/// (n stimuli x N neurons), with `xbar` the mean over these n stimuli.
pub fn similarity_matrix(
    responses: &[f32],
    n: usize,
    weights: &[f32],
    device: &Device,
    what: &str,
) -> Result<SimilarityMatrix> {
    gram(&unit_responses(responses, n, weights, device, what)?)
}

/// Rows per block of the blocked Gram product.
const GRAM_BLOCK: usize = 256;

/// `e e^T` as a similarity matrix.
///
/// The product is symmetric, so for large n only the blocks on and above the
/// diagonal are multiplied (what BLAS's `syrk` does; candle has no `syrk`),
/// and the rest is mirrored: about half the work of a full product.
pub fn gram(e: &Tensor) -> Result<SimilarityMatrix> {
    let n = e.dim(0)?;
    if n <= GRAM_BLOCK {
        let values = e.matmul(&e.t()?)?.flatten_all()?.to_vec1::<f32>()?;
        return Ok(SimilarityMatrix { n, values });
    }
    let mut values = vec![0.0f32; n * n];
    let starts: Vec<usize> = (0..n).step_by(GRAM_BLOCK).collect();
    for &i in &starts {
        let rows_i = GRAM_BLOCK.min(n - i);
        let ei = e.narrow(0, i, rows_i)?;
        // One product per block row: this block's rows against every row from i on.
        let rest = e.narrow(0, i, n - i)?;
        let block = ei.matmul(&rest.t()?)?.flatten_all()?.to_vec1::<f32>()?;
        for (r, row) in block.chunks_exact(n - i).enumerate() {
            values[(i + r) * n + i..][..n - i].copy_from_slice(row);
        }
    }
    mirror_upper(&mut values, n);
    Ok(SimilarityMatrix { n, values })
}

/// Copies the upper triangle of the n x n row-major `values` onto the lower, in tiles that stay
/// in cache (an element-by-element transposed write cost as much as a third of the product).
fn mirror_upper(values: &mut [f32], n: usize) {
    const TILE: usize = 64;
    for r0 in (0..n).step_by(TILE) {
        for c0 in (0..=r0).step_by(TILE) {
            for r in r0..(r0 + TILE).min(n) {
                for c in c0..(c0 + TILE).min(r) {
                    values[r * n + c] = values[c * n + r];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_version_matches_candle_operations() {
        let (n, neurons) = (37, 101);
        let responses: Vec<f32> = (0..n * neurons)
            .map(|i| ((i * 7919) % 113) as f32 * 0.1)
            .collect();
        let weights: Vec<f32> = (0..neurons).map(|j| 0.5 + (j % 5) as f32 * 0.3).collect();
        let cpu = unit_responses_cpu(&responses, n, &weights, "t").unwrap();
        let ops = unit_responses_ops(&responses, n, &weights, &Device::Cpu, "t").unwrap();
        let diff = (cpu - ops).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
    }

    #[test]
    fn hand_worked_cosines() {
        // Rows (1, 0), (0, 1), (2, 2) with weights (1, 1): mean (1, 1);
        // centred (0, -1), (-1, 0), (1, 1): unit (0, -1), (-1, 0), (1, 1)/sqrt 2.
        let s =
            similarity_matrix(&[1., 0., 0., 1., 2., 2.], 3, &[1., 1.], &Device::Cpu, "t").unwrap();
        let h = 1.0 / 2f32.sqrt();
        let want = [1., 0., -h, 0., 1., -h, -h, -h, 1.];
        for (a, b) in s.values.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{:?}", s.values);
        }
        assert_eq!(s.upper(), vec![0.0, s.get(0, 2), s.get(1, 2)]);
    }

    #[test]
    fn weights_scale_neurons() {
        // With weight 0 on neuron 1, only neuron 0 counts: rows 1, 3 -> centred -1, +1 -> S = -1 off the diagonal.
        let s = similarity_matrix(&[1., 5., 3., -7.], 2, &[1., 0.], &Device::Cpu, "t").unwrap();
        assert!((s.get(0, 1) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn zero_norm_is_an_error() {
        let err =
            similarity_matrix(&[1., 1., 1., 1.], 2, &[1., 1.], &Device::Cpu, "scan_x").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("scan_x: the weighted response of stimulus 0"),
            "{err}"
        );
    }

    #[test]
    fn blocked_gram_equals_the_full_product() {
        // Three block rows, the last one short.
        let n = 2 * GRAM_BLOCK + 300;
        let e = Tensor::rand(-1f32, 1f32, (n, 37), &Device::Cpu).unwrap();
        let blocked = gram(&e).unwrap();
        let full = e
            .matmul(&e.t().unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let worst = blocked
            .values
            .iter()
            .zip(&full)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{worst}");
    }

    #[test]
    fn extremes_and_reordering() {
        let s = SimilarityMatrix {
            n: 3,
            values: vec![1., 0.5, -0.2, 0.5, 1., 0.9, -0.2, 0.9, 1.],
        };
        let (most, least) = s.extreme_pairs(1);
        assert_eq!(most, vec![(1, 2, 0.9)]);
        assert_eq!(least, vec![(0, 2, -0.2)]);
        let r = s.reordered(&[2, 0, 1]);
        assert_eq!(r.get(0, 1), -0.2);
        assert_eq!(r.get(0, 2), 0.9);
    }
}
