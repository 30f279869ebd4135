//! A paired comparison over seeds (docs/method.md, "Statistics"): the same seed trained under two
//! conditions gives one difference; with n seeds the differences are tested by an exact
//! sign-flip permutation test, described by Student's t interval and an effect size, and, when
//! the difference is not significant, by the seeds a paired t-test would need.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::stats::power::seeds_for_power;

/// Up to this many differences every sign pattern is enumerated (2^16 patterns); beyond, the
/// permutation p-value is a seeded Monte Carlo estimate.
pub const EXACT_UP_TO: usize = 16;
/// Random sign patterns drawn beyond [`EXACT_UP_TO`].
pub const MONTE_CARLO_DRAWS: usize = 100_000;
/// The significance level of every test the reports state.
pub const ALPHA: f64 = 0.05;
/// The power a non-significant difference's seed count is computed for.
pub const POWER: f64 = 0.8;

/// What n paired differences say.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedComparison {
    /// Number of pairs (seeds).
    pub n: usize,
    /// Mean difference.
    #[serde(deserialize_with = "crate::stats::nan_as_null::number")]
    pub mean: f64,
    /// Sample standard deviation of the differences (n - 1).
    #[serde(deserialize_with = "crate::stats::nan_as_null::number")]
    pub sd: f64,
    /// 95% interval of the mean difference from Student's t with n - 1 degrees of freedom
    /// (NaN below two pairs).
    #[serde(deserialize_with = "crate::stats::nan_as_null::pair")]
    pub interval: (f64, f64),
    /// Two-sided p of the paired t-test (NaN below two pairs or when every difference is equal).
    #[serde(deserialize_with = "crate::stats::nan_as_null::number")]
    pub t_p: f64,
    /// Two-sided p of the sign-flip permutation test (1 without pairs).
    #[serde(deserialize_with = "crate::stats::nan_as_null::number")]
    pub p: f64,
    /// Whether `p` enumerated every sign pattern (else a Monte Carlo estimate).
    pub exact: bool,
    /// The smallest p this many pairs can give (2 / 2^n when exact).
    #[serde(deserialize_with = "crate::stats::nan_as_null::number")]
    pub p_floor: f64,
    /// Effect size: mean / sd (NaN when sd is 0).
    #[serde(deserialize_with = "crate::stats::nan_as_null::number")]
    pub effect: f64,
    /// Pairs a paired t-test needs for 80% power at alpha 0.05 to detect a difference of this
    /// mean at this SD (None where it is significant, undefined, or above 10,000).
    pub seeds_for_power: Option<usize>,
}

/// The comparison of the paired `differences`; `seed` drives the Monte Carlo draws beyond
/// [`EXACT_UP_TO`] pairs.
pub fn paired_comparison(differences: &[f64], seed: u64) -> PairedComparison {
    let n = differences.len();
    let mean = differences.iter().sum::<f64>() / n.max(1) as f64;
    let sd = if n > 1 {
        (differences.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        f64::NAN
    };
    let (interval, t_p) = match (n > 1).then(|| StudentsT::new(0.0, 1.0, (n - 1) as f64)) {
        Some(Ok(t)) => {
            let se = sd / (n as f64).sqrt();
            let half = t.inverse_cdf(1.0 - ALPHA / 2.0) * se;
            let statistic = mean / se;
            let p = if statistic.is_nan() {
                f64::NAN
            } else {
                2.0 * t.sf(statistic.abs())
            };
            ((mean - half, mean + half), p)
        }
        _ => ((f64::NAN, f64::NAN), f64::NAN),
    };
    let (p, exact) = sign_flip_p(differences, seed);
    let p_floor = if exact {
        (2.0 / 2f64.powi(n as i32)).min(1.0)
    } else {
        2.0 / (MONTE_CARLO_DRAWS + 1) as f64
    };
    let effect = if sd > 0.0 { mean / sd } else { f64::NAN };
    let seeds_for_power = (p >= ALPHA && effect.is_finite() && effect != 0.0)
        .then(|| seeds_for_power(effect.abs(), ALPHA, POWER, 10_000))
        .flatten();
    PairedComparison {
        n,
        mean,
        sd,
        interval,
        t_p,
        p,
        exact,
        p_floor,
        effect,
        seeds_for_power,
    }
}

/// The two-sided sign-flip permutation p-value of the mean of `d` and whether it is exact, as
/// scipy.stats.permutation_test computes it for paired samples: `2 min(p_less, p_greater)`,
/// capped at 1, each side counting the null means within a relative 100 machine epsilons of the
/// observed one as ties; exact (every pattern, the observed among them) up to [`EXACT_UP_TO`]
/// pairs, beyond that from [`MONTE_CARLO_DRAWS`] seeded patterns with the observed counted once
/// more on each side.
pub fn sign_flip_p(d: &[f64], seed: u64) -> (f64, bool) {
    let n = d.len();
    if n == 0 {
        return (1.0, true);
    }
    let observed = d.iter().sum::<f64>() / n as f64;
    let gamma = (100.0 * f64::EPSILON * observed).abs();
    let (mut less, mut greater) = (0usize, 0usize);
    let mut count = |flips: &mut dyn FnMut(usize) -> bool| {
        let mean = d
            .iter()
            .enumerate()
            .map(|(i, v)| if flips(i) { -v } else { *v })
            .sum::<f64>()
            / n as f64;
        less += usize::from(mean <= observed + gamma);
        greater += usize::from(mean >= observed - gamma);
    };
    let exact = n <= EXACT_UP_TO;
    let (total, adjustment) = if exact {
        for pattern in 0u32..(1 << n) {
            count(&mut |i| pattern >> i & 1 == 1);
        }
        (1usize << n, 0)
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..MONTE_CARLO_DRAWS {
            count(&mut |_| rng.random::<bool>());
        }
        (MONTE_CARLO_DRAWS, 1)
    };
    let side = |k: usize| (k + adjustment) as f64 / (total + adjustment) as f64;
    ((2.0 * side(less).min(side(greater))).min(1.0), exact)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scipy 1.17.1 on the same differences (`scripts/check_stats.py` prints these):
    /// `permutation_test((d,), np.mean, permutation_type='samples', n_resamples=2**n)`,
    /// `ttest_rel(d, 0 * d)` and its `confidence_interval(0.95)`.
    #[test]
    fn three_and_four_pairs_match_scipy() {
        let c = paired_comparison(&[0.1, 0.2, -0.05], 0);
        assert_eq!((c.p, c.exact, c.p_floor), (0.5, true, 0.25));
        assert!((c.t_p - 0.3700592117).abs() < 1e-9, "{c:?}");
        assert!((c.interval.0 + 0.2292471406).abs() < 1e-9, "{c:?}");
        assert!((c.interval.1 - 0.3959138073).abs() < 1e-9, "{c:?}");
        let c = paired_comparison(&[0.03, 0.01, 0.02, 0.05], 0);
        assert_eq!(c.p, 0.125);
        assert!((c.t_p - 0.04856685656).abs() < 1e-10, "{c:?}");
        assert!((c.interval.0 - 0.000324691162).abs() < 1e-11, "{c:?}");
        assert!((c.interval.1 - 0.05467530884).abs() < 1e-10, "{c:?}");
        // Significant by t but not by the permutation test, so a seed count is offered.
        assert!(c.seeds_for_power.is_some());
    }

    #[test]
    fn the_floor_of_an_exact_test_is_two_over_two_to_the_n() {
        for n in 3..=8 {
            let c = paired_comparison(&vec![0.1; n], 0);
            assert_eq!(c.p, 2.0 / 2f64.powi(n as i32));
            assert_eq!(c.p, c.p_floor);
            // Equal differences: t is infinite (or, by rounding, enormous), p 0.
            assert!(c.t_p < 1e-20, "{}", c.t_p);
        }
        let zero = paired_comparison(&[0.0; 5], 0);
        assert_eq!((zero.p, zero.effect.is_nan()), (1.0, true));
        assert!(zero.t_p.is_nan());
        let one = paired_comparison(&[0.3], 0);
        assert_eq!(one.p, 1.0);
        assert!(one.interval.0.is_nan() && one.sd.is_nan());
    }

    #[test]
    fn beyond_sixteen_pairs_the_estimate_is_seeded_and_near_the_exact_value() {
        let d: Vec<f64> = (0..17)
            .map(|i| ((i * 7) % 11) as f64 / 10.0 - 0.3)
            .collect();
        let (p, exact) = sign_flip_p(&d, 3);
        assert!(!exact);
        assert_eq!(sign_flip_p(&d, 3), (p, false));
        // The exact value over all 2^17 patterns, enumerated here.
        let observed = d.iter().sum::<f64>() / 17.0;
        let (mut less, mut greater) = (0, 0);
        for pattern in 0u32..(1 << 17) {
            let m = d
                .iter()
                .enumerate()
                .map(|(i, v)| if pattern >> i & 1 == 1 { -v } else { *v })
                .sum::<f64>()
                / 17.0;
            less += usize::from(m <= observed + 1e-12);
            greater += usize::from(m >= observed - 1e-12);
        }
        let exact_p = 2.0 * (less.min(greater) as f64 / (1 << 17) as f64);
        assert!((p - exact_p).abs() < 0.01, "{p} {exact_p}");
    }
}
