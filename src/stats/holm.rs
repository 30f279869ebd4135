//! Holm's step-down correction for the comparisons a report states together.

/// Holm-adjusted p-values, in the order given: the i-th smallest of m p-values times
/// (m - i + 1), made non-decreasing in that order and capped at 1 (statsmodels'
/// `multipletests(method="holm")`). A NaN p stays NaN and is not counted among the m.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let m = order.len();
    let mut adjusted = vec![f64::NAN; p.len()];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max((m - rank) as f64 * p[i]);
        adjusted[i] = running.min(1.0);
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// statsmodels 0.15 `multipletests(p, method="holm")[1]` (`scripts/check_stats.py`).
    #[test]
    fn matches_statsmodels() {
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(close(
            &holm(&[0.01, 0.04, 0.03, 0.005]),
            &[0.03, 0.06, 0.06, 0.02]
        ));
        assert!(close(&holm(&[0.02, 0.02, 0.5]), &[0.06, 0.06, 0.5]));
        assert!(close(
            &holm(&[0.04, 0.2, 0.011, 0.012, 0.9]),
            &[0.12, 0.4, 0.055, 0.055, 0.9]
        ));
        assert!(close(&holm(&[0.6, 0.7, 0.05]), &[1.0, 1.0, 0.15]));
        let with_nan = holm(&[0.01, f64::NAN, 0.04]);
        assert!(with_nan[1].is_nan() && close(&[with_nan[0], with_nan[2]], &[0.02, 0.04]));
        assert!(holm(&[]).is_empty());
    }
}
