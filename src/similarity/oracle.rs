//! Oracle similarity (docs/method.md section 4, Eq. 3): similarity averaged over repeats.

use std::collections::{BTreeMap, BTreeSet};

use candle_core::Device;

use crate::data::Scan;
use crate::error::{Error, Result};
use crate::similarity::matrix::{gram, unit_responses, SimilarityMatrix};

/// Per scan: its name and how many of its oracle images were left out.
pub type Dropped = Vec<(String, usize)>;

/// The oracle similarity of one scan over a list of oracle images.
#[derive(Debug, Clone)]
pub struct OracleSimilarity {
    /// The scan's name.
    pub scan: String,
    /// The oracle images, ascending ids: rows and columns of `matrix`.
    pub image_ids: Vec<i64>,
    /// `Sbar[alpha, beta]`, the diagonal leaving out the pairs t = t'.
    pub matrix: SimilarityMatrix,
    /// Trial-by-trial similarity `S[(alpha, t), (beta, t')]` over all oracle trials,
    /// trials grouped by image in `image_ids` order.
    pub trial_similarity: SimilarityMatrix,
    /// Where each image's trials start in `trial_similarity` (one more entry than images).
    pub offsets: Vec<usize>,
}

impl OracleSimilarity {
    /// The rows of `trial_similarity` that belong to image index `a`.
    pub fn trials_of(&self, a: usize) -> std::ops::Range<usize> {
        self.offsets[a]..self.offsets[a + 1]
    }
}

/// The oracle images shown two or more times in every one of `scans`, ascending.
///
/// Images that only some scans repeated are left out; the second value lists,
/// per scan, how many of its own oracle images were dropped for that reason.
pub fn common_oracle_ids(scans: &[&Scan]) -> Result<(Vec<i64>, Dropped)> {
    let sets: Vec<BTreeSet<i64>> = scans
        .iter()
        .map(|s| s.oracle_trials().into_keys().collect())
        .collect();
    for (scan, set) in scans.iter().zip(&sets) {
        if set.is_empty() {
            return Err(Error::analysis(
                &scan.name,
                "no image was shown more than once, so there is no oracle similarity (it needs repeated images)",
            ));
        }
    }
    let common: BTreeSet<i64> = sets
        .iter()
        .skip(1)
        .fold(sets.first().cloned().unwrap_or_default(), |acc, s| {
            acc.intersection(s).copied().collect()
        });
    if common.len() < 2 {
        return Err(Error::analysis(
            scans
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            format!(
                "the scans share {} repeated images; an oracle similarity matrix needs at least 2",
                common.len()
            ),
        ));
    }
    // Ids name images within a data source: two sources (a Sensorium scan and an NWB session,
    // say) may use the same ids for different images. Like the targets' common single-shown
    // images, common oracle images must be the same pictures in every scan.
    if let Some(first) = scans.first() {
        for scan in &scans[1..] {
            if let Some(&id) = common.iter().find(|&&id| scan.image(id) != first.image(id)) {
                return Err(Error::analysis(
                    &scan.name,
                    format!(
                        "its image {id} is not the image {id} of {}: the scans number different images alike, so they share no oracle images to compare",
                        first.name
                    ),
                ));
            }
        }
    }
    let dropped = scans
        .iter()
        .zip(&sets)
        .map(|(s, set)| (s.name.clone(), set.len() - common.len()))
        .collect();
    Ok((common.into_iter().collect(), dropped))
}

/// Eq. 3: `Sbar[alpha, beta] = mean over (t, t') of e[alpha, t] . e[beta, t']`,
/// leaving out t = t' on the diagonal. Every trial of the images in
/// `image_ids` is a stimulus of Eq. 2; `xbar` is the mean over all of them.
pub fn oracle_similarity(
    scan: &Scan,
    image_ids: &[i64],
    weights: &[f32],
    device: &Device,
) -> Result<OracleSimilarity> {
    oracle_similarity_of_trials(scan, &scan.oracle_trials(), image_ids, weights, device)
}

/// [`oracle_similarity`] from the trials `by_image` lists for each image (e.g. half of each
/// image's repeats); an image needs one trial, and two for its diagonal entry.
pub fn oracle_similarity_of_trials(
    scan: &Scan,
    by_image: &BTreeMap<i64, Vec<usize>>,
    image_ids: &[i64],
    weights: &[f32],
    device: &Device,
) -> Result<OracleSimilarity> {
    let mut offsets = vec![0];
    let mut rows = Vec::new();
    for id in image_ids {
        let trials = by_image.get(id).ok_or_else(|| {
            Error::analysis(
                &scan.name,
                format!("image {id} is not shown two or more times in this scan"),
            )
        })?;
        for &t in trials {
            rows.extend_from_slice(scan.response(t));
        }
        offsets.push(offsets.last().copied().unwrap_or(0) + trials.len());
    }
    let total = offsets.last().copied().unwrap_or(0);
    let e = unit_responses(
        &rows,
        total,
        weights,
        device,
        &format!("{} (oracle trials)", scan.name),
    )?;
    let trial_similarity = gram(&e)?;
    let k = image_ids.len();
    let mut values = vec![0.0f32; k * k];
    for a in 0..k {
        for b in a..k {
            let mut sum = 0.0f64;
            let mut count = 0usize;
            for t in offsets[a]..offsets[a + 1] {
                for u in offsets[b]..offsets[b + 1] {
                    if a == b && t == u {
                        continue;
                    }
                    sum += trial_similarity.get(t, u) as f64;
                    count += 1;
                }
            }
            let mean = (sum / count as f64) as f32;
            values[a * k + b] = mean;
            values[b * k + a] = mean;
        }
    }
    Ok(OracleSimilarity {
        scan: scan.name.clone(),
        image_ids: image_ids.to_vec(),
        matrix: SimilarityMatrix { n: k, values },
        trial_similarity,
        offsets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::similarity::test_scan;

    #[test]
    fn hand_worked_oracle() {
        // Two neurons, weights 1. Image 1: trials (1, 0), (0, 1); image 2: trials (-1, 0), (0, -1).
        // Mean over the four trials is 0, so e = the rows themselves.
        // S within image 1: e(1,0).e(0,1) = 0 -> diagonal (t != t') 0.
        // Between images: (1,0).(-1,0) = -1, (1,0).(0,-1) = 0, (0,1).(-1,0) = 0, (0,1).(0,-1) = -1 -> mean -0.5.
        let scan = test_scan(&[(1, [1., 0.]), (2, [-1., 0.]), (1, [0., 1.]), (2, [0., -1.])]);
        let o = oracle_similarity(&scan, &[1, 2], &[1., 1.], &Device::Cpu).unwrap();
        assert_eq!(o.offsets, vec![0, 2, 4]);
        let want = [0.0, -0.5, -0.5, 0.0];
        for (a, b) in o.matrix.values.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{:?}", o.matrix.values);
        }
    }

    #[test]
    fn common_ids_and_missing_repeats() {
        let a = test_scan(&[
            (1, [1., 0.]),
            (1, [0., 1.]),
            (2, [1., 1.]),
            (2, [0., 0.]),
            (3, [1., 2.]),
            (3, [2., 1.]),
        ]);
        let b = test_scan(&[
            (1, [1., 0.]),
            (1, [0., 1.]),
            (2, [1., 1.]),
            (2, [0., 0.]),
            (3, [1., 2.]),
        ]);
        let (ids, dropped) = common_oracle_ids(&[&a, &b]).unwrap();
        assert_eq!(ids, vec![1, 2]);
        assert_eq!(
            dropped,
            vec![("test".to_string(), 1), ("test".to_string(), 0)]
        );
        let none = test_scan(&[(1, [1., 0.]), (2, [0., 1.])]);
        let err = common_oracle_ids(&[&none]).unwrap_err().to_string();
        assert!(err.contains("no image was shown more than once"), "{err}");
        assert!(oracle_similarity(&b, &[3], &[1., 1.], &Device::Cpu).is_err());
    }
}
