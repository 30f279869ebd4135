//! One ordering of images shared by every displayed matrix: spectral seriation.
//!
//! Images are sorted by the Fiedler vector (the eigenvector of the second
//! smallest eigenvalue) of the graph Laplacian of the affinity `(1 + S) / 2`,
//! which places similar images next to each other (Atkins et al. 1998).

use nalgebra::{DMatrix, SymmetricEigen};

use crate::similarity::matrix::SimilarityMatrix;

/// The spectral order of the rows of `s`: `order[k]` is the row shown k-th.
///
/// The sign of the eigenvector is fixed so that the order is deterministic:
/// the first image (in input order) with a non-zero entry is placed on the leading side.
pub fn spectral_order(s: &SimilarityMatrix) -> Vec<usize> {
    let n = s.n;
    if n < 3 {
        return (0..n).collect();
    }
    let affinity = |a: usize, b: usize| {
        if a == b {
            0.0
        } else {
            (1.0 + s.get(a, b) as f64).max(0.0) / 2.0
        }
    };
    let laplacian = DMatrix::from_fn(n, n, |a, b| {
        if a == b {
            (0..n).map(|c| affinity(a, c)).sum::<f64>()
        } else {
            -affinity(a, b)
        }
    });
    let eig = SymmetricEigen::new(laplacian);
    let mut by_value: Vec<usize> = (0..n).collect();
    by_value.sort_by(|&i, &j| eig.eigenvalues[i].total_cmp(&eig.eigenvalues[j]));
    let mut fiedler: Vec<f64> = eig
        .eigenvectors
        .column(by_value[1])
        .iter()
        .copied()
        .collect();
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
}
