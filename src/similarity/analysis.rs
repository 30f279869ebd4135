//! The oracle analysis of a set of scans, as the window and `neureg oracle` show it:
//! weights, one oracle matrix per scan over their common oracle images, the
//! mean, a shared ordering and the variability of Fig. 1C.

use candle_core::Device;

use crate::data::Scan;
use crate::error::Result;
use crate::progress::Progress;
use crate::similarity::matrix::SimilarityMatrix;
use crate::similarity::oracle::{common_oracle_ids, oracle_similarity, OracleSimilarity};
use crate::similarity::ordering::spectral_order;
use crate::similarity::variability::{variability_report, VariabilityReport};
use crate::similarity::weights::{snr_weights, SnrWeights};

/// Histogram bins used for the variability of Fig. 1C.
pub const VARIABILITY_BINS: usize = 80;

/// Everything SPEC 2-5 says about a set of scans.
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
}

/// Runs SPEC 2-5 on `scans`.
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
    progress.advance(1);
    Ok(OracleAnalysis {
        image_ids,
        dropped,
        weights,
        oracles,
        mean,
        order,
        variability,
    })
}
