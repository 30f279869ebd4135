//! One ordering of images shared by every displayed matrix: spectral seriation.
//!
//! Images are sorted by the Fiedler vector (the eigenvector of the second smallest eigenvalue)
//! of the graph Laplacian `L = D - A` of the affinity `A = (1 + S) / 2` (zero diagonal), which
//! places similar images next to each other (Atkins et al. 1998).
//!
//! Only that one eigenvector is needed, so it is found by Lanczos iteration (hand-written:
//! nalgebra and faer offer dense eigendecompositions only, which at a paper-size target of 5000
//! images took two thirds of `neureg target`'s minutes). The constant vector is L's eigenvector
//! of eigenvalue 0; in the subspace orthogonal to it, the Fiedler vector is the leading
//! eigenvector of `M = c I - L` with `c = 2 max(degree)` >= L's largest eigenvalue (Gershgorin).
//! Lanczos with full reorthogonalisation runs from a fixed start, so the order is deterministic,
//! until the Ritz vector's residual is below a tolerance (or the Krylov space is the whole
//! complement, where it is exact).

use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;

use crate::similarity::matrix::SimilarityMatrix;

/// Largest Krylov dimension before the best Ritz vector so far is taken.
const MAX_STEPS: usize = 400;
/// Lanczos steps between convergence checks.
const CHECK_EVERY: usize = 10;
/// Convergence: the Ritz vector's residual relative to `c`.
const TOLERANCE: f64 = 1e-8;

/// The spectral order of the rows of `s`: `order[k]` is the row shown k-th.
///
/// The sign of the eigenvector is fixed so that the order is deterministic:
/// the first image (in input order) with a non-zero entry is placed on the leading side.
pub fn spectral_order(s: &SimilarityMatrix) -> Vec<usize> {
    let n = s.n;
    if n < 3 {
        return (0..n).collect();
    }
    let mut fiedler = fiedler_vector(s);
    // The first image with a non-zero entry goes to the negative (leading) side.
    if fiedler
        .iter()
        .find(|v| v.abs() > 1e-12)
        .is_some_and(|&v| v > 0.0)
    {
        fiedler.iter_mut().for_each(|v| *v = -*v);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| fiedler[a].total_cmp(&fiedler[b]).then(a.cmp(&b)));
    order
}

/// The affinity of images a and b.
fn affinity(s: &SimilarityMatrix, a: usize, b: usize) -> f64 {
    if a == b {
        0.0
    } else {
        (1.0 + s.get(a, b) as f64).max(0.0) / 2.0
    }
}

/// `M v = (c - d) v + A v`, rows in parallel.
fn apply(s: &SimilarityMatrix, degree: &[f64], c: f64, v: &[f64]) -> Vec<f64> {
    (0..s.n)
        .into_par_iter()
        .map(|a| {
            let row = &s.values[a * s.n..][..s.n];
            let av: f64 = row
                .iter()
                .zip(v)
                .enumerate()
                .map(|(b, (&x, &y))| {
                    if a == b {
                        0.0
                    } else {
                        (1.0 + x as f64).max(0.0) / 2.0 * y
                    }
                })
                .sum();
            (c - degree[a]) * v[a] + av
        })
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Removes from `v` its components along the unit vectors of `basis` (twice, for stability).
fn orthogonalise(v: &mut [f64], basis: &[Vec<f64>]) {
    for _ in 0..2 {
        for q in basis {
            let p = dot(v, q);
            v.iter_mut().zip(q).for_each(|(x, y)| *x -= p * y);
        }
    }
}

/// The Fiedler vector of the affinity's Laplacian, by Lanczos on `c I - L` orthogonal to the
/// constant vector.
fn fiedler_vector(s: &SimilarityMatrix) -> Vec<f64> {
    let n = s.n;
    let degree: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|a| (0..n).map(|b| affinity(s, a, b)).sum())
        .collect();
    let c = 2.0 * degree.iter().copied().fold(0.0, f64::max) + 1e-12;
    let ones = vec![1.0 / (n as f64).sqrt(); n];
    // A fixed start with every component non-zero and no symmetry (a hash of the index).
    let mut v: Vec<f64> = (0..n)
        .map(|i| {
            1.0 + ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64
                / (1u64 << 24) as f64
        })
        .collect();
    let mut basis = vec![ones];
    orthogonalise(&mut v, &basis);
    let norm = dot(&v, &v).sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    let steps = MAX_STEPS.min(n - 1);
    let (mut alpha, mut beta): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    let mut krylov: Vec<Vec<f64>> = Vec::new();
    let mut best = v.clone();
    for k in 0..steps {
        krylov.push(v.clone());
        let mut w = apply(s, &degree, c, &v);
        alpha.push(dot(&w, &v));
        basis.push(v.clone());
        orthogonalise(&mut w, &basis);
        let b = dot(&w, &w).sqrt();
        let last = k + 1 == steps || b < 1e-12 * c;
        if (k + 1) % CHECK_EVERY == 0 || last {
            let (value, ritz) = leading_ritz(&alpha, &beta);
            best = combine(&krylov, &ritz);
            // The residual of a Ritz pair is |beta_k * last component of its vector|.
            if last || (b * ritz[ritz.len() - 1]).abs() < TOLERANCE * c.max(value.abs()) {
                break;
            }
        }
        beta.push(b);
        v = w.iter().map(|x| x / b).collect();
    }
    best
}

/// The largest eigenvalue of the tridiagonal matrix (`alpha` on the diagonal, `beta` beside it)
/// and its eigenvector.
fn leading_ritz(alpha: &[f64], beta: &[f64]) -> (f64, Vec<f64>) {
    let m = alpha.len();
    let t = DMatrix::from_fn(m, m, |i, j| {
        if i == j {
            alpha[i]
        } else if i + 1 == j || j + 1 == i {
            beta[i.min(j)]
        } else {
            0.0
        }
    });
    let eig = SymmetricEigen::new(t);
    let k = (0..m)
        .max_by(|&a, &b| eig.eigenvalues[a].total_cmp(&eig.eigenvalues[b]))
        .unwrap_or(0);
    (
        eig.eigenvalues[k],
        eig.eigenvectors.column(k).iter().copied().collect(),
    )
}

/// `sum_k coefficients[k] * vectors[k]`.
fn combine(vectors: &[Vec<f64>], coefficients: &[f64]) -> Vec<f64> {
    let n = vectors[0].len();
    let mut out = vec![0.0; n];
    for (v, &c) in vectors.iter().zip(coefficients) {
        out.iter_mut().zip(v).for_each(|(o, x)| *o += c * x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_two_blocks() {
        // Images 0, 2, 4 are alike, 1, 3, 5 are alike, the groups are unlike.
        let n = 6;
        let values = (0..n * n)
            .map(|i| {
                let (a, b) = (i / n, i % n);
                if a == b {
                    1.0
                } else if a % 2 == b % 2 {
                    0.8
                } else {
                    -0.5
                }
            })
            .collect();
        let order = spectral_order(&SimilarityMatrix { n, values });
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..n).collect::<Vec<_>>());
        let first: Vec<usize> = order[..3].iter().map(|i| i % 2).collect();
        assert!(first.iter().all(|&p| p == first[0]), "{order:?}");
        assert_eq!(order[0] % 2, 0, "image 0's group comes first");
    }

    /// The dense solver the ordering used before, as the reference.
    fn dense_fiedler(s: &SimilarityMatrix) -> Vec<f64> {
        let n = s.n;
        let laplacian = DMatrix::from_fn(n, n, |a, b| {
            if a == b {
                (0..n).map(|c| affinity(s, a, c)).sum::<f64>()
            } else {
                -affinity(s, a, b)
            }
        });
        let eig = SymmetricEigen::new(laplacian);
        let mut by_value: Vec<usize> = (0..n).collect();
        by_value.sort_by(|&i, &j| eig.eigenvalues[i].total_cmp(&eig.eigenvalues[j]));
        eig.eigenvectors
            .column(by_value[1])
            .iter()
            .copied()
            .collect()
    }

    #[test]
    fn lanczos_finds_the_dense_solvers_fiedler_vector() {
        use rand::{Rng, SeedableRng};
        // A smooth structure (images along a circle's arc) plus noise, 300 images.
        let n = 300;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let pos: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..3.0)).collect();
        let mut values = vec![0f32; n * n];
        for a in 0..n {
            for b in a..n {
                let v = if a == b {
                    1.0
                } else {
                    ((pos[a] - pos[b]).cos() * 0.8 + rng.random_range(-0.1..0.1)) as f32
                };
                values[a * n + b] = v;
                values[b * n + a] = v;
            }
        }
        let s = SimilarityMatrix { n, values };
        let (lanczos, dense) = (fiedler_vector(&s), dense_fiedler(&s));
        let cosine = dot(&lanczos, &dense) / (dot(&lanczos, &lanczos) * dot(&dense, &dense)).sqrt();
        assert!(cosine.abs() > 1.0 - 1e-6, "{cosine}");
    }
}
