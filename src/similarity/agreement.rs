//! How well two similarity matrices over the same images agree: RSA (Pearson and Spearman over
//! the pairs above the diagonal) and CKA (Kornblith et al. 2019) of the matrices taken as Gram
//! matrices, linear and debiased (the unbiased HSIC estimator of Song et al. 2012), with
//! bootstrap intervals over images.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::similarity::compare::{pearson, ranks};
use crate::similarity::matrix::SimilarityMatrix;

/// The four measures of agreement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Pearson r of the pairs above the diagonal.
    pub rsa_pearson: f64,
    /// Spearman rho of the same pairs.
    pub rsa_spearman: f64,
    /// Linear CKA: HSIC of the centred matrices over the square root of their self-HSICs.
    pub cka: f64,
    /// CKA from the unbiased HSIC estimator (diagonals left out; NaN when an estimate of a
    /// matrix against itself is not positive, as can happen on few images).
    pub cka_debiased: f64,
}

/// A measure's name (as in files and plots) and how it is read from an [`Agreement`].
pub type Measure = (&'static str, fn(&Agreement) -> f64);

/// The measures.
pub const MEASURES: [Measure; 4] = [
    ("rsa_pearson", |a| a.rsa_pearson),
    ("rsa_spearman", |a| a.rsa_spearman),
    ("cka", |a| a.cka),
    ("cka_debiased", |a| a.cka_debiased),
];

impl Agreement {
    fn from_values(v: [f64; 4]) -> Self {
        Agreement {
            rsa_pearson: v[0],
            rsa_spearman: v[1],
            cka: v[2],
            cka_debiased: v[3],
        }
    }

    fn values(&self) -> [f64; 4] {
        MEASURES.map(|(_, get)| get(self))
    }
}

/// The agreement of `k` and `l`, square matrices of one size with at least 4 rows.
pub fn agreement(k: &SimilarityMatrix, l: &SimilarityMatrix) -> Result<Agreement> {
    if k.n != l.n || k.n < 4 {
        return Err(Error::Config(format!(
            "agreement needs two matrices of one size over at least 4 images (got {} and {})",
            k.n, l.n
        )));
    }
    let (x, y) = (k.upper(), l.upper());
    let (k64, l64) = (widen(&k.values), widen(&l.values));
    Ok(Agreement {
        rsa_pearson: pearson(&x, &y),
        rsa_spearman: pearson(&ranks(&x), &ranks(&y)),
        cka: linear_cka(&k64, &l64, k.n),
        cka_debiased: debiased_cka(&k64, &l64, k.n),
    })
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// `H K H` with `H = I - 11^T / n`: rows and columns of the n x n `k` centred.
fn centred(k: &[f64], n: usize) -> Vec<f64> {
    let row: Vec<f64> = k
        .chunks_exact(n)
        .map(|r| r.iter().sum::<f64>() / n as f64)
        .collect();
    let all = row.iter().sum::<f64>() / n as f64;
    let mut out = vec![0.0; n * n];
    for a in 0..n {
        for b in 0..n {
            // k is symmetric, so column means are the row means.
            out[a * n + b] = k[a * n + b] - row[a] - row[b] + all;
        }
    }
    out
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Linear CKA of two symmetric n x n Gram matrices.
pub fn linear_cka(k: &[f64], l: &[f64], n: usize) -> f64 {
    let (kc, lc) = (centred(k, n), centred(l, n));
    let denominator = (dot(&kc, &kc) * dot(&lc, &lc)).sqrt();
    if denominator > 0.0 {
        dot(&kc, &lc) / denominator
    } else {
        f64::NAN
    }
}

/// The unbiased HSIC estimator (Song et al. 2012, Eq. 5) of two symmetric n x n Gram matrices,
/// up to the factor 1 / (n (n - 3)) that cancels in CKA; n >= 4.
fn unbiased_hsic(k: &[f64], l: &[f64], n: usize) -> f64 {
    let zero_diagonal = |m: &[f64]| {
        let mut m = m.to_vec();
        for a in 0..n {
            m[a * n + a] = 0.0;
        }
        m
    };
    let (k, l) = (zero_diagonal(k), zero_diagonal(l));
    let row_sums = |m: &[f64]| -> Vec<f64> { m.chunks_exact(n).map(|r| r.iter().sum()).collect() };
    let (rk, rl) = (row_sums(&k), row_sums(&l));
    let (sk, sl) = (rk.iter().sum::<f64>(), rl.iter().sum::<f64>());
    let n = n as f64;
    dot(&k, &l) + sk * sl / ((n - 1.0) * (n - 2.0)) - 2.0 / (n - 2.0) * dot(&rk, &rl)
}

/// Debiased CKA of two symmetric n x n Gram matrices (n >= 4).
pub fn debiased_cka(k: &[f64], l: &[f64], n: usize) -> f64 {
    let (kk, ll) = (unbiased_hsic(k, k, n), unbiased_hsic(l, l, n));
    if kk > 0.0 && ll > 0.0 {
        unbiased_hsic(k, l, n) / (kk * ll).sqrt()
    } else {
        f64::NAN
    }
}

/// An agreement with a 95% bootstrap percentile interval of each measure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// On all images.
    pub value: Agreement,
    /// 2.5th percentile over resampled image sets.
    pub low: Agreement,
    /// 97.5th percentile.
    pub high: Agreement,
}

/// [`agreement`] of `k` and `l` with intervals from `resamples` seeded resamplings of the images
/// with replacement (the images, not the pairs, are the independent units). In a resampled set
/// the pairs of an image with a copy of itself are left out of RSA, and CKA is taken over the
/// distinct images drawn.
pub fn bootstrap(
    k: &SimilarityMatrix,
    l: &SimilarityMatrix,
    resamples: usize,
    seed: u64,
) -> Result<Estimate> {
    resampled_estimate(k, l, resamples, seed, true)
}

/// [`bootstrap`] of the two RSA measures only (CKA left NaN): the pixel baseline reports no
/// more, and CKA is most of a resample's cost.
pub fn bootstrap_rsa(
    k: &SimilarityMatrix,
    l: &SimilarityMatrix,
    resamples: usize,
    seed: u64,
) -> Result<Estimate> {
    resampled_estimate(k, l, resamples, seed, false)
}

fn resampled_estimate(
    k: &SimilarityMatrix,
    l: &SimilarityMatrix,
    resamples: usize,
    seed: u64,
    cka: bool,
) -> Result<Estimate> {
    use rayon::prelude::*;
    let mut value = agreement(k, l)?;
    if !cka {
        (value.cka, value.cka_debiased) = (f64::NAN, f64::NAN);
    }
    let n = k.n;
    let pairs = Rsa::of(k, l);
    // The draws in sequence, so the intervals do not depend on the thread count.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let draws: Vec<Vec<usize>> = (0..resamples)
        .map(|_| (0..n).map(|_| rng.random_range(0..n)).collect())
        .collect();
    let draws: Vec<[f64; 4]> = draws
        .par_iter()
        .map(|idx| resampled(k, l, &pairs, idx, cka))
        .collect();
    let percentile = |q: f64| {
        Agreement::from_values(std::array::from_fn(|m| {
            let mut v: Vec<f64> = draws
                .iter()
                .map(|d| d[m])
                .filter(|x| x.is_finite())
                .collect();
            if v.is_empty() {
                return f64::NAN;
            }
            v.sort_by(f64::total_cmp);
            v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)]
        }))
    };
    Ok(Estimate {
        value,
        low: percentile(0.025),
        high: percentile(0.975),
    })
}

/// A matrix's pairs above the diagonal in ascending order of value, sorted once so that ranking
/// a resample's pairs is a walk in this order rather than a sort per resample (the sort was
/// most of a paper-size target's pixel baseline).
struct Pairs {
    /// (a, b, value) with a < b, ascending by value.
    sorted: Vec<(u32, u32, f32)>,
}

impl Pairs {
    fn of(m: &SimilarityMatrix) -> Self {
        let mut sorted = Vec::with_capacity(m.n * m.n.saturating_sub(1) / 2);
        for a in 0..m.n {
            for b in a + 1..m.n {
                sorted.push((a as u32, b as u32, m.get(a, b)));
            }
        }
        sorted.sort_by(|x, y| x.2.total_cmp(&y.2));
        Pairs { sorted }
    }

    /// The ranks, ties sharing their mean, of the pairs of a resample in which image `i` was
    /// drawn `count[i]` times, so that pair (a, b) stands `count[a] * count[b]` times; written
    /// at the pair's upper-triangle index.
    fn ranks(&self, count: &[u32], n: usize, out: &mut [f64]) {
        let weight = |&(a, b, _): &(u32, u32, f32)| (count[a as usize] * count[b as usize]) as f64;
        let mut before = 0.0;
        let mut i = 0;
        while i < self.sorted.len() {
            let mut j = i;
            while j + 1 < self.sorted.len() && self.sorted[j + 1].2 == self.sorted[i].2 {
                j += 1;
            }
            let tied: f64 = self.sorted[i..=j].iter().map(weight).sum();
            let rank = before + (tied + 1.0) / 2.0;
            for &(a, b, _) in &self.sorted[i..=j] {
                out[upper_index(a as usize, b as usize, n)] = rank;
            }
            before += tied;
            i = j + 1;
        }
    }
}

/// The position of pair (a, b), a < b, in [`SimilarityMatrix::upper`]'s order.
fn upper_index(a: usize, b: usize, n: usize) -> usize {
    a * n - a * (a + 1) / 2 + (b - a - 1)
}

/// Pearson r of `x` and `y` with each pair counted `w` times.
fn weighted_pearson(x: &[f64], y: &[f64], w: &[f64]) -> f64 {
    let total: f64 = w.iter().sum();
    let mean = |v: &[f64]| v.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() / total;
    let (mx, my) = (mean(x), mean(y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for ((&a, &b), &c) in x.iter().zip(y).zip(w) {
        let (da, db) = (a - mx, b - my);
        sxy += c * da * db;
        sxx += c * da * da;
        syy += c * db * db;
    }
    if sxx == 0.0 || syy == 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

/// Both matrices' pairs above the diagonal, as values and sorted, for RSA on resamples.
struct Rsa {
    x: Vec<f64>,
    y: Vec<f64>,
    sorted: (Pairs, Pairs),
}

impl Rsa {
    fn of(k: &SimilarityMatrix, l: &SimilarityMatrix) -> Self {
        Rsa {
            x: widen(&k.upper()),
            y: widen(&l.upper()),
            sorted: (Pairs::of(k), Pairs::of(l)),
        }
    }
}

/// The four measures on the images `idx` (with repeats); CKA NaN unless `with_cka`.
fn resampled(
    k: &SimilarityMatrix,
    l: &SimilarityMatrix,
    rsa: &Rsa,
    idx: &[usize],
    with_cka: bool,
) -> [f64; 4] {
    let n = k.n;
    let mut count = vec![0u32; n];
    for &i in idx {
        count[i] += 1;
    }
    // RSA over the pairs of distinct images drawn, each as often as it was drawn: the pairs of
    // an image with a copy of itself are left out.
    let (x, y) = (&rsa.x, &rsa.y);
    let mut w = Vec::with_capacity(x.len());
    for a in 0..n {
        for b in a + 1..n {
            w.push((count[a] * count[b]) as f64);
        }
    }
    let (mut rx, mut ry) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    rsa.sorted.0.ranks(&count, n, &mut rx);
    rsa.sorted.1.ranks(&count, n, &mut ry);
    // CKA on the distinct images drawn: a copy of an image would add its self-similarity as an
    // off-diagonal pair and pull CKA up (intervals that missed their own estimate). Without CKA,
    // no images: fewer than 4 give NaN.
    let distinct: Vec<usize> = match with_cka {
        true => (0..n).filter(|&i| count[i] > 0).collect(),
        false => Vec::new(),
    };
    let sub = |m: &SimilarityMatrix| -> Vec<f64> {
        distinct
            .iter()
            .flat_map(|&a| distinct.iter().map(move |&b| m.get(a, b) as f64))
            .collect()
    };
    let (ks, ls) = (sub(k), sub(l));
    let d = distinct.len();
    let cka = |f: fn(&[f64], &[f64], usize) -> f64| if d >= 4 { f(&ks, &ls, d) } else { f64::NAN };
    [
        weighted_pearson(x, y, &w),
        weighted_pearson(&rx, &ry, &w),
        cka(linear_cka),
        cka(debiased_cka),
    ]
}

impl Estimate {
    /// The measures as (value, low, high), in [`MEASURES`] order.
    pub fn triples(&self) -> [(f64, f64, f64); 4] {
        let (v, lo, hi) = (self.value.values(), self.low.values(), self.high.values());
        std::array::from_fn(|m| (v[m], lo[m], hi[m]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cosine similarity (Eq. 9) of the rows of `x` (n x d), centred.
    fn cosine(x: &[Vec<f64>]) -> SimilarityMatrix {
        let n = x.len();
        let d = x[0].len();
        let mean: Vec<f64> = (0..d)
            .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n as f64)
            .collect();
        let e: Vec<Vec<f64>> = x
            .iter()
            .map(|r| {
                let c: Vec<f64> = r.iter().zip(&mean).map(|(a, m)| a - m).collect();
                let norm = dot(&c, &c).sqrt();
                c.iter().map(|v| v / norm).collect()
            })
            .collect();
        let values = e
            .iter()
            .flat_map(|a| e.iter().map(move |b| dot(a, b) as f32))
            .collect();
        SimilarityMatrix { n, values }
    }

    fn random(n: usize, d: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| (0..d).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect()
    }

    #[test]
    fn a_matrix_agrees_with_itself_completely() -> Result<()> {
        let k = cosine(&random(12, 5, 0));
        let a = agreement(&k, &k)?;
        for v in a.values() {
            assert!((v - 1.0).abs() < 1e-9, "{a:?}");
        }
        Ok(())
    }

    #[test]
    fn cka_ignores_rotations_and_isotropic_scaling_of_the_features() -> Result<()> {
        let x = random(15, 3, 1);
        let y = random(15, 3, 2);
        // A rotation about the third axis and a scaling by 3.
        let (c, s) = (0.6f64, 0.8f64);
        let rotated: Vec<Vec<f64>> = x
            .iter()
            .map(|r| {
                vec![
                    3.0 * (c * r[0] - s * r[1]),
                    3.0 * (s * r[0] + c * r[1]),
                    3.0 * r[2],
                ]
            })
            .collect();
        let gram = |x: &[Vec<f64>]| -> Vec<f64> {
            x.iter()
                .flat_map(|a| x.iter().map(move |b| dot(a, b)))
                .collect()
        };
        let (kx, kr, ky) = (gram(&x), gram(&rotated), gram(&y));
        assert!((linear_cka(&kx, &ky, 15) - linear_cka(&kr, &ky, 15)).abs() < 1e-12);
        assert!((debiased_cka(&kx, &ky, 15) - debiased_cka(&kr, &ky, 15)).abs() < 1e-12);
        assert!((linear_cka(&kx, &kr, 15) - 1.0).abs() < 1e-12);
        Ok(())
    }

    #[test]
    fn debiased_cka_of_independent_features_is_near_zero_where_the_biased_one_is_not() -> Result<()>
    {
        // 60 images, 500 independent features each side: biased linear CKA is pulled up by the
        // dimensionality (about 0.9 here); the debiased estimate is not.
        let (k, l) = (cosine(&random(60, 500, 3)), cosine(&random(60, 500, 4)));
        let a = agreement(&k, &l)?;
        assert!(a.cka_debiased.abs() < 0.05, "{a:?}");
        assert!(a.cka > 0.5, "{a:?}");
        assert!(a.rsa_pearson.abs() < 0.1, "{a:?}");
        Ok(())
    }

    #[test]
    fn hand_worked_cka_on_four_images() {
        // K = e1 e1^T (n = 4) centred is u1 u1^T with u1 = e1 - 1/4 = (3/4, -1/4, -1/4, -1/4);
        // so CKA(e1 e1^T, e2 e2^T) = <u1, u2>^2 / (|u1|^2 |u2|^2) = (1/4)^2 / (3/4)^2 = 1/9.
        let e = |i: usize| -> Vec<f64> {
            (0..16)
                .map(|p| if p == i * 4 + i { 1.0 } else { 0.0 })
                .collect()
        };
        assert!((linear_cka(&e(0), &e(1), 4) - 1.0 / 9.0).abs() < 1e-12);
    }

    /// The walk over the pairs sorted once gives what expanding a resample's pairs and ranking
    /// them gives, ties included.
    #[test]
    fn a_resample_s_rsa_equals_the_expanded_pairs() {
        let x = random(12, 3, 1);
        let (k, mut l) = (cosine(&x), cosine(&random(12, 3, 2)));
        // Ties: round l to one decimal.
        l.values
            .iter_mut()
            .for_each(|v| *v = (*v * 10.0).round() / 10.0);
        let idx = [0, 0, 3, 5, 5, 5, 7, 8, 9, 11, 11, 2];
        let (mut ex, mut ey) = (Vec::new(), Vec::new());
        for a in 0..idx.len() {
            for b in a + 1..idx.len() {
                if idx[a] != idx[b] {
                    ex.push(k.get(idx[a], idx[b]));
                    ey.push(l.get(idx[a], idx[b]));
                }
            }
        }
        let got = resampled(&k, &l, &Rsa::of(&k, &l), &idx, true);
        assert!((got[0] - pearson(&ex, &ey)).abs() < 1e-6, "{got:?}");
        assert!(
            (got[1] - pearson(&ranks(&ex), &ranks(&ey))).abs() < 1e-6,
            "{got:?}"
        );
    }

    #[test]
    fn intervals_hold_the_estimate_and_are_seeded() -> Result<()> {
        let x = random(30, 4, 5);
        let noisy: Vec<Vec<f64>> = x
            .iter()
            .zip(random(30, 4, 6))
            .map(|(a, b)| a.iter().zip(&b).map(|(p, q)| p + 0.5 * q).collect())
            .collect();
        let (k, l) = (cosine(&x), cosine(&noisy));
        let e = bootstrap(&k, &l, 200, 7)?;
        for (v, lo, hi) in e.triples() {
            assert!(lo <= v + 0.05 && v - 0.05 <= hi && lo < hi, "{e:?}");
        }
        assert_eq!(e, bootstrap(&k, &l, 200, 7)?);
        // The RSA-only bootstrap draws the same resamples: the same RSA intervals, no CKA.
        let rsa = bootstrap_rsa(&k, &l, 200, 7)?;
        for (m, (all, only)) in e.triples().iter().zip(rsa.triples()).enumerate() {
            match m < 2 {
                true => assert_eq!(*all, only),
                false => assert!(only.0.is_nan() && only.1.is_nan() && only.2.is_nan()),
            }
        }
        Ok(())
    }
}
