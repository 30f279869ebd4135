//! Signal-to-noise weights (docs/method.md section 2, Eq. 1).

use std::collections::BTreeMap;

use crate::data::Scan;
use crate::error::{Error, Result};

/// One weight per neuron, and which neurons got weight 0.
#[derive(Debug, Clone, PartialEq)]
pub struct SnrWeights {
    /// `w[i] = signal[i] / noise[i]`, in the scan's neuron order.
    pub weights: Vec<f32>,
    /// Neurons with zero signal or zero noise, given weight 0.
    pub zeroed: Vec<usize>,
}

/// Eq. 1 over the oracle images `oracle` (image id -> its trials):
/// `signal^2 = var_alpha mean_t r`, `noise^2 = mean_alpha var_t r`, `w = signal / noise`,
/// with unbiased (n - 1) variances. Needs at least two images with two or more trials each.
pub fn snr_weights(scan: &Scan, oracle: &BTreeMap<i64, Vec<usize>>) -> Result<SnrWeights> {
    if oracle.len() < 2 || oracle.values().any(|t| t.len() < 2) {
        return Err(Error::analysis(
            &scan.name,
            format!(
                "signal-to-noise weights need at least two images shown two or more times; the scan has {} repeated images",
                oracle.values().filter(|t| t.len() >= 2).count()
            ),
        ));
    }
    let n = scan.n_neurons();
    let images = oracle.len() as f64;
    let mut means = vec![0.0f64; n * oracle.len()];
    let mut noise2 = vec![0.0f64; n];
    for (a, trials) in oracle.values().enumerate() {
        let reps = trials.len() as f64;
        for i in 0..n {
            let m = trials
                .iter()
                .map(|&t| scan.response(t)[i] as f64)
                .sum::<f64>()
                / reps;
            let v = trials
                .iter()
                .map(|&t| (scan.response(t)[i] as f64 - m).powi(2))
                .sum::<f64>()
                / (reps - 1.0);
            means[i * oracle.len() + a] = m;
            noise2[i] += v / images;
        }
    }
    let mut weights = Vec::with_capacity(n);
    let mut zeroed = Vec::new();
    for i in 0..n {
        let m = &means[i * oracle.len()..(i + 1) * oracle.len()];
        let grand = m.iter().sum::<f64>() / images;
        let signal2 = m.iter().map(|v| (v - grand).powi(2)).sum::<f64>() / (images - 1.0);
        if signal2 <= 0.0 || noise2[i] <= 0.0 {
            zeroed.push(i);
            weights.push(0.0);
        } else {
            weights.push((signal2 / noise2[i]).sqrt() as f32);
        }
    }
    Ok(SnrWeights { weights, zeroed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::similarity::test_scan;

    #[test]
    fn hand_worked_case() {
        // Neuron 0: image A trials 1, 3 (mean 2, var 2); image B trials 5, 7 (mean 6, var 2).
        // signal^2 = var(2, 6) = 8, noise^2 = mean(2, 2) = 2, w = 2.
        // Neuron 1: the same response on every trial: zero signal and noise, weight 0.
        let scan = test_scan(&[
            (10, [1., 4.]),
            (20, [5., 4.]),
            (10, [3., 4.]),
            (20, [7., 4.]),
        ]);
        let w = snr_weights(&scan, &scan.oracle_trials()).unwrap();
        assert!((w.weights[0] - 2.0).abs() < 1e-6);
        assert_eq!(w.weights[1], 0.0);
        assert_eq!(w.zeroed, vec![1]);
    }

    #[test]
    fn no_repeats_is_an_error() {
        let scan = test_scan(&[(1, [1., 2.]), (2, [3., 4.])]);
        let err = snr_weights(&scan, &scan.oracle_trials())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test") && err.contains("0 repeated images"),
            "{err}"
        );
    }
}
