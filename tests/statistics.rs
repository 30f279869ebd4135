//! The paired statistics of the reports against scipy and statsmodels on the same differences
//! (`tests/fixtures/paired_stats.json`, written by `scripts/check_stats.py`): the t-test's p and
//! 95% interval, the exact sign-flip permutation p, the power at the observed effect, the seeds
//! for 80% power, and Holm's correction.

use neureg::stats::power::{paired_t_power, seeds_for_power};
use neureg::stats::{holm, paired_comparison};

fn fixture() -> serde_json::Value {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/paired_stats.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= tolerance * (1.0 + b.abs())
}

#[test]
fn paired_comparisons_match_scipy_and_statsmodels() {
    let f = fixture();
    let cases = f["cases"].as_array().unwrap();
    assert!(cases.len() >= 50);
    for c in cases {
        let d: Vec<f64> = c["differences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let got = paired_comparison(&d, 0);
        let want = |k: &str| c[k].as_f64().unwrap_or(f64::NAN);
        assert!(got.exact, "{d:?}");
        assert!(
            close(got.p, want("p"), 1e-12),
            "{d:?}: p {} against {}",
            got.p,
            want("p")
        );
        assert!(
            close(got.t_p, want("t_p"), 1e-8),
            "{d:?}: t p {} against {}",
            got.t_p,
            want("t_p")
        );
        let interval = c["interval"].as_array().unwrap();
        assert!(
            close(got.interval.0, interval[0].as_f64().unwrap(), 1e-8),
            "{d:?}"
        );
        assert!(
            close(got.interval.1, interval[1].as_f64().unwrap(), 1e-8),
            "{d:?}"
        );
        assert!(close(got.effect, want("effect"), 1e-9), "{d:?}");
        // statsmodels gives no power (null) where scipy's noncentral t fails (one degree of
        // freedom at large effects).
        if let Some(expected) = c["power"].as_f64() {
            let power = paired_t_power(got.effect.abs(), d.len(), 0.05);
            assert!(
                close(power, expected, 1e-6),
                "{d:?}: power {power} against {expected}"
            );
        }
        let need = c["seeds_for_power"].as_u64().map(|n| n as usize);
        if need.is_some() {
            assert_eq!(
                seeds_for_power(got.effect.abs(), 0.05, 0.8, 10_000),
                need,
                "{d:?}"
            );
        }
    }
}

#[test]
fn holm_matches_statsmodels() {
    let f = fixture();
    let list = |k: &str| -> Vec<f64> {
        f["holm"][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let got = holm(&list("p"));
    for (a, b) in got.iter().zip(list("adjusted")) {
        assert!(close(*a, b, 1e-12), "{got:?}");
    }
}
