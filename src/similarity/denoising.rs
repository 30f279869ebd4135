//! How well a predictor denoises (the paper's Fig. 1D): on a scan's oracle
//! images, the model similarity (Eq. 6) and the single-trial similarity
//! (Eq. 2, one repeat per image) each against the oracle similarity (Eq. 3),
//! and, on synthetic scans, each against the similarity of the noise-free
//! responses. A matrix closer to the truth than the single trials is a
//! denoised one.

use candle_core::Device;
use serde::Serialize;

use crate::data::Scan;
use crate::error::{Error, Result};
use crate::runs::predictor::LoadedPredictor;
use crate::similarity::compare::{bootstrap_difference_se, pearson};
use crate::similarity::matrix::{similarity_matrix, SimilarityMatrix};
use crate::similarity::oracle::oracle_similarity;
use crate::similarity::quality::stored_quality;
use crate::similarity::target::{neuron_weights, Weighting};
use crate::similarity::weights::snr_weights;

/// One scatter of Fig. 1D: the entries above the diagonal of two matrices.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scatter {
    /// What is on the horizontal axis.
    pub x_label: String,
    /// What is on the vertical axis.
    pub y_label: String,
    /// Horizontal values.
    pub x: Vec<f32>,
    /// Vertical values.
    pub y: Vec<f32>,
    /// Pearson r of the two.
    pub r: f64,
}

impl Scatter {
    /// The scatter of `y` against `x` (same size).
    pub fn new(x_label: &str, x: &SimilarityMatrix, y_label: &str, y: &SimilarityMatrix) -> Self {
        let (x, y) = (x.upper(), y.upper());
        Scatter {
            x_label: x_label.into(),
            y_label: y_label.into(),
            r: pearson(&x, &y),
            x,
            y,
        }
    }
}

/// Fig. 1D for one scan and its predictor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Denoising {
    /// The scan.
    pub scan: String,
    /// Oracle images compared.
    pub images: usize,
    /// Model similarity against oracle similarity.
    pub model_vs_oracle: Scatter,
    /// Single-trial similarity against oracle similarity.
    pub single_vs_oracle: Scatter,
    /// Model similarity against the noise-free similarity (synthetic scans only).
    pub model_vs_truth: Option<Scatter>,
    /// Single-trial similarity against the noise-free similarity (synthetic scans only).
    pub single_vs_truth: Option<Scatter>,
}

/// The similarity (Eq. 2, SNR weights) of the noise-free responses of `scan` to `ids` (each image's
/// mean over its trials), or None when the scan carries no ground truth.
pub fn truth_similarity(
    scan: &Scan,
    ids: &[i64],
    snr: &[f32],
    device: &Device,
) -> Result<Option<SimilarityMatrix>> {
    let Some(truth) = &scan.ground_truth else {
        return Ok(None);
    };
    let r = scan.rows_for_images(truth, ids, true)?;
    similarity_matrix(
        &r,
        ids.len(),
        snr,
        device,
        &format!("noise-free similarity of {}", scan.name),
    )
    .map(Some)
}

/// Fig. 1D for `predictor` on the oracle images of `scan` (the scan it was fitted to).
pub fn denoising(
    predictor: &LoadedPredictor,
    scan: &Scan,
    weighting: Weighting,
    device: &Device,
) -> Result<Denoising> {
    predictor.check_scan(scan)?;
    let ids: Vec<i64> = scan.oracle_trials().keys().copied().collect();
    if ids.len() < 3 {
        return Err(Error::analysis(
            &scan.name,
            "Fig. 1D needs at least 3 repeated images",
        ));
    }
    let snr = predictor.snr_weights()?;
    let oracle = oracle_similarity(scan, &ids, &snr, device)?.matrix;
    let single = similarity_matrix(
        &scan.rows_for_images(&scan.responses, &ids, false)?,
        ids.len(),
        &snr,
        device,
        &format!("single-trial similarity of {}", scan.name),
    )?;
    let pixels: Vec<&[f32]> = ids.iter().map(|id| scan.images[id].as_slice()).collect();
    let predictions = predictor.predict_images(&pixels, scan.image_shape, device)?;
    let w = neuron_weights(&snr, &stored_quality(predictor)?.rho, weighting);
    let model = similarity_matrix(
        &predictions,
        ids.len(),
        &w,
        device,
        &format!("model similarity of {}", scan.name),
    )?;
    let truth = truth_similarity(scan, &ids, &snr, device)?;
    let against_truth = |label: &str, m: &SimilarityMatrix| {
        truth
            .as_ref()
            .map(|t| Scatter::new("noise-free similarity", t, label, m))
    };
    Ok(Denoising {
        scan: scan.name.clone(),
        images: ids.len(),
        model_vs_oracle: Scatter::new("oracle similarity", &oracle, "model similarity", &model),
        single_vs_oracle: Scatter::new(
            "oracle similarity",
            &oracle,
            "single-trial similarity",
            &single,
        ),
        model_vs_truth: against_truth("model similarity", &model),
        single_vs_truth: against_truth("single-trial similarity", &single),
    })
}

/// The noise-free similarity of `ids` (each scan's with its SNR weights, averaged over `scans`), the
/// truth a target is judged against; None when a scan carries no ground truth.
pub fn truth_target(
    ids: &[i64],
    scans: &[&Scan],
    device: &Device,
) -> Result<Option<SimilarityMatrix>> {
    let mut matrices = Vec::with_capacity(scans.len());
    for scan in scans {
        let snr = snr_weights(scan, &scan.oracle_trials())?.weights;
        match truth_similarity(scan, ids, &snr, device)? {
            Some(m) => matrices.push(m),
            None => return Ok(None),
        }
    }
    Ok(SimilarityMatrix::mean(&matrices.iter().collect::<Vec<_>>()))
}

/// Pearson r of each target over `ids` with [`truth_target`]; None when a scan carries no ground
/// truth.
pub fn targets_vs_truth(
    targets: &[&SimilarityMatrix],
    ids: &[i64],
    scans: &[&Scan],
    device: &Device,
) -> Result<Option<Vec<f64>>> {
    Ok(truth_target(ids, scans, device)?.map(|truth| {
        let truth = truth.upper();
        targets
            .iter()
            .map(|t| pearson(&truth, &t.upper()))
            .collect()
    }))
}

/// How much closer to the noise-free similarity the Neural (model) target comes than the Neural
/// (data) target of the same images.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TargetsVsTruth {
    /// Images of the targets.
    pub images: usize,
    /// Pearson r of Neural (model) with the noise-free similarity.
    pub model_vs_truth: f64,
    /// Pearson r of Neural (data) with the noise-free similarity.
    pub data_vs_truth: f64,
    /// Standard error of their difference, from 200 resamplings of the images.
    pub difference_se: f64,
}

/// Compares the `model` and `data` targets over `ids` with [`truth_target`]; None when a scan
/// carries no ground truth.
pub fn model_vs_data(
    model: &SimilarityMatrix,
    data: &SimilarityMatrix,
    ids: &[i64],
    scans: &[&Scan],
    device: &Device,
) -> Result<Option<TargetsVsTruth>> {
    let Some(truth) = truth_target(ids, scans, device)? else {
        return Ok(None);
    };
    let upper = truth.upper();
    Ok(Some(TargetsVsTruth {
        images: ids.len(),
        model_vs_truth: pearson(&upper, &model.upper()),
        data_vs_truth: pearson(&upper, &data.upper()),
        difference_se: bootstrap_difference_se(&truth, model, data, 200, 0)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scatter_takes_the_upper_triangle_and_its_correlation() {
        let a = SimilarityMatrix {
            n: 3,
            values: vec![1., 0.1, 0.2, 0.1, 1., 0.3, 0.2, 0.3, 1.],
        };
        let b = SimilarityMatrix {
            n: 3,
            values: vec![1., 0.3, 0.2, 0.3, 1., 0.1, 0.2, 0.1, 1.],
        };
        let s = Scatter::new("a", &a, "b", &b);
        assert_eq!(s.x, vec![0.1, 0.2, 0.3]);
        assert_eq!(s.y, vec![0.3, 0.2, 0.1]);
        assert!((s.r + 1.0).abs() < 1e-9);
    }
}
