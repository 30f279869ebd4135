//! The power of a two-sided paired (one-sample) t-test, and the pairs it needs.
//!
//! statrs has Student's t but no noncentral t, so the power is integrated by hand: with
//! T' = (Z + delta) / U, Z standard normal, U = sqrt(V / nu) for V chi-squared with nu = n - 1
//! degrees of freedom and delta = effect * sqrt(n), the power P(|T'| > c) is
//! E_U[Phi(delta - c U) + Phi(-delta - c U)], one integral over U's density
//! 2 (nu/2)^(nu/2) / Gamma(nu/2) u^(nu-1) exp(-nu u^2 / 2), by Simpson's rule. It agrees with
//! statsmodels' TTestPower (scipy's noncentral t) to about 1e-8.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use statrs::function::gamma::ln_gamma;

/// Simpson intervals (even).
const INTERVALS: usize = 2000;

/// The power of a two-sided paired t-test at level `alpha` with `n` pairs (n >= 2) when the true
/// mean difference is `effect` standard deviations.
pub fn paired_t_power(effect: f64, n: usize, alpha: f64) -> f64 {
    if n < 2 {
        return f64::NAN;
    }
    let nu = (n - 1) as f64;
    let (Ok(t), Ok(z)) = (StudentsT::new(0.0, 1.0, nu), Normal::new(0.0, 1.0)) else {
        return f64::NAN;
    };
    let critical = t.inverse_cdf(1.0 - alpha / 2.0);
    let delta = effect * (n as f64).sqrt();
    let log_norm = 2f64.ln() + nu / 2.0 * (nu / 2.0).ln() - ln_gamma(nu / 2.0);
    let density = |u: f64| {
        if u > 0.0 {
            (log_norm + (nu - 1.0) * u.ln() - nu * u * u / 2.0).exp()
        } else if nu == 1.0 {
            log_norm.exp()
        } else {
            0.0
        }
    };
    // U concentrates around 1 with spread 1/sqrt(2 nu): 12 spreads past 3 hold all its mass.
    let upper = 3.0 + 12.0 / (2.0 * nu).sqrt();
    let h = upper / INTERVALS as f64;
    let sum: f64 = (0..=INTERVALS)
        .map(|i| {
            let u = i as f64 * h;
            let weight = match i {
                0 => 1.0,
                i if i == INTERVALS => 1.0,
                i if i % 2 == 1 => 4.0,
                _ => 2.0,
            };
            weight * density(u) * (z.cdf(delta - critical * u) + z.cdf(-delta - critical * u))
        })
        .sum();
    (sum * h / 3.0).min(1.0)
}

/// The fewest pairs (at least 2) with which a paired t-test at level `alpha` detects a true
/// effect of `effect` standard deviations with probability `power`; None above `most`.
///
/// The power grows with the pairs, so the fewest is found by bisection: about 14 power
/// integrals up to 10,000 pairs, where trying each count in turn took seconds for a small effect
/// (and froze the window's Robustness tab for a third of a second).
pub fn seeds_for_power(effect: f64, alpha: f64, power: f64, most: usize) -> Option<usize> {
    let enough = |n: usize| paired_t_power(effect, n, alpha) >= power;
    if most < 2 || !enough(most) {
        return None;
    }
    // enough(high) holds throughout; the fewest lies in [low, high].
    let (mut low, mut high) = (2, most);
    while low < high {
        let mid = (low + high) / 2;
        match enough(mid) {
            true => high = mid,
            false => low = mid + 1,
        }
    }
    Some(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// statsmodels 0.15 `TTestPower().power(d, n, 0.05)` and `ceil(solve_power(d, None, 0.05,
    /// 0.8))` (`scripts/check_stats.py` prints them).
    #[test]
    fn power_and_pairs_match_statsmodels() {
        for (d, n, expected) in [
            (0.5, 3, 0.0841),
            (1.0, 5, 0.4014),
            (0.8, 10, 0.6162),
            (1.5, 20, 1.0000),
            (0.2, 199, 0.801691),
            (1.0, 10, 0.803097),
            (2.0, 5, 0.908885),
        ] {
            let p = paired_t_power(d, n, 0.05);
            assert!(
                (p - expected).abs() < 1e-4,
                "d {d} n {n}: {p} against {expected}"
            );
        }
        for (d, n) in [
            (0.2, 199),
            (0.5, 34),
            (0.8, 15),
            (1.0, 10),
            (1.5, 6),
            (2.0, 5),
        ] {
            assert_eq!(seeds_for_power(d, 0.05, 0.8, 1000), Some(n), "d {d}");
        }
        assert_eq!(seeds_for_power(0.01, 0.05, 0.8, 1000), None);
        // The bisection finds what trying each count in turn finds.
        for d in [0.15, 0.3, 0.45, 0.7, 1.2, 3.0, 0.0, f64::NAN] {
            let linear = (2..=400).find(|&n| paired_t_power(d, n, 0.05) >= 0.8);
            assert_eq!(seeds_for_power(d, 0.05, 0.8, 400), linear, "d {d}");
        }
    }

    #[test]
    fn without_an_effect_the_power_is_the_level() {
        for n in [2, 4, 30] {
            assert!((paired_t_power(0.0, n, 0.05) - 0.05).abs() < 1e-6, "{n}");
        }
    }
}
