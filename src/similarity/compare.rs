//! Comparison of two similarity matrices over their off-diagonal entries.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::similarity::matrix::SimilarityMatrix;

/// Pearson and Spearman correlation of the entries a < b of two matrices.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MatrixComparison {
    /// Pearson r.
    pub pearson: f64,
    /// Spearman rho (Pearson r of the ranks, ties given their mean rank).
    pub spearman: f64,
    /// Number of entries compared.
    pub pairs: usize,
}

/// Compares `a` and `b` (same size) over their entries above the diagonal.
pub fn compare(a: &SimilarityMatrix, b: &SimilarityMatrix) -> Result<MatrixComparison> {
    if a.n != b.n || a.n < 3 {
        return Err(Error::Config(format!(
            "comparing matrices needs two of the same size with at least 3 rows (got {} and {})",
            a.n, b.n
        )));
    }
    let (x, y) = (a.upper(), b.upper());
    Ok(MatrixComparison {
        pearson: pearson(&x, &y),
        spearman: pearson(&ranks(&x), &ranks(&y)),
        pairs: x.len(),
    })
}

/// Pearson correlation; 0 when either side is constant.
pub fn pearson(x: &[f32], y: &[f32]) -> f64 {
    let n = x.len() as f64;
    let mx = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let my = y.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (da, db) = (a as f64 - mx, b as f64 - my);
        sxy += da * db;
        sxx += da * da;
        syy += db * db;
    }
    if sxx == 0.0 || syy == 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

/// Standard error of `r(truth, a) - r(truth, b)` (Pearson r over the entries above the diagonal of
/// three matrices on the same images), by resampling the images with replacement `draws` times
/// (seeded): images, not entries, are the independent units, since every entry shares its two
/// images with many others. Pairs of an image with a copy of itself are left out.
pub fn bootstrap_difference_se(
    truth: &SimilarityMatrix,
    a: &SimilarityMatrix,
    b: &SimilarityMatrix,
    draws: usize,
    seed: u64,
) -> Result<f64> {
    let n = truth.n;
    if a.n != n || b.n != n || n < 3 || draws < 2 {
        return Err(Error::Config(format!(
            "a bootstrap needs three matrices of one size with at least 3 rows and at least 2 draws \
             (got {}, {}, {} rows, {draws} draws)",
            truth.n, a.n, b.n
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let pairs = n * (n - 1) / 2;
    let (mut t, mut x, mut y) = (
        Vec::with_capacity(pairs),
        Vec::with_capacity(pairs),
        Vec::with_capacity(pairs),
    );
    let differences: Vec<f64> = (0..draws)
        .map(|_| {
            let images: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
            t.clear();
            x.clear();
            y.clear();
            for (p, &i) in images.iter().enumerate() {
                for &j in images[p + 1..].iter().filter(|&&j| j != i) {
                    let k = i * n + j;
                    t.push(truth.values[k]);
                    x.push(a.values[k]);
                    y.push(b.values[k]);
                }
            }
            pearson(&t, &x) - pearson(&t, &y)
        })
        .collect();
    let mean = differences.iter().sum::<f64>() / draws as f64;
    let variance = differences.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (draws - 1) as f64;
    Ok(variance.sqrt())
}

/// Ranks starting at 1, ties sharing their mean rank.
pub(crate) fn ranks(values: &[f32]) -> Vec<f32> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && values[idx[j + 1]] == values[idx[i]] {
            j += 1;
        }
        let rank = (i + j) as f32 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_worked_correlations() {
        assert_eq!(ranks(&[10., 30., 20., 20.]), vec![1., 4., 2.5, 2.5]);
        assert!((pearson(&[1., 2., 3.], &[2., 4., 6.]) - 1.0).abs() < 1e-12);
        assert!((pearson(&[1., 2., 3.], &[3., 2., 1.]) + 1.0).abs() < 1e-12);
        // Monotone but not linear: Spearman 1, Pearson below 1.
        let a = SimilarityMatrix {
            n: 3,
            values: vec![1., 0.1, 0.2, 0.1, 1., 0.3, 0.2, 0.3, 1.],
        };
        let b = SimilarityMatrix {
            n: 3,
            values: vec![1., 0.01, 0.04, 0.01, 1., 0.9, 0.04, 0.9, 1.],
        };
        let c = compare(&a, &b).unwrap();
        assert_eq!(c.pairs, 3);
        assert!((c.spearman - 1.0).abs() < 1e-12);
        assert!(c.pearson < 0.99);
    }

    #[test]
    fn bootstrap_of_a_difference() {
        let truth = SimilarityMatrix {
            n: 4,
            values: vec![
                1., 0.1, 0.5, 0.3, 0.1, 1., 0.2, 0.8, 0.5, 0.2, 1., 0.4, 0.3, 0.8, 0.4, 1.,
            ],
        };
        let mut noisy = truth.clone();
        for (k, v) in noisy.values.iter_mut().enumerate() {
            let (i, j) = (k / 4, k % 4);
            *v += 0.3 * ((i * j) as f32).sin();
        }
        // The same matrix twice: every draw's difference is 0.
        let same = bootstrap_difference_se(&truth, &noisy, &noisy, 50, 1).unwrap();
        assert_eq!(same, 0.0);
        // Different matrices: the difference varies from draw to draw, reproducibly.
        let se = bootstrap_difference_se(&truth, &truth, &noisy, 50, 1).unwrap();
        assert!(se > 0.0);
        assert_eq!(
            se,
            bootstrap_difference_se(&truth, &truth, &noisy, 50, 1).unwrap()
        );
        let small = SimilarityMatrix {
            n: 2,
            values: vec![1., 0.5, 0.5, 1.],
        };
        assert!(bootstrap_difference_se(&small, &small, &small, 50, 1).is_err());
    }
}
