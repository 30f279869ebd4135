//! Variability across scans and across repeats (docs/method.md section 5, Eq. 4, 5).

use crate::error::{Error, Result};
use crate::similarity::oracle::OracleSimilarity;

/// Eq. 4: `delta_scan[k, alpha, beta] = Sbar_k[alpha, beta] - mean_k Sbar_k[alpha, beta]`,
/// pooled over scans k and pairs alpha < beta. Needs two or more scans on the same images.
pub fn delta_scan(oracles: &[OracleSimilarity]) -> Result<Vec<f32>> {
    let first = oracles
        .first()
        .ok_or_else(|| Error::Config("delta_scan needs at least one scan".into()))?;
    if let Some(o) = oracles.iter().find(|o| o.image_ids != first.image_ids) {
        return Err(Error::analysis(
            &o.scan,
            format!("its oracle images differ from those of {}: delta_scan compares scans on the same images", first.scan),
        ));
    }
    let uppers: Vec<Vec<f32>> = oracles.iter().map(|o| o.matrix.upper()).collect();
    let pairs = uppers[0].len();
    let k = oracles.len() as f32;
    let means: Vec<f32> = (0..pairs)
        .map(|p| uppers.iter().map(|u| u[p]).sum::<f32>() / k)
        .collect();
    Ok(uppers
        .iter()
        .flat_map(|u| u.iter().zip(&means).map(|(v, m)| v - m))
        .collect())
}

/// Eq. 5: `delta_repeat[alpha, beta, t, t'] = S[(alpha, t), (beta, t')] - Sbar[alpha, beta]`,
/// pooled over scans, pairs alpha < beta and every trial pair of the two images.
pub fn delta_repeat(oracles: &[OracleSimilarity]) -> Vec<f32> {
    let mut out = Vec::new();
    for o in oracles {
        let k = o.image_ids.len();
        for a in 0..k {
            for b in a + 1..k {
                let mean = o.matrix.get(a, b);
                for t in o.trials_of(a) {
                    for u in o.trials_of(b) {
                        out.push(o.trial_similarity.get(t, u) - mean);
                    }
                }
            }
        }
    }
    out
}

/// Count, mean and standard deviation (population, n in the denominator as NumPy's default).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Number of values.
    pub count: usize,
    /// Their mean (0 when there are none).
    pub mean: f64,
    /// Their standard deviation (0 when there are none).
    pub std: f64,
}

impl Summary {
    /// Summarises `values`.
    pub fn of(values: &[f32]) -> Summary {
        let count = values.len();
        if count == 0 {
            return Summary {
                count,
                mean: 0.0,
                std: 0.0,
            };
        }
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / count as f64;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / count as f64;
        Summary {
            count,
            mean,
            std: var.sqrt(),
        }
    }
}

/// A histogram: `counts[i]` values fell in `[edges[i], edges[i + 1])` (the last bin includes its right edge).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Histogram {
    /// Bin edges, one more than bins.
    pub edges: Vec<f64>,
    /// Values per bin.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// Bins `values` into `bins` equal bins over `[lo, hi]`.
    pub fn new(values: &[f32], lo: f64, hi: f64, bins: usize) -> Histogram {
        let bins = bins.max(1);
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            (lo - 0.5, lo + 0.5)
        };
        let width = (hi - lo) / bins as f64;
        let edges = (0..=bins).map(|i| lo + i as f64 * width).collect();
        let mut counts = vec![0u64; bins];
        for &v in values {
            let v = v as f64;
            if v.is_finite() && v >= lo && v <= hi {
                counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
            }
        }
        Histogram { edges, counts }
    }

    /// Rows `bin_start,bin_end,count` with a header, for export.
    pub fn to_csv(&self, value_name: &str) -> String {
        let mut out = format!("{value_name}_from,{value_name}_to,count\n");
        for (i, c) in self.counts.iter().enumerate() {
            out.push_str(&format!("{},{},{c}\n", self.edges[i], self.edges[i + 1]));
        }
        out
    }
}

/// Both variabilities of Fig. 1C, summarised and binned on shared edges.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VariabilityReport {
    /// The oracle images compared.
    pub image_ids: Vec<i64>,
    /// The scans pooled.
    pub scans: Vec<String>,
    /// Summary of `delta_scan` (count 0 with one scan).
    pub delta_scan: Summary,
    /// Summary of `delta_repeat`.
    pub delta_repeat: Summary,
    /// Histogram of `delta_scan`.
    pub delta_scan_histogram: Histogram,
    /// Histogram of `delta_repeat`, on the same edges.
    pub delta_repeat_histogram: Histogram,
}

/// Computes Eq. 4 and 5 and bins both on `bins` shared bins spanning all values.
pub fn variability_report(oracles: &[OracleSimilarity], bins: usize) -> Result<VariabilityReport> {
    let scan_values = if oracles.len() >= 2 {
        delta_scan(oracles)?
    } else {
        Vec::new()
    };
    let repeat_values = delta_repeat(oracles);
    let extent = scan_values
        .iter()
        .chain(&repeat_values)
        .fold(0.0f64, |m, &v| m.max((v as f64).abs()));
    Ok(VariabilityReport {
        image_ids: oracles
            .first()
            .map(|o| o.image_ids.clone())
            .unwrap_or_default(),
        scans: oracles.iter().map(|o| o.scan.clone()).collect(),
        delta_scan: Summary::of(&scan_values),
        delta_repeat: Summary::of(&repeat_values),
        delta_scan_histogram: Histogram::new(&scan_values, -extent, extent, bins),
        delta_repeat_histogram: Histogram::new(&repeat_values, -extent, extent, bins),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::similarity::matrix::SimilarityMatrix;

    fn oracle(name: &str, sbar_off: f32, trials: Vec<f32>) -> OracleSimilarity {
        OracleSimilarity {
            scan: name.into(),
            image_ids: vec![1, 2],
            matrix: SimilarityMatrix {
                n: 2,
                values: vec![0.5, sbar_off, sbar_off, 0.5],
            },
            trial_similarity: SimilarityMatrix {
                n: 4,
                values: trials,
            },
            offsets: vec![0, 2, 4],
        }
    }

    #[test]
    fn hand_worked_deltas() {
        // Off-diagonal Sbar 0.2 and 0.4: mean 0.3, delta_scan -0.1 and +0.1.
        let mut t = vec![0.0; 16];
        for (i, v) in [(2, 0.1), (3, 0.3), (6, 0.2), (7, 0.2)] {
            t[i] = v; // rows 0, 1 (image 1) x columns 2, 3 (image 2)
        }
        let a = oracle("a", 0.2, t.clone());
        let b = oracle("b", 0.4, t);
        let ds = delta_scan(&[a.clone(), b]).unwrap();
        assert!((ds[0] + 0.1).abs() < 1e-6 && (ds[1] - 0.1).abs() < 1e-6);
        // delta_repeat for scan a: (0.1, 0.3, 0.2, 0.2) - 0.2.
        let dr = delta_repeat(&[a]);
        let want = [-0.1, 0.1, 0.0, 0.0];
        assert_eq!(dr.len(), 4);
        for (x, y) in dr.iter().zip(want) {
            assert!((x - y).abs() < 1e-6);
        }
        let s = Summary::of(&dr);
        assert!((s.std - (0.02f64 / 4.0).sqrt()).abs() < 1e-6);
    }

    #[test]
    fn histogram_bins_and_edges() {
        let h = Histogram::new(&[-1.0, -0.2, 0.0, 0.3, 1.0], -1.0, 1.0, 4);
        assert_eq!(h.counts, vec![1, 1, 2, 1]);
        assert_eq!(h.edges, vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert!(h.to_csv("d").starts_with("d_from,d_to,count\n-1,-0.5,1\n"));
    }
}
