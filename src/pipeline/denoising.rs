//! The paper's denoising claim checked on a set of predictors (docs/method.md section 6): Fig.
//! 1D per predictor, and the Neural (model) and Neural (data) targets on the single-shown
//! images the scans share, each against the noise-free similarity where the scans carry it.

use std::path::PathBuf;

use candle_core::Device;
use serde::Serialize;

use crate::data::Scan;
use crate::error::Result;
use crate::pipeline::predictors::{open_predictors, ScanSource};
use crate::progress::Progress;
use crate::similarity::denoising::{denoising, model_vs_data, Denoising, TargetsVsTruth};
use crate::similarity::target::{common_single_images, data_target, model_target, Weighting};

/// Fig. 1D of each predictor, and both targets against the truth.
#[derive(Debug, Clone, Serialize)]
pub struct DenoisingComparison {
    /// Fig. 1D per predictor, in the order given.
    pub scans: Vec<Denoising>,
    /// The two targets against the noise-free similarity (None without ground truth).
    pub targets: Option<TargetsVsTruth>,
}

/// Opens `predictors` with their scans and compares.
pub fn denoising_comparison(
    predictors: &[PathBuf],
    scans: ScanSource,
    weighting: Weighting,
    device: &Device,
    progress: &dyn Progress,
) -> Result<DenoisingComparison> {
    let (predictors, scans): (Vec<_>, Vec<_>) =
        open_predictors(predictors, scans, device, progress)?
            .into_iter()
            .map(|p| (p.predictor, p.scan))
            .unzip();
    let figures = predictors
        .iter()
        .zip(&scans)
        .map(|(p, scan)| denoising(p, scan, weighting, device))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&Scan> = scans.iter().map(|s| s.as_ref()).collect();
    let images = common_single_images(&refs)?;
    let model = model_target(&predictors, &images, weighting, device, progress)?;
    let data = data_target(&refs, &images.ids, device)?;
    let targets = model_vs_data(&model.matrix, &data.matrix, &images.ids, &refs, device)?;
    Ok(DenoisingComparison {
        scans: figures,
        targets,
    })
}
