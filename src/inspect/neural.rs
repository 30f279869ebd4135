//! The neural side of an inspection: the oracle images of a set of scans, the mean oracle
//! similarity over them (Eq. 3, the matrix the brain gives), and how well that matrix agrees
//! with itself, the noise ceiling: the agreement of the matrices built from two halves of each
//! image's repeats (even and odd repeats, every scan), RSA's Pearson r also stepped up to the
//! full data by Spearman-Brown.

use std::collections::BTreeMap;

use candle_core::Device;
use serde::Serialize;

use crate::data::Scan;
use crate::error::{Error, Result};
use crate::inspect::agreement::{agreement, Agreement};
use crate::similarity::matrix::SimilarityMatrix;
use crate::similarity::oracle::{common_oracle_ids, oracle_similarity_of_trials};
use crate::similarity::weights::snr_weights;

/// How the noise ceiling is estimated, as reports say it.
pub const CEILING_METHOD: &str = "split-half: the mean oracle similarity from the even repeats of \
     each image against that from the odd repeats (every scan); rsa_pearson_full is r stepped \
     up to all repeats by Spearman-Brown, 2r / (1 + r)";

/// The neural reference of an inspection.
#[derive(Debug, Clone)]
pub struct NeuralReference {
    /// What the images are, e.g. "oracle images of scan_1, scan_2".
    pub source: String,
    /// Image ids, the rows of `matrix`.
    pub image_ids: Vec<i64>,
    /// Height and width of the images.
    pub shape: (usize, usize),
    /// Each image's pixels on [0, 1].
    pub pixels: Vec<Vec<f32>>,
    /// The mean oracle similarity over the scans.
    pub matrix: SimilarityMatrix,
    /// The split-half agreement; None when an image has fewer than four repeats in a scan.
    pub ceiling: Option<Ceiling>,
}

/// The split-half noise ceiling.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ceiling {
    /// The halves' agreement.
    pub split_half: Agreement,
    /// RSA Pearson r stepped up to the full number of repeats (Spearman-Brown).
    pub rsa_pearson_full: f64,
}

/// The oracle images common to `scans`, their mean oracle similarity and its ceiling.
pub fn oracle_reference(scans: &[&Scan], device: &Device) -> Result<NeuralReference> {
    let first = scans
        .first()
        .ok_or_else(|| Error::Config("inspecting needs at least one scan".into()))?;
    let (image_ids, _) = common_oracle_ids(scans)?;
    if image_ids.len() < 4 {
        return Err(Error::analysis(
            &first.name,
            format!(
                "{} oracle images in common; inspecting needs at least 4",
                image_ids.len()
            ),
        ));
    }
    let mut full = Vec::new();
    let mut halves: [Vec<SimilarityMatrix>; 2] = [Vec::new(), Vec::new()];
    let mut splittable = true;
    for scan in scans {
        let trials = scan.oracle_trials();
        let weights = snr_weights(scan, &trials)?.weights;
        full.push(oracle_similarity_of_trials(scan, &trials, &image_ids, &weights, device)?.matrix);
        let half = |parity: usize| -> BTreeMap<i64, Vec<usize>> {
            trials
                .iter()
                .map(|(&id, t)| (id, t.iter().skip(parity).step_by(2).copied().collect()))
                .collect()
        };
        splittable &= image_ids.iter().all(|id| trials[id].len() >= 4);
        if splittable {
            for (parity, out) in halves.iter_mut().enumerate() {
                let m =
                    oracle_similarity_of_trials(scan, &half(parity), &image_ids, &weights, device)?;
                out.push(m.matrix);
            }
        }
    }
    let mean = |ms: &[SimilarityMatrix]| {
        SimilarityMatrix::mean(&ms.iter().collect::<Vec<_>>()).expect("at least one scan")
    };
    let ceiling = if splittable {
        let split_half = agreement(&mean(&halves[0]), &mean(&halves[1]))?;
        let r = split_half.rsa_pearson;
        Some(Ceiling {
            split_half,
            rsa_pearson_full: 2.0 * r / (1.0 + r),
        })
    } else {
        None
    };
    let shape = first.image_shape;
    let pixels = image_ids
        .iter()
        .map(|id| {
            first
                .image(*id)
                .map(|p| p.iter().map(|v| v / 255.0).collect())
                .ok_or_else(|| {
                    Error::analysis(&first.name, format!("has no pixels for image {id}"))
                })
        })
        .collect::<Result<Vec<Vec<f32>>>>()?;
    let names: Vec<&str> = scans.iter().map(|s| s.name.as_str()).collect();
    Ok(NeuralReference {
        source: format!("oracle images of {}", names.join(", ")),
        image_ids,
        shape,
        pixels,
        matrix: mean(&full),
        ceiling,
    })
}
