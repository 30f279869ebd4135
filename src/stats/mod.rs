//! Statistics over seeds and samples: mean and standard error, paired differences and their
//! tests, Holm's correction, power, bootstrap percentile intervals.

pub mod holm;
pub mod paired;
pub mod power;

pub use holm::holm;

/// Reading back what JSON wrote for a NaN (`null`): serde_json writes a non-finite number as
/// `null` and refuses to read `null` as a number, so undefined statistics need these.
pub mod nan_as_null {
    use serde::{Deserialize, Deserializer};

    /// A number, or NaN for `null`.
    pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }

    /// A pair of numbers, each NaN for `null`.
    pub fn pair<'de, D: Deserializer<'de>>(d: D) -> Result<(f64, f64), D::Error> {
        let (a, b) = <(Option<f64>, Option<f64>)>::deserialize(d)?;
        Ok((a.unwrap_or(f64::NAN), b.unwrap_or(f64::NAN)))
    }
}
pub use paired::{paired_comparison, PairedComparison};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A mean with its standard error over `n` values (0 when `n` < 2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanSem {
    /// The mean.
    #[serde(deserialize_with = "nan_as_null::number")]
    pub mean: f64,
    /// Standard error of the mean: sample standard deviation (n - 1) over sqrt(n).
    #[serde(deserialize_with = "nan_as_null::number")]
    pub sem: f64,
    /// Number of values.
    pub n: usize,
}

impl MeanSem {
    /// Of `values` (NaN mean when empty).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let sem = if n > 1 {
            let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            (var / n as f64).sqrt()
        } else {
            0.0
        };
        MeanSem { mean, sem, n }
    }

    /// Whether the mean lies more than `k` standard errors from zero (never with fewer than two
    /// values: one value has no error to judge by).
    pub fn beyond(&self, k: f64) -> bool {
        self.n > 1 && self.mean.abs() > k * self.sem
    }
}

/// The differences `a - b` of the values both have, paired by key (e.g. the seed).
pub fn paired_differences<K: PartialEq>(a: &[(K, f64)], b: &[(K, f64)]) -> Vec<f64> {
    a.iter()
        .filter_map(|(k, x)| b.iter().find(|(j, _)| j == k).map(|(_, y)| x - y))
        .collect()
}

/// A 95% bootstrap percentile interval of `statistic` over `n` resampled indices (with
/// replacement), from `resamples` draws of a seeded generator. None if every draw is undefined.
pub fn bootstrap_interval(
    n: usize,
    resamples: usize,
    seed: u64,
    statistic: &mut dyn FnMut(&[usize]) -> Option<f64>,
) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(resamples);
    let mut draw = vec![0usize; n];
    for _ in 0..resamples {
        for d in draw.iter_mut() {
            *d = rng.random_range(0..n);
        }
        // An undefined statistic (an infinite median) counts as +infinity.
        values.push(statistic(&draw).unwrap_or(f64::INFINITY));
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    let (lo, hi) = (at(0.025), at(0.975));
    lo.is_finite().then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_standard_error_of_a_hand_case() {
        // 1, 2, 3, 6: mean 3, sample variance (4 + 1 + 0 + 9) / 3 = 14/3, SEM sqrt(14/12).
        let m = MeanSem::of(&[1.0, 2.0, 3.0, 6.0]);
        assert_eq!(m.mean, 3.0);
        assert!((m.sem - (14.0f64 / 12.0).sqrt()).abs() < 1e-12);
        assert!(m.beyond(2.0) && !m.beyond(3.0));
        let one = MeanSem::of(&[0.7]);
        assert_eq!((one.sem, one.beyond(0.0)), (0.0, false));
    }

    #[test]
    fn differences_pair_by_key() {
        let a = [(0, 0.5), (1, 0.7), (2, 0.9)];
        let b = [(2, 0.4), (0, 0.1)];
        assert_eq!(paired_differences(&a, &b), vec![0.4, 0.5]);
    }

    /// The mean of the resampled values.
    fn mean(v: &[f64]) -> impl FnMut(&[usize]) -> Option<f64> + '_ {
        move |idx| Some(idx.iter().map(|&i| v[i]).sum::<f64>() / idx.len() as f64)
    }

    #[test]
    fn the_bootstrap_interval_brackets_the_mean_and_narrows_with_more_samples() {
        let values: Vec<f64> = (0..400).map(|i| (i % 20) as f64).collect();
        let (lo, hi) = bootstrap_interval(400, 500, 1, &mut mean(&values)).unwrap();
        assert!(lo < 9.5 && 9.5 < hi, "{lo} {hi}");
        // Standard error of the mean of 400 values with sd 5.77: 0.29; the 95% interval about
        // +-0.57.
        assert!(
            (hi - lo - 2.0 * 1.96 * 5.766 / 20.0).abs() < 0.25,
            "{lo} {hi}"
        );
        let few = &values[..40];
        let (a, b) = bootstrap_interval(40, 500, 1, &mut mean(few)).unwrap();
        assert!(b - a > hi - lo);
        assert_eq!(bootstrap_interval(3, 10, 0, &mut |_| None), None);
    }
}
