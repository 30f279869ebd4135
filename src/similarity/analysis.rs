//! The oracle analysis of a set of scans, as the window and `neureg oracle` show it:
//! weights, one oracle matrix per scan over their common oracle images, the
//! mean, a shared ordering, the variability of Fig. 1C and the pixel baseline.

use candle_core::Device;

use crate::data::Scan;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::similarity::matrix::SimilarityMatrix;
use crate::similarity::oracle::{common_oracle_ids, oracle_similarity, OracleSimilarity};
use crate::similarity::ordering::spectral_order;
use crate::similarity::pixels::{pixel_baseline, pixel_similarity, PixelBaseline, RESAMPLES};
use crate::similarity::variability::{variability_report, VariabilityReport};
use crate::similarity::weights::{snr_weights, SnrWeights};

/// Histogram bins used for the variability of Fig. 1C.
pub const VARIABILITY_BINS: usize = 80;

/// Everything docs/method.md sections 2-5 says about a set of scans.
#[derive(Debug, Clone)]
pub struct OracleAnalysis {
    /// The oracle images common to all scans, ascending ids.
    pub image_ids: Vec<i64>,
    /// Per scan: how many of its own oracle images are not shared by all scans and so left out.
    pub dropped: Vec<(String, usize)>,
    /// Per scan: Eq. 1 weights over all of that scan's own oracle images.
    pub weights: Vec<SnrWeights>,
    /// Per scan: Eq. 3 over `image_ids`.
    pub oracles: Vec<OracleSimilarity>,
    /// The mean of the scans' oracle matrices.
    pub mean: SimilarityMatrix,
    /// The spectral order of `mean`, shared by every displayed matrix.
    pub order: Vec<usize>,
    /// Eq. 4 and 5.
    pub variability: VariabilityReport,
    /// The pixel similarity of the oracle images (`similarity::pixels`), rows as `image_ids`.
    pub pixels: SimilarityMatrix,
    /// The mean's agreement with it, raw and low-passed.
    pub pixel_baseline: PixelBaseline,
}

/// Runs docs/method.md sections 2-5 on `scans`.
pub fn analyse_oracles(
    scans: &[&Scan],
    device: &Device,
    progress: &dyn Progress,
) -> Result<OracleAnalysis> {
    let (image_ids, dropped) = common_oracle_ids(scans)?;
    progress.stage("oracle similarity", scans.len() as u64 + 1);
    let mut weights = Vec::with_capacity(scans.len());
    let mut oracles = Vec::with_capacity(scans.len());
    for scan in scans {
        progress.check()?;
        let w = snr_weights(scan, &scan.oracle_trials())?;
        oracles.push(oracle_similarity(scan, &image_ids, &w.weights, device)?);
        weights.push(w);
        progress.advance(1);
    }
    let refs: Vec<&SimilarityMatrix> = oracles.iter().map(|o| &o.matrix).collect();
    let mean = SimilarityMatrix::mean(&refs).unwrap_or(SimilarityMatrix {
        n: 0,
        values: Vec::new(),
    });
    let order = spectral_order(&mean);
    let variability = variability_report(&oracles, VARIABILITY_BINS)?;
    let first = scans[0];
    let images = image_ids
        .iter()
        .map(|id| {
            first.image(*id).ok_or_else(|| {
                Error::analysis(&first.name, format!("has no image {id} for its trials"))
            })
        })
        .collect::<Result<Vec<&[f32]>>>()?;
    let pixels = pixel_similarity(&images, first.image_shape, 0.0, device)?;
    let pixel_baseline = pixel_baseline(&mean, &images, first.image_shape, RESAMPLES, 0, device)?;
    progress.advance(1);
    Ok(OracleAnalysis {
        image_ids,
        dropped,
        weights,
        oracles,
        mean,
        order,
        variability,
        pixels,
        pixel_baseline,
    })
}
