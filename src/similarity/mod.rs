//! docs/method.md sections 2-5: signal-to-noise weights, similarity matrices, oracle similarity,
//! variability across scans and repeats, a shared ordering and comparisons.

pub mod agreement;
pub mod analysis;
pub mod compare;
pub mod denoising;
pub mod matrix;
pub mod oracle;
pub mod ordering;
pub mod pixels;
pub mod quality;
pub mod target;
pub mod variability;
pub mod weights;

pub use matrix::SimilarityMatrix;

/// A tiny scan for hand-worked tests: (image id, responses of 2 neurons) per trial.
#[cfg(test)]
pub(crate) fn test_scan(trials: &[(i64, [f32; 2])]) -> crate::data::Scan {
    use crate::data::{Scan, Tier};
    Scan {
        name: "test".into(),
        source: Default::default(),
        image_ids: trials.iter().map(|t| t.0).collect(),
        tiers: vec![Tier::Test; trials.len()],
        unit_ids: vec![1, 2],
        responses: trials.iter().flat_map(|t| t.1).collect(),
        behavior: None,
        pupil_center: None,
        image_shape: (1, 1),
        images: trials.iter().map(|t| (t.0, vec![0.0])).collect(),
        neurons: Default::default(),
        ground_truth: None,
        notices: Vec::new(),
    }
}
